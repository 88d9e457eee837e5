"""MMD between samples (NumPyro), the twin of :mod:`zoo.pyro_backend.objectives.mmd`."""

from __future__ import annotations

import jax
import jax.numpy as jnp

# --- MMD (see zoo.pyro_backend.objectives for the conventions) ----------------


def gaussian_kernel(a, b, gamma: float):
    """``k(a, b) = exp(-gamma ||a - b||^2)`` for every pair: (n, d), (m, d) -> (n, m)."""
    squared = jnp.sum(a**2, -1)[:, None] + jnp.sum(b**2, -1)[None, :] - 2 * a @ b.T
    return jnp.exp(-gamma * jnp.maximum(squared, 0.0))


def mmd(a, b, gamma: float, a_weights=None, b_weights=None):
    """Squared distance of Gaussian-kernel mean embeddings, with optional point weights."""
    u = jnp.full(a.shape[:1], 1.0 / a.shape[0]) if a_weights is None else a_weights / a_weights.sum()
    v = jnp.full(b.shape[:1], 1.0 / b.shape[0]) if b_weights is None else b_weights / b_weights.sum()
    value = u @ gaussian_kernel(a, a, gamma) @ u + v @ gaussian_kernel(b, b, gamma) @ v - 2 * u @ gaussian_kernel(a, b, gamma) @ v
    return jnp.maximum(value, 0.0)


def mmd_between_groups(z, group, gamma: float):
    """MMD between ``z[group == 0]`` and ``z[group == 1]``; zero if a group is absent.

    Masks instead of boolean indexing keep shapes static under ``jit``.
    """
    in_first = (group == 0).astype(z.dtype)
    in_second = (group == 1).astype(z.dtype)
    both_present = (in_first.sum() > 0) & (in_second.sum() > 0)
    safe_first = jnp.where(both_present, in_first, 1.0)
    safe_second = jnp.where(both_present, in_second, 1.0)
    return jnp.where(both_present, mmd(z, z, gamma, safe_first, safe_second), 0.0)


def random_fourier_features(z, gamma: float, rng_key, num_features: int = 500):
    d = z.shape[-1]
    weight_key, phase_key = jax.random.split(rng_key)
    weights = jax.random.normal(weight_key, (d, num_features)) * jnp.sqrt(2 * gamma)
    phase = jax.random.uniform(phase_key, (num_features,)) * 2 * jnp.pi
    return jnp.sqrt(2.0 / num_features) * jnp.cos(z @ weights + phase)


def mmd_random_features(a, b, gamma: float, rng_key, num_features: int = 500):
    features = random_fourier_features(jnp.concatenate([a, b]), gamma, rng_key, num_features)
    return jnp.sum((features[: len(a)].mean(0) - features[len(a) :].mean(0)) ** 2)


