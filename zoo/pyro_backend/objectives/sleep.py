"""The sleep-phase loss of wake-sleep training (Pyro): fit the guide to dreams.

Hinton et al.'s sleep-phi step, as used by the wake-sleep VAE (wsvae.5): draw
``(z, x~) ~ p_theta(z) p_theta(x|z)`` by running the model with its observations
unset, then minimise ``-log q_phi(z | x~)``. In expectation this is
``E_{p_theta(x)} KL(p_theta(z|x) || q_phi(z|x))`` up to a constant, so the guide is
pulled towards the model's true posterior, where the wake step's ELBO pulls it
towards the mode-seeking reverse KL.

The dreams are drawn without gradients: the sleep loss trains the guide only. Pyro's
``ReweightedWakeSleep`` is not used: it importance-weights a whole minibatch jointly
(its docstring says it does not support minibatches), which is not the sum of
per-datapoint objectives the zoo trains.
"""

from __future__ import annotations

import torch
from pyro import poutine

__all__ = ["dream", "sleep_loss"]


def dream(model, *args, observed=("x",), latents=("z",), **kwargs) -> tuple[dict, dict]:
    """One ancestral draw of the model: ``(latents, observations)`` as two dicts.

    The model must generate its ``observed`` sites when their data is ``None``
    (``model(x=None, ...)`` samples ``x``); ``kwargs`` say how many dreams (e.g.
    ``num_dreams=B``). No gradient flows into the model's parameters.
    """
    with torch.no_grad():
        trace = poutine.trace(model).get_trace(*args, **kwargs)
    values = lambda names: {name: trace.nodes[name]["value"].detach() for name in names}  # noqa: E731
    return values(latents), values(observed)


def sleep_loss(model, guide, *args, observed=("x",), latents=("z",), **kwargs) -> torch.Tensor:
    """(wsvae.5) ``-sum_n log q_phi(z_n | x~_n)`` over dreams ``(z_n, x~_n) ~ p_theta``.

    The guide is run on the dreamed observations (as keyword arguments) with its
    latent sites conditioned on the dreamed latents; its log density is the loss,
    summed over the dreams (the zoo's minibatch-sum convention).
    """
    z, x = dream(model, *args, observed=observed, latents=latents, **kwargs)
    guide_trace = poutine.trace(poutine.condition(guide, data=z)).get_trace(**x)
    return -guide_trace.log_prob_sum()
