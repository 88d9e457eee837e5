"""CVAE-GAN in NumPyro: the twin of :mod:`zoo.cvaegan.pyro_model` (cvaegan.1-8).

Bao, Chen, Wen, Li & Hua, CVAE-GAN: Fine-Grained Image Generation through Asymmetric
Training, ICCV 2017.

The same sites with ``numpyro.handlers.scale`` and ``numpyro.factor``; the
discriminator's and classifier's parameters enter the encoder's and generator's loss
behind ``stop_gradient``. The running feature means live in the training state's
parameter dict under ``"feature_means"`` (no optimizer owns them; the model reads
them with ``numpyro.param``), so checkpoints carry them and the epoch stays pure.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro import handlers
from numpyro.infer import TraceMeanField_ELBO

from guides.flax_conv import ConvDecoder, ConvEncoder, ConvNet
from zoo.cvaegan.config import GROUPS, SAMPLES_PER_CLASS
from zoo.numpyro_backend.objectives import (
    class_mean_matching,
    class_means,
    discriminator_loss,
    log_importance_weights,
    mean_feature_matching,
    pairwise_feature_matching,
)
from zoo.numpyro_backend.variant import NumPyroVariant, standard_normal
from zoo.vaegan.numpyro_model import frozen_module
from zoo.vaegan.config import image_shape_of

MEANS = "feature_means"


def running_mean(old, new, seen, momentum: float):
    """``momentum * old + (1 - momentum) * new`` where ``seen``, else ``new``."""
    return jnp.where(seen, momentum * old + (1.0 - momentum) * new, new)


class Variant(NumPyroVariant):
    def __init__(self, config, x_dim, num_classes=10):
        super().__init__(config, x_dim, num_classes)
        self.image_shape = image_shape_of(x_dim, "cvaegan")
        channels, hidden = tuple(config.channels), tuple(config.hidden)
        self.encoder = ConvEncoder(self.image_shape, channels, hidden, config.z_dim)
        self.generator = ConvDecoder(self.image_shape, channels, tuple(reversed(hidden)))
        self.discriminator = ConvNet(self.image_shape, channels, hidden, 1)
        self.classifier = ConvNet(self.image_shape, channels, hidden, num_classes)
        side = self.image_shape[0]
        for _ in channels:
            side = (side - 1) // 2 + 1
        self.d_size, self.c_size = channels[-1] * side * side, hidden[-1]

    # --- data ---------------------------------------------------------------------
    def training_data(self, dataset) -> dict:
        return {"x": dataset.x_train, "y": dataset.y_train}

    def test_data(self, dataset) -> dict:
        return {"x": dataset.x_test, "y": dataset.y_test}

    def one_hot(self, y):
        return jax.nn.one_hot(y, self.num_classes)

    def initial_means(self) -> dict:
        return {
            "d_mean": jnp.zeros(self.d_size),
            "d_seen": jnp.zeros((), bool),
            "c_means": jnp.zeros((self.num_classes, self.c_size)),
            "c_seen": jnp.zeros(self.num_classes, bool),
        }

    # --- the math ---------------------------------------------------------------------
    def module(self, name, net, input_dim):
        """Conditional networks are initialised with their one-hot input as well."""
        from numpyro.contrib.module import flax_module

        if name in ("encoder", "generator"):
            return flax_module(name, net, input_shape=(1, input_dim), c=jnp.zeros((1, self.num_classes)))
        return flax_module(name, net, input_shape=(1, input_dim))

    def conditional_vae(self, x, y, data=None, **batch):
        """(cvaegan.1, cvaegan.2) with the weights lambda_1, lambda_2 as ``handlers.scale``."""
        generator = self.module("generator", self.generator, self.config.z_dim)
        c = self.one_hot(y)
        with data or numpyro.plate("data", x.shape[0], dim=-1):
            with handlers.scale(scale=self.config.lambda_kl):
                z = numpyro.sample("z", standard_normal(x.shape[0], self.config.z_dim))
            x_rec = generator(z, jnp.broadcast_to(c, (*z.shape[:-1], c.shape[-1])))
            with handlers.scale(scale=self.config.lambda_g):
                numpyro.sample("x", dist.Normal(x_rec, self.config.pixel_scale).to_event(1), obs=x)
        return x_rec

    def model(self, x, y, eps_prior=None, **batch):
        data = numpyro.plate("data", x.shape[0], dim=-1)  # one plate, entered twice
        x_rec = self.conditional_vae(x, y, data)
        if not self.config.adversarial:
            return
        config = self.config
        discriminator = frozen_module("discriminator", self.discriminator, self.x_dim)
        classifier = frozen_module("classifier", self.classifier, self.x_dim)
        pairwise = pairwise_feature_matching(discriminator(x)[1], discriminator(x_rec)[1])
        pairwise = pairwise + pairwise_feature_matching(classifier(x)[2], classifier(x_rec)[2])
        with data:
            numpyro.factor("pairwise", -config.lambda_g * pairwise)
        if eps_prior is None:
            eps_prior = jax.random.normal(numpyro.prng_key(), (x.shape[0], config.z_dim))
        means = numpyro.param(MEANS, self.initial_means())
        generator = self.module("generator", self.generator, config.z_dim)
        x_prior = generator(eps_prior, self.one_hot(y))
        l_gd = mean_feature_matching(means["d_mean"], discriminator(x_prior)[1])
        l_gc = class_mean_matching(means["c_means"], classifier(x_prior)[2], y, self.num_classes)
        numpyro.factor("mean_matching", -x.shape[0] * (config.lambda_gd * l_gd + config.lambda_gc * l_gc))

    def guide(self, x, y, **batch):
        encoder = self.module("encoder", self.encoder, self.x_dim)
        with numpyro.plate("data", x.shape[0], dim=-1):
            loc, scale = encoder(x, self.one_hot(y))
            with handlers.scale(scale=self.config.lambda_kl):
                numpyro.sample("z", dist.Normal(loc, scale).to_event(1))

    # --- the losses -------------------------------------------------------------------
    def updated_means(self, params, x, y) -> dict:
        """The running means with this batch's real features blended in."""
        momentum, old = self.config.feature_momentum, params[MEANS]
        d_features = self.apply(params, "discriminator", self.discriminator, x)[1]
        means, counts = class_means(self.apply(params, "classifier", self.classifier, x)[2], y, self.num_classes)
        present = counts > 0
        c_means = jnp.where(present[:, None], running_mean(old["c_means"], means, old["c_seen"][:, None], momentum), old["c_means"])
        return jax.lax.stop_gradient({
            "d_mean": running_mean(old["d_mean"], d_features.mean(0), old["d_seen"], momentum),
            "d_seen": jnp.ones((), bool),
            "c_means": c_means,
            "c_seen": old["c_seen"] | present,
        })

    def encoder_generator_loss(self, params, x, y, eps, eps_prior):
        """(cvaegan.4-6) the -ELBO of the model at ``z = mu + sigma * eps``."""
        loc, scale = self.apply(params, "encoder", self.encoder, x, self.one_hot(y))
        guide = handlers.substitute(self.guide, data={"z": loc + scale * eps})
        return TraceMeanField_ELBO().loss(jax.random.PRNGKey(0), params, self.model, guide, x=x, y=y, eps_prior=eps_prior)

    def discriminator_loss(self, params, x, y, eps, eps_prior):
        """(cvaegan.7) cross-entropies of real images, reconstructions and prior samples."""
        c = self.one_hot(y)
        loc, scale = self.apply(params, "encoder", self.encoder, x, c)
        fakes = [self.apply(params, "generator", self.generator, eps_prior, c)]
        if self.config.recon_as_fake:
            fakes.insert(0, self.apply(params, "generator", self.generator, loc + scale * eps, c))
        fakes = jax.lax.stop_gradient(jnp.concatenate(fakes))
        real_logits = self.apply(params, "discriminator", self.discriminator, x)[0]
        fake_logits = jnp.split(self.apply(params, "discriminator", self.discriminator, fakes)[0], len(fakes) // len(x))
        return jnp.sum(discriminator_loss(real_logits, fake_logits, (1.0,) * (1 + len(fake_logits))))

    def classifier_loss(self, params, x, y):
        """(cvaegan.8) the classifier's cross-entropy on real images."""
        logits = self.apply(params, "classifier", self.classifier, x)[0]
        return -jnp.sum(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None].astype(jnp.int32), -1))

    def parameter_groups(self):
        return GROUPS

    def init_state(self, rng_key, batch):
        keys = jax.random.split(rng_key, 5)
        x, c = jnp.zeros((1, self.x_dim)), jnp.zeros((1, self.num_classes))
        params = {
            "encoder$params": self.encoder.init(keys[0], x, c)["params"],
            "generator$params": self.generator.init(keys[1], jnp.zeros((1, self.config.z_dim)), c)["params"],
            "discriminator$params": self.discriminator.init(keys[2], x)["params"],
            "classifier$params": self.classifier.init(keys[3], x)["params"],
            MEANS: self.initial_means(),
        }
        return self.grouped_state(params, keys[4])

    def update(self, state, batch):
        """Running means, then E+G, C and D on one batch; returns E+G's loss."""
        x, y = batch["x"], batch["y"]
        rng_key, eps_key, prior_key = jax.random.split(state.rng_key, 3)
        eps = jax.random.normal(eps_key, (x.shape[0], self.config.z_dim))
        eps_prior = jax.random.normal(prior_key, eps.shape)
        params = dict(state.params)
        if self.config.adversarial:
            params[MEANS] = self.updated_means(params, x, y)
        state = state._replace(params=params, rng_key=rng_key)
        start = params

        def own(groups, loss_fn):
            return lambda p: loss_fn({**start, **{f"{g}$params": p[f"{g}$params"] for g in groups}})

        state, loss = self.step(
            state, own(("encoder", "generator"), lambda p: self.encoder_generator_loss(p, x, y, eps, eps_prior)),
            "encoder", "generator",
        )
        if self.config.adversarial:
            state, _ = self.step(state, own(("classifier",), lambda p: self.classifier_loss(p, x, y)), "classifier")
            state, _ = self.step(
                state, own(("discriminator",), lambda p: self.discriminator_loss(p, x, y, eps, eps_prior)), "discriminator"
            )
        return state, loss

    # --- evaluation and pictures ---------------------------------------------------------
    def log_weights(self, params, rng_key, num_particles: int, **batch):
        """Importance weights of the conditional VAE part (unscaled): a bound on log p(x|c)."""
        return log_importance_weights(self.conditional_vae, self.guide, params, rng_key, num_particles, **batch)

    def encode(self, params, x, y, **batch):
        return self.apply(params, "encoder", self.encoder, x, self.one_hot(y))[0]

    def reconstruct(self, params, x, y, **batch):
        return self.apply(params, "generator", self.generator, self.encode(params, x, y), self.one_hot(y))

    def generate(self, params, rng_key, labels):
        z = jax.random.normal(rng_key, (len(labels), self.config.z_dim))
        return self.apply(params, "generator", self.generator, z, self.one_hot(jnp.asarray(labels)))

    def sample(self, params, rng_key, num_samples: int):
        """A class-conditional grid: row r of ten columns shows class r."""
        return self.generate(params, rng_key, np.arange(num_samples) // 10 % self.num_classes)

    def extra_metrics(self, params, dataset, rng_key) -> dict:
        from zoo import fd

        x = fd.evaluation_images(dataset)
        y = np.asarray(dataset.y_test[: len(x)])
        reconstruct = jax.jit(lambda p, a, b: self.reconstruct(p, a, b))
        reconstructions = np.concatenate([np.asarray(reconstruct(params, x[i : i + 500], y[i : i + 500])) for i in range(0, len(x), 500)])
        labels = np.repeat(np.arange(self.num_classes), SAMPLES_PER_CLASS)
        samples = np.asarray(jax.jit(self.generate)(params, rng_key, labels))
        quality = fd.sample_quality(dataset, x, samples, reconstructions, "numpyro")
        return {**quality, **fd.class_fidelity(dataset, samples, labels, "numpyro")}
