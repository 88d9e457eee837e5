"""Code-recovery (InfoGAN-style) mutual-information terms (Pyro): the CRVAE's MI regulariser.

A head ``r(x^)`` regresses the code that generated an image; with a fixed-variance
Gaussian ``q(c | x^)`` its squared error is, up to constants, minus the variational
lower bound ``E log q(c | x^) <= I(c; x^) - H(c)`` (Chen et al. 2016), so
minimising it raises a lower bound on the mutual information between code and image.

- :func:`code_regression_loss`: ``sum_t w_t ||r_t - c_t||^2`` over T code blocks;
- :class:`RegularisedELBO`: the analytic-KL ELBO plus ``weight * regulariser(x)``.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from pyro.infer import TraceMeanField_ELBO

__all__ = ["RegularisedELBO", "code_regression_loss"]


def code_regression_loss(predicted: torch.Tensor, target: torch.Tensor, step_weights: Sequence[float]) -> torch.Tensor:
    """``sum_t w_t ||predicted_t - target_t||^2`` with the last axis split into T = len(step_weights)
    equal blocks, summed over every leading dimension."""
    steps = len(step_weights)
    squared = (predicted - target).pow(2).reshape(*predicted.shape[:-1], steps, -1).sum(-1)
    return (squared * squared.new_tensor(list(step_weights))).sum()


class RegularisedELBO(TraceMeanField_ELBO):
    """``-ELBO + weight * regulariser(x)``, summed over the minibatch.

    ``regulariser(x)`` gets the observed data of the model trace (site
    ``observed``) and returns a scalar (a sum over the batch); it draws its own
    noise. Added in ``_differentiable_loss_particle``, so ``loss``,
    ``loss_and_grads`` and ``differentiable_loss`` agree.
    """

    def __init__(self, regulariser: Callable[[torch.Tensor], torch.Tensor], weight: float, observed: str = "x", **kwargs):
        super().__init__(**kwargs)
        self.regulariser, self.weight, self.observed = regulariser, weight, observed

    def _differentiable_loss_particle(self, model_trace, guide_trace):
        loss, surrogate_loss = super()._differentiable_loss_particle(model_trace, guide_trace)
        term = self.weight * self.regulariser(model_trace.nodes[self.observed]["value"])
        return loss + term.detach().item(), surrogate_loss + term
