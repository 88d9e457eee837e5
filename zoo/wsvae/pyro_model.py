"""WSVAE in Pyro: an LSTM sentence VAE (wsvae.1-wsvae.3) trained by alternating a
wake step (the ELBO, wsvae.4) and a sleep step (fit the guide to dreams, wsvae.5).

Shen, Su, Niu et al., Wake-sleep variational autoencoders for language modeling,
ICONIP 2017 (LNCS 10634).

The two steps use the shared parameter-group machinery: the model's decoder and the
guide's encoder are two groups with an Adam each; the wake loss steps both, the
sleep loss (``zoo.pyro_backend.objectives.sleep_loss``) steps the encoder only. The
model generates tokens when called with ``x=None``, which is how the sleep step
dreams. Word dropout and KL annealing are options of the wake step.
"""

import math

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from torch.distributions import kl_divergence

from guides.torch_rnn import (
    SequenceDecoder,
    SequenceEncoder,
    decoder_inputs,
    last_token_index,
    sequence_log_likelihood,
    token_mask,
)
from zoo.pyro_backend.objectives import iwae_bound, sleep_loss
from zoo.pyro_backend.variant import PyroVariant
from zoo.text import UNK, require_text
from zoo.wsvae.config import BLOCK, NUM_SAMPLES_SHOWN



class Variant(PyroVariant):
    example_dataset = "words"  # what zoo.structure traces the programs on

    def __init__(self, config, x_dim, num_classes=10):
        super().__init__(config, x_dim, num_classes)
        # x_dim is the padded length T, num_classes the vocabulary size V (zoo.text).
        self.encoder = SequenceEncoder(num_classes, config.embed_dim, config.rnn_size, config.z_dim)
        self.decoder = SequenceDecoder(
            num_classes, config.embed_dim, config.rnn_size, config.z_dim, config.condition_on_z
        )
        # Steps taken so far: the clock of KL annealing, checkpointed with the weights.
        self.register_buffer("num_steps", torch.zeros((), dtype=torch.long))

    # --- the math: model (wsvae.1, wsvae.2) and guide (wsvae.3) ------------------------
    def model(self, x=None, inputs=None, kl_weight=1.0, num_dreams=None):
        """p(z) p_theta(x|z); with ``x=None`` it dreams ``num_dreams`` sequences."""
        pyro.module("decoder", self.decoder)
        n = num_dreams if x is None else x.shape[0]
        device = self.num_steps.device
        with pyro.plate("data", n, dim=-1):
            with poutine.scale(scale=kl_weight):
                z = pyro.sample("z", dist.Normal(torch.zeros(n, self.config.z_dim, device=device), 1.0).to_event(1))
            if x is None:
                x = self.decoder.sample(z, self.x_dim)
            inputs = decoder_inputs(x) if inputs is None else inputs
            logits = self.decoder.logits(z, inputs)
            pyro.sample("x", dist.Categorical(logits=logits).mask(token_mask(x)).to_event(1), obs=x)

    def guide(self, x, inputs=None, kl_weight=1.0, num_dreams=None):
        pyro.module("encoder", self.encoder)
        with pyro.plate("data", x.shape[0], dim=-1):
            loc, scale = self.encoder(x)
            with poutine.scale(scale=kl_weight):
                pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    # --- data --------------------------------------------------------------------------
    def training_data(self, dataset) -> dict:
        require_text(dataset, "wsvae")
        return {"x": dataset.x_train}

    def test_data(self, dataset) -> dict:
        require_text(dataset, "wsvae")
        return {"x": dataset.x_test}

    # --- training: wake (encoder + decoder), then sleep (encoder) -----------------------
    def parameter_groups(self):
        return {"decoder": self.decoder, "encoder": self.encoder}

    def kl_weight(self) -> float:
        """beta_t = min(1, t / kl_anneal_steps) at step t (1 without annealing)."""
        if self.config.kl_anneal_steps == 0:
            return 1.0
        return min(1.0, (self.num_steps.item() + 1) / self.config.kl_anneal_steps)

    def dropped_inputs(self, x):
        """Decoder inputs with each token (not the start) replaced by ``<unk>`` with
        probability ``word_dropout`` (Bowman et al.'s word dropout)."""
        inputs = decoder_inputs(x)
        if self.config.word_dropout == 0.0:
            return inputs
        drop = torch.rand(inputs.shape, device=x.device) < self.config.word_dropout
        drop[:, 0] = False
        return torch.where(drop, torch.full_like(inputs, UNK), inputs)

    def train_step(self, batch: dict) -> float:
        """Wake (wsvae.4) on the batch for both groups, then sleep on as many dreams:
        (wsvae.5) for the encoder, or with ``sleep_mode="soft"`` (wsvae.6) for both
        groups; returns the wake loss summed over the batch."""
        x = batch["x"]
        wake = self.training_loss({"x": x, "inputs": self.dropped_inputs(x), "kl_weight": self.kl_weight()})
        loss = self.step(wake, "decoder", "encoder")
        if self.config.sleep:
            dreams = self.config.sleep_batch or len(x)
            if self.config.sleep_mode == "tokens":
                self.step(sleep_loss(self.model, self.guide, x=None, num_dreams=dreams), "encoder")
            else:
                z = torch.randn(dreams, self.config.z_dim, device=x.device)
                self.step(self.soft_sleep_loss(z), "decoder", "encoder")
        self.num_steps += 1
        return loss

    def soft_sleep_loss(self, z):
        """(wsvae.6) ``-sum_n log q_phi(z_n | E_phi^T p_theta(z_n))``: the soft dream of
        z (the decoder's token distributions, fed back as expected embeddings) read by
        the encoder. Differentiable in theta as well: a latent-reconstruction
        (mutual-information) term that rewards a decoder whose output tells z apart."""
        probabilities = self.decoder.soft_rollout(z, self.x_dim)
        index = last_token_index(probabilities.argmax(-1))  # the first likely <eos>
        loc, scale = self.encoder.summarise(probabilities @ self.encoder.embedding.weight, index)
        return -dist.Normal(loc, scale).log_prob(z).sum()

    # --- evaluation --------------------------------------------------------------------
    def encode(self, x, **batch):
        return self.encoder(x)[0]

    def decode(self, z):
        """Greedy decoding of z: the most likely token at each step."""
        return self.decoder.sample(z, self.x_dim, greedy=True)

    @torch.no_grad()
    def sample(self, num_samples: int, device):
        z = torch.randn(num_samples, self.config.z_dim, device=device)
        return self.decoder.sample(z, self.x_dim)

    @torch.no_grad()
    def extra_metrics(self, dataset, device) -> dict:
        """(wsvae.7) per-token NLL and perplexity, KL and active units on the test set.

        The NLL is the importance-sampled bound ``L_K`` with K = ``eval_particles``,
        summed over the first ``eval_limit`` test sequences and divided by their tokens
        (``<eos>`` included). For the language-model control (``condition_on_z=False``)
        ``p(x|z)`` does not depend on z, so ``log p(x)`` is computed exactly instead.
        """
        x_all = torch.as_tensor(self.test_data(dataset)["x"][: self.config.eval_limit], device=device)
        log_px, kl, codes = [], [], []
        for start in range(0, len(x_all), BLOCK):
            x = x_all[start : start + BLOCK]
            loc, scale = self.encoder(x)
            if self.config.condition_on_z:
                log_px.append(iwae_bound(self.log_weights(self.config.eval_particles, x=x)))
            else:
                log_px.append(sequence_log_likelihood(self.decoder.logits(loc, decoder_inputs(x)), x))
            kl.append(kl_divergence(dist.Normal(loc, scale), dist.Normal(0.0, 1.0)).sum(-1))
            codes.append(loc)
        log_px, kl, codes = torch.cat(log_px), torch.cat(kl), torch.cat(codes)
        tokens = token_mask(x_all).sum().item()
        token_nll = -log_px.sum().item() / tokens
        variances = codes.var(0).cpu().numpy() if len(codes) > 1 else np.zeros(codes.shape[1])
        return {
            "test_token_nll": token_nll,
            "test_perplexity": math.exp(token_nll),
            "test_sequence_nll": -log_px.mean().item(),
            "test_kl": kl.mean().item(),
            "active_units": int((variances > 0.01).sum()),
            "eval_sequences": len(x_all),
            "samples": dataset.decode(self.sample(NUM_SAMPLES_SHOWN, device).cpu().numpy()),
        }
