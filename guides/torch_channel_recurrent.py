"""The CRVAE's channel-recurrent pathways (PyTorch), after the authors' Torch code.

The encoder's last hidden layer ``h`` (the zoo's stand-in for the conv feature map
``U``) is split into T blocks ``u_1..u_T``. The latent mean comes from all of ``h``
at once, without recurrence; an LSTM runs over the blocks and each step's output
gives that block's scale:

    mu(x) = W_mu h + b,    h_t = LSTM_enc(u_t, h_{t-1}),    sigma_t = softplus(W_sigma h_t)

The decoder runs a second LSTM over the latent blocks, ``u^_t = LSTM_dec(z_t, ...)``,
``z^_t = W u^_t + b`` (plus ``z_t`` itself with ``residual``, the zoo's default:
through the LSTM alone the decoder learned to ignore z, see the CRVAE card), and
decodes the concatenated ``z^`` with an MLP. With
``recurrent=False`` both LSTMs are dropped: the encoder's scale is a linear head
on ``h`` and the decoder an MLP on z, i.e. exactly the VAE's networks with their
last encoder layer split into two heads. Every block accepts arbitrary leading
batch dimensions. The Flax twin is :mod:`guides.flax_channel_recurrent`.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from guides.torch_nets import ACTIVATIONS, MLP, positive_scale


def _flat(t: torch.Tensor, steps: int) -> tuple[torch.Size, torch.Tensor]:
    """(lead, (N, steps, block)) for a tensor of shape (*lead, steps * block)."""
    lead = t.shape[:-1]
    return lead, t.reshape(-1, steps, t.shape[-1] // steps)


class ChannelRecurrentEncoder(nn.Module):
    """x -> (loc, scale) of q(z|x), scale from an LSTM over channel blocks (crvae.3)."""

    def __init__(self, x_dim: int, hidden: Sequence[int], z_dim: int, steps: int, lstm_hidden: int,
                 recurrent: bool = True, activation: str = "relu"):
        super().__init__()
        self.steps, self.recurrent = steps, recurrent
        self.body = MLP([x_dim, *hidden], activation)
        self.activation = ACTIVATIONS[activation]()
        self.loc = nn.Linear(hidden[-1], z_dim)
        if recurrent:
            self.rnn = nn.LSTM(hidden[-1] // steps, lstm_hidden, batch_first=True)
            self.scale = nn.Linear(lstm_hidden, z_dim // steps)  # W_sigma, shared by the steps
        else:
            self.scale = nn.Linear(hidden[-1], z_dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``h = (u_1, ..., u_T)``, the last hidden layer."""
        return self.activation(self.body(x))

    def scales(self, h: torch.Tensor) -> torch.Tensor:
        """``(sigma_1, ..., sigma_T)`` from the features; sigma_t depends on u_1..u_t only."""
        if not self.recurrent:
            return positive_scale(self.scale(h))
        lead, blocks = _flat(h, self.steps)
        out, _ = self.rnn(blocks)  # (N, T, lstm_hidden)
        return positive_scale(self.scale(out)).reshape(*lead, -1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x)
        return self.loc(h), self.scales(h)


class ChannelRecurrentDecoder(nn.Module):
    """z -> Bernoulli logits through an LSTM over the latent blocks (crvae.2)."""

    def __init__(self, z_dim: int, hidden: Sequence[int], x_dim: int, steps: int, lstm_hidden: int,
                 recurrent: bool = True, activation: str = "relu", residual: bool = True):
        super().__init__()
        self.steps, self.recurrent, self.residual = steps, recurrent, residual
        if recurrent:
            self.rnn = nn.LSTM(z_dim // steps, lstm_hidden, batch_first=True)
            self.project = nn.Linear(lstm_hidden, z_dim // steps)  # W, shared by the steps
        self.net = MLP([z_dim, *hidden, x_dim], activation)

    def transform(self, z: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """``(u^, z^)``: the decoder LSTM's outputs (*lead, T * lstm_hidden) and their projection."""
        if not self.recurrent:
            return None, z
        lead, blocks = _flat(z, self.steps)
        u_hat, _ = self.rnn(blocks)
        z_hat = self.project(u_hat).reshape(*lead, -1)
        return u_hat.reshape(*lead, -1), z + z_hat if self.residual else z_hat

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.transform(z)[1])
