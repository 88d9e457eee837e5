"""LSVAE: the loss (lsvae.3, lsvae.4) against a direct computation in both backends
with identical weights, the L2 penalty's gradient, the fixed decoder scale, and the
command line in both backends."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from numpyro import handlers
from pyro import poutine

from conftest import tiny_config
from guides.flax_nets import params_from_torch
from zoo import registry
from zoo.config import ConfigError, override
from zoo.data import load_dataset

B, Z_DIM, WEIGHT_DECAY = 6, 3, 0.01


@pytest.fixture(scope="module")
def x():
    return load_dataset("digits", binarize="none").x_train[:B]


def make(backend, **settings):
    settings.setdefault("weight_decay", WEIGHT_DECAY)
    return registry.variant_class("lsvae", backend)(tiny_config("lsvae", z_dim=Z_DIM, **settings), 64)


def numpyro_params(torch_variant):
    return {
        "encoder$params": params_from_torch(torch_variant.encoder),
        "decoder$params": params_from_torch(torch_variant.decoder),
    }


def fixed_z():
    return np.random.default_rng(2).normal(size=(B, Z_DIM)).astype(np.float32)


def pyro_loss_at(variant, x, z):
    x = torch.as_tensor(x)
    guide_trace = poutine.trace(variant.guide).get_trace(x=x)
    guide_trace.nodes["z"]["value"] = torch.as_tensor(z)
    return variant.objective().differentiable_loss(variant.model, poutine.replay(variant.guide, trace=guide_trace), x=x)


def numpyro_loss_at(variant, params, x, z):
    guide = handlers.substitute(variant.guide, data={"z": jnp.asarray(z)})
    return variant.objective().loss(jax.random.PRNGKey(0), params, variant.model, guide, x=jnp.asarray(x))


def direct_loss(torch_variant, x, z, weight_decay, sigma0=math.sqrt(0.5)):
    """(lsvae.4) written out: squared error / (2 sigma0^2) + Gaussian constant + KL + B lambda ||w||^2."""
    with torch.no_grad():
        x = torch.as_tensor(x).double()
        loc, scale = (t.double() for t in torch_variant.encoder(x.float()))
        reconstruction = torch_variant.decoder(torch.tensor(z))[0].double()
        squared_norm = sum(float(p.double().pow(2).sum()) for p in torch_variant.parameters())
    squared_error = float(((x - reconstruction) ** 2).sum())
    constant = B * x.shape[1] * 0.5 * math.log(2 * math.pi * sigma0**2)
    kl = float(-0.5 * (1 + 2 * scale.log() - loc**2 - scale**2).sum())
    return squared_error / (2 * sigma0**2) + constant + kl + B * weight_decay * squared_norm


@pytest.mark.parametrize("sigma0", [math.sqrt(0.5), 0.3])
def test_loss_is_the_lsvae_objective_in_both_backends(x, sigma0):
    torch_variant = make("pyro", sigma0=sigma0)
    z = fixed_z()
    expected = direct_loss(torch_variant, x, z, WEIGHT_DECAY, sigma0)
    assert pyro_loss_at(torch_variant, x, z).item() == pytest.approx(expected, rel=1e-5)
    numpyro_loss = jax.jit(lambda p: numpyro_loss_at(make("numpyro", sigma0=sigma0), p, x, z))(numpyro_params(torch_variant))
    assert float(numpyro_loss) == pytest.approx(expected, rel=1e-5)


def test_half_variance_weighs_the_squared_error_by_one(x):
    """(lsvae.3): with sigma0^2 = 1/2 the loss is ||x - f(z)||^2 + (D/2) log(pi) per image, + KL."""
    variant = make("pyro", weight_decay=0.0)
    z = fixed_z()
    with torch.no_grad():
        reconstruction = variant.decoder(torch.tensor(z))[0]
        loc, scale = variant.encoder(torch.as_tensor(x))
    kl = float(-0.5 * (1 + 2 * scale.log() - loc**2 - scale**2).sum())
    expected = float(((torch.as_tensor(x) - reconstruction) ** 2).sum()) + B * 32 * math.log(math.pi) + kl
    assert pyro_loss_at(variant, x, z).item() == pytest.approx(expected, rel=1e-5)


def test_l2_penalty_adds_2_B_lambda_w_to_every_gradient_in_both_backends(x):
    """The penalty reaches every weight and bias of encoder and decoder, as the
    gradient of B lambda ||w||^2, in the loss (not as optimiser decay)."""
    penalised, plain = make("pyro"), make("pyro", weight_decay=0.0)
    plain.load_state_dict(penalised.state_dict())
    z = fixed_z()
    for variant in (penalised, plain):
        pyro_loss_at(variant, x, z).backward()
    for (name, p), q in zip(penalised.named_parameters(), plain.parameters()):
        np.testing.assert_allclose((p.grad - q.grad).numpy(), (2 * B * WEIGHT_DECAY * p.detach()).numpy(), rtol=1e-3, atol=1e-5, err_msg=name)

    params = numpyro_params(penalised)
    grads = [jax.jit(jax.grad(lambda p, v=v: numpyro_loss_at(v, p, x, z)))(params) for v in (make("numpyro"), make("numpyro", weight_decay=0.0))]
    difference = jax.tree_util.tree_map(lambda a, b: a - b, *grads)
    expected = jax.tree_util.tree_map(lambda w: 2 * B * WEIGHT_DECAY * w, params)
    for got, want in zip(jax.tree_util.tree_leaves(difference), jax.tree_util.tree_leaves(expected)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-3, atol=1e-5)


def test_decoder_scale_is_the_fixed_sigma0():
    variant = make("pyro", sigma0=0.25)
    loc, scale = variant.decoder(torch.zeros(2, Z_DIM))
    assert loc.shape == (2, 64) and torch.all(scale == 0.25)
    assert variant.decoder.net[-1].out_features == 64  # no scale head


def test_config_is_least_squares_only():
    with pytest.raises(ConfigError):
        override(registry.default_config("lsvae"), {"likelihood": "bernoulli"})
    with pytest.raises(ConfigError):
        override(registry.default_config("lsvae"), {"weight_decay": "-1"})
    assert registry.default_config("lsvae").fixed_scale == pytest.approx(math.sqrt(0.5))


@pytest.mark.parametrize("backend", ["pyro", "numpyro"])
def test_cli_trains_and_reports_the_reconstruction_error(trained_run, backend):
    out = trained_run("lsvae", backend)
    metrics = json.loads((out / "metrics.json").read_text())
    assert math.isfinite(metrics["train_loss"]) and math.isfinite(metrics["test_elbo_500"])
    assert 0 <= metrics["reconstruction_mse"] < 1
