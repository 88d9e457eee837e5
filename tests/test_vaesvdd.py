"""VAE-SVDD (zoo/vaesvdd): the centre after the warm-up, the objective in both
backends against each other, the pull of the SVDD term, checkpoints, and the CLI
with the one-class protocol (AUROC in ``vaezoo evaluate``)."""

from __future__ import annotations

import json

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
from zoo.run import restore


def numpy_centre(z_means: np.ndarray, eps: float) -> np.ndarray:
    """(vaesvdd.6) computed directly: mean, then |c_j| < eps -> sign(c_j) eps (0 -> +eps)."""
    c = z_means.astype(np.float64).mean(0)
    return np.array([cj if abs(cj) >= eps else (-eps if cj < 0 else eps) for cj in c])


def encoder_means(trainer) -> np.ndarray:
    x = trainer.dataset.x_train
    if trainer.backend == "pyro":
        with torch.no_grad():
            return trainer.variant.encoder(torch.as_tensor(x))[0].numpy()
    return np.asarray(trainer.variant.encode(trainer.params, jnp.asarray(x)))


def centre_of(trainer):
    """(c, ready) as stored in the trainer's state."""
    if trainer.backend == "pyro":
        return trainer.variant.centre.numpy(), float(trainer.variant.centre_ready)
    return np.asarray(trainer.state.centre), float(trainer.state.centre_ready)


@pytest.mark.parametrize("backend", ["pyro", pytest.param("numpyro", marks=pytest.mark.slow)])  # NumPyro: a compile of 10-30 s CPU
def test_cli_one_class_run_fixes_the_centre_and_reports_auroc(backend, tmp_path, capsys):
    out = tmp_path / "run"
    # One epoch = the warm-up: c is fixed from the final weights of that epoch.
    assert main(tiny_args("vaesvdd", backend, out, 1, "--normal-class", "0")) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    # AUROC itself is checked on constructed scores in tests/test_anomaly.py.
    assert metrics["normal_class"] == 0 and np.isfinite(metrics["auroc_svdd"]) and np.isfinite(metrics["auroc_elbo"])

    # The checkpoint holds c, equal to (vaesvdd.6) computed from the final encoder.
    trainer, *_ = restore(out)
    centre, ready = centre_of(trainer)
    assert ready == 1.0
    np.testing.assert_allclose(centre, numpy_centre(encoder_means(trainer), trainer.variant.config.centre_eps), rtol=1e-4, atol=1e-5)
    if backend == "numpyro":  # a later epoch's end leaves it alone
        state = trainer.variant.on_epoch_end(trainer.state, 1, trainer.train_arrays)
        np.testing.assert_array_equal(np.asarray(state.centre), centre)
    else:  # resuming trains on with the checkpointed centre, which never moves again
        assert main(tiny_args("vaesvdd", backend, out, 2, "--resume")) == 0
        np.testing.assert_array_equal(centre_of(restore(out)[0])[0], centre)

    capsys.readouterr()
    assert main(["evaluate", str(out), "--k", "20"]) == 0
    printed = capsys.readouterr().out
    assert "auroc_svdd" in printed and "auroc_elbo" in printed
    evaluation = json.loads((out / "eval.json").read_text())
    assert np.isfinite(evaluation["auroc_svdd"]) and evaluation["centre_fixed_in_training"] is True


def test_the_term_is_off_during_the_warm_up_and_lambda_after():
    from zoo.vaesvdd.pyro_model import Variant

    config = tiny_config("vaesvdd", svdd_weight=2.5, warmup_epochs=2)
    variant = Variant(config, 64)
    arrays = {"x": torch.rand(30, 64)}
    assert float(variant.svdd_weight()) == 0.0
    variant.on_epoch_end(0, arrays)  # still warming up
    assert float(variant.svdd_weight()) == 0.0 and torch.all(variant.centre == 0)
    variant.on_epoch_end(1, arrays)
    assert float(variant.svdd_weight()) == 2.5
    centre = variant.centre.clone()
    with torch.no_grad():
        variant.encoder.net[0].weight.add_(1.0)  # the encoder moves on ...
    variant.on_epoch_end(2, arrays)
    torch.testing.assert_close(variant.centre, centre)  # ... the centre does not


def test_pyro_and_numpyro_agree_on_the_loss_with_identical_weights():
    """Same weights, same c, lambda > 0: the two SVDD ELBOs give the same loss.

    The encoder's scale is pinned at its floor (1e-4), so the sampled z is mu to
    1e-4 and the single-sample reconstruction term is the same in both backends.
    """
    from zoo.vaesvdd.numpyro_model import Variant as NumPyroVariant
    from zoo.vaesvdd.pyro_model import Variant as PyroVariant

    config = tiny_config("vaesvdd", svdd_weight=3.0)
    torch.manual_seed(0)
    torch_variant = PyroVariant(config, 64)
    d = config.z_dim
    with torch.no_grad():
        last = torch_variant.encoder.net[-1]
        last.weight[d:] = 0.0
        last.bias[d:] = -30.0
        torch_variant.centre.copy_(torch.linspace(-0.5, 0.5, d))
        torch_variant.centre_ready.fill_(1.0)
    jax_variant = NumPyroVariant(config, 64)
    params = {"encoder$params": params_from_torch(torch_variant.encoder), "decoder$params": params_from_torch(torch_variant.decoder)}
    x = (np.random.default_rng(1).random((20, 64)) < 0.4).astype(np.float32)

    torch_loss = torch_variant.objective().loss(torch_variant.model, torch_variant.guide, torch.from_numpy(x))
    jax_loss = jax_variant.objective().loss(
        jax.random.PRNGKey(0), params, jax_variant.model, jax_variant.guide, x=jnp.asarray(x),
        svdd_centre=jnp.asarray(torch_variant.centre.numpy()), svdd_weight=3.0,
    )
    assert torch_loss == pytest.approx(float(jax_loss), rel=1e-5)
    # The SVDD part is a sizeable share of the loss, so the check would see it missing.
    with torch.no_grad():
        svdd = 3.0 * ((torch_variant.encoder(torch.from_numpy(x))[0] - torch_variant.centre) ** 2).sum()
    assert svdd.item() > 1e-3 * abs(torch_loss)


def test_the_svdd_term_pulls_the_training_encodings_towards_the_centre():
    """After the warm-up, lambda > 0 shrinks the mean distance to c; lambda = 0 does not."""
    from zoo.anomaly import train_one_class

    options = tiny_options(epochs=8, limit_train=None, limit_test=None, batch_size=48)
    distances = {}
    for weight in (0.0, 10.0):
        pyro.clear_param_store()
        trainer = train_one_class("vaesvdd", tiny_config("vaesvdd", svdd_weight=weight), options, normal_class=0)
        centre, _ = centre_of(trainer)
        distances[weight] = float(((encoder_means(trainer) - centre) ** 2).sum(-1).mean())
    assert distances[10.0] < 0.5 * distances[0.0]


def test_no_auroc_without_a_normal_class():
    from zoo.run import make_trainer

    trainer = make_trainer("vaesvdd", tiny_config("vaesvdd"), tiny_options())
    assert trainer.extra_metrics() == {}


def test_config_rejects_a_run_without_warm_up():
    with pytest.raises(ConfigError, match="warmup_epochs"):
        tiny_config("vaesvdd", warmup_epochs=0)
