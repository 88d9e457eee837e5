"""Importance-sampling proposals other than the guide (NumPyro), the twin of
:mod:`zoo.pyro_backend.objectives.proposal` (see there for the mathematics)."""

from __future__ import annotations

import jax.numpy as jnp
import numpyro.distributions as dist
from numpyro.primitives import Messenger

PROPOSALS = ("guide", "defensive", "prior")
DEFENSIVE_SCALE = 0.3


def proposal_distribution(loc, scale, kind: str):
    """The proposal for one Normal site of the guide, elementwise (no event dims)."""
    if kind == "prior":
        return dist.Normal(jnp.zeros_like(loc), jnp.ones_like(scale))
    if kind != "defensive":
        raise ValueError(f"unknown proposal {kind!r}; choose one of {', '.join(PROPOSALS)}")
    loc, scale = jnp.broadcast_arrays(loc, scale)
    locs = jnp.stack([loc, loc, jnp.zeros_like(loc)], axis=-1)
    scales = jnp.stack([scale, jnp.full_like(scale, DEFENSIVE_SCALE), jnp.ones_like(scale)], axis=-1)
    mixing = dist.Categorical(logits=jnp.zeros(locs.shape, dtype=locs.dtype))
    return dist.MixtureSameFamily(mixing, dist.Normal(locs, scales))


class ProposalMessenger(Messenger):
    """Replace the guide's Normal latent sites by ``proposal_distribution(kind)``;
    sites replayed into the model (value already set) and observed ones stay."""

    def __init__(self, fn=None, kind: str = "defensive"):
        if kind not in PROPOSALS:
            raise ValueError(f"unknown proposal {kind!r}; choose one of {', '.join(PROPOSALS)}")
        self.kind = kind
        super().__init__(fn)

    def process_message(self, msg):
        if msg["type"] != "sample" or self.kind == "guide" or msg["is_observed"] or msg["value"] is not None:
            return
        fn, event_dims = msg["fn"], 0
        if isinstance(fn, dist.Independent):
            fn, event_dims = fn.base_dist, fn.reinterpreted_batch_ndims
        if type(fn) is not dist.Normal:
            return
        proposal = proposal_distribution(fn.loc, fn.scale, self.kind)
        msg["fn"] = proposal.to_event(event_dims) if event_dims else proposal


__all__ = ["PROPOSALS", "DEFENSIVE_SCALE", "proposal_distribution", "ProposalMessenger"]
