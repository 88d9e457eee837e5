"""VAE-GAN in NumPyro: prior (vaegan.1), feature-space likelihood (vaegan.2), encoder
(vaegan.3), and the three losses (vaegan.4-6), each with its own optax optimizer;
the equilibrium rule (vaegan.7) inside the jitted epoch.

Larsen, Sønderby, Larochelle & Winther, Autoencoding beyond pixels using a learned
similarity metric, ICML 2016. The twin of :mod:`zoo.vaegan.pyro_model`.

The three losses are functions of the whole parameter dict; each step differentiates
one of them with respect to its own group, and all three read the parameters the
batch started with (as the Pyro twin's single forward pass does). The
discriminator's parameters enter the encoder's and decoder's losses through
``stop_gradient``; a skipped step is ``jnp.where(update, new, old)`` on the group's
parameters and optimizer state.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro import handlers
from numpyro.contrib.module import flax_module
from numpyro.infer import TraceMeanField_ELBO

from guides.flax_conv import ConvDecoder, ConvEncoder, ConvNet
from zoo.numpyro_backend.objectives import (
    discriminator_cross_entropies,
    discriminator_loss,
    equilibrium_updates,
    generator_gan_loss,
    log_importance_weights,
)
from zoo.numpyro_backend.variant import NumPyroVariant, standard_normal
from zoo.vaegan.config import discriminator_weights
from zoo.vaegan.config import GROUPS, image_shape_of


def pixel_likelihood(x_tilde, config) -> dist.Distribution:
    """(vaegan.8) grey-level Bernoulli or fixed-scale Gaussian around ``Dec(z)``."""
    if config.likelihood == "bernoulli":
        return dist.Bernoulli(probs=jnp.clip(x_tilde, 1e-6, 1 - 1e-6), validate_args=False).to_event(1)
    return dist.Normal(x_tilde, config.pixel_scale).to_event(1)


def frozen_module(name: str, net, input_dim: int):
    """A Flax network registered as ``name$params`` and applied with its parameters
    behind ``stop_gradient``: gradients reach its inputs, never its weights."""
    params = flax_module(name, net, input_shape=(1, input_dim)).args[0]
    return lambda *inputs: net.apply({"params": jax.lax.stop_gradient(params)}, *inputs)


def keep_where(flag, new, old):
    """``new`` where ``flag`` else ``old``, leaf by leaf (a skipped update)."""
    return jax.tree.map(lambda a, b: jnp.where(flag, a, b), new, old)


class Variant(NumPyroVariant):
    def __init__(self, config, x_dim, num_classes=10):
        super().__init__(config, x_dim, num_classes)
        self.image_shape = image_shape_of(x_dim, "vaegan")
        channels, hidden = tuple(config.channels), tuple(config.hidden)
        self.encoder = ConvEncoder(self.image_shape, channels, hidden, config.z_dim)
        self.decoder = ConvDecoder(self.image_shape, channels, tuple(reversed(hidden)))
        self.discriminator = ConvNet(self.image_shape, channels, hidden, 1)

    # --- the math: model (vaegan.1, vaegan.2) and guide (vaegan.3) ------------------
    def model(self, x, **batch):
        decoder = self.module("decoder", self.decoder, self.config.z_dim)
        with numpyro.plate("data", x.shape[0], dim=-1):
            z = numpyro.sample("z", standard_normal(x.shape[0], self.config.z_dim))
            x_tilde = decoder(z)
            if self.config.similarity == "pixel":
                numpyro.sample("x", pixel_likelihood(x_tilde, self.config), obs=x)
            else:
                discriminator = frozen_module("discriminator", self.discriminator, self.x_dim)
                features = discriminator(x_tilde)[1]
                numpyro.sample("feat", dist.Normal(features, self.config.feature_scale).to_event(1), obs=discriminator(x)[1])

    def guide(self, x, **batch):
        encoder = self.module("encoder", self.encoder, self.x_dim)
        with numpyro.plate("data", x.shape[0], dim=-1):
            loc, scale = encoder(x)
            numpyro.sample("z", dist.Normal(loc, scale).to_event(1))

    def pixel_model(self, x, **batch):
        """(vaegan.1, vaegan.8): the model of the reported ELBO and log-likelihood."""
        decoder = self.module("decoder", self.decoder, self.config.z_dim)
        with numpyro.plate("data", x.shape[0], dim=-1):
            z = numpyro.sample("z", standard_normal(x.shape[0], self.config.z_dim))
            numpyro.sample("x", pixel_likelihood(decoder(z), self.config), obs=x)

    # --- the three losses (vaegan.4-6), summed over the batch ---------------------
    def posterior_sample(self, params, x, eps):
        loc, scale = self.apply(params, "encoder", self.encoder, x)
        return loc + scale * eps

    def encoder_loss(self, params, x, eps):
        """(vaegan.4) the -ELBO of the model at ``z = mu + sigma * eps`` (analytic KL)."""
        z = self.posterior_sample(params, x, eps)
        guide = handlers.substitute(self.guide, data={"z": z})
        # The ELBO's own key draws nothing: z is pinned.
        return TraceMeanField_ELBO().loss(jax.random.PRNGKey(0), params, self.model, guide, x=x)

    def fakes(self, params, x, eps, eps_prior):
        """Reconstructions ``Dec(z)`` (z without gradient to E) and prior samples ``Dec(z_p)``."""
        z = jax.lax.stop_gradient(self.posterior_sample(params, x, eps))
        fakes = [self.apply(params, "decoder", self.decoder, z)]
        if self.config.prior_fakes:
            fakes.append(self.apply(params, "decoder", self.decoder, eps_prior))
        return jnp.concatenate(fakes)

    def decoder_loss(self, params, x, eps, eps_prior):
        """(vaegan.5) gamma * per-element feature error + (1 - gamma) * GAN term; D frozen."""
        config = self.config
        frozen = jax.lax.stop_gradient(params["discriminator$params"])
        fakes = self.fakes(params, x, eps, eps_prior)
        fake_logits, fake_features, _ = self.discriminator.apply({"params": frozen}, fakes)
        real_features = self.discriminator.apply({"params": frozen}, x)[1]
        error = 0.5 * jnp.mean((real_features - fake_features[: len(x)]) ** 2, -1) / config.feature_scale**2
        gan = generator_gan_loss(fake_logits, config.saturating).reshape(-1, len(x)).sum(0)
        return jnp.sum(config.gamma * error + (1.0 - config.gamma) * gan)

    def discriminator_loss(self, params, x, eps, eps_prior):
        """(vaegan.6) D on real images and detached fakes; aux: D's mean cross-entropies."""
        fakes = jax.lax.stop_gradient(self.fakes(params, x, eps, eps_prior))
        real_logits = self.apply(params, "discriminator", self.discriminator, x)[0]
        fake_logits = self.apply(params, "discriminator", self.discriminator, fakes)[0]
        loss = discriminator_loss(real_logits, jnp.split(fake_logits, len(fakes) // len(x)), discriminator_weights(self.config))
        ce_real, ce_fake = discriminator_cross_entropies(real_logits, fake_logits)
        return jnp.sum(loss), (ce_real.mean(), ce_fake.mean())

    # --- training: three optimizers over disjoint parameter sets ----------------------
    def parameter_groups(self):
        return GROUPS

    def init_state(self, rng_key, batch):
        keys = jax.random.split(rng_key, 4)
        x = jnp.zeros((1, self.x_dim))
        params = {
            "encoder$params": self.encoder.init(keys[0], x)["params"],
            "decoder$params": self.decoder.init(keys[1], jnp.zeros((1, self.config.z_dim)))["params"],
            "discriminator$params": self.discriminator.init(keys[2], x)["params"],
        }
        return self.grouped_state(params, keys[3])

    def update(self, state, batch):
        """E, Dec and D on one batch; returns E's loss (vaegan.4), summed over the batch."""
        x = batch["x"]
        rng_key, eps_key, prior_key = jax.random.split(state.rng_key, 3)
        eps = jax.random.normal(eps_key, (x.shape[0], self.config.z_dim))
        eps_prior = jax.random.normal(prior_key, eps.shape)
        state = state._replace(rng_key=rng_key)
        start = state.params  # every loss reads the parameters the batch started with

        def own(group, loss_fn):
            return lambda p: loss_fn({**start, f"{group}$params": p[f"{group}$params"]})

        if self.config.similarity == "pixel":
            return self.step(state, lambda p: self.encoder_loss(p, x, eps), "encoder", "decoder")
        stepped, (_, (ce_real, ce_fake)) = self.step(
            state, own("discriminator", lambda p: self.discriminator_loss(p, x, eps, eps_prior)), "discriminator", has_aux=True
        )
        update_dis, update_dec = equilibrium_updates(ce_real, ce_fake, self.config.margin)
        state = keep_where(update_dis, stepped, state)
        stepped, _ = self.step(state, own("decoder", lambda p: self.decoder_loss(p, x, eps, eps_prior)), "decoder")
        state = keep_where(update_dec, stepped, state)
        return self.step(state, own("encoder", lambda p: self.encoder_loss(p, x, eps)), "encoder")

    # --- evaluation -------------------------------------------------------------------
    def log_weights(self, params, rng_key, num_particles: int, **batch):
        """Importance weights of the pixel model (vaegan.8), whatever the training similarity."""
        return log_importance_weights(self.pixel_model, self.guide, params, rng_key, num_particles, **batch)

    def decode(self, params, z):
        return self.apply(params, "decoder", self.decoder, z)

    def extra_metrics(self, params, dataset, rng_key) -> dict:
        from zoo import fd

        x = fd.evaluation_images(dataset)
        reconstruct = jax.jit(lambda p, xb: self.reconstruct(p, x=xb))
        reconstructions = np.concatenate([np.asarray(reconstruct(params, x[i : i + 500])) for i in range(0, len(x), 500)])
        samples = np.asarray(jax.jit(self.sample, static_argnums=2)(params, rng_key, len(x)))
        return fd.sample_quality(dataset, x, samples, reconstructions, "numpyro")
