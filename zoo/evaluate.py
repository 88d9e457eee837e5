"""Evaluation of a trained run: test ELBO, importance-sampled log-likelihood, PSIS.

For each test datapoint, K importance weights ``w_k = p(x, z_k) / q(z_k|x)`` with
``z_k ~ q(z|x)`` give

- the ELBO estimate ``(1/K) sum_k log w_k``,
- the importance-sampled log-likelihood ``log (1/K) sum_k w_k`` (Burda et al.'s
  ``L_K``, a stochastic lower bound of ``log p(x)`` that tightens with K),
- ArviZ's Pareto-smoothed importance sampling shape ``k-hat`` of the weights: the
  guide is a trustworthy proposal for that datapoint when ``k-hat <= 0.7``. When
  most datapoints exceed it, ``L_K`` is a loose lower bound and comparisons on it
  are refused (VARIANTS.md §19, item 7): :func:`format_table` says so.

The proposal need not be the guide (``proposal="defensive"`` or ``"prior"``, see
:mod:`zoo.pyro_backend.objectives.proposal`): every proposal with full support
gives an unbiased estimate of ``p(x)`` inside the log, so ``L_K`` stays a
stochastic lower bound, and a defensive mixture keeps the weights bounded for any
encoder.

MMD statistics (:func:`mmd_u_statistic`, :func:`mmd_test`) are the unbiased
U-statistic with a bootstrap interval and a permutation p-value, numpy only.

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


PROPOSALS = ("guide", "defensive", "prior")


def proposal_log_weights(trainer, arrays: dict, num_particles: int, proposal: str = "guide") -> np.ndarray:
    """``(K, B)`` log weights ``log p(x, z) - log r(z|x)``, ``z ~ r``, for the proposal
    ``r`` named by ``proposal`` (the guide, the defensive mixture or the prior).

    Works for any trainer of either backend: the proposal is a handler around the
    variant's own ``log_weights`` that swaps the guide's Normal latent sites.
    """
    if proposal == "guide":
        return trainer.log_weights(arrays, num_particles)
    if proposal not in PROPOSALS:
        raise ValueError(f"unknown proposal {proposal!r}; choose one of {', '.join(PROPOSALS)}")
    if getattr(trainer, "backend", None) == "pyro":
        from zoo.pyro_backend.objectives.proposal import ProposalMessenger

        with ProposalMessenger(proposal):
            return trainer.log_weights(arrays, num_particles)
    if getattr(trainer, "backend", None) == "numpyro":
        return _numpyro_proposal_log_weights(trainer, arrays, num_particles, proposal)
    raise ValueError(f"proposal {proposal!r} needs a Pyro or NumPyro trainer")


def _numpyro_proposal_log_weights(trainer, arrays, num_particles, proposal):
    # The trainer's own log_weights is jit-compiled once; a handler around a later
    # call would not be traced. A compiled function per proposal, kept on the trainer.
    import jax
    import jax.numpy as jnp

    from zoo.numpyro_backend.objectives.proposal import ProposalMessenger

    compiled = trainer.__dict__.setdefault("_proposal_log_weights", {})
    if proposal not in compiled:
        def impl(params, key, k, batch):
            with ProposalMessenger(kind=proposal):
                return trainer.variant.log_weights(params, key, k, **batch)

        compiled[proposal] = jax.jit(impl, static_argnums=2)
    trainer.root_key, key = jax.random.split(trainer.root_key)
    batch = {k: jnp.asarray(v) for k, v in arrays.items()}
    return np.asarray(compiled[proposal](trainer.params, key, num_particles, batch), dtype=np.float64)


def importance_sampled_metrics(
    trainer, arrays: dict, num_particles: int, block_size: int = 100, particle_chunk: int = 500,
    proposal: str = "guide",
) -> dict:
    """Per-datapoint ELBO, L_K and k-hat, averaged over ``arrays``.

    With another ``proposal`` than the guide, ``test_elbo`` is ``E_r log w``, a
    bound under that proposal, not the model's ELBO.
    """
    n = len(arrays["x"])
    elbo, log_likelihood, khat = [], [], []
    for start in range(0, n, block_size):
        block = {k: v[start : start + block_size] for k, v in arrays.items()}
        chunks = []
        for done in range(0, num_particles, particle_chunk):
            chunks.append(proposal_log_weights(trainer, block, min(particle_chunk, num_particles - done), proposal))
        log_w = np.concatenate(chunks, axis=0)  # (K, block)
        elbo.append(log_w.mean(axis=0))
        log_likelihood.append(np.logaddexp.reduce(log_w, axis=0) - np.log(num_particles))
        khat.append(psis_khat(log_w))
    elbo, log_likelihood, khat = map(np.concatenate, (elbo, log_likelihood, khat))
    has_khat = num_particles >= PSIS_MIN_PARTICLES
    return {
        "num_test": int(n),
        "k": int(num_particles),
        "proposal": proposal,
        "test_elbo": float(elbo.mean()),
        "test_log_likelihood": float(log_likelihood.mean()),
        "test_nll": float(-log_likelihood.mean()),
        "test_log_likelihood_stderr": float(log_likelihood.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0,
        # None (null in eval.json) when K is too small for a Pareto fit.
        "psis_khat_mean": float(khat.mean()) if has_khat else None,
        "psis_khat_fraction_above_0.7": float(np.mean(khat > KHAT_THRESHOLD)) if has_khat else None,
    }


def generic_metrics(trainer, arrays: dict, num_points: int = 1000) -> dict:
    """Metrics every variant can be scored on, so that claims compare like with like.

    - ``test_reconstruction_mse``: mean squared error per pixel of the variant's own
      ``reconstruct`` on the first ``num_points`` test images;
    - for a one-class run, ``auroc_elbo``: the AUROC of the ``-ELBO`` score
      (zoo.anomaly), the baseline of every anomaly-detection claim.
    """
    shown = {key: value[:num_points] for key, value in arrays.items()}
    metrics = {"test_reconstruction_mse": float(np.mean((trainer.reconstruct(shown) - shown["x"]) ** 2))}
    if getattr(trainer.dataset, "normal_class", None) is not None:
        from zoo.anomaly import scores_auroc

        metrics.update(scores_auroc(trainer))
    return metrics


def evaluate(run_dir: Path, k: int = 5000, limit: int | None = None, device: str | None = None,
             proposal: str = "guide", extra: bool = True) -> dict:
    """Evaluate a trained run on its test set and write ``eval.json``.

    ``proposal``: the importance-sampling proposal of ``L_K`` (guide, defensive or
    prior); k-hat is always reported beside it. With ``extra=False`` the variant's
    own ``extra_metrics`` (written into metrics.json by training) are not recomputed.
    """
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
    results.update(importance_sampled_metrics(trainer, arrays, k, proposal=proposal))
    results.update(generic_metrics(trainer, arrays))
    if extra:
        results.update(trainer.extra_metrics())
    atomic_write(Path(run_dir) / "eval.json", json.dumps(results, indent=2).encode())
    return results


# Keys of importance-sampled figures: each is shown with its k-hat.
IMPORTANCE_SAMPLED = ("test_log_likelihood", "test_nll")


def khat_unreliable(results: dict) -> bool:
    """True when most datapoints have k-hat above 0.7: ``L_K`` is then a loose lower
    bound and comparisons on it are refused (VARIANTS.md §19, item 7)."""
    fraction = results.get("psis_khat_fraction_above_0.7")
    return fraction is not None and fraction > 0.5


def format_table(results: dict) -> str:
    """The results as aligned ``key  value`` lines; every importance-sampled figure
    carries its PSIS k-hat, and a warning line when most k-hat exceed 0.7."""
    width = max(len(key) for key in results)
    mean_khat, fraction = results.get("psis_khat_mean"), results.get("psis_khat_fraction_above_0.7")
    if fraction is None:
        note = "  (k-hat: n/a, K < %d)" % PSIS_MIN_PARTICLES
    else:
        note = f"  (k-hat mean {mean_khat:.2f}, {100 * fraction:.0f}% > {KHAT_THRESHOLD})"
    lines = []
    for key, value in results.items():
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        lines.append(f"{key:<{width}}  {shown}" + (note if key in IMPORTANCE_SAMPLED else ""))
    if khat_unreliable(results):
        lines.append(
            f"WARNING: most k-hat exceed {KHAT_THRESHOLD}: the {results.get('proposal', 'guide')} proposal is poor and "
            "the log-likelihood is a loose lower bound; do not compare it (try --proposal defensive)"
        )
    return "\n".join(lines)


# --- MMD as a statistic -------------------------------------------------------


def _pooled_kernel(a: np.ndarray, b: np.ndarray, gamma: float) -> np.ndarray:
    pooled = np.concatenate([np.asarray(a, np.float64), np.asarray(b, np.float64)])
    squared = np.sum(pooled**2, 1)[:, None] + np.sum(pooled**2, 1)[None, :] - 2 * pooled @ pooled.T
    kernel = np.exp(-gamma * np.maximum(squared, 0.0))
    np.fill_diagonal(kernel, 0.0)  # the U-statistic drops the i = j terms
    return kernel


def _u_statistics(kernel: np.ndarray, weights_a: np.ndarray, weights_b: np.ndarray) -> np.ndarray:
    """U-statistic MMD^2 for rows of multiplicity vectors over the pooled sample
    (shape (R, n + m) each); ``kernel`` has a zero diagonal."""
    def pair_sum(u, v):
        return np.einsum("ri,ri->r", u @ kernel, v)

    def pairs(u):  # ordered pairs of distinct draws
        return u.sum(1) ** 2 - (u**2).sum(1)

    return (pair_sum(weights_a, weights_a) / pairs(weights_a) + pair_sum(weights_b, weights_b) / pairs(weights_b)
            - 2 * pair_sum(weights_a, weights_b) / (weights_a.sum(1) * weights_b.sum(1)))


def mmd_u_statistic(a, b, gamma: float) -> float:
    """The unbiased estimate of ``MMD^2`` (Gretton et al. 2012, eq. 3) with the
    Gaussian kernel ``exp(-gamma ||.||^2)``: the V-statistic without its i = j terms.
    Its mean is 0 when ``a`` and ``b`` come from one distribution (it can be negative)."""
    n, m = len(a), len(b)
    membership = np.concatenate([np.ones(n), np.zeros(m)])[None]
    return float(_u_statistics(_pooled_kernel(a, b, gamma), membership, 1 - membership)[0])


def mmd_test(a, b, gamma: float, num_resamples: int = 200, seed: int = 0, level: float = 0.95) -> dict:
    """``MMD^2_u`` with a bootstrap interval and a permutation test.

    - ``mmd_u``: :func:`mmd_u_statistic`;
    - ``mmd_u_low`` / ``mmd_u_high``: the ``level`` percentile interval over
      ``num_resamples`` bootstrap resamples of each sample (draws of one point twice
      are not paired with each other);
    - ``mmd_p_value``: the fraction of random relabellings of the pooled sample
      whose statistic reaches the observed one (with the observed labelling counted),
      the test of ``p_a = p_b``.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    n, m = len(a), len(b)
    kernel = _pooled_kernel(a, b, gamma)
    rng = np.random.default_rng(seed)
    observed = np.concatenate([np.ones(n), np.zeros(m)])
    value = float(_u_statistics(kernel, observed[None], 1 - observed[None])[0])
    counts_a = np.zeros((num_resamples, n + m))
    counts_b = np.zeros((num_resamples, n + m))
    for r in range(num_resamples):
        np.add.at(counts_a[r], rng.integers(0, n, n), 1.0)
        np.add.at(counts_b[r], n + rng.integers(0, m, m), 1.0)
    boot = _u_statistics(kernel, counts_a, counts_b)
    relabelled = np.stack([rng.permutation(observed) for _ in range(num_resamples)])
    null = _u_statistics(kernel, relabelled, 1 - relabelled)
    tail = (1 - level) / 2
    return {
        "mmd_u": value,
        "mmd_u_low": float(np.quantile(boot, tail)),
        "mmd_u_high": float(np.quantile(boot, 1 - tail)),
        "mmd_p_value": float((1 + np.sum(null >= value)) / (1 + num_resamples)),
    }


def mmd_metrics(z, prior, gamma: float) -> dict:
    """The aggregate-posterior MMD as reported: the unbiased U-statistic with its
    bootstrap interval and permutation p-value (zoo.evaluate.mmd_test); the biased
    V-statistic, whose floor 2(1 - E k)/n hides small differences (VARIANTS.md §11),
    beside it for reference; and the kernel parameter."""
    test = mmd_test(z, prior, gamma, num_resamples=100)
    v_statistic = mmd_v_statistic(z, prior, gamma)
    return {
        "mmd_aggregate_posterior": test["mmd_u"],
        "mmd_aggregate_posterior_low": test["mmd_u_low"],
        "mmd_aggregate_posterior_high": test["mmd_u_high"],
        "mmd_aggregate_posterior_p_value": test["mmd_p_value"],
        "mmd_aggregate_posterior_v": v_statistic,
        "mmd_gamma": float(gamma),
    }


def mmd_v_statistic(a, b, gamma: float) -> float:
    import numpy as np

    def mean_kernel(p, q):
        return np.mean(np.exp(-gamma * np.maximum(np.sum(p**2, 1)[:, None] + np.sum(q**2, 1)[None] - 2 * p @ q.T, 0)))

    return float(mean_kernel(a, a) + mean_kernel(b, b) - 2 * mean_kernel(a, b))


def gaussian_mmd_squared(mean_a, var_a: float, mean_b, var_b: float, gamma: float) -> float:
    """Closed-form ``MMD^2`` between ``N(mean_a, var_a I)`` and ``N(mean_b, var_b I)``
    with the kernel ``exp(-gamma ||.||^2)``, from
    ``E k = (1 + 2 gamma s)^(-d/2) exp(-gamma ||Δ||^2 / (1 + 2 gamma s))`` for
    ``z - z' ~ N(Δ, s I)``."""
    mean_a, mean_b = np.atleast_1d(np.asarray(mean_a, np.float64)), np.atleast_1d(np.asarray(mean_b, np.float64))
    d = len(mean_a)

    def expected_kernel(delta, s):
        return (1 + 2 * gamma * s) ** (-d / 2) * np.exp(-gamma * np.sum(delta**2) / (1 + 2 * gamma * s))

    return float(expected_kernel(0.0, 2 * var_a) + expected_kernel(0.0, 2 * var_b)
                 - 2 * expected_kernel(mean_a - mean_b, var_a + var_b))


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
