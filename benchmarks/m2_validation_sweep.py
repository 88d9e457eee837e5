"""M2's classification weight and labelled share, chosen on a validation split.

Each grid point trains M2 on the Fashion-MNIST training subset less ``--validation``
held-out rows (seed 0) and scores q(y|x) on those rows, beside the supervised-only
classifier of the same size given as many gradient steps; the test set is never
read. Its result chose the alpha grid of M2's ``full`` claims (zoo/m2/card.py).

    python benchmarks/m2_validation_sweep.py --backend numpyro --epochs 20 --limit-train 10000 \\
        --alpha 0.1 1 --fraction 0.1 0.5

writes ``benchmarks/results/m2_validation_sweep.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from pathlib import Path

from machine import machine_info

from zoo.reproduce import Runner


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="numpyro", choices=("pyro", "numpyro"))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--limit-train", type=int, default=10000)
    parser.add_argument("--validation", type=int, default=1000)
    parser.add_argument("--labels", type=int, default=100)
    parser.add_argument("--alpha", type=float, nargs="+", default=[0.1, 1.0], help="alpha_scale values (alpha / N)")
    parser.add_argument("--fraction", type=float, nargs="+", default=[0.1, 0.5], help="labelled_fraction values")
    parser.add_argument("--out", default="benchmarks/results/m2_validation_sweep.json")
    args = parser.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory(prefix="m2-sweep-") as scratch:
        runner = Runner(args.backend, Path(scratch), log=lambda *a: None)
        runner.eval_k = 10  # the likelihood is not what this sweep scores
        for fraction, alpha in itertools.product(args.fraction, args.alpha):
            options = {"dataset": "fashion-mnist", "binarize": "dynamic", "epochs": args.epochs, "batch_size": 128,
                       "lr": 1e-3, "limit_train": args.limit_train, "limit_test": 300, "extra": {"labels": args.labels}}
            metrics = runner.run("m2", {"alpha_scale": alpha, "labelled_fraction": fraction}, options, seed=0,
                                 validation=args.validation)
            rows.append({"labelled_fraction": fraction, "alpha_scale": alpha,
                         "m2_validation_accuracy": metrics["test_accuracy"],
                         "supervised_validation_accuracy": metrics["supervised_test_accuracy"],
                         "gradient_steps": metrics["supervised_steps"], "seconds": metrics["run_seconds"]})
            print(f"fraction {fraction:<4} alpha {alpha:<5} M2 {rows[-1]['m2_validation_accuracy']:.3f}  "
                  f"supervised {rows[-1]['supervised_validation_accuracy']:.3f}  "
                  f"({rows[-1]['gradient_steps']} steps, {rows[-1]['seconds']:.0f} s)", flush=True)
    record = {"benchmark": "m2_validation_sweep", "arguments": vars(args), "machine": machine_info(), "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
