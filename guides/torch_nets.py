"""PyTorch network blocks shared by the Pyro variants.

The encoder is the amortized diagonal-Gaussian family
``q(z|x) = N(z; mu(x), diag sigma(x)^2)`` used by most variants; decoders return
distribution parameters, and the variant's model wraps them in a Pyro distribution.
Every block accepts arbitrary leading batch dimensions (particles, enumeration).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "softplus": nn.Softplus, "sigmoid": nn.Sigmoid}


class MLP(nn.Sequential):
    """Linear layers with an activation between them and none after the last."""

    def __init__(self, sizes: Sequence[int], activation: str = "relu"):
        layers: list[nn.Module] = []
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(fan_in, fan_out))
            if i < len(sizes) - 2:
                layers.append(ACTIVATIONS[activation]())
        super().__init__(*layers)


def positive_scale(raw: torch.Tensor) -> torch.Tensor:
    """softplus with a floor: a scale of exactly 0 gives -inf log densities."""
    return F.softplus(raw) + 1e-4


class GaussianEncoder(nn.Module):
    """x -> (loc, scale) of ``q(z|x) = N(loc, diag scale^2)``.

    One MLP body and a linear head producing ``2 * z_dim`` numbers, split into the
    location and a softplus-positive scale.
    """

    def __init__(self, x_dim: int, hidden: Sequence[int], z_dim: int, activation: str = "relu"):
        super().__init__()
        self.net = MLP([x_dim, *hidden, 2 * z_dim], activation)
        self.z_dim = z_dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loc, raw_scale = self.net(x).split(self.z_dim, dim=-1)
        return loc, positive_scale(raw_scale)


class BernoulliDecoder(nn.Module):
    """z -> logits of ``p(x|z) = prod_i Bernoulli(x_i; sigmoid(logits_i))``.

    Logits, never probabilities: in float32 a saturated sigmoid gives log(0) on
    grey-level pixels.
    """

    def __init__(self, z_dim: int, hidden: Sequence[int], x_dim: int, activation: str = "relu"):
        super().__init__()
        self.net = MLP([z_dim, *hidden, x_dim], activation)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class GaussianDecoder(nn.Module):
    """z -> (loc, scale) of ``p(x|z) = N(loc, diag scale^2)``.

    With ``fixed_scale`` set, the scale is that constant (least-squares
    reconstruction); otherwise it is learned per pixel as a function of z.
    """

    def __init__(
        self,
        z_dim: int,
        hidden: Sequence[int],
        x_dim: int,
        activation: str = "relu",
        fixed_scale: float | None = None,
    ):
        super().__init__()
        self.fixed_scale = fixed_scale
        out = x_dim if fixed_scale is not None else 2 * x_dim
        self.net = MLP([z_dim, *hidden, out], activation)
        self.x_dim = x_dim

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(z)
        if self.fixed_scale is not None:
            return out, torch.full_like(out, self.fixed_scale)
        loc, raw_scale = out.split(self.x_dim, dim=-1)
        return loc, positive_scale(raw_scale)
