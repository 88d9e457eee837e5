"""Fisher-information penalties (NumPyro), the twin of :mod:`zoo.pyro_backend.objectives.fisher`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from numpyro import handlers
from numpyro.infer import TraceMeanField_ELBO

# --- Fisher information (see zoo.pyro_backend.objectives for the conventions) ---



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
