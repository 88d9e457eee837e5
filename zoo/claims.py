"""Claims as data: what a variant's paper says it does, and how the zoo checks it.

Each variant's card lists its paper's headline claims (``MathCard.claims``). A
:class:`Claim` names what is compared (a metric of a trained model against a
baseline trained at an equal budget, against another metric of the same run, or
against a fixed value), in which direction and by how much, the paper's own figure
(with how sure we are of it), and the protocol for each budget. ``vaezoo
reproduce`` (:mod:`zoo.reproduce`) runs the protocols and gives each claim a
verdict.

This module imports neither torch nor JAX.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

# How sure we are of a figure quoted from a paper (as in the specification):
# checked against the paper or the authors' code; quoted by a detailed third-party
# reproduction; remembered, not re-checked; or not checkable at all.
FIGURE_STATUSES = ("confirmed", "secondary", "recalled", "unconfirmed")
DIRECTIONS = ("higher", "lower")
BUDGETS = ("quick", "full")


def _frozen(mapping: Mapping | None) -> Mapping:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class Contender:
    """One model a claim trains: a variant with its settings.

    ``settings`` override config fields (as ``--set`` does), ``options`` override
    training options (``labels``, ``normal_class``, ``binarize``, ``likelihood``...).
    ``tune`` is a grid of config values chosen on the validation split by
    ``tune_metric`` (``tune_direction`` says which way is better); the chosen value
    is recorded in the results.
    """

    label: str
    variant: str
    settings: Mapping = field(default_factory=dict)
    options: Mapping = field(default_factory=dict)
    tune: Mapping[str, tuple] = field(default_factory=dict)
    tune_metric: str | None = None
    tune_direction: str = "higher"

    def __post_init__(self):
        object.__setattr__(self, "settings", _frozen(self.settings))
        object.__setattr__(self, "options", _frozen(self.options))
        object.__setattr__(self, "tune", _frozen(self.tune))


@dataclass(frozen=True)
class PaperFigure:
    """The paper's own number for the claim, as printed, and where it stands."""

    value: str  # e.g. "84.78 nats (IWAE, k=50) vs 86.35 (VAE)"
    source: str  # e.g. "Burda et al. 2016, Table 1 (MNIST)"
    status: str = "recalled"  # one of FIGURE_STATUSES

    def __post_init__(self):
        if self.status not in FIGURE_STATUSES:
            raise ValueError(f"status must be one of {FIGURE_STATUSES}, got {self.status!r}")


@dataclass(frozen=True)
class Budget:
    """The protocol of one budget: data, training length, seeds, evaluation size."""

    dataset: str = "digits"
    epochs: int = 20
    seeds: int = 3
    batch_size: int = 128
    lr: float = 1e-3
    limit_train: int | None = None
    limit_test: int | None = None
    validation: int = 0  # training rows held out for tuning (0: no tuning needed)
    eval_k: int = 100  # importance samples per test point for likelihood metrics
    binarize: str = "dynamic"


@dataclass(frozen=True)
class Claim:
    """One headline claim of a paper, checkable by a command.

    Exactly one reference: ``baseline`` (another model trained at the same budget),
    ``baseline_metric`` (another metric of ``ours``'s own run, e.g. M2's
    supervised-only classifier) or ``threshold`` (a fixed value). The claim holds
    when ``ours`` beats the reference in ``direction`` by at least ``margin``, on
    the mean over seeds.
    """

    id: str  # "<variant>.<short name>", unique over the zoo
    statement: str
    metric: str  # a key of the evaluation results (eval.json / metrics.json)
    ours: Contender
    direction: str = "higher"
    margin: float = 0.0
    baseline: Contender | None = None
    baseline_metric: str | None = None
    threshold: float | None = None
    paper: PaperFigure | None = None
    budgets: Mapping[str, Budget] = field(default_factory=dict)
    note: str = ""  # why the zoo's protocol differs from the paper's, in words

    def __post_init__(self):
        object.__setattr__(self, "budgets", _frozen(self.budgets))
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}")
        references = [self.baseline is not None, self.baseline_metric is not None, self.threshold is not None]
        if sum(references) != 1:
            raise ValueError(f"claim {self.id}: give exactly one of baseline, baseline_metric, threshold")
        unknown = set(self.budgets) - set(BUDGETS)
        if unknown:
            raise ValueError(f"claim {self.id}: unknown budgets {sorted(unknown)}; use {BUDGETS}")
