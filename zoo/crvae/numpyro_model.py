"""CRVAE in NumPyro: model (crvae.1, crvae.2), guide (crvae.3), objective (crvae.4, crvae.5).

Shang, Sohn & Tian, Channel-Recurrent Autoencoding for Image Modeling, WACV 2018.
The twin of :mod:`zoo.crvae.pyro_model`: T sites under ``handlers.scale(alpha_t)``,
LSTMs as ``flax.linen.RNN(LSTMCell)`` scanned over the blocks.
"""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro import handlers
from numpyro.infer import TraceMeanField_ELBO

from guides.flax_channel_recurrent import ChannelRecurrentDecoder, ChannelRecurrentEncoder
from guides.flax_nets import MLP
from zoo.crvae.config import METRIC_ROWS, site_names
from zoo.numpyro_backend.objectives import RegularisedELBO, code_regression_loss
from zoo.numpyro_backend.variant import NumPyroVariant, observation


class Variant(NumPyroVariant):
    def __init__(self, config, x_dim, num_classes=10):
        super().__init__(config, x_dim, num_classes)
        c = config
        self.encoder = ChannelRecurrentEncoder(c.hidden, c.z_dim, c.steps, c.lstm_hidden, c.recurrent, c.activation)
        self.decoder = ChannelRecurrentDecoder(tuple(reversed(c.hidden)), x_dim, c.z_dim, c.steps, c.lstm_hidden, c.recurrent, c.activation, c.decoder_residual)
        self.mi_head = MLP([c.mi_hidden, c.steps * c.lstm_hidden], c.activation)
        self._step_kls = jax.jit(self.step_kls)

    @property
    def block(self) -> int:
        return self.config.z_dim // self.config.steps

    def model(self, x, **batch):
        decoder = self.module("decoder", self.decoder, self.config.z_dim)
        if self.config.mi_weight > 0:
            self.module("mi_head", self.mi_head, self.x_dim)  # parameters only: the MI term applies it
        blocks = []
        with numpyro.plate("data", x.shape[0], dim=-1):
            prior = dist.Normal(jnp.zeros((x.shape[0], self.block)), 1.0).to_event(1)
            for name, alpha in zip(site_names(self.config.steps), self.config.step_kl_weights()):
                with handlers.scale(scale=alpha):
                    blocks.append(numpyro.sample(name, prior))
            numpyro.sample("x", observation(decoder(jnp.concatenate(blocks, -1)), self.config.likelihood), obs=x)

    def guide(self, x, **batch):
        encoder = self.module("encoder", self.encoder, self.x_dim)
        with numpyro.plate("data", x.shape[0], dim=-1):
            loc, scale = encoder(x)
            for t, (name, alpha) in enumerate(zip(site_names(self.config.steps), self.config.step_kl_weights())):
                block = slice(t * self.block, (t + 1) * self.block)
                with handlers.scale(scale=alpha):
                    numpyro.sample(name, dist.Normal(loc[..., block], scale[..., block]).to_event(1))

    # --- the MI regulariser (crvae.5) ------------------------------------------------
    def mi_loss(self, params, x, eps_q, eps_p):
        """As the Pyro twin: code regression on reconstructions and prior samples."""
        loc, scale = jax.lax.stop_gradient(self.apply(params, "encoder", self.encoder, x))
        decoder = {"params": params["decoder$params"]}
        total = jnp.zeros(())
        for z in (loc + scale * eps_q, eps_p):
            u_hat, z_hat = self.decoder.apply(decoder, z, method="transform")
            image = jax.nn.sigmoid(self.decoder.apply(decoder, z_hat, method=lambda m, v: m.net(v)))
            predicted = self.apply(params, "mi_head", self.mi_head, image)
            total = total + code_regression_loss(predicted, jax.lax.stop_gradient(u_hat), self.config.step_mi_weights())
        return total

    def objective(self):
        if self.config.mi_weight == 0:
            return TraceMeanField_ELBO()

        def regulariser(params, rng_key, x):
            q_key, p_key = jax.random.split(rng_key)
            shape = (x.shape[0], self.config.z_dim)
            return self.mi_loss(params, x, jax.random.normal(q_key, shape), jax.random.normal(p_key, shape))

        return RegularisedELBO(regulariser, self.config.mi_weight)

    # --- evaluation ----------------------------------------------------------------
    def step_kls(self, params, x):
        """KL(q(z_t|x) || N(0, I)) per datapoint and step, shape (B, T), unweighted."""
        loc, scale = self.apply(params, "encoder", self.encoder, x)
        kl = dist.kl_divergence(dist.Normal(loc, scale), dist.Normal(0.0, 1.0))
        return kl.reshape(*kl.shape[:-1], self.config.steps, self.block).sum(-1)

    def extra_metrics(self, params, dataset, rng_key) -> dict:
        x = jnp.asarray(self.test_data(dataset)["x"][:METRIC_ROWS])
        kls = np.asarray(self._step_kls(params, x), dtype=np.float64).mean(0)
        return {"kl_total": float(kls.sum()), "kl_step_min": float(kls.min()), **{f"kl_step_{t}": float(v) for t, v in enumerate(kls, start=1)}}
