"""The IWAE (zoo/iwae): its loss is the k-sample bound (iwae.1) per datapoint,
summed over the minibatch, in both backends.

Pyro: the zoo's ImportanceWeightedELBO is compared with a hand computation of
``sum_n [logsumexp_i log w_ni - log k]`` at the very z it drew. NumPyro: the
loss is RenyiELBO(alpha=0), whose draws cannot be pinned per particle, so its
expectation is compared with the per-datapoint bound, and shown to differ from the
bound of the whole minibatch (what Pyro's RenyiELBO computes, pyro issue #3289).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from conftest import flax_params, tiny_config
from pyro import poutine
from scipy.special import logsumexp
from scipy.stats import norm

from zoo import registry
from zoo.data import load_dataset
from zoo.numpyro_backend.objectives import log_importance_weights as numpyro_log_weights


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return load_dataset("digits", binarize="dynamic", limit_test=8).x_test


def log_weights_by_hand(x, z, encoder_output, logits) -> np.ndarray:
    """``log p(z) + log p(x|z) - log q(z|x)`` (iwae.1) with scipy, shape (k, B)."""
    loc, scale = (np.asarray(a, np.float64) for a in encoder_output)
    z, logits = np.asarray(z, np.float64), np.asarray(logits, np.float64)
    log_prior = norm.logpdf(z).sum(-1)
    log_likelihood = np.sum(x * logits - np.logaddexp(0.0, logits), axis=-1)
    log_q = norm.logpdf(z, loc, scale).sum(-1)
    return log_prior + log_likelihood - log_q


def test_pyro_loss_is_the_per_datapoint_bound(x):
    config = tiny_config("iwae", k=6)
    iwae = registry.variant_class("iwae", "pyro")(config, x.shape[1])
    objective = iwae.objective()
    assert objective.num_particles == 6

    traced_guide = poutine.trace(iwae.guide)  # keeps the z the loss drew
    loss = objective.differentiable_loss(iwae.model, traced_guide, x=torch.as_tensor(x))
    z = traced_guide.trace.nodes["z"]["value"].detach()  # (k, 1, B, d)
    assert z.shape == (6, 1, len(x), config.z_dim)
    z = z[:, 0]
    with torch.no_grad():
        encoder_output = iwae.encoder(torch.as_tensor(x))
        logits = iwae.decoder(z)
    log_w = log_weights_by_hand(x, z, encoder_output, logits)  # (k, B)
    expected = -np.sum(logsumexp(log_w, axis=0) - np.log(6))
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    # It is not the ELBO (the mean of the log weights) nor the bound of the whole batch.
    assert abs(loss.item() + log_w.mean(0).sum()) > 0.1
    assert abs(loss.item() + (logsumexp(log_w.sum(1)) - np.log(6))) > 0.1


def test_pyro_loss_gradient_flows_to_both_networks(x):
    iwae = registry.variant_class("iwae", "pyro")(tiny_config("iwae"), x.shape[1])
    loss = iwae.objective().differentiable_loss(iwae.model, iwae.guide, x=torch.as_tensor(x))
    loss.backward()
    for net in (iwae.encoder, iwae.decoder):
        assert all(p.grad is not None and torch.any(p.grad != 0) for p in net.parameters())


def test_numpyro_loss_is_the_per_datapoint_bound_on_average(x):
    k, repeats = 5, 400
    config = tiny_config("iwae", k=k)
    iwae = registry.variant_class("iwae", "numpyro")(config, x.shape[1])
    params = flax_params(iwae, x.shape[1])
    objective = iwae.objective()
    assert objective.num_particles == k

    @jax.jit
    def draws(key):
        loss_key, weights_key = jax.random.split(key)
        loss = objective.loss(loss_key, params, iwae.model, iwae.guide, x=jnp.asarray(x))
        log_w = numpyro_log_weights(iwae.model, iwae.guide, params, weights_key, k, x=jnp.asarray(x))
        return loss, log_w

    losses, log_w = jax.vmap(draws)(jax.random.split(jax.random.PRNGKey(1), repeats))
    losses, log_w = np.asarray(losses, np.float64), np.asarray(log_w, np.float64)  # (R,), (R, k, B)
    per_datapoint = -(logsumexp(log_w, axis=1) - np.log(k)).sum(-1)  # (R,)
    whole_batch = -(logsumexp(log_w.sum(-1), axis=1) - np.log(k))  # (R,)
    error = np.sqrt(losses.var() / repeats + per_datapoint.var() / repeats)
    assert abs(losses.mean() - per_datapoint.mean()) < 4 * error
    assert abs(losses.mean() - whole_batch.mean()) > 10 * error
