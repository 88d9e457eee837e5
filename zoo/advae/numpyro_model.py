"""adVAE in NumPyro: model (advae.1, advae.2), guide (advae.3), Gaussian transformer
(advae.4) and the three adversarial steps (advae.5-7), each with its own optax optimizer.

Wang, Du, Lin, Cui, Shen & Yang, adVAE: A self-adversarial variational autoencoder
with Gaussian anomaly prior knowledge for anomaly detection, Knowledge-Based Systems
190 (2020) 105187. Network shapes follow the official code (WangXuhongCN/adVAE).

The twin of :mod:`zoo.advae.pyro_model`. The training state is a pytree (parameters
of the three networks, their three optimizer states, a key), and ``update`` is pure,
so the trainer jit-compiles whole epochs. Each step differentiates its loss with
respect to its own network's parameters only; the inputs it does not own go through
``stop_gradient``.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.infer import TraceMeanField_ELBO

from guides.flax_nets import MLP, GaussianEncoder
from zoo.advae.config import hidden_widths
from zoo.anomaly import anomaly_metrics
from zoo.numpyro_backend.variant import NumPyroVariant, standard_normal

GROUPS = ("transformer", "generator", "encoder")  # the order of the three steps
BLOCK = 200  # datapoints per block when scoring whole datasets
SAMPLE_CHUNK = 100  # posterior samples per decoder pass in the anomaly score
ELBO_PARTICLES = 10  # guide draws per datapoint of the secondary -ELBO score


# --- network blocks --------------------------------------------------------------


class Generator(nn.Module):
    """G: z -> G(z) in [0, 1]^D (advae.2); mirrors :class:`zoo.advae.pyro_model.Generator`."""

    hidden: tuple
    x_dim: int
    activation: str = "relu"

    @nn.compact
    def __call__(self, z):
        return jax.nn.sigmoid(MLP([*self.hidden, self.x_dim], self.activation, name="net")(z))


class GaussianTransformer(nn.Module):
    """T: (mu, sigma) -> (mu_T, sigma_T) (advae.4), on the input [mu, log sigma^2]."""

    z_dim: int

    @nn.compact
    def __call__(self, loc, scale):
        out = MLP([2 * self.z_dim] * 3, "sigmoid", name="net")(jnp.concatenate([loc, 2 * jnp.log(scale)], -1))
        loc_t, log_var_t = jnp.split(out, 2, axis=-1)
        return loc_t, jnp.exp(0.5 * log_var_t)


def normal_kl(loc_q, scale_q, loc_p, scale_p):
    """KL(N(loc_q, scale_q^2) || N(loc_p, scale_p^2)) per datapoint, summed over the last axis."""
    return dist.kl_divergence(dist.Normal(loc_q, scale_q), dist.Normal(loc_p, scale_p)).sum(-1)


# --- the variant -------------------------------------------------------------------


class Variant(NumPyroVariant):
    def __init__(self, config, x_dim, num_classes=10):
        super().__init__(config, x_dim, num_classes)
        hidden = hidden_widths(config, x_dim)
        self.encoder = GaussianEncoder(hidden, config.z_dim, config.activation)
        self.generator = Generator(tuple(reversed(hidden)), x_dim, config.activation)
        self.transformer = GaussianTransformer(config.z_dim)
        self._anomaly_score = jax.jit(self.anomaly_score, static_argnums=3)
        self._log_weights = jax.jit(self.log_weights, static_argnums=2)

    # --- the math: model (advae.1, advae.2) and guide (advae.3) ------------------------
    def model(self, x, **batch):
        generator = self.module("generator", self.generator, self.config.z_dim)
        with numpyro.plate("data", x.shape[0], dim=-1):
            z = numpyro.sample("z", standard_normal(x.shape[0], self.config.z_dim))
            numpyro.sample("x", dist.Normal(generator(z), self.config.fixed_scale).to_event(1), obs=x)

    def guide(self, x, **batch):
        encoder = self.module("encoder", self.encoder, self.x_dim)
        with numpyro.plate("data", x.shape[0], dim=-1):
            loc, scale = encoder(x)
            numpyro.sample("z", dist.Normal(loc, scale).to_event(1))

    # --- network evaluation with a parameter dict ----------------------------------------
    def posterior(self, params, x):
        return self.apply(params, "encoder", self.encoder, x)

    def generate(self, params, z):
        return self.apply(params, "generator", self.generator, z)

    def anomalous_latent(self, params, loc, scale, eps_t):
        """z_T = mu_T + sigma_T * eps_T with (mu_T, sigma_T) = T(mu, sigma) (advae.4)."""
        loc_t, scale_t = self.apply(params, "transformer", self.transformer, loc, scale)
        return loc_t + scale_t * eps_t

    def hinge(self, margin, value):
        """gamma * [margin - value]^+ per datapoint."""
        return self.config.gamma * jax.nn.relu(margin - value)

    # --- the three losses, summed over the batch --------------------------------------
    def transformer_loss(self, params, x):
        """(advae.5) KL(N(mu_T, sigma_T^2) || N(mu, sigma^2)) + gamma [m_z - KL]^+; E is fixed."""
        loc, scale = jax.lax.stop_gradient(self.posterior(params, x))
        loc_t, scale_t = self.apply(params, "transformer", self.transformer, loc, scale)
        kl_t = normal_kl(loc_t, scale_t, loc, scale)
        return jnp.sum(kl_t + self.hinge(self.config.m_z, kl_t))

    def generator_loss(self, params, x, eps, eps_t):
        """(advae.6) -log p_G(x|z) + gamma [m_x - ||G(z) - G(z_T)||^2]^+; E and T are fixed."""
        loc, scale = self.posterior(params, x)
        z = jax.lax.stop_gradient(loc + scale * eps)
        z_t = jax.lax.stop_gradient(self.anomalous_latent(params, loc, scale, eps_t))
        x_rec, x_anomalous = self.generate(params, z), self.generate(params, z_t)
        nll = -dist.Normal(x_rec, self.config.fixed_scale).to_event(1).log_prob(x)
        separation = jnp.sum((x_rec - x_anomalous) ** 2, -1)
        return jnp.sum(nll + self.hinge(self.config.m_x, separation))

    def encoder_loss(self, params, x, eps_t, rng_key):
        """(advae.7) -ELBO(x) + gamma [m_z - KL(q_E(z|G(z_T)) || p(z))]^+; G and T are fixed.

        The -ELBO is NumPyro's TraceMeanField_ELBO on the model and guide (analytic KL).
        """
        negative_elbo = TraceMeanField_ELBO().loss(rng_key, params, self.model, self.guide, x=x)
        z_t = self.anomalous_latent(params, *self.posterior(params, x), eps_t)
        x_anomalous = jax.lax.stop_gradient(self.generate(params, z_t))
        loc_a, scale_a = self.posterior(params, x_anomalous)
        kl_anomalous = normal_kl(loc_a, scale_a, 0.0, 1.0)
        return negative_elbo + jnp.sum(self.hinge(self.config.m_z, kl_anomalous))

    # --- training: three optimizers over disjoint parameter sets ----------------------
    def parameter_groups(self) -> tuple[str, ...]:
        return GROUPS

    def init_state(self, rng_key, batch):
        keys = jax.random.split(rng_key, 4)
        z = jnp.zeros((1, self.config.z_dim))
        params = {
            "encoder$params": self.encoder.init(keys[0], jnp.zeros((1, self.x_dim)))["params"],
            "generator$params": self.generator.init(keys[1], z)["params"],
            "transformer$params": self.transformer.init(keys[2], z, jnp.ones_like(z))["params"],
        }
        return self.grouped_state(params, keys[3])

    def update(self, state, batch):
        """T, then G, then E on one batch; returns E's loss (advae.7), summed over the batch."""
        x = batch["x"]
        rng_key, eps_key, eps_t_key, elbo_key = jax.random.split(state.rng_key, 4)
        eps = jax.random.normal(eps_key, (x.shape[0], self.config.z_dim))
        eps_t = jax.random.normal(eps_t_key, eps.shape)
        state = state._replace(rng_key=rng_key)
        state, _ = self.step(state, lambda p: self.transformer_loss(p, x), "transformer")
        state, _ = self.step(state, lambda p: self.generator_loss(p, x, eps, eps_t), "generator")
        return self.step(state, lambda p: self.encoder_loss(p, x, eps_t, elbo_key), "encoder")

    # --- evaluation -------------------------------------------------------------------
    def decode(self, params, z):
        return self.generate(params, z)

    def anomaly_score(self, params, rng_key, x, num_samples: int):
        """(advae.8) ||(1/L) sum_l G(z_l) - x||^2 with z_l ~ q_E(z|x), L = ``num_samples``."""
        loc, scale = self.posterior(params, x)
        total = jnp.zeros_like(x)
        for done in range(0, num_samples, SAMPLE_CHUNK):
            chunk = min(SAMPLE_CHUNK, num_samples - done)
            z = loc + scale * jax.random.normal(jax.random.fold_in(rng_key, done), (chunk, *loc.shape))
            total = total + self.generate(params, z).sum(0)
        return jnp.sum((total / num_samples - x) ** 2, -1)

    def anomaly_scores(self, params, rng_key, x) -> dict:
        """The paper's score (advae.8) and the -ELBO, per datapoint; larger = more anomalous."""
        recon, elbo = [], []
        for i in range(0, len(x), BLOCK):
            block = jnp.asarray(x[i : i + BLOCK])
            rng_key, score_key, elbo_key = jax.random.split(rng_key, 3)
            recon.append(self._anomaly_score(params, score_key, block, self.config.score_samples))
            elbo.append(-self._log_weights(params, elbo_key, ELBO_PARTICLES, x=block).mean(0))
        return {"recon": jnp.concatenate(recon), "elbo": jnp.concatenate(elbo)}

    def extra_metrics(self, params, dataset, rng_key) -> dict:
        if dataset.normal_class is None:
            return {}
        scores = self.anomaly_scores(params, rng_key, self.test_data(dataset)["x"])
        scores = {name: np.asarray(s, dtype=np.float64) for name, s in scores.items()}
        return anomaly_metrics(scores, dataset.y_test, dataset.normal_class)
