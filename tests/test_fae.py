"""FAE: the loss (fae.4) against a direct computation in both backends, Pyro/NumPyro
agreement on loss and gradients with identical weights, the realised J(z)
following its target, and the command line in both backends."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pyro
import pytest
import torch
from numpyro import handlers
from pyro import poutine
from pyro.infer import SVI

from conftest import tiny_config
from guides.flax_nets import params_from_torch
from zoo import registry
from zoo.config import ConfigError, override
from zoo.data import load_dataset
from zoo.pyro_backend.objectives import gaussian_fisher_information

B, Z_DIM = 6, 3
PENALTIES = dict(fisher_z=20.0, lambda_z=0.7, fisher_x=3000.0, lambda_x=0.05)


@pytest.fixture(scope="module")
def x():
    return load_dataset("digits", binarize="none").x_train[:B]


def make(backend, **settings):
    return registry.variant_class("fae", backend)(tiny_config("fae", z_dim=Z_DIM, **settings), 64)


def numpyro_params(torch_variant):
    return {
        "encoder$params": params_from_torch(torch_variant.encoder),
        "decoder$params": params_from_torch(torch_variant.decoder),
    }


def fixed_z():
    return np.random.default_rng(1).normal(size=(B, Z_DIM)).astype(np.float32)


def as_tensor(array):
    return torch.tensor(np.array(array))


def pyro_loss_at(variant, x, z):
    """The differentiable FAE loss with the guide's draw fixed to ``z``."""
    x = torch.as_tensor(x)
    guide_trace = poutine.trace(variant.guide).get_trace(x=x)
    guide_trace.nodes["z"]["value"] = torch.as_tensor(z)
    return variant.objective().differentiable_loss(variant.model, poutine.replay(variant.guide, trace=guide_trace), x=x)


def numpyro_loss_at(variant, params, x, z):
    guide = handlers.substitute(variant.guide, data={"z": jnp.asarray(z)})
    return variant.objective().loss(jax.random.PRNGKey(0), params, variant.model, guide, x=jnp.asarray(x))


def direct_loss(torch_variant, x, z, fisher_z, lambda_z, fisher_x, lambda_x):
    """(fae.4) written out in float64 from the networks' outputs."""
    with torch.no_grad():
        x = torch.as_tensor(x).double()
        loc, scale = (t.double() for t in torch_variant.encoder(x.float()))
        x_loc, x_scale = (t.double() for t in torch_variant.decoder(as_tensor(z)))
    nll = (0.5 * ((x - x_loc) / x_scale) ** 2 + x_scale.log() + 0.5 * math.log(2 * math.pi)).sum()
    kl = -0.5 * (1 + 2 * scale.log() - loc**2 - scale**2).sum()
    j_z = (1 / scale**2).sum(-1).mean()
    j_x = (1 / x_scale**2).sum(-1).mean()
    penalty = lambda_z * abs(j_z - fisher_z) + lambda_x * abs(j_x - fisher_x)
    return float(nll + kl + B * penalty)


def test_loss_is_the_fae_objective_in_both_backends(x):
    torch_variant = make("pyro", **PENALTIES)
    z = fixed_z()
    expected = direct_loss(torch_variant, x, z, **PENALTIES)
    assert pyro_loss_at(torch_variant, x, z).item() == pytest.approx(expected, rel=1e-5)
    numpyro_variant = make("numpyro", **PENALTIES)
    numpyro_loss = float(jax.jit(lambda p: numpyro_loss_at(numpyro_variant, p, x, z))(numpyro_params(torch_variant)))
    assert numpyro_loss == pytest.approx(expected, rel=1e-5)


def test_zero_weights_give_the_elbo_and_a_target_hit_costs_nothing(x):
    torch_variant = make("pyro", **PENALTIES)
    z = fixed_z()
    elbo_only = direct_loss(torch_variant, x, z, 0.0, 0.0, 0.0, 0.0)
    off = make("pyro", lambda_z=0.0, lambda_x=0.0)
    off.load_state_dict(torch_variant.state_dict())
    assert pyro_loss_at(off, x, z).item() == pytest.approx(elbo_only, rel=1e-6)
    # Targets set to the realised values: the penalties vanish.
    with torch.no_grad():
        j_z = float(gaussian_fisher_information(torch_variant.encoder(torch.as_tensor(x))[1]).mean())
        j_x = float(gaussian_fisher_information(torch_variant.decoder(as_tensor(z))[1]).mean())
    on_target = make("pyro", fisher_z=j_z, lambda_z=1.0, fisher_x=j_x, lambda_x=1.0)
    on_target.load_state_dict(torch_variant.state_dict())
    assert pyro_loss_at(on_target, x, z).item() == pytest.approx(elbo_only, rel=1e-5)


def test_pyro_and_numpyro_agree_on_the_gradients_with_identical_weights(x):
    """The penalties' gradients, not only their values, are the same in both backends."""
    torch_variant = make("pyro", **PENALTIES)
    z = fixed_z()
    pyro_loss_at(torch_variant, x, z).backward()
    numpyro_variant = make("numpyro", **PENALTIES)
    grads = jax.jit(jax.grad(lambda p: numpyro_loss_at(numpyro_variant, p, x, z)))(numpyro_params(torch_variant))
    for name, net in (("encoder", torch_variant.encoder), ("decoder", torch_variant.decoder)):
        linears = [m for m in net.net if isinstance(m, torch.nn.Linear)]
        for i, layer in enumerate(linears):
            dense = grads[f"{name}$params"]["net"][f"Dense_{i}"]
            np.testing.assert_allclose(np.asarray(dense["kernel"]), layer.weight.grad.numpy().T, rtol=2e-4, atol=1e-4)
            np.testing.assert_allclose(np.asarray(dense["bias"]), layer.bias.grad.numpy(), rtol=2e-4, atol=1e-4)


def test_numpyro_penalty_reads_the_same_draw_of_z_as_the_elbo(x):
    """The decoder penalty is evaluated at the guide's draw that the ELBO uses: with a
    huge decoder weight, the loss equals the direct loss at the z the guide drew."""
    variant = make("numpyro", fisher_z=0.0, lambda_z=0.0, fisher_x=0.0, lambda_x=1e3)
    torch_twin = make("pyro", fisher_z=0.0, lambda_z=0.0, fisher_x=0.0, lambda_x=1e3)
    params = numpyro_params(torch_twin)
    recorded = {}

    def recording_guide(**kwargs):
        trace = handlers.trace(variant.guide).get_trace(**kwargs)
        recorded["z"] = trace["z"]["value"]

    objective = variant.objective()
    loss = float(jax.jit(lambda p: objective.loss(jax.random.PRNGKey(7), p, variant.model, variant.guide, x=jnp.asarray(x)))(params))
    # Re-draw the z the objective's own guide trace used (its first key).
    guide_key = jax.random.split(jax.random.PRNGKey(7), 3)[0]
    handlers.seed(handlers.substitute(recording_guide, data=params), guide_key)(x=jnp.asarray(x))
    expected = direct_loss(torch_twin, x, np.asarray(recorded["z"]), 0.0, 0.0, 0.0, 1e3)
    assert loss == pytest.approx(expected, rel=1e-5)


def test_realised_fisher_information_follows_its_target():
    """(fae.4) with lambda_z = 1: a few SVI steps move J(z) to F_z = d and to F_z = 10 d."""
    x = torch.as_tensor(load_dataset("digits", binarize="none").x_train[:200])
    realised = {}
    for target in (1.0 * Z_DIM, 10.0 * Z_DIM):
        pyro.clear_param_store()
        pyro.set_rng_seed(0)
        variant = make("pyro", fisher_z=target, lambda_z=1.0, fisher_x=64 * 25.0, lambda_x=0.01)
        svi = SVI(variant.model, variant.guide, pyro.optim.Adam({"lr": 0.05}), variant.objective())
        for _ in range(60):
            svi.step(x=x)
        with torch.no_grad():
            realised[target] = float(gaussian_fisher_information(variant.encoder(x)[1]).mean())
    for target, value in realised.items():
        assert value == pytest.approx(target, rel=0.25), realised


def test_config_needs_a_gaussian_decoder():
    with pytest.raises(ConfigError):
        override(registry.default_config("fae"), {"likelihood": "bernoulli"})
    with pytest.raises(ConfigError):
        override(registry.default_config("fae"), {"lambda_z": "-1"})


@pytest.mark.parametrize("backend", ["pyro", "numpyro"])
def test_cli_trains_and_reports_the_fisher_information(trained_run, backend):
    out = trained_run("fae", backend)
    metrics = json.loads((out / "metrics.json").read_text())
    assert math.isfinite(metrics["train_loss"]) and math.isfinite(metrics["test_elbo_500"])
    for key in ("fisher_information_z", "fisher_information_x", "kl", "reconstruction_mse"):
        assert math.isfinite(metrics[key]) and metrics[key] >= 0
