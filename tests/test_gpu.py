"""``--device cuda`` for the Pyro backend (skipped without a CUDA GPU).

The Pyro trainer moves the networks and the dataset to the device once; a tiny
epoch must run there, the checkpoint must load back on the GPU and on the CPU,
and evaluation must work on either. (Without a GPU, tests/test_cli.py checks that
``--device cuda`` is refused with a one-line error.)
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import tiny_args, tiny_config, tiny_options

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_trainer_lives_on_the_gpu():
    from zoo.run import make_trainer

    trainer = make_trainer("vae", tiny_config("vae"), tiny_options(device="cuda"))
    assert trainer.device.type == "cuda"
    assert all(p.device.type == "cuda" for p in trainer.variant.parameters())
    assert all(t.device.type == "cuda" for t in trainer.train_arrays.values())
    loss = trainer.run_epoch(0)
    assert np.isfinite(loss)
    # The optimizer's parameters are the module's, on the GPU, after a step.
    import pyro

    assert all(v.device.type == "cuda" for v in pyro.get_param_store().values())
    log_w = trainer.log_weights({"x": trainer.dataset.x_test[:5]}, 3)
    assert isinstance(log_w, np.ndarray) and log_w.shape == (3, 5) and np.all(np.isfinite(log_w))

    state = trainer.state_bytes(0)
    assert trainer.load_state_bytes(state) == 0
    assert all(p.device.type == "cuda" for p in trainer.variant.parameters())


def test_cli_trains_and_evaluates_on_the_gpu(tmp_path, capsys):
    from zoo.cli import main
    from zoo.run import restore

    out = tmp_path / "run"
    assert main(tiny_args("iwae", "pyro", out, 1, "--device", "cuda")) == 0
    assert json.loads((out / "run.json").read_text())["options"]["device"] == "cuda"
    assert main(["evaluate", str(out), "--k", "30", "--limit", "10"]) == 0
    assert "Traceback" not in capsys.readouterr().err

    # A GPU checkpoint loads on the CPU.
    trainer, *_ , epoch = restore(out, device="cpu")
    assert epoch == 0 and all(p.device.type == "cpu" for p in trainer.variant.parameters())
    assert np.all(np.isfinite(trainer.log_weights({"x": trainer.dataset.x_test[:5]}, 2)))


def test_pyro_data_parallel_on_the_gpus(tmp_path, capsys):
    """``--devices 2 --device cuda``: NCCL over two GPUs, or a one-line refusal on one."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from zoo.cli import main

    out = tmp_path / "run"
    args = tiny_args("vae", "pyro", out, 1, "--devices", "2", "--device", "cuda")
    if torch.cuda.device_count() < 2:
        assert main(args) == 2
        assert "needs 2 GPUs" in capsys.readouterr().err
        return
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-m", "zoo", *args], env={**os.environ, "PYTHONPATH": str(root)},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert np.isfinite(json.loads((out / "metrics.json").read_text())["train_loss"])


def test_numpyro_trains_on_the_gpu():
    import jax

    if jax.default_backend() != "gpu":
        pytest.skip("JAX runs on the CPU here (install jax[cuda12])")
    from zoo.run import make_trainer

    trainer = make_trainer("vae", tiny_config("vae"), tiny_options(backend="numpyro", device="cuda"))
    assert np.isfinite(trainer.run_epoch(0))
    leaf = jax.tree_util.tree_leaves(trainer.params)[0]
    assert all(d.platform == "gpu" for d in leaf.devices())
