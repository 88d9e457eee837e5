"""Variational families and the network blocks the variants share.

- :mod:`guides.torch_nets`: PyTorch blocks for the Pyro backend (MLP, the amortized
  diagonal-Gaussian encoder, Bernoulli and Gaussian decoders).
- :mod:`guides.flax_nets`: the same blocks in Flax (linen) for the NumPyro backend,
  with the same parameter layout, so weights can be copied across
  (:func:`guides.flax_nets.params_from_torch`).

Importing :mod:`guides` imports neither torch nor JAX; each submodule imports its own
backend.
"""
