"""VAE-GAN against a VAE and CVAE-GAN against a CVAE, at equal budget (issue 10).

Four contenders, each the zoo's variant with its own baseline mode, so encoder and
decoder are the same networks:

- ``vae``: ``vaegan`` with ``similarity=pixel`` (a plain VAE, grey-level Bernoulli);
- ``vaegan``: Larsen et al.'s learned similarity, three optimizers;
- ``cvae``: ``cvaegan`` with ``adversarial=false`` (lambda_1 KL + lambda_2 pixel term);
- ``cvaegan``: Bao et al.'s four networks.

Every run trains with the same data (a random ``--limit-train`` subset, grey levels),
epochs, batch size, learning rate and seeds, and is scored by the cached FD classifier
of the dataset (zoo/fd.py, trained first if missing): FD of prior samples and of
reconstructions against the first 2000 test images, reconstruction MSE, class
fidelity (CVAE, CVAE-GAN), and the pixel-space test ELBO and importance-sampled
log-likelihood (``--eval-k`` particles on ``--eval-points`` test images). The
claims of the two cards are judged on the means over seeds.

    flock /work/coord/heavy.lock python benchmarks/adversarial.py --dataset fashion-mnist
    python benchmarks/adversarial.py --dataset digits --epochs 1 --limit-train 300 --seeds 1   # smoke run

It writes ``benchmarks/results/adversarial.json`` and prints the table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from zoo import fd, registry
from zoo.config import TrainOptions, override
from zoo.evaluate import evaluate
from zoo.run import train

RESULTS = Path(__file__).parent / "results"
CONTENDERS = {
    "vae": ("vaegan", {"similarity": "pixel"}),
    "vaegan": ("vaegan", {}),
    "cvae": ("cvaegan", {"adversarial": "false"}),
    "cvaegan": ("cvaegan", {}),
}
# (claim, ours, baseline, metric, direction)
CLAIMS = (
    ("vaegan.fd_samples", "vaegan", "vae", "fd_samples", "lower"),
    ("vaegan.fd_reconstructions", "vaegan", "vae", "fd_reconstructions", "lower"),
    ("vaegan.elbo_honest", "vaegan", "vae", "test_elbo", "lower"),
    ("cvaegan.class_fidelity", "cvaegan", "cvae", "class_fidelity", "higher"),
    ("cvaegan.class_fidelity_tops", "cvaegan", "cvae", "class_fidelity_tops", "higher"),
    ("cvaegan.fd_samples", "cvaegan", "cvae", "fd_samples", "lower"),
)
REPORTED = ("fd_samples", "fd_reconstructions", "reconstruction_mse", "class_fidelity", "class_fidelity_tops",
            "test_elbo", "test_log_likelihood", "seconds_per_epoch")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_one(name: str, args, seed: int, folder: Path) -> dict:
    variant, settings = CONTENDERS[name]
    assignments = {**dict(pair.split("=", 1) for pair in args.set), **settings}
    config = override(registry.default_config(variant), assignments)
    options = TrainOptions(
        backend=args.backend, dataset=args.dataset, binarize="none", epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, seed=seed, limit_train=args.limit_train, limit_test=args.limit_test,
    )
    out = folder / f"{name}-seed{seed}"
    started = time.perf_counter()
    summary = train(variant, config, options, out, progress=False)
    evaluation = evaluate(out, k=args.eval_k, limit=args.eval_points, extra=False)
    metrics = {**{k: v for k, v in summary.items() if k != "config"}, **evaluation}
    metrics["run_seconds"] = time.perf_counter() - started
    log(f"{name} seed {seed}: fd_samples {metrics['fd_samples']:.2f}  fd_recon {metrics['fd_reconstructions']:.2f}  "
        f"elbo {metrics['test_elbo']:.1f}  ({metrics['run_seconds']:.0f} s)")
    return metrics


def aggregate(runs: list[dict]) -> dict:
    out = {}
    for key in REPORTED:
        values = [r[key] for r in runs if isinstance(r.get(key), (int, float)) and np.isfinite(r[key])]
        if values:
            out[key] = {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
                        "values": values}
    return out


def judge(table: dict) -> list[dict]:
    verdicts = []
    for claim, ours, baseline, metric, direction in CLAIMS:
        a, b = table.get(ours, {}).get(metric), table.get(baseline, {}).get(metric)
        if a is None or b is None:
            verdicts.append({"claim": claim, "verdict": "not measured", "metric": metric})
            continue
        holds = a["mean"] < b["mean"] if direction == "lower" else a["mean"] > b["mean"]
        verdicts.append({"claim": claim, "metric": metric, "direction": direction, "ours": a["mean"],
                         "baseline": b["mean"], "verdict": "holds" if holds else "does not hold"})
    return verdicts


def report(results: dict) -> str:
    columns = [("fd_samples", "FD samples", "{:.2f}"), ("fd_reconstructions", "FD recon", "{:.2f}"),
               ("reconstruction_mse", "recon MSE", "{:.4f}"), ("class_fidelity", "class fid.", "{:.3f}"),
               ("class_fidelity_tops", "fid. tops", "{:.3f}"), ("test_elbo", "test ELBO", "{:.1f}"),
               ("test_log_likelihood", "IS log-lik", "{:.1f}"), ("seconds_per_epoch", "s/epoch", "{:.1f}")]
    lines = ["| model | " + " | ".join(title for _, title, _ in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for name, row in results["table"].items():
        cells = []
        for key, _, fmt in columns:
            cell = row.get(key)
            cells.append("-" if cell is None else (fmt.format(cell["mean"]) + (f" ± {fmt.format(cell['sd'])}" if cell["sd"] else "")))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    for verdict in results["claims"]:
        if verdict["verdict"] == "not measured":
            lines.append(f"- {verdict['claim']}: not measured")
        else:
            lines.append(f"- {verdict['claim']} ({verdict['metric']} {verdict['direction']}): "
                         f"{verdict['ours']:.4g} vs {verdict['baseline']:.4g} -> {verdict['verdict']}")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--backend", default="pyro")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit-train", type=int, default=6000)
    parser.add_argument("--limit-test", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--eval-k", type=int, default=20)
    parser.add_argument("--eval-points", type=int, default=500)
    parser.add_argument("--models", default=",".join(CONTENDERS), help="comma-separated subset of " + ", ".join(CONTENDERS))
    parser.add_argument("--set", action="append", default=["channels=[8,16,32]", "hidden=[128]"],
                        metavar="NAME=VALUE", help="config values for every contender (default: the reduced nets)")
    parser.add_argument("--out", default=str(RESULTS / "adversarial.json"))
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    started = time.perf_counter()
    _, record = fd.load_classifier(args.dataset)  # trains it first when missing
    log(f"FD classifier of {args.dataset}: test accuracy {record['test_accuracy']:.4f}, sha256 {record['sha256'][:16]}")
    names = [n for n in args.models.split(",") if n]
    runs: dict[str, list[dict]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="vaezoo-adversarial-") as folder:
        for seed in range(args.seeds):
            for name in names:
                runs[name].append(run_one(name, args, seed, Path(folder)))
    table = {name: aggregate(rows) for name, rows in runs.items()}
    results = {
        "script": "benchmarks/adversarial.py",
        "command": " ".join(["python benchmarks/adversarial.py", *(argv if argv is not None else sys.argv[1:])]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "fd_classifier": record,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "table": table,
        "claims": judge(table),
        "runs": {name: [{k: v for k, v in r.items() if isinstance(v, (int, float, str, bool)) or v is None} for r in rows]
                 for name, rows in runs.items()},
        "seconds": time.perf_counter() - started,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(report(results))
    return results


if __name__ == "__main__":
    main()
