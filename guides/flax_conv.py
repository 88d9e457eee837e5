"""Small convolutional blocks (Flax linen), the twins of :mod:`guides.torch_conv`.

Same shapes, same outputs, same parameter layout: torch's ``convs.i`` / ``dense.i``
are Flax's ``conv_i`` / ``dense_i``, and :func:`params_from_state_dict` copies a
torch state dict across (the cross-backend tests and the FD classifier use it).
Flax convolutions are NHWC where torch's are NCHW; every flatten and reshape goes
through the NCHW order, so dense weights and feature vectors line up with torch's.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from guides.flax_nets import positive_scale

KERNEL = 5
LEAK = 0.2
PAD = ((KERNEL // 2, KERNEL // 2), (KERNEL // 2, KERNEL // 2))


def conv_sizes(side: int, layers: int) -> list[int]:
    """As :func:`guides.torch_conv.conv_sizes`: ``side, ceil(side / 2), ...``."""
    sizes = [side]
    for _ in range(layers):
        sizes.append((sizes[-1] - 1) // 2 + 1)
    return sizes


def _activate(x, activation: str):
    return nn.leaky_relu(x, LEAK) if activation == "leaky_relu" else nn.relu(x)


def _flatten_nchw(h):
    """NHWC maps flattened in torch's (C, H, W) order."""
    return jnp.transpose(h, (0, 3, 1, 2)).reshape(h.shape[0], -1)


def resize_nearest(h, height: int, width: int):
    """Nearest-neighbour resize of NHWC maps with torch's index rule
    ``src = floor(dst * in / out)`` (``F.interpolate(mode="nearest")``)."""
    rows = np.minimum(np.floor(np.arange(height) * (h.shape[1] / height)).astype(int), h.shape[1] - 1)
    cols = np.minimum(np.floor(np.arange(width) * (h.shape[2] / width)).astype(int), h.shape[2] - 1)
    return h[:, rows][:, :, cols]


def _with_condition(h, c):
    return h if c is None else jnp.concatenate([h, c.reshape(-1, c.shape[-1])], axis=-1)


def _conv_body(x, image_shape, channels, activation):
    images = x.reshape(-1, *image_shape, 1)
    h = images
    for i, width in enumerate(channels):
        pre = nn.Conv(width, (KERNEL, KERNEL), strides=(2, 2), padding=PAD, name=f"conv_{i}")(h)
        h = _activate(pre, activation)
    return _flatten_nchw(pre), _flatten_nchw(h)


class ConvEncoder(nn.Module):
    """``x [, c] -> (loc, scale)``; see :class:`guides.torch_conv.ConvEncoder`."""

    image_shape: Sequence[int]
    channels: Sequence[int]
    hidden: Sequence[int]
    z_dim: int

    @nn.compact
    def __call__(self, x, c=None):
        leading = x.shape[:-1]
        _, h = _conv_body(x, tuple(self.image_shape), self.channels, "relu")
        h = _with_condition(h, c)
        sizes = [*self.hidden, 2 * self.z_dim]
        for i, size in enumerate(sizes):
            h = nn.Dense(size, name=f"dense_{i}")(h)
            if i < len(sizes) - 1:
                h = nn.relu(h)
        loc, raw_scale = jnp.split(h.reshape(*leading, 2 * self.z_dim), 2, axis=-1)
        return loc, positive_scale(raw_scale)


class ConvDecoder(nn.Module):
    """``z [, c] -> image`` in ``[0, 1]``; see :class:`guides.torch_conv.ConvDecoder`."""

    image_shape: Sequence[int]
    channels: Sequence[int]
    hidden: Sequence[int]

    @nn.compact
    def __call__(self, z, c=None):
        leading = z.shape[:-1]
        height, width = tuple(self.image_shape)
        heights, widths = conv_sizes(height, len(self.channels)), conv_sizes(width, len(self.channels))
        h = _with_condition(z.reshape(-1, z.shape[-1]), c)
        sizes = [*self.hidden, self.channels[-1] * heights[-1] * widths[-1]]
        for i, size in enumerate(sizes):
            h = nn.leaky_relu(nn.Dense(size, name=f"dense_{i}")(h), LEAK)
        h = jnp.transpose(h.reshape(-1, self.channels[-1], heights[-1], widths[-1]), (0, 2, 3, 1))
        levels = len(self.channels)
        for j in range(levels):
            level = levels - 1 - j
            out_width = 1 if level == 0 else self.channels[level - 1]
            h = resize_nearest(h, heights[level], widths[level])
            h = nn.Conv(out_width, (KERNEL, KERNEL), strides=(1, 1), padding=PAD, name=f"conv_{j}")(h)
            h = jax.nn.sigmoid(h) if level == 0 else nn.leaky_relu(h, LEAK)
        return h.reshape(*leading, height * width)


class ConvNet(nn.Module):
    """Discriminator or classifier: ``x -> (output, conv_features, hidden_features)``;
    see :class:`guides.torch_conv.ConvNet`."""

    image_shape: Sequence[int]
    channels: Sequence[int]
    hidden: Sequence[int]
    out_dim: int = 1

    @nn.compact
    def __call__(self, x):
        leading = x.shape[:-1]
        conv_features, h = _conv_body(x, tuple(self.image_shape), self.channels, "leaky_relu")
        for i, size in enumerate(self.hidden):
            h = nn.leaky_relu(nn.Dense(size, name=f"dense_{i}")(h), LEAK)
        out = nn.Dense(self.out_dim, name=f"dense_{len(self.hidden)}")(h)
        return (
            out.reshape(*leading, self.out_dim),
            conv_features.reshape(*leading, conv_features.shape[-1]),
            h.reshape(*leading, h.shape[-1]),
        )


def params_from_state_dict(state: dict) -> dict:
    """Flax parameters of a :mod:`guides.flax_conv` block from the state dict of its
    torch twin (tensors or numpy arrays), e.g. ``module.state_dict()`` or an ``.npz``.

    ``convs.i.weight`` (out, in, kh, kw) becomes ``conv_i.kernel`` (kh, kw, in, out);
    ``dense.i.weight`` (out, in) becomes ``dense_i.kernel`` (in, out).
    """
    params: dict = {}
    for key, value in state.items():
        value = np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value)
        kind, index, field = key.split(".")
        name = f"{'conv' if kind == 'convs' else 'dense'}_{index}"
        if field == "weight":
            value = value.transpose(2, 3, 1, 0) if value.ndim == 4 else value.T
            field = "kernel"
        params.setdefault(name, {})[field] = jnp.asarray(value)
    return params
