"""MMD between samples (Pyro): VFAE's penalty between sensitive groups, InfoVAE's
between the aggregate posterior and the prior."""

from __future__ import annotations

import math

import torch

# --- MMD ---------------------------------------------------------------------
# Used by VFAE (between the sensitive groups' z1) and InfoVAE (between the
# aggregate posterior and the prior). The estimator is the squared distance of the
# kernel mean embeddings (a V-statistic): non-negative, and zero for identical
# samples. Weights make group selection a mask, so shapes stay fixed.


def gaussian_kernel(a: torch.Tensor, b: torch.Tensor, gamma: float) -> torch.Tensor:
    """``k(a, b) = exp(-gamma ||a - b||^2)`` for every pair: (n, d), (m, d) -> (n, m)."""
    return torch.exp(-gamma * torch.cdist(a, b).pow(2))


def mmd(a, b, gamma: float, a_weights=None, b_weights=None) -> torch.Tensor:
    """``|| sum_i u_i psi(a_i) - sum_j v_j psi(b_j) ||^2`` with the Gaussian kernel.

    ``a_weights``/``b_weights`` default to uniform (``1/n``); they need not be
    normalised (they are divided by their sum), and a zero weight drops a point.
    """
    u = torch.full(a.shape[:1], 1.0 / a.shape[0], dtype=a.dtype, device=a.device) if a_weights is None else a_weights / a_weights.sum()
    v = torch.full(b.shape[:1], 1.0 / b.shape[0], dtype=b.dtype, device=b.device) if b_weights is None else b_weights / b_weights.sum()
    return (
        u @ gaussian_kernel(a, a, gamma) @ u
        + v @ gaussian_kernel(b, b, gamma) @ v
        - 2 * u @ gaussian_kernel(a, b, gamma) @ v
    ).clamp_min(0.0)


def mmd_between_groups(z, group, gamma: float) -> torch.Tensor:
    """MMD between ``z[group == 0]`` and ``z[group == 1]`` (VFAE's penalty).

    Zero when either group is absent from the batch.
    """
    in_first = (group == 0).to(z.dtype)
    in_second = (group == 1).to(z.dtype)
    if in_first.sum() == 0 or in_second.sum() == 0:
        return z.new_zeros(())
    return mmd(z, z, gamma, in_first, in_second)


def random_fourier_features(z, gamma: float, num_features: int = 500, generator=None) -> torch.Tensor:
    """``psi(z) = sqrt(2/D) cos(W z + b)`` with ``E[psi(a).psi(b)] = exp(-gamma ||a-b||^2)``.

    ``W ~ N(0, 2 gamma I)``, ``b ~ U(0, 2 pi)`` (Rahimi & Recht 2007): the linear-time
    MMD of the VFAE paper for large batches.
    """
    d = z.shape[-1]
    weights = torch.randn(d, num_features, generator=generator, dtype=z.dtype, device=z.device) * math.sqrt(2 * gamma)
    phase = torch.rand(num_features, generator=generator, dtype=z.dtype, device=z.device) * 2 * math.pi
    return math.sqrt(2.0 / num_features) * torch.cos(z @ weights + phase)


def mmd_random_features(a, b, gamma: float, num_features: int = 500, generator=None) -> torch.Tensor:
    features = random_fourier_features(torch.cat([a, b]), gamma, num_features, generator)
    return (features[: len(a)].mean(0) - features[len(a) :].mean(0)).pow(2).sum()


