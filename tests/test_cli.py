"""The ``vaezoo`` command end to end (zoo/cli.py, zoo/run.py, zoo/evaluate.py).

Training runs on ``digits`` with tiny networks and are shared per session
(``conftest.trained_run``); the commands run in-process through
``zoo.cli.main`` for speed, and once as ``python -m zoo`` in a subprocess to
prove the entry point. Every mistake a user can make ends in one line on stderr
and exit status 2, never in a traceback.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_LIMIT_TEST, tiny_args
from PIL import Image

from zoo import registry
from zoo.cli import main
from zoo.data import IDX_FILES

ROOT = Path(__file__).resolve().parents[1]
RUN_FILES = ("run.json", "checkpoint.ckpt", "metrics.jsonl", "metrics.json", "samples.png", "reconstructions.png")
VARIANTS_AND_BACKENDS = [(v, b) for b in ("pyro", "numpyro") for v in ("vae", "iwae")]


def picture_size(num_images: int, image_side: int = 8, columns: int = 10, pad: int = 1) -> tuple[int, int]:
    """(width, height) of a grid of 8x8 digits as zoo.images draws it: one pixel of
    padding around each image, enlarged 112 // 8 = 14 times."""
    scale = 112 // image_side
    rows = math.ceil(num_images / columns)
    return (columns * (image_side + pad) + pad) * scale, (rows * (image_side + pad) + pad) * scale


def assert_one_line_error(captured, *fragments: str) -> str:
    """The user-facing error contract: a single ``vaezoo: error:`` line, no traceback."""
    assert "Traceback" not in captured.err and "Traceback" not in captured.out
    lines = [line for line in captured.err.strip().splitlines() if line.strip()]
    assert lines, "an error must be explained on stderr"
    message = lines[-1]
    assert message.startswith("vaezoo: error: ")
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


# --------------------------------------------------------------------------
# Train and evaluate
# --------------------------------------------------------------------------


@pytest.mark.parametrize("variant,backend", VARIANTS_AND_BACKENDS)
def test_train_then_evaluate_writes_a_complete_run(trained_run, capsys, variant, backend):
    run = trained_run(variant, backend)
    for name in RUN_FILES:
        assert (run / name).is_file(), name

    record = json.loads((run / "run.json").read_text())
    assert record["variant"] == variant and record["options"]["backend"] == backend
    assert record["config"]["z_dim"] == 4 and record["config"]["hidden"] == [16]

    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [0]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["variant"] == variant and metrics["backend"] == backend and metrics["epochs"] == 1
    assert metrics["train_loss"] == rows[-1]["loss"]
    for key in ("train_loss", "test_elbo_500", "seconds_per_epoch"):
        assert np.isfinite(metrics[key]), key
    # Nats per 8x8 binary digit: between 0 and 64 log 2 for a sane untrained-ish model.
    assert 0 < metrics["train_loss"] < 64 * math.log(2) + 10
    assert -64 * math.log(2) - 10 < metrics["test_elbo_500"] < 0

    with Image.open(run / "samples.png") as picture:
        picture.load()
        assert picture.size == picture_size(100)
        assert picture.mode == "L"
    with Image.open(run / "reconstructions.png") as picture:
        picture.load()
        assert picture.size == picture_size(2 * min(50, TINY_LIMIT_TEST))

    capsys.readouterr()
    assert main(["evaluate", str(run), "--k", "50", "--limit", "20"]) == 0
    captured = capsys.readouterr()
    assert "test_log_likelihood" in captured.out and "Traceback" not in captured.err
    results = json.loads((run / "eval.json").read_text())
    assert results["num_test"] == 20 and results["k"] == 50 and results["epochs_trained"] == 1
    for key in ("test_elbo", "test_log_likelihood", "test_nll", "psis_khat_mean"):
        assert np.isfinite(results[key]), key
    assert results["test_nll"] == -results["test_log_likelihood"]
    # The evaluation agrees with an independent estimate through the Python API (fresh
    # draws, unblocked): equal up to Monte-Carlo error.
    import zoo

    model = zoo.load(run)
    again = model.log_likelihood(model.test_data()["x"][:20], k=50).mean()
    assert abs(again - results["test_log_likelihood"]) < 1.0 + 3 * results["test_log_likelihood_stderr"]
    assert "k-hat" in captured.out or "khat" in captured.out  # k-hat is printed beside the estimate


def test_list_names_every_variant(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in registry.names():
        assert name in out
    assert "Kingma" in out and "Burda" in out


def test_console_entry_point(tmp_path):
    """``python -m zoo`` (the same ``main`` as the ``vaezoo`` script) in a fresh process."""
    out = tmp_path / "run"
    env = {**os.environ, "VAEZOO_DATA": str(tmp_path / "cache")}
    result = subprocess.run(
        [sys.executable, "-m", "zoo", *tiny_args("vae", "pyro", out)],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "trained vae (pyro) for 1 epochs on digits" in result.stdout
    assert "Traceback" not in result.stderr
    for name in RUN_FILES:
        assert (out / name).is_file(), name


# --------------------------------------------------------------------------
# Mistakes a user can make
# --------------------------------------------------------------------------


def test_unknown_variant_names_the_known_ones(tmp_path, capsys):
    assert main(["train", "no-such-vae", "--out", str(tmp_path / "run")]) == 2
    message = assert_one_line_error(capsys.readouterr(), "no-such-vae")
    for name in ("vae", "iwae"):
        assert name in message


def test_unknown_backend(tmp_path, capsys):
    assert main(tiny_args("vae", "tensorflow", tmp_path / "run")) == 2
    assert_one_line_error(capsys.readouterr(), "tensorflow", "pyro", "numpyro")


def test_unknown_setting_lists_the_known_fields(tmp_path, capsys):
    assert main(tiny_args("vae", "pyro", tmp_path / "run", 1, "--set", "width=3")) == 2
    assert_one_line_error(capsys.readouterr(), "width", "z_dim")


def test_malformed_setting(tmp_path, capsys):
    assert main(tiny_args("vae", "pyro", tmp_path / "run", 1, "--set", "z_dim")) == 2
    assert_one_line_error(capsys.readouterr(), "name=value")


def test_invalid_setting_value(tmp_path, capsys):
    assert main(tiny_args("iwae", "pyro", tmp_path / "run", 1, "--k", "0")) == 2
    assert_one_line_error(capsys.readouterr(), "k must be at least 1")


def test_resume_without_a_checkpoint(tmp_path, capsys):
    assert main(tiny_args("vae", "pyro", tmp_path / "empty", 2, "--resume")) == 2
    assert_one_line_error(capsys.readouterr(), "--resume", "checkpoint")


def test_evaluate_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path), "--k", "5"]) == 2
    assert_one_line_error(capsys.readouterr(), str(tmp_path), "not a vaezoo run")


def test_evaluate_a_run_without_checkpoint(tmp_path, capsys):
    from conftest import tiny_config, tiny_options

    from zoo.run import save_run_file

    run = tmp_path / "run"
    run.mkdir()
    save_run_file(run, "vae", tiny_config("vae"), tiny_options())
    assert main(["evaluate", str(run), "--k", "5"]) == 2
    assert_one_line_error(capsys.readouterr(), "checkpoint.ckpt")


@pytest.mark.parametrize("backend", ["pyro", "numpyro"])
def test_cuda_without_a_gpu(tmp_path, capsys, backend):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present (tests/test_gpu.py covers it)")
    assert main(tiny_args("vae", backend, tmp_path / "run", 1, "--device", "cuda")) == 2
    assert_one_line_error(capsys.readouterr(), "cuda", "--device cpu")


# --- IDX files -----------------------------------------------------------------


def idx_gz(array: np.ndarray, magic: bytes | None = None) -> bytes:
    header = (magic or bytes([0, 0, 0x08, array.ndim])) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def write_mnist(folder: Path) -> dict[str, Path]:
    """Four small valid IDX files (28x28 images) in ``folder``."""
    rng = np.random.default_rng(0)
    arrays = {
        IDX_FILES[0]: rng.integers(0, 256, (20, 28, 28)),
        IDX_FILES[1]: np.arange(20) % 10,
        IDX_FILES[2]: rng.integers(0, 256, (10, 28, 28)),
        IDX_FILES[3]: np.arange(10) % 10,
    }
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, array in arrays.items():
        paths[name] = folder / name
        paths[name].write_bytes(idx_gz(array))
    return paths


def mnist_args(tmp_path, data_dir) -> list[str]:
    return ["train", "vae", "--dataset", "mnist", "--data-dir", str(data_dir), "--out", str(tmp_path / "run"), "--quiet"]


def test_missing_idx_file_is_named(tmp_path, capsys):
    paths = write_mnist(tmp_path / "mnist")
    paths[IDX_FILES[3]].unlink()
    assert main(mnist_args(tmp_path, tmp_path / "mnist")) == 2
    assert_one_line_error(capsys.readouterr(), IDX_FILES[3], str(tmp_path / "mnist"), "Put all four files there")


def test_no_idx_files_and_no_network(tmp_path, capsys):
    """With none of the files and no reachable server (conftest), the message says
    what to download and where to put it."""
    (tmp_path / "nothing").mkdir()
    assert main(mnist_args(tmp_path, tmp_path / "nothing")) == 2
    assert_one_line_error(capsys.readouterr(), "Could not download", IDX_FILES[0], "--data-dir")


def test_truncated_idx_file_is_named(tmp_path, capsys):
    paths = write_mnist(tmp_path / "mnist")
    content = gzip.decompress(paths[IDX_FILES[2]].read_bytes())
    paths[IDX_FILES[2]].write_bytes(gzip.compress(content[:-100]))
    assert main(mnist_args(tmp_path, tmp_path / "mnist")) == 2
    assert_one_line_error(capsys.readouterr(), str(paths[IDX_FILES[2]]), "truncated", "Delete it")


def test_wrong_magic_is_named(tmp_path, capsys):
    paths = write_mnist(tmp_path / "mnist")
    paths[IDX_FILES[0]].write_bytes(idx_gz(np.zeros((20, 28, 28)), magic=b"\x00\x00\x0d\x03"))
    assert main(mnist_args(tmp_path, tmp_path / "mnist")) == 2
    assert_one_line_error(capsys.readouterr(), str(paths[IDX_FILES[0]]), "magic number", "Delete it")


def test_valid_idx_files_train(tmp_path, capsys):
    write_mnist(tmp_path / "mnist")
    args = mnist_args(tmp_path, tmp_path / "mnist") + ["--epochs", "1", "--batch-size", "10", "--set", "hidden=[8]", "--z-dim", "2"]
    assert main(args) == 0
    with Image.open(tmp_path / "run" / "samples.png") as picture:
        assert picture.size == picture_size(100, image_side=28)


# --- a diverging run -------------------------------------------------------------


def nan_after_one_epoch(monkeypatch, backend: str, batches_per_epoch: int) -> None:
    """Make every training step after the first epoch return a NaN loss."""
    if backend == "pyro":
        from zoo.pyro_backend.variant import PyroVariant

        original = PyroVariant.train_step
        steps = []

        def train_step(self, batch):
            steps.append(1)
            loss = original(self, batch)
            return float("nan") if len(steps) > batches_per_epoch else loss

        monkeypatch.setattr(PyroVariant, "train_step", train_step)
    else:
        import jax.numpy as jnp

        from zoo.numpyro_backend.variant import NumPyroVariant

        original = NumPyroVariant.update

        def update(self, state, batch):
            # Inside the jit-compiled epoch: the step counter of the optimizer decides.
            new_state, loss = original(self, state, batch)
            return new_state, jnp.where(state.optim_state[0] >= batches_per_epoch, jnp.nan, loss)

        monkeypatch.setattr(NumPyroVariant, "update", update)


@pytest.mark.parametrize("backend", ["pyro", "numpyro"])
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, capsys, monkeypatch, backend):
    from conftest import TINY_BATCH, TINY_LIMIT_TRAIN

    from zoo.run import restore

    nan_after_one_epoch(monkeypatch, backend, TINY_LIMIT_TRAIN // TINY_BATCH)
    out = tmp_path / "run"
    assert main(tiny_args("vae", backend, out, 3)) == 2
    assert_one_line_error(capsys.readouterr(), "nan", "epoch 2", "checkpoint of epoch 1 is kept", "--lr")
    rows = (out / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 1 and np.isfinite(json.loads(rows[0])["loss"])
    assert not (out / "metrics.json").exists()
    trainer, *_, epoch = restore(out)
    assert epoch == 0
    assert np.all(np.isfinite(trainer.log_weights({"x": trainer.test_data()["x"][:5]}, 2)))


# --------------------------------------------------------------------------
# Import hygiene: the CLI starts without torch or JAX; each backend loads only its own
# --------------------------------------------------------------------------


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_core_and_pyro_backend_do_not_import_jax():
    code = """
import sys
import zoo, zoo.cli, zoo.registry, zoo.card, zoo.data, zoo.config, zoo.images, guides
for name in zoo.names():
    zoo.registry.card(name), zoo.registry.default_config(name)
assert 'jax' not in sys.modules and 'torch' not in sys.modules, 'core imported a backend'
import zoo.pyro_backend.variant, zoo.pyro_backend.objectives, zoo.pyro_backend.trainer, guides.torch_nets
for name in zoo.names():
    zoo.variant_class(name, 'pyro')
assert 'torch' in sys.modules
assert 'jax' not in sys.modules, 'the Pyro backend imported jax'
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr


def test_numpyro_backend_does_not_import_torch():
    code = """
import sys
import zoo
import zoo.numpyro_backend.variant, zoo.numpyro_backend.objectives, zoo.numpyro_backend.trainer, guides.flax_nets
for name in zoo.names():
    zoo.variant_class(name, 'numpyro')
assert 'jax' in sys.modules
assert 'torch' not in sys.modules, 'the NumPyro backend imported torch'
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
