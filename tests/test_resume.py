"""Checkpoints and resuming (zoo/run.py and both trainers).

A run stopped after an epoch, or interrupted in the middle of one, continues with
``--resume`` to exactly the numbers of a run that was never stopped: the same
losses, the same final weights. A checkpoint is replaced atomically, so a failed
write leaves the previous one intact and no temporary file behind.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_args, tiny_config, tiny_options

from zoo import run as zrun
from zoo.cli import main

EPOCHS = 3
BATCHES_PER_EPOCH = 4  # conftest: 200 training images in batches of 50


def history(out: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def final_weights(out: Path, backend: str) -> list[np.ndarray]:
    data = (out / zrun.CHECKPOINT).read_bytes()
    if backend == "pyro":
        state = torch.load(io.BytesIO(data), weights_only=True)
        return [value.numpy() for value in state["variant"].values()]
    from zoo.checkpoint import load_arrays

    return load_arrays(data)[1]


def assert_same_run(resumed: Path, reference: Path, backend: str) -> None:
    np.testing.assert_allclose(history(resumed), history(reference), rtol=1e-6)
    for ours, theirs in zip(final_weights(resumed, backend), final_weights(reference, backend), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)
    ours, theirs = (json.loads((out / "metrics.json").read_text()) for out in (resumed, reference))
    assert ours["epochs"] == theirs["epochs"] == EPOCHS
    assert ours["test_elbo_500"] == pytest.approx(theirs["test_elbo_500"], rel=1e-6)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """``uninterrupted(backend)``: the folder of a 3-epoch IWAE run never stopped."""
    runs = {}

    def get(backend: str) -> Path:
        if backend not in runs:
            out = tmp_path_factory.mktemp(f"uninterrupted-{backend}")
            assert main(tiny_args("iwae", backend, out, EPOCHS)) == 0
            runs[backend] = out
        return runs[backend]

    return get


@pytest.mark.parametrize("backend", ["pyro", "numpyro"])
def test_resume_after_an_epoch_matches_an_uninterrupted_run(tmp_path, uninterrupted, backend):
    reference = uninterrupted(backend)
    losses = history(reference)
    assert len(losses) == EPOCHS and losses[-1] < losses[0], "training must make progress"

    out = tmp_path / "run"
    assert main(tiny_args("iwae", backend, out, 1)) == 0
    assert len(history(out)) == 1
    assert main(tiny_args("iwae", backend, out, EPOCHS, "--resume")) == 0
    assert_same_run(out, reference, backend)


def test_interrupted_epoch_keeps_the_last_checkpoint_and_resumes(tmp_path, uninterrupted, monkeypatch, capsys):
    """Ctrl-C in the middle of epoch 2: exit status 130, the checkpoint of epoch 1
    loads, and --resume finishes the run as if nothing had happened."""
    from zoo.pyro_backend.variant import PyroVariant

    original = PyroVariant.train_step
    steps = []

    def interrupted_step(self, batch):
        steps.append(1)
        if len(steps) == BATCHES_PER_EPOCH + 2:
            raise KeyboardInterrupt
        return original(self, batch)

    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(PyroVariant, "train_step", interrupted_step)
        assert main(tiny_args("iwae", "pyro", out, EPOCHS)) == 130
    captured = capsys.readouterr()
    assert "interrupted" in captured.err and "--resume" in captured.err
    assert "Traceback" not in captured.err

    assert len(history(out)) == 1
    _, variant, _, options, epoch = zrun.restore(out)
    assert (variant, options.backend, epoch) == ("iwae", "pyro", 0)

    assert main(tiny_args("iwae", "pyro", out, EPOCHS, "--resume")) == 0
    assert_same_run(out, uninterrupted("pyro"), "pyro")


# --------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("failing", ["replace", "write"])
def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch, failing):
    path = tmp_path / zrun.CHECKPOINT
    zrun.atomic_write(path, b"old checkpoint")

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace" if failing == "replace" else "fsync", fail)
    with pytest.raises(OSError):
        zrun.atomic_write(path, b"new checkpoint, never complete")
    assert path.read_bytes() == b"old checkpoint"
    assert leftovers(tmp_path) == []


def test_written_files_follow_the_umask(tmp_path):
    """A temporary file is private (0600) until renamed; the result must be readable
    like any other file the run writes (the PNGs, metrics.jsonl)."""
    previous = os.umask(0o022)
    try:
        zrun.atomic_write(tmp_path / "run.json", b"{}")
    finally:
        os.umask(previous)
    assert (tmp_path / "run.json").stat().st_mode & 0o777 == 0o644


def test_a_failed_checkpoint_write_during_training_keeps_the_previous_one(tmp_path, monkeypatch):
    config, options = tiny_config("vae"), tiny_options(epochs=1)
    out = tmp_path / "run"
    zrun.train("vae", config, options, out, progress=False)
    before = (out / zrun.CHECKPOINT).read_bytes()

    real_replace = os.replace

    def replace(source, target):
        if Path(target).name == zrun.CHECKPOINT:
            raise OSError(28, "No space left on device")
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError):
        zrun.train("vae", config, tiny_options(epochs=2), out, resume=True, progress=False)
    monkeypatch.undo()

    assert (out / zrun.CHECKPOINT).read_bytes() == before
    assert leftovers(out) == []
    *_, epoch = zrun.restore(out)
    assert epoch == 0


@pytest.mark.parametrize("backend", ["pyro", "numpyro"])
def test_a_damaged_checkpoint_is_a_one_line_error(tmp_path, trained_run, capsys, backend):
    """A checkpoint cut short (a copy interrupted by hand, say) cannot be resumed
    or evaluated; the user gets a sentence, not the unpickler's traceback."""
    import shutil

    out = tmp_path / "run"
    shutil.copytree(trained_run("vae", backend), out)
    data = (out / zrun.CHECKPOINT).read_bytes()
    (out / zrun.CHECKPOINT).write_bytes(data[: len(data) // 2])
    for args in (["evaluate", str(out), "--k", "5"], tiny_args("vae", backend, out, 2, "--resume")):
        assert main(args) == 2
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        message = captured.err.strip().splitlines()[-1]
        assert message.startswith("vaezoo: error: ") and str(out / zrun.CHECKPOINT) in message
        assert "could not be loaded" in message
