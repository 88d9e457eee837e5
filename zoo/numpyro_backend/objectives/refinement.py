"""Stage-wise refinement terms with stopped gradients (NumPyro), the twin of
:mod:`zoo.pyro_backend.objectives.refinement`.

Refiners are callables ``f(params, x)``: the refiner networks' parameters are in
the SVI parameter dict (the model registers them), and the term applies them.
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
from numpyro import handlers
from numpyro.infer import TraceMeanField_ELBO

__all__ = ["RefinementELBO", "reconstruction_error", "refined_stages"]

LOSSES = ("l1", "l2")


def reconstruction_error(x, x_hat, kind: str = "l1"):
    """``sum_i |x_i - x_hat_i|`` (l1) or ``sum_i (x_i - x_hat_i)^2`` (l2) over the last axis."""
    if kind == "l1":
        return jnp.abs(x - x_hat).sum(-1)
    if kind == "l2":
        return jnp.square(x - x_hat).sum(-1)
    raise ValueError(f"unknown reconstruction loss {kind!r}; choose one of {LOSSES}")


def refined_stages(params, coarse, refiners: Sequence[Callable], stop_gradient: bool = True) -> list:
    """``[x_2, ..., x_S]`` from ``x_1 = coarse``, through ``lax.stop_gradient`` by default."""
    stages, current = [], jax.lax.stop_gradient(coarse) if stop_gradient else coarse
    for refine in refiners:
        current = refine(params, current)
        stages.append(current)
    return stages


class RefinementELBO(TraceMeanField_ELBO):
    """(msvae.4) the analytic-KL ELBO of the model plus the refinement losses (the Pyro twin's math).

    As :class:`zoo.numpyro_backend.objectives.FisherPenalisedELBO`: the guide is
    traced once, the model replayed on it gives ``x_1`` (a deterministic site),
    and ``TraceMeanField_ELBO`` scores the guide *replayed on that trace*, so both
    parts see the same z. One particle.
    """

    def __init__(self, refiners: Sequence[Callable], weight: float = 1.0, kind: str = "l1",
                 stop_gradient: bool = True, coarse: str = "x1", observed: str = "x"):
        super().__init__(num_particles=1)
        if kind not in LOSSES:
            raise ValueError(f"unknown reconstruction loss {kind!r}; choose one of {LOSSES}")
        self.refiners, self.weight, self.kind = tuple(refiners), weight, kind
        self.stop_gradient, self.coarse, self.observed = stop_gradient, coarse, observed

    def refinement_term(self, params, model_trace):
        """``lambda sum_s l(x, x_s)`` summed over the minibatch."""
        x = model_trace[self.observed]["value"]
        coarse = model_trace[self.coarse]["value"]
        stages = refined_stages(params, coarse, self.refiners, self.stop_gradient)
        return self.weight * sum((reconstruction_error(x, x_s, self.kind).sum() for x_s in stages), jnp.zeros(()))

    def loss_with_mutable_state(self, rng_key, param_map, model, guide, *args, **kwargs):
        if not self.refiners or self.weight == 0:
            return super().loss_with_mutable_state(rng_key, param_map, model, guide, *args, **kwargs)
        guide_key, model_key, elbo_key = jax.random.split(rng_key, 3)
        seeded_guide = handlers.seed(handlers.substitute(guide, data=param_map), guide_key)
        guide_trace = handlers.trace(seeded_guide).get_trace(*args, **kwargs)
        seeded_model = handlers.seed(handlers.substitute(model, data=param_map), model_key)
        model_trace = handlers.trace(handlers.replay(seeded_model, guide_trace)).get_trace(*args, **kwargs)
        result = super().loss_with_mutable_state(
            elbo_key, param_map, model, handlers.replay(guide, guide_trace), *args, **kwargs
        )
        return {**result, "loss": result["loss"] + self.refinement_term(param_map, model_trace)}
