"""``vaezoo reproduce``: run every claim of the variants' cards and give each a verdict.

For each :class:`zoo.claims.Claim` of each card (``MathCard.claims``), at the chosen
budget (``quick``: digits, seconds per variant; ``full``: the Fashion-MNIST
protocol), this module

1. tunes each contender that has a ``tune`` grid: one run per grid point, trained
   on the training set minus ``budget.validation`` held-out rows
   (:func:`zoo.data.validation_split`) and scored on those rows by the
   contender's ``tune_metric``; the best value is kept (never chosen on test);
2. trains ``ours`` and, when the claim names one, the ``baseline`` at an **equal
   budget**: the same data, epochs, batch size, learning rate and seeds, through
   :func:`zoo.run.train` (a one-class claim trains one run per normal class and
   averages the metric over them);
3. evaluates every run with :func:`zoo.evaluate.evaluate` (importance-sampled
   ``L_K`` with PSIS k-hat, the variant's ``extra_metrics`` and the generic
   metrics every variant gets);
4. aggregates the claim's metric over seeds (mean and sample sd) and judges it
   (:func:`judge`): **holds**, **does not hold**, or **not comparable** (a metric
   missing or not finite, or an importance-sampled figure whose k-hat exceeds 0.7
   for most test points, so that it is a loose lower bound).

Runs are cached within one call: a VAE baseline shared by several claims trains
once per seed. The table is printed and the record written to
``benchmarks/results/claims.json`` (``--out DIR`` changes the folder).

claims.json schema (version 1)
------------------------------
::

    {
      "schema": 1,
      "runs": {                                  # one entry per "<budget>-<backend>"
        "quick-pyro": {
          "budget": "quick", "backend": "pyro",
          "date": ISO-8601 UTC, "command": "vaezoo reproduce ...",
          "machine": {"platform", "python", "cpus", "torch"/"jax" versions...},
          "seconds": wall-clock seconds of the whole call,
          "claims": {
            "<claim id>": {
              "id", "variant", "statement", "metric", "direction", "margin",
              "paper": {"value", "source", "status"} | null,
              "note": str,
              "protocol": {Budget fields..., "seeds": [0, 1, ...]} | null,
              "ours": CONTENDER,
              "reference": CONTENDER                 # baseline: another model
                         | {"kind": "metric", "metric", "values", "mean", "sd"}
                         | {"kind": "threshold", "value"} | null,
              "difference": mean(ours) - mean(reference) | null,
              "verdict": "holds" | "does not hold" | "not comparable",
              "why": str,
              "seconds": float,
              "measured_by": {"command", "date"}  # the call that ran this claim
            }, ...
          }
        }, ...
      }
    }

    CONTENDER = {
      "kind": "model", "label", "variant", "metric",
      "settings": {config overrides as run}, "options": {training options as run},
      "validation": null | {"rows": n, "seed": 0, "metric", "direction",
                            "grid": [{"values": {...}, "score": float}, ...],
                            "chosen": {...}},
      "values": [per seed], "mean", "sd",
      "khat_fraction": [per seed, fraction of test points with k-hat > 0.7] | null,
      "khat_mean": [per seed] | null,
      "metrics": [per seed: every number the run reported]
    }

A new call for the same budget and backend replaces the claims it ran and keeps
the others (``reproduce m2`` does not erase the other variants' records).
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import json
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

from zoo import references, registry
from zoo.claims import Claim, Contender

VERDICTS = ("holds", "does not hold", "not comparable")
# A contender "reference:<name>" runs zoo.references.REFERENCES[name], not a variant.
REFERENCE_PREFIX = "reference:"
# Metrics estimated by importance sampling: a comparison on them needs k-hat.
IMPORTANCE_SAMPLED = ("test_log_likelihood", "test_nll")
KHAT_KEY = "psis_khat_fraction_above_0.7"
DEFAULT_OUT = Path("benchmarks/results")
RESULTS_FILE = "claims.json"
# TrainOptions fields a contender's options or tune grid may set.
OPTION_FIELDS = ("dataset", "binarize", "epochs", "batch_size", "lr", "limit_train", "limit_test")


class ReproduceError(ValueError):
    """A problem with a reproduce request the user can fix."""


# --- the verdict: pure functions ------------------------------------------------


def mean_sd(values) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    values = [float(v) for v in values]
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _finite(values) -> bool:
    return bool(values) and all(v is not None and isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def judge(ours, reference, direction: str = "higher", margin: float = 0.0,
          ours_khat=None, reference_khat=None) -> dict:
    """The verdict of a claim from its per-seed values.

    ``ours``: values of our metric per seed; ``reference``: the reference's values
    per seed (a baseline model or another metric) or one number (a threshold).
    ``direction`` ``"higher"``/``"lower"``: holds when ``ours`` beats the reference
    in that direction by at least ``margin`` on the means (a negative margin is a
    tolerance); ``"near"``: holds when the means differ by at most ``margin``.
    ``*_khat``: per-seed fractions of test points with k-hat > 0.7 when the metric
    is importance-sampled; a mean fraction above one half makes the claim **not
    comparable** (the estimate is then a loose lower bound), as does a missing or
    non-finite value.

    Returns ``{"verdict", "why", "difference"}`` with ``difference = mean(ours) -
    mean(reference)``.
    """
    reference_values = [reference] if isinstance(reference, (int, float)) or reference is None else list(reference)
    ours = list(ours) if ours is not None else []
    if not _finite(ours) or not _finite(reference_values):
        which = "ours" if not _finite(ours) else "the reference"
        return {"verdict": "not comparable", "why": f"{which} has a missing or non-finite value", "difference": None}
    for name, fractions in (("ours", ours_khat), ("the reference", reference_khat)):
        if fractions and _finite(fractions) and sum(fractions) / len(fractions) > 0.5:
            share = 100 * sum(fractions) / len(fractions)
            return {
                "verdict": "not comparable",
                "why": f"k-hat > 0.7 for {share:.0f}% of test points of {name}: its likelihood is a loose lower bound",
                "difference": mean_sd(ours)[0] - mean_sd(reference_values)[0],
            }
    ours_mean, reference_mean = mean_sd(ours)[0], mean_sd(reference_values)[0]
    difference = ours_mean - reference_mean
    if direction == "near":
        holds = abs(difference) <= margin
        why = f"|{ours_mean:.4g} - {reference_mean:.4g}| = {abs(difference):.3g} {'<=' if holds else '>'} {margin:.3g}"
    elif direction in ("higher", "lower"):
        gain = difference if direction == "higher" else -difference
        holds = gain >= margin
        better = "above" if direction == "higher" else "below"
        why = (f"{ours_mean:.4g} vs {reference_mean:.4g}: {abs(difference):.3g} "
               f"{better if gain >= 0 else ('below' if direction == 'higher' else 'above')}"
               f", needed {'at least ' + format(margin, '.3g') + ' ' + better if margin >= 0 else 'no worse than ' + format(-margin, '.3g')}")
    else:
        raise ValueError(f"direction must be higher, lower or near, got {direction!r}")
    return {"verdict": "holds" if holds else "does not hold", "why": why, "difference": difference}


# --- running contenders -----------------------------------------------------------


def _grid(tune) -> list[dict]:
    names = list(tune)
    return [dict(zip(names, values)) for values in itertools.product(*(tune[n] for n in names))]


def _plain(value):
    """JSON-friendly copy (tuples to lists, mapping proxies to dicts)."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def config_class(variant: str):
    """The config class of a variant, or of the variant a reference stands beside."""
    if variant.startswith(REFERENCE_PREFIX):
        return registry.config_class(references.CONFIG_OF[variant.removeprefix(REFERENCE_PREFIX)])
    return registry.config_class(variant)


def _fields(obj) -> dict:
    """A frozen dataclass as a JSON-friendly dict (``asdict`` cannot copy its mapping proxies)."""
    return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


class Runner:
    """Trains and evaluates contenders at one budget on one backend, with a cache."""

    def __init__(self, backend: str, workdir: Path, log=print, data_dir: str | None = None):
        if backend not in registry.BACKENDS:
            raise registry.UnknownBackendError(
                f"unknown backend {backend!r}; choose one of {', '.join(registry.BACKENDS)}"
            )
        self.backend = backend
        self.workdir = Path(workdir)
        self.log = log
        self.data_dir = data_dir
        self.cache: dict[str, dict] = {}
        self.tuned: dict[str, dict] = {}
        self.eval_k = 100  # importance samples per test point; set per claim from its budget

    def plan(self, contender: Contender, budget, chosen: dict | None = None) -> tuple[dict, dict]:
        """The config settings and training options a contender runs with."""
        fields = {f.name for f in dataclasses.fields(config_class(contender.variant))}
        settings = {k: v for k, v in budget.settings.items() if k in fields}
        options = {
            "dataset": budget.dataset, "binarize": budget.binarize, "epochs": budget.epochs,
            "batch_size": budget.batch_size, "lr": budget.lr,
            "limit_train": budget.limit_train, "limit_test": budget.limit_test,
        }
        extra = {}
        for key, value in [*budget.options.items(), *contender.options.items(), *contender.settings.items(),
                           *(chosen or {}).items()]:
            if key in OPTION_FIELDS:
                options[key] = value
            elif key in fields:
                settings[key] = value
            else:
                extra[key] = value
        options["extra"] = extra
        return settings, options

    def run(self, variant: str, settings: dict, options: dict, seed: int, validation: int = 0) -> dict:
        """Metrics of one training run (cached), averaged over normal classes when
        ``options["extra"]["normal_class"]`` is a list of them."""
        classes = options["extra"].get("normal_class")
        if isinstance(classes, (list, tuple)):
            per_class = []
            for normal_class in classes:
                one = {**options, "extra": {**options["extra"], "normal_class": int(normal_class)}}
                per_class.append(self.run(variant, settings, one, seed, validation))
            keys = [k for k, v in per_class[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
            averaged = {k: sum(m[k] for m in per_class) / len(per_class) for k in keys if all(k in m for m in per_class)}
            averaged["normal_classes"] = [int(c) for c in classes]
            return averaged
        key = json.dumps([variant, _plain(settings), _plain(options), seed, validation, self.eval_k],
                         sort_keys=True, default=str)
        if key in self.cache:
            return self.cache[key]
        from zoo.config import TrainOptions, override
        from zoo.evaluate import evaluate
        from zoo.run import train

        reference = variant.removeprefix(REFERENCE_PREFIX) if variant.startswith(REFERENCE_PREFIX) else None
        config = override(registry.default_config(references.CONFIG_OF[reference] if reference else variant), settings)
        extra = dict(options["extra"])
        if validation:
            extra.update(validation=int(validation), validation_seed=0)
        train_options = TrainOptions(
            backend=self.backend, dataset=options["dataset"], data_dir=self.data_dir, binarize=options["binarize"],
            epochs=int(options["epochs"]), batch_size=int(options["batch_size"]), lr=float(options["lr"]), seed=seed,
            limit_train=options["limit_train"], limit_test=options["limit_test"], extra=extra,
        )
        out = self.workdir / f"run{len(self.cache):04d}-{variant.replace(':', '-')}"
        started = time.perf_counter()
        if reference:
            if references.BACKEND_OF[reference] != self.backend:
                raise ReproduceError(f"the reference {reference} exists for the {references.BACKEND_OF[reference]} backend only")
            metrics = references.REFERENCES[reference](config, train_options, self.eval_k)
        else:
            summary = train(variant, config, train_options, out, progress=False, overwrite=True)  # --keep-runs reused
            evaluation = evaluate(out, k=self.eval_k, extra=False)
            metrics = {k: v for k, v in {**summary, **evaluation}.items() if k != "config"}
        metrics["run_seconds"] = time.perf_counter() - started
        self.log(f"  trained {variant:<8} seed {seed}{' (validation)' if validation else ''} "
                 f"in {metrics['run_seconds']:.1f} s")
        self.cache[key] = metrics
        return metrics

    def tune(self, contender: Contender, budget) -> dict | None:
        """Choose the contender's ``tune`` values on the validation split (seed 0)."""
        if not contender.tune:
            return None
        if budget.validation <= 0:
            raise ReproduceError(f"contender {contender.label} has a tune grid but the budget holds out no validation rows")
        # The whole contender: M2 at 100 labels and at 600 share a label and a grid
        # but not their best values.
        key = json.dumps([_fields(contender), _fields(budget)], sort_keys=True, default=str)
        if key in self.tuned:
            return self.tuned[key]
        grid = {name: budget.tune.get(name, values) for name, values in contender.tune.items()}
        scores = []
        for values in _grid(grid):
            settings, options = self.plan(contender, budget, values)
            metrics = self.run(contender.variant, settings, options, seed=0, validation=budget.validation)
            scores.append({"values": values, "score": metrics.get(contender.tune_metric)})
        valid = [s for s in scores if _finite([s["score"]])]
        if not valid:
            raise ReproduceError(f"contender {contender.label}: no grid point gave a finite {contender.tune_metric}")
        best = (max if contender.tune_direction == "higher" else min)(valid, key=lambda s: s["score"])
        record = {"rows": budget.validation, "seed": 0, "metric": contender.tune_metric,
                  "direction": contender.tune_direction, "grid": _plain(scores), "chosen": _plain(best["values"])}
        self.tuned[key] = record
        return record

    def contender(self, contender: Contender, metric: str, budget, seeds: list[int]) -> dict:
        """Tune, train over ``seeds`` and collect ``metric`` of one contender."""
        validation = self.tune(contender, budget)
        settings, options = self.plan(contender, budget, validation["chosen"] if validation else None)
        metric = contender.metric or metric
        runs = [self.run(contender.variant, settings, options, seed) for seed in seeds]
        values = [r.get(metric) for r in runs]
        khat = [r.get(KHAT_KEY) for r in runs] if metric in IMPORTANCE_SAMPLED else None
        record = {
            "kind": "model", "label": contender.label, "variant": contender.variant, "metric": metric,
            "settings": _plain(settings), "options": _plain(options), "validation": validation,
            "values": values, "khat_fraction": khat,
            "khat_mean": [r.get("psis_khat_mean") for r in runs] if khat is not None else None,
            "metrics": [{k: v for k, v in r.items() if isinstance(v, (int, float, str, bool)) or v is None} for r in runs],
        }
        if _finite(values):
            record["mean"], record["sd"] = mean_sd(values)
        else:
            record["mean"] = record["sd"] = None
        return record


def reproduce_claim(claim: Claim, variant: str, budget_name: str, runner: Runner, seeds: int | None = None) -> dict:
    """Run one claim at ``budget_name`` and return its record (see the module docstring)."""
    started = time.perf_counter()
    record = {
        "id": claim.id, "variant": variant, "statement": claim.statement, "metric": claim.metric,
        "direction": claim.direction, "margin": claim.margin,
        "paper": _fields(claim.paper) if claim.paper else None, "note": claim.note,
        "protocol": None, "ours": None, "reference": None, "difference": None,
    }
    budget = claim.budgets.get(budget_name)
    if budget is None:
        record.update(verdict="not comparable", why=f"the claim has no {budget_name} protocol", seconds=0.0)
        return record
    for contender in (claim.ours, claim.baseline):
        name = contender.variant.removeprefix(REFERENCE_PREFIX) if contender and contender.variant.startswith(REFERENCE_PREFIX) else None
        if name and references.BACKEND_OF[name] != runner.backend:  # say so before training anything
            record.update(verdict="not comparable", seconds=0.0,
                          why=f"the reference {name} exists for the {references.BACKEND_OF[name]} backend only")
            return record
    seed_list = list(range(seeds if seeds is not None else budget.seeds))
    record["protocol"] = {**_fields(budget), "seeds": seed_list}
    runner.eval_k = budget.eval_k
    try:
        ours = runner.contender(claim.ours, claim.metric, budget, seed_list)
        if claim.baseline is not None:
            reference = runner.contender(claim.baseline, claim.metric, budget, seed_list)
            reference_values, reference_khat = reference["values"], reference["khat_fraction"]
        elif claim.baseline_metric is not None:
            values = [m.get(claim.baseline_metric) for m in ours["metrics"]]
            reference = {"kind": "metric", "metric": claim.baseline_metric, "values": values}
            reference["mean"], reference["sd"] = mean_sd(values) if _finite(values) else (None, None)
            reference_values, reference_khat = values, (ours["khat_fraction"] if claim.baseline_metric in IMPORTANCE_SAMPLED else None)
        else:
            reference = {"kind": "threshold", "value": claim.threshold}
            reference_values, reference_khat = claim.threshold, None
    except ReproduceError as error:
        record.update(verdict="not comparable", why=str(error), seconds=time.perf_counter() - started)
        return record
    except Exception as error:  # a failed run is a verdict, not a crash of the whole table
        detail = (str(error).splitlines() or [type(error).__name__])[0]
        record.update(verdict="not comparable", why=f"a run failed: {type(error).__name__}: {detail}",
                      seconds=time.perf_counter() - started)
        return record
    record["ours"], record["reference"] = ours, reference
    record.update(judge(ours["values"], reference_values, claim.direction, claim.margin,
                        ours["khat_fraction"], reference_khat))
    record["seconds"] = time.perf_counter() - started
    return record


def select_variants(name: str) -> list[str]:
    """``all`` or one registered variant name."""
    if name == "all":
        return registry.names()
    registry.card(name)  # raises UnknownVariantError with the list of names
    return [name]


def machine_info(backend: str) -> dict:
    import os

    info = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()}
    if backend == "pyro":
        import pyro
        import torch

        info.update(torch=torch.__version__, pyro=pyro.__version__, torch_threads=torch.get_num_threads())
    else:
        import jax
        import numpyro

        info.update(jax=jax.__version__, numpyro=numpyro.__version__)
    return info


def reproduce(names: list[str], budget: str = "quick", backend: str = "pyro", seeds: int | None = None,
              out: Path | None = DEFAULT_OUT, workdir: Path | None = None, log=print,
              data_dir: str | None = None, only: list[str] | None = None) -> dict:
    """Run the claims of ``names`` and write them into ``out/claims.json``
    (``out=None``: write nothing); ``only``: just the claims with these ids.
    Returns this call's entry of the file."""
    from zoo.claims import BUDGETS

    if budget not in BUDGETS:
        raise ReproduceError(f"unknown budget {budget!r}; choose one of {', '.join(BUDGETS)}")
    if seeds is not None and seeds < 1:
        raise ReproduceError(f"--seeds must be a positive number, got {seeds}")
    started = time.perf_counter()
    claims = {}
    with tempfile.TemporaryDirectory(prefix="vaezoo-reproduce-") as scratch:
        runner = Runner(backend, Path(workdir) if workdir else Path(scratch), log=log, data_dir=data_dir)
        known = {claim.id for name in names for claim in registry.card(name).claims}
        unknown = sorted(set(only or ()) - known)
        if unknown:
            raise ReproduceError(f"unknown claim(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        for name in names:
            for claim in registry.card(name).claims:
                if only and claim.id not in only:
                    continue
                log(f"{claim.id}: {claim.statement}")
                claims[claim.id] = reproduce_claim(claim, name, budget, runner, seeds)
                log(f"  -> {claims[claim.id]['verdict']}: {claims[claim.id]['why']}")
    entry = {
        "budget": budget, "backend": backend,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "vaezoo " + " ".join(sys.argv[1:]) if sys.argv and "zoo" in sys.argv[0] else None,
        "machine": machine_info(backend), "seconds": time.perf_counter() - started, "claims": claims,
    }
    # Each claim keeps the call that measured it: calls for one budget and backend
    # merge into one entry (reproduce m2, then reproduce vae...), whose top-level
    # command, date and seconds are the last call's.
    for record in claims.values():
        record["measured_by"] = {"command": entry["command"], "date": entry["date"]}
    if out is not None:
        write_results(Path(out) / RESULTS_FILE, entry)
    return entry


def write_results(path: Path, entry: dict) -> None:
    """Merge ``entry`` into the claims file: its claims replace those of the same
    ids for the same budget and backend; every other record stays."""
    from zoo.run import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"schema": 1, "runs": {}}
    if path.exists():
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError:
            raise ReproduceError(f"{path} is not valid JSON; move it away and run again") from None
    key = f"{entry['budget']}-{entry['backend']}"
    previous = record.setdefault("runs", {}).get(key, {})
    merged = {**previous.get("claims", {}), **entry["claims"]}
    record["runs"][key] = {**entry, "claims": merged}
    atomic_write(path, (json.dumps(record, indent=1, default=str) + "\n").encode())


# --- the table ------------------------------------------------------------------------


def _shown(record: dict | None) -> str:
    if record is None:
        return "-"
    if record.get("kind") == "threshold":
        return f"{record['value']:.4g}"
    if record.get("mean") is None:
        return "n/a"
    text = f"{record['mean']:.4g} ± {record['sd']:.2g}"
    khat = record.get("khat_fraction")
    if khat and _finite(khat):
        text += f" (k̂>0.7: {100 * sum(khat) / len(khat):.0f}%)"
    return text


def format_table(entry: dict) -> str:
    """The claims of one call as a fixed-width table: claim, paper figure, ours and
    the reference as mean ± sd over seeds, verdict and why."""
    rows = [("claim", "paper", "ours", "reference", "verdict", "why")]
    for claim in entry["claims"].values():
        paper = claim["paper"]["value"] if claim.get("paper") else "-"
        rows.append((claim["id"], paper, _shown(claim.get("ours")), _shown(claim.get("reference")),
                     claim["verdict"], claim["why"]))
    widths = [min(max(len(r[i]) for r in rows), cap) for i, cap in enumerate((26, 28, 30, 30, 14, 200))]

    def cut(text, width):
        return text if len(text) <= width else text[: width - 1] + "…"

    lines = ["  ".join(cut(cell, w).ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    seeds = {len(c["protocol"]["seeds"]) for c in entry["claims"].values() if c.get("protocol")}
    lines.append(f"budget {entry['budget']}, backend {entry['backend']}, seeds {sorted(seeds)}, "
                 f"{entry['seconds']:.0f} s")
    return "\n".join(lines)
