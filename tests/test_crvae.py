"""CRVAE (zoo/crvae): T=1 without recurrence is the VAE, the step KLs sum to the total
KL and the step weights scale them (crvae.4), the encoder's recurrence is causal over
channel blocks, the MI term (crvae.5), Pyro/NumPyro agreement with copied weights,
and the CLI."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from conftest import pyro_pinned, tiny_args, tiny_config
from pyro import poutine
from pyro.infer import TraceMeanField_ELBO

from guides.flax_channel_recurrent import channel_recurrent_params_from_torch
from guides.flax_nets import params_from_torch
from zoo import registry
from zoo.cli import main
from zoo.config import ConfigError
from zoo.data import load_dataset
from zoo.numpyro_backend.objectives import code_regression_loss as numpyro_code_loss
from zoo.pyro_backend.objectives import code_regression_loss

Z_DIM = 4  # tiny_config's z_dim; hidden is [16]


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return load_dataset("digits", binarize="dynamic", limit_test=10).x_test


def pyro_crvae(x_dim, **overrides):
    torch.manual_seed(0)
    return registry.variant_class("crvae", "pyro")(tiny_config("crvae", **{"lstm_hidden": 6, **overrides}), x_dim)


def pinned_blocks(guide, z: np.ndarray, steps: int):
    """``guide`` with sites z_1..z_T replayed from the blocks of ``z``."""
    trace = poutine.Trace()
    for t, block in enumerate(np.split(z, steps, axis=-1), start=1):
        trace.add_node(f"z_{t}", name=f"z_{t}", type="sample", value=torch.as_tensor(block), is_observed=False, infer={})
    return poutine.replay(guide, trace=trace)


def bernoulli_nll(x, logits) -> np.ndarray:
    logits = np.asarray(logits, np.float64)
    return -np.sum(x * logits - np.logaddexp(0.0, logits), -1)


def normal_kl(loc, scale) -> np.ndarray:
    """KL(N(loc, scale^2) || N(0, 1)) elementwise."""
    loc, scale = np.asarray(loc, np.float64), np.asarray(scale, np.float64)
    return -np.log(scale) + (scale**2 + loc**2) / 2 - 0.5


def test_one_step_without_recurrence_is_the_vae_objective(x):
    """T=1, recurrent=false with the VAE's weights: the same networks, the same loss at the same z."""
    torch.manual_seed(1)
    vae = registry.variant_class("vae", "pyro")(tiny_config("vae"), x.shape[1])
    crvae = pyro_crvae(x.shape[1], steps=1, recurrent=False)
    with torch.no_grad():
        first, last = vae.encoder.net[0], vae.encoder.net[-1]
        crvae.encoder.body[0].load_state_dict(first.state_dict())
        crvae.encoder.loc.weight.copy_(last.weight[:Z_DIM]), crvae.encoder.loc.bias.copy_(last.bias[:Z_DIM])
        crvae.encoder.scale.weight.copy_(last.weight[Z_DIM:]), crvae.encoder.scale.bias.copy_(last.bias[Z_DIM:])
        crvae.decoder.net.load_state_dict(vae.decoder.net.state_dict())
    z = np.random.default_rng(0).normal(size=(len(x), Z_DIM)).astype(np.float32)
    xt = torch.as_tensor(x)
    vae_loss = TraceMeanField_ELBO().loss(vae.model, pyro_pinned(vae.guide, torch.as_tensor(z)), x=xt)
    crvae_loss = crvae.objective().loss(crvae.model, pinned_blocks(crvae.guide, z, 1), x=xt)
    assert crvae_loss == pytest.approx(vae_loss, rel=1e-6)
    # And the control: the recurrent CRVAE with those weights is another model.
    assert abs(pyro_crvae(x.shape[1], steps=1).objective().loss(
        pyro_crvae(x.shape[1], steps=1).model, pinned_blocks(crvae.guide, z, 1), x=xt) - vae_loss) > 1e-3


def test_step_kls_sum_to_the_total_kl_and_the_step_weights_scale_them(x):
    weights = [0.5, 2.0, 1.0, 0.1]
    variant = pyro_crvae(x.shape[1], kl_weights=weights)
    z = np.random.default_rng(2).normal(size=(len(x), Z_DIM)).astype(np.float32)
    xt = torch.as_tensor(x)
    with torch.no_grad():
        loc, scale = variant.encoder(xt)
        logits = variant.decoder(torch.as_tensor(z))
        step_kls = variant.step_kls(xt).double().numpy()  # (B, T)
    kl = normal_kl(loc, scale)  # (B, d): one block of 1 dimension per step
    np.testing.assert_allclose(step_kls.sum(-1), kl.sum(-1), rtol=1e-5)
    loss = variant.objective().loss(variant.model, pinned_blocks(variant.guide, z, 4), x=xt)
    expected = np.sum(bernoulli_nll(x, logits) + (step_kls * np.asarray(weights)).sum(-1))
    assert loss == pytest.approx(expected, rel=1e-5)
    unweighted = pyro_crvae(x.shape[1])
    loss_1 = unweighted.objective().loss(unweighted.model, pinned_blocks(unweighted.guide, z, 4), x=xt)
    assert loss_1 == pytest.approx(np.sum(bernoulli_nll(x, logits) + kl.sum(-1)), rel=1e-5)


def test_the_scale_of_step_t_sees_channel_blocks_up_to_t_only(x):
    """Causality of the encoder LSTM: perturbing block u_3 leaves sigma_1, sigma_2 unchanged."""
    variant = pyro_crvae(x.shape[1], steps=4, z_dim=8)
    with torch.no_grad():
        h = variant.encoder.features(torch.as_tensor(x))
        before = variant.encoder.scales(h)
        h2 = h.clone()
        h2[:, 8:12] += 1.0  # u_3 of four blocks of 4 features
        after = variant.encoder.scales(h2)
    torch.testing.assert_close(after[:, :4], before[:, :4])  # sigma_1, sigma_2 (2 dimensions each)
    assert torch.all((after[:, 4:] - before[:, 4:]).abs().amax(-1) > 1e-6)


def test_code_regression_loss_by_hand():
    rng = np.random.default_rng(3)
    predicted, target = rng.normal(size=(2, 5, 6)).astype(np.float32)
    weights = (0.1, 1.5, 1.0)
    expected = sum(w * np.square(predicted[:, 2 * t : 2 * t + 2] - target[:, 2 * t : 2 * t + 2]).sum() for t, w in enumerate(weights))
    assert code_regression_loss(torch.as_tensor(predicted), torch.as_tensor(target), weights).item() == pytest.approx(expected, rel=1e-5)
    assert float(numpyro_code_loss(jnp.asarray(predicted), jnp.asarray(target), weights)) == pytest.approx(expected, rel=1e-5)


def test_mi_term_trains_decoder_and_head_and_enters_the_objective_with_its_weight(x):
    variant = pyro_crvae(x.shape[1], mi_weight=0.3, mi_hidden=8)
    xt = torch.as_tensor(x)
    eps_q, eps_p = torch.randn(len(x), Z_DIM), torch.randn(len(x), Z_DIM)
    variant.mi_loss(xt, eps_q, eps_p).backward()
    assert all(p.grad is None for p in variant.encoder.parameters())
    for net in (variant.decoder.net, variant.decoder.rnn, variant.mi_head):
        assert any(p.grad is not None and torch.any(p.grad != 0) for p in net.parameters())
    z = np.random.default_rng(4).normal(size=(len(x), Z_DIM)).astype(np.float32)
    with_mi = variant.objective()
    with_mi.regulariser = lambda data: torch.tensor(7.0)  # a constant stands for the term
    plain = TraceMeanField_ELBO().loss(variant.model, pinned_blocks(variant.guide, z, 4), x=xt)
    assert with_mi.loss(variant.model, pinned_blocks(variant.guide, z, 4), x=xt) == pytest.approx(plain + 0.3 * 7.0, rel=1e-6)


def test_backends_agree_with_copied_weights(x):
    variant = pyro_crvae(x.shape[1], kl_weights=[1.0, 0.5, 2.0, 1.0], mi_weight=0.2, mi_hidden=8, mi_step_weights=[0.1, 1.5, 1.5, 1.0])
    twin = registry.variant_class("crvae", "numpyro")(variant.config, x.shape[1])
    params = {
        "encoder$params": channel_recurrent_params_from_torch(variant.encoder),
        "decoder$params": channel_recurrent_params_from_torch(variant.decoder),
        "mi_head$params": params_from_torch(_Holder(variant.mi_head))["net"],
    }
    rng = np.random.default_rng(5)
    z = rng.normal(size=(len(x), Z_DIM)).astype(np.float32)
    eps_q, eps_p = (rng.normal(size=(len(x), Z_DIM)).astype(np.float32) for _ in range(2))
    xt, xj = torch.as_tensor(x), jnp.asarray(x)
    with torch.no_grad():
        loc, scale = variant.encoder(xt)
        pyro_elbo = TraceMeanField_ELBO().loss(variant.model, pinned_blocks(variant.guide, z, 4), x=xt)
        pyro_mi = variant.mi_loss(xt, torch.as_tensor(eps_q), torch.as_tensor(eps_p)).item()
    flax_loc, flax_scale = twin.apply(params, "encoder", twin.encoder, xj)
    np.testing.assert_allclose(np.asarray(flax_loc), loc.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(flax_scale), scale.numpy(), rtol=1e-5, atol=1e-5)
    pinned = {**params, **{f"z_{t}": jnp.asarray(b) for t, b in enumerate(np.split(z, 4, axis=-1), start=1)}}
    from numpyro.infer import TraceMeanField_ELBO as NumPyroELBO

    numpyro_elbo = jax.jit(lambda p: NumPyroELBO().loss(jax.random.PRNGKey(0), p, twin.model, twin.guide, x=xj))(pinned)
    assert float(numpyro_elbo) == pytest.approx(pyro_elbo, rel=1e-5)
    numpyro_mi = jax.jit(lambda p: twin.mi_loss(p, xj, jnp.asarray(eps_q), jnp.asarray(eps_p)))(params)
    assert float(numpyro_mi) == pytest.approx(pyro_mi, rel=1e-4)


class _Holder(torch.nn.Module):
    """Wraps an MLP as the ``net`` attribute that ``params_from_torch`` reads."""

    def __init__(self, net):
        super().__init__()
        self.net = net


def test_bad_settings_are_config_errors():
    cases = (({"steps": 3}, "split"), ({"kl_weights": [1.0, 2.0]}, "kl_weights"),
             ({"mi_weight": 0.1, "recurrent": False}, "recurrent"), ({"likelihood": "gaussian"}, "bernoulli"))
    for settings, message in cases:
        with pytest.raises(ConfigError, match=message):
            tiny_config("crvae", **settings)


def run_cli(backend, tmp_path, *extra):
    out = tmp_path / "run"
    assert main(tiny_args("crvae", backend, out, 1, "--set", "lstm_hidden=6", *extra)) == 0
    assert main(tiny_args("crvae", backend, out, 2, "--set", "lstm_hidden=6", *extra, "--resume")) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 2
    steps = [metrics[f"kl_step_{t}"] for t in range(1, 5)]
    assert all(v >= 0 for v in steps) and sum(steps) == pytest.approx(metrics["kl_total"])
    assert main(["evaluate", str(out), "--k", "30", "--limit", "20"]) == 0
    evaluation = json.loads((out / "eval.json").read_text())
    assert evaluation["test_log_likelihood"] >= evaluation["test_elbo"]


def test_cli_trains_resumes_and_evaluates_pyro_with_the_mi_term(tmp_path):
    run_cli("pyro", tmp_path, "--set", "mi_weight=0.1", "--set", "mi_hidden=8")


@pytest.mark.slow
def test_cli_trains_resumes_and_evaluates_numpyro(tmp_path):
    run_cli("numpyro", tmp_path, "--set", "mi_weight=0.1", "--set", "mi_hidden=8")
