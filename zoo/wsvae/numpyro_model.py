"""WSVAE in NumPyro: an LSTM sentence VAE (wsvae.1-wsvae.3) trained by alternating a
wake step (the ELBO, wsvae.4) and a sleep step (fit the guide to dreams, wsvae.5).

Shen, Su, Niu et al., Wake-sleep variational autoencoders for language modeling,
ICONIP 2017 (LNCS 10634).

The twin of :mod:`zoo.wsvae.pyro_model`. The decoder (model) and the encoder (guide)
are two parameter groups with an optax Adam each; ``update`` is pure, so the trainer
jit-compiles whole epochs, and the state carries the step count that KL annealing
needs. The model generates tokens (a ``lax.scan`` of the decoder) when called with
``x=None``; the sleep loss (``zoo.numpyro_backend.objectives.sleep_loss``) dreams
that way and differentiates ``-log q`` with respect to the encoder only.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro import handlers
from numpyro.contrib.module import flax_module
from numpyro.infer import TraceMeanField_ELBO

from guides.flax_rnn import (
    SequenceDecoder,
    SequenceEncoder,
    decoder_inputs,
    last_token_index,
    sequence_log_likelihood,
    token_mask,
)
from zoo.numpyro_backend.objectives import iwae_bound, sleep_loss
from zoo.numpyro_backend.variant import NumPyroVariant
from zoo.text import UNK, require_text
from zoo.wsvae.config import BLOCK, NUM_SAMPLES_SHOWN



class WakeSleepState(NamedTuple):
    """The training state: two networks' parameters, their optimizer states, a key,
    and the number of steps taken (the clock of KL annealing)."""

    params: dict
    opt_states: dict
    rng_key: jax.Array
    step: jax.Array


class Variant(NumPyroVariant):
    example_dataset = "words"  # what zoo.structure traces the programs on

    def __init__(self, config, x_dim, num_classes=10):
        super().__init__(config, x_dim, num_classes)
        # x_dim is the padded length T, num_classes the vocabulary size V (zoo.text).
        self.encoder = SequenceEncoder(num_classes, config.embed_dim, config.rnn_size, config.z_dim)
        self.decoder = SequenceDecoder(
            num_classes, config.embed_dim, config.rnn_size, config.z_dim, config.condition_on_z
        )
        self.wake_objective = TraceMeanField_ELBO()
        self._log_weights = jax.jit(self.log_weights, static_argnums=2)
        self._sample = jax.jit(self.sample, static_argnums=2)
        self._reconstruct = jax.jit(lambda params, x: self.decode(params, self.encode(params, x)))
        self._posterior = jax.jit(self.posterior)

    def _example_inputs(self):
        return jnp.zeros((1, self.config.z_dim)), jnp.zeros((1, self.x_dim), jnp.int32)

    # --- the math: model (wsvae.1, wsvae.2) and guide (wsvae.3) ------------------------
    def model(self, x=None, inputs=None, kl_weight=1.0, num_dreams=None):
        """p(z) p_theta(x|z); with ``x=None`` it dreams ``num_dreams`` sequences."""
        decoder = flax_module("decoder", self.decoder, *self._example_inputs())
        n = num_dreams if x is None else x.shape[0]
        with numpyro.plate("data", n, dim=-1):
            with handlers.scale(scale=kl_weight):
                z = numpyro.sample("z", dist.Normal(jnp.zeros((n, self.config.z_dim)), 1.0).to_event(1))
            if x is None:
                x = decoder(z, numpyro.prng_key(), self.x_dim, method="sample")
            inputs = decoder_inputs(x) if inputs is None else inputs
            logits = decoder(z, inputs)
            numpyro.sample("x", dist.Categorical(logits=logits).mask(token_mask(x)).to_event(1), obs=x)

    def guide(self, x, inputs=None, kl_weight=1.0, num_dreams=None):
        encoder = flax_module("encoder", self.encoder, self._example_inputs()[1])
        with numpyro.plate("data", x.shape[0], dim=-1):
            loc, scale = encoder(x)
            with handlers.scale(scale=kl_weight):
                numpyro.sample("z", dist.Normal(loc, scale).to_event(1))

    # --- data --------------------------------------------------------------------------
    def training_data(self, dataset) -> dict:
        require_text(dataset, "wsvae")
        return {"x": dataset.x_train}

    def test_data(self, dataset) -> dict:
        require_text(dataset, "wsvae")
        return {"x": dataset.x_test}

    # --- training: wake (encoder + decoder), then sleep (encoder) -----------------------
    def parameter_groups(self) -> tuple[str, ...]:
        return ("decoder", "encoder")

    def init_state(self, rng_key, batch):
        keys = jax.random.split(rng_key, 3)

        # method="parameters" builds the weights without tracing the LSTM scans, and
        # one compiled function beats a dozen op-by-op random draws.
        @jax.jit
        def init(keys):
            return {
                "encoder$params": self.encoder.init(keys[0], method="parameters")["params"],
                "decoder$params": self.decoder.init(keys[1], method="parameters")["params"],
            }

        params = init(keys)
        grouped = self.grouped_state(params, keys[2])
        return WakeSleepState(grouped.params, grouped.opt_states, grouped.rng_key, jnp.zeros((), jnp.int32))

    def params(self, state) -> dict:
        return state.params

    def kl_weight(self, step):
        """beta_t = min(1, t / kl_anneal_steps) at step t (1 without annealing)."""
        if self.config.kl_anneal_steps == 0:
            return 1.0
        return jnp.minimum(1.0, (step + 1) / self.config.kl_anneal_steps)

    def dropped_inputs(self, rng_key, x):
        """Decoder inputs with each token (not the start) replaced by ``<unk>`` with
        probability ``word_dropout`` (Bowman et al.'s word dropout)."""
        inputs = decoder_inputs(x)
        if self.config.word_dropout == 0.0:
            return inputs
        drop = jax.random.bernoulli(rng_key, self.config.word_dropout, inputs.shape).at[:, 0].set(False)
        return jnp.where(drop, UNK, inputs)

    def update(self, state, batch):
        """Wake (wsvae.4) on the batch for both groups, then sleep on as many dreams:
        (wsvae.5) for the encoder, or with ``sleep_mode="soft"`` (wsvae.6) for both
        groups; returns the wake loss summed over the batch."""
        x = batch["x"]
        rng_key, drop_key, wake_key, sleep_key = jax.random.split(state.rng_key, 4)
        inputs, kl_weight = self.dropped_inputs(drop_key, x), self.kl_weight(state.step)
        state = state._replace(rng_key=rng_key)

        def wake(params):
            return self.wake_objective.loss(
                wake_key, params, self.model, self.guide, x=x, inputs=inputs, kl_weight=kl_weight
            )

        state, loss = self.step(state, wake, "decoder", "encoder")
        if self.config.sleep:
            dreams = self.config.sleep_batch or x.shape[0]
            if self.config.sleep_mode == "tokens":
                sleep = lambda params: sleep_loss(self.model, self.guide, params, sleep_key, x=None, num_dreams=dreams)  # noqa: E731
                state, _ = self.step(state, sleep, "encoder")
            else:
                z = jax.random.normal(sleep_key, (dreams, self.config.z_dim))
                state, _ = self.step(state, lambda params: self.soft_sleep_loss(params, z), "decoder", "encoder")
        return state._replace(step=state.step + 1), loss

    def soft_sleep_loss(self, params, z):
        """(wsvae.6) ``-sum_n log q_phi(z_n | E_phi^T p_theta(z_n))`` on soft dreams,
        differentiable in theta as well (see the Pyro twin)."""
        probabilities = self.decoder.apply({"params": params["decoder$params"]}, z, self.x_dim, method="soft_rollout")
        index = last_token_index(jnp.argmax(probabilities, -1))  # the first likely <eos>
        embedded = probabilities @ params["encoder$params"]["embedding"]["weight"]
        loc, scale = self.encoder.apply({"params": params["encoder$params"]}, embedded, index, method="summarise")
        return -dist.Normal(loc, scale).log_prob(z).sum()

    # --- evaluation --------------------------------------------------------------------
    def reconstruct(self, params, x, **batch):
        return self._reconstruct(params, x)

    def posterior(self, params, x):
        return self.encoder.apply({"params": params["encoder$params"]}, x)

    def encode(self, params, x, **batch):
        return self.posterior(params, x)[0]

    def decode(self, params, z):
        """Greedy decoding of z: the most likely token at each step."""
        key = jax.random.PRNGKey(0)  # unused by argmax decoding
        return self.decoder.apply({"params": params["decoder$params"]}, z, key, self.x_dim, True, method="sample")

    def sample(self, params, rng_key, num_samples: int):
        z_key, token_key = jax.random.split(rng_key)
        z = jax.random.normal(z_key, (num_samples, self.config.z_dim))
        return self.decoder.apply({"params": params["decoder$params"]}, z, token_key, self.x_dim, method="sample")

    def extra_metrics(self, params, dataset, rng_key) -> dict:
        """(wsvae.7) per-token NLL and perplexity, KL and active units (see the Pyro twin)."""
        x_all = jnp.asarray(self.test_data(dataset)["x"][: self.config.eval_limit])
        log_px, kl, codes = [], [], []
        for start in range(0, len(x_all), BLOCK):
            x = x_all[start : start + BLOCK]
            rng_key, key = jax.random.split(rng_key)
            loc, scale = self._posterior(params, x)
            if self.config.condition_on_z:
                log_px.append(iwae_bound(self._log_weights(params, key, self.config.eval_particles, x=x)))
            else:
                logits = self.decoder.apply({"params": params["decoder$params"]}, loc, decoder_inputs(x))
                log_px.append(sequence_log_likelihood(logits, x))
            kl.append(dist.kl_divergence(dist.Normal(loc, scale), dist.Normal(0.0, 1.0)).sum(-1))
            codes.append(loc)
        log_px, kl, codes = (np.asarray(jnp.concatenate(a), dtype=np.float64) for a in (log_px, kl, codes))
        tokens = int(np.asarray(token_mask(x_all)).sum())
        token_nll = -log_px.sum() / tokens
        variances = codes.var(0, ddof=1) if len(codes) > 1 else np.zeros(codes.shape[1])
        return {
            "test_token_nll": float(token_nll),
            "test_perplexity": float(np.exp(token_nll)),
            "test_sequence_nll": float(-log_px.mean()),
            "test_kl": float(kl.mean()),
            "active_units": int((variances > 0.01).sum()),
            "eval_sequences": int(len(x_all)),
            "samples": dataset.decode(np.asarray(self._sample(params, rng_key, NUM_SAMPLES_SHOWN))),
        }
