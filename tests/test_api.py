"""The public Python API (zoo.train / zoo.load / zoo.Model), checked against the
trainers and the evaluation it wraps, in both backends."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import zoo
from zoo import evaluate

TINY = dict(epochs=1, limit_train=128, limit_test=64, batch_size=64)


@pytest.fixture(scope="module", params=["pyro", "numpyro"])
def trained(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"api-{request.param}")
    return zoo.train("vae", backend=request.param, settings={"z_dim": 3}, out=out, **TINY)


def test_shapes_and_numpy_types(trained):
    x = trained.test_data()["x"][:5]
    z = trained.encode(x)
    assert isinstance(z, np.ndarray) and z.shape == (5, 3)
    assert trained.decode(z).shape == x.shape
    assert trained.sample(7).shape == (7, x.shape[1])
    assert trained.reconstruct(x).shape == x.shape


def test_reconstruct_is_decode_of_encode(trained):
    x = trained.test_data()["x"][:6]
    np.testing.assert_allclose(trained.reconstruct(x), trained.decode(trained.encode(x)), rtol=1e-5, atol=1e-6)


def test_log_likelihood_is_the_log_mean_exp_of_the_weights_and_matches_evaluate(trained):
    x = trained.test_data()["x"][:40]
    log_px = trained.log_likelihood(x, k=200)
    assert log_px.shape == (40,)
    # The evaluation module's figure on the same data, an independent code path
    # (blocked, chunked): equal up to Monte-Carlo error of two independent runs.
    metrics = evaluate.importance_sampled_metrics(trained._trainer, {"x": x}, 200)
    assert abs(log_px.mean() - metrics["test_log_likelihood"]) < 0.5
    # Tighter than the ELBO by a margin no single-sample estimate explains.
    elbo = trained.log_weights(x, k=200).mean()
    assert log_px.mean() > elbo + 0.1


def test_load_gives_the_same_model(trained):
    again = zoo.load(trained.run_dir)
    x = trained.test_data()["x"][:4]
    np.testing.assert_allclose(again.encode(x), trained.encode(x), rtol=1e-6)
    assert again.epochs_trained == trained.epochs_trained == 1
    assert "vae" in repr(again)


def test_bad_options_are_named():
    with pytest.raises(TypeError, match="epoch"):
        zoo.train("vae", epoch=3)
    with pytest.raises(KeyError, match="known variants"):
        zoo.train("no-such-variant")


def test_import_zoo_does_not_import_a_backend():
    code = "import sys, zoo; zoo.train; assert 'torch' not in sys.modules and 'jax' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_getting_started_example_runs(capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "python_api.py"
    spec = importlib.util.spec_from_file_location("python_api", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(epochs=1)
    assert result["z"].shape == (100, zoo.default_config("vae").z_dim)
    assert result["samples"].shape == (16, 64)
    # 64 binary pixels: a model that learnt nothing scores 64 log 2 = 44.4 nats.
    assert -64 * np.log(2) - 5 < result["log_px"].mean() < 0
    assert "log p(x)" in capsys.readouterr().out


def test_an_existing_run_is_replaced_only_when_asked(trained):
    from zoo.run import RunError

    if trained.backend != "pyro":
        pytest.skip("the rule is the run folder's, not the backend's")
    with pytest.raises(RunError, match="--overwrite|overwrite"):
        zoo.train("vae", out=trained.run_dir, **TINY)
