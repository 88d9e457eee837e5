"""FAE in NumPyro: the Gaussian VAE (fae.1, fae.2) trained on the ELBO plus the
Fisher-information penalties (fae.4).

Zheng, Yao, Zhang, Tsang & Wang, Understanding VAEs in Fisher-Shannon Plane,
AAAI 2019 (arXiv:1807.03723). The twin of :mod:`zoo.fae.pyro_model`, with
:class:`~zoo.numpyro_backend.objectives.FisherPenalisedELBO`.
"""

import jax
import jax.numpy as jnp
from numpyro.distributions import Normal, kl_divergence

from zoo.numpyro_backend.objectives import FisherPenalisedELBO, gaussian_fisher_information
from zoo.vae.numpyro_model import Variant as VAE


class Variant(VAE):
    def objective(self):
        c = self.config
        return FisherPenalisedELBO(c.fisher_z, c.lambda_z, c.fisher_x, c.lambda_x)

    def extra_metrics(self, params, dataset, rng_key, num_points: int = 1000) -> dict:
        """The realised Fisher information (fae.3) on test images (see the Pyro twin)."""
        x = jnp.asarray(dataset.x_test[:num_points])
        return {name: float(value) for name, value in jax.jit(self.fisher_statistics)(params, x, rng_key).items()}

    def fisher_statistics(self, params, x, rng_key) -> dict:
        loc, scale = self.apply(params, "encoder", self.encoder, x)
        z = loc + scale * jax.random.normal(rng_key, loc.shape)
        _, x_scale = self.apply(params, "decoder", self.decoder, z)
        kl = kl_divergence(Normal(loc, scale), Normal(jnp.zeros_like(loc), 1.0)).sum(-1)
        return {
            "fisher_information_z": gaussian_fisher_information(scale).mean(),
            "fisher_information_x": gaussian_fisher_information(x_scale).mean(),
            "kl": kl.mean(),
            "reconstruction_mse": jnp.mean((self.decode(params, loc) - x) ** 2),
        }
