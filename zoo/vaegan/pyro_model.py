"""VAE-GAN in Pyro: prior (vaegan.1), feature-space likelihood (vaegan.2), encoder
(vaegan.3), and the three losses of encoder, decoder and discriminator (vaegan.4-7),
each stepping its own optimizer.

Larsen, Sønderby, Larochelle & Winther, Autoencoding beyond pixels using a learned
similarity metric, ICML 2016. Shapes, loss weights and the equilibrium rule follow
the official code (andersbll/autoencoding_beyond_pixels, ``model/aegan.py``).

One forward pass per batch gives the three losses from the same parameters; each
is then differentiated with respect to its own group only (``PyroVariant.step``):

- the encoder's is the -ELBO of the card's model, Pyro's ``TraceMeanField_ELBO`` with
  the guide pinned to ``z = mu + sigma * eps``; the discriminator enters it through
  :func:`guides.torch_conv.detached_call`, so it gets no gradient from it;
- the decoder's mixes the feature error and the GAN term with ``gamma``; its
  discriminator is detached too, and its ``z`` carries no gradient to the encoder;
- the discriminator's sees detached fakes.

The equilibrium rule (vaegan.7) then skips the decoder's or the discriminator's
step. With ``similarity="pixel"`` the same encoder and decoder train as a plain VAE
on the pixel likelihood: the baseline of the paper's comparison.
"""

from __future__ import annotations


import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import TraceMeanField_ELBO

from guides.torch_conv import ConvDecoder, ConvEncoder, ConvNet, detached_call
from zoo.pyro_backend.objectives import (
    discriminator_cross_entropies,
    discriminator_loss,
    equilibrium_updates,
    generator_gan_loss,
    log_importance_weights,
)
from zoo.pyro_backend.variant import PyroVariant
from zoo.vaegan.config import discriminator_weights
from zoo.vaegan.config import GROUPS, image_shape_of


def pinned(program, **values):
    """``program`` with its sample sites ``values`` replayed at the given tensors.

    A reparameterised draw ``z = mu + sigma * eps`` from fixed noise: the ELBO is
    scored at that z, with its gradient through ``mu`` and ``sigma``, and the other
    losses of the step can reuse the same noise.
    """
    trace = poutine.Trace()
    for name, value in values.items():
        trace.add_node(name, name=name, type="sample", value=value, is_observed=False, infer={})
    return poutine.replay(program, trace=trace)


def pixel_likelihood(x_tilde, config) -> dist.Distribution:
    """(vaegan.8) ``p(x|z)`` in pixels around ``Dec(z)``: grey-level Bernoulli
    (``validate_args=False``: pixels in [0, 1] are a valid cross-entropy target) or a
    Gaussian of fixed scale."""
    if config.likelihood == "bernoulli":
        probs = x_tilde.clamp(1e-6, 1 - 1e-6)
        return dist.Bernoulli(probs=probs, validate_args=False).to_event(1)
    return dist.Normal(x_tilde, config.pixel_scale).to_event(1)


class Variant(PyroVariant):
    def __init__(self, config, x_dim, num_classes=10):
        super().__init__(config, x_dim, num_classes)
        self.image_shape = image_shape_of(x_dim, "vaegan")
        channels, hidden = tuple(config.channels), tuple(config.hidden)
        self.encoder = ConvEncoder(self.image_shape, channels, hidden, config.z_dim)
        self.decoder = ConvDecoder(self.image_shape, channels, tuple(reversed(hidden)), config.z_dim)
        self.discriminator = ConvNet(self.image_shape, channels, hidden, 1)

    # --- the math: model (vaegan.1, vaegan.2) and guide (vaegan.3) ------------------
    def features(self, x) -> torch.Tensor:
        """``Dis_l(x; psi-bar)``: the discriminator's last conv features, its weights detached."""
        return detached_call(self.discriminator, x)[1]

    def model(self, x, **batch):
        pyro.module("decoder", self.decoder)
        with pyro.plate("data", x.shape[0], dim=-1):
            z = pyro.sample("z", dist.Normal(x.new_zeros(x.shape[0], self.config.z_dim), 1.0).to_event(1))
            x_tilde = self.decoder(z)
            if self.config.similarity == "pixel":
                pyro.sample("x", pixel_likelihood(x_tilde, self.config), obs=x)
            else:
                features = self.features(x_tilde)
                pyro.sample("feat", dist.Normal(features, self.config.feature_scale).to_event(1), obs=self.features(x))

    def guide(self, x, **batch):
        pyro.module("encoder", self.encoder)
        with pyro.plate("data", x.shape[0], dim=-1):
            loc, scale = self.encoder(x)
            pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    def pixel_model(self, x, **batch):
        """(vaegan.1, vaegan.8): the same prior and decoder, scored in pixels; the
        model of the reported ELBO and importance-sampled log-likelihood."""
        pyro.module("decoder", self.decoder)
        with pyro.plate("data", x.shape[0], dim=-1):
            z = pyro.sample("z", dist.Normal(x.new_zeros(x.shape[0], self.config.z_dim), 1.0).to_event(1))
            pyro.sample("x", pixel_likelihood(self.decoder(z), self.config), obs=x)

    # --- the three losses (vaegan.4-6), summed over the batch ---------------------
    def encoder_loss(self, x, z) -> torch.Tensor:
        """(vaegan.4) ``L_prior + L_llike``: the -ELBO of the model at ``z`` (analytic KL)."""
        return TraceMeanField_ELBO().differentiable_loss(self.model, pinned(self.guide, z=z), x)

    def losses(self, x, eps, eps_prior) -> dict:
        """The three losses from one set of parameters, and D's mean cross-entropies.

        ``eps`` draws the posterior sample ``z = mu + sigma * eps``, ``eps_prior`` the
        prior sample ``z_p``.
        """
        config = self.config
        loc, scale = self.encoder(x)
        z = loc + scale * eps
        out = {"encoder": self.encoder_loss(x, z)}
        # The decoder's fakes: z carries no gradient to the encoder (the official
        # code's ScaleGradient(0) on z), the discriminator is detached.
        x_tilde = self.decoder(z.detach())
        fakes = [x_tilde, self.decoder(eps_prior)] if config.prior_fakes else [x_tilde]
        fake_logits, fake_features, _ = detached_call(self.discriminator, torch.cat(fakes))
        real_logits, real_features, _ = self.discriminator(x)
        # (vaegan.5) gamma * per-element feature error + (1 - gamma) * GAN term.
        error = 0.5 * (real_features.detach() - fake_features[: len(x)]).pow(2).mean(-1) / config.feature_scale**2
        gan = generator_gan_loss(fake_logits, config.saturating).reshape(len(fakes), len(x)).sum(0)
        out["decoder"] = (config.gamma * error + (1.0 - config.gamma) * gan).sum()
        # (vaegan.6) the discriminator on real images and detached fakes.
        d_fake_logits = self.discriminator(torch.cat(fakes).detach())[0].chunk(len(fakes))
        out["discriminator"] = discriminator_loss(real_logits, list(d_fake_logits), discriminator_weights(config)).sum()
        ce_real, ce_fake = discriminator_cross_entropies(real_logits, torch.cat(d_fake_logits))
        out["ce_real"], out["ce_fake"] = ce_real.mean().item(), ce_fake.mean().item()
        return out

    # --- training: three optimizers over disjoint parameter sets ----------------------
    def parameter_groups(self):
        return {name: getattr(self, name) for name in GROUPS}

    def train_step(self, batch: dict) -> float:
        """E, Dec and D on one batch; returns E's loss (vaegan.4), summed over the batch."""
        x = batch["x"]
        eps = torch.randn(x.shape[0], self.config.z_dim, device=x.device)
        eps_prior = torch.randn_like(eps)
        if self.config.similarity == "pixel":
            loc, scale = self.encoder(x)
            loss = TraceMeanField_ELBO().differentiable_loss(self.model, pinned(self.guide, z=loc + scale * eps), x)
            return self.step(loss, "encoder", "decoder")
        losses = self.losses(x, eps, eps_prior)
        update_dis, update_dec = equilibrium_updates(losses["ce_real"], losses["ce_fake"], self.config.margin)
        value = self.step(losses["encoder"], "encoder")
        if update_dec:
            self.step(losses["decoder"], "decoder")
        if update_dis:
            self.step(losses["discriminator"], "discriminator")
        return value

    # --- evaluation -------------------------------------------------------------------
    @torch.no_grad()
    def log_weights(self, num_particles: int, **batch) -> torch.Tensor:
        """Importance weights of the pixel model (vaegan.8), whatever the training similarity."""
        return log_importance_weights(self.pixel_model, self.guide, num_particles, **batch)

    def decode(self, z):
        return self.decoder(z)

    def extra_metrics(self, dataset, device) -> dict:
        from zoo import fd

        x = torch.as_tensor(fd.evaluation_images(dataset), device=device)
        reconstructions = torch.cat([self.reconstruct(x=block) for block in x.split(500)])
        samples = self.sample(len(x), device)
        return fd.sample_quality(dataset, x.cpu().numpy(), samples.cpu().numpy(), reconstructions.cpu().numpy(), "pyro")
