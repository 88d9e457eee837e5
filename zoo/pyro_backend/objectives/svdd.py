"""The Deep SVDD term on the encoder mean (Pyro), for VAE-SVDD."""

from __future__ import annotations

import pyro
import torch

# --- SVDD --------------------------------------------------------------------
# Used by VAE-SVDD (Deep SVDD of Ruff et al. 2018 on the encoder mean). The term is
# the squared distance of the guide's mean E_q[z|x] = mu_phi(x) to a fixed centre c,
# summed over the minibatch like the ELBO. It acts on the mean, not on a sampled z:
# penalising z would add tr Sigma and shrink the posterior.


def svdd_distance(z_mean: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """(vaesvdd.5) ``||mu - c||^2`` per datapoint: (..., d), (d,) -> (...)."""
    return (z_mean - centre).pow(2).sum(-1)


def svdd_centre(z_means: torch.Tensor, eps: float = 0.1) -> torch.Tensor:
    """(vaesvdd.6) The centre ``c``: the mean of ``z_means`` (N, d), with every
    coordinate closer to 0 than ``eps`` pushed to ``+-eps`` (sign kept, 0 -> +eps).

    Ruff et al. push small coordinates away from 0 because a network can map
    everything onto a centre at the origin trivially (zero weights).
    """
    c = z_means.mean(0)
    small = c.abs() < eps
    return torch.where(small, torch.where(c < 0, -eps, eps).to(c), c)


class SVDDTraceMeanField_ELBO(pyro.infer.TraceMeanField_ELBO):
    """(vaesvdd.4) ``-ELBO + weight * sum_b ||E_q[z|x_b] - c||^2``.

    ``centre`` and ``weight`` are callables read at every step, so the variant can
    keep ``c`` in its state (a module buffer, checkpointed) and switch the term on
    after its warm-up. The mean is read from the guide's site ``site``: its
    distribution's ``.mean`` is ``mu_phi(x)`` for the zoo's Gaussian encoders.
    """

    def __init__(self, centre, weight, site: str = "z", **kwargs):
        super().__init__(**kwargs)
        self.centre = centre
        self.weight = weight
        self.site = site

    def svdd_term(self, guide_trace) -> torch.Tensor:
        z_mean = guide_trace.nodes[self.site]["fn"].mean
        return self.weight() * svdd_distance(z_mean, self.centre()).sum()

    def _differentiable_loss_particle(self, model_trace, guide_trace):
        loss, surrogate_loss = super()._differentiable_loss_particle(model_trace, guide_trace)
        term = self.svdd_term(guide_trace)
        return loss + term.detach().item(), surrogate_loss + term


