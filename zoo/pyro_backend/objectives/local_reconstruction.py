"""The importance-weighted bound plus MEM-VAE's layer-wise local reconstruction error (Pyro).

Li, Zhu & Zhang (2016) add to ``-L_k`` a penalty tying each encoder hidden layer to
its mirror in the decoder: ``lambda * mean_units (n(h_enc_l) - n(mean_k h_dec_{L-l}))^2``
per datapoint, ``n`` the batch standardisation of the authors' ``NormalizeLayer``
and the decoder activations averaged over the k samples. The variant records the
activations as ``pyro.deterministic`` sites; :class:`LocalReconstructionELBO`
runs the guide once under a particle plate, replays the model, and reads them.
With ``weight = 0`` and k = 1 it is ``Trace_ELBO``, or with ``analytic_kl`` (the
default) ``TraceMeanField_ELBO``: the KL of each latent in closed form where one is
registered, as the zoo's VAE baseline trains.
"""

from __future__ import annotations

import pyro
import torch
from pyro import poutine
from pyro.infer import ELBO
from torch.distributions import kl_divergence

from zoo.pyro_backend.objectives.importance import PARTICLE_DIM, _is_factor, iwae_bound, site_log_prob

__all__ = ["LocalReconstructionELBO", "batch_standardize", "local_reconstruction_error"]


def batch_standardize(h: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Each unit centred and scaled over the batch (dim -2), without learned parameters."""
    mean = h.mean(-2, keepdim=True)
    return (h - mean) / torch.sqrt(((h - mean) ** 2).mean(-2, keepdim=True) + eps)


def local_reconstruction_error(encoder_activation: torch.Tensor, decoder_activation: torch.Tensor) -> torch.Tensor:
    """Per datapoint (B,): mean over units of the squared difference of the standardised
    activations; ``decoder_activation`` has a leading particle dim, averaged first."""
    decoder_mean = decoder_activation.reshape(-1, *encoder_activation.shape).mean(0)
    difference = batch_standardize(encoder_activation) - batch_standardize(decoder_mean)
    return (difference**2).mean(-1)


def _traces(model, guide, num_particles, args, kwargs):
    with pyro.plate("particles", num_particles, dim=PARTICLE_DIM):
        guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
    return model_trace, guide_trace


def _log_weights(model_trace, guide_trace, num_particles: int) -> torch.Tensor:
    log_w = 0.0
    for site in model_trace.nodes.values():
        if site["type"] == "sample" and not _is_factor(site) and not site["infer"].get("_deterministic"):
            log_w = log_w + site_log_prob(site)
    for site in guide_trace.nodes.values():
        if site["type"] == "sample" and not _is_factor(site) and not site["is_observed"]:
            log_w = log_w - site_log_prob(site)
    return log_w.reshape(num_particles, -1)


def _mean_field_elbo(model_trace, guide_trace) -> torch.Tensor:
    """One-sample ELBO per datapoint with each latent's KL in closed form where torch
    registers it (and ``log p - log q`` at the draw where it does not)."""
    elbo = 0.0
    for name, site in model_trace.nodes.items():
        if site["type"] != "sample" or _is_factor(site) or site["infer"].get("_deterministic"):
            continue
        if site["is_observed"]:
            elbo = elbo + site_log_prob(site)
            continue
        guide_site = guide_trace.nodes[name]
        try:
            elbo = elbo - kl_divergence(guide_site["fn"], site["fn"])
        except NotImplementedError:
            elbo = elbo + site_log_prob(site) - site_log_prob(guide_site)
    return elbo.reshape(-1)


class LocalReconstructionELBO(ELBO):
    """``-sum_n [L_k(x_n) - weight * sum_l LRE_l(x_n)]`` over the minibatch.

    ``pairs`` lists ``(encoder site, decoder site)`` names of recorded activations.
    With ``analytic_kl`` and k = 1 the bound is the mean-field ELBO (closed-form KL).
    """

    def __init__(self, num_particles: int = 1, weight: float = 0.1, pairs: tuple = (), analytic_kl: bool = True):
        super().__init__(num_particles=num_particles)
        self.weight = weight
        self.pairs = tuple(pairs)
        self.analytic_kl = analytic_kl

    def _get_trace(self, model, guide, args, kwargs):  # pragma: no cover - unused
        raise NotImplementedError("the bound traces all particles at once")

    def terms(self, model, guide, *args, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        """Per datapoint: the bound ``L_k`` (B,) and the summed local reconstruction error (B,)."""
        model_trace, guide_trace = _traces(model, guide, self.num_particles, args, kwargs)
        if self.analytic_kl and self.num_particles == 1:
            bound = _mean_field_elbo(model_trace, guide_trace)
        else:
            bound = iwae_bound(_log_weights(model_trace, guide_trace, self.num_particles))
        lre = torch.zeros_like(bound)
        for encoder_site, decoder_site in self.pairs:
            lre = lre + local_reconstruction_error(guide_trace.nodes[encoder_site]["value"],
                                                   model_trace.nodes[decoder_site]["value"])
        return bound, lre

    def differentiable_loss(self, model, guide, *args, **kwargs) -> torch.Tensor:
        bound, lre = self.terms(model, guide, *args, **kwargs)
        return -bound.sum() + self.weight * lre.sum()

    def loss(self, model, guide, *args, **kwargs) -> float:
        with torch.no_grad():
            return self.differentiable_loss(model, guide, *args, **kwargs).item()

    def loss_and_grads(self, model, guide, *args, **kwargs) -> float:
        loss = self.differentiable_loss(model, guide, *args, **kwargs)
        loss.backward()
        return loss.item()
