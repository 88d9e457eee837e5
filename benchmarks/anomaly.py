"""One-class anomaly detection: AUROC per normal class and the mean over classes,
for the VAE, VAE-SVDD and adVAE (issue 5).

The protocol is :mod:`zoo.anomaly`'s (Ruff et al. 2018): for each class C, train on
the training images of class C only, score every test image, and compute the AUROC
of the scores against "not C". Scores, larger meaning more anomalous:

================  ================================================================
VAE -ELBO         the plain VAE's negative ELBO (10 guide draws per test image)
VAE-SVDD dist     ``||mu(x) - c||^2`` (vaesvdd.5)
VAE-SVDD -ELBO    the negative ELBO of the VAE-SVDD model (vaesvdd.8)
adVAE recon       ``||mean_l G(z_l) - x||^2`` over L posterior samples (advae.8)
adVAE -ELBO       the negative ELBO of the adVAE model, for comparison
gamma=0 recon     the control: adVAE with gamma = 0, i.e. the same E and G (and
                  squared-error likelihood) trained as a plain VAE, same score
================  ================================================================

The control separates what adVAE's self-adversarial training adds from what its
networks and its Gaussian likelihood give (the plain VAE uses a Bernoulli
likelihood on grey levels). Each variant trains with its default config (the
card's), on grey levels (``binarize="none"``), with the run's epochs, batch size,
learning rate and seed.
The results of each dataset go into ``benchmarks/results/anomaly.json`` (one entry
per dataset, so a digits run does not erase a Fashion-MNIST one), with the settings
and seconds; :func:`anomaly_table` renders every stored dataset as a table.

    python benchmarks/anomaly.py                       # digits, all 10 classes (offline)
    python benchmarks/anomaly.py --dataset fashion-mnist --limit-train 20000 \\
        --limit-test 5000 --epochs 10 --batch-size 128 --score-samples 20
                                                       # about 2000 normal images per class

Reference (recalled, Ruff et al. 2018, Table 1; VARIANTS.md §17): Deep SVDD's mean
one-class AUROC is about 94.8% on MNIST and 64.8% on CIFAR-10. These are other
datasets and another network; they are no target for the numbers here.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

from zoo import registry
from zoo.anomaly import one_class_auroc
from zoo.config import TrainOptions, override
from zoo.run import atomic_write

RESULTS = Path(__file__).parent / "results" / "anomaly.json"
# name -> (variant, config overrides): the runs of the table.
RUNS = {
    "vae": ("vae", {}),
    "vaesvdd": ("vaesvdd", {}),
    "advae": ("advae", {}),
    "advae-gamma0": ("advae", {"gamma": "0"}),  # the control: no hinge terms, a plain VAE with adVAE's E and G
}
# (run, score, column title) in table order.
COLUMNS = (
    ("vae", "elbo", "VAE -ELBO"),
    ("vaesvdd", "svdd", "VAE-SVDD dist"),
    ("vaesvdd", "elbo", "VAE-SVDD -ELBO"),
    ("advae", "recon", "adVAE recon"),
    ("advae", "elbo", "adVAE -ELBO"),
    ("advae-gamma0", "recon", "adVAE gamma=0 recon"),
)


def run_config(run: str, score_samples: int):
    variant, overrides = RUNS[run]
    config = override(registry.default_config(variant), overrides)
    if variant == "advae":
        config = override(config, {"score_samples": str(score_samples)})
    return variant, config


def run(args) -> dict:
    """Train and score every variant on every class; the dataset's results entry."""
    options = TrainOptions(
        backend=args.backend,
        dataset=args.dataset,
        data_dir=args.data_dir,
        binarize="none",
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        limit_train=args.limit_train,
        limit_test=args.limit_test,
    )
    entry = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "settings": {
            "backend": args.backend,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "seed": args.seed,
            "binarize": "none",
            "limit_train": args.limit_train,
            "limit_test": args.limit_test,
            "classes": list(args.classes),
            "advae_score_samples": args.score_samples,
            "elbo_particles": 10,
            "torch_threads": args.torch_threads if args.backend == "pyro" else None,
        },
        "runs": {},
    }
    for name in args.runs:
        variant, config = run_config(name, args.score_samples)
        started = time.perf_counter()

        def report(c, aurocs, name=name):
            shown = "  ".join(f"{k.removeprefix('auroc_')} {v:.3f}" for k, v in aurocs.items())
            print(f"  {name:<12} class {c}: {shown}", file=sys.stderr, flush=True)

        table = one_class_auroc(variant, config, options, classes=args.classes, on_class=report)
        entry["runs"][name] = {
            "variant": variant,
            "config": vars(config),
            "per_class": {str(c): aurocs for c, aurocs in table["per_class"].items()},
            "mean": table["mean"],
            "seconds": time.perf_counter() - started,
        }
    return entry


def load_results(path: Path = RESULTS) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def anomaly_table(results: dict | None = None) -> str:
    """Markdown tables of AUROC (%) per normal class and the mean, one per stored dataset."""
    results = load_results() if results is None else results
    blocks = []
    for dataset, entry in results.items():
        columns = [(v, s, title) for v, s, title in COLUMNS if v in entry["runs"]]
        settings = entry["settings"]
        header = (
            f"**{dataset}**: one-class AUROC (%), {settings['backend']} backend, seed {settings['seed']}, "
            f"{settings['epochs']} epochs, batch {settings['batch_size']}, lr {settings['lr']}, "
            f"limit_train {settings['limit_train']}, limit_test {settings['limit_test']}, "
            f"adVAE L = {settings['advae_score_samples']}"
        )
        lines = [header, "", "| normal class | " + " | ".join(t for _, _, t in columns) + " |",
                 "|---" * (len(columns) + 1) + "|"]
        for c in settings["classes"]:
            cells = [entry["runs"][v]["per_class"][str(c)].get(f"auroc_{s}") for v, s, _ in columns]
            lines.append(f"| {c} | " + " | ".join(_percent(a) for a in cells) + " |")
        means = [entry["runs"][v]["mean"].get(f"auroc_{s}") for v, s, _ in columns]
        lines.append("| **mean** | " + " | ".join(f"**{_percent(a)}**" for a in means) + " |")
        seconds = ", ".join(f"{name} {run['seconds']:.0f} s" for name, run in entry["runs"].items())
        lines += ["", f"Wall time (train + score, all classes): {seconds}."]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="digits", help="digits (default, offline), mnist or fashion-mnist")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--backend", default="pyro")
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--classes", nargs="+", type=int, default=list(range(10)))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit-train", type=int, default=None, help="random subset of the whole training set, before the class is picked")
    parser.add_argument("--limit-test", type=int, default=None)
    parser.add_argument("--score-samples", type=int, default=1000, help="adVAE's L (advae.8); the paper's 1000 by default")
    parser.add_argument(
        "--torch-threads", type=int, default=1,
        help="torch intra-op threads (1: small nets on a shared machine run fastest without thread contention)",
    )
    parser.add_argument("--out", default=str(RESULTS))
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.backend == "pyro":
        import torch

        torch.set_num_threads(args.torch_threads)
    out = Path(args.out)
    entry = run(args)
    results = load_results(out)
    results[args.dataset] = entry
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, json.dumps(results, indent=2).encode())
    print(anomaly_table({args.dataset: entry}))
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
