"""Importance weights and the IWAE bound (NumPyro), the twin of
:mod:`zoo.pyro_backend.objectives.importance`.

- :func:`log_importance_weights`: per-datapoint ``log p(x,z) - log q(z|x)`` for k
  particles (``vmap`` over particle keys).
- The IWAE bound itself is NumPyro's ``RenyiELBO(alpha=0, num_particles=k)``,
  which keeps the datapoint dimension since NumPyro PR #1608.
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
    """(iwae.3) per datapoint from log weights of shape (k, B)."""
    return jax.scipy.special.logsumexp(log_w, axis=0) - jnp.log(log_w.shape[0])


