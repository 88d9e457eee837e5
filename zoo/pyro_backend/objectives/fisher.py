"""Fisher-information penalties (Pyro), for the Fisher autoencoder."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch

# --- Fisher information --------------------------------------------------------
# Used by the FAE. For the location of a Gaussian
# N(mu, diag sigma^2) the Fisher information matrix is diag(sigma^-2); the zoo's
# scalar J is its trace, J = sum_j sigma_j^-2 = E_q ||d/dmu log q(z)||^2 (fae.3).
# The penalty compares the minibatch average of J with a target F: it is a
# batch-level term, so it enters the summed loss once per minibatch, times the
# batch size B, which makes the reported per-datapoint loss the card's objective.


def gaussian_fisher_information(scale: torch.Tensor, event_dim: int = 1) -> torch.Tensor:
    """(fae.3) ``J = sum sigma^-2`` over the last ``event_dim`` dims: the trace of the
    Fisher information of a Gaussian's location, one value per batch element."""
    precision = scale.pow(-2)
    return precision.sum(dim=tuple(range(-event_dim, 0))) if event_dim else precision


def location_fisher_information(fn) -> torch.Tensor:
    """(fae.3) ``J`` of a site's Gaussian, batch-shaped.

    Unwraps ``Independent`` (and any other ``base_dist`` wrapper) down to the
    ``Normal`` and sums its precision over the site's event dims.
    """
    base = fn
    while not isinstance(base, dist.Normal):
        if not hasattr(base, "base_dist"):
            raise TypeError(f"the Fisher information of the location needs a Normal site, got {type(fn).__name__}")
        base = base.base_dist
    scale = base.scale.expand(fn.batch_shape + fn.event_shape)
    return gaussian_fisher_information(scale, fn.event_dim)


def fisher_penalty(information: torch.Tensor, target: float, weight: float) -> torch.Tensor:
    """(fae.4) ``weight * |mean_b J_b - target|``: one value for the minibatch."""
    return weight * (information.mean() - target).abs()


class FisherPenalisedELBO(pyro.infer.TraceMeanField_ELBO):
    """(fae.4) ``sum_b -ELBO(x_b) + B (lambda_z |J(z) - F_z| + lambda_x |J(x') - F_x|)``.

    The analytic-KL ELBO plus the FAE's two Fisher-information penalties, read
    from the traces Pyro already made: ``J(z)`` from the scale of the guide's
    site ``latent`` (``sigma_phi(x)``), ``J(x')`` from the scale of the model's
    observed site ``observed`` at the guide's draw of z (``sigma_theta(z)``).
    Both are averaged over the minibatch before the absolute value; a weight of 0 switches a term off.
    """

    def __init__(self, target_z: float, weight_z: float, target_x: float, weight_x: float,
                 latent: str = "z", observed: str = "x", **kwargs):
        super().__init__(**kwargs)
        self.target_z, self.weight_z = target_z, weight_z
        self.target_x, self.weight_x = target_x, weight_x
        self.latent, self.observed = latent, observed

    def fisher_terms(self, model_trace, guide_trace) -> torch.Tensor:
        """The penalties of one particle, summed over the minibatch (B times the batch value)."""
        information_z = location_fisher_information(guide_trace.nodes[self.latent]["fn"])
        batch_size = information_z.numel()
        penalty = fisher_penalty(information_z, self.target_z, self.weight_z)
        if self.weight_x:
            information_x = location_fisher_information(model_trace.nodes[self.observed]["fn"])
            penalty = penalty + fisher_penalty(information_x, self.target_x, self.weight_x)
        return batch_size * penalty

    def _differentiable_loss_particle(self, model_trace, guide_trace):
        loss, surrogate_loss = super()._differentiable_loss_particle(model_trace, guide_trace)
        penalty = self.fisher_terms(model_trace, guide_trace)
        return loss + penalty.detach().item(), surrogate_loss + penalty
