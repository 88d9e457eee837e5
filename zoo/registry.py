"""The list of variants, and lazy access to each one's card, config and backends.

A variant is a folder ``zoo/<name>/`` with ``card.py`` (``CARD``), ``config.py``
(``Config``, ``get_config()``), ``pyro_model.py`` and ``numpyro_model.py`` (each
defining ``Variant``, the model–guide pair). Nothing here imports torch or JAX; a
backend module is imported only when asked for.
"""

from __future__ import annotations

import importlib
from pathlib import Path

# Liu (2023), Table 1 order (plus the extra variants the zoo ships), by CLI name.
TABLE_ORDER = (
    "vae", "cvae", "m2", "vfae", "iwae", "iwae2", "vaegan", "cvaegan", "vlae", "crvae", "lsvae",
    "infovae", "msvae", "wsvae", "sbvae", "npvae", "mevae", "fae", "vaesvdd", "advae",
)


def _discover() -> dict[str, str]:
    """Every folder of ``zoo/`` with a ``card.py`` is a variant; the folder name is its CLI name."""
    here = Path(__file__).parent
    found = [p.parent.name for p in here.glob("*/card.py")]
    ordered = sorted(found, key=lambda n: (TABLE_ORDER.index(n) if n in TABLE_ORDER else len(TABLE_ORDER), n))
    return {name: f"zoo.{name}" for name in ordered}


VARIANTS: dict[str, str] = _discover()

BACKENDS = ("pyro", "numpyro")


class UnknownVariantError(KeyError):
    def __init__(self, name: str):
        self.name = name
        super().__init__(name)

    def __str__(self) -> str:
        return f"unknown variant {self.name!r}; known variants: {', '.join(VARIANTS)}"


class UnknownBackendError(ValueError):
    pass


def _package(name: str) -> str:
    try:
        return VARIANTS[name]
    except KeyError:
        raise UnknownVariantError(name) from None


def card(name: str):
    return importlib.import_module(_package(name) + ".card").CARD


def config_class(name: str):
    return importlib.import_module(_package(name) + ".config").Config


def default_config(name: str):
    return importlib.import_module(_package(name) + ".config").get_config()


def variant_class(name: str, backend: str):
    """The ``Variant`` class of ``name`` for ``backend`` ("pyro" or "numpyro")."""
    if backend not in BACKENDS:
        raise UnknownBackendError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    module = importlib.import_module(f"{_package(name)}.{backend}_model")
    return module.Variant


def names() -> list[str]:
    return list(VARIANTS)
