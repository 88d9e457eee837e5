"""WSVAE: the sleep step, the LSTM decoder's likelihood, the two backends, the CLI.

- Sleep alone, on a linear-Gaussian toy (z ~ N(0, 1), x | z ~ N(z, s^2)), fits
  q(z|x) = N(a x + b, c^2) to the exact posterior a = 1/(1+s^2), b = 0,
  c^2 = s^2/(1+s^2), in both backends (wsvae.5).
- The decoder's sequence log-likelihood (the model's ``x`` site) is the sum of the
  per-step conditionals computed by stepping the LSTM by hand, and padding changes
  neither it nor the encoder (wsvae.2, wsvae.3).
- A decoder that outputs zero logits is uniform: perplexity = vocabulary size (wsvae.7).
- Pyro and NumPyro with copied weights give the same encoder, decoder logits, model
  and guide densities, soft-sleep loss (wsvae.6) and greedy decodings.
- The sleep step moves the encoder only, the soft one both groups; word dropout and KL
  annealing do what they say.
- ``vaezoo train/evaluate/--resume`` on the words set.
"""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pyro
import pyro.distributions as dist
import pytest
import torch
from numpyro import handlers
from numpyro.infer.util import log_density
from pyro import poutine

from guides import flax_rnn, torch_rnn
from zoo import registry, text
from zoo.cli import main
from zoo.config import override
from zoo.numpyro_backend.objectives import sleep_loss as numpyro_sleep_loss
from zoo.pyro_backend.objectives import sleep_loss as pyro_sleep_loss

pytestmark = pytest.mark.skipif(not text.WORDS_SYSTEM_FILE.is_file(), reason="Debian package wamerican not installed")

NOISE = 0.5  # s of the toy
SLOPE, SCALE = 1 / (1 + NOISE**2), math.sqrt(NOISE**2 / (1 + NOISE**2))  # the exact posterior
TINY = {"rnn_size": "12", "embed_dim": "6", "z_dim": "3", "eval_particles": "8"}
WORDS = ["cat", "zebra", "a", "encyclopedia"]


def tiny_variant(backend, **settings):
    config = override(registry.default_config("wsvae"), {**TINY, **settings})
    return registry.variant_class("wsvae", backend)(config, 13, 29)


def words(length=13):
    return text.encode([list(w) for w in WORDS], text.SPECIAL_TOKENS + tuple(text.WORDS_ALPHABET), length)


# --- the sleep step alone reaches the exact posterior ----------------------------------


def test_pyro_sleep_step_fits_the_exact_posterior():
    def model(x=None, num_dreams=None):
        with pyro.plate("data", num_dreams if x is None else len(x)):
            z = pyro.sample("z", dist.Normal(0.0, 1.0))
            pyro.sample("x", dist.Normal(z, NOISE), obs=x)

    weights = torch.zeros(3, requires_grad=True)  # a, b, log c

    def guide(x, **_):
        with pyro.plate("data", len(x)):
            pyro.sample("z", dist.Normal(weights[0] * x + weights[1], weights[2].exp()))

    optimizer = torch.optim.Adam([weights], lr=0.05)
    history = []
    for _ in range(500):
        optimizer.zero_grad()
        (pyro_sleep_loss(model, guide, num_dreams=1024) / 1024).backward()
        optimizer.step()
        history.append(weights.detach().clone())
    a, b, log_c = torch.stack(history[-100:]).mean(0)  # the iterates' average: less Monte-Carlo jitter
    assert a.item() == pytest.approx(SLOPE, abs=0.02)
    assert b.item() == pytest.approx(0.0, abs=0.02)
    assert log_c.exp().item() == pytest.approx(SCALE, abs=0.01)


def test_numpyro_sleep_step_fits_the_exact_posterior():
    import numpyro
    import numpyro.distributions as ndist

    def model(x=None, num_dreams=None):
        with numpyro.plate("data", num_dreams if x is None else len(x)):
            z = numpyro.sample("z", ndist.Normal(0.0, 1.0))
            numpyro.sample("x", ndist.Normal(z, NOISE), obs=x)

    def guide(x, **_):
        weights = numpyro.param("weights", jnp.zeros(3))
        with numpyro.plate("data", len(x)):
            numpyro.sample("z", ndist.Normal(weights[0] * x + weights[1], jnp.exp(weights[2])))

    optimizer = optax.adam(0.05)

    @jax.jit
    def run(params, key):
        def step(carry, key):
            params, state = carry
            grads = jax.grad(lambda p: numpyro_sleep_loss(model, guide, p, key, num_dreams=1024) / 1024)(params)
            updates, state = optimizer.update(grads, state)
            params = optax.apply_updates(params, updates)
            return (params, state), params["weights"]

        _, history = jax.lax.scan(step, (params, optimizer.init(params)), jax.random.split(key, 500))
        return history

    a, b, log_c = run({"weights": jnp.zeros(3)}, jax.random.PRNGKey(0))[-100:].mean(0)
    assert float(a) == pytest.approx(SLOPE, abs=0.02)
    assert float(b) == pytest.approx(0.0, abs=0.02)
    assert float(jnp.exp(log_c)) == pytest.approx(SCALE, abs=0.01)


# --- the LSTM decoder's likelihood -----------------------------------------------------


def model_log_likelihood(variant, x, z):
    """The model's x site log-density at a fixed z, per sequence."""
    trace = poutine.trace(poutine.condition(variant.model, data={"z": z})).get_trace(x=x)
    return trace.nodes["x"]["fn"].log_prob(x)


def test_sequence_log_likelihood_is_the_sum_of_per_step_conditionals():
    variant = tiny_variant("pyro")
    x = torch.as_tensor(words())
    z = torch.randn(len(x), 3)
    decoder = variant.decoder
    expected = torch.zeros(len(x))
    with torch.no_grad():
        for n in range(len(x)):
            h = torch.tanh(decoder.initial(z[n : n + 1])).unsqueeze(0)
            state, previous = (h, torch.zeros_like(h)), torch.tensor([text.EOS])
            for t in range(len(WORDS[n]) + 1):  # the letters and the <eos>
                step = torch.cat([decoder.embedding(previous), z[n : n + 1]], -1).unsqueeze(1)
                out, state = decoder.lstm(step, state)
                expected[n] += torch.log_softmax(decoder.output(out[0, 0]), -1)[x[n, t]]
                previous = x[n, t : t + 1]
        got = model_log_likelihood(variant, x, z)
    assert torch.allclose(got, expected, atol=1e-5)


def test_padding_changes_neither_likelihood_nor_encoding():
    variant = tiny_variant("pyro")
    short, long = torch.as_tensor(words(13)), torch.as_tensor(words(20))
    z = torch.randn(len(short), 3)
    with torch.no_grad():
        assert torch.allclose(model_log_likelihood(variant, short, z), model_log_likelihood(variant, long, z), atol=1e-5)
        for a, b in zip(variant.encoder(short), variant.encoder(long)):
            assert torch.allclose(a, b, atol=1e-6)
    # Garbage after the <eos> is padding too: masked out.
    noisy = long.clone()
    noisy[noisy == text.PAD] = 7
    with torch.no_grad():
        assert torch.allclose(model_log_likelihood(variant, noisy, z), model_log_likelihood(variant, long, z), atol=1e-5)


def test_a_uniform_decoder_has_the_vocabulary_size_as_perplexity():
    variant = tiny_variant("pyro", condition_on_z="false", eval_limit="50")
    with torch.no_grad():
        variant.decoder.output.weight.zero_()
        variant.decoder.output.bias.zero_()
    dataset = registry_words(limit_test=50)
    metrics = variant.extra_metrics(dataset, torch.device("cpu"))
    assert metrics["test_perplexity"] == pytest.approx(29.0, rel=1e-5)
    assert metrics["test_token_nll"] == pytest.approx(math.log(29), rel=1e-5)


def registry_words(**limits):
    from zoo.data import load_dataset

    return load_dataset("words", **limits)


# --- Pyro and NumPyro agree with copied weights -----------------------------------------


def test_backends_agree_with_copied_weights():
    torch_variant, jax_variant = tiny_variant("pyro"), tiny_variant("numpyro")
    params = {
        "encoder$params": flax_rnn.params_from_torch(torch_variant.encoder),
        "decoder$params": flax_rnn.params_from_torch(torch_variant.decoder),
    }
    x = words()
    z = np.random.default_rng(0).normal(size=(len(x), 3)).astype(np.float32)
    tx, tz = torch.as_tensor(x), torch.as_tensor(z)
    with torch.no_grad():
        loc, scale = torch_variant.encoder(tx)
        logits = torch_variant.decoder.logits(tz, torch_rnn.decoder_inputs(tx))
        model_trace = poutine.trace(poutine.condition(torch_variant.model, data={"z": tz})).get_trace(x=tx)
        guide_trace = poutine.trace(poutine.condition(torch_variant.guide, data={"z": tz})).get_trace(x=tx)

    @jax.jit  # one compiled function: op by op, the scans take many seconds
    def numpyro_side(params, x, z):
        densities = [
            log_density(handlers.condition(program, data={"z": z}), (), {"x": x}, params)[0]
            for program in (jax_variant.model, jax_variant.guide)
        ]
        inputs = flax_rnn.decoder_inputs(x)
        logits = jax_variant.decoder.apply({"params": params["decoder$params"]}, z, inputs)
        soft = jax_variant.soft_sleep_loss(params, z)
        return jax_variant.posterior(params, x), logits, densities, jax_variant.decode(params, z), soft

    (jloc, jscale), jlogits, densities, greedy, soft = numpyro_side(params, jnp.asarray(x), jnp.asarray(z))
    np.testing.assert_allclose(np.asarray(jloc), loc.numpy(), atol=1e-5)
    np.testing.assert_allclose(np.asarray(jscale), scale.numpy(), atol=1e-5)
    np.testing.assert_allclose(np.asarray(jlogits), logits.numpy(), atol=1e-5)
    assert float(densities[0]) == pytest.approx(model_trace.log_prob_sum().item(), abs=1e-3)
    assert float(densities[1]) == pytest.approx(guide_trace.log_prob_sum().item(), abs=1e-3)
    with torch.no_grad():
        assert float(soft) == pytest.approx(torch_variant.soft_sleep_loss(tz).item(), rel=1e-4)  # (wsvae.6)
    # Greedy decoding from the same z gives the same tokens.
    np.testing.assert_array_equal(np.asarray(greedy), torch_variant.decode(tz).numpy())


# --- the steps ------------------------------------------------------------------------


def test_sleep_step_moves_the_encoder_only():
    variant = tiny_variant("pyro")
    variant.configure_optimizers(0.01)
    before = {name: p.detach().clone() for name, p in variant.named_parameters()}
    variant.step(pyro_sleep_loss(variant.model, variant.guide, x=None, num_dreams=8), "encoder")
    moved = {name for name, p in variant.named_parameters() if not torch.equal(p, before[name])}
    assert moved and all(name.startswith("encoder.") for name in moved)


def test_soft_sleep_trains_the_decoder_too():
    """(wsvae.6) is differentiable through the soft dreams: both groups get gradients."""
    variant = tiny_variant("pyro", sleep_mode="soft")
    variant.soft_sleep_loss(torch.randn(8, 3)).backward()
    for group in (variant.decoder, variant.encoder):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in group.parameters())


@pytest.mark.slow  # compiling the dream and its gradient: 10-40 s on a shared CPU
def test_numpyro_sleep_step_moves_the_encoder_only():
    variant = tiny_variant("numpyro")
    variant.configure_optimizers(0.01)
    state = variant.init_state(jax.random.PRNGKey(0), {"x": jnp.asarray(words())})
    loss = lambda p: numpyro_sleep_loss(variant.model, variant.guide, p, jax.random.PRNGKey(1), x=None, num_dreams=8)  # noqa: E731
    new, _ = jax.jit(lambda state: variant.step(state, loss, "encoder"))(state)  # jit: op by op takes a minute
    same = jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), state.params, new.params)
    assert all(jax.tree.leaves(same["decoder$params"])) and not all(jax.tree.leaves(same["encoder$params"]))


def test_word_dropout_and_kl_annealing():
    variant = tiny_variant("pyro", word_dropout="0.3", kl_anneal_steps="4")
    x = torch.as_tensor(np.tile(words(), (200, 1)))
    inputs = variant.dropped_inputs(x)
    assert (inputs[:, 0] == text.EOS).all()
    letters = torch_rnn.decoder_inputs(x)[:, 1:] > text.UNK
    assert ((inputs[:, 1:] == text.UNK) & letters).sum().item() / letters.sum().item() == pytest.approx(0.3, abs=0.03)
    weights = []
    for _ in range(6):
        weights.append(variant.kl_weight())
        variant.num_steps += 1
    assert weights == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    jax_variant = tiny_variant("numpyro", kl_anneal_steps="4")
    assert [float(jax_variant.kl_weight(jnp.asarray(t))) for t in range(6)] == weights


# --- the command line -----------------------------------------------------------------

TRAIN = ["--dataset", "words", "--limit-train", "120", "--limit-test", "20", "--batch-size", "40", "--quiet"]
SETTINGS = [item for key, value in TINY.items() for item in ("--set", f"{key}={value}")]


@pytest.mark.parametrize("backend", ["pyro", pytest.param("numpyro", marks=pytest.mark.slow)])
def test_cli_train_evaluate_resume_on_words(backend, tmp_path):
    out = tmp_path / "run"
    args = ["train", "wsvae", "--backend", backend, "--epochs", "1", "--out", str(out), *TRAIN, *SETTINGS]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_kl"] > 0 and 1 < metrics["test_perplexity"] < 29 * 2
    assert len(metrics["samples"]) == 10 and (out / "samples.txt").read_text().count("\n") == 100
    assert " -> " in (out / "reconstructions.txt").read_text()
    assert main([*args, "--epochs", "2", "--resume"]) == 0  # the last --epochs wins
    assert [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [0, 1]
    assert main(["evaluate", str(out), "--k", "5"]) == 0
    evaluation = json.loads((out / "eval.json").read_text())
    assert evaluation["test_nll"] > 0 and evaluation["test_token_nll"] > 0
