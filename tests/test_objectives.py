"""The shared objective terms against closed forms (zoo/*_backend/objectives.py).

A linear-Gaussian VAE (``tests/conftest.py: LinearGaussian``) has its marginal
likelihood, posterior and the ELBO of any Gaussian guide in closed form, so the
importance weights, the ELBO and the IWAE bound (iwae.1, iwae.4) of both backends
are checked against exact numbers rather than against each other.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as ndist
import pyro
import pytest
import torch
from conftest import LinearGaussian, pyro_linear_gaussian
from numpyro.infer import RenyiELBO
from numpyro.infer import Trace_ELBO as NumPyroTraceELBO
from pyro.infer import Trace_ELBO

from zoo.numpyro_backend import objectives as nobj
from zoo.pyro_backend import objectives as pobj


@pytest.fixture(scope="module")
def lg() -> LinearGaussian:
    return LinearGaussian.make(seed=0)


def standard_error_of_log_mean(log_w: np.ndarray) -> np.ndarray:
    """Delta-method standard error of ``log mean(w)`` per datapoint, log_w (K, B)."""
    w = np.exp(log_w - log_w.max(axis=0))
    return w.std(axis=0) / (w.mean(axis=0) * np.sqrt(len(log_w)))


# --------------------------------------------------------------------------
# Pyro
# --------------------------------------------------------------------------


def test_pyro_exact_posterior_weights_are_the_marginal_likelihood(lg):
    """With q(z|x) = p(z|x), every weight is p(x, z)/p(z|x) = p(x): zero variance."""
    model, guide, x = pyro_linear_gaussian(lg, "exact")
    log_w = pobj.log_importance_weights(model, guide, 7, x).numpy()
    assert log_w.shape == (7, len(lg.x))
    np.testing.assert_allclose(log_w, np.broadcast_to(lg.log_marginal(), log_w.shape), rtol=0, atol=1e-9)


def test_pyro_importance_sampling_recovers_the_marginal_likelihood(lg):
    model, guide, x = pyro_linear_gaussian(lg, "imperfect")
    log_w = pobj.log_importance_weights(model, guide, 20000, x).numpy()
    exact = lg.log_marginal()

    log_likelihood = pobj.iwae_bound(torch.tensor(log_w)).numpy()
    error = standard_error_of_log_mean(log_w)
    assert np.all(error < 0.02), "the check needs a precise estimate"
    assert np.all(np.abs(log_likelihood - exact) < 5 * error + 1e-3)

    # The ELBO of this guide is log p(x) - KL(q || p(z|x)), both in closed form.
    loc, scale = lg.imperfect_guide()
    kl = lg.kl_to_posterior(loc, scale)
    assert np.all(kl > 0.3), "the guide must be visibly off the posterior"
    elbo = log_w.mean(axis=0)
    elbo_error = log_w.std(axis=0) / np.sqrt(len(log_w))
    np.testing.assert_array_less(np.abs(elbo - (exact - kl)), 5 * elbo_error)
    np.testing.assert_array_less(elbo, log_likelihood)


def test_pyro_iwae_with_one_particle_is_trace_elbo(lg):
    """(iwae.4) L_1 = ELBO: the same noise gives the same loss (and gradient)."""
    model, guide, x = pyro_linear_gaussian(lg, "imperfect")
    shift = torch.zeros(lg.z_dim, dtype=torch.float64, requires_grad=True)

    def shifted_guide(x):
        # A parameter in the guide, so the gradients can be compared too.
        loc, scale = (torch.tensor(a) for a in lg.imperfect_guide())
        with pyro.plate("data", x.shape[0], dim=-1):
            pyro.sample("z", pyro.distributions.Normal(loc + shift, scale).to_event(1))

    torch.manual_seed(3)
    iwae = pobj.ImportanceWeightedELBO(num_particles=1).differentiable_loss(model, shifted_guide, x)
    (iwae_grad,) = torch.autograd.grad(iwae, shift)
    torch.manual_seed(3)
    elbo = Trace_ELBO().differentiable_loss(model, shifted_guide, x)
    (elbo_grad,) = torch.autograd.grad(elbo, shift)
    torch.testing.assert_close(iwae, elbo, rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(iwae_grad, elbo_grad, rtol=1e-10, atol=1e-10)

    torch.manual_seed(4)
    other = Trace_ELBO().differentiable_loss(model, shifted_guide, x)
    assert abs(other.item() - elbo.item()) > 1e-3, "the noise must matter, or the check says nothing"


def test_pyro_bound_grows_with_k(lg):
    """(iwae.4) E[L_1] < E[L_10] < E[L_100] <= log p(x), on average over datapoints."""
    model, guide, x = pyro_linear_gaussian(lg, "imperfect")
    repeats = 200
    bounds = {}
    for k in (1, 10, 100):
        log_w = pobj.log_importance_weights(model, guide, repeats * k, x)
        per_repeat = pobj.iwae_bound(log_w.reshape(repeats, k, -1).transpose(0, 1))  # (repeats, B)
        bounds[k] = per_repeat.mean(dim=1).numpy()  # average over datapoints
    exact = lg.log_marginal().mean()
    means = {k: v.mean() for k, v in bounds.items()}
    errors = {k: v.std() / np.sqrt(repeats) for k, v in bounds.items()}
    assert means[1] + 3 * (errors[1] + errors[10]) < means[10]
    assert means[10] + 3 * (errors[10] + errors[100]) < means[100]
    assert means[100] < exact + 3 * errors[100]
    # L_1 is the ELBO, in closed form.
    loc, scale = lg.imperfect_guide()
    assert abs(means[1] - (exact - lg.kl_to_posterior(loc, scale).mean())) < 4 * errors[1]


def test_pyro_log_weights_skip_factor_sites_and_ignore_scale(lg):
    """Extra loss terms (factors) and KL re-weighting (poutine.scale) shape the
    training objective, not the density: the weights stay those of p(x, z)/q(z|x)."""
    model, guide, x = pyro_linear_gaussian(lg, "exact")

    def model_with_extras(x):
        pyro.factor("penalty", torch.tensor(-123.0, dtype=torch.float64))
        with pyro.poutine.scale(scale=0.25):
            model(x)

    def guide_with_scale(x):
        with pyro.poutine.scale(scale=0.25):
            guide(x)

    log_w = pobj.log_importance_weights(model_with_extras, guide_with_scale, 3, x).numpy()
    np.testing.assert_allclose(log_w, np.broadcast_to(lg.log_marginal(), log_w.shape), atol=1e-9)


# --------------------------------------------------------------------------
# NumPyro
# --------------------------------------------------------------------------


def numpyro_log_weights(model, guide, params, key, num_particles, x):
    """The zoo's NumPyro log weights, jit-compiled (one compilation beats eager
    dispatch of every primitive under ``vmap``)."""
    compute = jax.jit(lambda key: nobj.log_importance_weights(model, guide, params, key, num_particles, x=x))
    return np.asarray(compute(key), np.float64)


def numpyro_linear_gaussian(lg: LinearGaussian, guide_kind: str):
    """The NumPyro twin of ``conftest.pyro_linear_gaussian`` (float32)."""
    W, b = jnp.asarray(lg.W, jnp.float32), jnp.asarray(lg.b, jnp.float32)
    m, S = lg.posterior()

    def model(x):
        with numpyro.plate("data", x.shape[0], dim=-1):
            z = numpyro.sample("z", ndist.Normal(jnp.zeros((x.shape[0], lg.z_dim)), 1.0).to_event(1))
            numpyro.sample("x", ndist.Normal(z @ W.T + b, lg.sigma).to_event(1), obs=x)

    def guide(x):
        if guide_kind == "exact":
            q = ndist.MultivariateNormal(jnp.asarray(m, jnp.float32), scale_tril=jnp.asarray(np.linalg.cholesky(S), jnp.float32))
        else:
            loc, scale = lg.imperfect_guide()
            shift = numpyro.param("shift", jnp.zeros(lg.z_dim))
            q = ndist.Normal(jnp.asarray(loc, jnp.float32) + shift, jnp.asarray(scale, jnp.float32)).to_event(1)
        with numpyro.plate("data", x.shape[0], dim=-1):
            numpyro.sample("z", q)

    return model, guide, jnp.asarray(lg.x, jnp.float32)


def test_numpyro_exact_posterior_weights_are_the_marginal_likelihood(lg):
    """Zero-variance weights equal to log p(x); a factor site (an extra loss term)
    is not part of the density and must not enter them."""
    model, guide, x = numpyro_linear_gaussian(lg, "exact")

    def model_with_penalty(x):
        numpyro.factor("penalty", -123.0)
        model(x)

    log_w = numpyro_log_weights(model_with_penalty, guide, {}, jax.random.PRNGKey(0), 7, x)
    assert log_w.shape == (7, len(lg.x))
    np.testing.assert_allclose(log_w, np.broadcast_to(lg.log_marginal(), log_w.shape), rtol=0, atol=2e-4)


@pytest.fixture(scope="module")
def numpyro_imperfect_log_w(lg):
    """20000 log weights per datapoint of the imperfect guide (one compilation)."""
    model, guide, x = numpyro_linear_gaussian(lg, "imperfect")
    return numpyro_log_weights(model, guide, {"shift": jnp.zeros(lg.z_dim)}, jax.random.PRNGKey(1), 20000, x)


def test_numpyro_importance_sampling_recovers_the_marginal_likelihood(lg, numpyro_imperfect_log_w):
    log_w = numpyro_imperfect_log_w
    exact = lg.log_marginal()
    log_likelihood = np.asarray(nobj.iwae_bound(jnp.asarray(log_w)))
    error = standard_error_of_log_mean(log_w)
    assert np.all(error < 0.02)
    assert np.all(np.abs(log_likelihood - exact) < 5 * error + 1e-3)

    loc, scale = lg.imperfect_guide()
    kl = lg.kl_to_posterior(loc, scale)
    elbo = log_w.mean(axis=0)
    elbo_error = log_w.std(axis=0) / np.sqrt(len(log_w))
    np.testing.assert_array_less(np.abs(elbo - (exact - kl)), 5 * elbo_error + 1e-4)
    np.testing.assert_array_less(elbo, log_likelihood)


def test_numpyro_renyi_with_one_particle_is_trace_elbo(lg):
    """(iwae.4) L_1 = ELBO for NumPyro's RenyiELBO(alpha=0), the zoo's NumPyro IWAE
    loss: with the same z (substituted into the guide) the two losses and their
    gradients agree."""
    model, guide, x = numpyro_linear_gaussian(lg, "imperfect")
    z = jax.random.normal(jax.random.PRNGKey(2), (len(lg.x), lg.z_dim))
    key = jax.random.PRNGKey(5)

    def loss(elbo, shift):
        return elbo.loss(key, {"shift": shift, "z": z}, model, guide, x)

    shift = jnp.full(lg.z_dim, 0.1)
    renyi, renyi_grad = jax.jit(jax.value_and_grad(lambda s: loss(RenyiELBO(alpha=0, num_particles=1), s)))(shift)
    elbo, elbo_grad = jax.jit(jax.value_and_grad(lambda s: loss(NumPyroTraceELBO(), s)))(shift)
    np.testing.assert_allclose(renyi, elbo, rtol=1e-6)
    np.testing.assert_allclose(renyi_grad, elbo_grad, rtol=1e-5, atol=1e-5)

    # ... and both are -sum_n log w_n at that z, by hand.
    loc, scale = lg.imperfect_guide()
    zz = np.asarray(z, np.float64)
    from scipy.stats import norm

    log_prior = norm.logpdf(zz).sum(-1)
    log_lik = norm.logpdf(lg.x, zz @ lg.W.T + lg.b, lg.sigma).sum(-1)
    log_q = norm.logpdf(zz, loc + 0.1, scale).sum(-1)
    np.testing.assert_allclose(float(elbo), -(log_prior + log_lik - log_q).sum(), rtol=1e-5)


def test_numpyro_bound_grows_with_k(lg, numpyro_imperfect_log_w):
    """(iwae.4) for the NumPyro bound; 200 independent L_k per k, from disjoint
    blocks of the fixture's weights."""
    repeats = 200
    means, errors = {}, {}
    for k in (1, 10, 100):
        log_w = jnp.asarray(numpyro_imperfect_log_w[: repeats * k]).reshape(repeats, k, -1)
        per_repeat = np.asarray(jax.vmap(nobj.iwae_bound)(log_w)).mean(axis=1)
        means[k], errors[k] = per_repeat.mean(), per_repeat.std() / np.sqrt(repeats)
    exact = lg.log_marginal().mean()
    assert means[1] + 3 * (errors[1] + errors[10]) < means[10]
    assert means[10] + 3 * (errors[10] + errors[100]) < means[100]
    assert means[100] < exact + 3 * errors[100]
    loc, scale = lg.imperfect_guide()
    assert abs(means[1] - (exact - lg.kl_to_posterior(loc, scale).mean())) < 4 * errors[1]


# --------------------------------------------------------------------------
# MMD (VFAE, InfoVAE): both backends against a hand-written double sum
# --------------------------------------------------------------------------


def mmd_by_hand(a: np.ndarray, b: np.ndarray, gamma: float) -> float:
    """The V-statistic (1/n^2) sum k(a,a') + (1/m^2) sum k(b,b') - (2/nm) sum k(a,b)."""

    def mean_kernel(p, q):
        return np.mean([[np.exp(-gamma * np.sum((u - v) ** 2)) for v in q] for u in p])

    return mean_kernel(a, a) + mean_kernel(b, b) - 2 * mean_kernel(a, b)


@pytest.fixture(scope="module")
def samples():
    rng = np.random.default_rng(7)
    return rng.normal(size=(6, 3)), rng.normal(loc=0.8, size=(5, 3))


def test_mmd_matches_the_double_sum_in_both_backends(samples):
    a, b = samples
    expected = mmd_by_hand(a, b, gamma=0.3)
    assert expected > 0.05
    torch_value = pobj.mmd(torch.tensor(a), torch.tensor(b), 0.3).item()
    jax_value = float(nobj.mmd(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32), 0.3))
    assert torch_value == pytest.approx(expected, rel=1e-9)
    assert jax_value == pytest.approx(expected, rel=1e-4)
    assert pobj.mmd(torch.tensor(a), torch.tensor(a), 0.3).item() == pytest.approx(0.0, abs=1e-12)


def test_mmd_between_groups_is_the_mmd_of_the_two_subsets(samples):
    a, b = samples
    z = np.concatenate([a, b])
    group = np.array([0] * len(a) + [1] * len(b))
    permutation = np.random.default_rng(0).permutation(len(z))
    z, group = z[permutation], group[permutation]
    expected = mmd_by_hand(a, b, gamma=0.3)
    torch_value = pobj.mmd_between_groups(torch.tensor(z), torch.tensor(group), 0.3).item()
    jax_value = float(nobj.mmd_between_groups(jnp.asarray(z, jnp.float32), jnp.asarray(group), 0.3))
    assert torch_value == pytest.approx(expected, rel=1e-9)
    assert jax_value == pytest.approx(expected, rel=1e-4)
    # One group absent from the batch: no penalty (and no NaN from an empty mean).
    assert pobj.mmd_between_groups(torch.tensor(z), torch.zeros(len(z)), 0.3).item() == 0.0
    assert float(nobj.mmd_between_groups(jnp.asarray(z), jnp.zeros(len(z)), 0.3)) == 0.0


def test_random_fourier_features_approximate_the_mmd(samples):
    """Rahimi & Recht: E[psi(a).psi(b)] = exp(-gamma |a-b|^2), so with many features
    the linear-time MMD approaches the exact one."""
    a, b = samples
    expected = mmd_by_hand(a, b, gamma=0.3)
    generator = torch.Generator().manual_seed(0)
    torch_value = pobj.mmd_random_features(torch.tensor(a), torch.tensor(b), 0.3, 20000, generator).item()
    jax_value = float(nobj.mmd_random_features(jnp.asarray(a), jnp.asarray(b), 0.3, jax.random.PRNGKey(0), 20000))
    assert torch_value == pytest.approx(expected, abs=0.03)
    assert jax_value == pytest.approx(expected, abs=0.03)
