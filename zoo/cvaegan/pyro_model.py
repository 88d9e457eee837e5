"""CVAE-GAN in Pyro: prior (cvaegan.1), generator (cvaegan.2), encoder (cvaegan.3),
and the losses L_KL, L_G, L_GD, L_GC (cvaegan.4-6) of encoder and generator, L_D and
L_C (cvaegan.7, cvaegan.8) of discriminator and classifier, four optimizers.

Bao, Chen, Wen, Li & Hua, CVAE-GAN: Fine-Grained Image Generation through Asymmetric
Training, ICCV 2017. No official code is known; the structure follows the paper's
Algorithm 1 and ``tatsy/keras-generative`` (reconstructions counted as fakes).

The encoder's and generator's loss is the -ELBO of the card's model: the KL weighted
``lambda_1`` and the pixel term ``lambda_2`` by ``poutine.scale``, the pairwise
feature terms a ``pyro.factor`` per datapoint, the mean-matching terms on prior
samples a ``pyro.factor`` for the batch. Discriminator and classifier enter those
terms with detached weights (:func:`guides.torch_conv.detached_call`), so only the
cross-entropies L_D and L_C train them: the paper's asymmetry. The real images'
mean features are running averages (buffers, updated once per training batch
before the losses), per class for the classifier.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import TraceMeanField_ELBO
from torch.nn import functional as F

from guides.torch_conv import ConvDecoder, ConvEncoder, ConvNet, detached_call
from zoo.pyro_backend.objectives import (
    class_mean_matching,
    class_means,
    discriminator_loss,
    log_importance_weights,
    mean_feature_matching,
    pairwise_feature_matching,
)
from zoo.pyro_backend.variant import PyroVariant
from zoo.vaegan.pyro_model import image_shape_of, pinned
from zoo.cvaegan.config import GROUPS, SAMPLES_PER_CLASS


def running_mean(old, new, seen, momentum: float):
    """``momentum * old + (1 - momentum) * new`` where ``seen``, else ``new``."""
    blended = momentum * old + (1.0 - momentum) * new
    return torch.where(seen, blended, new)


class Variant(PyroVariant):
    def __init__(self, config, x_dim, num_classes=10):
        super().__init__(config, x_dim, num_classes)
        self.image_shape = image_shape_of(x_dim, "cvaegan")
        channels, hidden = tuple(config.channels), tuple(config.hidden)
        self.encoder = ConvEncoder(self.image_shape, channels, hidden, config.z_dim, num_classes)
        self.generator = ConvDecoder(self.image_shape, channels, tuple(reversed(hidden)), config.z_dim, num_classes)
        self.discriminator = ConvNet(self.image_shape, channels, hidden, 1)
        self.classifier = ConvNet(self.image_shape, channels, hidden, num_classes)
        # Running means of the real images' features (cvaegan.6): D's overall, C's per class.
        self.register_buffer("d_mean", torch.zeros(self.discriminator.flat_size))
        self.register_buffer("d_seen", torch.zeros((), dtype=torch.bool))
        self.register_buffer("c_means", torch.zeros(num_classes, hidden[-1]))
        self.register_buffer("c_seen", torch.zeros(num_classes, dtype=torch.bool))

    # --- data ---------------------------------------------------------------------
    def training_data(self, dataset) -> dict:
        return {"x": dataset.x_train, "y": dataset.y_train}

    def test_data(self, dataset) -> dict:
        return {"x": dataset.x_test, "y": dataset.y_test}

    def one_hot(self, y, like):
        return F.one_hot(y.long(), self.num_classes).to(like.dtype)

    # --- the math: model (cvaegan.1, cvaegan.2, cvaegan.4-6) and guide (cvaegan.3) ----
    def conditional_vae(self, x, y, data=None, **batch):
        """(cvaegan.1, cvaegan.2) z ~ N(0, I) weighted lambda_1, x ~ N(G(z, c), s^2 I)
        weighted lambda_2 (both weights drop out of the importance weights)."""
        pyro.module("generator", self.generator)
        c = self.one_hot(y, x)
        with data or pyro.plate("data", x.shape[0], dim=-1):
            with poutine.scale(scale=self.config.lambda_kl):
                z = pyro.sample("z", dist.Normal(x.new_zeros(x.shape[0], self.config.z_dim), 1.0).to_event(1))
            x_rec = self.generator(z, c.expand(*z.shape[:-1], c.shape[-1]))
            with poutine.scale(scale=self.config.lambda_g):
                pyro.sample("x", dist.Normal(x_rec, self.config.pixel_scale).to_event(1), obs=x)
        return x_rec

    def model(self, x, y, eps_prior=None, **batch):
        data = pyro.plate("data", x.shape[0], dim=-1)  # one plate, entered twice
        x_rec = self.conditional_vae(x, y, data)
        if not self.config.adversarial:
            return
        config = self.config
        # (cvaegan.4) pairwise feature matching of x and its reconstruction, D and C detached.
        _, d_real, _ = detached_call(self.discriminator, x)
        _, d_rec, _ = detached_call(self.discriminator, x_rec)
        _, _, c_real = detached_call(self.classifier, x)
        _, _, c_rec = detached_call(self.classifier, x_rec)
        with data:
            pyro.factor("pairwise", -config.lambda_g * (pairwise_feature_matching(d_real, d_rec) + pairwise_feature_matching(c_real, c_rec)))
        # (cvaegan.5, cvaegan.6) mean matching of prior samples G(z_p, c), c the batch's
        # classes; a batch statistic, times B so it keeps its weight in the summed loss.
        if eps_prior is None:
            eps_prior = torch.randn(x.shape[0], config.z_dim, device=x.device)
        x_prior = self.generator(eps_prior, self.one_hot(y, x))
        l_gd = mean_feature_matching(self.d_mean, detached_call(self.discriminator, x_prior)[1])
        l_gc = class_mean_matching(self.c_means, detached_call(self.classifier, x_prior)[2], y, self.num_classes)
        pyro.factor("mean_matching", -x.shape[0] * (config.lambda_gd * l_gd + config.lambda_gc * l_gc))

    def guide(self, x, y, **batch):
        pyro.module("encoder", self.encoder)
        with pyro.plate("data", x.shape[0], dim=-1):
            loc, scale = self.encoder(x, self.one_hot(y, x))
            with poutine.scale(scale=self.config.lambda_kl):
                pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    # --- the losses -------------------------------------------------------------------
    @torch.no_grad()
    def update_feature_means(self, x, y) -> None:
        """Blend this batch's real features into the running means (cvaegan.5, cvaegan.6)."""
        momentum = self.config.feature_momentum
        d_features = self.discriminator(x)[1]
        self.d_mean.copy_(running_mean(self.d_mean, d_features.mean(0), self.d_seen, momentum))
        self.d_seen.fill_(True)
        means, counts = class_means(self.classifier(x)[2], y, self.num_classes)
        present = counts > 0
        updated = running_mean(self.c_means, means, self.c_seen[:, None], momentum)
        self.c_means.copy_(torch.where(present[:, None], updated, self.c_means))
        self.c_seen.logical_or_(present)

    def losses(self, x, y, eps, eps_prior) -> dict:
        """The three losses from one set of parameters: E and G's -ELBO (cvaegan.4-6),
        D's (cvaegan.7) and C's (cvaegan.8) cross-entropies, summed over the batch."""
        c = self.one_hot(y, x)
        loc, scale = self.encoder(x, c)
        z = loc + scale * eps
        guide = pinned(self.guide, z=z)
        out = {"encoder_generator": TraceMeanField_ELBO().differentiable_loss(self.model, guide, x, y, eps_prior=eps_prior)}
        if not self.config.adversarial:
            return out
        with torch.no_grad():
            fakes = [self.generator(eps_prior, c)]
            if self.config.recon_as_fake:
                fakes.insert(0, self.generator(z, c))
        real_logits = self.discriminator(x)[0]
        fake_logits = self.discriminator(torch.cat(fakes))[0].chunk(len(fakes))
        out["discriminator"] = discriminator_loss(real_logits, list(fake_logits), (1.0,) * (1 + len(fakes))).sum()
        out["classifier"] = F.cross_entropy(self.classifier(x)[0], y.long(), reduction="sum")
        return out

    def parameter_groups(self):
        return {name: getattr(self, name) for name in GROUPS}

    def train_step(self, batch: dict) -> float:
        """Running means, then E+G, C and D on one batch; returns E+G's loss."""
        x, y = batch["x"], batch["y"]
        eps = torch.randn(x.shape[0], self.config.z_dim, device=x.device)
        eps_prior = torch.randn_like(eps)
        if self.config.adversarial:
            self.update_feature_means(x, y)
        losses = self.losses(x, y, eps, eps_prior)
        value = self.step(losses["encoder_generator"], "encoder", "generator")
        if self.config.adversarial:
            self.step(losses["classifier"], "classifier")
            self.step(losses["discriminator"], "discriminator")
        return value

    # --- evaluation and pictures ---------------------------------------------------------
    @torch.no_grad()
    def log_weights(self, num_particles: int, **batch) -> torch.Tensor:
        """Importance weights of the conditional VAE part (unscaled): a bound on log p(x|c)."""
        return log_importance_weights(self.conditional_vae, self.guide, num_particles, **batch)

    def encode(self, x, y, **batch):
        return self.encoder(x, self.one_hot(y, x))[0]

    @torch.no_grad()
    def reconstruct(self, x, y, **batch):
        return self.generator(self.encode(x, y), self.one_hot(y, x))

    @torch.no_grad()
    def generate(self, labels, device) -> torch.Tensor:
        """``G(z_p, c)`` for the classes ``labels``, ``z_p ~ N(0, I)``."""
        labels = torch.as_tensor(labels, device=device)
        z = torch.randn(len(labels), self.config.z_dim, device=device)
        return self.generator(z, F.one_hot(labels.long(), self.num_classes).to(z.dtype))

    @torch.no_grad()
    def sample(self, num_samples: int, device) -> torch.Tensor:
        """A class-conditional grid: row r of ten columns shows class r."""
        return self.generate(torch.arange(num_samples) // 10 % self.num_classes, device)

    def extra_metrics(self, dataset, device) -> dict:
        from zoo import fd

        x = fd.evaluation_images(dataset)
        y = torch.as_tensor(dataset.y_test[: len(x)], device=device)
        xt = torch.as_tensor(x, device=device)
        reconstructions = torch.cat([self.reconstruct(a, b) for a, b in zip(xt.split(500), y.split(500))])
        labels = torch.arange(self.num_classes).repeat_interleave(SAMPLES_PER_CLASS)
        samples = self.generate(labels, device).cpu().numpy()
        quality = fd.sample_quality(dataset, x, samples, reconstructions.cpu().numpy(), "pyro")
        return {**quality, **fd.class_fidelity(dataset, samples, labels.numpy(), "pyro")}
