"""Free bits (Kingma et al. 2016, appendix; Chen et al. 2017, VLAE) (NumPyro), the
twin of :mod:`zoo.pyro_backend.objectives.free_bits` (read it for the objective).

- :func:`elbo_terms`: per-datapoint ``log p(x|z)`` and, per latent site,
  ``log q(z|x) - log p(z)`` from one seeded draw of the guide;
- :class:`FreeBitsELBO`: a NumPyro ``ELBO`` that ``SVI`` trains with.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from numpyro import handlers
from numpyro.infer.elbo import ELBO

from zoo.numpyro_backend.objectives.importance import _is_factor, site_log_prob

__all__ = ["elbo_terms", "FreeBitsELBO"]


def elbo_terms(model, guide, params, rng_key, **batch):
    """``(reconstruction, {site: kl})``, each of shape (B,), from one draw of the guide."""
    guide_key, model_key = jax.random.split(rng_key)
    seeded_guide = handlers.seed(handlers.substitute(guide, data=params), guide_key)
    guide_trace = handlers.trace(seeded_guide).get_trace(**batch)
    seeded_model = handlers.seed(handlers.substitute(model, data=params), model_key)
    model_trace = handlers.trace(handlers.replay(seeded_model, guide_trace)).get_trace(**batch)
    reconstruction = 0.0
    kl = {}
    for name, site in model_trace.items():
        if site["type"] != "sample" or _is_factor(site):
            continue
        if site["is_observed"]:
            reconstruction = reconstruction + site_log_prob(site)
        else:
            kl[name] = site_log_prob(guide_trace[name]) - site_log_prob(site)
    return reconstruction, kl


class FreeBitsELBO(ELBO):
    """The free-bits objective; ``floor`` in nats per datapoint, one number for every
    latent site or a dict ``{site: floor}``."""

    def __init__(self, floor: float | dict[str, float] = 0.0):
        super().__init__(num_particles=1)
        self.floor = floor

    def floor_of(self, site: str) -> float:
        if isinstance(self.floor, dict):
            return float(self.floor.get(site, 0.0))
        return float(self.floor)

    def loss_with_mutable_state(self, rng_key, param_map, model, guide, *args, **kwargs):
        if args:
            raise TypeError("FreeBitsELBO takes the batch as keyword arguments")
        reconstruction, kl = elbo_terms(model, guide, param_map, rng_key, **kwargs)
        batch_size = reconstruction.size
        loss = -jnp.sum(reconstruction)
        for site, kl_site in kl.items():
            loss = loss + batch_size * jnp.maximum(jnp.mean(kl_site), self.floor_of(site))
        return {"loss": loss, "mutable_state": None}
