"""Configuration: the variant's hyperparameters and the run's training options.

Config is code. Each variant's ``config.py`` defines a dataclass deriving from
:class:`VariantConfig` and a ``get_config()`` returning its defaults; the command
line overrides any field with ``--set name=value`` (and the common ones with their
own flags: ``--z-dim``, ``--likelihood``, ``--k``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from dataclasses import dataclass, field


class ConfigError(ValueError):
    """A configuration problem the user can fix."""


# The hidden-layer activations both backends know (guides/torch_nets.py and
# guides/flax_nets.py map these names; tests/test_reliability.py checks they agree).
ACTIVATIONS = ("relu", "tanh", "softplus", "sigmoid")
LIKELIHOODS = ("bernoulli", "gaussian")


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
        """Check every field's type (from the dataclass annotations), then the
        ranges of these common fields. Subclasses call ``super().validate()`` first
        and check their own ranges, so they may assume the types are right."""
        check_field_types(self)
        if self.likelihood not in LIKELIHOODS:
            raise ConfigError(f"likelihood must be 'bernoulli' or 'gaussian', got {self.likelihood!r}")
        if self.z_dim < 1:
            raise ConfigError(f"z_dim must be positive, got {self.z_dim}")
        if any(width < 1 for width in self.hidden):
            raise ConfigError(f"hidden layer widths must be positive, got {list(self.hidden)}; e.g. --set hidden=[400]")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")


# --------------------------------------------------------------------------
# Field types: what a --set value must look like
# --------------------------------------------------------------------------


def _field_types(cls) -> dict[str, object]:
    return typing.get_type_hints(cls)


def _optional(hint) -> tuple[object, bool]:
    """``(inner, allows_none)`` of ``X | None`` / ``Optional[X]``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0], True
    return hint, False


def _describe(hint) -> str:
    inner, nullable = _optional(hint)
    if inner is bool:
        text = "true or false"
    elif inner is int:
        text = "an integer"
    elif inner is float:
        text = "a finite number"
    elif inner is str:
        text = "a string"
    elif typing.get_origin(inner) is tuple:
        text = "a list of integers like [400] or [500,500]"
    else:
        text = f"a {getattr(inner, '__name__', inner)}"
    return text + (" or null" if nullable else "")


_NO_VALUE = object()


def _coerce(value, hint):
    """``value`` as the type ``hint`` asks for, or ``_NO_VALUE`` when it is not one."""
    inner, nullable = _optional(hint)
    if value is None:
        return None if nullable else _NO_VALUE
    if inner is bool:
        return value if isinstance(value, bool) else _NO_VALUE
    if inner is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _NO_VALUE
    if inner is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        return _NO_VALUE
    if inner is str:
        return value if isinstance(value, str) else _NO_VALUE
    if typing.get_origin(inner) is tuple:
        item_type = (typing.get_args(inner) or (int,))[0]
        if not isinstance(value, (list, tuple)):
            return _NO_VALUE
        items = [_coerce(item, item_type) for item in value]
        return tuple(items) if all(item is not _NO_VALUE for item in items) else _NO_VALUE
    return value  # a type this module does not know: the variant's validate() decides


def check_field_types(config) -> None:
    """Raise :class:`ConfigError` for the first field whose value has the wrong type."""
    hints = _field_types(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name in hints and _coerce(value, hints[f.name]) is _NO_VALUE:
            raise ConfigError(
                f"{f.name} must be {_describe(hints[f.name])}, got {value!r}; "
                f"e.g. --set {f.name}={_example(f)}"
            )


def _example(f) -> str:
    default = f.default if f.default is not dataclasses.MISSING else None
    return json.dumps(list(default) if isinstance(default, tuple) else default).replace(" ", "")


def parse_value(name: str, raw: str, hint, example: str = ""):
    """The value of ``--set name=raw`` for a field of type ``hint``.

    JSON where it parses (numbers, lists, true/false, null); a string field takes
    the text as it is. Anything else that does not fit the type is a
    :class:`ConfigError` naming the value, the expected type and an example.
    """
    inner, nullable = _optional(hint)
    text = raw.strip()
    if inner is str:
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = raw
        if nullable and value is None:
            return None
        return value if isinstance(value, str) else raw
    if nullable and text.lower() in ("none", "null"):
        return None
    if inner is bool and text.lower() in ("true", "false", "yes", "no"):
        return text.lower() in ("true", "yes")
    if typing.get_origin(inner) is tuple and re.fullmatch(r"[+-]?\d+", text):
        text = f"[{text}]"  # --set hidden=400 means one layer of 400
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = _NO_VALUE
    if isinstance(value, float) and not math.isfinite(value):
        value = _NO_VALUE  # json accepts NaN and Infinity
    coerced = _NO_VALUE if value is _NO_VALUE else _coerce(value, hint)
    if coerced is _NO_VALUE:
        hint_text = f"; e.g. --set {name}={example}" if example else ""
        raise ConfigError(f"--set {name}={raw}: {name} must be {_describe(hint)}{hint_text}")
    return coerced


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

    def validate(self) -> None:
        """Refuse options no training can run with, naming the flag and the fix."""
        for name in ("epochs", "batch_size", "seed", "devices"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"--{_flag(name)} must be an integer, got {value!r}")
        if self.epochs < 1:
            raise ConfigError(f"--epochs must be at least 1, got {self.epochs}; e.g. --epochs 10")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1, got {self.batch_size}; e.g. --batch-size 128")
        if not isinstance(self.lr, (int, float)) or isinstance(self.lr, bool) or not math.isfinite(self.lr) or self.lr <= 0:
            raise ConfigError(f"--lr must be a positive finite learning rate, got {self.lr!r}; e.g. --lr 1e-3")
        if self.devices < 1:
            raise ConfigError(f"--devices must be at least 1, got {self.devices}")
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"--seed must lie in [0, 2^32), got {self.seed}; e.g. --seed 0")
        for name in ("limit_train", "limit_test"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ConfigError(f"--{_flag(name)} must be a positive number of examples, got {value!r}")
        if not isinstance(self.device, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", self.device):
            raise ConfigError(f"--device must be cpu, cuda or cuda:N, got {self.device!r}")
        for name, value in self.extra.items():
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise ConfigError(f"--{_flag(name)} must be an integer, got {value!r}")
        labels = self.extra.get("labels")
        if labels is not None and labels < 1:
            raise ConfigError(f"--labels must be a positive number of examples, got {labels}")
        normal_class = self.extra.get("normal_class")
        if normal_class is not None and normal_class < 0:
            raise ConfigError(f"--normal-class must be a class label (0, 1, ...), got {normal_class}")


def _flag(name: str) -> str:
    return name.replace("_", "-")


def override(config, assignments: dict[str, str]):
    """Return a copy of ``config`` with fields set from strings (``--set a=b``).

    Each value is parsed for its field's annotated type (:func:`parse_value`), then
    the whole config is validated, so a bad value is refused here with a message,
    never deep inside a network's constructor.
    """
    updated = dataclasses.replace(config, **parse_assignments(config, assignments))
    updated.validate()
    return updated


def parse_assignments(config, assignments: dict[str, str]) -> dict:
    """The typed values of ``assignments`` for ``config``'s fields, each parsed on
    its own (an unknown name or a value of the wrong type is refused); nothing is
    validated against the other fields yet."""
    names = {f.name: f for f in dataclasses.fields(config)}
    hints = _field_types(type(config))
    changes = {}
    for key, raw in assignments.items():
        if key not in names:
            raise ConfigError(
                f"unknown setting {key!r} for {type(config).__name__}; known: {', '.join(sorted(names))}"
            )
        if isinstance(raw, str) and key in hints:
            changes[key] = parse_value(key, raw, hints[key], _example(names[key]))
        else:
            changes[key] = tuple(raw) if isinstance(raw, list) else raw
    return changes


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def from_dict(cls, values: dict):
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items() if k in known}
    return cls(**kwargs)
