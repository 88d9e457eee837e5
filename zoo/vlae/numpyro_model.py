"""VLAE in NumPyro: AF prior (vlae.1), local PixelCNN decoder (vlae.2), guide (vlae.3),
free-bits objective (vlae.6).

Chen et al., Variational Lossy Autoencoder, ICLR 2017. The twin of
:mod:`zoo.vlae.pyro_model`: the flow steps are NumPyro's
``InverseAutoregressiveTransform`` on stax MADEs (``numpyro.module``), the decoder
a Flax module; generation is a ``lax.fori_loop`` over pixels.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro import handlers
from numpyro.contrib.module import flax_module

from guides.flax_nets import GaussianEncoder
from guides.flax_pixelcnn import LocalPixelCNN, sample_pixels
from guides.jax_flows import autoregressive_nets, flow_prior
from zoo.config import ConfigError
from zoo.numpyro_backend.objectives import FreeBitsELBO, elbo_terms
from zoo.numpyro_backend.variant import NumPyroVariant

# The key of decode(): the same z always decompresses to the same image.
DECODE_KEY = 0


class Variant(NumPyroVariant):
    def __init__(self, config, x_dim, num_classes=10):
        super().__init__(config, x_dim, num_classes)
        if math.isqrt(x_dim) ** 2 != x_dim:
            raise ConfigError(f"vlae's PixelCNN decoder needs square images; {x_dim} values per example are not a square")
        self.encoder = GaussianEncoder(config.hidden, config.z_dim, config.activation)
        self.decoder = LocalPixelCNN(
            x_dim, tuple(reversed(config.hidden)), config.layers, config.filters, config.z_channels
        )
        self.flow_nets = autoregressive_nets(config.z_dim, config.flow_steps, config.flow_hidden)

    def prior(self, loc) -> dist.Distribution:
        """p(z) (vlae.1) with batch shape ``loc.shape[:-1]``; N(0, I) without flow steps."""
        if self.config.flow_steps == 0:
            return dist.Normal(jnp.zeros_like(loc), 1.0).to_event(1)
        arns = [
            numpyro.module(f"prior_flow_{k}", net, input_shape=(self.config.z_dim,))
            for k, net in enumerate(self.flow_nets)
        ]
        return flow_prior(arns, loc)

    def model(self, x, **batch):
        d = self.config.z_dim
        decoder = flax_module("decoder", self.decoder, jnp.zeros((1, self.x_dim)), jnp.zeros((1, d)))
        with numpyro.plate("data", x.shape[0], dim=-1):
            z = numpyro.sample("z", self.prior(jnp.zeros((x.shape[0], d))))
            logits = decoder(x, z)  # teacher forcing: logit i sees x_W(i) only
            numpyro.sample("x", dist.Bernoulli(logits=logits, validate_args=False).to_event(1), obs=x)

    def guide(self, x, **batch):
        encoder = self.module("encoder", self.encoder, self.x_dim)
        with numpyro.plate("data", x.shape[0], dim=-1):
            loc, scale = encoder(x)
            numpyro.sample("z", dist.Normal(loc, scale).to_event(1))

    def objective(self):
        # The floor of the one latent group z: lambda nats per data dimension.
        return FreeBitsELBO(floor=self.config.free_bits * self.x_dim)

    # --- generation: pixel by pixel ------------------------------------------
    @functools.partial(jax.jit, static_argnums=0)
    def _decode(self, params, z, rng_key):
        return sample_pixels(self.decoder, {"params": params["decoder$params"]}, z, rng_key)

    def decode(self, params, z):
        """A draw ``x ~ p(x|z)`` by ancestral sampling (the paper's "decompression"),
        with a fixed key: an autoregressive decoder has no one-shot mean."""
        return self._decode(params, jnp.asarray(z), jax.random.PRNGKey(DECODE_KEY))

    @functools.partial(jax.jit, static_argnums=(0, 3))
    def _sample(self, params, rng_key, num_samples):
        prior_key, pixel_key = jax.random.split(rng_key)
        prior = handlers.substitute(self.prior, data=params)(jnp.zeros((num_samples, self.config.z_dim)))
        z = prior.sample(prior_key)  # the flow's sequential inverse
        return sample_pixels(self.decoder, {"params": params["decoder$params"]}, z, pixel_key)

    def sample(self, params, rng_key, num_samples: int):
        """``z ~ p(z)``, then ``x ~ p(x|z)`` pixel by pixel."""
        return self._sample(params, rng_key, num_samples)

    # --- the lossy-code measurements ------------------------------------------
    def code_metrics(self, params, x, rng_key, block_size: int = 500) -> dict:
        """``kl_per_image``, ``reconstruction_nll``, ``kl_fraction`` of the test set
        from one draw of q(z|x) per image (see the Pyro twin)."""

        @jax.jit
        def terms(block, key):
            reconstruction, kl_sites = elbo_terms(self.model, self.guide, params, key, x=block)
            return jnp.sum(sum(kl_sites.values())), -jnp.sum(reconstruction)

        kl, nll = 0.0, 0.0
        for i, start in enumerate(range(0, len(x), block_size)):
            block_kl, block_nll = terms(jnp.asarray(x[start : start + block_size]), jax.random.fold_in(rng_key, i))
            kl, nll = kl + float(block_kl), nll + float(block_nll)
        kl, nll = kl / len(x), nll / len(x)
        return {"kl_per_image": kl, "reconstruction_nll": nll, "kl_fraction": kl / (kl + nll)}

    def extra_metrics(self, params, dataset, rng_key) -> dict:
        return self.code_metrics(params, np.asarray(dataset.x_test), rng_key)
