"""The one-class anomaly-detection protocol, shared by VAE, VAE-SVDD and adVAE.

The protocol of Ruff et al. (Deep SVDD, ICML 2018), which VAE-SVDD and adVAE follow:

1. one class ``C`` of a labelled dataset is *normal*; the model trains on the
   training images of ``C`` only (:func:`zoo.data.one_class_split`, which
   ``--normal-class C`` applies);
2. every test image gets an anomaly score, larger meaning more anomalous;
3. the AUROC of the scores against the anomaly labels (1 for every class but
   ``C``) measures the detector, free of any threshold;
4. steps 1–3 run once per class; the table reports each class's AUROC and the mean.

This module holds the pieces every variant shares: :func:`auroc` and
:func:`anomaly_metrics` (what ``extra_metrics`` returns), :func:`elbo_scores` (the
plain VAE's score, ``-ELBO(x)``, from any trainer of either backend), and the
per-class loop :func:`one_class_auroc` used by ``benchmarks/anomaly.py``.
It imports neither torch nor JAX.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
from sklearn.metrics import roc_auc_score


def auroc(scores, is_anomaly) -> float:
    """Area under the ROC curve of ``scores`` (larger = more anomalous) against
    the 0/1 labels ``is_anomaly``: the probability that a random anomaly scores
    above a random normal datapoint (ties count one half)."""
    scores = np.asarray(scores, dtype=np.float64)
    if not np.all(np.isfinite(scores)):
        # sklearn refuses NaN/inf; a diverged score is a failed detector, not a crash.
        return float("nan")
    return float(roc_auc_score(np.asarray(is_anomaly), scores))


def anomaly_metrics(scores: dict[str, np.ndarray], is_anomaly, normal_class: int) -> dict:
    """``{"normal_class": C, "auroc_<name>": ...}`` for every named score, the dict a
    variant's ``extra_metrics`` returns (it lands in metrics.json and eval.json)."""
    metrics: dict = {"normal_class": int(normal_class)}
    for name, values in scores.items():
        metrics[f"auroc_{name}"] = auroc(values, is_anomaly)
    return metrics


def elbo_scores(trainer, arrays: dict, num_particles: int = 10, block_size: int = 500) -> np.ndarray:
    """``-ELBO(x)`` per datapoint, averaged over ``num_particles`` draws of the guide.

    Works for any trainer: it only asks for ``trainer.log_weights``, whose mean over
    particles is the ELBO estimate of each datapoint. Blocks bound the memory.
    """
    n = len(arrays["x"])
    scores = []
    for start in range(0, n, block_size):
        block = {k: v[start : start + block_size] for k, v in arrays.items()}
        scores.append(-trainer.log_weights(block, num_particles).mean(axis=0))
    return np.concatenate(scores)


def train_one_class(variant: str, config, options, normal_class: int, on_epoch: Callable | None = None):
    """A trainer of ``variant`` trained on ``normal_class`` for ``options.epochs``.

    ``on_epoch(epoch, loss)`` is called after each epoch (progress reports).
    """
    from zoo.run import make_trainer

    options = dataclasses.replace(options, extra={**options.extra, "normal_class": int(normal_class)})
    trainer = make_trainer(variant, config, options)
    for epoch in range(options.epochs):
        loss = trainer.run_epoch(epoch)
        if on_epoch is not None:
            on_epoch(epoch, loss)
    return trainer


def scores_auroc(trainer, elbo_particles: int = 10) -> dict:
    """The AUROC of every score a trained one-class run offers: the variant's own
    (its ``extra_metrics``) and, for every variant, the ``-ELBO`` score."""
    dataset = trainer.dataset
    metrics = dict(trainer.extra_metrics())
    if "auroc_elbo" not in metrics:
        scores = elbo_scores(trainer, trainer.test_data(), elbo_particles)
        metrics.update(anomaly_metrics({"elbo": scores}, dataset.y_test, dataset.normal_class))
    return {k: v for k, v in metrics.items() if k.startswith("auroc_")}


def one_class_auroc(
    variant: str,
    config,
    options,
    classes=range(10),
    elbo_particles: int = 10,
    on_class: Callable | None = None,
) -> dict:
    """Per-class AUROC of every score of ``variant``, and their means over classes.

    Returns ``{"per_class": {C: {"auroc_<score>": ...}}, "mean": {"auroc_<score>": ...}}``.
    ``on_class(C, aurocs)`` is called after each class (progress reports).
    """
    per_class = {}
    for c in classes:
        trainer = train_one_class(variant, config, options, c)
        per_class[int(c)] = scores_auroc(trainer, elbo_particles)
        if on_class is not None:
            on_class(int(c), per_class[int(c)])
    names = sorted({name for aurocs in per_class.values() for name in aurocs})
    mean = {name: float(np.mean([aurocs[name] for aurocs in per_class.values()])) for name in names}
    return {"per_class": per_class, "mean": mean}
