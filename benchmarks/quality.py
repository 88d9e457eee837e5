"""Test log-likelihood of the VAE and the IWAE(k=5) after equal training (issue 2, item 9).

Both variants train for the same number of epochs, from the same seed (so the same
initial weights and the same order of minibatches), on dynamically binarized Fashion-MNIST: a
fresh Bernoulli draw of every training image in every minibatch. They are scored on
a fixed-binarized test subset (``zoo.data`` binarizes the test set once, with a
constant seed, whatever the run's seed) by the importance-sampled log-likelihood

    L_K(x) = log (1/K) sum_k p(x, z_k) / q(z_k|x),   z_k ~ q(z|x),   K = 1000,

Burda et al.'s bound, averaged over the test images
(:func:`zoo.evaluate.importance_sampled_metrics`; ELBO and PSIS k-hat come with
it). IWAE trains on L_5 (iwae.1), the VAE on L_1 (vae.4): the IWAE paper's claim is
that the tighter training bound buys a higher L_K on test data.

Defaults: 10 epochs on the whole training set (60,000 images), batch 128, L_1000
on 1,000 test images; the two Pyro variants take about 3 minutes on 2 idle CPU
cores (IWAE's epoch costs about twice the VAE's), up to 15 on busy ones. On a
20,000-image subset the two bounds are still level after 10 epochs
(benchmarks/README.md); ``--limit`` trains on a subset.

    python benchmarks/quality.py                           # Pyro, Fashion-MNIST
    python benchmarks/quality.py --backends pyro numpyro   # both backends
    python benchmarks/quality.py --dataset digits --epochs 2 --limit 200 --test-limit 50 --k-eval 50
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from zoo import registry
from zoo.config import TrainOptions, override
from zoo.data import DataError, load_dataset
from zoo.evaluate import importance_sampled_metrics
from zoo.run import atomic_write, make_trainer

RESULTS = Path(__file__).parent / "results"
VARIANTS = ("vae", "iwae")


def available_dataset(name: str) -> str:
    """``name`` if it loads, else digits with a warning."""
    try:
        load_dataset(name, binarize="none", limit_train=1, limit_test=1)
        return name
    except DataError as error:
        if name == "digits":
            raise
        warnings.warn(f"{name} is not available ({error}); using digits instead", stacklevel=2)
        return "digits"


class RecordingTrainer:
    """A trainer whose log weights are kept as :func:`importance_sampled_metrics` draws them.

    The metrics are means over the test images; the comparison of two models on the
    same images wants the per-image ``L_K`` as well, from the same draws.
    """

    def __init__(self, trainer):
        self.trainer = trainer
        self.chunks: list[np.ndarray] = []

    def log_weights(self, arrays: dict, num_particles: int) -> np.ndarray:
        log_w = self.trainer.log_weights(arrays, num_particles)
        self.chunks.append(log_w)
        return log_w

    def log_likelihoods(self, num_particles: int) -> np.ndarray:
        """Per test image ``L_K = log (1/K) sum_k w_k``; chunks of one block arrive in a row."""
        per_block, pending = [], []
        for log_w in self.chunks:
            pending.append(log_w)
            if sum(len(chunk) for chunk in pending) == num_particles:
                per_block.append(np.logaddexp.reduce(np.concatenate(pending), axis=0) - np.log(num_particles))
                pending = []
        return np.concatenate(per_block)


def train_and_score(variant: str, backend: str, args, dataset: str, log=print) -> dict:
    """Train ``variant`` for ``args.epochs`` epochs, then L_K on the test subset."""
    config = registry.default_config(variant)
    if variant == "iwae":
        config = override(config, {"k": str(args.k_train)})
    options = TrainOptions(
        backend=backend,
        dataset=dataset,
        binarize="dynamic",
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        limit_train=args.limit or None,
        limit_test=args.test_limit,
    )
    trainer = make_trainer(variant, config, options)
    losses, seconds = [], []
    for epoch in range(args.epochs):
        started = time.perf_counter()
        losses.append(trainer.run_epoch(epoch))
        seconds.append(time.perf_counter() - started)
        log(f"  {variant}/{backend} epoch {epoch + 1:>3}  loss {losses[-1]:9.3f}  ({seconds[-1]:.1f} s)")
    started = time.perf_counter()
    recorder = RecordingTrainer(trainer)
    metrics = importance_sampled_metrics(recorder, trainer.test_data(), args.k_eval)
    metrics["evaluation_seconds"] = time.perf_counter() - started
    log_likelihoods = recorder.log_likelihoods(args.k_eval)
    assert np.isclose(log_likelihoods.mean(), metrics["test_log_likelihood"])
    log(f"  {variant}/{backend} L_{args.k_eval} {metrics['test_log_likelihood']:.3f}  ({metrics['evaluation_seconds']:.1f} s)")
    return {
        "variant": variant,
        "backend": backend,
        "config": {"k": config.k} if variant == "iwae" else {},
        "train_losses": losses,
        "epoch_seconds": seconds,
        "num_train": trainer.num_train,
        **metrics,
        "log_likelihoods": log_likelihoods.tolist(),
    }


def iwae_gain(results: list[dict]) -> dict:
    """Per backend: the mean over test images of ``L_K(IWAE) - L_K(VAE)``, and its
    standard error.

    Both models are scored on the same images, so the error is that of the paired
    differences: the spread of ``L_K`` between images (a few nats), which is the
    same for both models, cancels.
    """
    gains = {}
    by_key = {(row["variant"], row["backend"]): row for row in results}
    for backend in sorted({row["backend"] for row in results}):
        vae, iwae = by_key.get(("vae", backend)), by_key.get(("iwae", backend))
        if vae is None or iwae is None:
            continue
        differences = np.asarray(iwae["log_likelihoods"]) - np.asarray(vae["log_likelihoods"])
        stderr = float(differences.std(ddof=1) / np.sqrt(len(differences))) if len(differences) > 1 else 0.0
        difference = float(differences.mean())
        gains[backend] = {"difference": difference, "stderr": stderr, "iwae_beats_vae": difference > 0}
    return gains


def machine_info() -> dict:
    import torch

    info = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    if "jax" in sys.modules:
        info["jax"] = sys.modules["jax"].__version__
    return info


def format_table(results: list[dict], k_eval: int) -> str:
    header = f"{'variant':<8} {'backend':<8} {'epochs':>6} {'train loss':>10} {'test ELBO':>10} {f'L_{k_eval}':>9} {'+-':>5} {'k-hat':>6} {'s/epoch':>8}"
    lines = [header, "-" * len(header)]
    for row in results:
        khat = "-" if row["psis_khat_mean"] is None else f"{row['psis_khat_mean']:.2f}"  # None: K too small to fit
        lines.append(
            f"{row['variant']:<8} {row['backend']:<8} {len(row['train_losses']):>6} {row['train_losses'][-1]:>10.2f} "
            f"{row['test_elbo']:>10.2f} {row['test_log_likelihood']:>9.2f} {row['test_log_likelihood_stderr']:>5.2f} "
            f"{khat:>6} {sum(row['epoch_seconds']) / len(row['epoch_seconds']):>8.2f}"
        )
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="fashion-mnist", help="fashion-mnist (default; digits if missing), mnist, digits")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs of each variant (default 10)")
    parser.add_argument("--limit", type=int, default=0, help="train on at most this many images (default 0: all)")
    parser.add_argument("--test-limit", type=int, default=1000, help="fixed-binarized test images (default 1000)")
    parser.add_argument("--k-eval", type=int, default=1000, help="importance samples K of L_K (default 1000)")
    parser.add_argument("--k-train", type=int, default=5, help="IWAE's k in training (default 5)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backends", nargs="+", default=["pyro"], choices=registry.BACKENDS)
    parser.add_argument("--out", type=Path, default=RESULTS / "quality.json")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    dataset = available_dataset(args.dataset)
    print(
        f"{dataset}, dynamic binarization: {args.epochs} epochs on {args.limit or 'all'} training images, "
        f"L_{args.k_eval} on {args.test_limit} fixed-binarized test images"
    )
    results = [train_and_score(variant, backend, args, dataset) for backend in args.backends for variant in VARIANTS]
    gains = iwae_gain(results)
    print()
    print(format_table(results, args.k_eval))
    for backend, gain in gains.items():
        verdict = "beats" if gain["iwae_beats_vae"] else "does not beat"
        print(
            f"{backend}: IWAE(k={args.k_train}) {verdict} the VAE on L_{args.k_eval} after {args.epochs} epochs: "
            f"{gain['difference']:+.2f} +- {gain['stderr']:.2f} nats"
        )
    record = {
        "benchmark": "quality",
        "dataset": dataset,
        "binarize": "dynamic",
        "settings": {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()},
        "machine": machine_info(),
        "command": " ".join(["quality.py", *(sys.argv[1:] if argv is None else argv)]),
        # Per-image L_K stays out of the file: it is only there for the paired difference.
        "results": [{k: v for k, v in row.items() if k != "log_likelihoods"} for row in results],
        "iwae_minus_vae": gains,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out, json.dumps(record, indent=2).encode())
    print(f"\nwritten to {args.out}")
    return record


if __name__ == "__main__":
    main()
