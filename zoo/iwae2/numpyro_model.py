"""Two-layer IWAE in NumPyro: model (iwae2.1-iwae2.3), guide (iwae2.4), objective (iwae2.5).

Burda, Grosse & Salakhutdinov, Importance Weighted Autoencoders, ICLR 2016. The
twin of :mod:`zoo.iwae2.pyro_model`; the objective is NumPyro's
``RenyiELBO(alpha=0, num_particles=k)``, the per-datapoint k-sample bound for
local latents inside the data plate (NumPyro PR #1608), here with two of them.
"""

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro.infer import RenyiELBO

from guides.flax_nets import GaussianEncoder
from zoo.iwae2.config import ACTIVITY_SAMPLES, ACTIVITY_THRESHOLD
from zoo.numpyro_backend.variant import NumPyroVariant, make_decoder, observation, standard_normal


class Variant(NumPyroVariant):
    def __init__(self, config, x_dim, num_classes=10):
        super().__init__(config, x_dim, num_classes)
        self.encoder = GaussianEncoder(config.hidden, config.z_dim, config.activation)
        self.encoder2 = GaussianEncoder(config.hidden2, config.z2_dim, config.activation)
        self.prior1 = GaussianEncoder(tuple(reversed(config.hidden2)), config.z_dim, config.activation)
        self.decoder = make_decoder(config, x_dim)

    def model(self, x, **batch):
        prior1 = self.module("prior1", self.prior1, self.config.z2_dim)
        decoder = self.module("decoder", self.decoder, self.config.z_dim)
        with numpyro.plate("data", x.shape[0], dim=-1):
            z2 = numpyro.sample("z2", standard_normal(x.shape[0], self.config.z2_dim))
            z1 = numpyro.sample("z1", dist.Normal(*prior1(z2)).to_event(1))
            numpyro.sample("x", observation(decoder(z1), self.config.likelihood), obs=x)

    def guide(self, x, **batch):
        encoder = self.module("encoder", self.encoder, self.x_dim)
        encoder2 = self.module("encoder2", self.encoder2, self.config.z_dim)
        with numpyro.plate("data", x.shape[0], dim=-1):
            z1 = numpyro.sample("z1", dist.Normal(*encoder(x)).to_event(1))
            numpyro.sample("z2", dist.Normal(*encoder2(z1)).to_event(1))

    def objective(self):
        return RenyiELBO(alpha=0, num_particles=self.config.k)

    def sample(self, params, rng_key, num_samples: int):
        z2_key, z1_key = jax.random.split(rng_key)
        z2 = jax.random.normal(z2_key, (num_samples, self.config.z2_dim))
        loc, scale = self.apply(params, "prior1", self.prior1, z2)
        return self.decode(params, loc + scale * jax.random.normal(z1_key, loc.shape))

    def extra_metrics(self, params, dataset, rng_key) -> dict:
        """Active units per layer, as in the Pyro twin."""
        x = jnp.asarray(self.test_data(dataset)["x"])
        loc1, scale1 = self.apply(params, "encoder", self.encoder, x)
        z1 = loc1 + scale1 * jax.random.normal(rng_key, (ACTIVITY_SAMPLES, *loc1.shape))
        mean2 = self.apply(params, "encoder2", self.encoder2, z1)[0].mean(0)
        return {
            "active_units_z1": int((jnp.var(loc1, 0, ddof=1) > ACTIVITY_THRESHOLD).sum()),
            "active_units_z2": int((jnp.var(mean2, 0, ddof=1) > ACTIVITY_THRESHOLD).sum()),
        }
