"""Property tests of the SVDD objective term (VAE-SVDD, vaesvdd.4-6), in both backends.

The term is ``||mu - c||^2`` per datapoint: non-negative, zero exactly when the mean
sits on the centre, equal to a direct numpy computation. The centre is the mean of
the encodings with coordinates near 0 pushed to +-eps. The ELBO subclasses add
exactly ``weight * sum_b ||mu_b - c||^2`` to the library's TraceMeanField_ELBO.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pyro
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpyro.infer import TraceMeanField_ELBO as NumPyroMeanFieldELBO
from pyro.infer import TraceMeanField_ELBO as PyroMeanFieldELBO

from zoo.numpyro_backend import objectives as jax_objectives
from zoo.pyro_backend import objectives as torch_objectives
from conftest import tiny_config

FINITE = st.floats(-10, 10, allow_nan=False, width=32, allow_subnormal=False)
SETTINGS = settings(max_examples=25, deadline=None)


def means_and_centre(draw_shape=st.tuples(st.integers(1, 6), st.integers(1, 5))):
    """(B, d) encoder means and a (d,) centre."""
    return draw_shape.flatmap(
        lambda shape: st.tuples(
            arrays(np.float32, shape, elements=FINITE),
            arrays(np.float32, shape[1:], elements=FINITE),
        )
    )


def direct_distance(z_mean: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """sum_j (mu_j - c_j)^2, one datapoint at a time, in float64."""
    return np.array([sum((float(m) - float(c)) ** 2 for m, c in zip(row, centre)) for row in z_mean])


# --- the distance (vaesvdd.5) ----------------------------------------------------------


@SETTINGS
@given(means_and_centre())
def test_distance_is_non_negative_and_matches_a_direct_computation(pair):
    z_mean, centre = pair
    expected = direct_distance(z_mean, centre)
    torch_value = torch_objectives.svdd_distance(torch.from_numpy(z_mean), torch.from_numpy(centre)).numpy()
    jax_value = np.asarray(jax_objectives.svdd_distance(jnp.asarray(z_mean), jnp.asarray(centre)))
    for value in (torch_value, jax_value):
        assert value.shape == (len(z_mean),)
        assert np.all(value >= 0)
        np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-4)


@SETTINGS
@given(arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 5)), elements=FINITE))
def test_distance_is_zero_exactly_on_the_centre(z_mean):
    centre = z_mean[0]
    assert torch_objectives.svdd_distance(torch.from_numpy(z_mean), torch.from_numpy(centre))[0].item() == 0.0
    assert float(jax_objectives.svdd_distance(jnp.asarray(z_mean), jnp.asarray(centre))[0]) == 0.0
    # ... and only there: a row away from the centre (beyond float32 underflow of the square) is positive.
    others = np.any(np.abs(z_mean - centre) > 1e-6, axis=1)
    torch_value = torch_objectives.svdd_distance(torch.from_numpy(z_mean), torch.from_numpy(centre)).numpy()
    assert np.all(torch_value[others] > 0)


# --- the centre (vaesvdd.6) ------------------------------------------------------------


@SETTINGS
@given(
    arrays(np.float32, st.tuples(st.integers(1, 8), st.integers(1, 6)), elements=st.floats(-1, 1, width=32, allow_subnormal=False)),
    st.sampled_from([0.0, 0.05, 0.1, 0.5]),
)
def test_centre_is_the_mean_with_small_coordinates_pushed_to_eps(z_means, eps):
    mean = z_means.astype(np.float64).mean(0)
    expected = np.where(np.abs(mean) < eps, np.where(mean < 0, -eps, eps), mean)
    # A mean that cancels to rounding error has no reliable sign in float32: compare magnitudes there.
    signless = np.abs(mean) < 1e-6
    torch_c = torch_objectives.svdd_centre(torch.from_numpy(z_means), eps).numpy()
    jax_c = np.asarray(jax_objectives.svdd_centre(jnp.asarray(z_means), eps))
    for c in (torch_c, jax_c):
        np.testing.assert_allclose(np.where(signless, np.abs(c), c), np.where(signless, np.abs(expected), expected), rtol=1e-5, atol=1e-6)
        assert np.all(np.abs(c) >= eps - 1e-7)


def test_a_zero_coordinate_goes_to_plus_eps():
    z_means = np.array([[1.0, 0.0], [-1.0, 0.0]], np.float32)  # mean exactly (0, 0)
    np.testing.assert_array_equal(torch_objectives.svdd_centre(torch.from_numpy(z_means), 0.1).numpy(), np.float32([0.1, 0.1]))
    np.testing.assert_array_equal(np.asarray(jax_objectives.svdd_centre(jnp.asarray(z_means), 0.1)), np.float32([0.1, 0.1]))


# --- the ELBO subclasses (vaesvdd.4) ---------------------------------------------------


@pytest.fixture(scope="module")
def tiny_vae_pair():
    """A tiny Pyro VAE-SVDD, a NumPyro twin with the same weights, and a batch."""
    from guides.flax_nets import params_from_torch
    from zoo.vaesvdd.numpyro_model import Variant as NumPyroVariant
    from zoo.vaesvdd.pyro_model import Variant as PyroVariant

    config = tiny_config("vaesvdd")
    pyro.clear_param_store()
    torch.manual_seed(1)
    torch_variant = PyroVariant(config, 64)
    jax_variant = NumPyroVariant(config, 64)
    params = {
        "encoder$params": params_from_torch(torch_variant.encoder),
        "decoder$params": params_from_torch(torch_variant.decoder),
    }
    x = (np.random.default_rng(0).random((7, 64)) < 0.3).astype(np.float32)
    return torch_variant, jax_variant, params, x


@pytest.mark.parametrize("weight", [0.0, 0.5, 3.0])
def test_pyro_svdd_elbo_adds_exactly_the_weighted_term(tiny_vae_pair, weight):
    torch_variant, _, _, x = tiny_vae_pair
    x = torch.from_numpy(x)
    centre = torch.linspace(-1, 1, torch_variant.config.z_dim)
    objective = torch_objectives.SVDDTraceMeanField_ELBO(centre=lambda: centre, weight=lambda: weight)
    pyro.set_rng_seed(3)
    with_term = objective.differentiable_loss(torch_variant.model, torch_variant.guide, x)
    pyro.set_rng_seed(3)  # the same draw of z
    without = PyroMeanFieldELBO().differentiable_loss(torch_variant.model, torch_variant.guide, x)
    z_mean = torch_variant.encoder(x)[0].detach().numpy()
    expected = weight * direct_distance(z_mean, centre.numpy()).sum()
    assert (with_term - without).item() == pytest.approx(expected, rel=1e-4, abs=1e-3)
    # loss() (a float) and differentiable_loss() (a tensor) agree.
    pyro.set_rng_seed(3)
    assert objective.loss(torch_variant.model, torch_variant.guide, x) == pytest.approx(with_term.item(), rel=1e-6)


@pytest.mark.parametrize("weight", [0.0, 0.5, 3.0])
def test_numpyro_svdd_elbo_adds_exactly_the_weighted_term(tiny_vae_pair, weight):
    torch_variant, jax_variant, params, x = tiny_vae_pair
    centre = jnp.linspace(-1, 1, jax_variant.config.z_dim)
    key = jax.random.PRNGKey(4)
    with_term = jax_objectives.SVDDTraceMeanField_ELBO().loss(
        key, params, jax_variant.model, jax_variant.guide, x=x, svdd_centre=centre, svdd_weight=weight
    )
    without = NumPyroMeanFieldELBO().loss(key, params, jax_variant.model, jax_variant.guide, x=x)
    z_mean = torch_variant.encoder(torch.from_numpy(x))[0].detach().numpy()  # the same weights
    expected = weight * direct_distance(z_mean, np.asarray(centre)).sum()
    assert float(with_term - without) == pytest.approx(expected, rel=1e-4, abs=1e-3)


def test_svdd_term_gradient_pulls_the_means_towards_the_centre(tiny_vae_pair):
    """d/dmu of lambda ||mu - c||^2 is 2 lambda (mu - c): checked on the encoder's output layer bias."""
    torch_variant, _, _, x = tiny_vae_pair
    x = torch.from_numpy(x)
    centre = torch.zeros(torch_variant.config.z_dim)
    weight = 2.0
    objective = torch_objectives.SVDDTraceMeanField_ELBO(centre=lambda: centre, weight=lambda: weight)
    bias = torch_variant.encoder.net[-1].bias
    term = objective.svdd_term(pyro.poutine.trace(torch_variant.guide).get_trace(x))
    (grad,) = torch.autograd.grad(term, bias)
    z_mean = torch_variant.encoder(x)[0].detach()
    d = torch_variant.config.z_dim
    np.testing.assert_allclose(grad[:d].numpy(), (2 * weight * (z_mean - centre)).sum(0).numpy(), rtol=1e-5, atol=1e-6)
    assert torch.all(grad[d:] == 0)  # the scale half of the layer does not enter the term
