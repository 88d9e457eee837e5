"""Smoke tests of benchmarks/throughput.py and benchmarks/quality.py on digits.

They check that each script runs every contender through to a JSON record with
finite numbers; timings are never asserted (the machine's load decides them).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
from pathlib import Path

import pytest

from zoo import data

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def torch_threads():
    """Restores torch's thread count, which ``--threads`` sets for the whole process."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow  # about 11 s of CPU; the benchmark itself is run by hand
def test_throughput_times_every_contender_and_writes_finite_ratios(tmp_path, torch_threads):
    throughput = load_script("throughput")
    out = tmp_path / "throughput.json"
    # One torch thread: two threads on two busy cores stall each other for seconds.
    argv = ["--dataset", "digits", "--epochs", "1", "--limit", "256", "--batch-size", "64", "--threads", "1"]
    throughput.main([*argv, "--out", str(out)])
    record = json.loads(out.read_text())
    assert record["dataset"] == "digits" and record["num_train"] == 256 and record["batch_size"] == 64
    assert record["machine"]["torch_threads"] == 1
    assert set(record["results"]) == set(throughput.CONTENDERS)
    for name, row in record["results"].items():
        assert row["median_seconds"] > 0, name
        for key in ("vs_torch", "vs_pyro_tutorial", "vs_numpyro_jit"):
            assert math.isfinite(row[key]) and row[key] > 0, (name, key)
        # Every contender trains the same model on the same data: after two epochs
        # (warm-up and timed) of four steps each, all losses are close.
        assert all(math.isfinite(loss) and 35 < loss < 60 for loss in row["losses"]), name
    assert record["results"]["torch"]["vs_torch"] == 1.0


def test_throughput_falls_back_to_digits_with_a_warning(monkeypatch):
    throughput = load_script("throughput")
    source = data.IDX_SOURCES["fashion-mnist"]
    # conftest already makes downloads fail; hide the system copy too.
    monkeypatch.setitem(data.IDX_SOURCES, "fashion-mnist", dataclasses.replace(source, system_dir=None))
    with pytest.warns(UserWarning, match="digits"):
        name, dataset = throughput.resolve_dataset("fashion-mnist", 100)
    assert name == "digits" and dataset.x_dim == 64 and len(dataset.x_train) == 100


def test_quality_scores_vae_and_iwae_on_the_same_test_images(tmp_path):
    quality = load_script("quality")
    out = tmp_path / "quality.json"
    quality.main(
        ["--dataset", "digits", "--epochs", "1", "--limit", "200", "--test-limit", "20", "--k-eval", "20", "--out", str(out)]
    )
    record = json.loads(out.read_text())
    assert record["binarize"] == "dynamic"
    rows = {row["variant"]: row for row in record["results"]}
    assert set(rows) == {"vae", "iwae"} and rows["iwae"]["config"] == {"k": 5}
    for row in rows.values():
        assert row["num_test"] == 20 and row["k"] == 20 and row["num_train"] == 200
        # L_K is a tighter bound than the K-sample average of the ELBO.
        assert row["test_elbo"] <= row["test_log_likelihood"] < 0
    gain = record["iwae_minus_vae"]["pyro"]
    assert gain["difference"] == pytest.approx(rows["iwae"]["test_log_likelihood"] - rows["vae"]["test_log_likelihood"])
    assert math.isfinite(gain["stderr"]) and gain["stderr"] > 0
