"""VLAE in Pyro: AF prior (vlae.1), local PixelCNN decoder (vlae.2), guide (vlae.3),
free-bits objective (vlae.6).

Chen et al., Variational Lossy Autoencoder, ICLR 2017. The decoder's masks make
logit ``i`` a function of ``z`` and the window ``x_W(i)`` only, so the observation
site scores every pixel at once under teacher forcing; generation goes pixel by
pixel (:meth:`Variant.sample`, :meth:`Variant.decode`).
"""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import torch

from guides.torch_flows import autoregressive_flow, flow_prior
from guides.torch_nets import GaussianEncoder
from guides.torch_pixelcnn import LocalPixelCNN
from zoo.config import ConfigError
from zoo.pyro_backend.objectives import FreeBitsELBO, elbo_terms
from zoo.pyro_backend.variant import PyroVariant


def check_square(x_dim: int) -> None:
    if math.isqrt(x_dim) ** 2 != x_dim:
        raise ConfigError(f"vlae's PixelCNN decoder needs square images; {x_dim} values per example are not a square")


class Variant(PyroVariant):
    def __init__(self, config, x_dim, num_classes=10):
        super().__init__(config, x_dim, num_classes)
        check_square(x_dim)
        self.encoder = GaussianEncoder(x_dim, config.hidden, config.z_dim, config.activation)
        self.decoder = LocalPixelCNN(
            x_dim, config.z_dim, tuple(reversed(config.hidden)), config.layers, config.filters, config.z_channels
        )
        self.prior_flow = autoregressive_flow(config.z_dim, config.flow_steps, config.flow_hidden)

    def prior(self, loc: torch.Tensor) -> dist.Distribution:
        """p(z) (vlae.1) with batch shape ``loc.shape[:-1]``; N(0, I) without flow steps."""
        if self.config.flow_steps == 0:
            return dist.Normal(torch.zeros_like(loc), 1.0).to_event(1)
        return flow_prior(self.prior_flow, loc)

    def model(self, x, **batch):
        pyro.module("decoder", self.decoder)
        pyro.module("prior_flow", self.prior_flow)
        with pyro.plate("data", x.shape[0], dim=-1):
            z = pyro.sample("z", self.prior(x.new_zeros(x.shape[0], self.config.z_dim)))
            logits = self.decoder(x, z)  # teacher forcing: logit i sees x_W(i) only
            pyro.sample("x", dist.Bernoulli(logits=logits, validate_args=False).to_event(1), obs=x)

    def guide(self, x, **batch):
        pyro.module("encoder", self.encoder)
        with pyro.plate("data", x.shape[0], dim=-1):
            loc, scale = self.encoder(x)
            pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    def objective(self):
        # The floor of the one latent group z: lambda nats per data dimension.
        return FreeBitsELBO(floor=self.config.free_bits * self.x_dim)

    # --- generation: pixel by pixel ------------------------------------------
    @torch.no_grad()
    def decode(self, z) -> torch.Tensor:
        """A draw ``x ~ p(x|z)`` by ancestral sampling (the paper's "decompression"):
        an autoregressive decoder has no one-shot mean."""
        return self.decoder.sample(z)

    @torch.no_grad()
    def sample(self, num_samples: int, device) -> torch.Tensor:
        """``z ~ p(z)`` (the flow's sequential inverse), then ``x ~ p(x|z)`` pixel by pixel."""
        z = self.prior(torch.zeros(num_samples, self.config.z_dim, device=device)).sample()
        return self.decoder.sample(z)

    # --- the lossy-code measurements ------------------------------------------
    @torch.no_grad()
    def code_metrics(self, x: torch.Tensor, block_size: int = 500) -> dict:
        """How the test code length splits between z and the decoder, from one draw
        of q(z|x) per image: ``kl_per_image`` (nats of z), ``reconstruction_nll``
        (nats left to the local decoder), ``kl_fraction`` (KL over their sum,
        i.e. over -ELBO)."""
        kl, nll = 0.0, 0.0
        for start in range(0, len(x), block_size):
            reconstruction, kl_sites = elbo_terms(self.model, self.guide, x=x[start : start + block_size])
            kl += float(sum(kl_sites.values()).sum())
            nll -= float(reconstruction.sum())
        kl, nll = kl / len(x), nll / len(x)
        return {"kl_per_image": kl, "reconstruction_nll": nll, "kl_fraction": kl / (kl + nll)}

    def extra_metrics(self, dataset, device) -> dict:
        return self.code_metrics(torch.as_tensor(dataset.x_test, device=device))
