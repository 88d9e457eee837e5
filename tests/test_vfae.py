"""Tests of the VFAE (zoo/vfae) and its data: the enumerated bound and the MMD
factor against hand computations in both backends with identical weights, the
random-feature MMD, the synthetic nuisance and UCI Adult loaders, the fairness
metrics, and the CLI with its errors for bad inputs.

Reference values use ``torch.distributions`` on the Pyro variant's networks with
the noise of the guide's draws fixed (tests/test_m2.py's ``FixedNoise`` /
``numpyro_fixed_noise``), so comparisons are exact to float tolerance.
"""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from conftest import tiny_args
from numpyro.infer import TraceEnum_ELBO as NumPyroTraceEnumELBO
from pyro.infer import TraceEnum_ELBO
from test_m2 import FixedNoise, numpyro_fixed_noise
from torch import distributions as tdist
from torch.nn import functional as F

from guides.flax_nets import params_from_torch
from zoo import data, registry
from zoo.cli import main
from zoo.config import override
from zoo.data import DataError, load_dataset, synthetic_nuisance, with_sensitive
from zoo.evaluate import fairness_metrics
from zoo.m2 import numpyro_model as nm2
from zoo.m2 import pyro_model as pm2
from zoo.numpyro_backend import objectives as nobj
from zoo.pyro_backend import objectives as pobj
from zoo.vfae import numpyro_model as nvfae
from zoo.vfae import pyro_model as pvfae

C, X_DIM, Z1, Z2, B = 3, 6, 2, 2, 5
NETWORKS = ("encoder_z1", "classifier", "encoder_z2", "prior_z1", "decoder")


def toy_config(**settings):
    values = {"hidden": "[5]", "z_dim": str(Z1), "z2_dim": str(Z2), "beta": "0"}
    values.update({k: json.dumps(v) for k, v in settings.items()})
    return override(registry.default_config("vfae"), values)


@pytest.fixture
def toy():
    torch.manual_seed(0)
    variant = pvfae.Variant(toy_config(), X_DIM, C)
    generator = torch.Generator().manual_seed(1)
    x = torch.bernoulli(torch.full((B, X_DIM), 0.4), generator=generator)
    s = torch.tensor([0, 1, 1, 0, 1])
    label = torch.tensor([2, 0, 1, 1, 0])
    labelled = torch.tensor([True, False, True, False, False])
    noise = {
        "z1": torch.randn(B, Z1, generator=generator),
        "z2_labelled": torch.randn(B, Z2, generator=generator),
        "z2_enumerated": torch.randn(C, B, Z2, generator=generator),
    }
    params = {f"{name}$params": params_from_torch(getattr(variant, name)) for name in NETWORKS}
    return variant, params, x, s, label, labelled, noise


def j(tensor):
    return jnp.asarray(tensor.numpy())


def code(variant, x, s, noise):
    """``z1 = loc + scale * noise`` of ``q(z1|x,s)`` and its log density."""
    q = tdist.Normal(*variant.encoder_z1(torch.cat([x, s[:, None].float()], -1)))
    z1 = q.loc + q.scale * noise
    return z1, q.log_prob(z1).sum(-1)


def bound_given_code(variant, x, s, z1, y, noise_z2):
    """(vfae.4) per row, without the ``-log q(z1|x,s)`` term, for a given z1."""
    y_onehot = F.one_hot(y, C).float()
    q2 = tdist.Normal(*variant.encoder_z2(torch.cat([z1, y_onehot], -1)))
    z2 = q2.loc + q2.scale * noise_z2
    prior_z1 = tdist.Normal(*variant.prior_z1(torch.cat([z2, y_onehot], -1)))
    log_likelihood = tdist.Bernoulli(logits=variant.decoder(torch.cat([z1, s[:, None].float()], -1))).log_prob(x).sum(-1)
    return (
        log_likelihood + prior_z1.log_prob(z1).sum(-1) + math.log(1 / C)
        + tdist.Normal(0.0, 1.0).log_prob(z2).sum(-1) - q2.log_prob(z2).sum(-1)
    )


def unlabelled_loss(variant, x, s, noise):
    """(vfae.5) ``-U(x, s)`` per row: y summed out with the weights ``q(y|z1)``."""
    z1, log_q1 = code(variant, x, s, noise["z1"])
    q = torch.softmax(variant.classifier(z1), -1)
    negative = torch.stack([
        -(bound_given_code(variant, x, s, z1, torch.full((B,), c), noise["z2_enumerated"][c]) - log_q1) for c in range(C)
    ])
    return (q.T * negative).sum(0) + (q * q.log()).sum(-1)


def labelled_loss(variant, x, s, label, noise):
    z1, log_q1 = code(variant, x, s, noise["z1"])
    return -(bound_given_code(variant, x, s, z1, label, noise["z2_labelled"]) - log_q1)


@torch.no_grad()
def test_enumerated_vfae_bound_sums_the_label_out_exactly(toy):
    variant, params, x, s, _, labelled, noise = toy
    expected = unlabelled_loss(variant, x, s, noise)[~labelled].sum().item()
    guide = FixedNoise(z1=noise["z1"], z2=noise["z2_enumerated"])(variant.guide)
    with torch.enable_grad():
        loss = TraceEnum_ELBO(max_plate_nesting=1).differentiable_loss(variant.model, guide, x, s=s, mask=~labelled)
    assert loss.item() == pytest.approx(expected, rel=1e-5)

    twin = nvfae.Variant(toy_config(), X_DIM, C)
    numpyro_guide = numpyro_fixed_noise(twin.guide, z1=j(noise["z1"]), z2=j(noise["z2_enumerated"]))
    value = jax.jit(lambda p: NumPyroTraceEnumELBO(max_plate_nesting=1).loss(
        jax.random.PRNGKey(0), p, twin.model, numpyro_guide, j(x), s=j(s), mask=j(~labelled)
    ))(params)
    assert float(value) == pytest.approx(expected, rel=1e-5)


def test_objective_adds_the_mmd_once_per_minibatch_in_both_backends(toy):
    """(vfae.6, vfae.7) with alpha = 0: the two masked bounds plus beta * B * MMD of
    the minibatch's z1, counted once although the program runs twice."""
    variant, params, x, s, label, labelled, noise = toy
    beta = 3.0
    config = toy_config(beta=beta, alpha=0.0)
    variant.config = config
    with torch.no_grad():
        z1, _ = code(variant, x, s, noise["z1"])
        penalty = beta * B * pobj.mmd_between_groups(z1, s, config.gamma).item()
        assert penalty > 0
        expected = (
            labelled_loss(variant, x, s, label, noise)[labelled].sum() + unlabelled_loss(variant, x, s, noise)[~labelled].sum()
        ).item() + penalty

    def guide(x, s, y=None, **batch):
        z2 = noise["z2_labelled"] if y is not None else noise["z2_enumerated"]
        return FixedNoise(z1=noise["z1"], z2=z2)(variant.guide)(x, s, y=y, **batch)

    objective = variant.objective()
    assert objective.loss(variant.model, guide, x, label, labelled, s=s) == pytest.approx(expected, rel=1e-5)

    twin = nvfae.Variant(config, X_DIM, C)

    def numpyro_guide(x, s, y=None, **batch):
        z2 = noise["z2_labelled"] if y is not None else noise["z2_enumerated"]
        return numpyro_fixed_noise(twin.guide, z1=j(noise["z1"]), z2=j(z2))(x, s, y=y, **batch)

    value = jax.jit(lambda p: twin.objective().loss(
        jax.random.PRNGKey(0), p, twin.model, numpyro_guide, j(x), j(label), j(labelled), s=j(s)
    ))(params)
    assert float(value) == pytest.approx(expected, rel=1e-5)


def test_random_feature_mmd_uses_the_group_masks():
    """With the same features, the masked estimate equals the one on the split groups."""
    rng = np.random.default_rng(0)
    z, s = rng.normal(size=(9, 3)), np.array([0, 1, 1, 0, 0, 1, 0, 1, 1])
    torch.manual_seed(3)
    masked = pvfae.group_mmd(torch.tensor(z), torch.tensor(s), 0.5, num_features=64).item()
    torch.manual_seed(3)
    split = pobj.mmd_random_features(torch.tensor(z[s == 0]), torch.tensor(z[s == 1]), 0.5, 64).item()
    # The split version draws features for the groups stacked in another order; the
    # estimate is a function of the feature means only, which do not depend on it.
    assert masked == pytest.approx(split, rel=1e-9)
    key = jax.random.PRNGKey(2)
    masked = float(nvfae.group_mmd(jnp.asarray(z), jnp.asarray(s), 0.5, 64, key))
    split = float(nobj.mmd_random_features(jnp.asarray(z[s == 0]), jnp.asarray(z[s == 1]), 0.5, key, 64))
    assert masked == pytest.approx(split, rel=1e-5)
    assert float(nvfae.group_mmd(jnp.asarray(z), jnp.zeros(9, int), 0.5, 64, key)) == 0.0


def test_the_semi_supervised_pieces_are_shared_with_m2():
    assert pvfae.SemiSupervisedELBO is pm2.SemiSupervisedELBO
    assert nvfae.SemiSupervisedELBO is nm2.SemiSupervisedELBO


# --- data: the synthetic nuisance, Adult, the sensitive attribute ------------------


def test_synthetic_nuisance_frames_the_s1_images_and_follows_the_class():
    dataset = load_dataset("digits", binarize="none")
    framed = synthetic_nuisance(dataset)
    images = framed.x_train.reshape(-1, 8, 8)
    border = np.ones((8, 8), dtype=bool)
    border[1:-1, 1:-1] = False
    assert np.all(images[framed.s_train == 1][:, border] == 1.0)
    untouched = framed.s_train == 0
    assert np.array_equal(framed.x_train[untouched], dataset.x_train[untouched])
    assert np.array_equal(images[:, 1:-1, 1:-1], dataset.x_train.reshape(-1, 8, 8)[:, 1:-1, 1:-1])
    upper = dataset.y_train >= 5
    assert framed.s_train[upper].mean() == pytest.approx(0.75, abs=0.06)
    assert framed.s_train[~upper].mean() == pytest.approx(0.25, abs=0.06)
    assert np.array_equal(synthetic_nuisance(dataset).s_test, framed.s_test)  # constant seed
    assert with_sensitive(dataset, "frame").sensitive == "frame"
    with pytest.raises(DataError, match="unknown sensitive attribute 'sex' for digits; it offers frame"):
        with_sensitive(dataset, "sex")


ADULT_ROWS = [
    "39, State-gov, {w}, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, Male, 2174, 0, 40, United-States, <=50K",
    "50, Self-emp-not-inc, {w}, Bachelors, 13, Married-civ-spouse, Exec-managerial, Husband, White, Male, 0, 0, 13, United-States, >50K",
    "38, Private, {w}, HS-grad, 9, Divorced, Handlers-cleaners, Not-in-family, White, Female, 0, 0, 40, United-States, <=50K",
    "53, ?, {w}, 11th, 7, Married-civ-spouse, ?, Husband, Black, Male, 0, 0, 40, ?, >50K",
    "28, Private, {w}, Bachelors, 13, Married-civ-spouse, Prof-specialty, Wife, Black, Female, 0, 0, 40, Cuba, <=50K",
    "37, Private, {w}, Masters, 14, Married-civ-spouse, Exec-managerial, Wife, White, Female, 0, 0, 40, United-States, >50K",
]


def write_adult(folder, train_rows=ADULT_ROWS):
    """A small Adult pair in the UCI format: fnlwgt holds the row number, sex
    alternates with it in the test file, which has the comment line and the
    trailing full stops of the real one."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adult.data").write_text("\n".join(r.format(w=i) for i, r in enumerate(train_rows)) + "\n\n")
    test = [
        "25, Private, 0, 11th, 7, Never-married, Machine-op-inspct, Own-child, Black, Male, 0, 0, 40, Mexico, <=50K.",
        "44, Private, 1, Some-college, 10, Married-civ-spouse, Machine-op-inspct, Husband, Other, Female, 7688, 0, 40, United-States, >50K.",
    ]
    (folder / "adult.test").write_text("|1x3 Cross validator\n" + "\n".join(test) + "\n")
    return folder


def test_adult_is_one_hot_and_standardised(tmp_path):
    adult = load_dataset("adult", data_dir=write_adult(tmp_path / "adult"))
    n_categories = {name: len({r.split(", ")[data.ADULT_COLUMNS.index(name)] for r in ADULT_ROWS}) for name in data.ADULT_CATEGORICAL}
    assert adult.x_train.shape == (6, 6 + sum(n_categories.values())) and adult.image_shape == (1, adult.x_dim)
    numeric = adult.x_train[:, :6]
    np.testing.assert_allclose(numeric.mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(numeric[:, 0].std(), 1, atol=1e-6)  # age varies
    one_hot = adult.x_train[:, 6:]
    assert set(np.unique(one_hot)) == {0.0, 1.0} and np.all(one_hot.sum(1) == len(data.ADULT_CATEGORICAL))
    assert np.array_equal(adult.y_train, [0, 1, 0, 1, 0, 1]) and np.array_equal(adult.s_train, [0, 0, 1, 0, 1, 1])
    assert np.array_equal(adult.y_test, [0, 1]) and np.array_equal(adult.s_test, [0, 1])  # "50K." read, comment skipped
    # Test categories unseen in training (Mexico, Own-child...) encode as zeros.
    assert adult.x_test[0, 6:].sum() < len(data.ADULT_CATEGORICAL)
    assert adult.binarize == "none" and adult.sensitive == "sex" and with_sensitive(adult, "sex") is adult
    with pytest.raises(DataError, match="binarization does not apply"):
        load_dataset("adult", data_dir=tmp_path / "adult", binarize="fixed")
    with pytest.raises(DataError, match="offers sex"):
        with_sensitive(adult, "frame")


def test_adult_subsets_keep_s_with_its_rows(tmp_path):
    """--limit-train subsets s with the same rows as x and y."""
    rows = []
    for i in range(40):  # fnlwgt = i (from write_adult), sex = Female for odd i
        row = ADULT_ROWS[i % 6].replace(" Female,", " Male,")
        rows.append(row.replace(" Male,", " Female,") if i % 2 else row)
    adult = load_dataset("adult", data_dir=write_adult(tmp_path / "a", rows), limit_train=15)
    index = np.rint(adult.x_train[:, 1] * np.arange(40).std() + 19.5).astype(int)  # undo the standardisation
    assert len(set(index)) == 15 and np.array_equal(adult.s_train, index % 2)


def test_adult_downloads_into_the_cache_with_a_warning_without_checksum(tmp_path, monkeypatch, capsys, isolated_data):
    server = write_adult(tmp_path / "server")
    monkeypatch.setattr(data, "ADULT_BASE_URL", server.as_uri() + "/")
    adult = load_dataset("adult")
    assert (isolated_data / "adult" / "adult.data").is_file() and len(adult.y_train) == 6
    assert "was not checked against a known SHA-256" in capsys.readouterr().err
    (isolated_data / "adult" / "adult.data").write_text("not, an, adult, file\n")
    with pytest.raises(DataError, match="expected 15"):
        load_dataset("adult")


# --- the fairness metrics -----------------------------------------------------


def test_fairness_metrics_read_s_and_discrimination():
    rng = np.random.default_rng(0)
    n = 600
    s_train, s_test = rng.integers(0, 2, n), rng.integers(0, 2, n)
    y_train, y_test = rng.integers(0, 2, n), rng.integers(0, 2, n)
    leaky = fairness_metrics(s_train[:, None] + 0.1 * rng.normal(size=(n, 1)), s_train, y_train,
                             s_test[:, None] + 0.1 * rng.normal(size=(n, 1)), s_test, y_test, s_test)
    assert leaky["s_accuracy_logreg"] > 0.99 and leaky["s_accuracy_forest"] > 0.99
    assert leaky["discrimination"] == pytest.approx(1.0)  # y_hat = s
    fair = fairness_metrics(rng.normal(size=(n, 2)), s_train, y_train, rng.normal(size=(n, 2)), s_test, y_test,
                            np.zeros(n, int))
    assert abs(fair["s_accuracy_logreg"] - fair["s_majority_rate"]) < 0.08
    assert fair["discrimination"] == 0.0
    y_pred = rng.integers(0, 2, n)
    by_hand = abs(y_pred[s_test == 0].mean() - y_pred[s_test == 1].mean())
    assert fairness_metrics(rng.normal(size=(n, 2)), s_train, y_train, rng.normal(size=(n, 2)), s_test, y_test,
                            y_pred)["discrimination"] == pytest.approx(by_hand)


# --- the CLI -----------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["pyro", pytest.param("numpyro", marks=pytest.mark.slow)])  # NumPyro: a compile of 10-30 s CPU
def test_cli_trains_vfae(backend, tmp_path, capsys):
    # Few labels and random features keep the compiled NumPyro program small (a minute otherwise).
    extra = ("--labels", "30", "--set", "mmd_features=16")
    assert main(tiny_args("vfae", backend, tmp_path, 1, *extra)) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("y_accuracy", "s_accuracy_logreg", "s_accuracy_forest", "s_majority_rate", "discrimination"):
        assert 0 <= metrics[key] <= 1
    assert metrics["z1_mmd"] >= 0 and math.isfinite(metrics["test_elbo_500"])
    if backend == "pyro":
        capsys.readouterr()
        assert main(["evaluate", str(tmp_path), "--k", "3", "--limit", "10"]) == 0
        report = capsys.readouterr().out
        assert "test_nll" in report and "s_accuracy_forest" in report and "discrimination" in report


@pytest.mark.parametrize("settings, message", [
    (("--set", "sensitive=race"), "unknown sensitive attribute 'race'; choose one of frame, sex"),
    (("--set", "sensitive=sex"), "unknown sensitive attribute 'sex' for digits"),
    (("--labels", "5000"), "--labels 5000 asks for more labelled examples"),
])
def test_cli_rejects_bad_inputs(settings, message, tmp_path, capsys):
    assert main(tiny_args("vfae", "pyro", tmp_path, 1, *settings)) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error


def test_bernoulli_likelihood_refuses_standardised_columns(tmp_path):
    from zoo.config import TrainOptions
    from zoo.run import make_trainer

    options = TrainOptions(dataset="adult", data_dir=str(write_adult(tmp_path / "adult")), binarize="none")
    with pytest.raises(DataError, match="use --likelihood gaussian"):
        make_trainer("vfae", toy_config(sensitive="sex"), options)


def test_cli_trains_vfae_on_adult(tmp_path, capsys):
    """UCI Adult (here a small file in its format): s = sex, a Gaussian likelihood."""
    adult = write_adult(tmp_path / "adult")
    args = ["train", "vfae", "--dataset", "adult", "--data-dir", str(adult), "--likelihood", "gaussian",
            "--set", "sensitive=sex", "--set", "hidden=[8]", "--z-dim", "2", "--epochs", "1",
            "--out", str(tmp_path / "run"), "--quiet"]
    assert main(args) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["dataset"] == "adult" and metrics["binarize"] == "none"
    assert metrics["s_majority_rate"] == 0.5 and math.isfinite(metrics["test_elbo_500"])
