"""vaezoo: the variational autoencoders of Liu (2023), Table 1, in Pyro and NumPyro.

``import zoo`` is cheap: it imports neither torch nor JAX. The Pyro programs live in
``zoo/<variant>/pyro_model.py`` and the NumPyro ones in
``zoo/<variant>/numpyro_model.py``; :mod:`zoo.registry` finds them.
"""

from zoo.registry import VARIANTS, card, default_config, names, variant_class

__version__ = "0.1.0"

__all__ = ["VARIANTS", "card", "default_config", "names", "variant_class", "__version__"]
