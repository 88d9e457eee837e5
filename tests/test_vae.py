"""The VAE (zoo/vae): its training loss is the negative ELBO (vae.4) with the
closed-form KL (vae.5), summed over the minibatch, in both backends; the trainers
report it per datapoint; training lowers it.

The hand computations below use numpy/scipy on the networks' outputs only, so
they check the model, the guide and the objective, not the networks.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pyro
import pytest
import torch
from conftest import flax_params, pyro_pinned, tiny_config, tiny_options
from scipy.stats import norm

from zoo import registry
from zoo.data import load_dataset
from zoo.run import make_trainer


def log_likelihood_by_hand(decoder_output, x, likelihood: str) -> np.ndarray:
    """``log p(x|z)`` per datapoint (vae.2) from the decoder's raw output."""
    if likelihood == "bernoulli":
        logits = np.asarray(decoder_output, np.float64)
        # x log sigmoid(l) + (1 - x) log sigmoid(-l) = x l - log(1 + e^l)
        return np.sum(x * logits - np.logaddexp(0.0, logits), axis=-1)
    loc, scale = (np.asarray(a, np.float64) for a in decoder_output)
    return norm.logpdf(x, loc, scale).sum(-1)


def kl_by_hand(loc, scale) -> np.ndarray:
    """(vae.5) ``KL(N(mu, diag sigma^2) || N(0, I))`` per datapoint."""
    loc, scale = np.asarray(loc, np.float64), np.asarray(scale, np.float64)
    return -0.5 * np.sum(1 + np.log(scale**2) - loc**2 - scale**2, axis=-1)


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return load_dataset("digits", binarize="dynamic", limit_test=16).x_test


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_pyro_loss_is_the_negative_elbo_with_analytic_kl(x, likelihood):
    config = tiny_config("vae", likelihood=likelihood)
    vae = registry.variant_class("vae", "pyro")(config, x.shape[1])
    z = torch.randn(len(x), config.z_dim)
    loss = vae.objective().loss(vae.model, pyro_pinned(vae.guide, z), x=torch.as_tensor(x))
    with torch.no_grad():
        loc, scale = vae.encoder(torch.as_tensor(x))
        decoded = vae.decoder(z)
        decoded = tuple(t.numpy() for t in decoded) if likelihood == "gaussian" else decoded.numpy()
    elbo = log_likelihood_by_hand(decoded, x, likelihood) - kl_by_hand(loc, scale)
    assert loss == pytest.approx(-elbo.sum(), rel=1e-5)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_numpyro_loss_is_the_negative_elbo_with_analytic_kl(x, likelihood):
    config = tiny_config("vae", likelihood=likelihood)
    vae = registry.variant_class("vae", "numpyro")(config, x.shape[1])
    params = flax_params(vae, x.shape[1])
    z = np.random.default_rng(0).normal(size=(len(x), config.z_dim)).astype(np.float32)
    loss = vae.objective().loss(jax.random.PRNGKey(1), {**params, "z": jnp.asarray(z)}, vae.model, vae.guide, x=jnp.asarray(x))
    loc, scale = vae.apply(params, "encoder", vae.encoder, jnp.asarray(x))
    decoded = vae.apply(params, "decoder", vae.decoder, jnp.asarray(z))
    elbo = log_likelihood_by_hand(decoded, x, likelihood) - kl_by_hand(loc, scale)
    assert float(loss) == pytest.approx(-elbo.sum(), rel=1e-5)


@pytest.mark.parametrize("backend", ["pyro", "numpyro"])
def test_trainer_reports_the_loss_per_datapoint(backend):
    """With a learning rate of 0 the epoch's loss is the single-sample estimate of
    -ELBO averaged over the training set: it must match -mean log w (vae.4) of the
    same network, up to Monte-Carlo error."""
    options = tiny_options(backend=backend, lr=0.0, binarize="fixed", batch_size=100)
    trainer = make_trainer("vae", tiny_config("vae"), options)
    reported = trainer.run_epoch(0)
    log_w = trainer.log_weights({"x": trainer.dataset.x_train}, 200)  # (200, N)
    assert log_w.shape == (200, len(trainer.dataset.x_train))
    expected = -log_w.mean()
    # The reported number uses one z per datapoint; its noise is that of a mean of N
    # single-sample ELBOs (the analytic KL only lowers it).
    tolerance = 5 * np.sqrt(log_w.var(axis=0).mean() / log_w.shape[1]) + 0.05
    assert abs(reported - expected) < tolerance
    assert 20 < reported < 100, "nats per 8x8 binary image, neither a sum over the batch nor per pixel"


def test_pyro_training_lowers_the_loss():
    options = tiny_options(lr=1e-2)
    trainer = make_trainer("vae", tiny_config("vae"), options)
    losses = [trainer.run_epoch(epoch) for epoch in range(4)]
    assert losses[-1] < losses[0] - 1.0


def test_pictures_are_images(x):
    """Samples and reconstructions are means of p(x|z): pixels in [0, 1], one row
    per image, the same in both backends' conventions."""
    options = tiny_options()
    trainer = make_trainer("vae", tiny_config("vae"), options)
    samples = trainer.sample(7)
    reconstructions = trainer.reconstruct({"x": x})
    assert samples.shape == (7, 64) and reconstructions.shape == x.shape
    for images in (samples, reconstructions):
        assert np.all((images >= 0) & (images <= 1))


def test_gaussian_vae_trains_on_grey_levels():
    options = tiny_options(binarize="none")
    config = dataclasses.replace(tiny_config("vae"), likelihood="gaussian")
    trainer = make_trainer("vae", config, options)
    assert np.isfinite(trainer.run_epoch(0))
    pyro.clear_param_store()
