"""Objective terms for the Pyro backend, each implemented once.

- :func:`log_importance_weights`: per-datapoint ``log w = log p(x,z) - log q(z|x)``
  for k particles, the quantity behind the IWAE bound and the IS log-likelihood.
- :class:`ImportanceWeightedELBO`: the IWAE bound (iwae.1) as a Pyro ``ELBO``.

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
    """(iwae.1) per datapoint: ``log (1/k) sum_i w_i`` from log weights of shape (k, B)."""
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


class ImportanceWeightedELBO(ELBO):
    """The k-sample importance-weighted bound of Burda et al. (iwae.1).

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


# --- MMD ---------------------------------------------------------------------
# Used by VFAE (between the sensitive groups' z1) and InfoVAE (between the
# aggregate posterior and the prior). The estimator is the squared distance of the
# kernel mean embeddings (a V-statistic): non-negative, and zero for identical
# samples. Weights make group selection a mask, so shapes stay fixed.


def gaussian_kernel(a: torch.Tensor, b: torch.Tensor, gamma: float) -> torch.Tensor:
    """``k(a, b) = exp(-gamma ||a - b||^2)`` for every pair: (n, d), (m, d) -> (n, m)."""
    return torch.exp(-gamma * torch.cdist(a, b).pow(2))


def mmd(a, b, gamma: float, a_weights=None, b_weights=None) -> torch.Tensor:
    """``|| sum_i u_i psi(a_i) - sum_j v_j psi(b_j) ||^2`` with the Gaussian kernel.

    ``a_weights``/``b_weights`` default to uniform (``1/n``); they need not be
    normalised (they are divided by their sum), and a zero weight drops a point.
    """
    u = torch.full(a.shape[:1], 1.0 / a.shape[0], device=a.device) if a_weights is None else a_weights / a_weights.sum()
    v = torch.full(b.shape[:1], 1.0 / b.shape[0], device=b.device) if b_weights is None else b_weights / b_weights.sum()
    return (
        u @ gaussian_kernel(a, a, gamma) @ u
        + v @ gaussian_kernel(b, b, gamma) @ v
        - 2 * u @ gaussian_kernel(a, b, gamma) @ v
    ).clamp_min(0.0)


def mmd_between_groups(z, group, gamma: float) -> torch.Tensor:
    """MMD between ``z[group == 0]`` and ``z[group == 1]`` (VFAE's penalty).

    Zero when either group is absent from the batch.
    """
    in_first = (group == 0).to(z.dtype)
    in_second = (group == 1).to(z.dtype)
    if in_first.sum() == 0 or in_second.sum() == 0:
        return z.new_zeros(())
    return mmd(z, z, gamma, in_first, in_second)


def random_fourier_features(z, gamma: float, num_features: int = 500, generator=None) -> torch.Tensor:
    """``psi(z) = sqrt(2/D) cos(W z + b)`` with ``E[psi(a).psi(b)] = exp(-gamma ||a-b||^2)``.

    ``W ~ N(0, 2 gamma I)``, ``b ~ U(0, 2 pi)`` (Rahimi & Recht 2007): the linear-time
    MMD of the VFAE paper for large batches.
    """
    d = z.shape[-1]
    weights = torch.randn(d, num_features, generator=generator, device=z.device) * math.sqrt(2 * gamma)
    phase = torch.rand(num_features, generator=generator, device=z.device) * 2 * math.pi
    return math.sqrt(2.0 / num_features) * torch.cos(z @ weights + phase)


def mmd_random_features(a, b, gamma: float, num_features: int = 500, generator=None) -> torch.Tensor:
    features = random_fourier_features(torch.cat([a, b]), gamma, num_features, generator)
    return (features[: len(a)].mean(0) - features[len(a) :].mean(0)).pow(2).sum()
