"""VAE in Pyro: model (vae.1, vae.2), guide (vae.3), objective (vae.4).

Kingma & Welling, Auto-Encoding Variational Bayes, ICLR 2014.
"""

import pyro
import pyro.distributions as dist

from guides.torch_nets import GaussianEncoder
from zoo.pyro_backend.variant import PyroVariant, make_decoder, observation


class Variant(PyroVariant):
    def __init__(self, config, x_dim, num_classes=10):
        super().__init__(config, x_dim, num_classes)
        self.encoder = GaussianEncoder(x_dim, config.hidden, config.z_dim, config.activation)
        self.decoder = make_decoder(config, config.z_dim, x_dim)

    def model(self, x, **batch):
        pyro.module("decoder", self.decoder)
        with pyro.plate("data", x.shape[0], dim=-1):
            z = pyro.sample("z", dist.Normal(x.new_zeros(x.shape[0], self.config.z_dim), 1.0).to_event(1))
            pyro.sample("x", observation(self.decoder(z), self.config.likelihood), obs=x)

    def guide(self, x, **batch):
        pyro.module("encoder", self.encoder)
        with pyro.plate("data", x.shape[0], dim=-1):
            loc, scale = self.encoder(x)
            pyro.sample("z", dist.Normal(loc, scale).to_event(1))
