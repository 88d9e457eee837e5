"""vaezoo: the variational autoencoders of Liu (2023), Table 1, in Pyro and NumPyro.

``import zoo`` is cheap: it imports neither torch nor JAX. The Pyro programs live in
``zoo/<variant>/pyro_model.py`` and the NumPyro ones in
``zoo/<variant>/numpyro_model.py``; :mod:`zoo.registry` finds them.

``zoo.train``, ``zoo.load`` and ``zoo.Model`` (:mod:`zoo.api`) are the public Python
API: train a variant or load a run, then encode, decode, sample, reconstruct and
estimate log-likelihoods with numpy arrays in either backend.
"""

from zoo.registry import VARIANTS, card, default_config, names, variant_class

__version__ = "0.1.0"

__all__ = ["VARIANTS", "Model", "card", "default_config", "load", "names", "train", "variant_class", "__version__"]

_API = ("Model", "load", "train")


def __getattr__(name: str):
    # zoo.api is imported on first use only, so that `import zoo` stays cheap.
    if name in _API:
        from zoo import api

        return getattr(api, name)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")
