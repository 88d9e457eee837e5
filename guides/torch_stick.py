"""Stick-breaking pieces for the Pyro variants (SB-VAE, the tree of NpVAE).

- :class:`Kumaraswamy`: Pyro's reparameterized Kumaraswamy with the sampler and the
  density written in closed form, clamped away from 0 and 1 exactly as NumPyro's
  twin is, so both backends score the same draw the same way;
- :class:`KumaraswamyEncoder`: x -> the two concentrations ``(a(x), b(x))`` of
  ``q(v|x)`` over the K-1 stick fractions;
- :func:`stick_breaking_weights`: fractions ``v`` -> weights ``pi`` on the simplex.

Nalisnick & Smyth, Stick-Breaking Variational Autoencoders, ICLR 2017.
"""

from __future__ import annotations

from typing import Sequence

import pyro.distributions as dist
import torch
from torch import nn

from guides.torch_nets import MLP, positive_scale


class Kumaraswamy(dist.Kumaraswamy):
    """``Kumaraswamy(a, b)``: density ``a b v^(a-1) (1 - v^a)^(b-1)`` on (0, 1).

    Pyro's class composes two power transforms of a uniform. In float32 that
    rounds ``1 - u^(1/b)`` to exactly 1 whenever ``u^(1/b) < 6e-8`` (small ``b``),
    and a Beta(1, alpha0) prior then scores ``log 0``. Here the inverse CDF
    ``v = (1 - u^(1/b))^(1/a)`` runs in log space with NumPyro's clamps
    (``u >= tiny``, ``u^(1/b) <= 1 - eps``, ``v`` in ``[tiny, 1 - eps]``), and the
    log density is the closed form NumPyro uses. The name stays ``Kumaraswamy``:
    it is the same family.
    """

    def rsample(self, sample_shape=torch.Size()) -> torch.Tensor:
        a, b = self.concentration1, self.concentration0
        finfo = torch.finfo(a.dtype)
        shape = self._extended_shape(sample_shape)
        u = torch.rand(shape, dtype=a.dtype, device=a.device).clamp(min=finfo.tiny)
        u_b = (u ** b.reciprocal()).clamp(max=1 - finfo.eps)
        return torch.exp(torch.log1p(-u_b) / a).clamp(finfo.tiny, 1 - finfo.eps)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        a, b = self.concentration1, self.concentration0
        finfo = torch.finfo(a.dtype)
        value_a = (value**a).clamp(max=1 - finfo.eps)
        return torch.xlogy(a - 1, value) + torch.xlogy(b - 1, 1 - value_a) + torch.log(a) + torch.log(b)

    def cdf(self, value: torch.Tensor) -> torch.Tensor:
        """``F(v) = 1 - (1 - v^a)^b`` (the inverse of the sampler)."""
        return 1 - (1 - value ** self.concentration1) ** self.concentration0


class KumaraswamyEncoder(nn.Module):
    """x -> ``(a, b)``, the concentrations of ``q(v|x) = prod_k Kumaraswamy(v_k; a_k, b_k)``.

    An MLP body and a linear head of ``2 * num_sticks`` numbers made positive by a
    softplus (with the shared floor), as in the paper. The linear layers sit in
    ``net`` so :func:`guides.flax_nets.params_from_torch` copies them.
    """

    def __init__(self, x_dim: int, hidden: Sequence[int], num_sticks: int, activation: str = "relu"):
        super().__init__()
        self.net = MLP([x_dim, *hidden, 2 * num_sticks], activation)
        self.num_sticks = num_sticks

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw_a, raw_b = self.net(x).split(self.num_sticks, dim=-1)
        return positive_scale(raw_a), positive_scale(raw_b)


def stick_breaking_weights(v: torch.Tensor) -> torch.Tensor:
    """``pi_k = v_k prod_{j<k} (1 - v_j)`` for k < K and ``pi_K = prod_{j<K} (1 - v_j)``.

    ``v`` has the K-1 fractions in its last dim; the result has K weights that sum
    to one (the last takes what is left of the stick).
    """
    remaining = torch.cumprod(1 - v, dim=-1)  # prod_{j<=k} (1 - v_j)
    before = torch.cat([torch.ones_like(v[..., :1]), remaining[..., :-1]], dim=-1)  # prod_{j<k}
    return torch.cat([v * before, remaining[..., -1:]], dim=-1)
