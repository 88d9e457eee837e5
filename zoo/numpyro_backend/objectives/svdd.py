"""The Deep SVDD term (NumPyro), the twin of :mod:`zoo.pyro_backend.objectives.svdd`."""

from __future__ import annotations

import jax.numpy as jnp
from numpyro import handlers
from numpyro.infer import TraceMeanField_ELBO

# --- SVDD (see zoo.pyro_backend.objectives for the conventions) ---------------


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


