"""SB-VAE in NumPyro: model (sbvae.1, sbvae.2), guide (sbvae.3), objective (sbvae.4).

Nalisnick & Smyth, Stick-Breaking Variational Autoencoders, ICLR 2017. The twin of
:mod:`zoo.sbvae.pyro_model`. NumPyro does register KL(Kumaraswamy || Beta), a
10-term series (the paper's eq. 12) that ``TraceMeanField_ELBO`` would use; it is
biased by about -0.03 nats per stick (tests/test_sbvae.py), so the objective is
``Trace_ELBO`` (the KL by Monte Carlo), the same estimator as the Pyro twin.
"""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.infer import Trace_ELBO

from guides.flax_stick import KumaraswamyEncoder, stick_breaking_weights
from zoo.evaluate import latent_knn_accuracy
from zoo.numpyro_backend.variant import NumPyroVariant, make_decoder, observation


class Variant(NumPyroVariant):
    def __init__(self, config, x_dim, num_classes=10):
        super().__init__(config, x_dim, num_classes)
        self.num_sticks = config.z_dim - 1
        self.encoder = KumaraswamyEncoder(config.hidden, self.num_sticks, config.activation)
        self.decoder = make_decoder(config, x_dim)

    def prior(self, batch_size: int) -> dist.Distribution:
        """(sbvae.1) ``v_k ~ Beta(1, alpha0)``, k = 1..K-1."""
        ones = jnp.ones((batch_size, self.num_sticks))
        return dist.Beta(ones, ones * self.config.alpha0).to_event(1)

    def model(self, x, **batch):
        decoder = self.module("decoder", self.decoder, self.config.z_dim)
        with numpyro.plate("data", x.shape[0], dim=-1):
            v = numpyro.sample("v", self.prior(x.shape[0]))
            pi = stick_breaking_weights(v)  # (sbvae.2)
            numpyro.sample("x", observation(decoder(pi), self.config.likelihood), obs=x)

    def guide(self, x, **batch):
        encoder = self.module("encoder", self.encoder, self.x_dim)
        with numpyro.plate("data", x.shape[0], dim=-1):
            a, b = encoder(x)
            numpyro.sample("v", dist.Kumaraswamy(a, b).to_event(1))  # (sbvae.3)

    def objective(self):
        return Trace_ELBO()

    # --- codes and pictures ---------------------------------------------------
    def encode(self, params, x, **batch):
        """``pi(E_q[v])``, as in the Pyro twin."""
        a, b = self.apply(params, "encoder", self.encoder, x)
        return stick_breaking_weights(dist.Kumaraswamy(a, b).mean)

    def sample(self, params, rng_key, num_samples: int):
        v = self.prior(num_samples).sample(rng_key)
        return self.decode(params, stick_breaking_weights(v))

    def extra_metrics(self, params, dataset, rng_key) -> dict:
        """kNN accuracy on the codes (k = 3, 5, 10; 1000 labels) and the active weights."""
        encode_jit = jax.jit(lambda x: self.encode(params, x))

        def encode(images):
            return np.asarray(encode_jit(jnp.asarray(images)))

        pi = encode(dataset.x_test)
        metrics = {f"knn_accuracy_1000_labels_k{k}": latent_knn_accuracy(encode, dataset, 1000, k) for k in (3, 5, 10)}
        metrics["knn_accuracy_1000_labels"] = metrics["knn_accuracy_1000_labels_k5"]
        metrics["active_weights"] = float((pi > 0.01).sum(-1).mean())
        return metrics
