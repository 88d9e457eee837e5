"""Configuration: the variant's hyperparameters and the run's training options.

Config is code. Each variant's ``config.py`` defines a dataclass deriving from
:class:`VariantConfig` and a ``get_config()`` returning its defaults; the command
line overrides any field with ``--set name=value`` (and the common ones with their
own flags: ``--z-dim``, ``--likelihood``, ``--k``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field


class ConfigError(ValueError):
    """A configuration problem the user can fix."""


@dataclass
class VariantConfig:
    """Fields every variant understands.

    ``hidden`` are the hidden-layer widths of encoder and decoder MLPs (the
    decoder mirrors them); the default 400 and ``z_dim`` 50 are those of Pyro's and
    NumPyro's VAE examples. ``likelihood`` is ``"bernoulli"`` (logits) or
    ``"gaussian"`` (learned per-pixel scale).
    """

    z_dim: int = 50
    hidden: tuple[int, ...] = (400,)
    activation: str = "relu"
    likelihood: str = "bernoulli"

    def validate(self) -> None:
        if self.likelihood not in ("bernoulli", "gaussian"):
            raise ConfigError(f"likelihood must be 'bernoulli' or 'gaussian', got {self.likelihood!r}")
        if self.z_dim < 1:
            raise ConfigError(f"z_dim must be positive, got {self.z_dim}")


@dataclass
class TrainOptions:
    """How to train, independent of the variant."""

    backend: str = "pyro"
    dataset: str = "digits"
    data_dir: str | None = None
    binarize: str = "dynamic"
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    device: str = "cpu"
    limit_train: int | None = None
    limit_test: int | None = None
    devices: int = 1  # data-parallel: processes (Pyro, torchrun) or mesh devices (NumPyro); zoo.distributed
    extra: dict = field(default_factory=dict)  # variant-specific data options (labels, normal class...)


def override(config, assignments: dict[str, str]):
    """Return a copy of ``config`` with fields set from strings (``--set a=b``).

    Values are parsed as JSON where they parse (numbers, lists, booleans) and kept
    as strings otherwise; a list becomes a tuple for tuple fields.
    """
    names = {f.name: f for f in dataclasses.fields(config)}
    changes = {}
    for key, raw in assignments.items():
        if key not in names:
            raise ConfigError(
                f"unknown setting {key!r} for {type(config).__name__}; known: {', '.join(sorted(names))}"
            )
        value = raw
        if isinstance(raw, str):
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                value = raw
        if isinstance(value, list):
            value = tuple(value)
        changes[key] = value
    updated = dataclasses.replace(config, **changes)
    updated.validate()
    return updated


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def from_dict(cls, values: dict):
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items() if k in known}
    return cls(**kwargs)
