"""Objective terms for the NumPyro backend, each implemented once.

- :func:`log_importance_weights`: per-datapoint ``log p(x,z) - log q(z|x)`` for k
  particles (``vmap`` over particle keys).
- The IWAE bound itself is NumPyro's ``RenyiELBO(alpha=0, num_particles=k)``,
  which keeps the datapoint dimension since NumPyro PR #1608.

Losses are sums over the minibatch, as in :mod:`zoo.pyro_backend.objectives`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from numpyro import handlers


def _is_factor(site) -> bool:
    return isinstance(site["fn"], dist.distribution.Unit)


def site_log_prob(site):
    """log density summed over event dims, masked, unscaled (see the Pyro twin)."""
    log_p = site["fn"].log_prob(site["value"])
    if site.get("mask") is not None:
        log_p = log_p * site["mask"]
    return log_p


def _single_log_weight(model, guide, params, rng_key, kwargs):
    guide_key, model_key = jax.random.split(rng_key)
    seeded_guide = handlers.seed(handlers.substitute(guide, data=params), guide_key)
    guide_trace = handlers.trace(seeded_guide).get_trace(**kwargs)
    seeded_model = handlers.seed(handlers.substitute(model, data=params), model_key)
    model_trace = handlers.trace(handlers.replay(seeded_model, guide_trace)).get_trace(**kwargs)
    log_w = 0.0
    for site in model_trace.values():
        if site["type"] == "sample" and not _is_factor(site):
            log_w = log_w + site_log_prob(site)
    for site in guide_trace.values():
        if site["type"] == "sample" and not _is_factor(site) and not site["is_observed"]:
            log_w = log_w - site_log_prob(site)
    return log_w


def log_importance_weights(model, guide, params, rng_key, num_particles: int, **batch):
    """``log p(x, z_k) - log q(z_k | x)``, shape (k, B)."""
    keys = jax.random.split(rng_key, num_particles)
    return jax.vmap(lambda key: _single_log_weight(model, guide, params, key, batch))(keys)


def iwae_bound(log_w):
    """(iwae.1) per datapoint from log weights of shape (k, B)."""
    return jax.scipy.special.logsumexp(log_w, axis=0) - jnp.log(log_w.shape[0])


# --- MMD (see zoo.pyro_backend.objectives for the conventions) ----------------


def gaussian_kernel(a, b, gamma: float):
    """``k(a, b) = exp(-gamma ||a - b||^2)`` for every pair: (n, d), (m, d) -> (n, m)."""
    squared = jnp.sum(a**2, -1)[:, None] + jnp.sum(b**2, -1)[None, :] - 2 * a @ b.T
    return jnp.exp(-gamma * jnp.maximum(squared, 0.0))


def mmd(a, b, gamma: float, a_weights=None, b_weights=None):
    """Squared distance of Gaussian-kernel mean embeddings, with optional point weights."""
    u = jnp.full(a.shape[:1], 1.0 / a.shape[0]) if a_weights is None else a_weights / a_weights.sum()
    v = jnp.full(b.shape[:1], 1.0 / b.shape[0]) if b_weights is None else b_weights / b_weights.sum()
    value = u @ gaussian_kernel(a, a, gamma) @ u + v @ gaussian_kernel(b, b, gamma) @ v - 2 * u @ gaussian_kernel(a, b, gamma) @ v
    return jnp.maximum(value, 0.0)


def mmd_between_groups(z, group, gamma: float):
    """MMD between ``z[group == 0]`` and ``z[group == 1]``; zero if a group is absent.

    Masks instead of boolean indexing keep shapes static under ``jit``.
    """
    in_first = (group == 0).astype(z.dtype)
    in_second = (group == 1).astype(z.dtype)
    both_present = (in_first.sum() > 0) & (in_second.sum() > 0)
    safe_first = jnp.where(both_present, in_first, 1.0)
    safe_second = jnp.where(both_present, in_second, 1.0)
    return jnp.where(both_present, mmd(z, z, gamma, safe_first, safe_second), 0.0)


def random_fourier_features(z, gamma: float, rng_key, num_features: int = 500):
    d = z.shape[-1]
    weight_key, phase_key = jax.random.split(rng_key)
    weights = jax.random.normal(weight_key, (d, num_features)) * jnp.sqrt(2 * gamma)
    phase = jax.random.uniform(phase_key, (num_features,)) * 2 * jnp.pi
    return jnp.sqrt(2.0 / num_features) * jnp.cos(z @ weights + phase)


def mmd_random_features(a, b, gamma: float, rng_key, num_features: int = 500):
    features = random_fourier_features(jnp.concatenate([a, b]), gamma, rng_key, num_features)
    return jnp.sum((features[: len(a)].mean(0) - features[len(a) :].mean(0)) ** 2)
