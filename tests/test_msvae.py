"""MSVAE (zoo/msvae): the loss against a hand computation of (msvae.4), the refiner
off is the VAE, no gradient reaches stage 1 from stage 2 by default, the sharpness
measure, Pyro/NumPyro agreement with copied weights, and the CLI."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from conftest import pyro_pinned, tiny_args, tiny_config
from numpyro import handlers
from scipy import ndimage
from scipy.stats import norm

from guides.flax_nets import params_from_torch
from guides.flax_refiner import refiner_params_from_torch
from zoo import registry
from zoo.cli import main
from zoo.config import ConfigError
from zoo.data import load_dataset
from zoo.pyro_backend.objectives import log_importance_weights
from zoo.sharpness import laplacian_variance, mean_gradient_magnitude

Z_DIM = 4


@pytest.fixture(scope="module")
def data():
    dataset = load_dataset("digits", binarize="none", limit_test=10)
    return dataset.x_test.astype(np.float32), dataset.image_shape


def pyro_msvae(x_dim, randomise_refiner=True, **overrides):
    """A tiny Pyro MSVAE; the refiners' last (zero-initialised) layer is made random
    so that stage 2 is not the identity."""
    torch.manual_seed(0)
    variant = registry.variant_class("msvae", "pyro")(tiny_config("msvae", **overrides), x_dim)
    if randomise_refiner:
        with torch.no_grad():
            for refiner in variant.refiners:
                refiner.convs[-1].weight.normal_(0, 0.3)
                refiner.convs[-1].bias.normal_(0, 0.1)
    return variant


def numpyro_twin(variant, x_dim):
    twin = registry.variant_class("msvae", "numpyro")(variant.config, x_dim)
    params = {"encoder$params": params_from_torch(variant.encoder), "decoder$params": params_from_torch(variant.decoder)}
    for s, refiner in enumerate(variant.refiners, start=2):
        params[f"refiner{s}$params"] = refiner_params_from_torch(refiner)
    return twin, params


def loss_by_hand(variant, x, z, weight) -> float:
    """(msvae.4) with scipy: -log N(x; f1(z), sigma0^2) + KL(q || N(0, I)) + weight * sum |x - f2(f1(z))|."""
    with torch.no_grad():
        loc, scale = (a.double().numpy() for a in variant.encoder(torch.as_tensor(x)))
        stages = [s.double().numpy() for s in variant.stage_means(torch.as_tensor(z))]
    sigma0 = variant.config.sigma0
    nll = -norm.logpdf(x, stages[0], sigma0).sum(-1)
    kl = (-np.log(scale) + (scale**2 + loc**2) / 2 - 0.5).sum(-1)
    l1 = sum(np.abs(x - s).sum(-1) for s in stages[1:]) if len(stages) > 1 else 0.0
    return float(np.sum(nll + kl + weight * l1))


@pytest.mark.parametrize("weight", [1.0, 0.25])
def test_pyro_loss_is_the_stage1_elbo_plus_the_weighted_l1_by_hand(data, weight):
    x, _ = data
    variant = pyro_msvae(x.shape[1], refine_weight=weight)
    z = np.random.default_rng(0).normal(size=(len(x), Z_DIM)).astype(np.float32)
    loss = variant.objective().differentiable_loss(variant.model, pyro_pinned(variant.guide, torch.as_tensor(z)), x=torch.as_tensor(x))
    assert loss.item() == pytest.approx(loss_by_hand(variant, x, z, weight), rel=1e-5)
    assert abs(loss.item() - loss_by_hand(variant, x, z, 0.0)) > 1.0  # the term is really there


def test_refiner_off_is_the_vae(data):
    """stages=1: no refiner, the objective is the analytic-KL ELBO of the stage-1 VAE, and
    pictures are stage-1 means; a 2-stage model with the same stage 1 has the same
    importance weights (x is observed once)."""
    x, _ = data
    vae = pyro_msvae(x.shape[1], stages=1)
    assert len(vae.refiners) == 0 and set(vae.parameter_groups()) == {"all"}
    z = np.random.default_rng(1).normal(size=(len(x), Z_DIM)).astype(np.float32)
    pinned = pyro_pinned(vae.guide, torch.as_tensor(z))
    loss = vae.objective().differentiable_loss(vae.model, pinned, x=torch.as_tensor(x))
    assert loss.item() == pytest.approx(loss_by_hand(vae, x, z, 0.0), rel=1e-5)
    with torch.no_grad():
        np.testing.assert_allclose(vae.decode(torch.as_tensor(z)).numpy(), vae.decoder(torch.as_tensor(z))[0].numpy())

    two = pyro_msvae(x.shape[1], stages=2)
    two.encoder.load_state_dict(vae.encoder.state_dict())
    two.decoder.load_state_dict(vae.decoder.state_dict())
    z_pinned = torch.as_tensor(z).reshape(1, 1, *z.shape)
    with torch.no_grad():
        weights = [log_importance_weights(v.model, pyro_pinned(v.guide, z_pinned), 1, x=torch.as_tensor(x)) for v in (vae, two)]
    torch.testing.assert_close(weights[0], weights[1])


def test_an_untrained_refiner_is_the_identity_so_stage2_l1_is_stage1_l1(data):
    """With f_2 = id (the zero-initialised residual), the refinement term is stage 1's l1 error."""
    x, _ = data
    variant = pyro_msvae(x.shape[1], randomise_refiner=False)
    z = torch.randn(len(x), Z_DIM)
    with torch.no_grad():
        x1, x2 = variant.stage_means(z)
    torch.testing.assert_close(x1, x2)
    trace_loss = variant.objective().differentiable_loss(variant.model, pyro_pinned(variant.guide, z), x=torch.as_tensor(x))
    elbo_only = loss_by_hand(variant, x, z.numpy(), 0.0)
    assert trace_loss.item() - elbo_only == pytest.approx(float(np.abs(x - x1.numpy()).sum()), rel=1e-4)


@pytest.mark.parametrize("joint", [False, True])
def test_pyro_refinement_gradient_reaches_stage1_only_when_joint(data, joint):
    x, _ = data
    variant = pyro_msvae(x.shape[1], joint=joint)
    objective = variant.objective()
    from pyro import poutine

    guide_trace = poutine.trace(variant.guide).get_trace(torch.as_tensor(x))
    model_trace = poutine.trace(poutine.replay(variant.model, trace=guide_trace)).get_trace(torch.as_tensor(x))
    objective.refinement_term(model_trace).backward()
    stage1 = [p.grad for net in (variant.encoder, variant.decoder) for p in net.parameters()]
    reached = any(g is not None and torch.any(g != 0) for g in stage1)
    assert reached == joint
    assert all(p.grad is not None and torch.any(p.grad != 0) for p in variant.refiners.parameters())


@pytest.mark.parametrize("joint", [False, True])
def test_numpyro_refinement_gradient_reaches_stage1_only_when_joint(data, joint):
    x, _ = data
    variant = pyro_msvae(x.shape[1], joint=joint)
    twin, params = numpyro_twin(variant, x.shape[1])
    objective = twin.objective()
    z = jnp.asarray(np.random.default_rng(2).normal(size=(len(x), Z_DIM)).astype(np.float32))

    def term(p):
        model = handlers.substitute(twin.model, data={**p, "z": z})
        model_trace = handlers.trace(handlers.seed(model, 0)).get_trace(x=jnp.asarray(x))
        return objective.refinement_term(p, model_trace)

    grads = jax.jit(jax.grad(term))(params)
    norm_of = lambda tree: float(sum(jnp.abs(leaf).sum() for leaf in jax.tree.leaves(tree)))  # noqa: E731
    assert (norm_of(grads["decoder$params"]) > 0) == joint
    assert norm_of(grads["encoder$params"]) == 0  # z is pinned: the encoder is not on this path
    assert norm_of(grads["refiner2$params"]) > 0


def test_backends_agree_with_copied_weights(data):
    """The training loss (msvae.4) at one shared z, and the stage means, in both backends."""
    x, _ = data
    variant = pyro_msvae(x.shape[1], stages=3)
    twin, params = numpyro_twin(variant, x.shape[1])
    z = np.random.default_rng(3).normal(size=(len(x), Z_DIM)).astype(np.float32)
    pyro_loss = variant.objective().differentiable_loss(variant.model, pyro_pinned(variant.guide, torch.as_tensor(z)), x=torch.as_tensor(x))
    numpyro_loss = jax.jit(
        lambda p: twin.objective().loss(jax.random.PRNGKey(0), {**p, "z": jnp.asarray(z)}, twin.model, twin.guide, x=jnp.asarray(x))
    )(params)
    assert float(numpyro_loss) == pytest.approx(pyro_loss.item(), rel=1e-5)
    with torch.no_grad():
        torch_stages = variant.stage_means(torch.as_tensor(z))
    for ours, theirs in zip(twin.stage_means(params, jnp.asarray(z)), torch_stages, strict=True):
        np.testing.assert_allclose(np.asarray(ours), theirs.numpy(), rtol=1e-4, atol=1e-5)


def test_sharpness_ranks_a_blurred_image_below_the_original(data):
    x, shape = data
    blurred = np.stack([ndimage.gaussian_filter(image.reshape(shape), 1.0).ravel() for image in x])
    assert mean_gradient_magnitude(blurred, shape) < 0.8 * mean_gradient_magnitude(x, shape)
    assert laplacian_variance(blurred, shape) < 0.5 * laplacian_variance(x, shape)
    flat = np.full_like(x, 0.5)
    assert mean_gradient_magnitude(flat, shape) == 0 and laplacian_variance(flat, shape) == 0


def test_bad_settings_are_config_errors():
    for settings, message in (({"likelihood": "bernoulli"}, "gaussian"), ({"stages": 0}, "stages"), ({"refine_loss": "l3"}, "refine_loss")):
        with pytest.raises(ConfigError, match=message):
            tiny_config("msvae", **settings)


def run_cli(backend, tmp_path):
    out = tmp_path / "run"
    assert main(tiny_args("msvae", backend, out, 1, "--binarize", "none")) == 0
    assert main(tiny_args("msvae", backend, out, 2, "--binarize", "none", "--resume")) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 2
    for key in ("recon_l1_stage1", "recon_l1_stage2", "sample_gradient_ratio_stage2", "recon_l1_final"):
        assert np.isfinite(metrics[key]) and metrics[key] > 0
    assert metrics["recon_l1_final"] == metrics["recon_l1_stage2"]
    assert main(["evaluate", str(out), "--k", "30", "--limit", "20"]) == 0
    evaluation = json.loads((out / "eval.json").read_text())
    assert evaluation["test_log_likelihood"] >= evaluation["test_elbo"]


def test_cli_trains_resumes_and_evaluates_pyro(tmp_path):
    run_cli("pyro", tmp_path)


@pytest.mark.slow
def test_cli_trains_resumes_and_evaluates_numpyro(tmp_path):
    run_cli("numpyro", tmp_path)
