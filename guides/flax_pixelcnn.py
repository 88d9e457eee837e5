"""A small PixelCNN decoder with a local receptive field (Flax), for the VLAE.

The twin of :mod:`guides.torch_pixelcnn`, layer for layer (read its docstring for
the construction): masked 3x3 convolutions (type A, then B), each conditioned on a
``z`` feature map by a 1x1 convolution, ELU, a 1x1 output head. Images are NHWC
here and NCHW in torch; :func:`params_from_torch` converts a torch decoder's
weights. :func:`sample_pixels` is ancestral sampling with ``lax.fori_loop``.
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

KERNEL = 3


def square_side(x_dim: int) -> int:
    """The side of a flattened square image of ``x_dim`` pixels."""
    side = math.isqrt(x_dim)
    if side * side != x_dim:
        raise ValueError(f"the PixelCNN decoder needs square images; {x_dim} pixels are not a square")
    return side


def causal_mask(kind: str, in_channels: int, out_channels: int, kernel: int = KERNEL) -> np.ndarray:
    """The (k, k, in, out) mask of :func:`guides.torch_pixelcnn.causal_mask`, HWIO layout."""
    if kind not in ("A", "B"):
        raise ValueError(f"mask kind must be 'A' or 'B', got {kind!r}")
    centre = kernel // 2
    mask = np.zeros((kernel, kernel), np.float32)
    mask[:centre, :] = 1.0
    mask[centre, : centre + (kind == "B")] = 1.0
    return np.broadcast_to(mask[:, :, None, None], (kernel, kernel, in_channels, out_channels)).copy()


class MaskedConv(nn.Module):
    """A 'SAME'-padded convolution with a PixelCNN mask on its kernel (NHWC)."""

    kind: str
    features: int
    kernel: int = KERNEL

    @nn.compact
    def __call__(self, x):
        in_channels = x.shape[-1]
        kernel = self.param(
            "kernel", nn.initializers.lecun_normal(), (self.kernel, self.kernel, in_channels, self.features)
        )
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        mask = jnp.asarray(causal_mask(self.kind, in_channels, self.features, self.kernel))
        y = jax.lax.conv_general_dilated(
            x, kernel * mask, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        return y + bias


class LocalPixelCNN(nn.Module):
    """``(x, z) ->`` Bernoulli logits of ``p(x_i | z, x_W(i))``; see the torch twin."""

    x_dim: int
    hidden: Sequence[int] = (400,)
    layers: int = 6
    filters: int = 12
    z_channels: int = 4

    @nn.compact
    def __call__(self, x, z):
        side = square_side(self.x_dim)
        leading = jnp.broadcast_shapes(x.shape[:-1], z.shape[:-1])
        h = jnp.broadcast_to(x, (*leading, self.x_dim)).reshape(-1, side, side, 1)
        if self.z_channels > 0:
            z = jnp.broadcast_to(z, (*leading, z.shape[-1])).reshape(-1, z.shape[-1])
            sizes = [*self.hidden, self.z_channels * self.x_dim]
            for i, size in enumerate(sizes):
                z = nn.Dense(size, name=f"z_map_{i}")(z)
                if i < len(sizes) - 1:
                    z = nn.elu(z)
            # torch's (C, H, W) flattening order, then NHWC.
            z_map = z.reshape(-1, self.z_channels, side, side).transpose(0, 2, 3, 1)
        # Without masked layers (layers=0) one block reads z only: a factorized decoder.
        for i in range(max(self.layers, 1)):
            h = MaskedConv("A" if i == 0 else "B", self.filters, name=f"conv_{i}")(h) if self.layers else 0.0
            if self.z_channels > 0:
                h = h + nn.Conv(self.filters, (1, 1), name=f"condition_{i}")(z_map)
            h = nn.elu(h)
        logits = nn.Conv(1, (1, 1), name="head")(h)
        return logits.reshape(*leading, self.x_dim)


def sample_pixels(logits_fn, z, x_dim: int, rng_key):
    """Ancestral sampling ``x ~ p(x|z)`` in raster order, vectorized over ``z``'s rows.

    ``logits_fn(x, z)`` gives every pixel's logit; pass ``i`` of the ``fori_loop``
    draws pixel ``i`` from the logits of the image drawn so far (the masks make
    logit ``i`` depend on pixels ``< i`` only).
    """

    def draw(i, x):
        logits = jax.lax.dynamic_index_in_dim(logits_fn(x, z), i, axis=-1, keepdims=False)
        pixel = jax.random.bernoulli(jax.random.fold_in(rng_key, i), jax.nn.sigmoid(logits))
        return jax.lax.dynamic_update_index_in_dim(x, pixel.astype(x.dtype), i, axis=-1)

    return jax.lax.fori_loop(0, x_dim, draw, jnp.zeros((*z.shape[:-1], x_dim), jnp.float32))


def params_from_torch(decoder) -> dict:
    """Flax parameters equal to a :class:`guides.torch_pixelcnn.LocalPixelCNN`'s weights.

    Torch convolutions are (out, in, kh, kw), Flax's HWIO; ``nn.Linear`` weights
    are (out, in), Flax's ``kernel`` (in, out).
    """

    def array(t):
        return jnp.asarray(t.detach().cpu().numpy())

    params: dict = {}
    for i, conv in enumerate(decoder.convs):
        params[f"conv_{i}"] = {"kernel": array(conv.weight.permute(2, 3, 1, 0)), "bias": array(conv.bias)}
    if decoder.z_channels > 0:
        linears = [m for m in decoder.z_map if hasattr(m, "weight")]
        for i, layer in enumerate(linears):
            params[f"z_map_{i}"] = {"kernel": array(layer.weight.T), "bias": array(layer.bias)}
        for i, conv in enumerate(decoder.conditions):
            params[f"condition_{i}"] = {"kernel": array(conv.weight.permute(2, 3, 1, 0)), "bias": array(conv.bias)}
    params["head"] = {"kernel": array(decoder.head.weight.permute(2, 3, 1, 0)), "bias": array(decoder.head.bias)}
    return params
