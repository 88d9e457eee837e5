"""SB-VAE in Pyro: model (sbvae.1, sbvae.2), guide (sbvae.3), objective (sbvae.4).

Nalisnick & Smyth, Stick-Breaking Variational Autoencoders, ICLR 2017. The latent
code is a vector of stick-breaking weights pi on the K-simplex, built from K-1
fractions v with Beta(1, alpha0) priors (a truncated GEM / Dirichlet-process
prior); the guide is a Kumaraswamy per fraction, reparameterizable where the Beta
is not. Pyro registers no KL(Kumaraswamy || Beta), so the objective is
``Trace_ELBO``: the KL by Monte Carlo, one draw of v per datapoint.
"""

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import Trace_ELBO

from guides.torch_stick import Kumaraswamy, KumaraswamyEncoder, stick_breaking_weights
from zoo.evaluate import latent_knn_accuracy
from zoo.pyro_backend.variant import PyroVariant, make_decoder, observation


class Variant(PyroVariant):
    def __init__(self, config, x_dim, num_classes=10):
        super().__init__(config, x_dim, num_classes)
        self.num_sticks = config.z_dim - 1
        self.encoder = KumaraswamyEncoder(x_dim, config.hidden, self.num_sticks, config.activation)
        self.decoder = make_decoder(config, config.z_dim, x_dim)

    def prior(self, batch_size: int, like: torch.Tensor) -> dist.Distribution:
        """(sbvae.1) ``v_k ~ Beta(1, alpha0)``, k = 1..K-1."""
        ones = like.new_ones(batch_size, self.num_sticks)
        return dist.Beta(ones, ones * self.config.alpha0).to_event(1)

    def model(self, x, **batch):
        pyro.module("decoder", self.decoder)
        with pyro.plate("data", x.shape[0], dim=-1):
            v = pyro.sample("v", self.prior(x.shape[0], x))
            pi = stick_breaking_weights(v)  # (sbvae.2)
            pyro.sample("x", observation(self.decoder(pi), self.config.likelihood), obs=x)

    def guide(self, x, **batch):
        pyro.module("encoder", self.encoder)
        with pyro.plate("data", x.shape[0], dim=-1):
            a, b = self.encoder(x)
            pyro.sample("v", Kumaraswamy(a, b).to_event(1))  # (sbvae.3)

    def objective(self):
        return Trace_ELBO()

    # --- codes and pictures ---------------------------------------------------
    def encode(self, x, **batch) -> torch.Tensor:
        """The weights at the guide's mean fractions, ``pi(E_q[v])``: the code the kNN reads."""
        a, b = self.encoder(x)
        return stick_breaking_weights(Kumaraswamy(a, b).mean)

    @torch.no_grad()
    def sample(self, num_samples: int, device) -> torch.Tensor:
        v = self.prior(num_samples, torch.zeros((), device=device)).sample()
        return self.decode(stick_breaking_weights(v))

    def extra_metrics(self, dataset, device) -> dict:
        """kNN accuracy on the codes (the paper's k = 3, 5, 10, with 1000 labels) and how
        many weights carry mass: the mean number of ``pi_k > 0.01`` on test images."""
        def encode(images):
            return self.encode(torch.as_tensor(images, device=device)).cpu().numpy()

        pi = encode(dataset.x_test)
        metrics = {f"knn_accuracy_1000_labels_k{k}": latent_knn_accuracy(encode, dataset, 1000, k) for k in (3, 5, 10)}
        metrics["knn_accuracy_1000_labels"] = metrics["knn_accuracy_1000_labels_k5"]
        metrics["active_weights"] = float((pi > 0.01).sum(-1).mean())
        return metrics
