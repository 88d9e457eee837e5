"""The CRVAE's channel-recurrent pathways (Flax), the twin of :mod:`guides.torch_channel_recurrent`.

LSTMs are ``flax.linen.RNN(LSTMCell)`` scanned over the T blocks; their gates
(i, f, g, o) are those of ``torch.nn.LSTM``, so :func:`channel_recurrent_params_from_torch`
copies a torch network's weights exactly.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from guides.flax_nets import ACTIVATIONS, MLP, positive_scale


def _flat(t, steps: int):
    lead = t.shape[:-1]
    return lead, t.reshape(-1, steps, t.shape[-1] // steps)


class ChannelRecurrentEncoder(nn.Module):
    """x -> (loc, scale) of q(z|x), scale from an LSTM over channel blocks."""

    hidden: Sequence[int]
    z_dim: int
    steps: int
    lstm_hidden: int
    recurrent: bool = True
    activation: str = "relu"

    @nn.compact
    def __call__(self, x):
        h = ACTIVATIONS[self.activation](MLP(list(self.hidden), self.activation, name="body")(x))
        loc = nn.Dense(self.z_dim, name="loc")(h)
        if not self.recurrent:
            return loc, positive_scale(nn.Dense(self.z_dim, name="scale")(h))
        lead, blocks = _flat(h, self.steps)
        # parent=None: the cell belongs to the RNN ("rnn/cell"), as in the decoder.
        out = nn.RNN(nn.LSTMCell(self.lstm_hidden, parent=None), name="rnn")(blocks)
        raw = nn.Dense(self.z_dim // self.steps, name="scale")(out)
        return loc, positive_scale(raw).reshape(*lead, -1)


class ChannelRecurrentDecoder(nn.Module):
    """z -> Bernoulli logits through an LSTM over the latent blocks; ``transform`` gives (u^, z^)."""

    hidden: Sequence[int]
    x_dim: int
    z_dim: int
    steps: int
    lstm_hidden: int
    recurrent: bool = True
    activation: str = "relu"
    residual: bool = True  # z^ = z + W u^ (see the torch twin)

    def setup(self):
        if self.recurrent:
            self.rnn = nn.RNN(nn.LSTMCell(self.lstm_hidden))
            self.project = nn.Dense(self.z_dim // self.steps)
        self.net = MLP([*self.hidden, self.x_dim], self.activation)

    def transform(self, z):
        if not self.recurrent:
            return None, z
        lead, blocks = _flat(z, self.steps)
        u_hat = self.rnn(blocks)
        z_hat = self.project(u_hat).reshape(*lead, -1)
        return u_hat.reshape(*lead, -1), z + z_hat if self.residual else z_hat

    def __call__(self, z):
        return self.net(self.transform(z)[1])


def _dense(linear) -> dict:
    return {"kernel": jnp.asarray(linear.weight.detach().cpu().numpy().T), "bias": jnp.asarray(linear.bias.detach().cpu().numpy())}


def _mlp(mlp) -> dict:
    import torch

    linears = [m for m in mlp if isinstance(m, torch.nn.Linear)]
    return {f"Dense_{i}": _dense(layer) for i, layer in enumerate(linears)}


def _lstm(lstm) -> dict:
    """torch.nn.LSTM (one layer) -> flax RNN(LSTMCell) parameters: gates in the order i, f, g, o."""
    w_ih, w_hh = (getattr(lstm, f"weight_{n}_l0").detach().cpu().numpy() for n in ("ih", "hh"))
    bias = (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach().cpu().numpy()
    cell = {}
    for gate, a, b, bb in zip("ifgo", np.split(w_ih, 4), np.split(w_hh, 4), np.split(bias, 4)):
        cell[f"i{gate}"] = {"kernel": jnp.asarray(a.T)}
        cell[f"h{gate}"] = {"kernel": jnp.asarray(b.T), "bias": jnp.asarray(bb)}
    return {"cell": cell}


def channel_recurrent_params_from_torch(module) -> dict:
    """Flax parameters equal to a torch ChannelRecurrentEncoder's or ChannelRecurrentDecoder's weights."""
    if hasattr(module, "body"):  # the encoder
        params = {"body": _mlp(module.body), "loc": _dense(module.loc), "scale": _dense(module.scale)}
        if module.recurrent:
            params["rnn"] = _lstm(module.rnn)
        return params
    params = {"net": _mlp(module.net)}
    if module.recurrent:
        params.update(rnn=_lstm(module.rnn), project=_dense(module.project))
    return params
