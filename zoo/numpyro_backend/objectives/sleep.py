"""The sleep-phase loss of wake-sleep training (NumPyro): the twin of
:mod:`zoo.pyro_backend.objectives.sleep`.

Draw ``(z, x~) ~ p_theta`` by running the model with its observations unset, then
minimise ``-log q_phi(z | x~)`` (wsvae.5). NumPyro has no wake-sleep class; the
loss is a pure function of the parameters, so ``jax.grad`` of it with respect to
the guide's parameters is the sleep step, and ``stop_gradient`` on the dreams keeps
the model's parameters out of it.
"""

from __future__ import annotations

import jax
from numpyro import handlers
from numpyro.infer.util import log_density

__all__ = ["dream", "sleep_loss"]


def dream(model, params: dict, rng_key, observed=("x",), latents=("z",), **kwargs) -> tuple[dict, dict]:
    """One ancestral draw of the model under ``params``: ``(latents, observations)``.

    The model must generate its ``observed`` sites when their data is ``None``;
    ``kwargs`` say how many dreams. Both dicts are behind ``stop_gradient``.
    """
    seeded = handlers.seed(handlers.substitute(model, data=params), rng_key)
    trace = handlers.trace(seeded).get_trace(**kwargs)
    values = lambda names: {name: jax.lax.stop_gradient(trace[name]["value"]) for name in names}  # noqa: E731
    return values(latents), values(observed)


def sleep_loss(model, guide, params: dict, rng_key, observed=("x",), latents=("z",), **kwargs):
    """(wsvae.5) ``-sum_n log q_phi(z_n | x~_n)`` over dreams ``(z_n, x~_n) ~ p_theta``."""
    z, x = dream(model, params, rng_key, observed=observed, latents=latents, **kwargs)
    log_q, _ = log_density(handlers.condition(guide, data=z), (), x, params)
    return -log_q
