"""Faults and hostile files: checkpoints that cannot run code, damaged run files.

Every case ends in one ``vaezoo: error:`` line naming the file and the fix, exit
status 2, and nothing else happening: in particular a crafted checkpoint must not
get to run the code it carries (the test checks that the same bytes *would* run it
under an unsafe loader, so a pass means something).
"""

from __future__ import annotations

import io
import json
import pickle
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_args
from test_cli import assert_one_line_error

from zoo import registry
from zoo import run as zrun
from zoo.cli import main

BACKENDS = ["pyro", "numpyro"]


def copy_run(trained_run, variant: str, backend: str, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(trained_run(variant, backend), out)
    return out


class CreatesMarker:
    """Unpickling this object creates the file ``path`` (an attacker's payload)."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (exec, (f"open({self.path!r}, 'w').close()",))


def crafted_checkpoints(marker: Path) -> dict[str, bytes]:
    """Checkpoints whose loading with pickle runs code: a plain pickle (the old
    format of both backends), a torch.save archive, and an npz with an object array."""
    import torch

    payload = {"epoch": 0, "leaves": [CreatesMarker(marker)]}
    torch_buffer, npz_buffer = io.BytesIO(), io.BytesIO()
    torch.save({"format": "vaezoo-checkpoint", "version": 2, "epoch": 0, "variant": CreatesMarker(marker)}, torch_buffer)
    np.savez(npz_buffer, leaf_00000=np.array([CreatesMarker(marker)], dtype=object))
    return {"pickle": pickle.dumps(payload), "torch": torch_buffer.getvalue(), "npz": npz_buffer.getvalue()}


def test_the_crafted_checkpoints_do_run_code_under_an_unsafe_loader(tmp_path):
    """The payloads are real: pickle, ``torch.load(weights_only=False)`` and
    ``np.load(allow_pickle=True)`` all create the marker."""
    import torch

    for kind, data in crafted_checkpoints(tmp_path / "marker").items():
        marker = tmp_path / "marker"
        if kind == "pickle":
            pickle.loads(data)
        elif kind == "torch":
            torch.load(io.BytesIO(data), weights_only=False)
        else:
            np.load(io.BytesIO(data), allow_pickle=True)["leaf_00000"]
        assert marker.exists(), kind
        marker.unlink()


@pytest.fixture(scope="module")
def loaded_trainer(tmp_path_factory):
    """``loaded_trainer(backend)``: one trainer per backend (a tiny VAE), built
    once, into which the hostile files below are loaded. A refused file changes
    nothing in it (every check comes before the first assignment)."""
    from conftest import tiny_config, tiny_options

    trainers = {}

    def get(backend):
        if backend not in trainers:
            trainers[backend] = zrun.make_trainer("vae", tiny_config("vae"), tiny_options(backend=backend))
        return trainers[backend]

    return get


def assert_refused(trainer, path: Path, data: bytes) -> str:
    path.write_bytes(data)
    with pytest.raises(zrun.RunError) as refusal:
        zrun.load_checkpoint(trainer, path)
    message = str(refusal.value)
    assert "\n" not in message and str(path) in message
    assert "could not be loaded" in message and "--overwrite" in message
    return message


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_crafted_checkpoint_runs_no_code(tmp_path, trained_run, loaded_trainer, capsys, backend):
    marker = tmp_path / "marker"
    crafted = crafted_checkpoints(marker)
    for kind, data in crafted.items():
        assert_refused(loaded_trainer(backend), tmp_path / zrun.CHECKPOINT, data)
        assert not marker.exists(), f"loading the {kind} checkpoint ran its code"
    # And through the command line, evaluating and resuming.
    out = copy_run(trained_run, "vae", backend, tmp_path)
    (out / zrun.CHECKPOINT).write_bytes(crafted["pickle"])
    for args in (["evaluate", str(out), "--k", "2"], tiny_args("vae", backend, out, 2, "--resume")):
        assert main(args) == 2
        assert_one_line_error(capsys.readouterr(), str(out / zrun.CHECKPOINT), "could not be loaded", "--overwrite")
        assert not marker.exists()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("content", ["random", "empty", "zip-of-junk", "truncated", "other-backend"])
def test_a_checkpoint_of_junk_is_refused(tmp_path, trained_run, loaded_trainer, backend, content):
    import zipfile

    if content == "random":
        data = np.random.default_rng(0).bytes(4096)
    elif content == "empty":
        data = b""
    elif content == "zip-of-junk":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("data.pkl", b"\x80\x05junk")
        data = buffer.getvalue()
    else:
        source = "numpyro" if (content == "other-backend") == (backend == "pyro") else "pyro"
        data = (trained_run("vae", source) / zrun.CHECKPOINT).read_bytes()
        if content == "truncated":
            data = data[: len(data) // 2]
    assert_refused(loaded_trainer(backend), tmp_path / zrun.CHECKPOINT, data)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_missing_checkpoint_is_named(tmp_path, trained_run, capsys, backend):
    out = copy_run(trained_run, "vae", backend, tmp_path)
    (out / zrun.CHECKPOINT).unlink()
    assert main(["evaluate", str(out), "--k", "2"]) == 2
    assert_one_line_error(capsys.readouterr(), str(out / zrun.CHECKPOINT), "not found", "--overwrite")
    assert main(tiny_args("vae", backend, out, 2, "--resume")) == 2
    assert_one_line_error(capsys.readouterr(), str(out / zrun.CHECKPOINT), "without --resume")


@pytest.mark.parametrize(
    "record",
    ['{"variant": "vae", "config": ', "\x00\xff\xfe", "[1, 2]", '{"variant": "vae"}',
     '{"variant": "no-such", "config": {}, "options": {}}',
     '{"variant": "vae", "config": {}, "options": {"no_such_option": 1}}'],
    ids=["torn", "binary", "list", "no-config", "unknown-variant", "unknown-option"],
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_damaged_run_file_is_named(tmp_path, trained_run, capsys, record, backend):
    out = copy_run(trained_run, "vae", backend, tmp_path)
    (out / zrun.RUN_FILE).write_bytes(record.encode("latin-1"))
    for args in (["evaluate", str(out), "--k", "2"], tiny_args("vae", backend, out, 2, "--resume")):
        assert main(args) == 2
        assert_one_line_error(capsys.readouterr(), str(out / zrun.RUN_FILE), "--overwrite")


@pytest.mark.parametrize("backend", BACKENDS)
def test_checkpoints_carry_the_global_random_states(loaded_trainer, backend):
    """Python's ``random`` and numpy's global generator continue where the
    checkpoint left them, in both formats."""
    trainer = loaded_trainer(backend)
    random.seed(5)
    np.random.seed(7)
    data = trainer.state_bytes(0)
    expected = (random.random(), np.random.standard_normal(3))
    random.seed(99)
    np.random.seed(99)
    assert trainer.load_state_bytes(data) == 0
    assert random.random() == expected[0]
    np.testing.assert_array_equal(np.random.standard_normal(3), expected[1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_stale_temporary_files_are_removed_on_resume(tmp_path, trained_run, backend):
    out = copy_run(trained_run, "vae", backend, tmp_path)
    stale = out / f"{zrun.CHECKPOINT}.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    evaluation = out / "eval.json.xyz.tmp"  # an evaluation may be writing it: kept
    evaluation.write_bytes(b"{")
    assert main(tiny_args("vae", backend, out, 2, "--resume")) == 0
    assert not stale.exists() and evaluation.exists()
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    json.loads((out / "metrics.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", registry.names())
def test_every_variants_checkpoint_round_trips(variant, backend):
    """Each variant's state (parameters, optimizer moments, RNG keys) fits the safe
    formats: an epoch, a checkpoint, the next epoch, then the checkpoint loaded
    back and the next epoch again gives the same loss. (Slow: a trainer and an
    epoch per variant and backend; test_resume.py covers IWAE in the fast suite.)"""
    from conftest import tiny_config, tiny_options

    from zoo.config import ConfigError
    from zoo.data import DataError

    try:
        trainer = zrun.make_trainer(variant, tiny_config(variant), tiny_options(backend=backend))
    except (ConfigError, DataError) as error:  # e.g. a text variant on digits
        pytest.skip(f"the tiny digits setup does not fit {variant}: {error}")
    trainer.run_epoch(0)
    data = trainer.state_bytes(0)
    loss = trainer.run_epoch(1)
    assert trainer.load_state_bytes(data) == 0
    assert trainer.run_epoch(1) == pytest.approx(loss, rel=1e-5)
