"""Stage-wise refinement terms with stopped gradients (Pyro): the MSVAE's stage 2.

- :func:`reconstruction_error`: per-datapoint l1 or squared l2 error over pixels;
- :class:`RefinementELBO`: the analytic-KL ELBO of the model (stage 1) plus
  ``sum_s lambda * l(x, x_s)`` for refiners ``x_s = f_s(x_{s-1})`` fed from the
  model's recorded stage-1 mean ``x_1``, with the gradient stopped at ``x_1`` by
  default (msvae.4).

The model observes x once (stage 1's likelihood); the refinement is a loss, not a
second observation, so importance weights and log-likelihoods stay those of the
model. All losses are sums over the minibatch.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from pyro.infer import TraceMeanField_ELBO

__all__ = ["RefinementELBO", "reconstruction_error", "refined_stages"]

LOSSES = ("l1", "l2")


def reconstruction_error(x: torch.Tensor, x_hat: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """``sum_i |x_i - x_hat_i|`` (l1) or ``sum_i (x_i - x_hat_i)^2`` (l2) over the last axis."""
    if kind == "l1":
        return (x - x_hat).abs().sum(-1)
    if kind == "l2":
        return (x - x_hat).pow(2).sum(-1)
    raise ValueError(f"unknown reconstruction loss {kind!r}; choose one of {LOSSES}")


def refined_stages(coarse: torch.Tensor, refiners: Sequence[Callable], stop_gradient: bool = True) -> list:
    """``[x_2, ..., x_S]`` with ``x_s = f_s(x_{s-1})`` from ``x_1 = coarse``; with
    ``stop_gradient`` the chain starts from ``sg[x_1]``, so no refinement loss
    reaches stage 1 (encoder and stage-1 decoder)."""
    stages, current = [], coarse.detach() if stop_gradient else coarse
    for refine in refiners:
        current = refine(current)
        stages.append(current)
    return stages


class RefinementELBO(TraceMeanField_ELBO):
    """(msvae.4) ``-ELBO_1 + lambda sum_{s>=2} l(x, f_s(...f_2(sg[x_1])))`` per datapoint, summed.

    ``coarse`` names the model's deterministic site holding stage 1's mean
    ``x_1 = f_theta1(z)`` at the guide's draw of z, ``observed`` the data site.
    The term is added in ``_differentiable_loss_particle``, so ``loss``,
    ``loss_and_grads`` and ``differentiable_loss`` all include it.
    """

    def __init__(self, refiners: Sequence[Callable], weight: float = 1.0, kind: str = "l1",
                 stop_gradient: bool = True, coarse: str = "x1", observed: str = "x", **kwargs):
        super().__init__(**kwargs)
        if kind not in LOSSES:
            raise ValueError(f"unknown reconstruction loss {kind!r}; choose one of {LOSSES}")
        self.refiners, self.weight, self.kind = tuple(refiners), weight, kind
        self.stop_gradient, self.coarse, self.observed = stop_gradient, coarse, observed

    def refinement_term(self, model_trace) -> torch.Tensor:
        """``lambda sum_s l(x, x_s)`` summed over the minibatch (and particle dims)."""
        x = model_trace.nodes[self.observed]["value"]
        coarse = model_trace.nodes[self.coarse]["value"]
        total = coarse.new_zeros(())
        for x_s in refined_stages(coarse, self.refiners, self.stop_gradient):
            total = total + reconstruction_error(x, x_s, self.kind).sum()
        return self.weight * total

    def _differentiable_loss_particle(self, model_trace, guide_trace):
        loss, surrogate_loss = super()._differentiable_loss_particle(model_trace, guide_trace)
        if not self.refiners or self.weight == 0:
            return loss, surrogate_loss
        term = self.refinement_term(model_trace)
        return loss + term.detach().item(), surrogate_loss + term
