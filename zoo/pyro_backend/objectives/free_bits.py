"""Free bits (Kingma et al. 2016, appendix; Chen et al. 2017, VLAE) (Pyro).

- :func:`elbo_terms`: per-datapoint ``log p(x|z)`` (every observed site) and, per
  latent site, the single-sample KL estimate ``log q(z|x) - log p(z)``;
- :class:`FreeBitsELBO`: the objective

      L~ = sum_n E_q[log p(x_n|z)] - B * sum_j max(lambda_j, (1/B) sum_n KL_j(x_n)),

  one group ``j`` per latent site, each with its floor ``lambda_j`` in nats per
  datapoint. A group whose minibatch-mean KL is under its floor costs the
  constant floor, so it gets no gradient pushing its KL further down; above
  every floor the objective is the ELBO (a Monte-Carlo KL, as ``Trace_ELBO``).

Losses are sums over the minibatch, as every zoo objective (see the package
docstring); the twin for NumPyro is :mod:`zoo.numpyro_backend.objectives.free_bits`.
"""

from __future__ import annotations

import torch
from pyro import poutine
from pyro.infer import ELBO
from pyro.poutine.util import site_is_subsample

from zoo.pyro_backend.objectives.importance import _is_factor, site_log_prob

__all__ = ["elbo_terms", "FreeBitsELBO"]


def elbo_terms(model, guide, *args, **kwargs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``(reconstruction, {site: kl})``, each of shape (B,), from one draw of the guide.

    The guide is traced, the model replays its draws; ``reconstruction`` sums the
    observed sites' log densities, ``kl[site]`` is ``log q - log p`` of each latent
    site at the drawn value. Their difference summed is the one-sample ELBO.
    """
    guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
    model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
    reconstruction = 0.0
    kl: dict[str, torch.Tensor] = {}
    for name, site in model_trace.nodes.items():
        # Plates trace a subsample site of their own: not a latent variable.
        if site["type"] != "sample" or _is_factor(site) or site_is_subsample(site):
            continue
        if site["is_observed"]:
            reconstruction = reconstruction + site_log_prob(site)
        else:
            kl[name] = site_log_prob(guide_trace.nodes[name]) - site_log_prob(site)
    return reconstruction, kl


class FreeBitsELBO(ELBO):
    """The free-bits objective (see the module docstring).

    ``floor`` is ``lambda_j`` in nats per datapoint: one number for every latent
    site, or a dict ``{site: floor}`` (sites not named get floor 0). With every
    floor 0 it is the single-sample ELBO.
    """

    def __init__(self, floor: float | dict[str, float] = 0.0):
        super().__init__(num_particles=1)
        self.floor = floor

    def floor_of(self, site: str) -> float:
        if isinstance(self.floor, dict):
            return float(self.floor.get(site, 0.0))
        return float(self.floor)

    def _get_trace(self, model, guide, args, kwargs):  # pragma: no cover - unused
        raise NotImplementedError("the free-bits objective traces its one draw in elbo_terms")

    def differentiable_loss(self, model, guide, *args, **kwargs) -> torch.Tensor:
        reconstruction, kl = elbo_terms(model, guide, *args, **kwargs)
        batch_size = reconstruction.numel()
        loss = -reconstruction.sum()
        for site, kl_site in kl.items():
            loss = loss + batch_size * torch.clamp(kl_site.mean(), min=self.floor_of(site))
        return loss

    def loss(self, model, guide, *args, **kwargs) -> float:
        with torch.no_grad():
            return self.differentiable_loss(model, guide, *args, **kwargs).item()

    def loss_and_grads(self, model, guide, *args, **kwargs) -> float:
        loss = self.differentiable_loss(model, guide, *args, **kwargs)
        loss.backward()
        return loss.item()
