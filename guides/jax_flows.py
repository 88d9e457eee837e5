"""Autoregressive-flow priors from NumPyro's own transforms (JAX), for the VLAE.

The twin of :mod:`guides.torch_flows` (read it for the math): each step is
``numpyro.distributions.flows.InverseAutoregressiveTransform`` on a
``numpyro.nn.AutoregressiveNN`` (a stax MADE, registered with ``numpyro.module``),
``T(z) = mu(z) + sigma(z) * z``; the prior is ``TransformedDistribution(N(0, I),
[T_K^{-1}, ..., T_1^{-1}])``. Step ``k`` uses the same variable order and the same
MADE masks as the torch twin, so :func:`params_from_torch` copies weights exactly.
"""

from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from numpyro.distributions.flows import InverseAutoregressiveTransform
from numpyro.nn import AutoregressiveNN


def step_permutation(z_dim: int, step: int) -> np.ndarray:
    """The variable order of flow step ``step``: identity for even steps, reversed for odd."""
    order = np.arange(z_dim)
    return order if step % 2 == 0 else order[::-1].copy()


def autoregressive_nets(z_dim: int, steps: int, hidden: Sequence[int]) -> list:
    """``steps`` stax MADEs ``(init_fn, apply_fn)`` giving ``(mu, log sigma)``."""
    return [AutoregressiveNN(z_dim, list(hidden), permutation=step_permutation(z_dim, k)) for k in range(steps)]


def flow_prior(arns: Sequence, loc) -> dist.TransformedDistribution:
    """The AF prior with base ``N(0, I)`` shaped like ``loc``; ``arns`` are the bound
    MADEs (what ``numpyro.module`` returns), first step first."""
    base = dist.Normal(jnp.zeros_like(loc), 1.0).to_event(1)
    return dist.TransformedDistribution(base, [InverseAutoregressiveTransform(arn).inv for arn in reversed(arns)])


def params_from_torch(transform) -> list:
    """stax parameters of a MADE equal to a Pyro ``AffineAutoregressive``'s ``arn``:
    ``[(W, b), (), (W, b), ..., (W, b)]`` with ``W`` as (in, out)."""
    params: list = []
    layers = list(transform.arn.layers)
    for i, layer in enumerate(layers):
        params.append(
            (jnp.asarray(layer.weight.detach().cpu().numpy().T), jnp.asarray(layer.bias.detach().cpu().numpy()))
        )
        if i < len(layers) - 1:
            params.append(())  # the nonlinearity's (empty) parameters
    return params
