"""VAE in NumPyro: model (vae.1, vae.2), guide (vae.3), objective (vae.4).

Kingma & Welling, Auto-Encoding Variational Bayes, ICLR 2014.
"""

import numpyro
import numpyro.distributions as dist

from guides.flax_nets import GaussianEncoder
from zoo.numpyro_backend.variant import NumPyroVariant, make_decoder, observation, standard_normal


class Variant(NumPyroVariant):
    def __init__(self, config, x_dim, num_classes=10):
        super().__init__(config, x_dim, num_classes)
        self.encoder = GaussianEncoder(config.hidden, config.z_dim, config.activation)
        self.decoder = make_decoder(config, x_dim)

    def model(self, x, **batch):
        decoder = self.module("decoder", self.decoder, self.config.z_dim)
        with numpyro.plate("data", x.shape[0], dim=-1):
            z = numpyro.sample("z", standard_normal(x.shape[0], self.config.z_dim))
            numpyro.sample("x", observation(decoder(z), self.config.likelihood), obs=x)

    def guide(self, x, **batch):
        encoder = self.module("encoder", self.encoder, self.x_dim)
        with numpyro.plate("data", x.shape[0], dim=-1):
            loc, scale = encoder(x)
            numpyro.sample("z", dist.Normal(loc, scale).to_event(1))
