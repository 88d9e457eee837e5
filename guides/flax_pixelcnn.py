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
    """``(x, z) ->`` Bernoulli logits of ``p(x_i | z, x_W(i))``; see the torch twin
    (``z_features``, ``rows`` and ``__call__`` mirror its methods)."""

    x_dim: int
    hidden: Sequence[int] = (400,)
    layers: int = 6
    filters: int = 12
    z_channels: int = 4

    def setup(self):
        self.side = square_side(self.x_dim)
        if self.z_channels > 0:
            self.z_map = [nn.Dense(size) for size in (*self.hidden, self.z_channels * self.x_dim)]
            self.conditions = [nn.Conv(self.filters, (1, 1)) for _ in range(max(self.layers, 1))]
        self.convs = [MaskedConv("A" if i == 0 else "B", self.filters) for i in range(self.layers)]
        self.head = nn.Conv(1, (1, 1))

    def z_features(self, z):
        """The (N, H, W, z_channels) feature map of codes ``z`` of shape (N, d); None without z."""
        if self.z_channels == 0:
            return None
        for i, dense in enumerate(self.z_map):
            z = dense(z)
            if i < len(self.z_map) - 1:
                z = nn.elu(z)
        # torch's (C, H, W) flattening order, then NHWC.
        return z.reshape(-1, self.z_channels, self.side, self.side).transpose(0, 2, 3, 1)

    def rows(self, image, z_map):
        """Logits (N, R, W) of a band of R rows (N, R, W, 1) and their z features."""
        h = image
        # Without masked layers (layers=0) one block reads z only: a factorized decoder.
        for i in range(max(self.layers, 1)):
            h = self.convs[i](h) if self.layers else 0.0
            if z_map is not None:
                h = h + self.conditions[i](z_map)
            h = nn.elu(h)
        return self.head(h)[..., 0]

    def __call__(self, x, z):
        leading = jnp.broadcast_shapes(x.shape[:-1], z.shape[:-1])
        image = jnp.broadcast_to(x, (*leading, self.x_dim)).reshape(-1, self.side, self.side, 1)
        z_map = self.z_features(jnp.broadcast_to(z, (*leading, z.shape[-1])).reshape(-1, z.shape[-1]))
        return self.rows(image, z_map).reshape(*leading, self.x_dim)


def sample_pixels(decoder: LocalPixelCNN, variables, z, rng_key, uniforms=None, crop: bool = True):
    """Ancestral sampling ``x ~ p(x|z)`` in raster order, vectorized over ``z``'s rows,
    a ``lax.fori_loop`` over pixels; the twin of ``LocalPixelCNN.sample`` in torch
    (pixel ``i`` is ``u_i < sigmoid(logit_i)``; ``crop``: each pass on the band of
    ``layers + 1`` rows ending at pixel ``i``'s row)."""
    side = square_side(decoder.x_dim)
    leading = z.shape[:-1]
    z = z.reshape(-1, z.shape[-1])
    u = jax.random.uniform(rng_key, (len(z), decoder.x_dim)) if uniforms is None else uniforms.reshape(len(z), -1)
    z_map = decoder.apply(variables, z, method=LocalPixelCNN.z_features)
    band = min(side, decoder.layers + 1) if crop else side

    def draw(i, image):
        r, c = i // side, i % side
        top = jnp.clip(r - band + 1, 0, side - band)
        rows = jax.lax.dynamic_slice_in_dim(image, top, band, axis=1)
        z_rows = None if z_map is None else jax.lax.dynamic_slice_in_dim(z_map, top, band, axis=1)
        logits = decoder.apply(variables, rows, z_rows, method=LocalPixelCNN.rows)[:, r - top, c]
        return image.at[:, r, c, 0].set((u[:, i] < jax.nn.sigmoid(logits)).astype(image.dtype))

    image = jax.lax.fori_loop(0, decoder.x_dim, draw, jnp.zeros((len(z), side, side, 1), jnp.float32))
    return image.reshape(*leading, decoder.x_dim)


def params_from_torch(decoder) -> dict:
    """Flax parameters equal to a :class:`guides.torch_pixelcnn.LocalPixelCNN`'s weights.

    Torch convolutions are (out, in, kh, kw), Flax's HWIO; ``nn.Linear`` weights
    are (out, in), Flax's ``kernel`` (in, out).
    """

    def array(t):
        return jnp.asarray(t.detach().cpu().numpy())

    params: dict = {}
    for i, conv in enumerate(decoder.convs):
        params[f"convs_{i}"] = {"kernel": array(conv.weight.permute(2, 3, 1, 0)), "bias": array(conv.bias)}
    if decoder.z_channels > 0:
        linears = [m for m in decoder.z_map if hasattr(m, "weight")]
        for i, layer in enumerate(linears):
            params[f"z_map_{i}"] = {"kernel": array(layer.weight.T), "bias": array(layer.bias)}
        for i, conv in enumerate(decoder.conditions):
            params[f"conditions_{i}"] = {"kernel": array(conv.weight.permute(2, 3, 1, 0)), "bias": array(conv.bias)}
    params["head"] = {"kernel": array(decoder.head.weight.permute(2, 3, 1, 0)), "bias": array(decoder.head.bias)}
    return params
