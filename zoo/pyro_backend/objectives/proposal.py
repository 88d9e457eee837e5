"""Importance-sampling proposals other than the guide (Pyro), for evaluation.

The guide ``q(z|x)`` is the natural proposal of the importance-sampled
log-likelihood, and a bad one when it is much narrower than the posterior (an
MMD-VAE at alpha = 1 shrinks sigma(x) to its floor, VARIANTS.md §11): the
estimate is then a loose lower bound, and PSIS k-hat says so. Two proposals that
are valid for any encoder:

- ``"defensive"``: per latent coordinate, the mixture
  ``r(z_j|x) = 1/3 N(mu_j, sigma_j^2) + 1/3 N(mu_j, 0.3^2) + 1/3 N(0, 1)``
  (Hesterberg's defensive importance sampling): the weights ``p/r`` are bounded
  wherever the prior dominates, whatever the guide does;
- ``"prior"``: ``N(0, 1)`` per coordinate, the prior of every variant with a
  standard-normal ``p(z)`` (the authors' evaluation of the MMD-VAE). For a variant
  with another prior it is still a valid, usually poor, proposal.

:class:`ProposalMessenger` swaps every Normal latent site of the *guide* for the
chosen proposal while ``log_importance_weights`` traces it; the model's sites,
replayed from the guide, keep their own densities, so ``log w = log p(x, z) -
log r(z|x)`` with ``z ~ r``.
"""

from __future__ import annotations

import pyro.distributions as dist
import torch
from pyro.poutine.messenger import Messenger

PROPOSALS = ("guide", "defensive", "prior")
# The scale of the defensive mixture's middle component (VARIANTS.md §11).
DEFENSIVE_SCALE = 0.3


def proposal_distribution(loc: torch.Tensor, scale: torch.Tensor, kind: str) -> dist.Distribution:
    """The proposal for one Normal site of the guide, elementwise (no event dims)."""
    if kind == "prior":
        return dist.Normal(torch.zeros_like(loc), torch.ones_like(scale))
    if kind != "defensive":
        raise ValueError(f"unknown proposal {kind!r}; choose one of {', '.join(PROPOSALS)}")
    loc, scale = torch.broadcast_tensors(loc, scale)
    locs = torch.stack([loc, loc, torch.zeros_like(loc)], dim=-1)
    scales = torch.stack([scale, torch.full_like(scale, DEFENSIVE_SCALE), torch.ones_like(scale)], dim=-1)
    mixing = dist.Categorical(logits=torch.zeros(locs.shape, dtype=loc.dtype, device=loc.device))
    return dist.MixtureSameFamily(mixing, dist.Normal(locs, scales))


class ProposalMessenger(Messenger):
    """Replace the guide's Normal latent sites by ``proposal_distribution(kind)``.

    A guide's latent site is one that is neither observed nor already given a
    value: the model's sites, replayed from the guide trace, have their value set
    by ``poutine.replay`` (entered later, so it runs first) and are left alone.
    Non-Normal latent sites (an enumerated label) keep the guide's distribution.
    """

    def __init__(self, kind: str = "defensive"):
        if kind not in PROPOSALS:
            raise ValueError(f"unknown proposal {kind!r}; choose one of {', '.join(PROPOSALS)}")
        super().__init__()
        self.kind = kind

    def _pyro_sample(self, msg):
        if self.kind == "guide" or msg["is_observed"] or msg["value"] is not None:
            return
        fn, event_dims = msg["fn"], 0
        if isinstance(fn, dist.Independent):
            fn, event_dims = fn.base_dist, fn.reinterpreted_batch_ndims
        if type(fn) is not dist.Normal:
            return
        proposal = proposal_distribution(fn.loc, fn.scale, self.kind)
        msg["fn"] = proposal.to_event(event_dims) if event_dims else proposal


__all__ = ["PROPOSALS", "DEFENSIVE_SCALE", "proposal_distribution", "ProposalMessenger"]
