"""Results the docs show: trained runs of a variant and benchmark result files.

A run folder is what ``vaezoo train`` writes (see :mod:`zoo.run`): ``metrics.json``,
and, after ``--evaluate`` or ``vaezoo evaluate``, ``eval.json``, with
``samples.png`` and ``reconstructions.png``. The docs look for runs of a variant in

- ``docs/runs/<variant>/`` and ``docs/runs/<variant>-*/``: runs published with the
  docs;
- ``runs/<variant>-*/``: the default ``--out`` of ``vaezoo train``
  (``runs/<variant>-<backend>-<dataset>``);

and show, per backend, the run whose ``metrics.json`` is newest. A folder counts only
when its ``metrics.json`` names the variant (so ``runs/vae-*`` never picks up a
``vaegan`` run).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

RUN_ROOTS = ("docs/runs", "runs")
IMAGES = ("samples.png", "reconstructions.png")
# Headline figure of a run for the zoo table, best first: (file, key, label).
HEADLINES = (
    ("eval", "test_nll", "test NLL"),
    ("metrics", "test_elbo_500", "test ELBO"),
)


@dataclass
class Run:
    path: Path
    metrics: dict
    evaluation: dict | None
    mtime: float
    images: dict[str, Path] = field(default_factory=dict)

    @property
    def backend(self) -> str:
        return str(self.metrics.get("backend", "?"))

    @property
    def dataset(self) -> str:
        return str(self.metrics.get("dataset", "?"))

    def headline(self) -> str | None:
        """The run's headline figure, e.g. ``test NLL 85.12 (pyro, digits)``."""
        sources = {"eval": self.evaluation or {}, "metrics": self.metrics}
        # An anomaly detector's headline is its own score's AUROC, not a likelihood.
        for record in (sources["eval"], sources["metrics"]):
            for key, value in record.items():
                if key.startswith("auroc_") and key != "auroc_elbo" and isinstance(value, (int, float)):
                    return f"AUROC ({key.removeprefix('auroc_')}) {value:.3f} ({self.backend}, {self.dataset})"
        for source, key, label in HEADLINES:
            value = sources[source].get(key)
            if isinstance(value, (int, float)):
                khat = sources[source].get("psis_khat_mean") if source == "eval" else None
                trust = f", k-hat {khat:.2f}" if isinstance(khat, (int, float)) else ""
                return f"{label} {value:.2f}{trust} ({self.backend}, {self.dataset})"
        return None

    def figures(self) -> dict[str, object]:
        """Every scalar of ``metrics.json`` then ``eval.json`` (the config aside)."""
        shown: dict[str, object] = {}
        for record in (self.metrics, self.evaluation or {}):
            for key, value in record.items():
                if isinstance(value, (int, float, str, bool)) and key not in ("variant", "samples"):
                    shown[key] = value
        return shown


def _read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def find_runs(root: Path, variant: str) -> list[Run]:
    """Every run folder of ``variant`` under the :data:`RUN_ROOTS` of ``root``."""
    found = []
    for base in RUN_ROOTS:
        folder = Path(root) / base
        if not folder.is_dir():
            continue
        for candidate in sorted([folder / variant, *folder.glob(f"{variant}-*")]):
            metrics_path = candidate / "metrics.json"
            metrics = _read_json(metrics_path) if metrics_path.is_file() else None
            if not metrics or metrics.get("variant") != variant:
                continue
            images = {name: candidate / name for name in IMAGES if (candidate / name).is_file()}
            evaluation = _read_json(candidate / "eval.json") if (candidate / "eval.json").is_file() else None
            found.append(Run(candidate, metrics, evaluation, metrics_path.stat().st_mtime, images))
    return found


def latest_runs(root: Path, variant: str) -> dict[str, Run]:
    """The newest run of ``variant`` per backend, Pyro first."""
    latest: dict[str, Run] = {}
    for run in find_runs(root, variant):
        best = latest.get(run.backend)
        if best is None or (run.mtime, str(run.path)) > (best.mtime, str(best.path)):
            latest[run.backend] = run
    return dict(sorted(latest.items(), key=lambda item: (item[0] != "pyro", item[0])))


def benchmark_files(root: Path) -> list[Path]:
    """The result files of the benchmark scripts: ``benchmarks/results/*.{md,json}``."""
    folder = Path(root) / "benchmarks" / "results"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in (".md", ".json") and p.is_file())


def benchmark_scripts(root: Path) -> list[Path]:
    folder = Path(root) / "benchmarks"
    return sorted(folder.glob("*.py")) if folder.is_dir() else []


CLAIMS_FILE = "benchmarks/results/claims.json"


def _mean_sd(value) -> str | None:
    if isinstance(value, (int, float)):
        return f"{value:.4g}"
    if isinstance(value, dict) and isinstance(value.get("mean"), (int, float)):
        sd = value.get("sd")
        return f"{value['mean']:.4g} ± {sd:.2g}" if isinstance(sd, (int, float)) else f"{value['mean']:.4g}"
    return None


def claim_summary(record: dict) -> str:
    """A claim's measured figure in words: ours against the reference, with the PSIS
    k-hat share when the figure is importance-sampled."""
    if isinstance(record.get("summary"), str):
        return record["summary"]
    ours = record.get("ours") or {}
    text = _mean_sd(ours) or "—"
    reference = record.get("reference") or record.get("baseline")
    if isinstance(reference, dict):
        if reference.get("kind") == "threshold" and isinstance(reference.get("value"), (int, float)):
            text += f" vs {reference['value']:.4g}"
        elif _mean_sd(reference):
            text += f" vs {_mean_sd(reference)}"
    shares = ours.get("khat_fraction") if isinstance(ours, dict) else None
    if isinstance(shares, list) and shares and all(isinstance(v, (int, float)) for v in shares):
        text += f" (k-hat > 0.7 for {sum(shares) / len(shares):.0%} of test points)"
    return text


def claim_records(root: Path) -> dict[str, dict]:
    """``{claim id: {"summary", "verdict"}}`` from the last ``vaezoo reproduce`` runs
    (``benchmarks/results/claims.json``, see :mod:`zoo.reproduce` for its schema): the
    full budget first, then the quick one, each backend on its own line."""
    path = Path(root) / CLAIMS_FILE
    record = _read_json(path) if path.is_file() else None
    if not record or not isinstance(record.get("runs"), dict):
        return {}
    found: dict[str, dict] = {}
    order = sorted(record["runs"].items(), key=lambda item: (item[1].get("budget") != "full", item[0]))
    for key, run in order:
        label = f"{run.get('budget', '?')}, {run.get('backend', '?')}"
        for claim_id, claim in (run.get("claims") or {}).items():
            entry = found.setdefault(claim_id, {"summary": [], "verdict": []})
            entry["summary"].append(f"{label}: {claim_summary(claim)}")
            verdict = claim.get("verdict", "—")
            why = claim.get("why")
            entry["verdict"].append(f"{label}: {verdict}" + (f" ({why})" if why and verdict != "holds" else ""))
    return {cid: {"summary": "<br>".join(e["summary"]), "verdict": "<br>".join(e["verdict"])} for cid, e in found.items()}
