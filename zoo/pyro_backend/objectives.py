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
    u = torch.full(a.shape[:1], 1.0 / a.shape[0], dtype=a.dtype, device=a.device) if a_weights is None else a_weights / a_weights.sum()
    v = torch.full(b.shape[:1], 1.0 / b.shape[0], dtype=b.dtype, device=b.device) if b_weights is None else b_weights / b_weights.sum()
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
    weights = torch.randn(d, num_features, generator=generator, dtype=z.dtype, device=z.device) * math.sqrt(2 * gamma)
    phase = torch.rand(num_features, generator=generator, dtype=z.dtype, device=z.device) * 2 * math.pi
    return math.sqrt(2.0 / num_features) * torch.cos(z @ weights + phase)


def mmd_random_features(a, b, gamma: float, num_features: int = 500, generator=None) -> torch.Tensor:
    features = random_fourier_features(torch.cat([a, b]), gamma, num_features, generator)
    return (features[: len(a)].mean(0) - features[len(a) :].mean(0)).pow(2).sum()


# --- SVDD --------------------------------------------------------------------
# Used by VAE-SVDD (Deep SVDD of Ruff et al. 2018 on the encoder mean). The term is
# the squared distance of the guide's mean E_q[z|x] = mu_phi(x) to a fixed centre c,
# summed over the minibatch like the ELBO. It acts on the mean, not on a sampled z:
# penalising z would add tr Sigma and shrink the posterior (VARIANTS.md §17).


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


# --- Fisher information --------------------------------------------------------
# Used by the FAE (VARIANTS.md §16). For the location of a Gaussian
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
    Both are averaged over the minibatch before the absolute value (VARIANTS.md
    §16); a weight of 0 switches a term off.
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
