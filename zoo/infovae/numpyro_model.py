"""InfoVAE in NumPyro: the VAE's model (infovae.1) and guide (infovae.2), trained on
the InfoVAE objective (infovae.3) as its minibatch loss (infovae.5).

Zhao, Song & Ermon, InfoVAE: Information Maximizing Variational Autoencoders,
arXiv:1706.02262 (2017). The twin of :mod:`zoo.infovae.pyro_model`: the KL weight
``1 - alpha`` is ``numpyro.handlers.scale`` (or ``mask`` at 0) around z in model
and guide, and ``MMD(q(z) || p(z))`` a ``numpyro.factor`` outside the data plate,
with the prior draws taken from ``numpyro.prng_key()``.
"""

from functools import partial

import jax
import numpyro
import numpyro.distributions as dist
from numpyro import handlers

from zoo.evaluate import latent_knn_accuracy, mmd_metrics
from zoo.numpyro_backend.objectives import log_importance_weights, mmd
from zoo.numpyro_backend.variant import observation, standard_normal
from zoo.vae.numpyro_model import Variant as VAE


def kl_weight(weight: float):
    """(infovae.5) ``handlers.scale(weight)`` on the z site; ``scale`` refuses 0, so
    weight 0 masks the site (z still drawn, its KL exactly 0)."""
    return handlers.scale(scale=weight) if weight > 0 else handlers.mask(mask=False)


class Variant(VAE):
    def model(self, x, **batch):
        """(infovae.1) with the KL weight on z, then the MMD factor (infovae.5)."""
        decoder = self.module("decoder", self.decoder, self.config.z_dim)
        batch_size = x.shape[0]
        with numpyro.plate("data", batch_size, dim=-1):
            with kl_weight(self.config.kl_weight):
                z = numpyro.sample("z", standard_normal(batch_size, self.config.z_dim))
            numpyro.sample("x", observation(decoder(z), self.config.likelihood), obs=x)
        # Outside the plate: once per minibatch, times B (see the Pyro twin).
        divergence = mmd(z, self.prior_draws(batch_size), self.config.gamma)
        numpyro.factor("mmd", -batch_size * self.config.mmd_weight * divergence)

    def guide(self, x, **batch):
        """(infovae.2) with the same KL weight on z as the model."""
        encoder = self.module("encoder", self.encoder, self.x_dim)
        with numpyro.plate("data", x.shape[0], dim=-1):
            loc, scale = encoder(x)
            with kl_weight(self.config.kl_weight):
                numpyro.sample("z", dist.Normal(loc, scale).to_event(1))

    def prior_draws(self, num: int):
        """``z' ~ p(z)``, as many as the minibatch (infovae.4)."""
        return jax.random.normal(numpyro.prng_key(), (num, self.config.z_dim))

    def log_weights(self, params, rng_key, num_particles: int, **batch):
        """Importance weights of the unweighted joint (the VAE's model and guide)."""
        return log_importance_weights(super().model, super().guide, params, rng_key, num_particles, **batch)

    def extra_metrics(self, params, dataset, rng_key) -> dict:
        return latent_evaluation(self, params, dataset, rng_key, self.config.gamma)


def aggregate_posterior_mmd(variant, params, x, rng_key, gamma: float):
    """(infovae.4) ``MMD(q(z), p(z))``: one draw of q(z|x) per image against as many prior draws."""
    loc, scale = variant.apply(params, "encoder", variant.encoder, x)
    posterior_key, prior_key = jax.random.split(rng_key)
    z = loc + scale * jax.random.normal(posterior_key, loc.shape)
    return mmd(z, jax.random.normal(prior_key, z.shape), gamma)


def aggregate_posterior_draws(variant, params, x, rng_key):
    """One draw of q(z|x) per image and as many prior draws (see the Pyro twin)."""
    loc, scale = variant.apply(params, "encoder", variant.encoder, x)
    posterior_key, prior_key = jax.random.split(rng_key)
    z = loc + scale * jax.random.normal(posterior_key, loc.shape)
    return z, jax.random.normal(prior_key, z.shape)


def latent_evaluation(variant, params, dataset, rng_key, gamma: float, num_points: int = 1000, num_labels: int = 1000) -> dict:
    """The paper's latent-space checks (see the Pyro twin), for any variant with an ``encoder``.
    Each computation is jit-compiled once rather than compiled op by op."""
    import numpy as np

    z, prior = jax.jit(partial(aggregate_posterior_draws, variant))(params, dataset.x_test[:num_points], rng_key)
    encode_jit = jax.jit(lambda p, images: variant.apply(p, "encoder", variant.encoder, images)[0])
    return {
        **mmd_metrics(np.asarray(z, np.float64), np.asarray(prior, np.float64), gamma),
        f"knn_accuracy_{num_labels}_labels": latent_knn_accuracy(lambda images: encode_jit(params, images), dataset, num_labels),
    }
