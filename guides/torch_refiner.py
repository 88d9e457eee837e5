"""The MSVAE's stage-2 refiner (PyTorch): a small residual CNN on flattened images.

``x2 = x1 + g(x1)`` where ``g`` is a stack of 3x3 convolutions ("same" padding,
ReLU between them). The last convolution starts at zero, so an untrained refiner
is the identity and stage 2 starts from stage 1's picture (Cai, Gao & Ji use
residual blocks to refine the coarse image; the exact network is not published).
Inputs and outputs are flattened images of shape ``(..., H*W)``, like every
decoder of the zoo; any leading dimensions (particles) are kept. The twin is
:mod:`guides.flax_refiner`.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def square_side(x_dim: int) -> int:
    """The side of a square image of ``x_dim`` pixels; ValueError if there is none."""
    side = math.isqrt(x_dim)
    if side * side != x_dim:
        raise ValueError(f"the refiner works on square images; {x_dim} pixels is not a square")
    return side


class ResidualRefiner(nn.Module):
    """x1 -> x1 + g(x1) with ``layers`` 3x3 convolutions of ``channels`` channels."""

    def __init__(self, x_dim: int, channels: int = 16, layers: int = 3):
        super().__init__()
        self.side = square_side(x_dim)
        widths = [1] + [channels] * (layers - 1) + [1]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in zip(widths[:-1], widths[1:]))
        nn.init.zeros_(self.convs[-1].weight)
        nn.init.zeros_(self.convs[-1].bias)

    def forward(self, x1: torch.Tensor) -> torch.Tensor:
        lead = x1.shape[:-1]
        h = x1.reshape(-1, 1, self.side, self.side)
        for i, conv in enumerate(self.convs):
            h = conv(h)
            if i < len(self.convs) - 1:
                h = torch.relu(h)
        return x1 + h.reshape(*lead, -1)
