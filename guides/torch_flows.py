"""Autoregressive-flow priors from Pyro's own transforms (PyTorch), for the VLAE.

Chen et al., *Variational Lossy Autoencoder*, ICLR 2017, §3.2: the prior is an
autoregressive flow ``z = f(eps)``, ``eps ~ N(0, I)``, whose inverse
``eps = f^{-1}(z)`` is one parallel pass, so ``log p(z)`` of a guide sample costs a
MADE forward pass per step.

Each step is Pyro's ``AffineAutoregressive`` (IAF's eq. 10) on an
``AutoRegressiveNN`` (MADE): ``T(z) = mu(z) + sigma(z) * z`` with ``mu_i, sigma_i``
functions of ``z_<i``, parallel in the ``z -> eps`` direction. The prior is
``TransformedDistribution(N(0, I), [T_K^{-1}, ..., T_1^{-1}])``, i.e.
``eps = T_K(... T_1(z))`` and

    log p(z) = log N(eps; 0, I) + sum_k log |det dT_k / dz_k|,

while ``prior.sample()`` runs each ``T_k^{-1}``, which is sequential over the
dimensions (only needed for generation). Steps alternate the variable order
(identity, reversed, ...) so that every dimension conditions on every other one
after two steps. The twin for NumPyro is :mod:`guides.jax_flows`.
"""

from __future__ import annotations

from typing import Sequence

import pyro.distributions as dist
import torch
from pyro.distributions.transforms import AffineAutoregressive
from pyro.nn import AutoRegressiveNN
from torch import nn


def step_permutation(z_dim: int, step: int) -> torch.Tensor:
    """The variable order of flow step ``step``: identity for even steps, reversed for odd."""
    order = torch.arange(z_dim)
    return order if step % 2 == 0 else order.flip(0)


def autoregressive_flow(z_dim: int, steps: int, hidden: Sequence[int]) -> nn.ModuleList:
    """``steps`` ``AffineAutoregressive`` transforms on MADEs with hidden widths ``hidden``."""
    return nn.ModuleList(
        AffineAutoregressive(AutoRegressiveNN(z_dim, list(hidden), permutation=step_permutation(z_dim, k)))
        for k in range(steps)
    )


def flow_prior(transforms: nn.ModuleList, loc: torch.Tensor) -> dist.TransformedDistribution:
    """The AF prior over z with base ``N(0, I)`` shaped like ``loc`` (batch..., d).

    ``eps = T_K(... T_1(z))``: the distribution applies ``T_K^{-1}`` first to
    ``eps`` and ``T_1^{-1}`` last.
    """
    base = dist.Normal(torch.zeros_like(loc), 1.0).to_event(1)
    return dist.TransformedDistribution(base, [t.inv for t in reversed(transforms)])


def identity_flow_(transforms: nn.ModuleList) -> None:
    """Zero every step's output layer, so ``mu = 0``, ``log sigma = 0``: the identity map."""
    with torch.no_grad():
        for transform in transforms:
            last = transform.arn.layers[-1]
            last.weight.zero_()
            last.bias.zero_()
