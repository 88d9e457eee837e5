"""Evaluation (zoo/evaluate.py): the ELBO estimate, the importance-sampled
log-likelihood L_K (iwae.3) and PSIS k-hat, per test datapoint.

The bookkeeping (blocks of datapoints, chunks of particles) is checked against a
direct computation on one matrix of weights; the estimates against the closed
forms of the linear-Gaussian model; the bound ordering (iwae.4) on a trained run.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest
import torch
from conftest import LinearGaussian, pyro_linear_gaussian
from scipy.special import logsumexp

from zoo.evaluate import importance_sampled_metrics, psis_khat
from zoo.pyro_backend.objectives import log_importance_weights
from zoo.run import restore


class MatrixTrainer:
    """A trainer whose log weights are read, in order, from a fixed (K, N) matrix:
    datapoint ``n`` is identified by ``x[n] == n``, each call takes the next rows."""

    def __init__(self, log_w: np.ndarray):
        self.matrix = log_w
        self.next_row = np.zeros(log_w.shape[1], dtype=int)
        self.calls = []

    def log_weights(self, arrays: dict, num_particles: int) -> np.ndarray:
        index = arrays["x"][:, 0].astype(int)
        start = self.next_row[index[0]]
        assert np.all(self.next_row[index] == start)
        self.next_row[index] += num_particles
        self.calls.append((len(index), num_particles))
        return self.matrix[start : start + num_particles, index]


class LinearGaussianTrainer:
    """A trainer for the linear-Gaussian model of conftest: the zoo's Pyro log
    weights of one of its guides."""

    backend = "pyro"

    def __init__(self, lg: LinearGaussian, guide_kind: str):
        self.lg, self.guide_kind = lg, guide_kind

    def log_weights(self, arrays: dict, num_particles: int) -> np.ndarray:
        block = LinearGaussian(self.lg.W, self.lg.b, self.lg.sigma, arrays["x"])
        model, guide, x = pyro_linear_gaussian(block, self.guide_kind)
        return log_importance_weights(model, guide, num_particles, x).numpy()


def test_blocks_and_chunks_give_the_direct_computation():
    rng = np.random.default_rng(0)
    num_particles, num_data = 45, 23
    log_w = rng.standard_t(df=3, size=(num_particles, num_data)) * 2 - 30
    trainer = MatrixTrainer(log_w)
    x = np.repeat(np.arange(num_data, dtype=float)[:, None], 3, axis=1)
    results = importance_sampled_metrics(trainer, {"x": x}, num_particles, block_size=10, particle_chunk=20)

    assert trainer.calls == [(10, 20), (10, 20), (10, 5)] * 2 + [(3, 20), (3, 20), (3, 5)]
    assert np.all(trainer.next_row == num_particles), "every weight used exactly once"
    log_likelihood = logsumexp(log_w, axis=0) - np.log(num_particles)
    _, khat = az.psislw(log_w.T.copy())
    assert results["num_test"] == num_data and results["k"] == num_particles
    assert results["test_elbo"] == pytest.approx(log_w.mean())
    assert results["test_log_likelihood"] == pytest.approx(log_likelihood.mean())
    assert results["test_nll"] == pytest.approx(-log_likelihood.mean())
    assert results["test_log_likelihood_stderr"] == pytest.approx(log_likelihood.std(ddof=1) / np.sqrt(num_data))
    assert results["psis_khat_mean"] == pytest.approx(np.mean(khat))
    assert results["psis_khat_fraction_above_0.7"] == pytest.approx(np.mean(khat > 0.7))


def test_psis_khat_sees_heavy_tails():
    """Pareto-distributed weights with tail index 1/k have shape k: the estimate
    must separate light from heavy tails."""
    rng = np.random.default_rng(1)
    light = np.log(rng.pareto(1 / 0.2, size=(2000, 5)) + 1)
    heavy = np.log(rng.pareto(1 / 1.2, size=(2000, 5)) + 1)
    assert np.all(psis_khat(light) < 0.5)
    assert np.all(psis_khat(heavy) > 0.7)


@pytest.mark.parametrize("num_particles", [1, 2, 20])
def test_too_few_particles_for_psis_give_no_khat(num_particles):
    log_w = np.random.default_rng(2).normal(size=(num_particles, 4))
    assert np.all(np.isnan(psis_khat(log_w)))
    results = importance_sampled_metrics(MatrixTrainer(log_w), {"x": np.arange(4.0)[:, None]}, num_particles)
    assert results["psis_khat_mean"] is None and results["psis_khat_fraction_above_0.7"] is None
    assert results["test_log_likelihood"] == pytest.approx(np.mean(logsumexp(log_w, axis=0) - np.log(num_particles)))


def test_exact_posterior_gives_the_marginal_likelihood_and_small_khat():
    lg = LinearGaussian.make(seed=1, num_data=12)
    results = importance_sampled_metrics(LinearGaussianTrainer(lg, "exact"), {"x": lg.x}, 500, block_size=5)
    exact = lg.log_marginal().mean()
    assert results["test_log_likelihood"] == pytest.approx(exact, abs=1e-9)
    assert results["test_elbo"] == pytest.approx(exact, abs=1e-9)
    assert results["psis_khat_mean"] < 0.5
    assert results["psis_khat_fraction_above_0.7"] == 0.0


def test_a_too_narrow_guide_is_flagged():
    """A guide with a third of the posterior's scale: L_K falls short of log p(x)
    and most datapoints get k-hat above 0.7 (heavy-tailed weights)."""
    lg = LinearGaussian.make(seed=1, num_data=12)
    results = importance_sampled_metrics(LinearGaussianTrainer(lg, "narrow"), {"x": lg.x}, 1000)
    assert results["test_elbo"] < results["test_log_likelihood"] < lg.log_marginal().mean()
    assert results["psis_khat_fraction_above_0.7"] >= 0.5


def test_bounds_on_a_trained_run(trained_run):
    """(iwae.4) on a trained VAE: L_1 is the ELBO, and L_K grows with K.

    The gaps of a 1-epoch model are a few tenths of a nat, so each L_K is averaged
    over repeats until its Monte-Carlo error is well below them.
    """
    trainer, *_ = restore(trained_run("vae", "pyro"))
    arrays = trainer.test_data()
    repeats = {1: 20, 10: 20, 100: 4}
    results = {k: [importance_sampled_metrics(trainer, arrays, k) for _ in range(r)] for k, r in repeats.items()}
    bound = {k: np.mean([r["test_log_likelihood"] for r in rs]) for k, rs in results.items()}
    elbo = np.mean([r["test_elbo"] for r in results[100]])

    for r in results[1]:
        assert r["test_log_likelihood"] == pytest.approx(r["test_elbo"])
    assert bound[1] == pytest.approx(elbo, abs=0.1)
    assert elbo + 0.2 < bound[10] < bound[100]
    # k-hat needs a Pareto tail of at least 5 weights: none for K = 1 or 10.
    assert results[1][0]["psis_khat_mean"] is None and results[10][0]["psis_khat_fraction_above_0.7"] is None
    assert np.isfinite(results[100][0]["psis_khat_mean"])


def test_evaluate_writes_eval_json(trained_run):
    import json

    from zoo.evaluate import evaluate

    run = trained_run("iwae", "pyro")
    results = evaluate(run, k=20, limit=10)
    assert json.loads((run / "eval.json").read_text()) == results
    assert results["variant"] == "iwae" and results["epochs_trained"] == 1 and results["num_test"] == 10


# --- proposals other than the guide ---------------------------------------------


class NumPyroLinearGaussianTrainer:
    """The NumPyro twin of :class:`LinearGaussianTrainer`, with the "narrow" guide
    (the posterior mean, a third of its scale), through a NumPyro trainer's interface."""

    backend = "numpyro"

    def __init__(self, lg: LinearGaussian):
        import jax

        self.lg, self.root_key, self.params = lg, jax.random.PRNGKey(0), {}
        self.variant = NumPyroLinearGaussian(lg)

    def log_weights(self, arrays: dict, num_particles: int):
        import jax

        self.root_key, key = jax.random.split(self.root_key)
        if not hasattr(self, "_compiled"):  # as the real trainer does: one jit-compiled function
            self._compiled = jax.jit(lambda p, k, n, x: self.variant.log_weights(p, k, n, x=x), static_argnums=2)
        return np.asarray(self._compiled(self.params, key, num_particles, arrays["x"]))


class NumPyroLinearGaussian:
    def __init__(self, lg: LinearGaussian):
        self.lg = lg

    def log_weights(self, params, key, num_particles, x):
        import jax.numpy as jnp
        import numpyro
        import numpyro.distributions as dist

        from zoo.numpyro_backend.objectives import log_importance_weights

        lg = self.lg
        W, b = jnp.asarray(lg.W), jnp.asarray(lg.b)
        S = jnp.linalg.inv(jnp.eye(lg.z_dim) + W.T @ W / lg.sigma**2)

        def model(x):
            with numpyro.plate("data", x.shape[0], dim=-1):
                z = numpyro.sample("z", dist.Normal(jnp.zeros((x.shape[0], lg.z_dim)), 1.0).to_event(1))
                numpyro.sample("x", dist.Normal(z @ W.T + b, lg.sigma).to_event(1), obs=x)

        def guide(x):
            mean = (x - b) @ W @ S / lg.sigma**2
            with numpyro.plate("data", x.shape[0], dim=-1):
                numpyro.sample("z", dist.Normal(mean, jnp.sqrt(jnp.diag(S)) / 3).to_event(1))

        return log_importance_weights(model, guide, params, key, num_particles, x=x)


@pytest.mark.parametrize("backend", ["pyro", "numpyro"])
def test_defensive_and_prior_proposals_recover_the_exact_marginal(backend):
    """With the too-narrow guide L_K misses log p(x) by a third of a nat and most
    k-hat exceed 0.7; the defensive mixture and the prior, proposals for the same
    model, land on the exact marginal with small k-hat (VARIANTS.md §11)."""
    lg = LinearGaussian.make(seed=1, num_data=12)
    exact = lg.log_marginal().mean()
    trainer = LinearGaussianTrainer(lg, "narrow") if backend == "pyro" else NumPyroLinearGaussianTrainer(lg)
    guide = importance_sampled_metrics(trainer, {"x": lg.x}, 1000, proposal="guide")
    defensive = importance_sampled_metrics(trainer, {"x": lg.x}, 1000, proposal="defensive")

    assert guide["test_log_likelihood"] < exact - 0.15 and guide["psis_khat_fraction_above_0.7"] > 0.5
    assert defensive["test_log_likelihood"] == pytest.approx(exact, abs=0.03)
    assert defensive["psis_khat_fraction_above_0.7"] == 0.0 and defensive["proposal"] == "defensive"
    if backend == "numpyro":  # each proposal is one more compilation; the prior's is the Pyro one's twin
        return
    prior = importance_sampled_metrics(trainer, {"x": lg.x}, 2000, proposal="prior")
    assert prior["test_log_likelihood"] == pytest.approx(exact, abs=0.06)


def test_defensive_density_is_the_three_component_mixture():
    from scipy.stats import norm

    from zoo.pyro_backend.objectives.proposal import proposal_distribution

    loc, scale, z = torch.tensor([0.5, -1.0]), torch.tensor([0.01, 2.0]), torch.tensor([0.2, 0.3])
    expected = np.log((norm.pdf(z, loc, scale) + norm.pdf(z, loc, 0.3) + norm.pdf(z, 0, 1)) / 3)
    np.testing.assert_allclose(proposal_distribution(loc, scale, "defensive").log_prob(z).numpy(), expected, rtol=1e-5)


def test_evaluate_table_flags_large_khat():
    from zoo.evaluate import format_table

    good = {"test_log_likelihood": -90.0, "psis_khat_mean": 0.4, "psis_khat_fraction_above_0.7": 0.1}
    bad = {"test_log_likelihood": -90.0, "psis_khat_mean": 1.4, "psis_khat_fraction_above_0.7": 0.9, "proposal": "guide"}
    assert "k-hat mean 0.40, 10% > 0.7" in format_table(good) and "WARNING" not in format_table(good)
    assert "WARNING: most k-hat exceed 0.7" in format_table(bad) and "--proposal defensive" in format_table(bad)


def test_evaluate_cli_with_a_defensive_proposal(trained_run, capsys):
    import json

    from zoo.cli import main

    run = trained_run("vae", "pyro")
    assert main(["evaluate", str(run), "--k", "30", "--limit", "10", "--proposal", "defensive"]) == 0
    assert "k-hat mean" in capsys.readouterr().out
    assert json.loads((run / "eval.json").read_text())["proposal"] == "defensive"
    assert main(["evaluate", str(run), "--proposal", "bogus"]) == 2


def test_latent_knn_accuracy_separates_informative_from_useless_codes():
    from zoo.data import load_dataset
    from zoo.evaluate import latent_knn_accuracy

    digits = load_dataset("digits", binarize="none")
    assert latent_knn_accuracy(lambda x: x, digits, num_labels=1000) > 0.9  # raw pixels: well separated
    assert latent_knn_accuracy(lambda x: np.zeros((len(x), 2)), digits, num_labels=1000) < 0.2  # no information
