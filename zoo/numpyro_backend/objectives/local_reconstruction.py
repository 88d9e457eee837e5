"""The importance-weighted bound plus MEM-VAE's local reconstruction error (NumPyro),
the twin of :mod:`zoo.pyro_backend.objectives.local_reconstruction`: particles by
``vmap`` over keys, activations read from ``numpyro.deterministic`` sites."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from numpyro import handlers
from numpyro.distributions.kl import kl_divergence
from numpyro.infer import ELBO

from zoo.numpyro_backend.objectives.importance import _is_factor, iwae_bound, site_log_prob

__all__ = ["LocalReconstructionELBO", "batch_standardize", "local_reconstruction_error"]


def batch_standardize(h, eps: float = 1e-4):
    mean = h.mean(-2, keepdims=True)
    return (h - mean) / jnp.sqrt(((h - mean) ** 2).mean(-2, keepdims=True) + eps)


def local_reconstruction_error(encoder_activation, decoder_activation):
    """Per datapoint (B,); ``decoder_activation`` (k, B, H) is averaged over particles first."""
    decoder_mean = decoder_activation.reshape(-1, *encoder_activation.shape).mean(0)
    return ((batch_standardize(encoder_activation) - batch_standardize(decoder_mean)) ** 2).mean(-1)


class LocalReconstructionELBO(ELBO):
    """``-sum_n [L_k(x_n) - weight * sum_l LRE_l(x_n)]``; see the Pyro twin."""

    def __init__(self, num_particles: int = 1, weight: float = 0.1, pairs: tuple = (), analytic_kl: bool = True):
        super().__init__(num_particles=num_particles)
        self.weight = weight
        self.pairs = tuple(pairs)
        self.analytic_kl = analytic_kl

    def terms(self, rng_key, param_map, model, guide, *args, **kwargs):
        """Per datapoint: the bound ``L_k`` (B,) and the summed local reconstruction error (B,)."""
        def one(key):
            guide_key, model_key = jax.random.split(key)
            seeded_guide = handlers.seed(handlers.substitute(guide, data=param_map), guide_key)
            guide_trace = handlers.trace(seeded_guide).get_trace(*args, **kwargs)
            seeded_model = handlers.seed(handlers.substitute(model, data=param_map), model_key)
            model_trace = handlers.trace(handlers.replay(seeded_model, guide_trace)).get_trace(*args, **kwargs)
            mean_field = self.analytic_kl and self.num_particles == 1
            log_w = 0.0
            for name, site in model_trace.items():
                if site["type"] != "sample" or _is_factor(site):
                    continue
                if mean_field and not site["is_observed"]:
                    try:  # the closed-form KL, as TraceMeanField_ELBO
                        log_w = log_w - kl_divergence(guide_trace[name]["fn"], site["fn"])
                        continue
                    except NotImplementedError:
                        pass
                    log_w = log_w - site_log_prob(guide_trace[name])
                log_w = log_w + site_log_prob(site)
            if not mean_field:
                for site in guide_trace.values():
                    if site["type"] == "sample" and not _is_factor(site) and not site["is_observed"]:
                        log_w = log_w - site_log_prob(site)
            activations = {name: (guide_trace[e]["value"], model_trace[name]["value"]) for e, name in self.pairs}
            return log_w, activations

        log_w, activations = jax.vmap(one)(jax.random.split(rng_key, self.num_particles))
        bound = iwae_bound(log_w)
        lre = jnp.zeros_like(bound)
        for encoder_values, decoder_values in activations.values():
            lre = lre + local_reconstruction_error(encoder_values[0], decoder_values)
        return bound, lre

    def loss_with_mutable_state(self, rng_key, param_map, model, guide, *args, **kwargs):
        bound, lre = self.terms(rng_key, param_map, model, guide, *args, **kwargs)
        return {"loss": -bound.sum() + self.weight * lre.sum(), "mutable_state": None}
