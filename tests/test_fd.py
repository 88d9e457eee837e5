"""The classifier-feature Fréchet distance and class fidelity (zoo/fd.py): FD against
an independent eigenvalue computation and the closed form of known Gaussians, zero
against itself, growth with a shift; the cached classifier (recipe, checksum,
accuracy, torch and Flax features agree, damage refused) and its command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import linalg

from zoo import fd
from zoo.data import load_dataset


def fd_by_eigenvalues(a: np.ndarray, b: np.ndarray) -> float:
    """FD with tr (S_a S_b)^{1/2} = sum sqrt(eig(S_a^{1/2} S_b S_a^{1/2})), a symmetric
    eigenproblem: a computation independent of fd.frechet_distance's sqrtm."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    values, vectors = np.linalg.eigh(cov_a)
    root_a = vectors @ np.diag(np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * np.sum(np.sqrt(np.clip(middle, 0, None))))


def gaussian(rng, n, mean, cov):
    return rng.multivariate_normal(mean, cov, size=n)


@pytest.fixture
def two_gaussians():
    rng = np.random.default_rng(0)
    d = 4
    A, B = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    cov_a, cov_b = A @ A.T + 0.5 * np.eye(d), B @ B.T + 0.5 * np.eye(d)
    mean_a, mean_b = rng.normal(size=d), rng.normal(size=d)
    return (mean_a, cov_a, mean_b, cov_b), gaussian(rng, 20000, mean_a, cov_a), gaussian(rng, 20000, mean_b, cov_b)


def test_fd_equals_an_independent_eigenvalue_computation(two_gaussians):
    _, a, b = two_gaussians
    assert fd.frechet_distance(a[:300], b[:500]) == pytest.approx(fd_by_eigenvalues(a[:300], b[:500]), rel=1e-8)


def test_fd_of_samples_approaches_the_closed_form_of_the_gaussians(two_gaussians):
    (mean_a, cov_a, mean_b, cov_b), a, b = two_gaussians
    exact = np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a + cov_b - 2 * np.real(linalg.sqrtm(cov_a @ cov_b)))
    assert fd.frechet_distance(a, b) == pytest.approx(exact, rel=0.03)


def test_fd_of_a_set_against_itself_is_zero_and_grows_with_a_shift(two_gaussians):
    _, a, _ = two_gaussians
    a = a[:2000]
    assert fd.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shifts = [0.5, 1.0, 2.0]
    values = [fd.frechet_distance(a, a + shift) for shift in shifts]
    # Same covariance: FD = ||delta||^2 = d * shift^2 exactly.
    np.testing.assert_allclose(values, [a.shape[1] * s**2 for s in shifts], rtol=1e-6)
    assert values == sorted(values)


# --- the cached classifier ------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory):
    """The digits classifier's files, trained once for the module (~2 s)."""
    import os

    folder = tmp_path_factory.mktemp("fd-cache")
    previous = os.environ.get("VAEZOO_DATA")
    os.environ["VAEZOO_DATA"] = str(folder)
    try:
        record = fd.train_classifier("digits", progress=False)
        files = [path.read_bytes() for path in fd.cache_paths("digits")]
    finally:
        if previous is None:
            os.environ.pop("VAEZOO_DATA")
        else:
            os.environ["VAEZOO_DATA"] = previous
    return record, files


@pytest.fixture
def digits_classifier(trained_once):
    """The digits classifier, copied into the test's own (isolated) cache."""
    record, files = trained_once
    for path, blob in zip(fd.cache_paths("digits"), files):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)
    return record


def test_classifier_is_cached_with_recipe_checksum_and_accuracy(digits_classifier):
    weights, record_file = fd.cache_paths("digits")
    record = json.loads(record_file.read_text())
    assert record == digits_classifier
    assert record["recipe"] == fd.RECIPES["digits"] and record["test_accuracy"] > 0.9
    import hashlib

    assert hashlib.sha256(weights.read_bytes()).hexdigest() == record["sha256"]
    state, loaded = fd.load_classifier("digits", train_if_missing=False)
    assert loaded == record and "dense.1.weight" in state


def test_torch_and_flax_features_agree_and_class_fidelity_is_the_accuracy(digits_classifier):
    data = load_dataset("digits", binarize="none")
    x = data.x_test[:300]
    torch_logits, torch_features = fd.classifier_outputs("digits", x, "pyro")
    jax_logits, jax_features = fd.classifier_outputs("digits", x, "numpyro")
    assert torch_features.shape == (300, 128)
    np.testing.assert_allclose(jax_features, torch_features, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(jax_logits, torch_logits, rtol=1e-4, atol=1e-5)
    fidelity = fd.class_fidelity(data, x, data.y_test[:300], "pyro")["class_fidelity"]
    assert fidelity == pytest.approx(np.mean(torch_logits.argmax(-1) == data.y_test[:300]))
    assert fidelity > 0.9  # the test images of each class are classified as that class
    # Shuffled labels: images no longer match the class asked for.
    shuffled = np.random.default_rng(0).permutation(data.y_test[:300])
    assert fd.class_fidelity(data, x, shuffled, "pyro")["class_fidelity"] < 0.3


def test_fd_of_test_images_is_small_against_train_images_and_large_against_noise(digits_classifier):
    data = load_dataset("digits", binarize="none")
    _, test = fd.classifier_outputs("digits", data.x_test, "pyro")
    _, train = fd.classifier_outputs("digits", data.x_train[:360], "pyro")
    noise = np.random.default_rng(0).random(data.x_test.shape).astype(np.float32)
    _, fake = fd.classifier_outputs("digits", noise, "pyro")
    assert fd.frechet_distance(test, train) < 0.1 * fd.frechet_distance(test, fake)


def test_a_damaged_cache_is_refused(digits_classifier):
    weights, _ = fd.cache_paths("digits")
    blob = bytearray(weights.read_bytes())
    blob[-10] ^= 0xFF
    weights.write_bytes(bytes(blob))
    with pytest.raises(fd.FDError, match="checksum"):
        fd.load_classifier("digits")


def test_command_line_show_without_a_cache_exits_2_and_train_then_show_works(capsys):
    assert fd.main(["show", "--dataset", "digits"]) == 2
    assert "python -m zoo.fd train" in capsys.readouterr().err
    assert fd.main(["train", "--dataset", "digits"]) == 0
    capsys.readouterr()
    assert fd.main(["show", "--dataset", "digits"]) == 0
    assert json.loads(capsys.readouterr().out)["dataset"] == "digits"
