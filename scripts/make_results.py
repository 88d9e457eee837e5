"""Train every variant briefly on small data and keep its results for the docs.

    python scripts/make_results.py                 # every registered variant, Pyro
    python scripts/make_results.py vae iwae        # some of them
    python scripts/make_results.py --backend numpyro --epochs 50

Each variant is trained with ``vaezoo train`` on the embedded digits (a text variant
on the data of its quick claims budget), with the data flags its page shows
(e.g. ``--labels 100`` or ``--normal-class 0``), and evaluated with ``--eval-k``
importance samples; the run's small files (``metrics.json``, ``eval.json`` and its
pictures, a few tens of KB) are copied to ``docs/runs/<variant>-<backend>-<dataset>/``,
which the docs show on the variant's page and in the home table. The checkpoint is
not kept. A local run under ``runs/`` that is newer replaces these on a local build.

These are the figures of a short run on 8x8 digits, for showing what a variant does;
the claims of the papers are checked by ``vaezoo reproduce``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "docs")]

KEPT = ("metrics.json", "eval.json", "run.json")


def data_flags(name: str) -> list[str]:
    """The data options of the variant's training command (as its docs page shows them)."""
    from zoo import registry
    from zoodocs.variant_page import data_flags as page_flags

    return page_flags(registry.card(name))


def dataset_of(name: str) -> str:
    """The data of the variant's quick claims budget (digits for images; a text
    variant names its own), so that the short run is on data the variant models."""
    from zoo import registry

    card = registry.card(name)
    for claim in card.claims:
        quick = claim.budgets.get("quick")
        if quick is not None:
            return quick.dataset
    named = re.search(r"--dataset ([\w-]+)", card.evaluation)  # "Train on text: --dataset words"
    return named.group(1) if named else "digits"


def make(name: str, backend: str, epochs: int, eval_k: int, quiet: bool) -> dict:
    dataset = dataset_of(name)
    target = ROOT / "docs" / "runs" / f"{name}-{backend}-{dataset}"
    with tempfile.TemporaryDirectory(prefix=f"results-{name}-") as tmp:
        out = Path(tmp) / "run"
        command = [
            sys.executable, "-m", "zoo", "train", name, "--backend", backend, "--epochs", str(epochs),
            "--dataset", dataset, "--evaluate", "--eval-k", str(eval_k), "--out", str(out), "--quiet",
            *data_flags(name),
        ]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, capture_output=quiet, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{name}: training failed ({' '.join(command[2:])}):\n{done.stderr or ''}")
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for path in out.iterdir():
            if path.name in KEPT or path.suffix == ".png":
                shutil.copy2(path, target / path.name)
    seconds = time.perf_counter() - started
    size = sum(p.stat().st_size for p in target.iterdir())
    return {"variant": name, "backend": backend, "seconds": round(seconds, 1), "kilobytes": round(size / 1024, 1),
            "command": "vaezoo " + " ".join(command[3:]).replace(str(out), target.relative_to(ROOT).as_posix())}


def main(argv=None) -> None:
    from zoo import registry

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="*", help="default: every registered variant")
    parser.add_argument("--backend", default="pyro", choices=registry.BACKENDS)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--eval-k", type=int, default=500)
    parser.add_argument("--verbose", action="store_true", help="show the training output")
    args = parser.parse_args(argv)
    names = args.variants or registry.names()
    unknown = [n for n in names if n not in registry.names()]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(registry.names())}")
    made = []
    for name in names:
        record = make(name, args.backend, args.epochs, args.eval_k, quiet=not args.verbose)
        made.append(record)
        print(f"{name:10s} {record['seconds']:7.1f} s  {record['kilobytes']:6.1f} KB  {record['command']}")
    log = ROOT / "docs" / "runs" / "made.json"
    previous = json.loads(log.read_text()) if log.is_file() else {}
    previous.update({f"{r['variant']}-{r['backend']}": r for r in made})
    log.write_text(json.dumps(dict(sorted(previous.items())), indent=2) + "\n")


if __name__ == "__main__":
    main()
