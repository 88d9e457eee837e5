"""adVAE in Pyro: model (advae.1, advae.2), guide (advae.3), Gaussian transformer
(advae.4) and the three adversarial steps (advae.5-7), each with its own optimizer.

Wang, Du, Lin, Cui, Shen & Yang, adVAE: A self-adversarial variational autoencoder
with Gaussian anomaly prior knowledge for anomaly detection, Knowledge-Based Systems
190 (2020) 105187. Network shapes follow the official code (WangXuhongCN/adVAE).

Every batch runs three steps, in this order, each updating one network only:
T (transformer), G (generator), E (encoder). The inputs a step does not own are
computed without gradients, so no step can leak into another's parameters.
"""

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import TraceMeanField_ELBO
from torch import nn
from torch.distributions import kl_divergence
from torch.nn import functional as F

from guides.torch_nets import MLP, GaussianEncoder
from zoo.advae.config import hidden_widths
from zoo.anomaly import anomaly_metrics
from zoo.pyro_backend.variant import PyroVariant

GROUPS = ("transformer", "generator", "encoder")  # the order of the three steps
BLOCK = 200  # datapoints per block when scoring whole datasets
SAMPLE_CHUNK = 100  # posterior samples per decoder pass in the anomaly score
ELBO_PARTICLES = 10  # guide draws per datapoint of the secondary -ELBO score


# --- network blocks --------------------------------------------------------------


class Generator(nn.Module):
    """G: z -> G(z) in [0, 1]^D, the mean of p_G(x|z) (advae.2); sigmoid output as in the official code."""

    def __init__(self, z_dim: int, hidden, x_dim: int, activation: str = "relu"):
        super().__init__()
        self.net = MLP([z_dim, *hidden, x_dim], activation)

    def forward(self, z):
        return torch.sigmoid(self.net(z))


class GaussianTransformer(nn.Module):
    """T: (mu, log sigma^2) -> (mu_T, sigma_T) (advae.4): 2d -> 2d -> 2d (sigmoid) -> (mu_T, log sigma_T^2)."""

    def __init__(self, z_dim: int):
        super().__init__()
        self.net = MLP([2 * z_dim, 2 * z_dim, 2 * z_dim, 2 * z_dim], "sigmoid")
        self.z_dim = z_dim

    def forward(self, loc, scale):
        out = self.net(torch.cat([loc, 2 * scale.log()], dim=-1))
        loc_t, log_var_t = out.split(self.z_dim, dim=-1)
        return loc_t, torch.exp(0.5 * log_var_t)


def standard_normal_kl(loc, scale):
    """KL(N(loc, scale^2) || N(0, I)) per datapoint, summed over the latent dimensions."""
    return kl_divergence(dist.Normal(loc, scale), dist.Normal(torch.zeros_like(loc), 1.0)).sum(-1)


# --- the variant -------------------------------------------------------------------


class Variant(PyroVariant):
    def __init__(self, config, x_dim, num_classes=10):
        super().__init__(config, x_dim, num_classes)
        hidden = hidden_widths(config, x_dim)
        self.encoder = GaussianEncoder(x_dim, hidden, config.z_dim, config.activation)
        self.generator = Generator(config.z_dim, tuple(reversed(hidden)), x_dim, config.activation)
        self.transformer = GaussianTransformer(config.z_dim)

    # --- the math: model (advae.1, advae.2) and guide (advae.3) ------------------------
    def likelihood(self, z) -> dist.Distribution:
        return dist.Normal(self.generator(z), self.config.fixed_scale).to_event(1)

    def model(self, x, **batch):
        pyro.module("generator", self.generator)
        with pyro.plate("data", x.shape[0], dim=-1):
            z = pyro.sample("z", dist.Normal(x.new_zeros(x.shape[0], self.config.z_dim), 1.0).to_event(1))
            pyro.sample("x", self.likelihood(z), obs=x)

    def guide(self, x, **batch):
        pyro.module("encoder", self.encoder)
        with pyro.plate("data", x.shape[0], dim=-1):
            loc, scale = self.encoder(x)
            pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    # --- anomalous latents (advae.4) -------------------------------------------------
    def anomalous_latent(self, loc, scale, eps_t):
        """z_T = mu_T + sigma_T * eps_T with (mu_T, sigma_T) = T(mu, sigma) and fixed noise eps_T."""
        loc_t, scale_t = self.transformer(loc, scale)
        return loc_t + scale_t * eps_t

    def hinge(self, margin, value):
        """gamma * [margin - value]^+ per datapoint."""
        return self.config.gamma * F.relu(margin - value)

    # --- the three losses, summed over the batch --------------------------------------
    def transformer_loss(self, x):
        """(advae.5) KL(N(mu_T, sigma_T^2) || N(mu, sigma^2)) + gamma [m_z - KL]^+; E is fixed."""
        with torch.no_grad():
            loc, scale = self.encoder(x)
        loc_t, scale_t = self.transformer(loc, scale)
        kl_t = kl_divergence(dist.Normal(loc_t, scale_t), dist.Normal(loc, scale)).sum(-1)
        return (kl_t + self.hinge(self.config.m_z, kl_t)).sum()

    def generator_loss(self, x, eps, eps_t):
        """(advae.6) -log p_G(x|z) + gamma [m_x - ||G(z) - G(z_T)||^2]^+; E and T are fixed."""
        with torch.no_grad():
            loc, scale = self.encoder(x)
            z, z_t = loc + scale * eps, self.anomalous_latent(loc, scale, eps_t)
        x_rec, x_anomalous = self.generator(z), self.generator(z_t)
        nll = -dist.Normal(x_rec, self.config.fixed_scale).to_event(1).log_prob(x)
        separation = (x_rec - x_anomalous).pow(2).sum(-1)
        return (nll + self.hinge(self.config.m_x, separation)).sum()

    def encoder_loss(self, x, eps_t):
        """(advae.7) -ELBO(x) + gamma [m_z - KL(q_E(z|G(z_T)) || p(z))]^+; G and T are fixed.

        The -ELBO is Pyro's TraceMeanField_ELBO on the model and guide (analytic KL).
        """
        negative_elbo = TraceMeanField_ELBO().differentiable_loss(self.model, self.guide, x)
        with torch.no_grad():
            x_anomalous = self.generator(self.anomalous_latent(*self.encoder(x), eps_t))
        kl_anomalous = standard_normal_kl(*self.encoder(x_anomalous))
        return negative_elbo + self.hinge(self.config.m_z, kl_anomalous).sum()

    # --- training: three optimizers over disjoint parameter sets ----------------------
    def parameter_groups(self) -> dict[str, nn.Module]:
        return {name: getattr(self, name) for name in GROUPS}

    def train_step(self, batch: dict) -> float:
        """T, then G, then E on one batch; returns E's loss (advae.7), summed over the batch."""
        x = batch["x"]
        eps = torch.randn(x.shape[0], self.config.z_dim, device=x.device)
        eps_t = torch.randn_like(eps)
        self.step(self.transformer_loss(x), "transformer")
        self.step(self.generator_loss(x, eps, eps_t), "generator")
        return self.step(self.encoder_loss(x, eps_t), "encoder")

    # --- evaluation -------------------------------------------------------------------
    def decode(self, z):
        return self.generator(z)

    @torch.no_grad()
    def anomaly_score(self, x, num_samples: int) -> torch.Tensor:
        """(advae.8) ||(1/L) sum_l G(z_l) - x||^2 with z_l ~ q_E(z|x), L = ``num_samples``."""
        loc, scale = self.encoder(x)
        total = torch.zeros_like(x)
        for done in range(0, num_samples, SAMPLE_CHUNK):
            chunk = min(SAMPLE_CHUNK, num_samples - done)
            z = loc + scale * torch.randn(chunk, *loc.shape, device=x.device)
            total += self.generator(z).sum(0)
        return (total / num_samples - x).pow(2).sum(-1)

    @torch.no_grad()
    def anomaly_scores(self, x) -> dict:
        """The paper's score (advae.8) and the -ELBO, per datapoint; larger = more anomalous."""
        recon, elbo = [], []
        for i in range(0, len(x), BLOCK):
            block = x[i : i + BLOCK]
            recon.append(self.anomaly_score(block, self.config.score_samples))
            elbo.append(-self.log_weights(ELBO_PARTICLES, x=block).mean(0))
        return {"recon": torch.cat(recon), "elbo": torch.cat(elbo)}

    def extra_metrics(self, dataset, device) -> dict:
        if dataset.normal_class is None:
            return {}
        x = torch.as_tensor(self.test_data(dataset)["x"], device=device)
        scores = {name: s.double().cpu().numpy() for name, s in self.anomaly_scores(x).items()}
        return anomaly_metrics(scores, dataset.y_test, dataset.normal_class)
