"""VAE-GAN (zoo/vaegan): parameter groups and gradient isolation, the feature-space
likelihood against a hand computation and (with an identity discriminator) the
Gaussian VAE, the GAN losses at chance, the equilibrium rule in both backends, Pyro
against NumPyro with copied weights, and the CLI (train, evaluate with FD, resume)."""

from __future__ import annotations

import io
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from conftest import tiny_args, tiny_config
from guides.flax_conv import params_from_state_dict
from zoo.cli import main
from zoo.config import ConfigError

GROUPS = ("encoder", "decoder", "discriminator")
X_DIM, BATCH, Z = 64, 10, 4
TINY = {"channels": [4, 8], "hidden": [16]}
TINY_SET = ("--set", "channels=[4,8]", "--binarize", "none")


def pyro_variant(**overrides):
    from zoo.vaegan.pyro_model import Variant

    torch.manual_seed(0)
    variant = Variant(tiny_config("vaegan", **{**TINY, **overrides}), X_DIM)
    variant.configure_optimizers(1e-2)
    return variant


def numpyro_twin(torch_variant):
    from zoo.vaegan.numpyro_model import Variant

    variant = Variant(torch_variant.config, X_DIM)
    params = {f"{name}$params": params_from_state_dict(getattr(torch_variant, name).state_dict()) for name in GROUPS}
    return variant, params


def discriminator_at_chance(variant):
    """Zero the discriminator's output layer: D(x) = 1/2 for every image."""
    with torch.no_grad():
        variant.discriminator.dense[-1].weight.zero_()
        variant.discriminator.dense[-1].bias.zero_()


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, X_DIM)).astype(np.float32)
    eps = rng.standard_normal((BATCH, Z)).astype(np.float32)
    eps_prior = rng.standard_normal((BATCH, Z)).astype(np.float32)
    return x, eps, eps_prior


def standard_normal_kl(loc, scale) -> np.ndarray:
    loc, scale = np.asarray(loc, np.float64), np.asarray(scale, np.float64)
    return (0.5 * (loc**2 + scale**2 - 1.0) - np.log(scale)).sum(-1)


# --- groups and gradient isolation ------------------------------------------------------


def test_optimizers_own_the_three_networks_and_nothing_else():
    variant = pyro_variant()
    for name in GROUPS:
        owned = {id(p) for group in variant.optimizers[name].param_groups for p in group["params"]}
        assert owned == {id(p) for p in getattr(variant, name).parameters()}


@pytest.mark.parametrize("group", GROUPS)
def test_pyro_step_changes_only_its_own_network(group, batch):
    variant = pyro_variant()
    x, eps, eps_prior = (torch.from_numpy(a) for a in batch)
    losses = variant.losses(x, eps, eps_prior)
    before = {name: [p.detach().clone() for p in getattr(variant, name).parameters()] for name in GROUPS}
    assert math.isfinite(variant.step(losses[group], group))
    for name in GROUPS:
        changed = any(not torch.equal(p, q) for p, q in zip(getattr(variant, name).parameters(), before[name]))
        assert changed == (name == group), f"step {group} changed={changed} for {name}"


def test_discriminator_gets_no_gradient_from_the_encoder_and_decoder_losses(batch):
    """dL_E/dpsi = dL_Dec/dpsi = 0 (psi detached inside), dL_Dis/d(phi, theta) = 0 (fakes
    detached), and the encoder gets no gradient from the decoder's GAN loss."""
    variant = pyro_variant()
    x, eps, eps_prior = (torch.from_numpy(a) for a in batch)
    losses = variant.losses(x, eps, eps_prior)
    grad = lambda loss, net: torch.autograd.grad(loss, list(net.parameters()), retain_graph=True, allow_unused=True)  # noqa: E731
    assert all(g is None for g in grad(losses["encoder"], variant.discriminator))
    assert all(g is None for g in grad(losses["decoder"], variant.discriminator))
    assert all(g is None for g in grad(losses["decoder"], variant.encoder))
    assert all(g is None for g in grad(losses["discriminator"], variant.encoder))
    assert all(g is None for g in grad(losses["discriminator"], variant.decoder))
    # ... while each loss does reach its own network.
    assert any(g is not None and g.abs().sum() > 0 for g in grad(losses["discriminator"], variant.discriminator))
    assert any(g is not None and g.abs().sum() > 0 for g in grad(losses["decoder"], variant.decoder))


# --- the losses against hand computations --------------------------------------------------


def test_encoder_loss_is_kl_plus_the_feature_gaussian_nll(batch):
    """(vaegan.4) = KL(q || N(0, I)) + ||Dis_l(x) - Dis_l(Dec(z))||^2 / (2 s^2) + F/2 log 2 pi s^2, by hand."""
    variant = pyro_variant(feature_scale=0.3)
    x, eps, _ = (torch.from_numpy(a) for a in batch)
    with torch.no_grad():
        loc, scale = variant.encoder(x)
        z = loc + scale * eps
        real = variant.discriminator(x)[1].double().numpy()
        fake = variant.discriminator(variant.decoder(z))[1].double().numpy()
        loss = variant.encoder_loss(x, z).item()
    features = real.shape[1]
    expected = (standard_normal_kl(loc, scale) + 0.5 * ((real - fake) ** 2).sum(-1) / 0.3**2
                + 0.5 * features * math.log(2 * math.pi * 0.3**2))
    assert features == 8 * 2 * 2  # the last conv's output: 8 maps of 2x2 on 8x8 digits
    assert loss == pytest.approx(expected.sum(), rel=1e-5)


def test_with_an_identity_discriminator_the_elbo_is_the_gaussian_vae_elbo(batch, monkeypatch):
    """Dis_l = id: the loss is KL + 1/2 ||x - Dec(z)||^2 + D/2 log 2 pi, the -ELBO of the
    unit-variance Gaussian VAE (the pixel model with likelihood gaussian, scale 1)."""
    from pyro.infer import TraceMeanField_ELBO

    from zoo.vaegan.pyro_model import pinned

    variant = pyro_variant(feature_scale=1.0)
    monkeypatch.setattr(variant, "features", lambda images: images)
    x, eps, _ = (torch.from_numpy(a) for a in batch)
    with torch.no_grad():
        loc, scale = variant.encoder(x)
        z = loc + scale * eps
        loss = variant.encoder_loss(x, z).item()
        x_tilde = variant.decoder(z).double().numpy()
        variant.config = tiny_config("vaegan", **TINY, feature_scale=1.0, likelihood="gaussian", pixel_scale=1.0)
        gaussian_vae = TraceMeanField_ELBO().differentiable_loss(variant.pixel_model, pinned(variant.guide, z=z), x).item()
    closed_form = standard_normal_kl(loc, scale) + 0.5 * ((batch[0] - x_tilde) ** 2).sum(-1) + X_DIM / 2 * math.log(2 * math.pi)
    assert loss == pytest.approx(closed_form.sum(), rel=1e-5)
    assert loss == pytest.approx(gaussian_vae, rel=1e-6)


def test_decoder_loss_mixes_feature_error_and_gan_term_with_gamma(batch):
    """(vaegan.5) at D = 1/2: sum_b gamma/(2 F s^2) ||f(x) - f(x~)||^2 + (1 - gamma) 2 log(1/2)."""
    variant = pyro_variant(gamma=0.3, feature_scale=0.5)
    discriminator_at_chance(variant)
    x, eps, eps_prior = (torch.from_numpy(a) for a in batch)
    with torch.no_grad():
        loc, scale = variant.encoder(x)
        x_tilde = variant.decoder(loc + scale * eps)
        error = ((variant.discriminator(x)[1] - variant.discriminator(x_tilde)[1]) ** 2).double().numpy()
        loss = variant.losses(x, eps, eps_prior)["decoder"].item()
    expected = 0.3 * 0.5 * error.mean(-1) / 0.5**2 + 0.7 * 2 * math.log(0.5)
    assert loss == pytest.approx(expected.sum(), rel=1e-5)


@pytest.mark.parametrize("weights, per_datapoint", [((0.5, 0.25, 0.25), math.log(2)), ((1.0, 1.0, 1.0), 3 * math.log(2))])
def test_discriminator_loss_at_chance_is_ln2_weighted_and_3ln2_unweighted(weights, per_datapoint):
    from zoo.numpyro_backend.objectives import discriminator_loss as jax_loss
    from zoo.pyro_backend.objectives import discriminator_loss

    logits = torch.zeros(7, 1)
    assert discriminator_loss(logits, [logits, logits], weights).sum().item() == pytest.approx(7 * per_datapoint, rel=1e-6)
    zeros = jnp.zeros((7, 1))
    assert float(jax_loss(zeros, [zeros, zeros], weights).sum()) == pytest.approx(7 * per_datapoint, rel=1e-6)


def test_the_variant_discriminator_loss_at_chance_is_ln2_per_datapoint(batch):
    variant = pyro_variant()
    discriminator_at_chance(variant)
    losses = variant.losses(*(torch.from_numpy(a) for a in batch))
    assert losses["discriminator"].item() == pytest.approx(BATCH * math.log(2), rel=1e-6)
    assert losses["ce_real"] == pytest.approx(math.log(2)) and losses["ce_fake"] == pytest.approx(math.log(2))


# --- the equilibrium rule --------------------------------------------------------------------

TRUTH_TABLE = [
    # (ce_real, ce_fake) with margin 0.35 around 0.68 -> (update D, update Dec)
    ((0.68, 0.68), (True, True)),
    ((0.20, 0.68), (False, True)),  # D too good on reals: pause D
    ((0.68, 0.20), (False, True)),  # ... or on fakes
    ((1.20, 0.68), (True, False)),  # D too bad: pause the decoder
    ((0.68, 1.20), (True, False)),
    ((0.20, 1.20), (True, True)),  # both rules fire: never skip both
]


@pytest.mark.parametrize("costs, expected", TRUTH_TABLE)
def test_equilibrium_rule_truth_table_in_both_backends(costs, expected):
    from zoo.numpyro_backend.objectives import equilibrium_updates as jax_rule
    from zoo.pyro_backend.objectives import equilibrium_updates

    assert equilibrium_updates(*costs, margin=0.35) == expected
    assert tuple(bool(flag) for flag in jax_rule(jnp.asarray(costs[0]), jnp.asarray(costs[1]), 0.35)) == expected
    assert equilibrium_updates(*costs, margin=-1.0) == (True, True)


def test_a_skipped_decoder_step_leaves_the_decoder(batch):
    """At D = 1/2 both cross-entropies are ln 2 = 0.693 > 0.68 + 0.001: the decoder's
    step is skipped, the encoder's and discriminator's are not."""
    torch_variant = pyro_variant(margin=0.001)
    discriminator_at_chance(torch_variant)
    before = {name: [p.detach().clone() for p in getattr(torch_variant, name).parameters()] for name in GROUPS}
    torch_variant.train_step({"x": torch.from_numpy(batch[0])})
    for name in GROUPS:
        changed = any(not torch.equal(p, q) for p, q in zip(getattr(torch_variant, name).parameters(), before[name]))
        assert changed == (name != "decoder"), name


@pytest.mark.slow
def test_numpyro_update_skips_the_decoder_and_steps_the_others(batch):
    """The same in the jitted NumPyro update (slow: compiles three conv gradients)."""
    torch_variant = pyro_variant(margin=0.001)
    discriminator_at_chance(torch_variant)
    variant, params = numpyro_twin(torch_variant)
    variant.configure_optimizers(1e-2)
    state = variant.grouped_state(params, jax.random.PRNGKey(0))
    stepped, loss = jax.jit(variant.update)(state, {"x": jnp.asarray(batch[0])})
    assert np.isfinite(float(loss))
    for name in GROUPS:
        same = jax.tree.all(jax.tree.map(jnp.array_equal, stepped.params[f"{name}$params"], state.params[f"{name}$params"]))
        assert same == (name == "decoder"), name


# --- Pyro and NumPyro agree -----------------------------------------------------------------


def test_pyro_and_numpyro_agree_on_the_three_losses_with_copied_weights(batch):
    torch_variant = pyro_variant()
    variant, params = numpyro_twin(torch_variant)
    x, eps, eps_prior = (torch.from_numpy(a) for a in batch)
    losses = torch_variant.losses(x, eps, eps_prior)
    jx, jeps, jprior = (jnp.asarray(a) for a in batch)

    @jax.jit  # one compilation instead of one per primitive
    def jax_losses_of(params):
        d_loss, (ce_real, ce_fake) = variant.discriminator_loss(params, jx, jeps, jprior)
        return (variant.encoder_loss(params, jx, jeps), variant.decoder_loss(params, jx, jeps, jprior),
                d_loss, ce_real, ce_fake)

    jax_losses = [float(v) for v in jax_losses_of(params)]
    torch_losses = [losses["encoder"].item(), losses["decoder"].item(), losses["discriminator"].item(),
                    losses["ce_real"], losses["ce_fake"]]
    np.testing.assert_allclose(jax_losses, torch_losses, rtol=2e-5)
    # The pixel-space importance weights (vaegan.8) too, at the posterior mean.
    from zoo.vaegan.pyro_model import pixel_likelihood

    with torch.no_grad():
        loc, _ = torch_variant.encoder(x)
        torch_pixel = pixel_likelihood(torch_variant.decoder(loc), torch_variant.config).log_prob(x).numpy()
    from zoo.vaegan.numpyro_model import pixel_likelihood as jax_pixel

    loc_j = variant.apply(params, "encoder", variant.encoder, jx)[0]
    np.testing.assert_allclose(np.asarray(jax_pixel(variant.decode(params, loc_j), variant.config).log_prob(jx)), torch_pixel, rtol=1e-5)


# --- configuration and CLI -----------------------------------------------------------------


def test_config_rejects_out_of_range_settings():
    with pytest.raises(ConfigError, match="gamma"):
        tiny_config("vaegan", gamma=1.5)
    with pytest.raises(ConfigError, match="similarity"):
        tiny_config("vaegan", similarity="perceptual")


def test_non_square_data_is_a_config_error():
    from zoo.vaegan.pyro_model import Variant

    with pytest.raises(ConfigError, match="square"):
        Variant(tiny_config("vaegan", **TINY), 14)


def _history(out):
    return [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_cli_pyro_trains_evaluates_with_fd_and_resumes_exactly(tmp_path, capsys):
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    assert main(tiny_args("vaegan", "pyro", reference, 2, *TINY_SET)) == 0
    metrics = json.loads((reference / "metrics.json").read_text())
    assert metrics["fd_samples"] > 0 and metrics["fd_reconstructions"] > 0 and np.isfinite(metrics["train_loss"])
    assert (reference / "samples.png").exists()
    assert main(tiny_args("vaegan", "pyro", resumed, 1, *TINY_SET)) == 0
    assert main(tiny_args("vaegan", "pyro", resumed, 2, *TINY_SET, "--resume")) == 0
    np.testing.assert_allclose(_history(resumed), _history(reference), rtol=1e-6)
    ours, theirs = (torch.load(io.BytesIO((o / "checkpoint.ckpt").read_bytes()), weights_only=True) for o in (resumed, reference))
    for key, value in theirs["variant"].items():
        np.testing.assert_allclose(ours["variant"][key].numpy(), value.numpy(), rtol=1e-6, atol=1e-7)
    assert set(ours["optimizer"]) == set(GROUPS)  # the checkpoint holds every optimizer
    capsys.readouterr()
    assert main(["evaluate", str(reference), "--k", "5"]) == 0
    printed = capsys.readouterr().out
    assert "fd_samples" in printed and "test_log_likelihood" in printed


def test_cli_pyro_pixel_baseline_trains(tmp_path):
    out = tmp_path / "vae"
    assert main(tiny_args("vaegan", "pyro", out, 1, *TINY_SET, "--set", "similarity=pixel")) == 0
    assert np.isfinite(json.loads((out / "metrics.json").read_text())["fd_samples"])


@pytest.mark.slow
def test_cli_numpyro_trains_evaluates_and_resumes_exactly(tmp_path, capsys):
    """Slow: XLA compiles the conv nets' epoch (tens of seconds on 2 cores)."""
    from zoo.checkpoint import load_arrays

    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    assert main(tiny_args("vaegan", "numpyro", reference, 2, *TINY_SET)) == 0
    assert main(tiny_args("vaegan", "numpyro", resumed, 1, *TINY_SET)) == 0
    assert main(tiny_args("vaegan", "numpyro", resumed, 2, *TINY_SET, "--resume")) == 0
    np.testing.assert_allclose(_history(resumed), _history(reference), rtol=1e-6)
    ours, theirs = (load_arrays((o / "checkpoint.ckpt").read_bytes())[1] for o in (resumed, reference))
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert main(["evaluate", str(reference), "--k", "5"]) == 0
    assert "fd_samples" in capsys.readouterr().out
