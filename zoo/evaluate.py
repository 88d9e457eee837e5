"""Evaluation of a trained run: test ELBO, importance-sampled log-likelihood, PSIS.

For each test datapoint, K importance weights ``w_k = p(x, z_k) / q(z_k|x)`` with
``z_k ~ q(z|x)`` give

- the ELBO estimate ``(1/K) sum_k log w_k``,
- the importance-sampled log-likelihood ``log (1/K) sum_k w_k`` (Burda et al.'s
  ``L_K``, a stochastic lower bound of ``log p(x)`` that tightens with K),
- ArviZ's Pareto-smoothed importance sampling shape ``k-hat`` of the weights: the
  guide is a trustworthy proposal for that datapoint when ``k-hat <= 0.7``.

Datapoints are processed in blocks and particles in chunks, so memory stays bounded
for K=5000 on the full test set.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from zoo.run import atomic_write, restore

KHAT_THRESHOLD = 0.7


def psis_khat(log_weights: np.ndarray) -> np.ndarray:
    """PSIS k-hat per datapoint from log weights of shape (K, B)."""
    import arviz as az

    with warnings.catch_warnings():
        # ArviZ warns when k-hat is large; the number itself is what we report.
        warnings.simplefilter("ignore")
        _, khat = az.psislw(np.ascontiguousarray(log_weights.T))
    return np.asarray(khat)


def importance_sampled_metrics(
    trainer, arrays: dict, num_particles: int, block_size: int = 100, particle_chunk: int = 500
) -> dict:
    """Per-datapoint ELBO, L_K and k-hat, averaged over ``arrays``."""
    n = len(arrays["x"])
    elbo, log_likelihood, khat = [], [], []
    for start in range(0, n, block_size):
        block = {k: v[start : start + block_size] for k, v in arrays.items()}
        chunks = []
        for done in range(0, num_particles, particle_chunk):
            chunks.append(trainer.log_weights(block, min(particle_chunk, num_particles - done)))
        log_w = np.concatenate(chunks, axis=0)  # (K, block)
        elbo.append(log_w.mean(axis=0))
        log_likelihood.append(np.logaddexp.reduce(log_w, axis=0) - np.log(num_particles))
        khat.append(psis_khat(log_w))
    elbo, log_likelihood, khat = map(np.concatenate, (elbo, log_likelihood, khat))
    return {
        "num_test": int(n),
        "k": int(num_particles),
        "test_elbo": float(elbo.mean()),
        "test_log_likelihood": float(log_likelihood.mean()),
        "test_nll": float(-log_likelihood.mean()),
        "test_log_likelihood_stderr": float(log_likelihood.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0,
        "psis_khat_mean": float(khat.mean()),
        "psis_khat_fraction_above_0.7": float(np.mean(khat > KHAT_THRESHOLD)),
    }


def evaluate(run_dir: Path, k: int = 5000, limit: int | None = None, device: str | None = None) -> dict:
    trainer, variant, config, options, epoch = restore(Path(run_dir), device=device)
    arrays = trainer.test_data()
    if limit is not None:
        arrays = {key: value[:limit] for key, value in arrays.items()}
    results = {
        "variant": variant,
        "backend": options.backend,
        "dataset": options.dataset,
        "binarize": trainer.dataset.binarize,
        "epochs_trained": epoch + 1,
    }
    results.update(importance_sampled_metrics(trainer, arrays, k))
    results.update(trainer.extra_metrics())
    atomic_write(Path(run_dir) / "eval.json", json.dumps(results, indent=2).encode())
    return results


def format_table(results: dict) -> str:
    width = max(len(key) for key in results)
    lines = []
    for key, value in results.items():
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        lines.append(f"{key:<{width}}  {shown}")
    return "\n".join(lines)
