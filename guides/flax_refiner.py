"""The MSVAE's stage-2 refiner (Flax), the twin of :mod:`guides.torch_refiner`.

Flax convolutions are NHWC with kernels (kh, kw, in, out); torch's are NCHW with
weights (out, in, kh, kw). :func:`refiner_params_from_torch` converts them.
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np


def square_side(x_dim: int) -> int:
    """The side of a square image of ``x_dim`` pixels (as the torch twin; no torch import here)."""
    side = math.isqrt(x_dim)
    if side * side != x_dim:
        raise ValueError(f"the refiner works on square images; {x_dim} pixels is not a square")
    return side


class ResidualRefiner(nn.Module):
    """x1 -> x1 + g(x1), ``layers`` 3x3 'same' convolutions, the last one zero-initialised."""

    x_dim: int
    channels: int = 16
    layers: int = 3

    @nn.compact
    def __call__(self, x1):
        side = square_side(self.x_dim)
        lead = x1.shape[:-1]
        h = x1.reshape(-1, side, side, 1)
        widths: Sequence[int] = [self.channels] * (self.layers - 1) + [1]
        for i, width in enumerate(widths):
            last = i == len(widths) - 1
            init = {"kernel_init": nn.initializers.zeros, "bias_init": nn.initializers.zeros} if last else {}
            h = nn.Conv(width, (3, 3), padding="SAME", name=f"Conv_{i}", **init)(h)
            if not last:
                h = nn.relu(h)
        return x1 + h.reshape(*lead, -1)


def refiner_params_from_torch(module) -> dict:
    """Flax parameters equal to a :class:`guides.torch_refiner.ResidualRefiner`'s weights."""
    return {
        f"Conv_{i}": {
            "kernel": jnp.asarray(np.transpose(conv.weight.detach().cpu().numpy(), (2, 3, 1, 0))),
            "bias": jnp.asarray(conv.bias.detach().cpu().numpy()),
        }
        for i, conv in enumerate(module.convs)
    }
