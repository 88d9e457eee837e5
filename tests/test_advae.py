"""adVAE (zoo/advae): the three optimizers and their parameter groups, the three
losses against closed forms and across backends, the anomaly score, the trend the
paper relies on, and the CLI with the one-class protocol."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pyro
import pytest
import torch

from conftest import tiny_args, tiny_config, tiny_options
from guides.flax_nets import params_from_torch
from zoo.cli import main
from zoo.config import ConfigError

GROUPS = ("transformer", "generator", "encoder")
X_DIM, BATCH = 64, 12


def normal_kl(loc_q, scale_q, loc_p, scale_p) -> np.ndarray:
    """KL(N(loc_q, scale_q^2) || N(loc_p, scale_p^2)) in closed form, summed over the last axis."""
    loc_q, scale_q, loc_p, scale_p = (np.asarray(a, np.float64) for a in (loc_q, scale_q, loc_p, scale_p))
    return (np.log(scale_p / scale_q) + (scale_q**2 + (loc_q - loc_p) ** 2) / (2 * scale_p**2) - 0.5).sum(-1)


def pyro_variant(tiny_scale: bool = False, **overrides):
    """A tiny Pyro adVAE; with ``tiny_scale`` the encoder's sigma is pinned at its floor 1e-4."""
    from zoo.advae.pyro_model import Variant

    torch.manual_seed(0)
    variant = Variant(tiny_config("advae", **overrides), X_DIM)
    variant.configure_optimizers(1e-2)
    if tiny_scale:
        d = variant.config.z_dim
        with torch.no_grad():
            variant.encoder.net[-1].weight[d:] = 0.0
            variant.encoder.net[-1].bias[d:] = -30.0
    return variant


def numpyro_twin(torch_variant):
    """The NumPyro adVAE with the Pyro one's weights."""
    from zoo.advae.numpyro_model import Variant

    variant = Variant(torch_variant.config, X_DIM)
    params = {f"{name}$params": params_from_torch(getattr(torch_variant, name)) for name in GROUPS}
    return variant, params


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, X_DIM)).astype(np.float32)
    eps = rng.standard_normal((BATCH, 4)).astype(np.float32)
    eps_t = rng.standard_normal((BATCH, 4)).astype(np.float32)
    return x, eps, eps_t


# --- optimizers and parameter groups ------------------------------------------------


def test_pyro_optimizers_own_disjoint_parameter_sets_covering_the_model():
    variant = pyro_variant()
    owned = {name: {id(p) for group in opt.param_groups for p in group["params"]} for name, opt in variant.optimizers.items()}
    assert set(owned) == set(GROUPS)
    for a in GROUPS:
        for b in GROUPS:
            if a != b:
                assert not owned[a] & owned[b], f"{a} and {b} share parameters"
    assert set().union(*owned.values()) == {id(p) for p in variant.parameters()}
    assert owned["transformer"] == {id(p) for p in variant.transformer.parameters()}


@pytest.mark.parametrize("group", GROUPS)
def test_pyro_step_changes_only_its_own_network(group, batch):
    variant = pyro_variant()
    x, eps, eps_t = (torch.from_numpy(a) for a in batch)
    loss = {
        "transformer": lambda: variant.transformer_loss(x),
        "generator": lambda: variant.generator_loss(x, eps, eps_t),
        "encoder": lambda: variant.encoder_loss(x, eps_t),
    }[group]
    before = {name: [p.detach().clone() for p in getattr(variant, name).parameters()] for name in GROUPS}
    value = variant.step(loss(), group)
    assert math.isfinite(value)
    for name in GROUPS:
        changed = any(not torch.equal(p, q) for p, q in zip(getattr(variant, name).parameters(), before[name]))
        assert changed == (name == group), f"step {group} changed={changed} for {name}"


def test_numpyro_step_changes_only_its_own_network(batch):
    torch_variant = pyro_variant()
    variant, params = numpyro_twin(torch_variant)
    variant.configure_optimizers(1e-2)
    state = variant.init_state(jax.random.PRNGKey(0), {"x": jnp.asarray(batch[0])})
    assert set(state.params) == {f"{name}$params" for name in GROUPS} == {f"{name}$params" for name in state.opt_states}
    state = state._replace(params=params, opt_states={n: variant.optimizers[n].init(params[f"{n}$params"]) for n in GROUPS})
    x, eps, eps_t = (jnp.asarray(a) for a in batch)
    losses = {
        "transformer": lambda p: variant.transformer_loss(p, x),
        "generator": lambda p: variant.generator_loss(p, x, eps, eps_t),
        "encoder": lambda p: variant.encoder_loss(p, x, eps_t, jax.random.PRNGKey(1)),
    }
    for group in GROUPS:
        # jit: one compilation per step instead of one per primitive.
        stepped, loss = jax.jit(lambda s: variant.step(s, losses[group], group))(state)
        assert np.isfinite(float(loss))
        for name in GROUPS:
            same = jax.tree.all(jax.tree.map(jnp.array_equal, stepped.params[f"{name}$params"], state.params[f"{name}$params"]))
            assert same == (name != group), f"step {group} moved {name}"


# --- the losses against closed forms ---------------------------------------------------


def test_transformer_loss_is_m_z_plus_the_absolute_kl_deviation_for_gamma_two(batch):
    """(advae.5) with gamma = 2: sum_b m_z + |KL_b - m_z|, KL in closed form."""
    variant = pyro_variant(gamma=2.0, m_z=3.0)
    x = torch.from_numpy(batch[0])
    with torch.no_grad():
        loc, scale = variant.encoder(x)
        loc_t, scale_t = variant.transformer(loc, scale)
        loss = variant.transformer_loss(x).item()
    kl = normal_kl(loc_t, scale_t, loc, scale)
    assert loss == pytest.approx(np.sum(3.0 + np.abs(kl - 3.0)), rel=1e-5)


def test_generator_loss_is_squared_error_plus_the_hinge(batch):
    """(advae.6): -log N(x; G(z), 1/2) = ||x - G(z)||^2 + (D/2) log pi, plus gamma [m_x - ||G(z) - G(z_T)||^2]^+."""
    variant = pyro_variant(gamma=1.5, m_x=30.0)
    x, eps, eps_t = (torch.from_numpy(a) for a in batch)
    with torch.no_grad():
        loc, scale = variant.encoder(x)
        loc_t, scale_t = variant.transformer(loc, scale)
        x_rec = variant.generator(loc + scale * eps).numpy().astype(np.float64)
        x_anom = variant.generator(loc_t + scale_t * eps_t).numpy().astype(np.float64)
        loss = variant.generator_loss(x, eps, eps_t).item()
    squared_error = ((batch[0] - x_rec) ** 2).sum(-1) + X_DIM / 2 * np.log(np.pi)
    hinge = 1.5 * np.maximum(0.0, 30.0 - ((x_rec - x_anom) ** 2).sum(-1))
    assert hinge.sum() > 0  # the margin is active, so the check sees it
    assert loss == pytest.approx(np.sum(squared_error + hinge), rel=1e-5)


def test_encoder_loss_is_the_negative_elbo_plus_the_hinge(batch):
    """(advae.7) with a pinned sigma: KL(q||p) + ||x - G(mu)||^2 + const + gamma [m_z - KL(q(.|G(z_T))||p)]^+."""
    variant = pyro_variant(tiny_scale=True, gamma=1.5, m_z=500.0)
    x, _, eps_t = (torch.from_numpy(a) for a in batch)
    with torch.no_grad():
        loc, scale = variant.encoder(x)
        x_rec = variant.generator(loc).numpy().astype(np.float64)
        loc_t, scale_t = variant.transformer(loc, scale)
        loc_a, scale_a = variant.encoder(variant.generator(loc_t + scale_t * eps_t))
        loss = variant.encoder_loss(x, eps_t).item()
    negative_elbo = normal_kl(loc, scale, 0.0, 1.0) + ((batch[0] - x_rec) ** 2).sum(-1) + X_DIM / 2 * np.log(np.pi)
    hinge = 1.5 * np.maximum(0.0, 500.0 - normal_kl(loc_a, scale_a, 0.0, 1.0))
    assert hinge.sum() > 0
    assert loss == pytest.approx(np.sum(negative_elbo + hinge), rel=1e-4)


def test_anomaly_score_with_a_pinned_sigma_is_the_reconstruction_error_of_the_mean(batch):
    """(advae.8) when q_E(z|x) is a point mass at mu, s(x) = ||G(mu) - x||^2, in both backends."""
    torch_variant = pyro_variant(tiny_scale=True)
    x = torch.from_numpy(batch[0])
    with torch.no_grad():
        expected = ((torch_variant.generator(torch_variant.encoder(x)[0]) - x) ** 2).sum(-1).numpy()
        torch_score = torch_variant.anomaly_score(x, 150).numpy()  # 2 chunks of samples
    variant, params = numpyro_twin(torch_variant)
    jax_score = np.asarray(variant.anomaly_score(params, jax.random.PRNGKey(0), jnp.asarray(batch[0]), 150))
    np.testing.assert_allclose(torch_score, expected, rtol=1e-3)
    np.testing.assert_allclose(jax_score, expected, rtol=1e-3)


# --- Pyro and NumPyro agree ------------------------------------------------------------


def test_pyro_and_numpyro_agree_on_the_three_losses_with_identical_weights(batch):
    torch_variant = pyro_variant(tiny_scale=True, m_z=200.0, m_x=30.0)
    variant, params = numpyro_twin(torch_variant)
    x, eps, eps_t = batch
    tx, teps, teps_t = (torch.from_numpy(a) for a in batch)
    with torch.no_grad():
        torch_losses = [
            torch_variant.transformer_loss(tx).item(),
            torch_variant.generator_loss(tx, teps, teps_t).item(),
        ]
    torch_losses.append(torch_variant.encoder_loss(tx, teps_t).item())
    jx, jeps, jeps_t = (jnp.asarray(a) for a in batch)
    jax_losses = [
        float(variant.transformer_loss(params, jx)),
        float(variant.generator_loss(params, jx, jeps, jeps_t)),
        float(variant.encoder_loss(params, jx, jeps_t, jax.random.PRNGKey(0))),
    ]
    np.testing.assert_allclose(jax_losses, torch_losses, rtol=1e-5)
    assert all(np.isfinite(torch_losses))


# --- the trend the paper relies on -----------------------------------------------------


def test_after_training_the_encoder_maps_generated_anomalies_farther_from_the_prior():
    """Mean KL(q_E(z|G(z_T)) || p) > mean KL(q_E(z|x) || p) on the normal training data."""
    from zoo.advae.pyro_model import standard_normal_kl
    from zoo.anomaly import train_one_class

    pyro.clear_param_store()
    options = tiny_options(epochs=10, limit_train=None, limit_test=None, batch_size=48, binarize="none", lr=1e-2)
    trainer = train_one_class("advae", tiny_config("advae", hidden="[32]"), options, normal_class=0)
    variant = trainer.variant
    x = torch.as_tensor(trainer.dataset.x_train)
    with torch.no_grad():
        loc, scale = variant.encoder(x)
        x_anomalous = variant.generator(variant.anomalous_latent(loc, scale, torch.randn_like(loc)))
        kl_normal = standard_normal_kl(loc, scale).mean().item()
        kl_anomalous = standard_normal_kl(*variant.encoder(x_anomalous)).mean().item()
    assert kl_anomalous > kl_normal + 10.0


# --- CLI and configuration ---------------------------------------------------------------


@pytest.mark.parametrize("backend", ["pyro", pytest.param("numpyro", marks=pytest.mark.slow)])  # NumPyro: a compile of 10-30 s CPU
def test_cli_one_class_run_trains_and_evaluate_reports_auroc(backend, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(tiny_args("advae", backend, out, 1, "--normal-class", "0", "--set", "score_samples=20")) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["normal_class"] == 0 and np.isfinite(metrics["auroc_recon"])  # AUROC: tests/test_anomaly.py
    assert np.isfinite(metrics["train_loss"])
    capsys.readouterr()
    assert main(["evaluate", str(out), "--k", "20"]) == 0
    printed = capsys.readouterr().out
    assert "auroc_recon" in printed and "auroc_elbo" in printed


def test_config_insists_on_the_gaussian_likelihood():
    with pytest.raises(ConfigError, match="gaussian"):
        tiny_config("advae", likelihood="bernoulli")


def test_default_networks_follow_the_official_shapes():
    """E: D -> D/2 -> D/2 -> 2d; G mirrors it; T: 2d -> 2d -> 2d -> 2d."""
    from zoo import registry
    from zoo.advae.pyro_model import Variant

    variant = Variant(registry.default_config("advae"), X_DIM)
    d = variant.config.z_dim
    shapes = lambda net: [tuple(m.weight.shape[::-1]) for m in net.net if isinstance(m, torch.nn.Linear)]  # noqa: E731
    assert shapes(variant.encoder) == [(64, 32), (32, 32), (32, 2 * d)]
    assert shapes(variant.generator) == [(d, 32), (32, 32), (32, 64)]
    assert shapes(variant.transformer) == [(2 * d, 2 * d)] * 3
