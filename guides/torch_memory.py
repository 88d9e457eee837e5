"""Memory-augmented decoder of MEM-VAE for the Pyro backend (Li, Zhu & Zhang 2016).

As in the authors' code (``layers/memory.py``): a memory of ``S`` learned slots
per decoder hidden layer, read with **sigmoid** (unnormalised) attention from that
layer's activation, and a ladder-network combinator that merges the read-out with
the activation. Its initial values (``a2 = c2 = 1``, the rest 0) make it the
identity on the activation: the gate starts closed and the decoder starts as the
plain MLP. Also here, the recognition MLP that returns its hidden activations for
the layer-wise reconstruction error.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from guides.torch_nets import ACTIVATIONS, MLP, positive_scale


class MemoryLayer(nn.Module):
    """``h -> M^T sigmoid(C^T h + b)``: attention ``a`` in (0, 1)^S over the slots, then their mix."""

    def __init__(self, width: int, slots: int):
        super().__init__()
        self.C = nn.Parameter(nn.init.xavier_uniform_(torch.empty(width, slots)))
        self.b = nn.Parameter(torch.zeros(slots))
        self.M = nn.Parameter(0.01 * torch.randn(slots, width))

    def attention(self, h: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(h @ self.C + self.b)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.attention(h) @ self.M


class LadderCombinator(nn.Module):
    """``a1 + a2 h + a3 m + a4 h m + b1 sigmoid(c1 + c2 h + c3 m + c4 h m)``, per unit."""

    INITIAL = {"a1": 0.0, "a2": 1.0, "a3": 0.0, "a4": 0.0, "b1": 0.0, "c1": 0.0, "c2": 1.0, "c3": 0.0, "c4": 0.0}

    def __init__(self, width: int):
        super().__init__()
        for name, value in self.INITIAL.items():
            setattr(self, name, nn.Parameter(torch.full((width,), value)))

    def forward(self, h: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.c1 + self.c2 * h + self.c3 * m + self.c4 * h * m)
        return self.a1 + self.a2 * h + self.a3 * m + self.a4 * h * m + self.b1 * gate


class PlusCombinator(nn.Module):
    """The authors' "plus" option: ``h + m``."""

    def forward(self, h: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        return h + m


class MemoryDecoder(nn.Module):
    """z -> (output, hidden activations) with memory on the hidden layers.

    Layer i: ``h_g = act(W_i h + b_i)``; with ``slots[i] > 0`` then
    ``h = act(combine(h_g, memory(h_g)))`` (the code applies the layer's
    nonlinearity again after the combinator), else ``h = h_g``. The output layer
    has no memory (the code's default). ``out_dim`` is ``x_dim`` for Bernoulli logits.
    """

    def __init__(self, z_dim: int, hidden: Sequence[int], out_dim: int, slots: Sequence[int],
                 activation: str = "relu", combinator: str = "ladder"):
        super().__init__()
        sizes = [z_dim, *hidden]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.memories = nn.ModuleDict({str(i): MemoryLayer(w, s) for i, (w, s) in enumerate(zip(hidden, slots)) if s})
        make = LadderCombinator if combinator == "ladder" else (lambda width: PlusCombinator())
        self.combinators = nn.ModuleDict({str(i): make(hidden[i]) for i in map(int, self.memories)})
        self.out = nn.Linear(sizes[-1], out_dim)
        self.act = ACTIVATIONS[activation]()

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h, hiddens = z, []
        for i, linear in enumerate(self.linears):
            h = self.act(linear(h))
            if str(i) in self.memories:
                h = self.act(self.combinators[str(i)](h, self.memories[str(i)](h)))
            hiddens.append(h)
        return self.out(h), hiddens


class ActivationEncoder(nn.Module):
    """x -> (loc, scale, hidden activations): the zoo's Gaussian encoder (same ``net``
    layout, so :func:`guides.flax_nets.params_from_torch` copies it) that also returns
    what each hidden layer computed, for the local reconstruction error."""

    def __init__(self, x_dim: int, hidden: Sequence[int], z_dim: int, activation: str = "relu"):
        super().__init__()
        self.net = MLP([x_dim, *hidden, 2 * z_dim], activation)
        self.z_dim = z_dim

    def forward(self, x: torch.Tensor):
        h, hiddens = x, []
        layers = list(self.net)
        for i, layer in enumerate(layers):
            h = layer(h)
            if not isinstance(layer, nn.Linear):  # after each hidden layer's nonlinearity
                hiddens.append(h)
        loc, raw_scale = h.split(self.z_dim, dim=-1)
        return loc, positive_scale(raw_scale), hiddens
