"""M2 in NumPyro: model (m2.1, m2.2), guide (m2.3), semi-supervised objective (m2.4–m2.6).

Kingma, Rezende, Mohamed & Welling, Semi-Supervised Learning with Deep Generative
Models, NeurIPS 2014. The twin of :mod:`zoo.m2.pyro_model`: the guide's ``y`` carries
``infer={"enumerate": "parallel"}`` and NumPyro's ``TraceEnum_ELBO`` (funsor) sums it
out; labelled and unlabelled rows of a minibatch are two masked runs of the same
program over the whole batch, so the jit-compiled epoch sees fixed shapes.

This module also holds the pieces VFAE shares (:class:`LogitsNet`,
:class:`SemiSupervisedELBO`, the supervised-only baseline, the per-class importance
weights).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
from numpyro import handlers
from numpyro.infer import Trace_ELBO, TraceEnum_ELBO
from numpyro.infer.elbo import ELBO

from guides.flax_nets import MLP, GaussianEncoder
from zoo.data import check_likelihood, oversampled_rows
from zoo.numpyro_backend.objectives import log_importance_weights
from zoo.numpyro_backend.variant import NumPyroVariant, make_decoder, mean_of, observation

# --- network blocks ------------------------------------------------------------


class LogitsNet(nn.Module):
    """inputs -> logits of a Categorical; the twin of the torch ``LogitsNet``."""

    hidden: Sequence[int]
    num_classes: int
    activation: str = "relu"

    @nn.compact
    def __call__(self, inputs):
        return MLP([*self.hidden, self.num_classes], self.activation, name="net")(inputs)


def one_hot(y, num_classes: int):
    return jax.nn.one_hot(y, num_classes)


def concat(*arrays):
    """Concatenate along the last dim after broadcasting the batch dims (an
    enumerated ``y`` has shape (C, 1) while ``x`` has (B, D))."""
    batch = jnp.broadcast_shapes(*(a.shape[:-1] for a in arrays))
    return jnp.concatenate([jnp.broadcast_to(a, (*batch, a.shape[-1])) for a in arrays], axis=-1)


def row_mask(mask):
    """``handlers.mask`` of the data plate's rows, or no mask at all."""
    return handlers.mask(mask=True if mask is None else mask)


# --- the objective -------------------------------------------------------------


class SemiSupervisedELBO(ELBO):
    """(m2.6) ``sum_lab -L(x,y) + sum_unlab -U(x) + w sum_lab -log q(y|.)``.

    See the Pyro twin: the labelled rows' bound by ``Trace_ELBO`` with ``y``
    observed, the unlabelled rows' by ``TraceEnum_ELBO`` with the guide's ``y``
    enumerated (and ``batch_terms=False``), complementary row masks, plus the
    classification term. Both runs always happen: under ``jit`` the masks are
    traced values. ``log_classifier(params, rng_key, x, label, **batch)`` gives
    ``log q(y=label|.)`` per row; ``weight()`` is ``alpha / N_l``, read when the
    loss is traced.
    """

    can_infer_discrete = True

    def __init__(self, log_classifier, weight):
        super().__init__(num_particles=1)
        self.labelled_elbo = Trace_ELBO()
        self.unlabelled_elbo = TraceEnum_ELBO(max_plate_nesting=1)
        self.log_classifier = log_classifier
        self.weight = weight

    def loss(self, rng_key, param_map, model, guide, x, label, labelled, **batch):
        labelled_key, unlabelled_key, classifier_key = jax.random.split(rng_key, 3)
        observed = labelled.astype(bool)
        loss = self.labelled_elbo.loss(labelled_key, param_map, model, guide, x, y=label, mask=observed, **batch)
        loss = loss + self.unlabelled_elbo.loss(
            unlabelled_key, param_map, model, guide, x, mask=~observed, batch_terms=False, **batch
        )
        log_q = self.log_classifier(param_map, classifier_key, x, label, **batch)
        return loss - self.weight() * jnp.sum(jnp.where(observed, log_q, 0.0))

    def loss_with_mutable_state(self, rng_key, param_map, model, guide, *args, **kwargs):
        return {"loss": self.loss(rng_key, param_map, model, guide, *args, **kwargs), "mutable_state": None}


def classification_weight(alpha_scale: float, labelled) -> float:
    """(m2.6) ``alpha / N_l`` with ``alpha = alpha_scale * N``."""
    num_labelled = int(np.sum(labelled))
    return alpha_scale * len(labelled) / num_labelled if num_labelled else 0.0


def labelled_arrays(dataset) -> dict:
    """Images, labels (blanked to 0 where unlabelled) and the labelled mask; see the Pyro twin."""
    labelled = dataset.labelled if dataset.labelled is not None else np.ones(len(dataset.y_train), dtype=bool)
    return {"x": dataset.x_train, "label": np.where(labelled, dataset.y_train, 0), "labelled": labelled}


def class_marginal_log_weights(model, guide, params, rng_key, num_classes: int, num_particles: int, x, **batch):
    """``log w_k = log sum_y p(x, y, z_k^y) / q(z_k^y | x, y)``, shape (k, B); see the Pyro twin."""

    def given_class(c, key):
        y = jnp.full((x.shape[0],), c, dtype=jnp.int32)
        return log_importance_weights(model, guide, params, key, num_particles, x=x, y=y, batch_terms=False, **batch)

    # vmap over the classes: one traced program, not C copies of it.
    per_class = jax.vmap(given_class)(jnp.arange(num_classes), jax.random.split(rng_key, num_classes))
    return jax.scipy.special.logsumexp(per_class, axis=0)


def jit_init(svi, rng_key, batch: dict):
    """``svi.init`` compiled as one program: run eagerly, every operation of the
    first trace of model and guide would be compiled on its own."""
    return jax.jit(lambda key, arrays: svi.init(key, **arrays))(rng_key, batch)


def supervised_baseline_accuracy(net, inputs, labels, test_inputs, test_labels, steps: int,
                                 binarize: bool, seed: int = 0) -> float:
    """Test accuracy of ``net`` (a Flax classifier) trained on ``(inputs, labels)``
    alone: Adam (lr 1e-3), minibatches of up to 100, ``steps`` steps, inputs
    re-binarized per step when the training images are. The twin of the Pyro one;
    initialisation, training and prediction are one compiled program."""
    optimizer = optax.adam(1e-3)
    size = min(100, len(inputs))

    def cross_entropy(params, x, y):
        logits = net.apply(params, x)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=-1))

    def train_and_predict(key, inputs, labels, test_inputs):
        init_key, loop_key = jax.random.split(key)
        params = net.init(init_key, inputs[:1])

        def step(i, carry):
            params, state = carry
            index_key, noise_key = jax.random.split(jax.random.fold_in(loop_key, i))
            index = jax.random.randint(index_key, (size,), 0, len(inputs))
            x = inputs[index]
            if binarize:
                x = jax.random.bernoulli(noise_key, x).astype(x.dtype)
            grads = jax.grad(cross_entropy)(params, x, labels[index])
            updates, state = optimizer.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        params, _ = jax.lax.fori_loop(0, steps, step, (params, optimizer.init(params)))
        return net.apply(params, test_inputs)

    logits = jax.jit(train_and_predict)(
        jax.random.PRNGKey(seed), jnp.asarray(inputs), jnp.asarray(labels), jnp.asarray(test_inputs)
    )
    return accuracy(logits, test_labels)


def accuracy(logits, labels) -> float:
    return float(np.mean(np.asarray(jnp.argmax(logits, -1)) == np.asarray(labels)))


# --- the variant ---------------------------------------------------------------


class Variant(NumPyroVariant):
    """p(y) p(z) p(x|y,z) with q(y|x) q(z|x,y); see the module docstring."""

    def __init__(self, config, x_dim, num_classes=10):
        super().__init__(config, x_dim, num_classes)
        self.classifier = LogitsNet(config.hidden, num_classes, config.activation)
        self.encoder = GaussianEncoder(config.hidden, config.z_dim, config.activation)
        self.decoder = make_decoder(config, x_dim)
        self.alpha_per_label = config.alpha_scale

    def model(self, x, y=None, mask=None, **batch):
        """(m2.1) ``y ~ Cat(1/C)``, ``z ~ N(0, I)``; (m2.2) ``x ~ p(x | y, z)``."""
        decoder = self.module("decoder", self.decoder, self.config.z_dim + self.num_classes)
        size = x.shape[0]
        with numpyro.plate("data", size, dim=-1), row_mask(mask):
            y = numpyro.sample("y", dist.Categorical(logits=jnp.zeros((size, self.num_classes))), obs=y)
            z = numpyro.sample("z", dist.Normal(jnp.zeros((size, self.config.z_dim)), 1.0).to_event(1))
            logits = decoder(concat(z, one_hot(y, self.num_classes)))
            numpyro.sample("x", observation(logits, self.config.likelihood), obs=x)

    def guide(self, x, y=None, mask=None, **batch):
        """(m2.3) ``q(y|x)`` (enumerated when ``y`` is not given), then ``q(z|x,y)``."""
        classifier = self.module("classifier", self.classifier, self.x_dim)
        encoder = self.module("encoder", self.encoder, self.x_dim + self.num_classes)
        with numpyro.plate("data", x.shape[0], dim=-1), row_mask(mask):
            if y is None:
                y = numpyro.sample("y", dist.Categorical(logits=classifier(x)), infer={"enumerate": "parallel"})
            loc, scale = encoder(concat(x, one_hot(y, self.num_classes)))
            numpyro.sample("z", dist.Normal(loc, scale).to_event(1))

    def log_classifier(self, params, rng_key, x, label, **batch):
        """``log q(y=label | x)`` per row, for the classification term of (m2.6)."""
        return dist.Categorical(logits=self.apply(params, "classifier", self.classifier, x)).log_prob(label)

    def objective(self):
        return SemiSupervisedELBO(self.log_classifier, lambda: self.alpha_per_label)

    def init_state(self, rng_key, batch: dict):
        return jit_init(self.svi, rng_key, batch)

    # --- data ---------------------------------------------------------------
    def training_data(self, dataset) -> dict:
        """Images, labels and mask, labelled rows repeated to ``labelled_fraction``
        (zoo.data.oversampled_rows); alpha / N_l counts the distinct labels."""
        check_likelihood(dataset, self.config.likelihood)
        arrays = labelled_arrays(dataset)
        self.alpha_per_label = classification_weight(self.config.alpha_scale, arrays["labelled"])
        rows = oversampled_rows(arrays["labelled"], self.config.labelled_fraction)
        return {key: value[rows] for key, value in arrays.items()}

    def test_data(self, dataset) -> dict:
        return {"x": dataset.x_test, "label": dataset.y_test}

    # --- evaluation and pictures ----------------------------------------------
    def log_weights(self, params, rng_key, num_particles: int, x, **batch):
        return class_marginal_log_weights(self.model, self.guide, params, rng_key, self.num_classes, num_particles, x)

    def predict(self, params, x):
        return jnp.argmax(self.apply(params, "classifier", self.classifier, x), -1)

    def encode(self, params, x, label=None, **batch):
        y = self.predict(params, x) if label is None else label
        return self.apply(params, "encoder", self.encoder, concat(x, one_hot(y, self.num_classes)))[0]

    def decode(self, params, z, y=None):
        logits = self.apply(params, "decoder", self.decoder, concat(z, one_hot(y, self.num_classes)))
        return mean_of(logits, self.config.likelihood)

    def reconstruct(self, params, x, **batch):
        y = self.predict(params, x)
        return self.decode(params, self.encode(params, x, y), y)

    def sample(self, params, rng_key, num_samples: int):
        per_class = -(-num_samples // self.num_classes)
        y = jnp.repeat(jnp.arange(self.num_classes), per_class)[:num_samples]
        z = jax.random.normal(rng_key, (num_samples, self.config.z_dim))
        return self.decode(params, z, y)

    def style_transfer(self, params, x, label):
        """Each image followed by its style decoded with every label; see the Pyro twin."""
        x, label = jnp.asarray(x), jnp.asarray(label)
        z = self.encode(params, x, label)
        rows = [x] + [self.decode(params, z, jnp.full_like(label, c)) for c in range(self.num_classes)]
        return jnp.stack(rows, axis=1).reshape(-1, x.shape[-1])

    # Adam steps taken, read from the SVI state after each epoch (extra_metrics sees
    # only the parameters); a run restored from a checkpoint falls back to this.
    RESTORED_RUN_STEPS = 2000

    def on_epoch_end(self, state, epoch: int, train_arrays: dict):
        self.steps_taken = int(state.optim_state[0])
        return state

    def supervised_steps(self) -> int:
        """``config.supervised_steps``, or as many Adam steps as M2 took (see the Pyro twin)."""
        if self.config.supervised_steps is not None:
            return int(self.config.supervised_steps)
        return getattr(self, "steps_taken", self.RESTORED_RUN_STEPS)

    def extra_metrics(self, params, dataset, rng_key) -> dict:
        """Test accuracy of ``q(y|x)`` against a supervised-only classifier of the same
        architecture given the same number of gradient steps."""
        keep = labelled_arrays(dataset)["labelled"]
        steps = self.supervised_steps()
        supervised = supervised_baseline_accuracy(
            LogitsNet(self.config.hidden, self.num_classes, self.config.activation),
            dataset.x_train[keep], dataset.y_train[keep], dataset.x_test, dataset.y_test,
            steps, dataset.binarize == "dynamic",
        )
        logits = self.apply(params, "classifier", self.classifier, jnp.asarray(dataset.x_test))
        return {
            "labels": int(keep.sum()),
            "supervised_steps": steps,
            "test_accuracy": accuracy(logits, dataset.y_test),
            "supervised_test_accuracy": supervised,
        }
