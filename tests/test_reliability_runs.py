"""Run-folder rules (zoo/run.py): one writer, no silent deletion, honest resumes,
and runs that survive being killed.

The kill, stale-temporary-file and concurrent-writer cases use real processes:
a training killed with SIGKILL at the worst moment (inside the checkpoint's
atomic write, or halfway through a metrics line), a second ``vaezoo train`` racing
a running one, and SIGTERM sent to a running training.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import tiny_args
from test_cli import assert_one_line_error
from test_resume import EPOCHS, assert_same_run, history, uninterrupted  # noqa: F401 - a fixture

from zoo import run as zrun
from zoo.cli import main

BACKENDS = ["pyro", "numpyro"]
ROOT = Path(__file__).resolve().parents[1]


def copy_run(trained_run, backend: str, tmp_path: Path, variant: str = "vae") -> Path:
    out = tmp_path / "run"
    shutil.copytree(trained_run(variant, backend), out)
    return out


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file's bytes, except the lock file (which names its last holder)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and p.name != zrun.LOCK_FILE}


def python(*args: str, **kwargs) -> subprocess.Popen:
    """``python args...`` from the repository root with this process's environment
    (PYTHONPATH, the isolated data cache of conftest)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


# --------------------------------------------------------------------------
# An existing run is never replaced silently
# --------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_training_into_an_existing_run_is_refused(tmp_path, trained_run, capsys, backend):
    out = copy_run(trained_run, backend, tmp_path)
    (out / "eval.json").write_text("{}")
    before = snapshot(out)
    assert main(tiny_args("vae", backend, out, 1)) == 2
    assert_one_line_error(capsys.readouterr(), str(out), "already holds a run", "--resume", "--overwrite")
    assert main(tiny_args("vae", backend, out, 1, "--resume", "--overwrite")) == 2
    assert_one_line_error(capsys.readouterr(), "--resume", "--overwrite")
    assert snapshot(out) == before


def test_overwrite_replaces_the_run(tmp_path, trained_run, capsys):
    out = copy_run(trained_run, "pyro", tmp_path)
    (out / "eval.json").write_text("{}")
    (out / "notes.txt").write_text("the user's own file")
    assert main(tiny_args("vae", "pyro", out, 1, "--overwrite", "--set", "activation=tanh")) == 0
    assert not (out / "eval.json").exists(), "the old run's evaluation must go with it"
    assert (out / "notes.txt").read_text() == "the user's own file"
    assert json.loads((out / "run.json").read_text())["config"]["activation"] == "tanh"
    assert len(history(out)) == 1


# --------------------------------------------------------------------------
# Resuming: the run's own options, the epoch budget
# --------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_resume_with_other_options_is_refused_and_lists_them(tmp_path, trained_run, capsys, backend):
    out = copy_run(trained_run, backend, tmp_path)
    before = snapshot(out)
    other = "numpyro" if backend == "pyro" else "pyro"
    args = tiny_args("vae", backend, out, 3, "--resume", "--lr", "0.01", "--set", "z_dim=7", "--batch-size", "25")
    args[args.index("--z-dim") : args.index("--z-dim") + 2] = []  # --set z_dim=7 is the one given
    assert main(args) == 2
    assert_one_line_error(capsys.readouterr(), "--lr 0.01 (the run has 0.001)", "--set z_dim=7 (the run has 4)",
                          "--batch-size 25 (the run has 50)", "Only --epochs")
    assert main(tiny_args("vae", other, out, 3, "--resume")) == 2
    assert_one_line_error(capsys.readouterr(), f"--backend {other} (the run has {backend})")
    assert main(tiny_args("iwae", backend, out, 3, "--resume")) == 2
    assert_one_line_error(capsys.readouterr(), "variant iwae (the run is vae)")
    assert snapshot(out) == before


@pytest.mark.parametrize("backend", BACKENDS)
def test_resume_takes_the_runs_options_and_respects_the_epoch_budget(tmp_path, trained_run, capsys, backend):
    """The README's ``vaezoo train vae --resume --out R --epochs N``: only the
    budget is given, the rest comes from run.json; a budget the run is already past
    changes nothing and says so; the budget it has reached is nothing to do."""
    out = copy_run(trained_run, backend, tmp_path)
    resume = ["train", "vae", "--resume", "--out", str(out), "--quiet"]
    assert main([*resume, "--epochs", "2"]) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["config"]["hidden"] == [16] and record["options"]["limit_train"] == 200
    assert record["options"]["epochs"] == 2 and len(history(out)) == 2
    capsys.readouterr()

    before = snapshot(out)
    assert main([*resume, "--epochs", "1"]) == 2
    assert_one_line_error(capsys.readouterr(), "already trained 2 epochs", "past --epochs 1", "nothing was changed",
                          "--epochs above 2")
    assert main(resume) == 0
    assert "already trained 2 epochs" in capsys.readouterr().err
    assert snapshot(out) == before


def test_a_damaged_metrics_line_before_the_last_is_an_error(tmp_path, trained_run, capsys):
    out = copy_run(trained_run, "pyro", tmp_path)
    good = (out / "metrics.jsonl").read_text()
    (out / "metrics.jsonl").write_text('{"epoch": 0, "lo\n' + good)
    assert main(tiny_args("vae", "pyro", out, 2, "--resume")) == 2
    assert_one_line_error(capsys.readouterr(), "metrics.jsonl line 1 is damaged", "--overwrite")


# --------------------------------------------------------------------------
# Diverging runs
# --------------------------------------------------------------------------


def test_a_growing_loss_and_a_huge_lr_are_reported(tmp_path, capsys, monkeypatch):
    from zoo.pyro_backend.trainer import Trainer

    original = Trainer.run_epoch

    def run_epoch(self, epoch, on_batch=lambda: None):
        original(self, epoch, on_batch)
        return [50.0, 5e4][epoch]  # a thousandfold growth, still finite

    monkeypatch.setattr(Trainer, "run_epoch", run_epoch)
    assert main(tiny_args("vae", "pyro", tmp_path / "run", 2, "--lr", "2")) == 0
    err = capsys.readouterr().err
    assert "--lr 2.0 is unusually large" in err
    assert "the loss grew from 50 to 5e+04 nats/datapoint in epoch 2" in err and "lower --lr" in err


# --------------------------------------------------------------------------
# Killed processes
# --------------------------------------------------------------------------

# Runs ``vaezoo train`` and SIGKILLs itself at the chosen moment: "checkpoint"
# inside the second checkpoint's atomic write (the temporary file is complete, the
# rename has not happened), "metrics" halfway through the second metrics line.
KILLED_TRAINING = r"""
import os, signal, sys
from zoo import run as zrun
from zoo.cli import main

moment, args = sys.argv[1], sys.argv[2:]
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
if moment == "checkpoint":
    real_replace, calls = os.replace, []
    def replace(source, target):
        if os.path.basename(target) == zrun.CHECKPOINT:
            calls.append(target)
            if len(calls) == 2:
                die()
        return real_replace(source, target)
    os.replace = replace
else:
    class TearSecondLine:
        def __init__(self, handle):
            self.handle, self.lines = handle, 0
        def write(self, text):
            self.lines += 1
            if self.lines == 2:
                self.handle.write(text[: len(text) // 2])
                self.handle.flush()
                die()
            return self.handle.write(text)
        def __getattr__(self, name):
            return getattr(self.handle, name)
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            self.handle.close()
    def tearing_open(path, mode="r", *rest, **options):
        handle = open(path, mode, *rest, **options)
        return TearSecondLine(handle) if str(path).endswith(zrun.METRICS_LOG) and "a" in mode else handle
    zrun.open = tearing_open
sys.exit(main(args))
"""


@pytest.mark.parametrize("moment", ["checkpoint", "metrics"])
def test_a_run_killed_at_the_worst_moment_resumes_exactly(tmp_path, uninterrupted, capsys, moment):  # noqa: F811
    out = tmp_path / "run"
    process = python("-c", KILLED_TRAINING, moment, *tiny_args("iwae", "pyro", out, EPOCHS))
    _, err = process.communicate(timeout=300)
    assert process.returncode == -signal.SIGKILL, err
    lines = (out / zrun.METRICS_LOG).read_text().splitlines()
    stale = sorted(out.glob(f"{zrun.CHECKPOINT}.*.tmp"))
    if moment == "checkpoint":
        assert len(stale) == 1 and len(lines) == 2  # epoch 2 logged, its checkpoint never renamed
    else:
        assert stale == [] and len(lines) == 2
        with pytest.raises(json.JSONDecodeError):
            json.loads(lines[1])
    *_, epoch = zrun.restore(out)
    assert epoch == 0

    # The killed process's lock died with it: resuming needs no clean-up by hand.
    assert main(tiny_args("iwae", "pyro", out, EPOCHS, "--resume")) == 0
    err = capsys.readouterr().err
    if moment == "checkpoint":
        assert f"removed 1 temporary file(s) a stopped run left in {out}" in err
    else:
        assert "ignored the torn last line 2" in err
    assert list(out.glob("*.tmp")) == []
    assert_same_run(out, uninterrupted("pyro"), "pyro")


def _wait_for_epochs(out: Path, process: subprocess.Popen, count: int, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    log = out / zrun.METRICS_LOG
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"training ended early: {process.communicate()[1]}")
        if log.exists() and len(log.read_text().splitlines()) >= count:
            return
        time.sleep(0.1)
    process.kill()
    raise AssertionError("training made no progress")


def test_a_second_writer_is_refused_and_sigterm_stops_cleanly(tmp_path, capsys):
    """Training A runs; training B into the same folder is refused while A holds
    the lock (an evaluation may still read); SIGTERM stops A like Ctrl-C, with a
    message, status 143 and its last epoch checkpointed; the run then resumes."""
    out = tmp_path / "run"
    first = python("-m", "zoo", *tiny_args("vae", "pyro", out, 100000))
    try:
        _wait_for_epochs(out, first, 1)
        second = python("-m", "zoo", *tiny_args("vae", "pyro", out, 3))
        _, err = second.communicate(timeout=120)
        assert second.returncode == 2, err
        message = err.strip().splitlines()[-1]
        assert "Traceback" not in err and message.startswith("vaezoo: error: ")
        assert f"{out} is being trained by another vaezoo process (pid {first.pid})" in message
        assert "another --out" in message

        assert main(["evaluate", str(out), "--k", "2", "--limit", "5"]) == 0, "readers are not locked out"
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    assert "terminated (SIGTERM)" in err.strip().splitlines()[-1] and "--resume" in err

    *_, epoch = zrun.restore(out)
    assert main(["train", "vae", "--resume", "--out", str(out), "--quiet", "--epochs", str(epoch + 2)]) == 0
    assert len(history(out)) == epoch + 2
