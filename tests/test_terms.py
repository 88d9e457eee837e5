"""Property tests of the Fisher-information term (FAE, fae.3/fae.4) of both
backends (zoo/*_backend/objectives.py); the MMD has its own in tests/test_mmd.py.

The term is checked for the properties that define it (non-negative, zero on its
target and with zero weight), against a direct computation (the summed precision
by a loop, and a Monte-Carlo estimate of E||grad_mu log q||^2 by automatic
differentiation), and across backends.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as ndist
import pyro.distributions as pdist
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from zoo.numpyro_backend import objectives as nobj
from zoo.pyro_backend import objectives as pobj

FAST = settings(max_examples=20, deadline=None)

positive = st.floats(min_value=0.0625, max_value=4.0, allow_nan=False, width=32)


# A few fixed sizes: JAX compiles each operation once per shape, so free shapes
# would spend the test's time compiling.
SIZES = st.sampled_from([2, 5])


def scales():
    shape = st.tuples(SIZES, SIZES)
    return shape.flatmap(lambda s: arrays(np.float32, s, elements=positive))


# --- Fisher information ------------------------------------------------------


@FAST
@given(scale=scales())
def test_fisher_information_is_the_summed_precision_in_both_backends(scale):
    direct = np.array([sum(1.0 / float(s) ** 2 for s in row) for row in scale])
    torch_j = pobj.gaussian_fisher_information(torch.as_tensor(scale)).numpy()
    jax_j = np.asarray(nobj.gaussian_fisher_information(jnp.asarray(scale)))
    np.testing.assert_allclose(torch_j, direct, rtol=1e-5)
    np.testing.assert_allclose(jax_j, direct, rtol=1e-5)
    assert (torch_j > 0).all()


@FAST
@given(scale=scales(), target=st.floats(0.0, 1e3), weight=st.floats(0.0, 10.0))
def test_fisher_penalty_is_non_negative_and_matches_its_definition(scale, target, weight):
    direct = weight * abs(np.mean(np.sum(scale.astype(np.float64) ** -2, axis=-1)) - target)
    torch_p = float(pobj.fisher_penalty(pobj.gaussian_fisher_information(torch.as_tensor(scale)), target, weight))
    jax_p = float(nobj.fisher_penalty(nobj.gaussian_fisher_information(jnp.asarray(scale)), target, weight))
    assert torch_p >= 0 and jax_p >= 0
    assert torch_p == pytest.approx(direct, rel=1e-4, abs=1e-3)
    assert jax_p == pytest.approx(direct, rel=1e-4, abs=1e-3)


@FAST
@given(scale=scales(), weight=st.floats(0.0, 10.0))
def test_fisher_penalty_is_zero_on_target_and_with_zero_weight(scale, weight):
    information = pobj.gaussian_fisher_information(torch.as_tensor(scale, dtype=torch.float64))
    assert float(pobj.fisher_penalty(information, float(information.mean()), weight)) == pytest.approx(0.0, abs=1e-9)
    assert float(pobj.fisher_penalty(information, 123.0, 0.0)) == 0.0
    information = nobj.gaussian_fisher_information(jnp.asarray(scale))
    assert float(nobj.fisher_penalty(information, float(information.mean()), weight)) == pytest.approx(0.0, abs=1e-3)
    assert float(nobj.fisher_penalty(information, 123.0, 0.0)) == 0.0


def test_site_fisher_information_unwraps_independent_masked_and_scalar_scales():
    loc = np.zeros((3, 2), np.float32)
    scale = np.array([[0.5, 2.0], [1.0, 1.0], [0.1, 4.0]], np.float32)
    expected = (scale.astype(np.float64) ** -2).sum(-1)
    torch_fn = pdist.Normal(torch.as_tensor(loc), torch.as_tensor(scale)).to_event(1)
    np.testing.assert_allclose(pobj.location_fisher_information(torch_fn).numpy(), expected, rtol=1e-6)
    jax_fn = ndist.Normal(jnp.asarray(loc), jnp.asarray(scale)).to_event(1).mask(False)
    np.testing.assert_allclose(np.asarray(nobj.location_fisher_information(jax_fn)), expected, rtol=1e-6)
    # A scalar scale (NumPyro keeps it unbroadcast) counts once per event dimension.
    scalar = ndist.Normal(jnp.zeros((3, 2)), 0.5).to_event(1)
    np.testing.assert_allclose(np.asarray(nobj.location_fisher_information(scalar)), [8.0, 8.0, 8.0])
    # Without event dims, J is per element.
    np.testing.assert_allclose(
        pobj.location_fisher_information(pdist.Normal(torch.as_tensor(loc), torch.as_tensor(scale))).numpy(),
        scale.astype(np.float64) ** -2, rtol=1e-6,
    )
    with pytest.raises(TypeError):
        pobj.location_fisher_information(pdist.Bernoulli(logits=torch.zeros(3, 2)).to_event(1))


def test_fisher_information_closed_form_matches_monte_carlo_score_in_both_backends():
    """J = sum_j sigma_j^-2 equals E_q ||d/dmu log q(z)||^2, the score's second moment,
    estimated by sampling z ~ q and differentiating log q with autograd / jax.grad."""
    rng = np.random.default_rng(0)
    loc = rng.normal(size=4).astype(np.float32)
    scale = rng.uniform(0.3, 2.0, size=4).astype(np.float32)
    num_samples = 40_000
    closed_form = float((scale.astype(np.float64) ** -2).sum())

    mu = torch.tensor(loc, requires_grad=True)
    z = pdist.Normal(torch.as_tensor(loc), torch.as_tensor(scale)).sample((num_samples,))
    # d/dmu of sum_n log q(z_n) gives the sum of scores; per sample we need each
    # score, so differentiate the log density of each sample separately via a
    # batch of locations.
    mus = mu.expand(num_samples, 4)
    log_q = pdist.Normal(mus, torch.as_tensor(scale)).log_prob(z).sum()
    (score,) = torch.autograd.grad(log_q, mus)
    torch_estimate = float(score.pow(2).sum(-1).mean())

    def log_q_jax(mu, z):
        return ndist.Normal(mu, jnp.asarray(scale)).log_prob(z).sum()

    z_jax = jnp.asarray(loc) + jnp.asarray(scale) * jax.random.normal(jax.random.PRNGKey(0), (num_samples, 4))
    scores = jax.vmap(jax.grad(log_q_jax), in_axes=(None, 0))(jnp.asarray(loc), z_jax)
    jax_estimate = float(jnp.mean(jnp.sum(scores**2, -1)))

    # Each ||score||^2 has variance 2 sum sigma^-4; allow 5 standard errors.
    tolerance = 5 * math.sqrt(2 * float((scale.astype(np.float64) ** -4).sum()) / num_samples)
    assert abs(torch_estimate - closed_form) < tolerance
    assert abs(jax_estimate - closed_form) < tolerance
    assert float(pobj.gaussian_fisher_information(torch.as_tensor(scale)[None])[0]) == pytest.approx(closed_form, rel=1e-6)
    assert float(nobj.gaussian_fisher_information(jnp.asarray(scale)[None])[0]) == pytest.approx(closed_form, rel=1e-6)
