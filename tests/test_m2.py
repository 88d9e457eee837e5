"""Tests of M2 (zoo/m2): the enumerated bound is exact, the labelled bound and the
classification term are what the card says, both backends agree with identical
weights, the importance weights sum the label out, and the CLI trains, evaluates
and rejects bad label counts.

Reference values are computed by hand with ``torch.distributions`` from the Pyro
variant's networks, on a toy M2 (3 classes, 6 pixels, 2-d z), with the noise of
the guide's reparameterised draws fixed (``FixedNoise``, ``numpyro_fixed_noise``)
so that the comparisons are exact to float tolerance.
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
from numpyro import handlers
from numpyro.infer import Trace_ELBO as NumPyroTraceELBO
from numpyro.infer import TraceEnum_ELBO as NumPyroTraceEnumELBO
from pyro import poutine
from pyro.infer import Trace_ELBO, TraceEnum_ELBO
from torch import distributions as tdist
from torch.nn import functional as F

from guides.flax_nets import params_from_torch
from zoo import registry
from zoo.cli import main
from zoo.config import override
from zoo.data import DataError, load_dataset, select_labelled
from zoo.m2 import numpyro_model as nm2
from zoo.m2 import pyro_model as pm2

C, X_DIM, Z_DIM, B = 3, 6, 2, 4
NETWORKS = ("classifier", "encoder", "decoder")


def toy_config(**settings):
    values = {"hidden": "[5]", "z_dim": str(Z_DIM)}
    values.update({k: json.dumps(v) for k, v in settings.items()})
    return override(registry.default_config("m2"), values)


@pytest.fixture
def toy():
    """A toy Pyro M2, its NumPyro twin's parameters, a batch and fixed noise for z."""
    torch.manual_seed(0)
    variant = pm2.Variant(toy_config(), X_DIM, C)
    generator = torch.Generator().manual_seed(1)
    x = torch.bernoulli(torch.full((B, X_DIM), 0.4), generator=generator)
    label = torch.tensor([2, 0, 1, 1])
    labelled = torch.tensor([True, False, True, False])
    noise_labelled = torch.randn(B, Z_DIM, generator=generator)
    noise_enumerated = torch.randn(C, B, Z_DIM, generator=generator)  # one draw per enumerated class
    params = {f"{name}$params": params_from_torch(getattr(variant, name)) for name in NETWORKS}
    return variant, params, x, label, labelled, noise_labelled, noise_enumerated


def normal_of(fn):
    """The Normal inside a site's distribution (unwrapping Independent and masks)."""
    while not type(fn).__name__ == "Normal":
        fn = fn.base_dist
    return fn


class FixedNoise(poutine.messenger.Messenger):
    """Pyro: the named Gaussian sites draw ``loc + scale * noise[name]``, a
    reparameterised sample with fixed noise (still latent, scored by q)."""

    def __init__(self, **noise):
        super().__init__()
        self.noise = noise

    def _pyro_sample(self, msg):
        if msg["name"] in self.noise and not msg["is_observed"]:
            normal = normal_of(msg["fn"])
            msg["value"] = normal.loc + normal.scale * self.noise[msg["name"]]
            msg["done"] = True


def numpyro_fixed_noise(program, **noise):
    """NumPyro's twin of :class:`FixedNoise`. The value is computed from the site's
    own location and scale, so it depends on the enumerated label the way a real
    draw does (a constant substituted for z would hide that dependence from
    ``TraceEnum_ELBO``'s provenance tracking and break the enumeration)."""

    def draw(msg):
        if msg["type"] == "sample" and msg["name"] in noise and not msg["is_observed"]:
            normal = normal_of(msg["fn"])
            return normal.loc + normal.scale * noise[msg["name"]]
        return None

    return handlers.substitute(program, substitute_fn=draw)


def j(tensor):
    return jnp.asarray(tensor.numpy())


# NumPyro losses are evaluated under jax.jit: one compilation instead of one per
# operation, which is what makes eager NumPyro slow.


# --- the bounds by hand --------------------------------------------------------


def labelled_bound(variant, x, y, noise):
    """(m2.4) ``L(x, y)`` per row with ``z = loc + scale * noise``."""
    y_onehot = F.one_hot(y, C).float()
    loc, scale = variant.encoder(torch.cat([x, y_onehot], -1))
    z = loc + scale * noise
    log_q = tdist.Normal(loc, scale).log_prob(z).sum(-1)
    log_prior = tdist.Normal(0.0, 1.0).log_prob(z).sum(-1) + math.log(1 / C)
    log_likelihood = tdist.Bernoulli(logits=variant.decoder(torch.cat([z, y_onehot], -1))).log_prob(x).sum(-1)
    return log_likelihood + log_prior - log_q


def unlabelled_loss(variant, x, noise_per_class):
    """(m2.5) ``-U(x) = sum_y q(y|x) (-L(x, y)) - H(q(y|x))`` per row."""
    q = torch.softmax(variant.classifier(x), -1)
    negative_bounds = torch.stack([-labelled_bound(variant, x, torch.full((len(x),), c), noise_per_class[c]) for c in range(C)])
    return (q.T * negative_bounds).sum(0) + (q * q.log()).sum(-1)


# --- enumeration and the labelled bound, both backends ---------------------------


def test_enumerated_loss_sums_the_label_out_exactly(toy):
    """(m2.5) value and gradient (classifier and encoder) equal the hand-computed sum."""
    variant, params, x, _, labelled, _, noise_enumerated = toy
    hand = unlabelled_loss(variant, x, noise_enumerated)[~labelled].sum()
    weights = [*variant.classifier.parameters(), *variant.encoder.parameters()]
    hand_grads = torch.autograd.grad(hand, weights)
    guide = FixedNoise(z=noise_enumerated)(variant.guide)
    pyro_loss = TraceEnum_ELBO(max_plate_nesting=1).differentiable_loss(variant.model, guide, x, mask=~labelled)
    assert pyro_loss.item() == pytest.approx(hand.item(), rel=1e-5)
    for got, want in zip(torch.autograd.grad(pyro_loss, weights), hand_grads):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)

    twin = nm2.Variant(toy_config(), X_DIM, C)
    numpyro_guide = numpyro_fixed_noise(twin.guide, z=j(noise_enumerated))
    numpyro_loss, grads = jax.jit(jax.value_and_grad(lambda p: NumPyroTraceEnumELBO(max_plate_nesting=1).loss(
        jax.random.PRNGKey(0), p, twin.model, numpyro_guide, j(x), mask=j(~labelled)
    )))(params)
    assert float(numpyro_loss) == pytest.approx(hand.item(), rel=1e-5)
    first_layer = grads["classifier$params"]["net"]["Dense_0"]["kernel"]  # Flax's kernel is torch's weight transposed
    np.testing.assert_allclose(np.asarray(first_layer).T, hand_grads[0].numpy(), rtol=1e-4, atol=1e-5)


@torch.no_grad()
def test_masked_rows_add_nothing_to_the_enumerated_loss(toy):
    """Every row masked out: exactly 0, whatever the enumeration weights are."""
    variant, _, x, _, _, _, noise_enumerated = toy
    with torch.enable_grad():
        loss = TraceEnum_ELBO(max_plate_nesting=1).differentiable_loss(
            variant.model, FixedNoise(z=noise_enumerated)(variant.guide), x, mask=torch.zeros(B, dtype=torch.bool)
        )
    assert loss.item() == 0.0


@torch.no_grad()
def test_labelled_loss_is_the_labelled_bound(toy):
    variant, params, x, label, labelled, noise_labelled, _ = toy
    expected = -labelled_bound(variant, x, label, noise_labelled)[labelled].sum().item()
    pyro_loss = Trace_ELBO().loss(variant.model, FixedNoise(z=noise_labelled)(variant.guide), x, y=label, mask=labelled)
    assert pyro_loss == pytest.approx(expected, rel=1e-5)

    twin = nm2.Variant(toy_config(), X_DIM, C)
    numpyro_guide = numpyro_fixed_noise(twin.guide, z=j(noise_labelled))
    numpyro_loss = jax.jit(lambda p: NumPyroTraceELBO().loss(
        jax.random.PRNGKey(0), p, twin.model, numpyro_guide, j(x), y=j(label), mask=j(labelled)
    ))(params)
    assert float(numpyro_loss) == pytest.approx(expected, rel=1e-5)


def test_semi_supervised_objective_is_the_card_in_both_backends(toy):
    """(m2.6) with weight w: labelled bound + enumerated bound + w * cross-entropy."""
    variant, params, x, label, labelled, noise_labelled, noise_enumerated = toy
    weight = 2.5
    with torch.no_grad():
        cross_entropy = F.cross_entropy(variant.classifier(x), label, reduction="none")
        expected = (
            -labelled_bound(variant, x, label, noise_labelled)[labelled].sum()
            + unlabelled_loss(variant, x, noise_enumerated)[~labelled].sum()
            + weight * cross_entropy[labelled].sum()
        ).item()

    def pyro_guide(x, y=None, **batch):
        return FixedNoise(z=noise_labelled if y is not None else noise_enumerated)(variant.guide)(x, y=y, **batch)

    objective = pm2.SemiSupervisedELBO(variant.log_classifier, lambda: weight)
    assert objective.loss(variant.model, pyro_guide, x, label, labelled) == pytest.approx(expected, rel=1e-5)

    twin = nm2.Variant(toy_config(), X_DIM, C)

    def numpyro_guide(x, y=None, **batch):
        noise = j(noise_labelled) if y is not None else j(noise_enumerated)
        return numpyro_fixed_noise(twin.guide, z=noise)(x, y=y, **batch)

    numpyro_objective = nm2.SemiSupervisedELBO(twin.log_classifier, lambda: weight)
    value = jax.jit(lambda p: numpyro_objective.loss(
        jax.random.PRNGKey(0), p, twin.model, numpyro_guide, j(x), j(label), j(labelled)
    ))(params)
    assert float(value) == pytest.approx(expected, rel=1e-5)


def test_classification_weight_is_alpha_over_the_labelled_count():
    labelled = np.array([True] * 10 + [False] * 990)
    assert pm2.classification_weight(0.1, labelled) == pytest.approx(0.1 * 1000 / 10)
    assert nm2.classification_weight(0.1, labelled) == pytest.approx(10.0)
    assert pm2.classification_weight(0.1, np.zeros(5, dtype=bool)) == 0.0


# --- importance weights: y summed out, against quadrature -------------------------


def assert_estimates(log_w, exact):
    """``log mean_k w_k`` within four standard errors (delta method) of ``exact``."""
    log_w = np.asarray(log_w, dtype=np.float64)
    w = np.exp(log_w - log_w.max(0))
    standard_error = w.std(0) / (w.mean(0) * np.sqrt(len(log_w)))
    assert np.all(standard_error < 0.05), "the check needs a precise estimate"
    estimate = np.logaddexp.reduce(log_w, 0) - np.log(len(log_w))
    assert np.all(np.abs(estimate - exact) < 4 * standard_error + 1e-3), (estimate, exact, standard_error)


def exact_log_marginal(variant, x) -> np.ndarray:
    """``log p(x) = log sum_y p(y) int p(z) p(x|y,z) dz`` by quadrature (1-d z)."""
    grid = torch.linspace(-9, 9, 6001, dtype=torch.float64)
    log_terms = []
    with torch.no_grad():
        for c in range(C):
            inputs = torch.cat([grid[:, None].float(), F.one_hot(torch.full((len(grid),), c), C).float()], -1)
            logits = variant.decoder(inputs).double()  # (G, D)
            log_likelihood = tdist.Bernoulli(logits=logits[:, None, :]).log_prob(x.double()[None]).sum(-1)  # (G, B)
            integrand = log_likelihood + tdist.Normal(0.0, 1.0).log_prob(grid)[:, None] + math.log(1 / C)
            log_terms.append(torch.logsumexp(integrand, 0) + math.log(grid[1] - grid[0]))
    return torch.logsumexp(torch.stack(log_terms), 0).numpy()


def test_log_weights_estimate_the_marginal_likelihood_with_y_summed_out():
    torch.manual_seed(0)
    config = toy_config(z_dim=1)
    variant = pm2.Variant(config, X_DIM, C)
    x = torch.bernoulli(torch.full((B, X_DIM), 0.4), generator=torch.Generator().manual_seed(3))
    exact = exact_log_marginal(variant, x)
    k = 4000

    log_w = variant.log_weights(k, x=x).double().numpy()
    assert_estimates(log_w, exact)
    assert np.all(log_w.mean(0) <= exact + 1e-6)  # E log w <= log p(x)

    twin = nm2.Variant(config, X_DIM, C)
    params = {f"{name}$params": params_from_torch(getattr(variant, name)) for name in NETWORKS}
    assert_estimates(twin.log_weights(params, jax.random.PRNGKey(0), k, x=j(x)), exact)


# --- the labelled subset and the CLI -----------------------------------------------


def test_labelled_subset_is_balanced_seeded_and_checked():
    dataset = load_dataset("digits")
    chosen = select_labelled(dataset, 103, seed=4)
    counts = np.bincount(dataset.y_train[chosen.labelled], minlength=10)
    assert chosen.labelled.sum() == 103 and counts.min() == 10 and counts.max() == 11
    assert np.array_equal(select_labelled(dataset, 103, seed=4).labelled, chosen.labelled)
    assert not np.array_equal(select_labelled(dataset, 103, seed=5).labelled, chosen.labelled)
    arrays = pm2.labelled_arrays(chosen)
    assert np.all(arrays["label"][~chosen.labelled] == 0)  # hidden labels are blanked
    with pytest.raises(DataError, match="more labelled examples than"):
        select_labelled(dataset, len(dataset.y_train) + 1, seed=0)


def test_cli_rejects_more_labels_than_examples(tmp_path, capsys):
    assert main(tiny_args("m2", "pyro", tmp_path, 1, "--labels", "5000")) == 2
    error = capsys.readouterr().err
    assert "--labels 5000 asks for more labelled examples" in error and "Traceback" not in error


@pytest.mark.parametrize("backend", ["pyro", pytest.param("numpyro", marks=pytest.mark.slow)])  # NumPyro: a compile of 10-30 s CPU
def test_cli_trains_m2(backend, tmp_path, capsys):
    """Training writes the paper's metrics; ``vaezoo evaluate`` reports them too
    (evaluated in one backend: the same trainer methods already ran in training)."""
    args = tiny_args("m2", backend, tmp_path, 1, "--labels", "20", "--set", "supervised_steps=20")
    assert main(args) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["labels"] == 20
    assert metrics["supervised_steps"] == 20 and math.isfinite(metrics["supervised_test_accuracy"])
    assert math.isfinite(metrics["test_elbo_500"]) and (tmp_path / "samples.png").exists()
    if backend == "pyro":
        capsys.readouterr()
        assert main(["evaluate", str(tmp_path), "--k", "4", "--limit", "10"]) == 0
        report = capsys.readouterr().out
        assert "test_nll" in report and "test_accuracy" in report and "supervised_test_accuracy" in report


@torch.no_grad()
def test_pictures_are_class_rows_and_style_transfer(toy):
    variant, _, x, label, *_ = toy
    grid = variant.style_transfer(x, label).reshape(B, C + 1, X_DIM)
    assert torch.equal(grid[:, 0], x)  # each row starts with the image itself
    z = variant.encode(x, label)  # its style, encoded with its own label
    for c in range(C):
        torch.testing.assert_close(grid[:, c + 1], variant.decode(z, torch.full((B,), c)))
    torch.manual_seed(5)
    samples = variant.sample(2 * C, "cpu")
    torch.manual_seed(5)
    z = torch.randn(2 * C, Z_DIM)
    torch.testing.assert_close(samples, variant.decode(z, torch.arange(C).repeat_interleave(2)))


# --- the training protocol: labelled rows in every batch, an equal-step baseline ----


def test_oversampled_rows_reach_the_labelled_fraction():
    from zoo.data import oversampled_rows

    labelled = np.zeros(2000, dtype=bool)
    labelled[np.random.default_rng(0).choice(2000, 50, replace=False)] = True
    rows = oversampled_rows(labelled, 0.1, seed=3)
    counts = np.bincount(rows, minlength=2000)
    # 50 labelled among 1950 unlabelled: r = 0.1 * 1950 / (0.9 * 50) = 4.33 copies each.
    assert np.all(counts[~labelled] == 1) and set(counts[labelled]) == {4, 5}
    assert labelled[rows].mean() == pytest.approx(0.1, abs=0.002)
    assert np.array_equal(rows, np.sort(rows)), "original order kept"
    assert np.array_equal(oversampled_rows(labelled, 0.0), np.arange(2000))
    assert np.array_equal(oversampled_rows(labelled, 0.01), np.arange(2000)), "2.5% labelled already exceed 1%"


@pytest.mark.parametrize("backend", ["pyro", "numpyro"])
def test_every_batch_holds_labelled_rows_and_alpha_counts_distinct_labels(backend):
    from conftest import tiny_config, tiny_options

    from zoo.run import make_trainer

    config = tiny_config("m2", labels=10, labelled_fraction=0.2)
    trainer = make_trainer("m2", config, tiny_options(backend=backend))
    labelled = np.asarray(trainer.train_arrays["labelled"]).astype(bool)
    assert labelled.mean() == pytest.approx(0.2, abs=0.01)
    # alpha / N_l with N_l the 10 distinct labels and N the 200 distinct images.
    assert trainer.variant.alpha_per_label == pytest.approx(0.1 * 200 / 10)
    # A random permutation of these rows puts about 10 labelled rows in each batch of 50.
    per_batch = labelled[np.random.default_rng(0).permutation(len(labelled))][: 4 * 50].reshape(4, 50).sum(1)
    assert np.all(per_batch >= 3)


@pytest.mark.parametrize("backend", ["pyro", "numpyro"])
def test_supervised_baseline_takes_as_many_steps_as_m2(backend, tmp_path):
    assert main(tiny_args("m2", backend, tmp_path, 2, "--labels", "20")) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    # 200 images, 20 labelled repeated to 10%: 200 rows in all, 4 batches of 50, 2 epochs.
    assert metrics["supervised_steps"] == 8
