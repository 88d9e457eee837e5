"""Code-recovery (InfoGAN-style) mutual-information terms (NumPyro), the twin of
:mod:`zoo.pyro_backend.objectives.mutual_information`."""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
from numpyro.infer import TraceMeanField_ELBO

__all__ = ["RegularisedELBO", "code_regression_loss"]


def code_regression_loss(predicted, target, step_weights: Sequence[float]):
    """``sum_t w_t ||predicted_t - target_t||^2`` over T = len(step_weights) blocks, summed."""
    steps = len(step_weights)
    squared = jnp.square(predicted - target).reshape(*predicted.shape[:-1], steps, -1).sum(-1)
    return jnp.sum(squared * jnp.asarray(step_weights))


class RegularisedELBO(TraceMeanField_ELBO):
    """``-ELBO + weight * regulariser(params, rng_key, x)``; ``x`` is the keyword ``observed``."""

    def __init__(self, regulariser: Callable, weight: float, observed: str = "x"):
        super().__init__(num_particles=1)
        self.regulariser, self.weight, self.observed = regulariser, weight, observed

    def loss_with_mutable_state(self, rng_key, param_map, model, guide, *args, **kwargs):
        elbo_key, term_key = jax.random.split(rng_key)
        result = super().loss_with_mutable_state(elbo_key, param_map, model, guide, *args, **kwargs)
        term = self.weight * self.regulariser(param_map, term_key, kwargs[self.observed])
        return {**result, "loss": result["loss"] + term}
