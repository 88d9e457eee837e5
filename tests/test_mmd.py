"""Property tests of the MMD terms of both backends (zoo/*_backend/objectives.py).

The estimator is the squared distance of kernel mean embeddings with the Gaussian
kernel ``k(a, b) = exp(-gamma ||a - b||^2)`` and point weights (VFAE's group
masks). It is checked against a plain double loop over the points, for samples of
one distribution (close to 0), under a growing mean shift (grows), across backends
(agree) and against its random-Fourier-feature approximation (unbiased for it).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from zoo.numpyro_backend import objectives as nobj
from zoo.pyro_backend import objectives as pobj

finite = st.floats(-3, 3, allow_nan=False, width=64)
weights_of = st.floats(0.1, 2.0, allow_nan=False, width=64)


def mmd_double_loop(a, b, gamma, u=None, v=None) -> float:
    """``sum_ij u_i u_j k(a_i,a_j) + sum_ij v_i v_j k(b_i,b_j) - 2 sum_ij u_i v_j k(a_i,b_j)``,
    one pair at a time, with ``u``, ``v`` normalised to sum to 1."""
    u = np.full(len(a), 1 / len(a)) if u is None else np.asarray(u) / np.sum(u)
    v = np.full(len(b), 1 / len(b)) if v is None else np.asarray(v) / np.sum(v)

    def k(p, q):
        return math.exp(-gamma * sum((pi - qi) ** 2 for pi, qi in zip(p, q)))

    total = 0.0
    for i in range(len(a)):
        for j in range(len(a)):
            total += u[i] * u[j] * k(a[i], a[j])
    for i in range(len(b)):
        for j in range(len(b)):
            total += v[i] * v[j] * k(b[i], b[j])
    for i in range(len(a)):
        for j in range(len(b)):
            total -= 2 * u[i] * v[j] * k(a[i], b[j])
    return total


@st.composite
def two_samples(draw, max_points=6, max_dim=3):
    dim = draw(st.integers(1, max_dim))
    n, m = draw(st.integers(1, max_points)), draw(st.integers(1, max_points))
    a = draw(arrays(np.float64, (n, dim), elements=finite))
    b = draw(arrays(np.float64, (m, dim), elements=finite))
    u = draw(arrays(np.float64, (n,), elements=weights_of))
    v = draw(arrays(np.float64, (m,), elements=weights_of))
    gamma = draw(st.floats(0.05, 2.0))
    return a, b, u, v, gamma


def torch_mmd(a, b, gamma, u=None, v=None) -> float:
    t = lambda w: None if w is None else torch.tensor(w)  # noqa: E731
    return pobj.mmd(torch.tensor(a), torch.tensor(b), gamma, t(u), t(v)).item()


def jax_mmd(a, b, gamma, u=None, v=None) -> float:
    j = lambda w: None if w is None else jnp.asarray(w, jnp.float32)  # noqa: E731
    return float(nobj.mmd(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32), gamma, j(u), j(v)))


# Shapes vary freely for torch. JAX compiles every operation once per shape, so its
# checks draw values, not shapes.


@settings(max_examples=40, deadline=None)
@given(two_samples())
def test_mmd_equals_the_double_loop(sample):
    a, b, u, v, gamma = sample
    assert torch_mmd(a, b, gamma) == pytest.approx(mmd_double_loop(a, b, gamma), abs=1e-9)
    assert torch_mmd(a, b, gamma, u, v) == pytest.approx(mmd_double_loop(a, b, gamma, u, v), abs=1e-9)


@settings(max_examples=15, deadline=None)
@given(st.tuples(
    arrays(np.float64, (5, 2), elements=finite), arrays(np.float64, (4, 2), elements=finite),
    arrays(np.float64, (5,), elements=weights_of), arrays(np.float64, (4,), elements=weights_of),
    st.floats(0.05, 2.0),
))
def test_backends_agree_and_equal_the_double_loop(sample):
    a, b, u, v, gamma = sample
    for weights in ((None, None), (u, v)):
        expected = mmd_double_loop(a, b, gamma, *weights)
        assert jax_mmd(a, b, gamma, *weights) == pytest.approx(expected, abs=2e-5)  # float32
        assert torch_mmd(a, b, gamma, *weights) == pytest.approx(expected, abs=1e-9)  # float64


@settings(max_examples=40, deadline=None)
@given(two_samples())
def test_mmd_between_groups_is_the_mmd_of_the_two_groups(sample):
    a, b, _, _, gamma = sample
    z = np.concatenate([a, b])
    group = np.concatenate([np.zeros(len(a)), np.ones(len(b))]).astype(np.int64)
    order = np.random.default_rng(len(z)).permutation(len(z))  # groups interleaved
    z, group = z[order], group[order]
    expected = mmd_double_loop(a, b, gamma)
    assert pobj.mmd_between_groups(torch.tensor(z), torch.tensor(group), gamma).item() == pytest.approx(expected, abs=1e-9)
    assert pobj.mmd_between_groups(torch.tensor(z), torch.zeros(len(z)), gamma).item() == 0.0


@settings(max_examples=10, deadline=None)
@given(arrays(np.float64, (7, 2), elements=finite), st.lists(st.integers(0, 1), min_size=7, max_size=7))
def test_numpyro_mmd_between_groups_under_jit(z, group):
    """Masks keep the shapes static, so the term compiles; an absent group gives 0."""
    group = np.asarray(group)
    jitted = jax.jit(nobj.mmd_between_groups, static_argnums=2)
    value = float(jitted(jnp.asarray(z, jnp.float32), jnp.asarray(group), 0.5))
    if group.min() == group.max():
        assert value == 0.0
    else:
        assert value == pytest.approx(mmd_double_loop(z[group == 0], z[group == 1], 0.5), abs=2e-5)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 8))
def test_two_samples_of_one_distribution_have_mmd_near_zero(seed, dim):
    """For n draws of one distribution the V-statistic's mean is below 2/n."""
    rng = np.random.default_rng(seed)
    n = 400
    a, b = rng.normal(size=(n, dim)), rng.normal(size=(n, dim))
    assert torch_mmd(a, b, 1.0 / dim) < 4 / n
    # A shift of one standard deviation is far above that noise level.
    assert torch_mmd(a, b + 1.0, 1.0 / dim) > 20 / n


def test_numpyro_mmd_of_one_distribution_is_near_zero_and_grows_with_a_shift():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(400, 3)), rng.normal(size=(400, 3))
    values = [jax_mmd(a, b + t, 1 / 3) for t in (0.0, 0.5, 1.0, 2.0)]
    assert values[0] < 4 / 400
    assert all(lo < hi for lo, hi in zip(values, values[1:]))
    np.testing.assert_allclose(values, [torch_mmd(a, b + t, 1 / 3) for t in (0.0, 0.5, 1.0, 2.0)], atol=1e-5)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 6))
def test_mmd_grows_with_the_mean_shift(seed, dim):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(150, dim)), rng.normal(size=(150, dim))
    b += a.mean(0) - b.mean(0)  # the shift starts from equal sample means
    direction = rng.normal(size=dim)
    direction /= np.linalg.norm(direction)
    gamma = 0.5 / dim
    values = [torch_mmd(a, b + t * direction, gamma) for t in (0.0, 0.5, 1.0, 2.0, 4.0)]
    assert all(lo < hi for lo, hi in zip(values, values[1:])), values
    # Far apart, every cross-kernel vanishes: the MMD is the two self-similarity terms.
    far = torch_mmd(a, b + 100 * direction, gamma)
    a_term = pobj.gaussian_kernel(torch.tensor(a), torch.tensor(a), gamma).mean().item()
    b_term = pobj.gaussian_kernel(torch.tensor(b), torch.tensor(b), gamma).mean().item()
    assert far == pytest.approx(a_term + b_term, rel=1e-9)


@settings(max_examples=6, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0.1, 1.0))
def test_random_fourier_features_approximate_the_exact_mmd(seed, gamma):
    """``E[psi(a).psi(b)] = k(a, b)``, so with D features the RFF MMD is within
    a few ``1/sqrt(D)`` of the exact V-statistic, in both backends."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(60, 2)), rng.normal(0.7, 1.0, size=(50, 2))
    exact = mmd_double_loop(a, b, gamma)
    features = 20000
    generator = torch.Generator().manual_seed(seed)
    torch_value = pobj.mmd_random_features(torch.tensor(a), torch.tensor(b), gamma, features, generator).item()
    jax_value = float(nobj.mmd_random_features(jnp.asarray(a), jnp.asarray(b), gamma, jax.random.PRNGKey(seed), features))
    tolerance = 6 / math.sqrt(features)
    assert abs(torch_value - exact) < tolerance
    assert abs(jax_value - exact) < tolerance


def test_random_fourier_features_reproduce_the_kernel():
    """The inner product of the features is the Gaussian kernel (Rahimi & Recht)."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5, 3))
    gamma, features = 0.4, 200000
    psi = pobj.random_fourier_features(torch.tensor(z), gamma, features, torch.Generator().manual_seed(1))
    np.testing.assert_allclose((psi @ psi.T).numpy(), pobj.gaussian_kernel(torch.tensor(z), torch.tensor(z), gamma).numpy(), atol=0.02)
    psi = nobj.random_fourier_features(jnp.asarray(z), gamma, jax.random.PRNGKey(1), features)
    np.testing.assert_allclose(np.asarray(psi @ psi.T), np.asarray(nobj.gaussian_kernel(jnp.asarray(z), jnp.asarray(z), gamma)), atol=0.02)


# --- the U-statistic, its interval and its test (zoo.evaluate) ---------------------


def test_u_statistic_drops_the_diagonal_of_the_v_statistic():
    from zoo.evaluate import mmd_u_statistic

    rng = np.random.default_rng(5)
    a, b, gamma = rng.normal(size=(30, 3)), rng.normal(size=(20, 3)) + 0.5, 0.3
    k = lambda p, q: np.exp(-gamma * ((p[:, None] - q[None]) ** 2).sum(-1))  # noqa: E731
    by_hand = ((k(a, a).sum() - 30) / (30 * 29) + (k(b, b).sum() - 20) / (20 * 19) - 2 * k(a, b).mean())
    assert mmd_u_statistic(a, b, gamma) == pytest.approx(by_hand, rel=1e-12)


def test_u_statistic_of_two_gaussians_matches_the_closed_form():
    """Averaged over repeats, MMD^2_u of N(0, I) and N(0.3, I) samples is the closed
    form (unbiased); for two samples of N(0, I) it averages 0, where the V-statistic
    sits at its floor 2 (1 - (1 + 4 gamma)^(-d/2)) / n (VARIANTS.md §11)."""
    from zoo.evaluate import gaussian_mmd_squared, mmd_u_statistic, mmd_v_statistic

    rng = np.random.default_rng(0)
    d, n, gamma, repeats = 5, 200, 1 / 10, 40
    shifted, same, same_v = [], [], []
    for _ in range(repeats):
        a, b, c = rng.normal(size=(n, d)), rng.normal(size=(n, d)) + 0.3, rng.normal(size=(n, d))
        shifted.append(mmd_u_statistic(a, b, gamma))
        same.append(mmd_u_statistic(a, c, gamma))
        same_v.append(mmd_v_statistic(a, c, gamma))
    closed = gaussian_mmd_squared(np.zeros(d), 1.0, np.full(d, 0.3), 1.0, gamma)
    stderr = np.std(shifted) / np.sqrt(repeats)
    assert abs(np.mean(shifted) - closed) < 3 * stderr
    assert abs(np.mean(same)) < 3 * np.std(same) / np.sqrt(repeats)
    floor = 2 * (1 - (1 + 4 * gamma) ** (-d / 2)) / n
    assert np.mean(same_v) == pytest.approx(floor, rel=0.1)


def test_permutation_test_and_bootstrap_interval():
    from zoo.evaluate import gaussian_mmd_squared, mmd_test

    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(300, 4)), rng.normal(size=(300, 4)) + 0.4
    shifted = mmd_test(a, b, 1 / 8, num_resamples=200)
    assert shifted["mmd_p_value"] < 0.01
    assert shifted["mmd_u_low"] < gaussian_mmd_squared(np.zeros(4), 1.0, np.full(4, 0.4), 1.0, 1 / 8) < shifted["mmd_u_high"]
    p_values = [mmd_test(rng.normal(size=(100, 4)), rng.normal(size=(100, 4)), 1 / 8, 50, seed=s)["mmd_p_value"] for s in range(20)]
    assert 0.2 < np.mean(p_values) < 0.8, "p-values of a true null are uniform"
