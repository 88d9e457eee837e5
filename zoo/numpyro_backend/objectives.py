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


# --- SVDD (see zoo.pyro_backend.objectives for the conventions) ---------------
# Imported here so that this section stands on its own.
from numpyro.infer import TraceMeanField_ELBO  # noqa: E402


def svdd_distance(z_mean, centre):
    """(vaesvdd.5) ``||mu - c||^2`` per datapoint: (..., d), (d,) -> (...)."""
    return jnp.sum((z_mean - centre) ** 2, axis=-1)


def svdd_centre(z_means, eps: float = 0.1):
    """(vaesvdd.6) Mean of ``z_means`` (N, d), coordinates within ``eps`` of 0 pushed to ``+-eps``."""
    c = z_means.mean(0)
    return jnp.where(jnp.abs(c) < eps, jnp.where(c < 0, -eps, eps), c)


class SVDDTraceMeanField_ELBO(TraceMeanField_ELBO):
    """(vaesvdd.4) ``-ELBO + weight * sum_b ||E_q[z|x_b] - c||^2``.

    The NumPyro loop is pure and jit-compiled, so ``c`` and ``weight`` cannot be read
    from an object: they are keyword arguments of the loss (``svdd_centre``,
    ``svdd_weight``), passed by ``SVI.update`` from the variant's state. The mean is
    read from the guide's site ``site``, as in the Pyro twin.
    """

    def __init__(self, site: str = "z", **kwargs):
        super().__init__(**kwargs)
        self.site = site

    def svdd_term(self, rng_key, param_map, guide, centre, weight, *args, **kwargs):
        seeded_guide = handlers.seed(handlers.substitute(guide, data=param_map), rng_key)
        z_mean = handlers.trace(seeded_guide).get_trace(*args, **kwargs)[self.site]["fn"].mean
        return weight * svdd_distance(z_mean, centre).sum()

    def loss_with_mutable_state(self, rng_key, param_map, model, guide, *args, svdd_centre, svdd_weight, **kwargs):
        result = super().loss_with_mutable_state(rng_key, param_map, model, guide, *args, **kwargs)
        term = self.svdd_term(rng_key, param_map, guide, svdd_centre, svdd_weight, *args, **kwargs)
        return {**result, "loss": result["loss"] + term}


# --- Fisher information (see zoo.pyro_backend.objectives for the conventions) ---

# Imported here so that this section stands on its own.
from numpyro.infer import TraceMeanField_ELBO  # noqa: E402,F811


def gaussian_fisher_information(scale, event_dim: int = 1):
    """(fae.3) ``J = sum sigma^-2`` over the last ``event_dim`` dims, batch-shaped."""
    precision = scale**-2.0
    return precision.sum(axis=tuple(range(-event_dim, 0))) if event_dim else precision


def location_fisher_information(fn):
    """(fae.3) ``J`` of a site's Gaussian, unwrapping ``Independent``/``MaskedDistribution``."""
    base = fn
    while not isinstance(base, dist.Normal):
        if not hasattr(base, "base_dist"):
            raise TypeError(f"the Fisher information of the location needs a Normal site, got {type(fn).__name__}")
        base = base.base_dist
    # NumPyro keeps a scalar scale unbroadcast.
    scale = jnp.broadcast_to(base.scale, fn.batch_shape + fn.event_shape)
    return gaussian_fisher_information(scale, fn.event_dim)


def fisher_penalty(information, target: float, weight: float):
    """(fae.4) ``weight * |mean_b J_b - target|``: one value for the minibatch."""
    return weight * jnp.abs(information.mean() - target)


class FisherPenalisedELBO(TraceMeanField_ELBO):
    """(fae.4) The analytic-KL ELBO plus the FAE's Fisher penalties (the Pyro twin's math).

    NumPyro's ELBO does not hand out its traces, so this loss traces the guide
    itself, reads ``J(z)`` from it and ``J(x')`` from the model replayed on it, and
    then lets ``TraceMeanField_ELBO`` compute the ELBO with the guide *replayed on
    the same trace*: both terms see the same draw of z, and the gradient flows
    through that draw (it is a function of the parameters). One particle.
    """

    def __init__(self, target_z: float, weight_z: float, target_x: float, weight_x: float,
                 latent: str = "z", observed: str = "x"):
        super().__init__(num_particles=1)
        self.target_z, self.weight_z = target_z, weight_z
        self.target_x, self.weight_x = target_x, weight_x
        self.latent, self.observed = latent, observed

    def fisher_terms(self, model_trace, guide_trace):
        """The penalties summed over the minibatch (B times the batch value)."""
        information_z = location_fisher_information(guide_trace[self.latent]["fn"])
        penalty = fisher_penalty(information_z, self.target_z, self.weight_z)
        if self.weight_x:
            information_x = location_fisher_information(model_trace[self.observed]["fn"])
            penalty = penalty + fisher_penalty(information_x, self.target_x, self.weight_x)
        return information_z.size * penalty

    def loss_with_mutable_state(self, rng_key, param_map, model, guide, *args, **kwargs):
        guide_key, model_key, elbo_key = jax.random.split(rng_key, 3)
        seeded_guide = handlers.seed(handlers.substitute(guide, data=param_map), guide_key)
        guide_trace = handlers.trace(seeded_guide).get_trace(*args, **kwargs)
        seeded_model = handlers.seed(handlers.substitute(model, data=param_map), model_key)
        model_trace = handlers.trace(handlers.replay(seeded_model, guide_trace)).get_trace(*args, **kwargs)
        result = super().loss_with_mutable_state(
            elbo_key, param_map, model, handlers.replay(guide, guide_trace), *args, **kwargs
        )
        return {**result, "loss": result["loss"] + self.fisher_terms(model_trace, guide_trace)}
