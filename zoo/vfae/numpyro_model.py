"""VFAE in NumPyro: model (vfae.1, vfae.2), guide (vfae.3), objective (vfae.4–vfae.7).

Louizos et al., The Variational Fair Autoencoder, ICLR 2016; the twin of
:mod:`zoo.vfae.pyro_model`. The MMD is a ``numpyro.factor`` outside the data plate;
groups are masks, so the jit-compiled epoch sees fixed shapes; the random-feature
version draws its features from ``numpyro.prng_key()``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from guides.flax_nets import GaussianEncoder
from zoo.data import check_likelihood, with_sensitive
from zoo.evaluate import fairness_metrics
from zoo.m2.numpyro_model import (
    LogitsNet,
    SemiSupervisedELBO,
    class_marginal_log_weights,
    concat,
    jit_init,
    labelled_arrays,
    one_hot,
    row_mask,
)
from zoo.numpyro_backend.objectives import mmd_between_groups, random_fourier_features
from zoo.numpyro_backend.variant import NumPyroVariant, make_decoder, mean_of, observation

MMD_EVALUATION_POINTS = 2000


def group_mmd(z1, s, gamma: float, num_features: int = 0, rng_key=None):
    """(vfae.7) ``MMD(z1 | s=0, z1 | s=1)``; see the Pyro twin."""
    if not num_features:
        return mmd_between_groups(z1, s, gamma)
    in_first, in_second = (s == 0).astype(z1.dtype), (s == 1).astype(z1.dtype)
    both_present = (in_first.sum() > 0) & (in_second.sum() > 0)
    features = random_fourier_features(z1, gamma, rng_key, num_features)
    difference = in_first @ features / jnp.maximum(in_first.sum(), 1) - in_second @ features / jnp.maximum(in_second.sum(), 1)
    return jnp.where(both_present, jnp.sum(difference**2), 0.0)


def column(s, like):
    return s.astype(like.dtype)[..., None]


class Variant(NumPyroVariant):
    """p(z2) p(y) p(z1|z2,y) p(x|z1,s) with q(z1|x,s) q(y|z1) q(z2|z1,y)."""

    def __init__(self, config, x_dim, num_classes=10):
        super().__init__(config, x_dim, num_classes)
        hidden, act = config.hidden, config.activation
        self.encoder_z1 = GaussianEncoder(hidden, config.z_dim, act)
        self.classifier = LogitsNet(hidden, num_classes, act)
        self.encoder_z2 = GaussianEncoder(hidden, config.z2_dim, act)
        self.prior_z1 = GaussianEncoder(hidden, config.z_dim, act)
        self.decoder = make_decoder(config, x_dim)

    def model(self, x, s, y=None, mask=None, batch_terms=True, **batch):
        """(vfae.1) ``y``, ``z2``, ``z1 | z2, y``; (vfae.2) ``x | z1, s``; the MMD factor (vfae.7)."""
        c = self.num_classes
        prior_z1 = self.module("prior_z1", self.prior_z1, self.config.z2_dim + c)
        decoder = self.module("decoder", self.decoder, self.config.z_dim + 1)
        size = x.shape[0]
        with numpyro.plate("data", size, dim=-1), row_mask(mask):
            y = numpyro.sample("y", dist.Categorical(logits=jnp.zeros((size, c))), obs=y)
            z2 = numpyro.sample("z2", dist.Normal(jnp.zeros((size, self.config.z2_dim)), 1.0).to_event(1))
            loc, scale = prior_z1(concat(z2, one_hot(y, c)))
            z1 = numpyro.sample("z1", dist.Normal(loc, scale).to_event(1))
            logits = decoder(concat(z1, column(s, z1)))
            numpyro.sample("x", observation(logits, self.config.likelihood), obs=x)
        if batch_terms and self.config.beta > 0:
            key = numpyro.prng_key() if self.config.mmd_features else None
            divergence = group_mmd(z1, s, self.config.gamma, self.config.mmd_features, key)
            numpyro.factor("mmd", -self.config.beta * size * divergence)

    def guide(self, x, s, y=None, mask=None, **batch):
        """(vfae.3) ``z1 ~ q(z1|x,s)``, ``y ~ q(y|z1)`` (enumerated when not given), ``z2 ~ q(z2|z1,y)``."""
        c = self.num_classes
        encoder_z1 = self.module("encoder_z1", self.encoder_z1, self.x_dim + 1)
        classifier = self.module("classifier", self.classifier, self.config.z_dim)
        encoder_z2 = self.module("encoder_z2", self.encoder_z2, self.config.z_dim + c)
        with numpyro.plate("data", x.shape[0], dim=-1), row_mask(mask):
            loc, scale = encoder_z1(concat(x, column(s, x)))
            z1 = numpyro.sample("z1", dist.Normal(loc, scale).to_event(1))
            if y is None:
                y = numpyro.sample("y", dist.Categorical(logits=classifier(z1)), infer={"enumerate": "parallel"})
            loc, scale = encoder_z2(concat(z1, one_hot(y, c)))
            numpyro.sample("z2", dist.Normal(loc, scale).to_event(1))

    def log_classifier(self, params, rng_key, x, label, s, **batch):
        """``log q(y=label | z1)`` per row with ``z1 ~ q(z1|x,s)`` reparameterised (vfae.6)."""
        loc, scale = self.apply(params, "encoder_z1", self.encoder_z1, concat(x, column(s, x)))
        z1 = loc + scale * jax.random.normal(rng_key, loc.shape)
        return dist.Categorical(logits=self.apply(params, "classifier", self.classifier, z1)).log_prob(label)

    def objective(self):
        return SemiSupervisedELBO(self.log_classifier, lambda: self.config.alpha)

    def init_state(self, rng_key, batch: dict):
        return jit_init(self.svi, rng_key, batch)

    # --- data ---------------------------------------------------------------
    def fair_dataset(self, dataset):
        """The dataset with its sensitive attribute (zoo.data.with_sensitive)."""
        dataset = with_sensitive(dataset, self.config.sensitive)
        check_likelihood(dataset, self.config.likelihood)
        return dataset

    def training_data(self, dataset) -> dict:
        dataset = self.fair_dataset(dataset)
        return {**labelled_arrays(dataset), "s": dataset.s_train}

    def test_data(self, dataset) -> dict:
        dataset = self.fair_dataset(dataset)
        return {"x": dataset.x_test, "s": dataset.s_test, "label": dataset.y_test}

    # --- evaluation and pictures ----------------------------------------------
    def log_weights(self, params, rng_key, num_particles: int, x, s, **batch):
        return class_marginal_log_weights(
            self.model, self.guide, params, rng_key, self.num_classes, num_particles, x, s=s
        )

    def encode(self, params, x, s, **batch):
        return self.apply(params, "encoder_z1", self.encoder_z1, concat(jnp.asarray(x), column(jnp.asarray(s), x)))[0]

    def decode(self, params, z1, s):
        return mean_of(self.apply(params, "decoder", self.decoder, concat(z1, column(s, z1))), self.config.likelihood)

    def reconstruct(self, params, x, s, **batch):
        return self.decode(params, self.encode(params, x, s), jnp.asarray(s))

    def sample(self, params, rng_key, num_samples: int):
        index = jnp.arange(num_samples)
        y, s = (index // 10) % self.num_classes, (index % 10 >= 5).astype(jnp.int32)
        z2 = jax.random.normal(rng_key, (num_samples, self.config.z2_dim))
        z1 = self.apply(params, "prior_z1", self.prior_z1, concat(z2, one_hot(y, self.num_classes)))[0]
        return self.decode(params, z1, s)

    def extra_metrics(self, params, dataset, rng_key) -> dict:
        dataset = self.fair_dataset(dataset)
        z_train = self.encode(params, dataset.x_train, dataset.s_train)
        z_test = self.encode(params, dataset.x_test, dataset.s_test)
        y_pred = jnp.argmax(self.apply(params, "classifier", self.classifier, z_test), -1)
        metrics = fairness_metrics(
            jax.device_get(z_train), dataset.s_train, dataset.y_train,
            jax.device_get(z_test), dataset.s_test, dataset.y_test, jax.device_get(y_pred),
        )
        shown = slice(0, MMD_EVALUATION_POINTS)
        metrics["z1_mmd"] = float(mmd_between_groups(z_test[shown], jnp.asarray(dataset.s_test)[shown], self.config.gamma))
        return metrics
