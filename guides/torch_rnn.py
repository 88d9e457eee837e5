"""Recurrent networks over token sequences (torch): an LSTM encoder and an
autoregressive LSTM decoder, the networks of a Bowman-style sentence VAE.

Token conventions are those of :mod:`zoo.text`: ``<pad>`` = 0, ``<eos>`` = 1 (which
also starts the decoder's input), and a sequence's tokens run up to and including
its first ``<eos>`` (:func:`token_mask`). Both networks take padded ``(B, T)`` rows
and never let padding change a result: the encoder reads its summary at the
``<eos>`` position of each row (the LSTM is causal, so later padding cannot reach
it), and the decoder's log-likelihood masks every position after ``<eos>``.

The Flax twins are in :mod:`guides.flax_rnn`, parameter for parameter (same names,
same shapes, torch's gate order i, f, g, o), so weights can be copied across.
"""

from __future__ import annotations

import torch
from torch import nn

from guides.torch_nets import positive_scale

PAD, EOS = 0, 1


def token_mask(x: torch.Tensor) -> torch.Tensor:
    """True at each row's tokens: up to and including its first ``<eos>``."""
    eos = (x == EOS).long()
    return (torch.cumsum(eos, -1) - eos) == 0


def last_token_index(x: torch.Tensor) -> torch.Tensor:
    """Index of each row's last token (its first ``<eos>``, else the last position)."""
    return token_mask(x).sum(-1) - 1


def decoder_inputs(x: torch.Tensor) -> torch.Tensor:
    """Teacher forcing: the input at step t is token t-1, and ``<eos>`` at step 0."""
    start = torch.full_like(x[..., :1], EOS)
    return torch.cat([start, x[..., :-1]], -1)


class SequenceEncoder(nn.Module):
    """q(z|x): embedding, an LSTM, and a linear head on the state at ``<eos>``.

    Returns ``(loc, scale)`` of a diagonal Gaussian, shape (B, z_dim) each.
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, z_dim: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, 2 * z_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.summarise(self.embedding(x), last_token_index(x))

    def summarise(self, embedded: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loc, scale)`` from embedded inputs (B, T, E), read at position ``index``
        of each row; ``forward`` embeds tokens, the soft sleep step feeds expected
        embeddings ``p_t @ E``."""
        states, _ = self.lstm(embedded)  # (B, T, H)
        summary = states[torch.arange(len(embedded), device=embedded.device), index]
        loc, raw_scale = self.head(summary).chunk(2, -1)
        return loc, positive_scale(raw_scale)


class SequenceDecoder(nn.Module):
    """p(x|z) = prod_t Cat(x_t; softmax(W h_t)): an LSTM whose initial state is
    ``tanh(A z + a)`` and whose input at every step is ``[e(x_{t-1}), z]``.

    ``logits(z, inputs)`` is the teacher-forced pass, (..., T, V) for z of shape
    (..., z_dim) and inputs (B, T) broadcastable against z's batch shape;
    ``sample(z, length)`` draws tokens ancestrally. With ``condition_on_z=False``
    the decoder sees zeros instead of z: an LSTM language model with exactly the
    same parameters.
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, z_dim: int, condition_on_z: bool = True):
        super().__init__()
        self.z_dim = z_dim
        self.condition_on_z = condition_on_z
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.initial = nn.Linear(z_dim, hidden_size)
        self.lstm = nn.LSTM(embed_dim + z_dim, hidden_size, batch_first=True)
        self.output = nn.Linear(hidden_size, vocab_size)

    def _start(self, z: torch.Tensor):
        if not self.condition_on_z:
            z = torch.zeros_like(z)
        h0 = torch.tanh(self.initial(z)).unsqueeze(0)
        return z, (h0, torch.zeros_like(h0))

    def logits(self, z: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        batch_shape = torch.broadcast_shapes(z.shape[:-1], inputs.shape[:-1])
        length = inputs.shape[-1]
        z = z.expand(*batch_shape, self.z_dim).reshape(-1, self.z_dim)
        inputs = inputs.expand(*batch_shape, length).reshape(-1, length)
        z, state = self._start(z)
        steps = torch.cat([self.embedding(inputs), z.unsqueeze(1).expand(-1, length, -1)], -1)
        states, _ = self.lstm(steps, state)
        return self.output(states).reshape(*batch_shape, length, -1)

    def soft_rollout(self, z: torch.Tensor, length: int) -> torch.Tensor:
        """Soft dreams: the token distributions p_t (B, length, V) when each step is
        fed the expected embedding ``p_{t-1} @ E`` of the previous step instead of a
        sampled token. Differentiable in the decoder's parameters and in z."""
        z, state = self._start(z)
        inputs = self.embedding(torch.full((len(z),), EOS, dtype=torch.long, device=z.device))
        probabilities = []
        for _ in range(length):
            out, state = self.lstm(torch.cat([inputs, z], -1).unsqueeze(1), state)
            p_t = torch.softmax(self.output(out[:, 0]), -1)
            probabilities.append(p_t)
            inputs = p_t @ self.embedding.weight
        return torch.stack(probabilities, 1)

    @torch.no_grad()
    def sample(self, z: torch.Tensor, length: int, greedy: bool = False) -> torch.Tensor:
        """Tokens (B, length) from z (B, z_dim): ancestral (or argmax) draws, fed
        back step by step; after a row's ``<eos>`` it is padded."""
        z, state = self._start(z)
        token = torch.full((len(z),), EOS, dtype=torch.long, device=z.device)
        tokens = []
        for _ in range(length):
            step = torch.cat([self.embedding(token), z], -1).unsqueeze(1)
            out, state = self.lstm(step, state)
            logits = self.output(out[:, 0])
            token = logits.argmax(-1) if greedy else torch.distributions.Categorical(logits=logits).sample()
            tokens.append(token)
        tokens = torch.stack(tokens, -1)
        return torch.where(token_mask(tokens), tokens, torch.full_like(tokens, PAD))


def sequence_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """sum_t log Cat(x_t; softmax(logits_t)) over each row's tokens (padding masked);
    logits (..., T, V), x (B, T) broadcastable against them."""
    x = x.expand(logits.shape[:-1])
    per_step = torch.log_softmax(logits, -1).gather(-1, x.unsqueeze(-1)).squeeze(-1)
    return (per_step * token_mask(x)).sum(-1)
