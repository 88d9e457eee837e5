"""Adversarial and feature-matching terms (Pyro backend): VAE-GAN and CVAE-GAN.

- the discriminator's cross-entropies on real and fake images, weighted
  (:func:`discriminator_cross_entropies`, :func:`discriminator_loss`);
- the generator's GAN term, saturating ``log(1 - D)`` or non-saturating ``-log D``
  (:func:`generator_gan_loss`);
- Larsen et al.'s Gaussian log-likelihood in a feature space
  (:func:`feature_gaussian_log_likelihood`) and their equilibrium rule
  (:func:`equilibrium_updates`);
- Bao et al.'s pairwise and mean feature matching, per class
  (:func:`pairwise_feature_matching`, :func:`mean_feature_matching`,
  :func:`class_means`, :func:`class_mean_matching`).

Discriminators output one logit; probabilities go through ``softplus`` so
``log D`` and ``log(1 - D)`` stay finite for any logit. Everything is per
datapoint (or per batch for the mean matchings); the variants sum over the batch.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

__all__ = [
    "EQUILIBRIUM",
    "class_mean_matching",
    "class_means",
    "discriminator_cross_entropies",
    "discriminator_loss",
    "equilibrium_updates",
    "feature_gaussian_log_likelihood",
    "generator_gan_loss",
    "mean_feature_matching",
    "pairwise_feature_matching",
]

# Larsen et al.'s equilibrium: a discriminator at chance has cross-entropy ln 2 ~ 0.693
# on either side; their code centres the margin on 0.68.
EQUILIBRIUM = 0.68


def discriminator_cross_entropies(real_logits, fake_logits) -> tuple[torch.Tensor, torch.Tensor]:
    """``(-log D(x), -log(1 - D(x_fake)))`` elementwise, from the logits of D."""
    return F.softplus(-real_logits), F.softplus(fake_logits)


def discriminator_loss(real_logits, fake_logits: list, weights: tuple) -> torch.Tensor:
    """``w_0 (-log D(x)) + sum_i w_i (-log(1 - D(x_fake_i)))`` per datapoint.

    ``fake_logits`` is one logit tensor per set of fakes (reconstructions, prior
    samples), each as long as the real batch; ``weights`` has one weight for the real
    set and one per fake set.
    """
    loss = weights[0] * F.softplus(-real_logits)
    for weight, logits in zip(weights[1:], fake_logits):
        loss = loss + weight * F.softplus(logits)
    return loss.squeeze(-1)


def generator_gan_loss(fake_logits, saturating: bool = True) -> torch.Tensor:
    """The generator's GAN loss per fake: ``log(1 - D)`` (saturating, Larsen et al.'s
    code) or ``-log D`` (non-saturating, Goodfellow et al.'s practical variant)."""
    return (-F.softplus(fake_logits) if saturating else F.softplus(-fake_logits)).squeeze(-1)


def feature_gaussian_log_likelihood(features, predicted) -> torch.Tensor:
    """``log N(features; predicted, I)`` per datapoint, summed over the features:
    ``-1/2 ||f - f_hat||^2 - F/2 log 2 pi``."""
    size = features.shape[-1]
    return -0.5 * (features - predicted).pow(2).sum(-1) - 0.5 * size * math.log(2 * math.pi)


def equilibrium_updates(real_cross_entropy: float, fake_cross_entropy: float, margin: float,
                        equilibrium: float = EQUILIBRIUM) -> tuple[bool, bool]:
    """Larsen et al.'s rule: ``(update discriminator, update decoder)``.

    With the batch-mean cross-entropies of D on real and on fake images: skip D's
    update when either is below ``equilibrium - margin`` (D is too far ahead), skip
    the decoder's when either is above ``equilibrium + margin`` (D is too far
    behind); never skip both. A negative margin switches the rule off.
    """
    if margin < 0:
        return True, True
    update_dis = not (real_cross_entropy < equilibrium - margin or fake_cross_entropy < equilibrium - margin)
    update_dec = not (real_cross_entropy > equilibrium + margin or fake_cross_entropy > equilibrium + margin)
    if not (update_dis or update_dec):
        return True, True
    return update_dis, update_dec


def pairwise_feature_matching(features, predicted) -> torch.Tensor:
    """``1/2 ||f(x) - f(x')||^2`` per datapoint (Bao et al.'s L_G feature terms)."""
    return 0.5 * (features - predicted).pow(2).sum(-1)


def mean_feature_matching(real_mean, fake_features) -> torch.Tensor:
    """``1/2 ||E f(x) - E f(G(z))||^2`` over a batch of fakes (Bao et al.'s L_GD)."""
    return 0.5 * (real_mean - fake_features.mean(0)).pow(2).sum()


def class_means(features, labels, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class means of ``features`` (K, F) and the counts (K,); 0 for absent classes."""
    one_hot = F.one_hot(labels.long(), num_classes).to(features.dtype)
    counts = one_hot.sum(0)
    means = one_hot.T @ features / counts.clamp_min(1.0)[:, None]
    return means, counts


def class_mean_matching(real_means, fake_features, fake_labels, num_classes: int) -> torch.Tensor:
    """``1/2 sum_c ||m_c - E_{z_p} f(G(z_p, c))||^2`` over the classes the fakes have
    (Bao et al.'s L_GC); ``real_means`` (K, F) are the real classes' mean features."""
    fake_means, counts = class_means(fake_features, fake_labels, num_classes)
    present = (counts > 0).to(fake_features.dtype)
    return 0.5 * (present[:, None] * (real_means - fake_means).pow(2)).sum()
