"""CRVAE in Pyro: model (crvae.1, crvae.2), guide (crvae.3), objective (crvae.4, crvae.5).

Shang, Sohn & Tian, Channel-Recurrent Autoencoding for Image Modeling, WACV 2018;
the structure follows the authors' code (WendyShang/crVAE). The latent is T
sites ``z_1..z_T``, each under ``poutine.scale(alpha_t)`` in model *and* guide, so
``TraceMeanField_ELBO`` weights each step's analytic KL by alpha_t. The z_t are
independent in both p and q (the recurrence is a deterministic transform in the
decoder and produces only the scales in the encoder), so no ``pyro.markov`` is
needed.
"""

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import TraceMeanField_ELBO
from torch.distributions import kl_divergence

from guides.torch_channel_recurrent import ChannelRecurrentDecoder, ChannelRecurrentEncoder
from guides.torch_nets import MLP
from zoo.crvae.config import METRIC_ROWS, site_names
from zoo.pyro_backend.objectives import RegularisedELBO, code_regression_loss
from zoo.pyro_backend.variant import PyroVariant, observation



class Variant(PyroVariant):
    def __init__(self, config, x_dim, num_classes=10):
        super().__init__(config, x_dim, num_classes)
        c = config
        self.encoder = ChannelRecurrentEncoder(x_dim, c.hidden, c.z_dim, c.steps, c.lstm_hidden, c.recurrent, c.activation)
        self.decoder = ChannelRecurrentDecoder(c.z_dim, tuple(reversed(c.hidden)), x_dim, c.steps, c.lstm_hidden, c.recurrent, c.activation, c.decoder_residual)
        if c.mi_weight > 0:
            # r_omega: image -> the decoder LSTM's outputs u^ (crvae.5).
            self.mi_head = MLP([x_dim, c.mi_hidden, c.steps * c.lstm_hidden], c.activation)

    @property
    def block(self) -> int:
        return self.config.z_dim // self.config.steps

    def model(self, x, **batch):
        pyro.module("decoder", self.decoder)
        if self.config.mi_weight > 0:
            pyro.module("mi_head", self.mi_head)  # parameters only: the MI term applies it
        blocks = []
        with pyro.plate("data", x.shape[0], dim=-1):
            prior = dist.Normal(x.new_zeros(x.shape[0], self.block), 1.0).to_event(1)
            for name, alpha in zip(site_names(self.config.steps), self.config.step_kl_weights()):
                with poutine.scale(scale=alpha):
                    blocks.append(pyro.sample(name, prior))
            pyro.sample("x", observation(self.decoder(torch.cat(blocks, -1)), self.config.likelihood), obs=x)

    def guide(self, x, **batch):
        pyro.module("encoder", self.encoder)
        with pyro.plate("data", x.shape[0], dim=-1):
            loc, scale = self.encoder(x)
            for t, (name, alpha) in enumerate(zip(site_names(self.config.steps), self.config.step_kl_weights())):
                block = slice(t * self.block, (t + 1) * self.block)
                with poutine.scale(scale=alpha):
                    pyro.sample(name, dist.Normal(loc[..., block], scale[..., block]).to_event(1))

    # --- the MI regulariser (crvae.5) ------------------------------------------------
    def mi_loss(self, x, eps_q, eps_p) -> torch.Tensor:
        """``sum_t w_t ||r(x^) - u^_t||^2`` on reconstructions (z = mu + sigma eps_q) and on
        prior samples (z = eps_p), summed over the batch. The code u^ is the target
        (detached) and z is fixed: the term trains the decoder and the head."""
        with torch.no_grad():
            loc, scale = self.encoder(x)
        total = x.new_zeros(())
        for z in (loc + scale * eps_q, eps_p):
            u_hat, z_hat = self.decoder.transform(z)
            image = torch.sigmoid(self.decoder.net(z_hat))
            total = total + code_regression_loss(self.mi_head(image), u_hat.detach(), self.config.step_mi_weights())
        return total

    def objective(self):
        if self.config.mi_weight == 0:
            return TraceMeanField_ELBO()

        def regulariser(x):
            shape = (x.shape[0], self.config.z_dim)
            return self.mi_loss(x, torch.randn(shape, device=x.device), torch.randn(shape, device=x.device))

        return RegularisedELBO(regulariser, self.config.mi_weight)

    # --- evaluation ----------------------------------------------------------------
    @torch.no_grad()
    def step_kls(self, x) -> torch.Tensor:
        """KL(q(z_t|x) || N(0, I)) per datapoint and step, shape (B, T), unweighted."""
        loc, scale = self.encoder(x)
        kl = kl_divergence(dist.Normal(loc, scale), dist.Normal(torch.zeros_like(loc), 1.0))
        return kl.reshape(*kl.shape[:-1], self.config.steps, self.block).sum(-1)

    def extra_metrics(self, dataset, device) -> dict:
        x = torch.as_tensor(self.test_data(dataset)["x"][:METRIC_ROWS], device=device)
        kls = self.step_kls(x).mean(0).double().cpu().numpy()
        return {"kl_total": float(kls.sum()), "kl_step_min": float(kls.min()), **{f"kl_step_{t}": float(v) for t, v in enumerate(kls, start=1)}}
