"""Issue 5's report in one run: the anomaly AUROC table, then the InfoVAE, FAE and
LSVAE tables, on one dataset.

    python benchmarks/objectives_report.py --dataset fashion-mnist
    python benchmarks/objectives_report.py --dataset digits --epochs 2 --limit-train 500   # smoke run

The two halves are ``benchmarks/anomaly.py`` (VAE, VAE-SVDD, adVAE, one class at a
time) and ``benchmarks/regularised.py`` (InfoVAE vs VAE, the FAE sweep, LSVAE vs the
Bernoulli VAE); each writes its own JSON in ``benchmarks/results/``. Their own
``--help`` lists every setting; here only the shared ones are passed on.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import anomaly  # noqa: E402
import regularised  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--backend", default="pyro")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--limit-train", type=int, default=20000)
    parser.add_argument("--limit-test", type=int, default=5000, help="test images of the anomaly table")
    parser.add_argument("--score-samples", type=int, default=20, help="adVAE's L (the paper's is 1000)")
    args = parser.parse_args(argv)
    shared = ["--dataset", args.dataset, "--backend", args.backend, "--epochs", str(args.epochs), "--limit-train", str(args.limit_train)]
    print("=== One-class anomaly detection (AUROC) ===")
    anomaly.main(shared + ["--limit-test", str(args.limit_test), "--batch-size", "128", "--score-samples", str(args.score_samples)])
    print("\n=== Regularised objectives: InfoVAE, FAE sweep, LSVAE ===")
    regularised.main(shared)
    return 0


if __name__ == "__main__":
    sys.exit(main())
