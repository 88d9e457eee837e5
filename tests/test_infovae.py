"""InfoVAE (IMVAE): the objective (infovae.3-5) against a direct computation, the
special cases alpha = 0, lambda = 1 (the VAE) and alpha = 1 (no KL), the MMD as a
batch-level factor, Pyro/NumPyro agreement with identical weights, the evaluation
density, and the command line in both backends."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pyro
import pytest
import torch
from numpyro import handlers
from numpyro.infer import TraceMeanField_ELBO as NumPyroMeanField
from pyro import poutine
from pyro.infer import TraceMeanField_ELBO
from torch.nn import functional as F

from conftest import tiny_config
from guides.flax_nets import params_from_torch
from zoo import registry
from zoo.cli import main
from zoo.config import ConfigError
from zoo.data import load_dataset

B, Z_DIM = 5, 3


@pytest.fixture(scope="module")
def x():
    return load_dataset("digits", binarize="fixed").x_train[:B]


def make(backend, **settings):
    config = tiny_config("infovae", z_dim=Z_DIM, **settings)
    return registry.variant_class("infovae", backend)(config, 64)


def vae(backend):
    return registry.variant_class("vae", backend)(tiny_config("vae", z_dim=Z_DIM), 64)


def numpyro_params(torch_variant):
    return {
        "encoder$params": params_from_torch(torch_variant.encoder),
        "decoder$params": params_from_torch(torch_variant.decoder),
    }


def fixed_draws(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(B, Z_DIM)).astype(np.float32), rng.normal(size=(B, Z_DIM)).astype(np.float32)


def pyro_loss_at(variant, x, z, z_prior):
    """TraceMeanField loss with the guide's draw fixed to ``z`` and the prior draws to ``z_prior``."""
    variant.prior_draws = lambda num, like: torch.as_tensor(z_prior)
    x = torch.as_tensor(x)
    guide_trace = poutine.trace(variant.guide).get_trace(x=x)
    guide_trace.nodes["z"]["value"] = torch.as_tensor(z)
    return TraceMeanField_ELBO().loss(variant.model, poutine.replay(variant.guide, trace=guide_trace), x=x)


def numpyro_loss_at(variant, params, x, z, z_prior):
    variant.prior_draws = lambda num: jnp.asarray(z_prior)
    guide = handlers.substitute(variant.guide, data={"z": jnp.asarray(z)})
    # Compiled once: cheaper than JAX's op-by-op dispatch of the whole ELBO.
    loss = jax.jit(lambda p: NumPyroMeanField().loss(jax.random.PRNGKey(0), p, variant.model, guide, x=jnp.asarray(x)))
    return float(loss(params))


def direct_mmd(a, b, gamma):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    k = lambda u, v: math.exp(-gamma * float(np.sum((u - v) ** 2)))  # noqa: E731
    n = len(a)
    return (sum(k(u, v) for u in a for v in a) + sum(k(u, v) for u in b for v in b) - 2 * sum(k(u, v) for u in a for v in b)) / n**2


def direct_loss(torch_variant, x, z, z_prior, alpha, lam):
    """(infovae.5) written out: Bernoulli NLL + (1 - alpha) closed-form KL + B (alpha + lambda - 1) MMD."""
    with torch.no_grad():
        x = torch.as_tensor(x)
        loc, scale = torch_variant.encoder(x)
        nll = F.binary_cross_entropy_with_logits(torch_variant.decoder(torch.as_tensor(z)), x, reduction="sum")
        kl = -0.5 * (1 + 2 * scale.log() - loc**2 - scale**2).sum()
    gamma = 1.0 / (2 * Z_DIM)
    return float(nll) + (1 - alpha) * float(kl) + B * (alpha + lam - 1) * direct_mmd(z, z_prior, gamma)


@pytest.mark.parametrize("alpha, lam", [(1.0, 100.0), (0.5, 10.0), (0.0, 3.0)])
def test_loss_is_the_infovae_objective_in_both_backends(x, alpha, lam):
    torch_variant = make("pyro", alpha=alpha, lam=lam)
    z, z_prior = fixed_draws()
    expected = direct_loss(torch_variant, x, z, z_prior, alpha, lam)
    assert pyro_loss_at(torch_variant, x, z, z_prior) == pytest.approx(expected, rel=1e-5)
    numpyro_loss = numpyro_loss_at(make("numpyro", alpha=alpha, lam=lam), numpyro_params(torch_variant), x, z, z_prior)
    assert numpyro_loss == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("backend", ["pyro", "numpyro"])
def test_alpha_0_lambda_1_is_exactly_the_vae_loss(x, backend):
    """With the same weights and the same noise the losses are bitwise equal."""
    info, plain = make(backend, alpha=0.0, lam=1.0), vae(backend)
    if backend == "pyro":
        plain.load_state_dict(info.state_dict())
        losses = []
        for model in (info, plain):
            pyro.set_rng_seed(3)
            losses.append(TraceMeanField_ELBO().loss(model.model, model.guide, x=torch.as_tensor(x)))
    else:
        params = numpyro_params(make("pyro"))
        losses = [
            float(jax.jit(lambda p, m=m: NumPyroMeanField().loss(jax.random.PRNGKey(3), p, m.model, m.guide, x=jnp.asarray(x)))(params))
            for m in (info, plain)
        ]
    assert losses[0] == losses[1]


def test_mmd_factor_is_one_batch_level_term_outside_the_data_plate(x):
    """The factor sits in no plate and carries no scale, so nothing multiplies it by
    N/B; the KL weight sits on z in model and guide (a mask when it is 0)."""
    half = make("pyro", alpha=0.5, lam=10.0)
    guide_trace = poutine.trace(half.guide).get_trace(x=torch.as_tensor(x))
    model_trace = poutine.trace(poutine.replay(half.model, trace=guide_trace)).get_trace(x=torch.as_tensor(x))
    factor = model_trace.nodes["mmd"]
    assert factor["cond_indep_stack"] == () and factor["scale"] == 1.0
    assert factor["fn"].log_factor.shape == ()
    assert model_trace.nodes["z"]["scale"] == 0.5 and guide_trace.nodes["z"]["scale"] == 0.5
    mmd_vae = make("pyro", alpha=1.0, lam=100.0)
    guide_trace = poutine.trace(mmd_vae.guide).get_trace(x=torch.as_tensor(x))
    assert guide_trace.nodes["z"]["mask"] is False

    params = numpyro_params(make("pyro"))
    model = handlers.substitute(make("numpyro", alpha=0.5, lam=10.0).model, data=params)
    trace = handlers.trace(handlers.seed(model, 0)).get_trace(x=jnp.asarray(x))
    assert trace["mmd"]["cond_indep_stack"] == [] and trace["mmd"]["scale"] is None
    assert trace["mmd"]["fn"].log_factor.shape == ()
    assert trace["z"]["scale"] == 0.5


@pytest.mark.parametrize("backend", ["pyro", "numpyro"])
def test_importance_weights_are_those_of_the_unweighted_joint(x, backend):
    """alpha and lambda shape the training loss only: the evaluation density of an
    MMD-VAE (KL masked) is the VAE's, with the same weights and noise."""
    info, plain = make(backend, alpha=1.0, lam=100.0), vae(backend)
    if backend == "pyro":
        plain.load_state_dict(info.state_dict())
        weights = []
        for model in (info, plain):
            pyro.set_rng_seed(5)
            weights.append(model.log_weights(4, x=torch.as_tensor(x)).numpy())
    else:
        params = numpyro_params(make("pyro"))
        key = jax.random.PRNGKey(5)
        weights = [np.asarray(jax.jit(lambda p, m=m: m.log_weights(p, key, 4, x=jnp.asarray(x)))(params)) for m in (info, plain)]
    assert weights[0].shape == (4, B)
    np.testing.assert_array_equal(weights[0], weights[1])


def test_mmd_vae_still_trains_the_encoder_through_z(x):
    """alpha = 1 masks z's log densities, not its reparameterised draw: the encoder
    gets gradient from the likelihood and the MMD."""
    variant = make("pyro", alpha=1.0, lam=100.0)
    loss = TraceMeanField_ELBO().differentiable_loss(variant.model, variant.guide, x=torch.as_tensor(x))
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in variant.encoder.parameters())


def test_config_rejects_a_negative_kl_or_mmd_weight():
    base = registry.default_config("infovae")
    assert (base.kl_weight, base.mmd_weight, base.gamma) == (0.0, 1000.0, 1.0 / 100)
    from zoo.config import override

    with pytest.raises(ConfigError):
        override(base, {"alpha": "1.5"})
    with pytest.raises(ConfigError):
        override(base, {"alpha": "0", "lam": "0.5"})


@pytest.mark.parametrize("backend", ["pyro", "numpyro"])
def test_cli_trains_and_evaluates(trained_run, backend):
    out = trained_run("infovae", backend)
    metrics = json.loads((out / "metrics.json").read_text())
    assert math.isfinite(metrics["train_loss"]) and math.isfinite(metrics["test_elbo_500"])
    # The reported MMD is the U-statistic: below the V-statistic, which carries the
    # positive floor of its i = j terms, and inside its own bootstrap interval.
    assert metrics["mmd_aggregate_posterior"] < metrics["mmd_aggregate_posterior_v"]
    assert metrics["mmd_aggregate_posterior_low"] <= metrics["mmd_aggregate_posterior"] <= metrics["mmd_aggregate_posterior_high"]
    assert metrics["mmd_gamma"] == pytest.approx(1 / (2 * 4))  # 1/(2d), d = 4 in the tiny run
    assert math.isfinite(metrics["knn_accuracy_1000_labels"])
    assert main(["evaluate", str(out), "--k", "30", "--limit", "20", "--proposal", "defensive"]) == 0
    evaluation = json.loads((out / "eval.json").read_text())
    assert evaluation["proposal"] == "defensive" and evaluation["psis_khat_mean"] is not None
