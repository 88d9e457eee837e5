"""Memory-augmented decoder of MEM-VAE for the NumPyro backend, the twin of
:mod:`guides.torch_memory` (same parameters, same initial values), and
:func:`memory_decoder_params_from_torch` to copy a torch decoder into it."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from guides.flax_nets import ACTIVATIONS, positive_scale

LADDER_INITIAL = {"a1": 0.0, "a2": 1.0, "a3": 0.0, "a4": 0.0, "b1": 0.0, "c1": 0.0, "c2": 1.0, "c3": 0.0, "c4": 0.0}


class MemoryLayer(nn.Module):
    """``h -> M^T sigmoid(C^T h + b)``."""

    slots: int

    @nn.compact
    def __call__(self, h):
        width = h.shape[-1]
        C = self.param("C", nn.initializers.glorot_uniform(), (width, self.slots))
        b = self.param("b", nn.initializers.zeros, (self.slots,))
        M = self.param("M", nn.initializers.normal(0.01), (self.slots, width))
        return nn.sigmoid(h @ C + b) @ M


class LadderCombinator(nn.Module):
    """``a1 + a2 h + a3 m + a4 h m + b1 sigmoid(c1 + c2 h + c3 m + c4 h m)``."""

    @nn.compact
    def __call__(self, h, m):
        p = {name: self.param(name, nn.initializers.constant(value), (h.shape[-1],))
             for name, value in LADDER_INITIAL.items()}
        gate = nn.sigmoid(p["c1"] + p["c2"] * h + p["c3"] * m + p["c4"] * h * m)
        return p["a1"] + p["a2"] * h + p["a3"] * m + p["a4"] * h * m + p["b1"] * gate


class MemoryDecoder(nn.Module):
    """z -> (output, hidden activations); see the torch twin."""

    hidden: Sequence[int]
    out_dim: int
    slots: Sequence[int]
    activation: str = "relu"
    combinator: str = "ladder"

    @nn.compact
    def __call__(self, z):
        act = ACTIVATIONS[self.activation]
        h, hiddens = z, []
        for i, (width, slots) in enumerate(zip(self.hidden, self.slots)):
            h = act(nn.Dense(width, name=f"Dense_{i}")(h))
            if slots:
                m = MemoryLayer(slots, name=f"Memory_{i}")(h)
                h = act(LadderCombinator(name=f"Combine_{i}")(h, m) if self.combinator == "ladder" else h + m)
            hiddens.append(h)
        return nn.Dense(self.out_dim, name="Out")(h), hiddens


class _ActivationMLP(nn.Module):
    sizes: Sequence[int]
    activation: str = "relu"

    @nn.compact
    def __call__(self, x):
        hiddens = []
        for i, size in enumerate(self.sizes):
            x = nn.Dense(size, name=f"Dense_{i}")(x)
            if i < len(self.sizes) - 1:
                x = ACTIVATIONS[self.activation](x)
                hiddens.append(x)
        return x, hiddens


class ActivationEncoder(nn.Module):
    """x -> (loc, scale, hidden activations), parameters laid out as ``GaussianEncoder``'s."""

    hidden: Sequence[int]
    z_dim: int
    activation: str = "relu"

    @nn.compact
    def __call__(self, x):
        out, hiddens = _ActivationMLP([*self.hidden, 2 * self.z_dim], self.activation, name="net")(x)
        loc, raw_scale = jnp.split(out, 2, axis=-1)
        return loc, positive_scale(raw_scale), hiddens


def memory_decoder_params_from_torch(decoder) -> dict:
    """Flax parameters of :class:`MemoryDecoder` equal to a torch ``MemoryDecoder``'s."""
    def array(t):
        return jnp.asarray(np.asarray(t.detach().cpu().numpy()))

    params = {}
    for i, linear in enumerate(decoder.linears):
        params[f"Dense_{i}"] = {"kernel": array(linear.weight).T, "bias": array(linear.bias)}
    for key, memory in decoder.memories.items():
        params[f"Memory_{key}"] = {"C": array(memory.C), "b": array(memory.b), "M": array(memory.M)}
        combinator = decoder.combinators[key]
        if hasattr(combinator, "a1"):
            params[f"Combine_{key}"] = {name: array(getattr(combinator, name)) for name in LADDER_INITIAL}
    params["Out"] = {"kernel": array(decoder.out.weight).T, "bias": array(decoder.out.bias)}
    return params
