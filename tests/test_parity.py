"""Pyro and NumPyro agree: the same VAE with the same weights has the same density.

The torch networks' weights are copied into Flax parameters with
``guides.flax_nets.params_from_torch``; both backends then evaluate the log
importance weight ``log p(x, z) + ... - log q(z|x)`` (vae.1-vae.3) and the
analytic-KL ELBO (vae.4, vae.5) at the *same* z, so no Monte-Carlo noise separates
them and they must agree to float32 precision.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pyro
import pytest
import torch
from conftest import pyro_pinned, tiny_config
from numpyro.infer import TraceMeanField_ELBO as NumPyroMeanFieldELBO
from pyro.infer import TraceMeanField_ELBO

from guides.flax_nets import params_from_torch
from zoo import registry
from zoo.data import load_dataset
from zoo.numpyro_backend.objectives import log_importance_weights as numpyro_log_weights
from zoo.pyro_backend.objectives import log_importance_weights as pyro_log_weights

NETWORKS = [
    pytest.param("bernoulli", (16,), "relu", id="bernoulli-relu"),
    pytest.param("gaussian", (16, 8), "tanh", id="gaussian-tanh-two-layers"),
]


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    dataset = load_dataset("digits", binarize="dynamic", limit_test=12)
    return dataset.x_test


def twins(likelihood, hidden, activation, x_dim):
    """The Pyro VAE with fresh random weights and the NumPyro VAE with a copy of them."""
    config = tiny_config("vae", likelihood=likelihood, hidden=list(hidden), activation=activation)
    torch.manual_seed(1)
    pyro_vae = registry.variant_class("vae", "pyro")(config, x_dim)
    numpyro_vae = registry.variant_class("vae", "numpyro")(config, x_dim)
    params = {
        "encoder$params": params_from_torch(pyro_vae.encoder),
        "decoder$params": params_from_torch(pyro_vae.decoder),
    }
    return config, pyro_vae, numpyro_vae, params


@pytest.mark.parametrize("likelihood,hidden,activation", NETWORKS)
def test_networks_agree(x, likelihood, hidden, activation):
    config, pyro_vae, numpyro_vae, params = twins(likelihood, hidden, activation, x.shape[1])
    with torch.no_grad():
        loc, scale = pyro_vae.encoder(torch.as_tensor(x))
        decoded = pyro_vae.decode(loc)
    np.testing.assert_allclose(numpyro_vae.encode(params, jnp.asarray(x)), loc.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(numpyro_vae.decode(params, jnp.asarray(loc.numpy())), decoded.numpy(), rtol=1e-5, atol=1e-5)
    flax_scale = numpyro_vae.apply(params, "encoder", numpyro_vae.encoder, jnp.asarray(x))[1]
    np.testing.assert_allclose(flax_scale, scale.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("likelihood,hidden,activation", NETWORKS)
def test_log_weights_agree_at_the_same_z(x, likelihood, hidden, activation):
    config, pyro_vae, numpyro_vae, params = twins(likelihood, hidden, activation, x.shape[1])
    z = np.random.default_rng(0).normal(size=(len(x), config.z_dim)).astype(np.float32)

    with torch.no_grad():
        torch_z = torch.as_tensor(z).reshape(1, 1, *z.shape)  # the particle plate's shape
        pyro_log_w = pyro_log_weights(pyro_vae.model, pyro_pinned(pyro_vae.guide, torch_z), 1, x=torch.as_tensor(x))
    # Substituting "z" with the parameters pins the NumPyro guide's draw.
    numpyro_log_w = numpyro_log_weights(
        numpyro_vae.model, numpyro_vae.guide, {**params, "z": jnp.asarray(z)}, jax.random.PRNGKey(0), 1, x=jnp.asarray(x)
    )
    assert pyro_log_w.shape == numpyro_log_w.shape == (1, len(x))
    np.testing.assert_allclose(np.asarray(numpyro_log_w), pyro_log_w.numpy(), rtol=1e-6, atol=1e-4)
    # The pinned z really is used: a different z gives different weights.
    other = numpyro_log_weights(
        numpyro_vae.model, numpyro_vae.guide, {**params, "z": jnp.asarray(z) + 1.0}, jax.random.PRNGKey(0), 1, x=jnp.asarray(x)
    )
    assert np.all(np.abs(np.asarray(other) - pyro_log_w.numpy()) > 1e-3)


@pytest.mark.parametrize("likelihood,hidden,activation", NETWORKS)
def test_analytic_kl_elbo_agrees(x, likelihood, hidden, activation):
    """The training loss of the VAE (TraceMeanField_ELBO, vae.4 with vae.5) in both
    backends at one shared z."""
    config, pyro_vae, numpyro_vae, params = twins(likelihood, hidden, activation, x.shape[1])
    z = np.random.default_rng(1).normal(size=(len(x), config.z_dim)).astype(np.float32)
    pyro.clear_param_store()
    with torch.no_grad():
        pyro_loss = TraceMeanField_ELBO().loss(pyro_vae.model, pyro_pinned(pyro_vae.guide, torch.as_tensor(z)), x=torch.as_tensor(x))
    numpyro_loss = NumPyroMeanFieldELBO().loss(
        jax.random.PRNGKey(0), {**params, "z": jnp.asarray(z)}, numpyro_vae.model, numpyro_vae.guide, x=jnp.asarray(x)
    )
    assert np.isfinite(pyro_loss)
    assert float(numpyro_loss) == pytest.approx(pyro_loss, rel=1e-5)
