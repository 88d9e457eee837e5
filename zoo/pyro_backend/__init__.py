"""The Pyro (PyTorch) backend: variant base class, objective terms, trainer."""
