"""CVAE-GAN (zoo/cvaegan): four parameter groups and gradient isolation, the E+G loss
against a hand computation, the feature-matching terms (permutation, order within a
class, the toy closed form), D's loss at chance, the running class means, Pyro against
NumPyro with copied weights, and the CLI (train, evaluate with class fidelity, resume)."""

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

GROUPS = ("encoder", "generator", "discriminator", "classifier")
X_DIM, BATCH, Z, K = 64, 12, 4, 10
TINY = {"channels": [4, 8], "hidden": [16]}
TINY_SET = ("--set", "channels=[4,8]", "--binarize", "none")


def pyro_variant(**overrides):
    from zoo.cvaegan.pyro_model import Variant

    torch.manual_seed(0)
    variant = Variant(tiny_config("cvaegan", **{**TINY, **overrides}), X_DIM, K)
    variant.configure_optimizers(1e-2)
    return variant


def numpyro_twin(torch_variant):
    from zoo.cvaegan.numpyro_model import MEANS, Variant

    variant = Variant(torch_variant.config, X_DIM, K)
    params = {f"{name}$params": params_from_state_dict(getattr(torch_variant, name).state_dict()) for name in GROUPS}
    params[MEANS] = {
        "d_mean": jnp.asarray(torch_variant.d_mean.numpy()),
        "d_seen": jnp.asarray(torch_variant.d_seen.numpy()),
        "c_means": jnp.asarray(torch_variant.c_means.numpy()),
        "c_seen": jnp.asarray(torch_variant.c_seen.numpy()),
    }
    return variant, params


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, X_DIM)).astype(np.float32)
    y = np.array([0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 5, 5], dtype=np.int64)  # classes 4, 6-9 absent
    eps = rng.standard_normal((BATCH, Z)).astype(np.float32)
    eps_prior = rng.standard_normal((BATCH, Z)).astype(np.float32)
    return x, y, eps, eps_prior


def torch_batch(batch):
    return tuple(torch.from_numpy(a) for a in batch)


# --- groups and gradient isolation ------------------------------------------------------


def test_four_optimizers_own_the_four_networks():
    variant = pyro_variant()
    assert set(variant.optimizers) == set(GROUPS)
    for name in GROUPS:
        owned = {id(p) for group in variant.optimizers[name].param_groups for p in group["params"]}
        assert owned == {id(p) for p in getattr(variant, name).parameters()}


@pytest.mark.parametrize("loss, groups", [("encoder_generator", ("encoder", "generator")), ("discriminator", ("discriminator",)), ("classifier", ("classifier",))])
def test_each_loss_steps_only_its_networks_and_reaches_no_other(loss, groups, batch):
    variant = pyro_variant()
    variant.update_feature_means(*torch_batch(batch)[:2])
    losses = variant.losses(*torch_batch(batch))
    for name in GROUPS:
        grads = torch.autograd.grad(losses[loss], list(getattr(variant, name).parameters()), retain_graph=True, allow_unused=True)
        reached = any(g is not None and g.abs().sum() > 0 for g in grads)
        assert reached == (name in groups), f"{loss} reaches {name}: {reached}"
    before = {name: [p.detach().clone() for p in getattr(variant, name).parameters()] for name in GROUPS}
    assert math.isfinite(variant.step(losses[loss], *groups))
    for name in GROUPS:
        changed = any(not torch.equal(p, q) for p, q in zip(getattr(variant, name).parameters(), before[name]))
        assert changed == (name in groups), name


# --- the losses against hand computations ----------------------------------------------------


def test_encoder_generator_loss_is_the_weighted_sum_of_the_papers_terms(batch):
    """lambda_1 KL + lambda_2 [1/2 ||x - x'||^2 + D/2 log 2 pi + pairwise terms] + B (lambda_3 L_GD + lambda_4 L_GC)."""
    weights = dict(lambda_kl=2.0, lambda_g=0.7, lambda_gd=0.3, lambda_gc=0.2)
    variant = pyro_variant(**weights)
    x, y, eps, eps_prior = torch_batch(batch)
    with torch.no_grad():
        variant.d_mean.normal_()
        variant.c_means.normal_()
        c = torch.nn.functional.one_hot(y, K).float()
        loc, scale = variant.encoder(x, c)
        x_rec = variant.generator(loc + scale * eps, c)
        x_prior = variant.generator(eps_prior, c)
        d = lambda images: variant.discriminator(images)[1].detach().double().numpy()  # noqa: E731
        f = lambda images: variant.classifier(images)[2].detach().double().numpy()  # noqa: E731
        loss = variant.losses(x, y, eps, eps_prior)["encoder_generator"].item()
    loc, scale = loc.double().numpy(), scale.double().numpy()
    kl = (0.5 * (loc**2 + scale**2 - 1) - np.log(scale)).sum(-1)
    pixel = 0.5 * ((batch[0] - x_rec.numpy()) ** 2).sum(-1) + X_DIM / 2 * math.log(2 * math.pi)
    pairwise = 0.5 * ((d(x) - d(x_rec)) ** 2).sum(-1) + 0.5 * ((f(x) - f(x_rec)) ** 2).sum(-1)
    l_gd = 0.5 * np.sum((variant.d_mean.double().numpy() - d(x_prior).mean(0)) ** 2)
    fakes = f(x_prior)
    l_gc = sum(0.5 * np.sum((variant.c_means[k].double().numpy() - fakes[batch[1] == k].mean(0)) ** 2) for k in np.unique(batch[1]))
    expected = np.sum(2.0 * kl + 0.7 * (pixel + pairwise)) + BATCH * (0.3 * l_gd + 0.2 * l_gc)
    assert loss == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("recon_as_fake, per_datapoint", [(True, 3 * math.log(2)), (False, 2 * math.log(2))])
def test_discriminator_loss_at_chance_counts_reconstructions_as_fakes(recon_as_fake, per_datapoint, batch):
    variant = pyro_variant(recon_as_fake=recon_as_fake)
    with torch.no_grad():
        variant.discriminator.dense[-1].weight.zero_()
        variant.discriminator.dense[-1].bias.zero_()
    loss = variant.losses(*torch_batch(batch))["discriminator"].item()
    assert loss == pytest.approx(BATCH * per_datapoint, rel=1e-6)


def test_classifier_loss_is_the_cross_entropy_of_real_images(batch):
    variant = pyro_variant()
    x, y = torch_batch(batch)[:2]
    with torch.no_grad():
        log_p = torch.log_softmax(variant.classifier(x)[0], -1).double().numpy()
    loss = variant.losses(*torch_batch(batch))["classifier"].item()
    assert loss == pytest.approx(-log_p[np.arange(BATCH), batch[1]].sum(), rel=1e-5)


# --- the feature-matching terms -------------------------------------------------------------


def test_mean_matching_is_zero_for_a_permutation_and_class_matching_ignores_order_and_absent_classes():
    from zoo.numpyro_backend.objectives import class_mean_matching as jax_gc
    from zoo.pyro_backend.objectives import class_mean_matching, class_means, mean_feature_matching

    rng = np.random.default_rng(1)
    real = torch.as_tensor(rng.normal(size=(20, 3)))
    labels = torch.as_tensor(rng.integers(0, 4, size=20))
    assert mean_feature_matching(real.mean(0), real[torch.randperm(20)]).item() == pytest.approx(0.0, abs=1e-12)
    real_means, _ = class_means(real, labels, 6)
    fake = torch.as_tensor(rng.normal(size=(20, 3)))
    value = class_mean_matching(real_means, fake, labels, 6).item()
    order = torch.randperm(20)
    assert class_mean_matching(real_means, fake[order], labels[order], 6).item() == pytest.approx(value, rel=1e-12)
    # Classes 4 and 5 never appear among the fakes: their (arbitrary) real means do not count.
    shifted = real_means.clone()
    shifted[4:] += 100.0
    assert class_mean_matching(shifted, fake, labels, 6).item() == pytest.approx(value, rel=1e-12)
    assert class_mean_matching(real_means, real, labels, 6).item() == pytest.approx(0.0, abs=1e-12)
    by_hand = sum(0.5 * np.sum((real_means[k].numpy() - fake.numpy()[labels.numpy() == k].mean(0)) ** 2) for k in range(4))
    assert value == pytest.approx(by_hand, rel=1e-10)
    assert float(jax_gc(jnp.asarray(real_means.numpy()), jnp.asarray(fake.numpy()), jnp.asarray(labels.numpy()), 6)) == pytest.approx(value, rel=1e-5)


def test_minimising_class_matching_alone_drives_each_class_offset_to_its_mean():
    """1-D toy: f(x) = x, class data N(m_c, 1), G(z, c) = a_c + z; L_GC alone -> a_c = m_c."""
    from zoo.pyro_backend.objectives import class_mean_matching, class_means

    torch.manual_seed(0)
    m = torch.tensor([-2.0, 0.5, 3.0])
    labels = torch.arange(3).repeat_interleave(200)
    real = (m[labels] + torch.randn(600))[:, None]
    real_means, _ = class_means(real, labels, 3)
    offsets = torch.zeros(3, requires_grad=True)
    optimizer = torch.optim.SGD([offsets], lr=0.5)
    for _ in range(200):
        fake = (offsets[labels] + torch.randn(600))[:, None]
        loss = class_mean_matching(real_means, fake, labels, 3)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    np.testing.assert_allclose(offsets.detach().numpy(), m.numpy(), atol=0.2)


def test_running_means_start_at_the_first_batch_and_blend_with_momentum(batch):
    variant = pyro_variant(feature_momentum=0.75)
    x, y = torch_batch(batch)[:2]
    with torch.no_grad():
        c_features = variant.classifier(x)[2]
        d_features = variant.discriminator(x)[1]
    variant.update_feature_means(x, y)
    np.testing.assert_allclose(variant.d_mean.numpy(), d_features.mean(0).numpy(), rtol=1e-6)
    np.testing.assert_allclose(variant.c_means[1].numpy(), c_features[y == 1].mean(0).numpy(), rtol=1e-6)
    assert variant.c_seen.tolist() == [k in (0, 1, 2, 3, 5) for k in range(K)]
    assert torch.all(variant.c_means[4] == 0)
    first = variant.c_means.clone()
    x2, y2 = x.flip(0) * 0.5, torch.full_like(y, 1)  # only class 1 this time
    with torch.no_grad():
        c2 = variant.classifier(x2)[2].mean(0)
    variant.update_feature_means(x2, y2)
    np.testing.assert_allclose(variant.c_means[1].numpy(), (0.75 * first[1] + 0.25 * c2).numpy(), rtol=1e-5)
    np.testing.assert_allclose(variant.c_means[0].numpy(), first[0].numpy())  # absent: unchanged


# --- Pyro and NumPyro agree -------------------------------------------------------------------


def test_pyro_and_numpyro_agree_on_losses_and_running_means_with_copied_weights(batch):
    torch_variant = pyro_variant()
    x, y, eps, eps_prior = torch_batch(batch)
    variant, params = numpyro_twin(torch_variant)
    torch_variant.update_feature_means(x, y)
    losses = torch_variant.losses(x, y, eps, eps_prior)
    jx, jy, jeps, jprior = (jnp.asarray(a) for a in batch)

    @jax.jit  # one compilation instead of one per primitive
    def jax_side(params):
        from zoo.cvaegan.numpyro_model import MEANS

        params = {**params, MEANS: variant.updated_means(params, jx, jy)}
        return (params[MEANS], variant.encoder_generator_loss(params, jx, jy, jeps, jprior),
                variant.discriminator_loss(params, jx, jy, jeps, jprior), variant.classifier_loss(params, jx, jy))

    means, *jax_losses = jax_side(params)
    torch_losses = [losses[k].item() for k in ("encoder_generator", "discriminator", "classifier")]
    np.testing.assert_allclose([float(v) for v in jax_losses], torch_losses, rtol=2e-5)
    np.testing.assert_allclose(np.asarray(means["c_means"]), torch_variant.c_means.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(means["d_mean"]), torch_variant.d_mean.numpy(), rtol=1e-5, atol=1e-6)
    assert np.asarray(means["c_seen"]).tolist() == torch_variant.c_seen.tolist()


# --- CLI ------------------------------------------------------------------------------------------


def _history(out):
    return [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_cli_pyro_trains_evaluates_with_class_fidelity_and_resumes_exactly(tmp_path, capsys):
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    assert main(tiny_args("cvaegan", "pyro", reference, 2, *TINY_SET)) == 0
    metrics = json.loads((reference / "metrics.json").read_text())
    assert 0.0 <= metrics["class_fidelity"] <= 1.0 and metrics["fd_samples"] > 0
    assert main(tiny_args("cvaegan", "pyro", resumed, 1, *TINY_SET)) == 0
    assert main(tiny_args("cvaegan", "pyro", resumed, 2, *TINY_SET, "--resume")) == 0
    np.testing.assert_allclose(_history(resumed), _history(reference), rtol=1e-6)
    ours, theirs = (torch.load(io.BytesIO((o / "checkpoint.ckpt").read_bytes()), weights_only=True) for o in (resumed, reference))
    assert "c_means" in theirs["variant"] and set(theirs["optimizer"]) == set(GROUPS)
    for key, value in theirs["variant"].items():
        np.testing.assert_allclose(ours["variant"][key].numpy(), value.numpy(), rtol=1e-6, atol=1e-7)
    capsys.readouterr()
    assert main(["evaluate", str(reference), "--k", "5"]) == 0
    assert "class_fidelity" in capsys.readouterr().out


def test_class_conditional_grid_shows_class_r_in_row_r():
    variant = pyro_variant()
    captured = []
    variant.generate = lambda labels, device: captured.append(torch.as_tensor(labels)) or torch.zeros(len(labels), X_DIM)
    variant.sample(100, "cpu")
    assert captured[0].reshape(10, 10).tolist() == [[r] * 10 for r in range(10)]


def test_cli_pyro_cvae_baseline_trains(tmp_path):
    out = tmp_path / "cvae"
    assert main(tiny_args("cvaegan", "pyro", out, 1, *TINY_SET, "--set", "adversarial=false")) == 0
    assert np.isfinite(json.loads((out / "metrics.json").read_text())["class_fidelity"])


@pytest.mark.slow
def test_cli_numpyro_trains_evaluates_and_resumes_exactly(tmp_path, capsys):
    """Slow: XLA compiles four conv nets' gradients (tens of seconds on 2 cores)."""
    from zoo.checkpoint import load_arrays

    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    assert main(tiny_args("cvaegan", "numpyro", reference, 2, *TINY_SET)) == 0
    assert main(tiny_args("cvaegan", "numpyro", resumed, 1, *TINY_SET)) == 0
    assert main(tiny_args("cvaegan", "numpyro", resumed, 2, *TINY_SET, "--resume")) == 0
    np.testing.assert_allclose(_history(resumed), _history(reference), rtol=1e-6)
    ours, theirs = (load_arrays((o / "checkpoint.ckpt").read_bytes())[1] for o in (resumed, reference))
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert main(["evaluate", str(reference), "--k", "5"]) == 0
    assert "class_fidelity" in capsys.readouterr().out
