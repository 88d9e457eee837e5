"""CVAE in NumPyro: prior (cvae.1), generation (cvae.2), recognition (cvae.3), objective (cvae.4).

Sohn, Lee & Yan, NeurIPS 2015; the twin of :mod:`zoo.cvae.pyro_model`. The training
state is ``(params, optax state, rng key)``: :meth:`Variant.update` takes one Adam
step on ``-L_CVAE + baseline loss`` (cvae.4, cvae.5) by ``jax.value_and_grad`` of
NumPyro's ``TraceMeanField_ELBO`` plus the baseline's cross-entropy, and returns the
CVAE's part. The parameters are initialised by ``SVI.init``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
from numpyro.infer import SVI, TraceMeanField_ELBO

from guides.flax_nets import BernoulliDecoder, GaussianEncoder
from zoo.config import ConfigError
from zoo.data import DataError, quadrant_mask, square_image_shape
from zoo.numpyro_backend.variant import NumPyroVariant

SHOWN_CONDITIONS = 10


def concat(*arrays):
    batch = jnp.broadcast_shapes(*(a.shape[:-1] for a in arrays))
    return jnp.concatenate([jnp.broadcast_to(a, (*batch, a.shape[-1])) for a in arrays], axis=-1)


def output_likelihood(logits) -> dist.Distribution:
    """(cvae.2) ``p(y|x,z)``: independent Bernoullis on the missing pixels."""
    return dist.Bernoulli(logits=logits, validate_args=False).to_event(1)


class Variant(NumPyroVariant):
    def __init__(self, config, x_dim, num_classes=10):
        super().__init__(config, x_dim, num_classes)
        try:
            image_shape = square_image_shape(x_dim)
        except DataError as error:
            raise ConfigError(f"cvae: {error}") from None
        given = quadrant_mask(image_shape, config.given_quadrants)
        self.given, self.missing = np.flatnonzero(given), np.flatnonzero(~given)
        self.x_size, self.y_size = len(self.given), len(self.missing)
        hidden = config.hidden
        self.baseline = BernoulliDecoder(hidden, self.y_size, config.activation)
        self.prior_net = GaussianEncoder(hidden, config.z_dim, config.activation)
        self.generation_net = BernoulliDecoder(tuple(reversed(hidden)), self.y_size, config.activation)
        self.recognition_net = GaussianEncoder(hidden, config.z_dim, config.activation)
        self.shown_conditions = None

    def split(self, image):
        return image[..., self.given], image[..., self.missing]

    def prior_input(self, baseline, x):
        if not self.config.condition_on_baseline:
            return x
        return jnp.concatenate([x, jax.lax.stop_gradient(jax.nn.sigmoid(baseline(x)))], axis=-1)

    def model(self, x, **batch):
        """(cvae.1) ``z ~ p(z|x)``; (cvae.2) ``y ~ p(y|x,z)`` on the missing pixels."""
        x, y = self.split(x)
        baseline = self.module("baseline", self.baseline, self.x_size)
        prior_inputs = self.x_size + (self.y_size if self.config.condition_on_baseline else 0)
        prior_net = self.module("prior_net", self.prior_net, prior_inputs)
        generation_net = self.module("generation_net", self.generation_net, self.x_size + self.config.z_dim)
        with numpyro.plate("data", x.shape[0], dim=-1):
            loc, scale = prior_net(self.prior_input(baseline, x))
            z = numpyro.sample("z", dist.Normal(loc, scale).to_event(1))
            numpyro.sample("y", output_likelihood(generation_net(concat(x, z))), obs=y)

    def guide(self, x, **batch):
        """(cvae.3) ``z ~ q(z|x,y)``."""
        x, y = self.split(x)
        recognition_net = self.module("recognition_net", self.recognition_net, self.x_size + self.y_size)
        with numpyro.plate("data", x.shape[0], dim=-1):
            loc, scale = recognition_net(jnp.concatenate([x, y], axis=-1))
            numpyro.sample("z", dist.Normal(loc, scale).to_event(1))

    def baseline_loss(self, params, x, **batch):
        """(cvae.5) ``-sum_b log p_base(y_b | x_b)``."""
        x, y = self.split(x)
        return -output_likelihood(self.apply(params, "baseline", self.baseline, x)).log_prob(y).sum()

    # --- training -----------------------------------------------------------------
    def objective(self):
        return TraceMeanField_ELBO()

    def configure_optimizers(self, lr: float) -> None:
        self.elbo = self.objective()
        self.optimizer = optax.adam(lr)
        self.svi = SVI(self.model, self.guide, self.optimizer, loss=self.elbo)

    def init_state(self, rng_key, batch: dict):
        init_key, run_key = jax.random.split(rng_key)
        # One compiled program: run eagerly, each operation would compile on its own.
        state = jax.jit(lambda key, arrays: self.svi.init(key, **arrays))(init_key, batch)
        params = self.svi.get_params(state)
        return params, self.optimizer.init(params), run_key

    def update(self, state, batch: dict):
        """One Adam step on ``-L_CVAE + baseline loss``; returns the CVAE's part (cvae.4)."""
        params, optimizer_state, rng_key = state
        rng_key, step_key = jax.random.split(rng_key)

        def losses(params):
            cvae = self.elbo.loss(step_key, params, self.model, self.guide, **batch)
            return cvae + self.baseline_loss(params, **batch), cvae

        (_, cvae), grads = jax.value_and_grad(losses, has_aux=True)(params)
        updates, optimizer_state = self.optimizer.update(grads, optimizer_state, params)
        return (optax.apply_updates(params, updates), optimizer_state, rng_key), cvae

    def params(self, state) -> dict:
        return state[0]

    # --- data ---------------------------------------------------------------------
    def training_data(self, dataset) -> dict:
        self.shown_conditions = dataset.x_test[:SHOWN_CONDITIONS]
        return {"x": dataset.x_train}

    # --- evaluation and pictures --------------------------------------------------
    def complete(self, image, y):
        return jnp.asarray(image).at[..., self.missing].set(y)

    def predict(self, params, image, z=None):
        x, _ = self.split(jnp.asarray(image))
        if z is None:
            baseline = lambda inputs: self.apply(params, "baseline", self.baseline, inputs)  # noqa: E731
            z = self.apply(params, "prior_net", self.prior_net, self.prior_input(baseline, x))[0]
        return jax.nn.sigmoid(self.apply(params, "generation_net", self.generation_net, concat(x, z)))

    def reconstruct(self, params, x, **batch):
        return self.complete(x, self.predict(params, x))

    def sample(self, params, rng_key, num_samples: int):
        """See the Pyro twin: given quadrants (missing grey), then completions."""
        conditions = jnp.asarray(self.shown_conditions)
        per_row = max(1, -(-num_samples // len(conditions)))
        baseline = lambda inputs: self.apply(params, "baseline", self.baseline, inputs)  # noqa: E731
        rows = []
        for i, key in enumerate(jax.random.split(rng_key, len(conditions))):
            image = conditions[i : i + 1]
            x, _ = self.split(image)
            loc, scale = self.apply(params, "prior_net", self.prior_net, self.prior_input(baseline, x))
            z = loc + scale * jax.random.normal(key, (per_row - 1, self.config.z_dim))
            completions = self.complete(jnp.broadcast_to(image, (per_row - 1, image.shape[-1])), self.predict(params, image, z))
            rows += [self.complete(image, 0.5), completions]
        return jnp.concatenate(rows)[:num_samples]

    def extra_metrics(self, params, dataset, rng_key) -> dict:
        x = jnp.asarray(dataset.x_test)
        return {
            "given_quadrants": self.config.given_quadrants,
            "missing_pixels": int(self.y_size),
            "baseline_test_nll": float(self.baseline_loss(params, x)) / len(x),
        }
