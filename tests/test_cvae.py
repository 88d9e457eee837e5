"""Tests of the CVAE (zoo/cvae): the quadrant task, the conditional bound and the
baseline's loss against hand computations in both backends with identical weights,
the importance-sampled -log p(y|x) against quadrature, the detached baseline, and
the CLI.

The reference values use ``torch.distributions`` on the Pyro variant's networks;
the noise of the guide's reparameterised draw is fixed (tests/test_m2.py's
``FixedNoise`` / ``numpyro_fixed_noise``), so comparisons are exact to float
tolerance.
"""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from conftest import tiny_args
from numpyro.infer import TraceMeanField_ELBO as NumPyroMeanFieldELBO
from pyro.infer import TraceMeanField_ELBO
from test_m2 import FixedNoise, assert_estimates, numpyro_fixed_noise
from torch import distributions as tdist

from guides.flax_nets import params_from_torch
from zoo import registry
from zoo.cli import main
from zoo.config import ConfigError, override
from zoo.cvae import numpyro_model as ncvae
from zoo.cvae import pyro_model as pcvae
from zoo.data import DataError, quadrant_mask, square_image_shape

X_DIM, B = 16, 3  # 4x4 images: quadrants of 2x2 pixels
NETWORKS = ("baseline", "prior_net", "generation_net", "recognition_net")


def toy_config(**settings):
    values = {"hidden": "[5]", "z_dim": "2"}
    values.update({k: json.dumps(v) for k, v in settings.items()})
    return override(registry.default_config("cvae"), values)


def twin_params(variant) -> dict:
    return {f"{name}$params": params_from_torch(getattr(variant, name)) for name in NETWORKS}


def test_quadrants_follow_pyros_tutorial():
    one, two, three = (quadrant_mask((8, 8), n).reshape(8, 8) for n in (1, 2, 3))
    assert one.sum() == 16 and one[4:, :4].all()  # bottom-left
    assert two.sum() == 32 and two[:, :4].all()  # left half
    assert three.sum() == 48 and not three[4:, 4:].any()  # all but bottom-right
    assert square_image_shape(784) == (28, 28)
    with pytest.raises(DataError, match="square"):
        square_image_shape(106)
    with pytest.raises(ConfigError, match="square"):
        pcvae.Variant(toy_config(), 106)
    with pytest.raises(ConfigError, match="given_quadrants"):
        toy_config(given_quadrants=4)


def conditional_bound(variant, image, noise):
    """(cvae.4) per row, with ``z = loc_q + scale_q * noise`` and the KL in closed form."""
    x, y = image[:, variant.given], image[:, variant.missing]
    prior_input = torch.cat([x, torch.sigmoid(variant.baseline(x))], -1)
    prior = tdist.Normal(*variant.prior_net(prior_input))
    posterior = tdist.Normal(*variant.recognition_net(torch.cat([x, y], -1)))
    z = posterior.loc + posterior.scale * noise
    log_likelihood = tdist.Bernoulli(logits=variant.generation_net(torch.cat([x, z], -1))).log_prob(y).sum(-1)
    return log_likelihood - tdist.kl_divergence(posterior, prior).sum(-1)


@pytest.mark.parametrize("given", [1, 3])
def test_conditional_bound_and_baseline_loss_in_both_backends(given):
    torch.manual_seed(0)
    config = toy_config(given_quadrants=given)
    variant = pcvae.Variant(config, X_DIM)
    generator = torch.Generator().manual_seed(1)
    image = torch.bernoulli(torch.full((B, X_DIM), 0.4), generator=generator)
    noise = torch.randn(B, 2, generator=generator)
    with torch.no_grad():
        expected = -conditional_bound(variant, image, noise).sum().item()
        y = image[:, variant.missing]
        expected_baseline = torch.nn.functional.binary_cross_entropy_with_logits(
            variant.baseline(image[:, variant.given]), y, reduction="sum"
        ).item()
        assert variant.baseline_loss(image).item() == pytest.approx(expected_baseline, rel=1e-6)

    loss = TraceMeanField_ELBO().loss(variant.model, FixedNoise(z=noise)(variant.guide), x=image)
    assert loss == pytest.approx(expected, rel=1e-5)

    twin = ncvae.Variant(config, X_DIM)
    params = twin_params(variant)
    guide = numpyro_fixed_noise(twin.guide, z=jnp.asarray(noise.numpy()))
    value = jax.jit(lambda p: NumPyroMeanFieldELBO().loss(
        jax.random.PRNGKey(0), p, twin.model, guide, x=jnp.asarray(image.numpy())
    ))(params)
    assert float(value) == pytest.approx(expected, rel=1e-5)
    assert float(twin.baseline_loss(params, jnp.asarray(image.numpy()))) == pytest.approx(expected_baseline, rel=1e-5)


def test_the_cvae_bound_does_not_train_the_baseline():
    """The baseline's guess enters the prior detached: the bound's gradient leaves it alone,
    while the baseline's own loss moves it (both backends)."""
    torch.manual_seed(0)
    variant = pcvae.Variant(toy_config(), X_DIM)
    image = torch.bernoulli(torch.full((B, X_DIM), 0.5))
    TraceMeanField_ELBO().differentiable_loss(variant.model, variant.guide, x=image).backward()
    assert all(p.grad is None or not p.grad.any() for p in variant.baseline.parameters())
    assert variant.prior_net.net[0].weight.grad.abs().sum() > 0

    twin = ncvae.Variant(toy_config(), X_DIM)
    params = twin_params(variant)
    grads = jax.jit(jax.grad(
        lambda p: NumPyroMeanFieldELBO().loss(jax.random.PRNGKey(0), p, twin.model, twin.guide, x=jnp.asarray(image.numpy()))
    ))(params)
    assert all(float(jnp.abs(g).sum()) == 0 for g in jax.tree_util.tree_leaves(grads["baseline$params"]))
    assert sum(float(jnp.abs(g).sum()) for g in jax.tree_util.tree_leaves(grads["prior_net$params"])) > 0


def exact_log_conditional(variant, image) -> np.ndarray:
    """``log p(y|x) = log int p(z|x) p(y|x,z) dz`` by quadrature (1-d z)."""
    grid = torch.linspace(-12, 12, 8001, dtype=torch.float64)
    with torch.no_grad():
        x, y = image[:, variant.given], image[:, variant.missing]
        loc, scale = variant.prior_net(torch.cat([x, torch.sigmoid(variant.baseline(x))], -1))
        inputs = torch.cat([x[None].expand(len(grid), -1, -1), grid[:, None, None].float().expand(-1, len(x), 1)], -1)
        logits = variant.generation_net(inputs).double()  # (G, B, D_y)
        log_likelihood = tdist.Bernoulli(logits=logits).log_prob(y.double()).sum(-1)
        log_prior = tdist.Normal(loc.double()[:, 0], scale.double()[:, 0]).log_prob(grid[:, None])
        return (torch.logsumexp(log_likelihood + log_prior, 0) + math.log(grid[1] - grid[0])).numpy()


def test_log_weights_estimate_the_conditional_likelihood():
    """(cvae.6) ``log mean_k w_k`` with ``z_k ~ q(z|x,y)`` recovers ``log p(y|x)``."""
    torch.manual_seed(0)
    config = toy_config(z_dim=1)
    variant = pcvae.Variant(config, X_DIM)
    image = torch.bernoulli(torch.full((B, X_DIM), 0.4), generator=torch.Generator().manual_seed(2))
    exact = exact_log_conditional(variant, image)
    k = 5000
    assert_estimates(variant.log_weights(k, x=image).double().numpy(), exact)

    twin = ncvae.Variant(config, X_DIM)
    assert_estimates(twin.log_weights(twin_params(variant), jax.random.PRNGKey(0), k, x=jnp.asarray(image.numpy())), exact)


@torch.no_grad()
def test_completions_keep_the_given_quadrants():
    torch.manual_seed(0)
    variant = pcvae.Variant(toy_config(given_quadrants=2), X_DIM)
    variant.shown_conditions = np.random.default_rng(0).random((2, X_DIM)).astype(np.float32)
    image = torch.as_tensor(variant.shown_conditions)
    completed = variant.reconstruct(image)
    assert torch.equal(completed[:, variant.given], image[:, variant.given])
    samples = variant.sample(6, "cpu").reshape(2, 3, X_DIM)  # 2 rows: the input, then 2 completions
    assert torch.all(samples[:, 0, variant.missing] == 0.5)
    assert torch.equal(samples[:, 1:, variant.given], image[:, None, variant.given].expand(-1, 2, -1))


@pytest.mark.parametrize("backend", ["pyro", pytest.param("numpyro", marks=pytest.mark.slow)])  # NumPyro: a compile of 10-30 s CPU
def test_cli_trains_cvae(backend, tmp_path, capsys):
    assert main(tiny_args("cvae", backend, tmp_path, 1, "--set", "given_quadrants=2")) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["given_quadrants"] == 2 and metrics["missing_pixels"] == 32
    assert 0 < metrics["baseline_test_nll"] < 32 * math.log(2) + 10
    assert math.isfinite(metrics["test_elbo_500"])
    if backend == "pyro":
        capsys.readouterr()
        assert main(["evaluate", str(tmp_path), "--k", "4", "--limit", "10"]) == 0
        report = capsys.readouterr().out
        assert "test_nll" in report and "baseline_test_nll" in report
