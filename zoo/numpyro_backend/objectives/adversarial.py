"""Adversarial and feature-matching terms (NumPyro backend), the twin of
:mod:`zoo.pyro_backend.objectives.adversarial` function for function.

The equilibrium rule returns traced booleans here, so a jitted epoch can apply it
with ``jnp.where`` on a group's parameters and optimizer state.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

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

EQUILIBRIUM = 0.68


def discriminator_cross_entropies(real_logits, fake_logits):
    """``(-log D(x), -log(1 - D(x_fake)))`` elementwise, from the logits of D."""
    return jax.nn.softplus(-real_logits), jax.nn.softplus(fake_logits)


def discriminator_loss(real_logits, fake_logits: list, weights: tuple):
    """``w_0 (-log D(x)) + sum_i w_i (-log(1 - D(x_fake_i)))`` per datapoint."""
    loss = weights[0] * jax.nn.softplus(-real_logits)
    for weight, logits in zip(weights[1:], fake_logits):
        loss = loss + weight * jax.nn.softplus(logits)
    return loss.squeeze(-1)


def generator_gan_loss(fake_logits, saturating: bool = True):
    """``log(1 - D)`` (saturating) or ``-log D`` (non-saturating) per fake."""
    return (-jax.nn.softplus(fake_logits) if saturating else jax.nn.softplus(-fake_logits)).squeeze(-1)


def feature_gaussian_log_likelihood(features, predicted):
    """``log N(features; predicted, I)`` per datapoint, summed over the features."""
    size = features.shape[-1]
    return -0.5 * jnp.sum((features - predicted) ** 2, -1) - 0.5 * size * math.log(2 * math.pi)


def equilibrium_updates(real_cross_entropy, fake_cross_entropy, margin: float, equilibrium: float = EQUILIBRIUM):
    """Larsen et al.'s rule as traced booleans ``(update discriminator, update decoder)``;
    see the Pyro twin. A negative margin switches it off."""
    if margin < 0:
        return jnp.array(True), jnp.array(True)
    update_dis = ~((real_cross_entropy < equilibrium - margin) | (fake_cross_entropy < equilibrium - margin))
    update_dec = ~((real_cross_entropy > equilibrium + margin) | (fake_cross_entropy > equilibrium + margin))
    neither = ~(update_dis | update_dec)
    return update_dis | neither, update_dec | neither


def pairwise_feature_matching(features, predicted):
    """``1/2 ||f(x) - f(x')||^2`` per datapoint."""
    return 0.5 * jnp.sum((features - predicted) ** 2, -1)


def mean_feature_matching(real_mean, fake_features):
    """``1/2 ||E f(x) - E f(G(z))||^2`` over a batch of fakes."""
    return 0.5 * jnp.sum((real_mean - fake_features.mean(0)) ** 2)


def class_means(features, labels, num_classes: int):
    """Per-class means (K, F) and counts (K,); 0 for absent classes."""
    one_hot = jax.nn.one_hot(labels, num_classes, dtype=features.dtype)
    counts = one_hot.sum(0)
    means = one_hot.T @ features / jnp.maximum(counts, 1.0)[:, None]
    return means, counts


def class_mean_matching(real_means, fake_features, fake_labels, num_classes: int):
    """``1/2 sum_c ||m_c - E f(G(z_p, c))||^2`` over the classes the fakes have."""
    fake_means, counts = class_means(fake_features, fake_labels, num_classes)
    present = (counts > 0).astype(fake_features.dtype)
    return 0.5 * jnp.sum(present[:, None] * (real_means - fake_means) ** 2)
