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
# ArviZ fits the generalized Pareto distribution to the largest ceil(K/5) weights
# and needs at least 5 of them: with fewer particles k-hat is undefined (ArviZ
# returns inf, and fails outright for K = 1).
PSIS_MIN_PARTICLES = 21


def psis_khat(log_weights: np.ndarray) -> np.ndarray:
    """PSIS k-hat per datapoint from log weights of shape (K, B); NaN when
    K < PSIS_MIN_PARTICLES."""
    if log_weights.shape[0] < PSIS_MIN_PARTICLES:
        return np.full(log_weights.shape[1], np.nan)
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
    has_khat = num_particles >= PSIS_MIN_PARTICLES
    return {
        "num_test": int(n),
        "k": int(num_particles),
        "test_elbo": float(elbo.mean()),
        "test_log_likelihood": float(log_likelihood.mean()),
        "test_nll": float(-log_likelihood.mean()),
        "test_log_likelihood_stderr": float(log_likelihood.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0,
        # None (null in eval.json) when K is too small for a Pareto fit.
        "psis_khat_mean": float(khat.mean()) if has_khat else None,
        "psis_khat_fraction_above_0.7": float(np.mean(khat > KHAT_THRESHOLD)) if has_khat else None,
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


def latent_knn_accuracy(encode, dataset, num_labels: int = 1000, neighbours: int = 5, seed: int = 0) -> float:
    """Test accuracy of a k-nearest-neighbour classifier on latent codes.

    ``encode`` maps an array of images to an array of codes (e.g. ``mu_phi(x)``);
    the classifier is fitted on ``num_labels`` training images drawn with ``seed``
    (the few-labels protocol of InfoVAE and the stick-breaking VAE) and scored on
    the whole test set. Backend-free: numpy in, numpy out.
    """
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(seed)
    labelled = rng.choice(len(dataset.x_train), size=min(num_labels, len(dataset.x_train)), replace=False)
    classifier = KNeighborsClassifier(n_neighbors=neighbours)
    classifier.fit(np.asarray(encode(dataset.x_train[labelled])), dataset.y_train[labelled])
    return float(classifier.score(np.asarray(encode(dataset.x_test)), dataset.y_test))


def fairness_metrics(z_train, s_train, y_train, z_test, s_test, y_test, y_pred, seed: int = 0,
                     max_probe_train: int = 3000) -> dict:
    """The fair-representation evaluation of Louizos et al. (VFAE) on codes ``z``.

    - ``y_accuracy``: accuracy of the model's own predictions ``y_pred`` on the test set;
    - ``y_accuracy_logreg``: a logistic-regression probe predicting y from z;
    - ``s_accuracy_logreg`` / ``s_accuracy_forest``: logistic regression and a random
      forest predicting the sensitive s from z (the closer to ``s_majority_rate``,
      the less z reveals s);
    - ``discrimination``: ``1/2 sum_c |P(y_pred=c | s=0) - P(y_pred=c | s=1)|``, which
      for two classes is the paper's ``|P(y_pred=1 | s=0) - P(y_pred=1 | s=1)|``;
      ``label_discrimination`` is the same for the true labels, for scale.

    Probes train on at most ``max_probe_train`` training codes (a seeded subset) and
    are scored on the whole test set. Backend-free: numpy in, numbers out.
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    def logistic_regression():
        # Standardised codes: the same classifier, reached in far fewer iterations.
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))

    z_train, z_test = np.asarray(z_train, dtype=np.float64), np.asarray(z_test, dtype=np.float64)
    rng = np.random.default_rng(seed)
    keep = rng.permutation(len(z_train))[:max_probe_train]
    z_fit, s_fit, y_fit = z_train[keep], np.asarray(s_train)[keep], np.asarray(y_train)[keep]
    s_test, y_test, y_pred = np.asarray(s_test), np.asarray(y_test), np.asarray(y_pred)

    def probe(model, fit_targets, test_targets) -> float:
        if len(np.unique(fit_targets)) < 2:  # one class to learn from: the constant guess
            return float(np.mean(test_targets == fit_targets[0]))
        # One BLAS thread: beside torch's and JAX's thread pools, small fits with
        # several threads spend their time contending (tens of times slower).
        with threadpool_limits(1):
            return float(model.fit(z_fit, fit_targets).score(z_test, test_targets))

    def parity_gap(labels) -> float:
        classes = np.union1d(labels, y_test)
        rate = lambda group: np.array([np.mean(labels[s_test == group] == c) for c in classes])  # noqa: E731
        if not (np.any(s_test == 0) and np.any(s_test == 1)):
            return 0.0
        return float(0.5 * np.abs(rate(0) - rate(1)).sum())

    majority = max(np.mean(s_test), 1 - np.mean(s_test))
    return {
        "y_accuracy": float(np.mean(y_pred == y_test)),
        "y_accuracy_logreg": probe(logistic_regression(), y_fit, y_test),
        "s_accuracy_logreg": probe(logistic_regression(), s_fit, s_test),
        "s_accuracy_forest": probe(RandomForestClassifier(n_estimators=100, random_state=seed), s_fit, s_test),
        "s_majority_rate": float(majority),
        "discrimination": parity_gap(y_pred),
        "label_discrimination": parity_gap(y_test),
    }
