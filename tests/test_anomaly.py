"""The one-class anomaly-detection protocol (zoo/anomaly.py): AUROC against its
definition, the -ELBO score against the trainer's log weights, and the per-class loop."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import tiny_config, tiny_options
from zoo import anomaly
from zoo.data import load_dataset


def pairwise_auroc(scores, is_anomaly) -> float:
    """P(score of a random anomaly > score of a random normal point), ties counting 1/2."""
    anomalies = [s for s, a in zip(scores, is_anomaly) if a]
    normals = [s for s, a in zip(scores, is_anomaly) if not a]
    wins = sum(1.0 if a > n else 0.5 if a == n else 0.0 for a in anomalies for n in normals)
    return wins / (len(anomalies) * len(normals))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-5, 5), st.booleans()), min_size=2, max_size=30))
def test_auroc_is_the_probability_that_an_anomaly_outscores_a_normal_point(pairs):
    scores = [float(s) for s, _ in pairs]  # small integers: many ties
    labels = [int(a) for _, a in pairs]
    if len(set(labels)) < 2:
        return  # AUROC needs both classes
    assert anomaly.auroc(scores, labels) == pytest.approx(pairwise_auroc(scores, labels))


def test_auroc_extremes_and_a_diverged_score():
    labels = [0, 0, 1, 1]
    assert anomaly.auroc([0.1, 0.2, 0.8, 0.9], labels) == 1.0
    assert anomaly.auroc([0.9, 0.8, 0.2, 0.1], labels) == 0.0
    assert anomaly.auroc([1.0, 1.0, 1.0, 1.0], labels) == 0.5
    assert np.isnan(anomaly.auroc([0.1, np.nan, 0.8, 0.9], labels))


def test_anomaly_metrics_names_every_score():
    metrics = anomaly.anomaly_metrics({"svdd": np.array([0.0, 1.0]), "elbo": np.array([1.0, 0.0])}, [0, 1], normal_class=3)
    assert metrics == {"normal_class": 3, "auroc_svdd": 1.0, "auroc_elbo": 0.0}


class FakeTrainer:
    """log_weights(arrays, k)[i, n] = x_n[0] + i: the ELBO of x_n is x_n[0] + (k-1)/2."""

    def log_weights(self, arrays, num_particles):
        return arrays["x"][:, 0][None, :] + np.arange(num_particles)[:, None]


@pytest.mark.parametrize("block_size", [1, 3, 100])
def test_elbo_scores_are_minus_the_mean_log_weight_whatever_the_blocks(block_size):
    x = np.arange(14, dtype=np.float64).reshape(7, 2)
    scores = anomaly.elbo_scores(FakeTrainer(), {"x": x}, num_particles=5, block_size=block_size)
    np.testing.assert_allclose(scores, -(x[:, 0] + 2.0))


def test_one_class_loop_trains_on_each_class_and_averages_the_aurocs():
    """Two tiny plain-VAE runs: each trains on its class only, and the mean is the mean."""
    seen = {}

    def record(c, aurocs):
        seen[c] = aurocs

    options = tiny_options(epochs=1)
    table = anomaly.one_class_auroc("vae", tiny_config("vae"), options, classes=[0, 1], elbo_particles=3, on_class=record)
    assert set(table["per_class"]) == {0, 1} and seen == table["per_class"]
    for aurocs in table["per_class"].values():
        assert set(aurocs) == {"auroc_elbo"} and np.isfinite(aurocs["auroc_elbo"])
    assert table["mean"]["auroc_elbo"] == pytest.approx(np.mean([a["auroc_elbo"] for a in seen.values()]))


def test_train_one_class_uses_only_the_normal_class():
    full = load_dataset("digits", limit_train=200, limit_test=50)
    trainer = anomaly.train_one_class("vae", tiny_config("vae"), tiny_options(epochs=0), normal_class=4)
    assert trainer.dataset.normal_class == 4
    assert len(trainer.dataset.x_train) == int(np.sum(full.y_train == 4))
    np.testing.assert_array_equal(trainer.dataset.y_test, (full.y_test != 4).astype(np.int64))


def test_benchmark_table_shows_every_class_and_the_mean():
    """benchmarks/anomaly.py renders stored results: one row per class, the mean last."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "benchmarks" / "anomaly.py"
    spec = importlib.util.spec_from_file_location("anomaly_benchmark", path)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    settings = {"backend": "pyro", "seed": 0, "epochs": 1, "batch_size": 8, "lr": 0.001, "limit_train": None,
                "limit_test": None, "advae_score_samples": 5, "classes": [0, 1]}
    runs = {"vae": {"per_class": {"0": {"auroc_elbo": 0.5}, "1": {"auroc_elbo": 0.75}},
                    "mean": {"auroc_elbo": 0.625}, "seconds": 1.0}}
    table = benchmark.anomaly_table({"digits": {"settings": settings, "runs": runs}})
    rows = [line for line in table.splitlines() if line.startswith("|")]
    assert rows[0] == "| normal class | VAE -ELBO |"
    assert rows[2:] == ["| 0 | 50.0 |", "| 1 | 75.0 |", "| **mean** | **62.5** |"]
