"""The stick-breaking, tree and memory VAEs of issue 12 against their baselines at an equal budget.

Each contender trains with the same data, epochs, batch size, learning rate and
seeds; the figures are means (and standard deviations) over seeds:

``sbvae``
    SB-VAE (K = 50, alpha0 = 5, 500 hidden) against a Gaussian VAE of the same
    network (z = 50): accuracy of a kNN classifier (k = 3, 5, 10; 1000 labelled
    training images) on the codes, pi(E_q[v]) against mu(x), and the
    importance-sampled test NLL.
``npvae``
    NpVAE (16 leaves, z = 16) against a Gaussian VAE with z = 16 followed by
    k-means with 16 clusters on mu(x): leaf-majority (cluster) accuracy, and the NLL.
``mevae``
    MEM-VAE (500-500, z = 100, slots 30 and 70) against the VAE with the same number
    of parameters (guides.memory.matched_vae_hidden) and the plain 500-500 VAE:
    the NLL (without the LRE).

    python benchmarks/npmem.py                      # digits, 30 epochs, 3 seeds (the claims' quick budget)
    python benchmarks/npmem.py --epochs 2 --seeds 1  # smoke run

It writes ``benchmarks/results/npmem.json`` and prints the table. Not part of CI.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from guides.memory import matched_vae_hidden, mevae_count, vae_count
from guides.tree import leaf_majority_accuracy
from zoo import registry
from zoo.config import TrainOptions, override
from zoo.evaluate import importance_sampled_metrics, latent_knn_accuracy
from zoo.run import make_trainer

RESULTS = Path(__file__).parent / "results"


def codes(trainer, images) -> np.ndarray:
    """The encoder means (or SB-VAE's weights) of ``images``, whatever the backend."""
    if trainer.backend == "pyro":
        import torch

        with torch.no_grad():
            return trainer.variant.encode(torch.as_tensor(images, device=trainer.device)).cpu().numpy()
    import jax.numpy as jnp

    return np.asarray(trainer.variant.encode(trainer.params, jnp.asarray(images)))


def train(variant: str, settings: dict, args, seed: int):
    config = override(registry.default_config(variant), {k: json.dumps(v) for k, v in settings.items()})
    options = TrainOptions(backend=args.backend, dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size,
                           lr=args.lr, seed=seed, limit_train=args.limit_train)
    trainer = make_trainer(variant, config, options)
    start = time.perf_counter()
    for epoch in range(args.epochs):
        loss = trainer.run_epoch(epoch)
    seconds = time.perf_counter() - start
    metrics = importance_sampled_metrics(trainer, trainer.test_data(), args.is_particles)
    metrics.update(train_loss=float(loss), train_seconds=seconds)
    return trainer, metrics


def knn(trainer, dataset) -> dict:
    def encode(images):
        return codes(trainer, images)

    return {f"knn_accuracy_k{k}": latent_knn_accuracy(encode, dataset, 1000, k) for k in (3, 5, 10)}


def run_seed(args, seed: int) -> dict:
    rows = {}
    parts = set(args.only.split(","))

    def record(label, trainer, metrics, **extra):
        metrics.update(extra)
        rows[label] = {k: v for k, v in metrics.items() if k != "tree_dot"}
        print(f"  seed {seed} {label:<28} NLL {metrics['test_nll']:.2f}  ({metrics['train_seconds']:.0f} s)", flush=True)

    if "sbvae" in parts:
        sbvae_table(args, seed, record)
    if "npvae" in parts:
        npvae_table(args, seed, record)
    if "mevae" in parts:
        mevae_table(args, seed, record)
    return rows


def sbvae_table(args, seed, record):
    trainer, metrics = train("sbvae", {}, args, seed)
    record("SB-VAE", trainer, metrics, **knn(trainer, trainer.dataset))
    trainer, metrics = train("vae", {"hidden": [500], "z_dim": 50}, args, seed)
    record("Gauss-VAE (500, z=50)", trainer, metrics, **knn(trainer, trainer.dataset))


def npvae_table(args, seed, record):
    trainer, metrics = train("npvae", {}, args, seed)
    record("NpVAE", trainer, metrics, **trainer.extra_metrics())
    trainer, metrics = train("vae", {"z_dim": 16}, args, seed)
    from sklearn.cluster import KMeans

    data = trainer.dataset
    train_codes, test_codes = codes(trainer, data.x_train), codes(trainer, data.x_test)
    centres = KMeans(n_clusters=16, n_init=3, random_state=seed).fit(train_codes).cluster_centers_
    accuracy, _ = leaf_majority_accuracy(train_codes, data.y_train, test_codes, data.y_test, centres)
    record("VAE (z=16) + k-means(16)", trainer, metrics, cluster_accuracy=accuracy)


def mevae_table(args, seed, record):
    trainer, metrics = train("mevae", {}, args, seed)
    data = trainer.dataset
    mem_params = mevae_count(data.x_dim, 100, (500, 500), (30, 70), "ladder")
    record("MEM-VAE", trainer, metrics, num_parameters=mem_params)
    matched = matched_vae_hidden(data.x_dim, 100, 2, mem_params)
    trainer, metrics = train("vae", {"hidden": list(matched), "z_dim": 100}, args, seed)
    record(f"VAE {matched[0]}-{matched[1]} (same params)", trainer, metrics,
           num_parameters=vae_count(data.x_dim, 100, matched))
    trainer, metrics = train("vae", {"hidden": [500, 500], "z_dim": 100}, args, seed)
    record("VAE 500-500", trainer, metrics)


def summarise(per_seed: list[dict]) -> dict:
    summary = {}
    for label in per_seed[0]:
        summary[label] = {}
        for key, value in per_seed[0][label].items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value is not None:
                values = [seed[label][key] for seed in per_seed if seed[label].get(key) is not None]
                summary[label][key] = {"mean": statistics.fmean(values),
                                       "sd": statistics.stdev(values) if len(values) > 1 else 0.0}
    return summary


def table(summary: dict) -> str:
    def cell(label, key, digits=2):
        entry = summary.get(label, {}).get(key)
        return "n/a" if entry is None else f"{entry['mean']:.{digits}f} ± {entry['sd']:.{digits}f}"

    matched = next((label for label in summary if label.endswith("(same params)")), "VAE (same params)")
    lines = [
        "| claim | ours | baseline |",
        "|---|---|---|",
        f"| SB-VAE kNN accuracy (k=3) vs Gauss-VAE, higher | {cell('SB-VAE', 'knn_accuracy_k3', 3)} | {cell('Gauss-VAE (500, z=50)', 'knn_accuracy_k3', 3)} |",
        f"| SB-VAE kNN accuracy (k=5) | {cell('SB-VAE', 'knn_accuracy_k5', 3)} | {cell('Gauss-VAE (500, z=50)', 'knn_accuracy_k5', 3)} |",
        f"| SB-VAE kNN accuracy (k=10) | {cell('SB-VAE', 'knn_accuracy_k10', 3)} | {cell('Gauss-VAE (500, z=50)', 'knn_accuracy_k10', 3)} |",
        f"| SB-VAE test NLL vs Gauss-VAE (paper: slightly worse) | {cell('SB-VAE', 'test_nll')} | {cell('Gauss-VAE (500, z=50)', 'test_nll')} |",
        f"| NpVAE leaf-majority accuracy vs VAE + k-means(16), higher | {cell('NpVAE', 'leaf_accuracy', 3)} | {cell('VAE (z=16) + k-means(16)', 'cluster_accuracy', 3)} |",
        f"| NpVAE k-means(16) on its own codes | {cell('NpVAE', 'kmeans_accuracy_same_codes', 3)} | |",
        f"| NpVAE test NLL vs VAE (z=16) | {cell('NpVAE', 'test_nll')} | {cell('VAE (z=16) + k-means(16)', 'test_nll')} |",
        f"| MEM-VAE test NLL vs {matched}, lower | {cell('MEM-VAE', 'test_nll')} | {cell(matched, 'test_nll')} |",
        f"| MEM-VAE test NLL vs VAE 500-500 | {cell('MEM-VAE', 'test_nll')} | {cell('VAE 500-500', 'test_nll')} |",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--backend", default="pyro", choices=registry.BACKENDS)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--limit-train", type=int, default=None)
    parser.add_argument("--is-particles", type=int, default=500)
    parser.add_argument("--only", default="sbvae,npvae,mevae", help="comma-separated tables to run")
    parser.add_argument("--out", default=str(RESULTS / "npmem.json"))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    per_seed = [run_seed(args, seed) for seed in range(args.seeds)]
    summary = summarise(per_seed)
    result = {
        "script": "benchmarks/npmem.py",
        "command": "python benchmarks/npmem.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "settings": vars(args),
        "seconds": time.perf_counter() - start,
        "summary": summary,
        "per_seed": per_seed,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(table(summary))
    print(f"wrote {args.out} ({result['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
