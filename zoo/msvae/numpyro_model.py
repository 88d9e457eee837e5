"""MSVAE in NumPyro: model (msvae.1, msvae.2), guide (msvae.3), objective (msvae.4).

Cai, Gao & Ji, Multi-Stage Variational Auto-Encoders for Coarse-to-Fine Image
Generation, arXiv:1705.07202 (2017). The twin of :mod:`zoo.msvae.pyro_model`: the
model observes x once (stage 1) and records its mean as ``x1``; the refiners are
registered in the model so SVI initialises their parameters, and applied only by
:class:`~zoo.numpyro_backend.objectives.RefinementELBO` (behind
``lax.stop_gradient`` unless ``joint``).
"""

import jax
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.infer import TraceMeanField_ELBO

from guides.flax_nets import GaussianEncoder
from guides.flax_refiner import ResidualRefiner
from zoo.msvae.config import METRIC_ROWS, METRIC_SAMPLES
from zoo.numpyro_backend.objectives import RefinementELBO
from zoo.numpyro_backend.variant import NumPyroVariant, make_decoder, standard_normal
from zoo.sharpness import stage_metrics


class Variant(NumPyroVariant):
    def __init__(self, config, x_dim, num_classes=10):
        super().__init__(config, x_dim, num_classes)
        self.encoder = GaussianEncoder(config.hidden, config.z_dim, config.activation)
        self.decoder = make_decoder(config, x_dim)
        # Stage s >= 2 is the network "refiner<s>".
        self.refiners = {
            f"refiner{s}": ResidualRefiner(x_dim, config.refiner_channels, config.refiner_layers)
            for s in range(2, config.stages + 1)
        }

    def model(self, x, **batch):
        decoder = self.module("decoder", self.decoder, self.config.z_dim)
        for name, net in self.refiners.items():
            self.module(name, net, self.x_dim)  # parameters only: the objective applies them
        with numpyro.plate("data", x.shape[0], dim=-1):
            z = numpyro.sample("z", standard_normal(x.shape[0], self.config.z_dim))
            loc, scale = decoder(z)
            numpyro.deterministic("x1", loc)
            numpyro.sample("x", dist.Normal(loc, scale).to_event(1), obs=x)

    def guide(self, x, **batch):
        encoder = self.module("encoder", self.encoder, self.x_dim)
        with numpyro.plate("data", x.shape[0], dim=-1):
            loc, scale = encoder(x)
            numpyro.sample("z", dist.Normal(loc, scale).to_event(1))

    def refiner_functions(self) -> list:
        """``f_s(params, x)`` for s = 2..S."""
        return [lambda params, x, name=name, net=net: self.apply(params, name, net, x) for name, net in self.refiners.items()]

    def objective(self):
        if not self.refiners:
            return TraceMeanField_ELBO()
        return RefinementELBO(
            self.refiner_functions(), self.config.refine_weight, self.config.refine_loss, stop_gradient=not self.config.joint
        )

    def stage_means(self, params, z) -> list:
        stages = [self.apply(params, "decoder", self.decoder, z)[0]]
        for refine in self.refiner_functions():
            stages.append(refine(params, stages[-1]))
        return stages

    def decode(self, params, z):
        return self.stage_means(params, z)[-1]

    def extra_metrics(self, params, dataset, rng_key) -> dict:
        x = np.asarray(self.test_data(dataset)["x"][:METRIC_ROWS])
        reconstructions = self.stage_means(params, self.encode(params, x))
        samples = self.stage_means(params, jax.random.normal(rng_key, (METRIC_SAMPLES, self.config.z_dim)))
        to_numpy = lambda stages: [np.asarray(s, dtype=np.float64) for s in stages]  # noqa: E731
        return stage_metrics(x, to_numpy(reconstructions), to_numpy(samples), dataset.image_shape)
