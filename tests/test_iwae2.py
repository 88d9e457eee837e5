"""The two-layer IWAE (zoo/iwae2): its bound against a hand computation of the
hierarchical weight (iwae2.5, iwae2.6) in both backends, the bound's growth with k,
Pyro/NumPyro agreement with copied weights, and the CLI."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from conftest import tiny_args, tiny_config
from pyro import poutine
from scipy.special import logsumexp
from scipy.stats import norm

from guides.flax_nets import params_from_torch
from zoo import registry
from zoo.cli import main
from zoo.config import ConfigError
from zoo.data import load_dataset
from zoo.numpyro_backend.objectives import log_importance_weights as numpyro_log_weights
from zoo.pyro_backend.objectives import log_importance_weights as pyro_log_weights

NETWORKS = ("encoder", "encoder2", "prior1", "decoder")
TINY = {"z2_dim": 3, "hidden2": [8]}
TINY_SET = ("--set", "z2_dim=3", "--set", "hidden2=[8]")


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return load_dataset("digits", binarize="dynamic", limit_test=8).x_test


def pyro_iwae2(x_dim, **overrides):
    torch.manual_seed(0)
    return registry.variant_class("iwae2", "pyro")(tiny_config("iwae2", **{**TINY, **overrides}), x_dim)


def log_weights_by_hand(variant, x, z1, z2) -> np.ndarray:
    """log p(z2) + log p(z1|z2) + log p(x|z1) - log q(z1|x) - log q(z2|z1) with scipy (iwae2.5)."""
    with torch.no_grad():
        t1, t2 = torch.as_tensor(z1), torch.as_tensor(z2)
        q1 = [a.double().numpy() for a in variant.encoder(torch.as_tensor(x))]
        q2 = [a.double().numpy() for a in variant.encoder2(t1)]
        p1 = [a.double().numpy() for a in variant.prior1(t2)]
        logits = variant.decoder(t1).double().numpy()
    z1, z2 = np.asarray(z1, np.float64), np.asarray(z2, np.float64)
    log_p = norm.logpdf(z2).sum(-1) + norm.logpdf(z1, *p1).sum(-1) + np.sum(x * logits - np.logaddexp(0.0, logits), -1)
    log_q = norm.logpdf(z1, *q1).sum(-1) + norm.logpdf(z2, *q2).sum(-1)
    return log_p - log_q


@pytest.mark.parametrize("k", [1, 6])
def test_pyro_loss_is_the_hierarchical_bound_by_hand(x, k):
    """k=1: minus the hierarchical ELBO (iwae2.6) at the drawn (z1, z2); k=6: the per-datapoint bound."""
    variant = pyro_iwae2(x.shape[1], k=k)
    traced_guide = poutine.trace(variant.guide)
    loss = variant.objective().differentiable_loss(variant.model, traced_guide, x=torch.as_tensor(x))
    nodes = traced_guide.trace.nodes
    z1, z2 = (nodes[name]["value"].detach()[:, 0].numpy() for name in ("z1", "z2"))  # (k, B, d)
    assert z1.shape == (k, len(x), 4) and z2.shape == (k, len(x), 3)
    log_w = log_weights_by_hand(variant, x, z1, z2)
    assert loss.item() == pytest.approx(-np.sum(logsumexp(log_w, axis=0) - np.log(k)), rel=1e-5)
    # The second layer is really in the weight: dropping its two terms changes the loss.
    with torch.no_grad():
        q2 = [a.double().numpy() for a in variant.encoder2(torch.as_tensor(z1))]
    assert np.all(np.abs(norm.logpdf(z2, *q2).sum(-1)) > 1e-3)


def test_numpyro_k1_loss_is_the_hierarchical_elbo_at_pinned_latents(x):
    variant = pyro_iwae2(x.shape[1], k=1)
    twin = registry.variant_class("iwae2", "numpyro")(variant.config, x.shape[1])
    params = {f"{name}$params": params_from_torch(getattr(variant, name)) for name in NETWORKS}
    rng = np.random.default_rng(0)
    z1 = rng.normal(size=(len(x), 4)).astype(np.float32)
    z2 = rng.normal(size=(len(x), 3)).astype(np.float32)
    pinned = {**params, "z1": jnp.asarray(z1), "z2": jnp.asarray(z2)}
    # jit: one compilation instead of one dispatch per primitive.
    loss = jax.jit(lambda p: twin.objective().loss(jax.random.PRNGKey(0), p, twin.model, twin.guide, x=jnp.asarray(x)))(pinned)
    expected = -log_weights_by_hand(variant, x, z1, z2).sum()
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_bound_increases_with_k_on_average(x):
    """L_1 < L_5 < L_50 (iwae2.6): 600 log weights per datapoint split into groups of k."""
    variant = pyro_iwae2(x.shape[1])
    with torch.no_grad():
        log_w = pyro_log_weights(variant.model, variant.guide, 600, x=torch.as_tensor(x)).double().numpy()  # (600, B)
    estimates, errors = {}, {}
    for k in (1, 5, 50):
        groups = logsumexp(log_w.reshape(600 // k, k, -1), axis=1) - np.log(k)  # (600/k, B)
        per_group = groups.mean(-1)
        estimates[k], errors[k] = per_group.mean(), per_group.std(ddof=1) / np.sqrt(len(per_group))
    for small, large in ((1, 5), (5, 50)):
        gap = estimates[large] - estimates[small]
        assert gap > 3 * np.hypot(errors[small], errors[large]), (estimates, errors)


def test_backends_agree_with_copied_weights(x):
    """The same weights and the same (z1, z2) give the same log weights; samples follow the same path."""
    variant = pyro_iwae2(x.shape[1])
    twin = registry.variant_class("iwae2", "numpyro")(variant.config, x.shape[1])
    params = {f"{name}$params": params_from_torch(getattr(variant, name)) for name in NETWORKS}
    rng = np.random.default_rng(1)
    z1 = rng.normal(size=(len(x), 4)).astype(np.float32)
    z2 = rng.normal(size=(len(x), 3)).astype(np.float32)
    trace = poutine.Trace()
    for name, value in (("z1", z1), ("z2", z2)):
        trace.add_node(name, name=name, type="sample", value=torch.as_tensor(value)[None, None], is_observed=False, infer={})
    with torch.no_grad():
        pyro_log_w = pyro_log_weights(variant.model, poutine.replay(variant.guide, trace=trace), 1, x=torch.as_tensor(x))
    numpyro_log_w = numpyro_log_weights(
        twin.model, twin.guide, {**params, "z1": jnp.asarray(z1), "z2": jnp.asarray(z2)}, jax.random.PRNGKey(0), 1,
        x=jnp.asarray(x),
    )
    np.testing.assert_allclose(np.asarray(numpyro_log_w), pyro_log_w.numpy(), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(np.asarray(numpyro_log_w)[0], log_weights_by_hand(variant, x, z1, z2), rtol=1e-5, atol=1e-3)
    with torch.no_grad():
        loc, _ = variant.prior1(torch.as_tensor(z2))
    flax_loc = twin.apply(params, "prior1", twin.prior1, jnp.asarray(z2))[0]
    np.testing.assert_allclose(np.asarray(flax_loc), loc.numpy(), rtol=1e-5, atol=1e-5)


def test_bad_second_layer_is_a_config_error():
    with pytest.raises(ConfigError, match="z2_dim"):
        tiny_config("iwae2", z2_dim=0)
    with pytest.raises(ConfigError, match="hidden2"):
        tiny_config("iwae2", hidden2=[])


def run_cli(backend, tmp_path):
    out = tmp_path / "run"
    assert main(tiny_args("iwae2", backend, out, 1, *TINY_SET)) == 0
    assert main(tiny_args("iwae2", backend, out, 2, *TINY_SET, "--resume")) == 0
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and np.isfinite(metrics["test_elbo_500"])
    assert 0 <= metrics["active_units_z2"] <= 3 and 0 <= metrics["active_units_z1"] <= 4
    assert main(["evaluate", str(out), "--k", "30", "--limit", "20"]) == 0
    evaluation = json.loads((out / "eval.json").read_text())
    assert evaluation["test_log_likelihood"] >= evaluation["test_elbo"]


def test_cli_trains_resumes_and_evaluates_pyro(tmp_path):
    run_cli("pyro", tmp_path)


@pytest.mark.slow
def test_cli_trains_resumes_and_evaluates_numpyro(tmp_path):
    run_cli("numpyro", tmp_path)
