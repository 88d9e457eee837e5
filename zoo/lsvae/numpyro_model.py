"""LSVAE in NumPyro: the VAE's model with a fixed-scale Gaussian decoder (lsvae.1,
lsvae.2), trained on squared error + KL + an L2 penalty on the weights (lsvae.4).

Ramachandra, Least Square Variational Bayesian Autoencoder with Regularization,
arXiv:1707.03134 (2017). The twin of :mod:`zoo.lsvae.pyro_model`: the penalty is a
term of the loss (not ``optax.add_decayed_weights``), over every parameter SVI
optimises.
"""

import jax
import jax.numpy as jnp
from numpyro.infer import TraceMeanField_ELBO

from zoo.vae.numpyro_model import Variant as VAE


def squared_norm(params) -> jax.Array:
    """``||w||^2`` summed over every leaf of a parameter pytree."""
    return sum(jnp.sum(leaf**2) for leaf in jax.tree_util.tree_leaves(params))


class L2PenalisedELBO(TraceMeanField_ELBO):
    """(lsvae.4) ``sum_b -ELBO(x_b) + B * lambda * (||theta||^2 + ||phi||^2)``.

    ``param_map`` holds every parameter SVI optimises (encoder and decoder); B is
    the minibatch size of ``x``.
    """

    def __init__(self, weight_decay: float, **kwargs):
        super().__init__(**kwargs)
        self.weight_decay = weight_decay

    def loss_with_mutable_state(self, rng_key, param_map, model, guide, *args, **kwargs):
        result = super().loss_with_mutable_state(rng_key, param_map, model, guide, *args, **kwargs)
        penalty = kwargs["x"].shape[0] * self.weight_decay * squared_norm(param_map)
        return {**result, "loss": result["loss"] + penalty}


class Variant(VAE):
    def objective(self):
        return L2PenalisedELBO(self.config.weight_decay)

    def extra_metrics(self, params, dataset, rng_key, num_points: int = 1000) -> dict:
        """The paper's criterion: reconstruction error of the decoded posterior mean."""
        x = jnp.asarray(dataset.x_test[:num_points])
        return {"reconstruction_mse": float(jax.jit(self.reconstruction_mse)(params, x))}

    def reconstruction_mse(self, params, x):
        return jnp.mean((self.reconstruct(params, x=x) - x) ** 2)
