"""Importance weights and the IWAE bound (Pyro).

- :func:`log_importance_weights`: per-datapoint ``log w = log p(x,z) - log q(z|x)``
  for k particles, the quantity behind the IWAE bound and the IS log-likelihood.
- :class:`ImportanceWeightedELBO`: the IWAE bound (iwae.3) as a Pyro ``ELBO``.

All losses are sums over the minibatch (Pyro's ``Trace_ELBO`` convention); the
training loop divides by the batch size to report nats per datapoint.
"""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import ELBO

# Particles get their own plate left of every plate of the variants, which use
# dim=-1 for the data plate and may nest one more plate inside it.
PARTICLE_DIM = -3


def _is_factor(site) -> bool:
    return isinstance(site["fn"], dist.Unit)


def site_log_prob(site) -> torch.Tensor:
    """log density of a sample site summed over its event dims, masked, unscaled.

    ``poutine.scale`` reweights a training objective (InfoVAE's KL weight); the
    importance weights are those of the unscaled joint density.
    """
    log_p = site["fn"].log_prob(site["value"])
    if site["mask"] is not None:
        log_p = log_p * site["mask"]
    return log_p


def log_importance_weights(model, guide, num_particles: int, *args, **kwargs) -> torch.Tensor:
    """``log p(x, z_k) - log q(z_k | x)`` for ``num_particles`` draws, shape (k, B).

    The guide runs once under a vectorized particle plate, the model replays its
    draws. Factor sites (extra loss terms) are not part of the density and are
    skipped.
    """
    with pyro.plate("particles", num_particles, dim=PARTICLE_DIM):
        guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
    log_w = 0.0
    for site in model_trace.nodes.values():
        if site["type"] == "sample" and not _is_factor(site):
            log_w = log_w + site_log_prob(site)
    for site in guide_trace.nodes.values():
        if site["type"] == "sample" and not _is_factor(site) and not site["is_observed"]:
            log_w = log_w - site_log_prob(site)
    # (k, 1, B) with the particle plate at dim -3 and the data plate at -1.
    return log_w.reshape(num_particles, -1)


def iwae_bound(log_w: torch.Tensor) -> torch.Tensor:
    """(iwae.3) per datapoint: ``log (1/k) sum_i w_i`` from log weights of shape (k, B)."""
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


class ImportanceWeightedELBO(ELBO):
    """The k-sample importance-weighted bound of Burda et al. (iwae.3).

    Pyro's ``RenyiELBO(alpha=0)`` log-sum-exps the *whole trace*, i.e. the sum over
    a minibatch of log weights, which is not ``sum_n L_k(x_n)`` (pyro issue #3289).
    This loss keeps the datapoint dimension: log-sum-exp over the k particles of
    each datapoint, then the sum over the batch. With k=1 it equals ``Trace_ELBO``
    on the same noise draw.
    """

    def __init__(self, num_particles: int = 5):
        super().__init__(num_particles=num_particles)

    def _get_trace(self, model, guide, args, kwargs):  # pragma: no cover - unused
        raise NotImplementedError("the IWAE bound traces all particles at once")

    def differentiable_loss(self, model, guide, *args, **kwargs) -> torch.Tensor:
        log_w = log_importance_weights(model, guide, self.num_particles, *args, **kwargs)
        return -iwae_bound(log_w).sum()

    def loss(self, model, guide, *args, **kwargs) -> float:
        with torch.no_grad():
            return self.differentiable_loss(model, guide, *args, **kwargs).item()

    def loss_and_grads(self, model, guide, *args, **kwargs) -> float:
        loss = self.differentiable_loss(model, guide, *args, **kwargs)
        loss.backward()
        return loss.item()


