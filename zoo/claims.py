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
# "higher"/"lower": ours must beat the reference by at least ``margin`` (a negative
# margin is a tolerance: "no worse than by"); "near": within ``margin`` of it.
DIRECTIONS = ("higher", "lower", "near")
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
    # The metric read from this contender's runs, when it differs from the claim's
    # (the VAE's ``auroc_elbo`` against VAE-SVDD's ``auroc_svdd``).
    metric: str | None = None

    def __post_init__(self):
        if self.tune and self.tune_metric is None:
            raise ValueError(f"contender {self.label}: a tune grid needs a tune_metric")
        if self.tune_direction not in ("higher", "lower"):
            raise ValueError(f"tune_direction must be 'higher' or 'lower', got {self.tune_direction!r}")
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
    # Config values every contender of the claim gets at this budget (smaller
    # networks for ``quick``); a contender's own settings win. Fields a variant's
    # config lacks are skipped.
    settings: Mapping = field(default_factory=dict)
    # Training options at this budget (``labels``, ``normal_class``...). A tuple of
    # normal classes means one one-class run per class, the metric averaged.
    options: Mapping = field(default_factory=dict)
    # Tune grids at this budget, replacing a contender's grid for the same names
    # (a smaller grid for ``quick``); names the contender does not tune are ignored.
    tune: Mapping = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "settings", _frozen(self.settings))
        object.__setattr__(self, "options", _frozen(self.options))
        object.__setattr__(self, "tune", _frozen(self.tune))


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


# --- the zoo's two protocols ------------------------------------------------------
# ``quick`` runs on digits in seconds per variant (tests and CI run it); ``full`` is
# a Fashion-MNIST protocol reduced to fit a shared 2-core CPU (a 5,000-image
# subset, 8 epochs, 2 seeds, L_200 on 300 test images); each card adapts them with
# ``dataclasses.replace``.
QUICK = Budget(dataset="digits", epochs=10, seeds=2, batch_size=64, lr=1e-3, limit_test=200, eval_k=50,
               settings={"hidden": (64,)})
FULL = Budget(dataset="fashion-mnist", epochs=8, seeds=2, batch_size=128, lr=1e-3, limit_train=5000,
              limit_test=300, eval_k=200)
# The longer ``full`` protocol of claims whose effect needs more training than 8
# epochs (a second stochastic layer, a memory, a nonparametric prior): a
# 10,000-image subset, 20 epochs, 2 seeds, L_1000 on 500 test images. It replaces
# the papers' budgets (50 to 3,000 epochs on all of MNIST), which do not fit a
# shared 2-core CPU; measured at 2-20 s an epoch per run there.
FULL_LONG = Budget(dataset="fashion-mnist", epochs=20, seeds=2, batch_size=100, lr=1e-3, limit_train=10000,
                   limit_test=500, eval_k=1000)
# One-class anomaly detection: the metric averaged over these normal classes.
ONE_CLASS_QUICK = Budget(dataset="digits", epochs=10, seeds=2, batch_size=64, limit_test=200, eval_k=25,
                         validation=300, settings={"hidden": (64,), "score_samples": 50},
                         options={"normal_class": (0, 1)}, tune={"svdd_weight": (1.0, 10.0)})
ONE_CLASS_FULL = Budget(dataset="fashion-mnist", epochs=8, seeds=2, batch_size=128, limit_train=10000,
                        limit_test=300, eval_k=25, validation=1000, settings={"score_samples": 100},
                        options={"normal_class": (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)}, tune={"svdd_weight": (1.0, 10.0)})
