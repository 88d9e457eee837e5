"""MEM-VAE in NumPyro: model (mevae.1–mevae.3), guide (mevae.4), objective (mevae.5).

Li, Zhu & Zhang, Learning to Generate with Memory, ICML 2016. The twin of
:mod:`zoo.mevae.pyro_model`: activations recorded with ``numpyro.deterministic``,
the objective :class:`~zoo.numpyro_backend.objectives.LocalReconstructionELBO`.
"""

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from guides.flax_memory import ActivationEncoder, MemoryDecoder
from guides.flax_nets import positive_scale
from guides.memory import matched_vae_hidden, mevae_count
from zoo.numpyro_backend.objectives import LocalReconstructionELBO
from zoo.numpyro_backend.variant import NumPyroVariant, mean_of, observation, standard_normal


def decoder_output(out, likelihood: str):
    if likelihood == "bernoulli":
        return out
    loc, raw_scale = jnp.split(out, 2, axis=-1)
    return loc, positive_scale(raw_scale)


class Variant(NumPyroVariant):
    def __init__(self, config, x_dim, num_classes=10):
        super().__init__(config, x_dim, num_classes)
        self.encoder = ActivationEncoder(config.hidden, config.z_dim, config.activation)
        out_dim = x_dim if config.likelihood == "bernoulli" else 2 * x_dim
        self.decoder = MemoryDecoder(tuple(reversed(config.hidden)), out_dim, config.slots, config.activation,
                                     config.combinator)

    def model(self, x, **batch):
        decoder = self.module("decoder", self.decoder, self.config.z_dim)
        with numpyro.plate("data", x.shape[0], dim=-1):
            z = numpyro.sample("z", standard_normal(x.shape[0], self.config.z_dim))
            out, hiddens = decoder(z)
            for i, h in enumerate(hiddens):
                numpyro.deterministic(f"h_dec_{i}", h)
            numpyro.sample("x", observation(decoder_output(out, self.config.likelihood), self.config.likelihood), obs=x)

    def guide(self, x, **batch):
        encoder = self.module("encoder", self.encoder, self.x_dim)
        with numpyro.plate("data", x.shape[0], dim=-1):
            loc, scale, hiddens = encoder(x)
            for i, h in enumerate(hiddens):
                numpyro.deterministic(f"h_enc_{i}", h)
            numpyro.sample("z", dist.Normal(loc, scale).to_event(1))

    def objective(self):
        return LocalReconstructionELBO(self.config.k, self.config.lre_weight, self.config.lre_pairs(), self.config.analytic_kl)

    def decode(self, params, z):
        out, _ = self.apply(params, "decoder", self.decoder, z)
        return mean_of(decoder_output(out, self.config.likelihood), self.config.likelihood)

    def extra_metrics(self, params, dataset, rng_key) -> dict:
        c = self.config
        count = sum(int(leaf.size) for name in ("encoder$params", "decoder$params")
                    for leaf in jax.tree_util.tree_leaves(params[name]))
        assert count == mevae_count(self.x_dim, c.z_dim, c.hidden, c.slots, c.combinator, c.likelihood)
        return {
            "num_parameters": count,
            "matched_vae_hidden": list(matched_vae_hidden(self.x_dim, c.z_dim, len(c.hidden), count, c.likelihood)),
        }
