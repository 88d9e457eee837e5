"""Stick-breaking pieces for the NumPyro variants, the twin of :mod:`guides.torch_stick`.

NumPyro's own ``Kumaraswamy`` already samples by the inverse CDF in log space with
clamps (the torch twin copies them), so only the encoder and the weights live here.
Its registered ``kl_divergence(Kumaraswamy, Beta)`` is a 10-term series that is
biased (about -0.03 nats per stick at a=2, b=3 against Beta(1, 5)); the variants
estimate the KL by Monte Carlo instead.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from guides.flax_nets import MLP, positive_scale


class KumaraswamyEncoder(nn.Module):
    """x -> ``(a, b)``, the concentrations of ``q(v|x)`` over ``num_sticks`` fractions."""

    hidden: Sequence[int]
    num_sticks: int
    activation: str = "relu"

    @nn.compact
    def __call__(self, x):
        out = MLP([*self.hidden, 2 * self.num_sticks], self.activation, name="net")(x)
        raw_a, raw_b = jnp.split(out, 2, axis=-1)
        return positive_scale(raw_a), positive_scale(raw_b)


def stick_breaking_weights(v):
    """``pi_k = v_k prod_{j<k} (1 - v_j)``, ``pi_K = prod_{j<K} (1 - v_j)`` (see the torch twin)."""
    remaining = jnp.cumprod(1 - v, axis=-1)
    before = jnp.concatenate([jnp.ones_like(v[..., :1]), remaining[..., :-1]], axis=-1)
    return jnp.concatenate([v * before, remaining[..., -1:]], axis=-1)
