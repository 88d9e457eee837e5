"""scripts/gpu_check.sh on a CPU: well-formed bash, and its dry run goes through.

The script is for a machine with a CUDA GPU, where time is scarce, so mistakes must
show here first: ``bash -n`` parses it, and ``--cpu-dry-run`` runs every step on the
CPU (the install commands printed, not run; the GPU tests skipping; a tiny
benchmark of both backends writing its JSON).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_check.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def test_the_script_parses():
    result = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_an_unknown_option_is_refused_in_one_line():
    result = subprocess.run(["bash", str(SCRIPT), "--gpu-now"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "unknown option --gpu-now" in result.stderr


@pytest.mark.slow  # a pytest run and a benchmark of both backends: ~25 s of CPU
def test_the_cpu_dry_run_prints_the_installs_and_writes_the_benchmark_json(tmp_path):
    env = {**os.environ, "GPU_CHECK_OUT": str(tmp_path), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(["bash", str(SCRIPT), "--cpu-dry-run"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "would run: timeout 180" in result.stdout and "torch==2.13.0" in result.stdout
    assert "jax[cuda12]==" in result.stdout
    record = json.loads((tmp_path / "throughput-dry-run.json").read_text())
    assert record["device"] == "cpu" and record["dataset"] == "digits"
    assert set(record["results"]) == {"torch", "zoo-pyro", "numpyro-jit", "zoo-numpyro"}
    assert all(math.isfinite(row["median_seconds"]) for row in record["results"].values())
    assert math.isfinite(record["flop_floor"]["floor_seconds"])
