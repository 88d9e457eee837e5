"""The NumPyro (JAX) backend: variant base class, objective terms, trainer."""
