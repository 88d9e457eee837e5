"""The VLAE (zoo/vlae) and its shared pieces: masked convolutions (guides/*_pixelcnn.py),
the autoregressive-flow prior (guides/torch_flows.py, guides/jax_flows.py) and free bits
(objectives/free_bits.py), in both backends.

- Causality: the decoder's logit at pixel i has zero gradient with respect to every
  pixel j >= i (raster order) and to pixels outside its window, and a nonzero one
  with respect to its left neighbour.
- The teacher-forced log-likelihood equals the sum of per-pixel conditionals, each
  computed from an image whose pixels >= i are scrambled.
- The flow prior's log-density equals the change of variables with the Jacobian
  determinant of the whole map computed by autodiff; identity parameters give N(0, I).
- Free bits equal the ELBO above the floor, and cut the KL's gradient below it.
- Ancestral sampling draws pixel i from its conditional given the pixels drawn.
- Pyro and NumPyro agree on logits, prior density and loss with copied weights.
- The CLI trains, evaluates and resumes both backends on binarized 8x8 digits.
"""

from __future__ import annotations

import functools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from conftest import pyro_pinned, tiny_args, tiny_config
from scipy.stats import norm

from guides import flax_pixelcnn, jax_flows, torch_flows, torch_pixelcnn
from guides.flax_nets import params_from_torch as mlp_params_from_torch
from zoo.cli import main
from zoo.data import load_dataset

X_DIM, SIDE, Z_DIM, LAYERS = 64, 8, 4, 3
SMALL = {"flow_hidden": [16, 16], "layers": LAYERS, "filters": 5}


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return load_dataset("digits", binarize="dynamic", limit_test=6).x_test.astype(np.float32)


def pyro_vlae(**overrides):
    from zoo.vlae.pyro_model import Variant

    torch.manual_seed(0)
    variant = Variant(tiny_config("vlae", **{**SMALL, **overrides}), X_DIM)
    # Fresh output layers start near zero; random ones make every term visible.
    with torch.no_grad():
        for transform in variant.prior_flow:
            transform.arn.layers[-1].weight.normal_(0, 0.3)
            transform.arn.layers[-1].bias.normal_(0, 0.3)
    return variant


def numpyro_twin(torch_variant):
    """The NumPyro VLAE with the Pyro one's weights."""
    from zoo.vlae.numpyro_model import Variant

    variant = Variant(torch_variant.config, X_DIM)
    params = {
        "encoder$params": mlp_params_from_torch(torch_variant.encoder),
        "decoder$params": flax_pixelcnn.params_from_torch(torch_variant.decoder),
    }
    for k, transform in enumerate(torch_variant.prior_flow):
        params[f"prior_flow_{k}$params"] = jax_flows.params_from_torch(transform)
    return variant, params


def raster_offsets(i: int, j: int) -> tuple[int, int]:
    """(rows up, columns right) from pixel i to pixel j."""
    return i // SIDE - j // SIDE, j % SIDE - i % SIDE


def check_causal_jacobian(jacobian: np.ndarray, layers: int) -> None:
    """``jacobian[i, j] = d logit_i / d x_j`` of a PixelCNN with ``layers`` masked layers."""
    for i in range(X_DIM):
        for j in range(X_DIM):
            up, right = raster_offsets(i, j)
            outside = j >= i or up > layers or abs(right) > layers
            if outside:
                assert jacobian[i, j] == 0.0, f"logit {i} depends on pixel {j}"
        if i % SIDE:
            assert jacobian[i, i - 1] != 0.0, f"logit {i} ignores its left neighbour"
    # The window is used: pixels several rows up reach the logit.
    assert jacobian[5 * SIDE + 4, 2 * SIDE + 4] != 0.0


# --- masked convolutions ---------------------------------------------------------


@pytest.mark.parametrize("kind", ["A", "B"])
def test_masked_conv_layer_sees_only_earlier_pixels(kind):
    conv = torch_pixelcnn.MaskedConv2d(kind, 1, 3)
    image = torch.rand(1, 1, SIDE, SIDE, requires_grad=True)
    for i in (0, 9, 27, 63):
        out = conv(image)[0, :, i // SIDE, i % SIDE].sum()
        (grad,) = torch.autograd.grad(out, image)
        grad = grad.flatten()
        allowed_self = kind == "B"
        assert torch.all(grad[i + 1 :] == 0) and (grad[i] != 0) == allowed_self


def test_torch_decoder_is_causal_and_local():
    decoder = torch_pixelcnn.LocalPixelCNN(X_DIM, Z_DIM, (8,), LAYERS, 5)
    z = torch.randn(Z_DIM)
    image = torch.bernoulli(torch.full((X_DIM,), 0.5))
    jacobian = torch.autograd.functional.jacobian(lambda x: decoder(x, z), image)
    check_causal_jacobian(jacobian.numpy(), LAYERS)


def test_flax_decoder_is_causal_and_local():
    decoder = flax_pixelcnn.LocalPixelCNN(X_DIM, (8,), LAYERS, 5)
    z = jax.random.normal(jax.random.PRNGKey(0), (Z_DIM,))
    image = jax.random.bernoulli(jax.random.PRNGKey(1), 0.5, (X_DIM,)).astype(jnp.float32)
    params = jax.jit(decoder.init)(jax.random.PRNGKey(2), image, z)  # eager init compiles op by op
    jacobian = jax.jit(jax.jacfwd(lambda x: decoder.apply(params, x, z)))(image)
    check_causal_jacobian(np.asarray(jacobian), LAYERS)


def bernoulli_log_prob(x, logits) -> np.ndarray:
    x, logits = np.asarray(x, np.float64), np.asarray(logits, np.float64)
    return x * logits - np.logaddexp(0.0, logits)


@pytest.mark.parametrize("backend", ["pyro", "numpyro"])
def test_log_likelihood_is_the_sum_of_one_pixel_conditionals(backend, x):
    """log p(x|z) from the model's observation site (one teacher-forced pass) equals
    sum_i log p(x_i | z, x_<i), each conditional read off a separate pass on an
    image whose pixels i, i+1, ... are replaced by noise."""
    torch_variant = pyro_vlae()
    z = np.random.default_rng(0).standard_normal((len(x), Z_DIM)).astype(np.float32)
    noise = np.random.default_rng(1).integers(0, 2, x.shape).astype(np.float32)
    if backend == "pyro":
        from pyro import poutine

        trace = poutine.trace(poutine.condition(torch_variant.model, data={"z": torch.as_tensor(z)})).get_trace(
            x=torch.as_tensor(x)
        )
        site = trace.nodes["x"]
        joint = site["fn"].log_prob(site["value"]).detach().numpy()

        def logits(image):
            with torch.no_grad():
                return torch_variant.decoder(torch.as_tensor(image), torch.as_tensor(z)).numpy()
    else:
        from numpyro import handlers

        variant, params = numpyro_twin(torch_variant)
        @jax.jit
        def observation_log_prob(params, x, z):
            model = handlers.substitute(handlers.seed(variant.model, 0), data={**params, "z": z})
            site = handlers.trace(model).get_trace(x=x)["x"]
            return site["fn"].log_prob(site["value"])

        joint = np.asarray(observation_log_prob(params, jnp.asarray(x), jnp.asarray(z)))

        apply = jax.jit(lambda image, z: variant.decoder.apply({"params": params["decoder$params"]}, image, z))

        def logits(image):
            return np.asarray(apply(jnp.asarray(image), jnp.asarray(z)))

    # scrambled[i]: pixels < i from x, pixels >= i from noise; all 64 images in one pass.
    keep = np.arange(X_DIM)[None, :] < np.arange(X_DIM)[:, None]  # (i, j): j < i
    scrambled = np.where(keep[:, None, :], x[None], noise[None])  # (i, B, D)
    conditionals = logits(scrambled)[np.arange(X_DIM), :, np.arange(X_DIM)]  # (i, B): logit i of image i
    one_at_a_time = bernoulli_log_prob(x.T, conditionals).sum(0)
    np.testing.assert_allclose(joint, one_at_a_time, rtol=1e-5)
    # Not vacuous: scoring the scrambled image itself gives another number.
    assert np.all(np.abs(bernoulli_log_prob(x, logits(noise)).sum(1) - joint) > 1e-2)


# --- the flow prior --------------------------------------------------------------


def test_torch_flow_prior_is_the_change_of_variables():
    transforms = pyro_vlae().prior_flow
    # float64 for the Jacobians (Pyro's sequential inverse only runs in float32, so
    # the sampler is checked in float32 below).
    z = torch.randn(5, Z_DIM, dtype=torch.float64)
    transforms = transforms.double()

    def to_eps(v):
        for transform in transforms:
            v = transform(v)
        return v

    prior = torch_flows.flow_prior(transforms, z)
    expected = [
        norm.logpdf(to_eps(z[n]).detach().numpy()).sum()
        + torch.linalg.slogdet(torch.autograd.functional.jacobian(to_eps, z[n]))[1].item()
        for n in range(len(z))
    ]
    np.testing.assert_allclose(prior.log_prob(z).detach().numpy(), expected, rtol=1e-8)
    torch_flows.identity_flow_(transforms)
    z = z.clone()  # a new tensor: Pyro's transforms cache their last (input, output) pair
    np.testing.assert_allclose(prior.log_prob(z).detach().numpy(), norm.logpdf(z.numpy()).sum(-1), rtol=1e-10)

    # The sampler inverts the map: eps of a prior draw is the base draw it came from.
    transforms = pyro_vlae().prior_flow
    prior = torch_flows.flow_prior(transforms, z.float())
    torch.manual_seed(3)
    draws = prior.sample()
    torch.manual_seed(3)
    eps = prior.base_dist.sample()
    np.testing.assert_allclose(to_eps(draws).detach().numpy(), eps.numpy(), atol=1e-5)


def test_jax_flow_prior_is_the_change_of_variables():
    from numpyro.distributions.flows import InverseAutoregressiveTransform

    torch_variant = pyro_vlae()
    nets = jax_flows.autoregressive_nets(Z_DIM, len(torch_variant.prior_flow), SMALL["flow_hidden"])
    step_params = [jax_flows.params_from_torch(transform) for transform in torch_variant.prior_flow]

    def bound(all_params):
        return [functools.partial(apply_fn, p) for (_, apply_fn), p in zip(nets, all_params)]

    arns = bound(step_params)

    def to_eps(v):
        for arn in arns:
            v = InverseAutoregressiveTransform(arn)(v)
        return v

    z = jax.random.normal(jax.random.PRNGKey(0), (5, Z_DIM))
    key = jax.random.PRNGKey(4)

    @jax.jit
    def compute(z):
        prior = jax_flows.flow_prior(arns, z)
        log_det = jnp.linalg.slogdet(jax.vmap(jax.jacfwd(to_eps))(z))[1]
        draws, base = prior.sample(key), prior.base_dist.sample(key)
        identity = jax_flows.flow_prior(bound(zeroed), z)
        return prior.log_prob(z), to_eps(z), log_det, to_eps(draws), base, identity.log_prob(z)

    zeroed = [p[:-1] + [jax.tree_util.tree_map(jnp.zeros_like, p[-1])] for p in step_params]
    log_prob, eps, log_det, eps_of_draws, base_draws, identity_log_prob = map(np.asarray, compute(z))
    np.testing.assert_allclose(log_prob, norm.logpdf(eps).sum(-1) + log_det, rtol=1e-5)
    # The sampler inverts the map: eps of a prior draw is the base draw it came from.
    np.testing.assert_allclose(eps_of_draws, base_draws, atol=1e-4)
    np.testing.assert_allclose(identity_log_prob, norm.logpdf(np.asarray(z)).sum(-1), rtol=1e-5)


# --- free bits -------------------------------------------------------------------


def test_free_bits_is_the_elbo_above_the_floor_and_stops_the_kl_gradient_below(x):
    from zoo.pyro_backend.objectives import FreeBitsELBO, elbo_terms

    variant = pyro_vlae()
    xt = torch.as_tensor(x)
    with torch.no_grad():
        z = variant.encoder(xt)[0] + 0.3 * torch.randn(len(x), Z_DIM)
    guide = pyro_pinned(variant.guide, z)
    reconstruction, kl = elbo_terms(variant.model, guide, x=xt)
    elbo = (reconstruction - kl["z"]).sum()
    assert kl["z"].mean().item() > 0.5
    assert FreeBitsELBO(0.0).differentiable_loss(variant.model, guide, x=xt).item() == pytest.approx(-elbo.item(), rel=1e-6)
    below = 0.9 * kl["z"].mean().item()
    assert FreeBitsELBO(below).differentiable_loss(variant.model, guide, x=xt).item() == pytest.approx(-elbo.item(), rel=1e-6)

    floor = 2.0 * kl["z"].mean().item()
    loss = FreeBitsELBO({"z": floor}).differentiable_loss(variant.model, guide, x=xt)
    assert loss.item() == pytest.approx(-reconstruction.sum().item() + len(x) * floor, rel=1e-6)
    loss.backward()
    # The prior enters only the KL, which sits under its floor: no gradient reaches it.
    assert all(p.grad is None or torch.all(p.grad == 0) for p in variant.prior_flow.parameters())
    assert any(p.grad is not None and torch.any(p.grad != 0) for p in variant.decoder.parameters())


# --- the two backends ------------------------------------------------------------


FLOORS = (0.0, 40.0)  # the ELBO, then a floor that binds


def test_backends_agree_with_copied_weights(x):
    from zoo.numpyro_backend.objectives import FreeBitsELBO as NumPyroFreeBits
    from zoo.pyro_backend.objectives import FreeBitsELBO

    torch_variant = pyro_vlae()
    variant, params = numpyro_twin(torch_variant)
    z = np.random.default_rng(2).standard_normal((len(x), Z_DIM)).astype(np.float32)
    with torch.no_grad():
        torch_logits = torch_variant.decoder(torch.as_tensor(x), torch.as_tensor(z)).numpy()
        torch_prior = torch_variant.prior(torch.as_tensor(z)).log_prob(torch.as_tensor(z)).numpy()
    from numpyro import handlers

    @jax.jit
    def numpyro_terms(params, x, z):
        logits = variant.decoder.apply({"params": params["decoder$params"]}, x, z)
        prior = handlers.substitute(variant.prior, data=params)(z).log_prob(z)
        losses = [
            NumPyroFreeBits(floor).loss(jax.random.PRNGKey(0), {**params, "z": z}, variant.model, variant.guide, x=x)
            for floor in FLOORS
        ]
        return logits, prior, losses

    jax_logits, jax_prior, jax_losses = numpyro_terms(params, jnp.asarray(x), jnp.asarray(z))
    np.testing.assert_allclose(np.asarray(jax_logits), torch_logits, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(jax_prior), torch_prior, rtol=1e-4, atol=1e-4)
    for floor, jax_loss in zip(FLOORS, jax_losses):
        torch_loss = FreeBitsELBO(floor).differentiable_loss(
            torch_variant.model, pyro_pinned(torch_variant.guide, torch.as_tensor(z)), x=torch.as_tensor(x)
        )
        assert float(jax_loss) == pytest.approx(torch_loss.item(), rel=1e-5)


# --- sampling --------------------------------------------------------------------


def test_ancestral_sampling_draws_each_pixel_from_its_conditional():
    """For one fixed z, pixel 0 of the samples has frequency sigmoid(logit_0), and
    pixel 1 given pixel 0 has frequency sigmoid(logit_1(x_0)): the loop feeds each
    draw back in. Both backends share the weights and are checked the same way."""
    torch_variant = pyro_vlae()
    variant, params = numpyro_twin(torch_variant)
    n = 1500
    z = torch.randn(1, Z_DIM).expand(n, Z_DIM)
    torch_samples = torch_variant.decode(z).numpy()
    jax_samples = np.asarray(variant.decode(params, jnp.asarray(z.numpy())))
    for samples in (torch_samples, jax_samples):
        assert set(np.unique(samples)) <= {0.0, 1.0}
        for first in (0.0, 1.0):
            image = np.zeros((1, X_DIM), np.float32)
            image[0, 0] = first
            with torch.no_grad():
                logits = torch_variant.decoder(torch.as_tensor(image), z[:1])[0].numpy()
            p0, p1 = 1 / (1 + np.exp(-logits[:2]))
            chosen = samples[:, 0] == first
            assert abs(samples[:, 0].mean() - p0) < 4 * math.sqrt(p0 * (1 - p0) / n) + 1e-3
            assert abs(samples[chosen, 1].mean() - p1) < 4 * math.sqrt(p1 * (1 - p1) / chosen.sum()) + 1e-3


def test_cropped_sampling_is_exact_and_the_backends_draw_the_same_images():
    """On 16x16 images with a 2-layer window, sampling on 3-row bands gives the
    image of full-image passes for the same uniforms, in torch and in JAX."""
    torch.manual_seed(1)
    decoder = torch_pixelcnn.LocalPixelCNN(256, 3, (8,), layers=2, filters=4)
    z, u = torch.randn(5, 3), torch.rand(5, 256)
    cropped, full = decoder.sample(z, u, crop=True), decoder.sample(z, u, crop=False)
    assert torch.equal(cropped, full) and 0.05 < cropped.mean() < 0.95
    twin = flax_pixelcnn.LocalPixelCNN(256, (8,), layers=2, filters=4)
    variables = {"params": flax_pixelcnn.params_from_torch(decoder)}
    drawn = jax.jit(lambda z, u: flax_pixelcnn.sample_pixels(twin, variables, z, None, uniforms=u))(
        jnp.asarray(z.numpy()), jnp.asarray(u.numpy())
    )
    np.testing.assert_array_equal(np.asarray(drawn), cropped.numpy())


# --- the command line ------------------------------------------------------------


# z_dim in --set too: the CLI validates --set before it applies --z-dim.
SETTINGS = ["--set", "z_dim=4", "--set", "flow_hidden=[16,16]", "--set", "layers=3", "--set", "filters=6"]


def history(out) -> list[float]:
    return [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(
    # NumPyro: about a minute of compiling (the epoch, the pixel loop, the importance weights).
    "backend", ["pyro", pytest.param("numpyro", marks=pytest.mark.slow)]
)
def test_cli_trains_evaluates_and_resumes(backend, tmp_path, capsys):
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    assert main(tiny_args("vlae", backend, reference, 2, *SETTINGS)) == 0
    assert main(tiny_args("vlae", backend, resumed, 1, *SETTINGS)) == 0
    assert main(tiny_args("vlae", backend, resumed, 2, *SETTINGS, "--resume")) == 0
    np.testing.assert_allclose(history(resumed), history(reference), rtol=1e-5)

    metrics = json.loads((resumed / "metrics.json").read_text())
    assert metrics["kl_per_image"] > 0 and 0 < metrics["kl_fraction"] < 1
    # KL and reconstruction split -ELBO (one draw each, another draw than the ELBO's).
    total = metrics["kl_per_image"] + metrics["reconstruction_nll"]
    assert total == pytest.approx(-metrics["test_elbo_500"], rel=0.05)
    assert (resumed / "samples.png").exists() and (resumed / "reconstructions.png").exists()
    capsys.readouterr()
    assert main(["evaluate", str(resumed), "--k", "8", "--limit", "20"]) == 0
    results = json.loads((resumed / "eval.json").read_text())
    assert 0 < results["test_nll"] <= -results["test_elbo"] + 1e-4
    assert "kl_fraction" in capsys.readouterr().out


@pytest.mark.parametrize(
    "setting", ["likelihood=gaussian", "flow_hidden=[2]", "layers=-1", "free_bits=-0.1"]
)
def test_cli_rejects_bad_settings_in_one_line(setting, tmp_path, capsys):
    assert main(tiny_args("vlae", "pyro", tmp_path, 1, "--set", setting)) == 2
    err = capsys.readouterr().err
    assert err.startswith("vaezoo: error:") and err.count("\n") == 1
