"""The base class of every NumPyro variant: a model–guide pair and how to train it.

The twin of :mod:`zoo.pyro_backend.variant`. Networks are Flax modules registered
with ``numpyro.contrib.module.flax_module`` inside ``model`` and ``guide``; training
state is a pytree so a whole epoch can be jit-compiled. Defaults, overridden only
where the paper needs it:

- ``objective()``: the NumPyro loss (default ``TraceMeanField_ELBO``);
- ``init_state(rng_key, batch)`` / ``update(state, batch)``: one pure, jit-able
  optimisation step (default ``SVI.update``);
- ``parameter_groups()``: for adversarial and wake-sleep variants, the networks
  that get an optax optimizer each; their ``update`` calls ``step(state,
  loss_fn, *groups)`` once per group on a :class:`GroupedState`;
- ``log_weights``, ``encode``, ``decode``, ``sample``, ``extra_metrics``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
import optax
from numpyro.contrib.module import flax_module
from numpyro.infer import SVI, TraceMeanField_ELBO

from guides.flax_nets import BernoulliDecoder, GaussianDecoder
from zoo.numpyro_backend.objectives import log_importance_weights


def make_decoder(config, x_dim: int):
    hidden = tuple(reversed(config.hidden))
    if config.likelihood == "bernoulli":
        return BernoulliDecoder(hidden, x_dim, config.activation)
    return GaussianDecoder(hidden, x_dim, config.activation, getattr(config, "fixed_scale", None))


def observation(decoder_output, likelihood: str) -> dist.Distribution:
    """``p(x|z)`` from the decoder's output, one event of ``x_dim`` pixels.

    ``validate_args=False`` for the Bernoulli: with validation on, NumPyro scores
    grey-level pixels as -inf, while the cross-entropy on logits is well defined.
    """
    if likelihood == "bernoulli":
        return dist.Bernoulli(logits=decoder_output, validate_args=False).to_event(1)
    loc, scale = decoder_output
    return dist.Normal(loc, scale).to_event(1)


def mean_of(decoder_output, likelihood: str):
    if likelihood == "bernoulli":
        return jax.nn.sigmoid(decoder_output)
    return decoder_output[0]


class GroupedState(NamedTuple):
    """The training state of a variant with several parameter groups."""

    params: dict  # "<network>$params" -> that network's parameters (flax_module's naming)
    opt_states: dict  # group name -> its optax state
    rng_key: jax.Array


class NumPyroVariant:
    """Flax module definitions plus ``model``/``guide``; see the module docstring."""

    def __init__(self, config, x_dim: int, num_classes: int = 10):
        self.config = config
        self.x_dim = x_dim
        self.num_classes = num_classes
        self.svi: SVI | None = None

    # --- the math -----------------------------------------------------------
    def model(self, x, **batch):  # pragma: no cover - abstract
        raise NotImplementedError

    def guide(self, x, **batch):  # pragma: no cover - abstract
        raise NotImplementedError

    def objective(self):
        return TraceMeanField_ELBO()

    def module(self, name: str, net, input_dim: int):
        """Register a Flax network as a NumPyro module (``name$params``)."""
        return flax_module(name, net, input_shape=(1, input_dim))

    # --- data -----------------------------------------------------------------
    def training_data(self, dataset) -> dict:
        """The arrays a training batch slices; variants with labels add ``y``."""
        return {"x": dataset.x_train}

    def test_data(self, dataset) -> dict:
        return {"x": dataset.x_test}

    # --- training -----------------------------------------------------------
    def parameter_groups(self) -> tuple[str, ...]:
        """Names of the networks that each get an optimizer of their own (their
        parameters are ``params["<name>$params"]``). Empty, the default: one
        ``SVI`` over every parameter."""
        return ()

    def configure_optimizers(self, lr: float) -> None:
        groups = self.parameter_groups()
        if groups:
            self.optimizers = {name: optax.adam(lr) for name in groups}
        else:
            self.svi = SVI(self.model, self.guide, optax.adam(lr), loss=self.objective())

    def init_state(self, rng_key, batch: dict):
        return self.svi.init(rng_key, **batch)

    def grouped_state(self, params: dict, rng_key) -> GroupedState:
        """A :class:`GroupedState` with fresh optimizer states for ``params``."""
        opt_states = {name: self.optimizers[name].init(params[name + "$params"]) for name in self.optimizers}
        return GroupedState(params, opt_states, rng_key)

    def update(self, state, batch: dict):
        """One pure optimisation step: ``(state, batch) -> (state, loss summed over batch)``."""
        return self.svi.update(state, **batch)

    def step(self, state: GroupedState, loss_fn, *groups: str, has_aux: bool = False):
        """One optimizer step of each of ``groups`` on ``loss_fn(params)``.

        ``loss_fn`` takes the whole parameter dict; it is differentiated with
        respect to those groups' parameters only, so it cannot move another
        network. Returns ``(state, loss)``; with ``has_aux``, ``loss_fn`` returns
        ``(loss, aux)`` and so does the step (``(state, (loss, aux))``), e.g. the
        discriminator's cross-entropies that decide whether a step is kept.
        """
        keys = [name + "$params" for name in groups]

        def loss_of_own(own):
            return loss_fn({**state.params, **own})

        loss, grads = jax.value_and_grad(loss_of_own, has_aux=has_aux)({key: state.params[key] for key in keys})
        params, opt_states = dict(state.params), dict(state.opt_states)
        for name, key in zip(groups, keys):
            updates, opt_states[name] = self.optimizers[name].update(grads[key], opt_states[name], params[key])
            params[key] = optax.apply_updates(params[key], updates)
        return state._replace(params=params, opt_states=opt_states), loss

    def on_epoch_end(self, state, epoch: int, train_arrays: dict):
        """Called after every finished epoch, before the checkpoint is written, with
        the training arrays; returns the (possibly changed) state. Outside ``jit``."""
        return state

    def params(self, state) -> dict:
        if isinstance(state, GroupedState):
            return state.params
        return self.svi.get_params(state)

    # --- evaluation ---------------------------------------------------------
    def log_weights(self, params, rng_key, num_particles: int, **batch):
        return log_importance_weights(self.model, self.guide, params, rng_key, num_particles, **batch)

    def apply(self, params, name: str, net, *inputs):
        return net.apply({"params": params[name + "$params"]}, *inputs)

    def encode(self, params, x, **batch):
        return self.apply(params, "encoder", self.encoder, x)[0]

    def decode(self, params, z):
        return mean_of(self.apply(params, "decoder", self.decoder, z), self.config.likelihood)

    def reconstruct(self, params, **batch):
        return self.decode(params, self.encode(params, **batch))

    def sample(self, params, rng_key, num_samples: int):
        z = jax.random.normal(rng_key, (num_samples, self.config.z_dim))
        return self.decode(params, z)

    def extra_metrics(self, params, dataset, rng_key) -> dict:
        return {}


def standard_normal(batch_size: int, z_dim: int) -> dist.Distribution:
    return dist.Normal(jnp.zeros((batch_size, z_dim)), 1.0).to_event(1)
