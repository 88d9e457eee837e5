"""Parameter counting for MEM-VAE and the parameter-matched VAE baseline, backend-free.

Li, Zhu & Zhang (2016) compare MEM-VAE with a VAE whose hidden layers are widened
until it has as many parameters ("Large_VAE", 530-530 against 500-500 with memory).
:func:`matched_vae_hidden` finds that width for any configuration; the tests check
the counts against the real torch and Flax modules.
"""

from __future__ import annotations

from typing import Sequence


def dense_count(fan_in: int, fan_out: int) -> int:
    return fan_in * fan_out + fan_out


def mlp_count(sizes: Sequence[int]) -> int:
    return sum(dense_count(a, b) for a, b in zip(sizes[:-1], sizes[1:]))


def output_width(x_dim: int, likelihood: str) -> int:
    """Bernoulli logits, or a Gaussian's location and scale."""
    return x_dim if likelihood == "bernoulli" else 2 * x_dim


def vae_count(x_dim: int, z_dim: int, hidden: Sequence[int], likelihood: str = "bernoulli") -> int:
    """Parameters of the zoo's VAE: encoder ``x-hidden-2z``, decoder ``z-reversed(hidden)-x``."""
    encoder = mlp_count([x_dim, *hidden, 2 * z_dim])
    decoder = mlp_count([z_dim, *reversed(hidden), output_width(x_dim, likelihood)])
    return encoder + decoder


def memory_count(width: int, slots: int, combinator: str) -> int:
    """One memory layer: controller C (width x slots), bias b (slots), memory M
    (slots x width), and the ladder combinator's nine vectors of ``width``."""
    if slots == 0:
        return 0
    return 2 * width * slots + slots + (9 * width if combinator == "ladder" else 0)


def mevae_count(x_dim: int, z_dim: int, hidden: Sequence[int], slots: Sequence[int], combinator: str,
                likelihood: str = "bernoulli") -> int:
    """MEM-VAE: the VAE's networks plus a memory on decoder hidden layer i with ``slots[i]``
    slots (decoder order, the layer next to z first)."""
    widths = list(reversed(hidden))
    return vae_count(x_dim, z_dim, hidden, likelihood) + sum(
        memory_count(w, s, combinator) for w, s in zip(widths, slots))


def matched_vae_hidden(x_dim: int, z_dim: int, depth: int, target: int, likelihood: str = "bernoulli") -> tuple[int, ...]:
    """Equal hidden widths ``(w,) * depth`` whose VAE has the parameter count closest to ``target``."""
    best, width = None, 1
    while True:
        count = vae_count(x_dim, z_dim, (width,) * depth, likelihood)
        if best is None or abs(count - target) < abs(best[1] - target):
            best = (width, count)
        if count > target:
            return (best[0],) * depth
        width += 1
