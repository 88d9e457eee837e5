"""Flax (linen) network blocks shared by the NumPyro variants.

They mirror :mod:`guides.torch_nets` layer for layer, so a torch state dict can be
copied into Flax parameters with :func:`params_from_torch` (used by the
cross-backend tests). NumPyro registers them with
``numpyro.contrib.module.flax_module``.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

ACTIVATIONS = {"relu": nn.relu, "tanh": jnp.tanh, "softplus": nn.softplus, "sigmoid": nn.sigmoid}


class MLP(nn.Module):
    """Dense layers with an activation between them and none after the last."""

    sizes: Sequence[int]  # output sizes of each layer (the input size is inferred)
    activation: str = "relu"

    @nn.compact
    def __call__(self, x):
        for i, size in enumerate(self.sizes):
            x = nn.Dense(size, name=f"Dense_{i}")(x)
            if i < len(self.sizes) - 1:
                x = ACTIVATIONS[self.activation](x)
        return x


def positive_scale(raw):
    """softplus with a floor, as in :func:`guides.torch_nets.positive_scale`."""
    return jax.nn.softplus(raw) + 1e-4


class GaussianEncoder(nn.Module):
    """x -> (loc, scale) of ``q(z|x) = N(loc, diag scale^2)``."""

    hidden: Sequence[int]
    z_dim: int
    activation: str = "relu"

    @nn.compact
    def __call__(self, x):
        out = MLP([*self.hidden, 2 * self.z_dim], self.activation, name="net")(x)
        loc, raw_scale = jnp.split(out, 2, axis=-1)
        return loc, positive_scale(raw_scale)


class BernoulliDecoder(nn.Module):
    """z -> logits of a factorised Bernoulli likelihood."""

    hidden: Sequence[int]
    x_dim: int
    activation: str = "relu"

    @nn.compact
    def __call__(self, z):
        return MLP([*self.hidden, self.x_dim], self.activation, name="net")(z)


class GaussianDecoder(nn.Module):
    """z -> (loc, scale); a constant scale when ``fixed_scale`` is set."""

    hidden: Sequence[int]
    x_dim: int
    activation: str = "relu"
    fixed_scale: float | None = None

    @nn.compact
    def __call__(self, z):
        if self.fixed_scale is not None:
            loc = MLP([*self.hidden, self.x_dim], self.activation, name="net")(z)
            return loc, jnp.full_like(loc, self.fixed_scale)
        out = MLP([*self.hidden, 2 * self.x_dim], self.activation, name="net")(z)
        loc, raw_scale = jnp.split(out, 2, axis=-1)
        return loc, positive_scale(raw_scale)


def params_from_torch(module) -> dict:
    """Flax parameters equal to a :mod:`guides.torch_nets` block's weights.

    Works for any block whose ``nn.Linear`` layers sit in an ``MLP`` attribute named
    ``net`` (the layout both modules share). Torch stores ``weight`` as
    (out, in); Flax's ``kernel`` is (in, out).
    """
    import torch

    linears = [m for m in module.net if isinstance(m, torch.nn.Linear)]
    dense = {
        f"Dense_{i}": {
            "kernel": jnp.asarray(np.asarray(layer.weight.detach().cpu().numpy().T)),
            "bias": jnp.asarray(np.asarray(layer.bias.detach().cpu().numpy())),
        }
        for i, layer in enumerate(linears)
    }
    return {"net": dense}
