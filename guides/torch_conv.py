"""Small convolutional blocks (PyTorch) for the adversarial variants and the FD classifier.

Images travel flat, ``(..., H * W)`` with values in ``[0, 1]``, as everywhere in the
zoo; each block reshapes to ``(N, 1, H, W)`` itself. The shapes follow the DCGAN-like
nets of Larsen et al.'s code (5x5 convolutions of stride 2 in the encoder and
discriminator, a dense layer into the smallest feature map in the decoder), shrunk to
a few dozen channels so they train on two CPU cores:

- :class:`ConvEncoder`: ``x [, c] -> (loc, scale)`` of a diagonal Gaussian;
- :class:`ConvDecoder`: ``z [, c] -> image`` in ``[0, 1]`` (sigmoid output);
  it upsamples with nearest-neighbour resizing and a stride-1 convolution
  ("resize-convolution") instead of transposed convolutions, whose padding
  conventions differ between torch and Flax;
- :class:`ConvNet`: the discriminator and the classifier, returning its output
  and two feature layers (the last convolution's output, before its activation,
  and the last hidden dense layer's activations).

There is no batch normalisation: it would make a block behave differently in the
trainer's train and eval modes and carry running statistics in the NumPyro state;
the nets are small enough to train without it.

The Flax twins in :mod:`guides.flax_conv` have the same parameter layout
(``convs.i`` / ``dense.i`` here, ``conv_i`` / ``dense_i`` there), and
:func:`guides.flax_conv.params_from_state_dict` copies weights across.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from guides.torch_nets import positive_scale

KERNEL = 5
LEAK = 0.2  # slope of the discriminator's and classifier's leaky ReLU (DCGAN)


def conv_sizes(side: int, layers: int) -> list[int]:
    """Spatial sizes of a side through ``layers`` stride-2 convolutions with padding
    ``KERNEL // 2``: ``side, ceil(side / 2), ...`` (28 -> 14 -> 7 -> 4; 8 -> 4 -> 2 -> 1)."""
    sizes = [side]
    for _ in range(layers):
        sizes.append((sizes[-1] - 1) // 2 + 1)
    return sizes


def as_images(x: torch.Tensor, image_shape: Sequence[int]) -> tuple[torch.Tensor, tuple]:
    """Flat ``(..., H*W)`` -> ``(N, 1, H, W)``, and the leading shape to restore."""
    leading = x.shape[:-1]
    return x.reshape(-1, 1, *image_shape), leading


def _activate(x: torch.Tensor, activation: str) -> torch.Tensor:
    return F.leaky_relu(x, LEAK) if activation == "leaky_relu" else F.relu(x)


def _with_condition(h: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
    return h if c is None else torch.cat([h, c.reshape(-1, c.shape[-1])], dim=-1)


class _ConvBody(nn.Module):
    """Stride-2 convolutions over the channels ``(1, *channels)``."""

    def __init__(self, image_shape: Sequence[int], channels: Sequence[int]):
        super().__init__()
        self.image_shape = tuple(image_shape)
        widths = [1, *channels]
        self.convs = nn.ModuleList(
            nn.Conv2d(a, b, KERNEL, stride=2, padding=KERNEL // 2) for a, b in zip(widths[:-1], widths[1:])
        )
        height = conv_sizes(self.image_shape[0], len(channels))[-1]
        width = conv_sizes(self.image_shape[1], len(channels))[-1]
        self.flat_size = channels[-1] * height * width

    def body(self, images: torch.Tensor, activation: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(last conv output before its activation, flattened; activated, flattened)``."""
        h = images
        for i, conv in enumerate(self.convs):
            pre = conv(h)
            h = _activate(pre, activation)
        return pre.flatten(1), h.flatten(1)


class ConvEncoder(_ConvBody):
    """``x [, c] -> (loc, scale)`` of ``q(z | x [, c]) = N(loc, diag scale^2)``.

    Convolutions with ReLU, then dense layers ``hidden`` on the flattened maps (the
    one-hot condition ``c``, if any, joins here), then ``2 z_dim`` numbers split into
    the mean and a softplus scale.
    """

    def __init__(self, image_shape, channels, hidden, z_dim: int, cond_dim: int = 0):
        super().__init__(image_shape, channels)
        sizes = [self.flat_size + cond_dim, *hidden, 2 * z_dim]
        self.dense = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.z_dim = z_dim

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None):
        images, leading = as_images(x, self.image_shape)
        _, h = self.body(images, "relu")
        h = _with_condition(h, c)
        for i, layer in enumerate(self.dense):
            h = layer(h)
            if i < len(self.dense) - 1:
                h = F.relu(h)
        loc, raw_scale = h.reshape(*leading, 2 * self.z_dim).split(self.z_dim, dim=-1)
        return loc, positive_scale(raw_scale)


class ConvDecoder(nn.Module):
    """``z [, c] -> image`` in ``[0, 1]``: the mirror of :class:`ConvEncoder`.

    Dense layers ``hidden`` then one into the smallest feature map
    (``channels[-1]`` maps), then per level a nearest-neighbour resize to the next
    larger size and a stride-1 5x5 convolution; leaky ReLU between (without batch
    normalisation, plain ReLUs of a decoder trained by a GAN term die within a few
    dozen steps and leave a constant image), a sigmoid at the end.
    """

    def __init__(self, image_shape, channels, hidden, z_dim: int, cond_dim: int = 0):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.channels = tuple(channels)
        self.heights = conv_sizes(self.image_shape[0], len(channels))
        self.widths = conv_sizes(self.image_shape[1], len(channels))
        start = self.channels[-1] * self.heights[-1] * self.widths[-1]
        sizes = [z_dim + cond_dim, *hidden, start]
        self.dense = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        widths = [1, *channels]
        # Level i maps channels[i] -> channels[i-1] (1 at the image), largest level last.
        self.convs = nn.ModuleList(
            nn.Conv2d(widths[i + 1], widths[i], KERNEL, stride=1, padding=KERNEL // 2)
            for i in reversed(range(len(channels)))
        )

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        leading = z.shape[:-1]
        h = _with_condition(z.reshape(-1, z.shape[-1]), c)
        for layer in self.dense:
            h = F.leaky_relu(layer(h), LEAK)
        h = h.reshape(-1, self.channels[-1], self.heights[-1], self.widths[-1])
        levels = len(self.convs)
        for j, conv in enumerate(self.convs):
            level = levels - 1 - j  # the resolution this convolution produces
            h = F.interpolate(h, size=(self.heights[level], self.widths[level]), mode="nearest")
            h = conv(h)
            h = torch.sigmoid(h) if level == 0 else F.leaky_relu(h, LEAK)
        return h.reshape(*leading, self.image_shape[0] * self.image_shape[1])


class ConvNet(_ConvBody):
    """Discriminator or classifier: ``x -> (output, conv_features, hidden_features)``.

    Convolutions with leaky ReLU, dense layers ``hidden`` with leaky ReLU, and a
    linear output of ``out_dim`` numbers (one logit of "real" for a discriminator,
    class logits for a classifier). ``conv_features`` is the last convolution's
    output before its activation (Larsen et al.'s ``Dis_l``, taken before the batch
    norm in their code); ``hidden_features`` are the last hidden layer's activations
    (the penultimate features of the FD classifier).
    """

    def __init__(self, image_shape, channels, hidden, out_dim: int = 1):
        super().__init__(image_shape, channels)
        if not hidden:
            raise ValueError("ConvNet needs at least one hidden dense layer (its penultimate features)")
        sizes = [self.flat_size, *hidden, out_dim]
        self.dense = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, x: torch.Tensor):
        images, leading = as_images(x, self.image_shape)
        conv_features, h = self.body(images, "leaky_relu")
        for layer in self.dense[:-1]:
            h = F.leaky_relu(layer(h), LEAK)
        out = self.dense[-1](h)
        return (
            out.reshape(*leading, out.shape[-1]),
            conv_features.reshape(*leading, conv_features.shape[-1]),
            h.reshape(*leading, h.shape[-1]),
        )


def detached_call(module: nn.Module, *inputs):
    """``module(*inputs)`` with its parameters detached: gradients reach the inputs
    but never the module's weights (Larsen et al.'s ``Dis_l(x; psi-bar)``).

    Detaching only the output would cut the inputs' gradient as well; detaching only
    the real image's features would still let the gradient of ``Dis_l(x_tilde)``
    reach the weights.
    """
    params = {name: p.detach() for name, p in module.named_parameters()}
    return torch.func.functional_call(module, params, inputs)
