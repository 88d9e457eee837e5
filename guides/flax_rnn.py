"""Recurrent networks over token sequences (Flax): the twins of :mod:`guides.torch_rnn`.

Each module holds its parameters as ``self.param`` pytrees named and shaped like the
torch modules' ``state_dict`` (``embedding.weight``, ``lstm.weight_ih`` ...,
``initial.weight`` of shape (out, in), LSTM gates in torch's order i, f, g, o), so
:func:`params_from_torch` copies a torch network's weights over exactly and the two
backends can be compared number for number. The recurrences are pure functions
(:func:`lstm_step`) scanned with ``jax.lax.scan``; ancestral sampling runs in the
same scan, feeding each drawn token back.

Token conventions (``<pad>`` = 0, ``<eos>`` = 1, a row's tokens up to its first
``<eos>``) are those of :mod:`zoo.text`. Register the modules with
``numpyro.contrib.module.flax_module``; ``decoder(z, key, length, method="sample")``
calls the sampler through the same handle.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

PAD, EOS = 0, 1


def token_mask(x):
    """True at each row's tokens: up to and including its first ``<eos>``."""
    eos = (x == EOS).astype(jnp.int32)
    return (jnp.cumsum(eos, -1) - eos) == 0


def last_token_index(x):
    """Index of each row's last token (its first ``<eos>``, else the last position)."""
    return token_mask(x).sum(-1) - 1


def decoder_inputs(x):
    """Teacher forcing: the input at step t is token t-1, and ``<eos>`` at step 0."""
    start = jnp.full_like(x[..., :1], EOS)
    return jnp.concatenate([start, x[..., :-1]], -1)


def sequence_log_likelihood(logits, x):
    """sum_t log Cat(x_t; softmax(logits_t)) over each row's tokens (padding masked)."""
    x = jnp.broadcast_to(x, logits.shape[:-1])
    per_step = jnp.take_along_axis(jax.nn.log_softmax(logits, -1), x[..., None], -1)[..., 0]
    return (per_step * token_mask(x)).sum(-1)


# --- parameters laid out as torch's ------------------------------------------------


def _uniform(bound: float, shape):
    return lambda key: jax.random.uniform(key, shape, minval=-bound, maxval=bound)


def linear_init(in_features: int, out_features: int):
    """torch.nn.Linear's parameters and initialisation: U(-1/sqrt(in), 1/sqrt(in))."""
    bound = 1.0 / math.sqrt(in_features)

    def init(key):
        k1, k2 = jax.random.split(key)
        return {"weight": _uniform(bound, (out_features, in_features))(k1), "bias": _uniform(bound, (out_features,))(k2)}

    return init


def lstm_init(input_size: int, hidden_size: int):
    """torch.nn.LSTM's (one layer) parameters and initialisation: U(-1/sqrt(H), 1/sqrt(H))."""
    bound = 1.0 / math.sqrt(hidden_size)
    shapes = {
        "weight_ih": (4 * hidden_size, input_size),
        "weight_hh": (4 * hidden_size, hidden_size),
        "bias_ih": (4 * hidden_size,),
        "bias_hh": (4 * hidden_size,),
    }

    def init(key):
        keys = jax.random.split(key, len(shapes))
        return {name: _uniform(bound, shape)(k) for (name, shape), k in zip(shapes.items(), keys)}

    return init


def embedding_init(vocab_size: int, embed_dim: int):
    """torch.nn.Embedding's initialisation: N(0, 1)."""
    return lambda key: {"weight": jax.random.normal(key, (vocab_size, embed_dim))}


def linear(params, x):
    return x @ params["weight"].T + params["bias"]


def lstm_step(params, carry, inputs):
    """One step of torch.nn.LSTM: gates ``i, f, g, o`` from ``W_ih x + b_ih + W_hh h + b_hh``."""
    h, c = carry
    gates = linear({"weight": params["weight_ih"], "bias": params["bias_ih"]}, inputs) + linear(
        {"weight": params["weight_hh"], "bias": params["bias_hh"]}, h
    )
    i, f, g, o = jnp.split(gates, 4, -1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return (h, c), h


def lstm(params, inputs, carry):
    """Run the LSTM over inputs (B, T, I) from carry (h, c); returns states (B, T, H)."""
    _, states = jax.lax.scan(lambda carry, x_t: lstm_step(params, carry, x_t), carry, jnp.swapaxes(inputs, 0, 1))
    return jnp.swapaxes(states, 0, 1)


def params_from_torch(module) -> dict:
    """A torch network of :mod:`guides.torch_rnn` -> the Flax twin's parameters.

    ``a.b`` state-dict names become nested dicts; torch's one-layer LSTM suffix
    ``_l0`` is dropped.
    """
    params: dict = {}
    for name, tensor in module.state_dict().items():
        *path, leaf = name.split(".")
        node = params
        for key in path:
            node = node.setdefault(key, {})
        node[leaf.removesuffix("_l0")] = jnp.asarray(np.asarray(tensor.detach().cpu()))
    return params


# --- the networks ----------------------------------------------------------------


class SequenceEncoder(nn.Module):
    """q(z|x): embedding, an LSTM, and a linear head on the state at ``<eos>``;
    returns ``(loc, scale)``, the twin of ``guides.torch_rnn.SequenceEncoder``."""

    vocab_size: int
    embed_dim: int
    hidden_size: int
    z_dim: int

    def setup(self):
        self.embedding = self.param("embedding", lambda k: embedding_init(self.vocab_size, self.embed_dim)(k))
        self.lstm = self.param("lstm", lambda k: lstm_init(self.embed_dim, self.hidden_size)(k))
        self.head = self.param("head", lambda k: linear_init(self.hidden_size, 2 * self.z_dim)(k))

    def parameters(self):
        """Touch every parameter: ``init(key, method="parameters")`` builds them without a forward pass."""
        return self.embedding, self.lstm, self.head

    def __call__(self, x):
        return self.summarise(self.embedding["weight"][x], last_token_index(x))

    def summarise(self, embedded, index):
        """``(loc, scale)`` from embedded inputs (B, T, E) read at position ``index``
        (the soft sleep step feeds expected embeddings ``p_t @ E``)."""
        zeros = jnp.zeros((embedded.shape[0], self.hidden_size))
        states = lstm(self.lstm, embedded, (zeros, zeros))
        summary = jnp.take_along_axis(states, index[:, None, None], 1)[:, 0]
        loc, raw_scale = jnp.split(linear(self.head, summary), 2, -1)
        return loc, jax.nn.softplus(raw_scale) + 1e-4

    def embedding_matrix(self):
        return self.embedding["weight"]


class SequenceDecoder(nn.Module):
    """p(x|z): LSTM with initial state ``tanh(A z + a)`` and inputs ``[e(x_{t-1}), z]``;
    the twin of ``guides.torch_rnn.SequenceDecoder`` (``condition_on_z=False``: an
    LSTM language model with the same parameters)."""

    vocab_size: int
    embed_dim: int
    hidden_size: int
    z_dim: int
    condition_on_z: bool = True

    def setup(self):
        self.embedding = self.param("embedding", lambda k: embedding_init(self.vocab_size, self.embed_dim)(k))
        self.initial = self.param("initial", lambda k: linear_init(self.z_dim, self.hidden_size)(k))
        self.lstm = self.param("lstm", lambda k: lstm_init(self.embed_dim + self.z_dim, self.hidden_size)(k))
        self.output = self.param("output", lambda k: linear_init(self.hidden_size, self.vocab_size)(k))

    def parameters(self):
        """Touch every parameter: ``init(key, method="parameters")`` builds them without a forward pass."""
        return self.embedding, self.initial, self.lstm, self.output

    def _start(self, z):
        if not self.condition_on_z:
            z = jnp.zeros_like(z)
        h0 = jnp.tanh(linear(self.initial, z))
        return z, (h0, jnp.zeros_like(h0))

    def __call__(self, z, inputs):
        """Teacher-forced logits (..., T, V) for z (..., z_dim), inputs (B, T)."""
        batch_shape = jnp.broadcast_shapes(z.shape[:-1], inputs.shape[:-1])
        length = inputs.shape[-1]
        z = jnp.broadcast_to(z, (*batch_shape, self.z_dim)).reshape(-1, self.z_dim)
        inputs = jnp.broadcast_to(inputs, (*batch_shape, length)).reshape(-1, length)
        z, carry = self._start(z)
        steps = jnp.concatenate(
            [self.embedding["weight"][inputs], jnp.broadcast_to(z[:, None], (z.shape[0], length, self.z_dim))], -1
        )
        logits = linear(self.output, lstm(self.lstm, steps, carry))
        return logits.reshape(*batch_shape, length, self.vocab_size)

    def soft_rollout(self, z, length: int):
        """Soft dreams: token distributions p_t (B, length, V) when each step is fed the
        expected embedding ``p_{t-1} @ E`` of the previous one (twin of
        ``guides.torch_rnn.soft_rollout``)."""
        z, carry = self._start(z)

        def step(state, _):
            carry, inputs = state
            carry, h = lstm_step(self.lstm, carry, jnp.concatenate([inputs, z], -1))
            p_t = jax.nn.softmax(linear(self.output, h), -1)
            return (carry, p_t @ self.embedding["weight"]), p_t

        start = jnp.broadcast_to(self.embedding["weight"][EOS], (z.shape[0], self.embed_dim))
        _, probabilities = jax.lax.scan(step, (carry, start), None, length=length)
        return jnp.swapaxes(probabilities, 0, 1)

    def sample(self, z, key, length: int, greedy: bool = False):
        """Tokens (B, length) from z (B, z_dim), drawn ancestrally (or by argmax) and
        fed back step by step; after a row's ``<eos>`` it is padded."""
        z, carry = self._start(z)

        def step(state, key_t):
            carry, token = state
            inputs = jnp.concatenate([self.embedding["weight"][token], z], -1)
            carry, h = lstm_step(self.lstm, carry, inputs)
            logits = linear(self.output, h)
            token = jnp.argmax(logits, -1) if greedy else jax.random.categorical(key_t, logits)
            return (carry, token), token

        start = jnp.full((z.shape[0],), EOS, dtype=jnp.int32)
        _, tokens = jax.lax.scan(step, (carry, start), jax.random.split(key, length))
        tokens = jnp.swapaxes(tokens, 0, 1)
        return jnp.where(token_mask(tokens), tokens, PAD)
