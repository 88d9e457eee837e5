"""The tree-structured nonparametric VAE (zoo/npvae).

- The leaf probabilities of the truncated tree (npvae.2) are the products of
  stick-breaking weights along each path, and sum to one.
- The enumerated training loss (npvae.5) of each backend equals the hand sum over
  leaves at pinned globals and codes, computed with scipy, and the backends agree
  with copied weights.
- The importance weights for evaluation (npvae.6) sum the leaf out: with one leaf
  of probability one they are the Gaussian VAE's weights around that mean.
- The leaf-majority accuracy is 1 on well-separated clusters, the growth hook
  splits the widest sibling of a dead leaf, and the tree is drawn as DOT.
- The CLI trains, evaluates and resumes.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from conftest import tiny_args, tiny_config
from numpyro.infer import TraceEnum_ELBO as NumPyroTraceEnum
from pyro import poutine
from scipy import stats
from scipy.special import logsumexp

from guides.flax_nets import params_from_torch
from guides.flax_tree import leaf_probabilities as jax_leaf_probabilities
from guides.torch_tree import leaf_probabilities
from guides.tree import TreeShape, coordinate_ascent_leaf_means, grow, hierarchical_kmeans, leaf_majority_accuracy, tree_dot
from zoo import registry
from zoo.cli import main
from zoo.data import load_dataset


def test_leaf_probabilities_are_path_products_and_sum_to_one():
    tree = TreeShape(branching=2, depth=2)  # root -> 2 -> 4 leaves, 3 free fractions
    assert (tree.num_nodes, tree.num_leaves, tree.num_sticks) == (7, 4, 3)
    v = torch.tensor([0.3, 0.6, 0.2], dtype=torch.float64)  # root, then its two children
    expected = [0.3 * 0.6, 0.3 * 0.4, 0.7 * 0.2, 0.7 * 0.8]
    np.testing.assert_allclose(leaf_probabilities(v, tree).numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(jax_leaf_probabilities(jnp.asarray(v.numpy()), tree)), expected, rtol=1e-6)
    big = TreeShape(branching=4, depth=2)
    draws = torch.distributions.Beta(1.0, 10.0).sample((1000, big.num_sticks)).double()
    np.testing.assert_allclose(leaf_probabilities(draws, big).sum(-1).numpy(), 1.0, atol=1e-12)


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return load_dataset("digits", binarize="dynamic", limit_test=10).x_test


def pinned_values(variant, x):
    """A draw of every guide site (globals and codes) as a Pyro trace and as arrays."""
    with torch.no_grad():
        trace = poutine.trace(variant.guide).get_trace(x=torch.as_tensor(x))
    names = [f"alpha_{level}" for level in variant.tree.levels] + ["V", "z"]
    values = {name: trace.nodes[name]["value"].detach() for name in names}
    replay = poutine.Trace()
    for name, value in values.items():
        replay.add_node(name, name=name, type="sample", value=value, is_observed=False, infer={})
    return replay, {name: value.numpy().astype(np.float64) for name, value in values.items()}


def loss_by_hand(variant, x, values, scale) -> float:
    """(npvae.5) at the pinned draw: data terms with the leaf summed over by hand."""
    config, tree = variant.config, variant.tree
    guide = variant.tree_guide
    with torch.no_grad():
        loc, sd = (t.numpy().astype(np.float64) for t in variant.encoder(torch.as_tensor(x)))
        logits = variant.decoder(torch.as_tensor(values["z"], dtype=torch.float32)).numpy().astype(np.float64)
        pi = leaf_probabilities(torch.as_tensor(values["V"]), tree).numpy()
        q_alpha = [tuple(t.numpy().astype(np.float64) for t in guide.alpha(level)) for level in tree.levels]
        a, b = (t.numpy().astype(np.float64) for t in (guide.sticks().concentration1, guide.sticks().concentration0))
    z, leaves = values["z"], values[f"alpha_{tree.depth}"]
    log_px = np.sum(x * logits - np.logaddexp(0.0, logits), axis=-1)
    log_pz_given_leaf = stats.norm.logpdf(z[:, None, :], leaves[None], config.sigma_z).sum(-1)  # (B, leaves)
    log_pz = logsumexp(np.log(pi)[None] + log_pz_given_leaf, axis=-1)
    log_qz = stats.norm.logpdf(z, loc, sd).sum(-1)
    data = np.sum(log_px + log_pz - log_qz)
    log_globals, parent = 0.0, np.zeros((1, config.z_dim))
    for level in tree.levels:
        alpha = values[f"alpha_{level}"]
        log_globals += stats.norm.logpdf(alpha, parent[tree.parents(level)], config.sigma_b).sum()
        log_globals -= stats.norm.logpdf(alpha, *q_alpha[level]).sum()
        parent = alpha
    v = values["V"]
    log_globals += stats.beta.logpdf(v, 1.0, config.gamma).sum()
    log_globals -= np.sum(np.log(a) + np.log(b) + (a - 1) * np.log(v) + (b - 1) * np.log1p(-(v**a)))
    return -(data + scale * log_globals)


def test_enumerated_loss_is_the_hand_sum_over_leaves_in_both_backends(x):
    config = tiny_config("npvae", z_dim=3, branching=3, depth=2, sigma_z=0.8)
    torch.manual_seed(2)
    pyro_vae = registry.variant_class("npvae", "pyro")(config, x.shape[1])
    numpyro_vae = registry.variant_class("npvae", "numpyro")(config, x.shape[1])
    pyro_vae.num_train = numpyro_vae.num_train = 40  # globals weighted 10/40
    replay, values = pinned_values(pyro_vae, x)
    expected = loss_by_hand(pyro_vae, x, values, scale=len(x) / 40)

    elbo = pyro_vae.objective()
    pyro_loss = elbo.differentiable_loss(pyro_vae.model, poutine.replay(pyro_vae.guide, trace=replay), x=torch.as_tensor(x))
    assert pyro_loss.item() == pytest.approx(expected, rel=1e-5)

    guide = pyro_vae.tree_guide
    params = {"encoder$params": params_from_torch(pyro_vae.encoder), "decoder$params": params_from_torch(pyro_vae.decoder),
              "tree_stick_a": jnp.asarray(guide.stick_a.detach().numpy()),
              "tree_stick_b": jnp.asarray(guide.stick_b.detach().numpy())}
    for level in pyro_vae.tree.levels:
        params[f"tree_alpha_loc_{level}"] = jnp.asarray(guide.alpha_loc[level].detach().numpy())
        params[f"tree_alpha_scale_{level}"] = jnp.asarray(guide.alpha_scale[level].detach().numpy())
    params.update({name: jnp.asarray(value, jnp.float32) for name, value in values.items()})
    numpyro_loss = jax.jit(
        lambda p: NumPyroTraceEnum(max_plate_nesting=1).loss(jax.random.PRNGKey(0), p, numpyro_vae.model,
                                                              numpyro_vae.guide, x=jnp.asarray(x))
    )(params)
    assert float(numpyro_loss) == pytest.approx(expected, rel=1e-5)
    # Not the loss of the single most probable leaf: the sum over leaves matters here.
    pyro_vae.config.sigma_z = 0.4
    moved = elbo.differentiable_loss(pyro_vae.model, poutine.replay(pyro_vae.guide, trace=replay), x=torch.as_tensor(x))
    assert abs(moved.item() - expected) > 1.0


def test_importance_weights_sum_the_leaf_out(x):
    """With every leaf at one mean, whatever the leaf probabilities, log w is the
    Gaussian VAE's weight around that mean: the mixture of (npvae.6) sums to it."""
    config = tiny_config("npvae", branching=3, depth=1)
    vae = registry.variant_class("npvae", "pyro")(config, x.shape[1])
    with torch.no_grad():
        vae.tree_guide.alpha_loc[-1].copy_(torch.tensor([0.3, -0.2, 0.5, 0.1]).expand(3, 4))
        vae.tree_guide.stick_a.copy_(torch.tensor([0.4, 2.0]))  # unequal leaf probabilities
    torch.manual_seed(0)
    log_w = vae.log_weights(4, x=torch.as_tensor(x))
    torch.manual_seed(0)
    with torch.no_grad():
        loc, scale = vae.encoder(torch.as_tensor(x))
        z = torch.distributions.Normal(loc, scale).sample((4,))
        logits = vae.decoder(z)
    z, loc, scale, logits = (t.numpy().astype(np.float64) for t in (z, loc, scale, logits))
    mean = vae.tree_guide.alpha_loc[-1][0].detach().numpy()
    expected = (np.sum(x * logits - np.logaddexp(0.0, logits), -1) + stats.norm.logpdf(z, mean, config.sigma_z).sum(-1)
                - stats.norm.logpdf(z, loc, scale).sum(-1))
    np.testing.assert_allclose(log_w.numpy(), expected, rtol=1e-4, atol=1e-3)


def test_leaf_majority_accuracy_is_one_on_separated_clusters_and_the_tree_is_drawn():
    rng = np.random.default_rng(0)
    tree = TreeShape(branching=2, depth=2)
    means = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], np.float64)
    labels = np.array([3, 1, 1, 0])  # two leaves share a class
    train_leaf, test_leaf = rng.integers(0, 4, 200), rng.integers(0, 4, 100)
    train, test = means[train_leaf] + rng.normal(size=(200, 2)), means[test_leaf] + rng.normal(size=(100, 2))
    accuracy, majority = leaf_majority_accuracy(train, labels[train_leaf], test, labels[test_leaf], means)
    assert accuracy == 1.0 and list(majority) == [3, 1, 1, 0]
    shuffled, _ = leaf_majority_accuracy(train, rng.permutation(labels[train_leaf]), test, labels[test_leaf], means)
    assert shuffled < 0.7
    dot = tree_dot(tree, np.full(4, 0.25), np.bincount(train_leaf), majority)
    assert dot.startswith("digraph") and dot.count("->") == tree.num_nodes - 1
    assert '"r" -> "r.1"' in dot and '"r.1" -> "r.1.0"' in dot and "pi=0.500" in dot


def test_growth_reuses_a_dead_leaf_to_split_its_widest_sibling():
    rng = np.random.default_rng(1)
    tree = TreeShape(branching=2, depth=1)
    blobs = np.concatenate([rng.normal(-5, 0.3, (50, 2)), rng.normal(5, 0.3, (50, 2))])
    means, restarted = grow(tree, np.array([[0.0, 0.0], [40.0, 40.0]]), np.array([0.9999, 1e-5]), blobs, 1e-3)
    assert restarted == [0]
    np.testing.assert_allclose(np.sort(means[:, 0]), [-5, 5], atol=0.2)
    untouched, none = grow(tree, np.array([[-5.0, -5.0], [5.0, 5.0]]), np.array([0.5, 0.5]), blobs, 1e-3)
    assert none == [] and np.array_equal(untouched, [[-5.0, -5.0], [5.0, 5.0]])


@pytest.mark.parametrize("backend", ["pyro", pytest.param("numpyro", marks=pytest.mark.slow)])
def test_cli_trains_evaluates_and_resumes(backend, tmp_path):
    out = tmp_path / "run"
    assert main(tiny_args("npvae", backend, out, 1, "--set", "grow_every=1", "--set", "leaf_updates=true",
                     "--set", "kmeans_init_epochs=1")) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert np.isfinite(metrics["train_loss"]) and 1 <= metrics["leaves_used"] <= 16
    assert sum(metrics["leaf_probabilities"]) == pytest.approx(1.0, abs=1e-3)
    assert metrics["tree_dot"].count("->") == 20
    assert main(tiny_args("npvae", backend, out, 2, "--resume", "--set", "grow_every=1", "--set", "leaf_updates=true",
                          "--set", "kmeans_init_epochs=1")) == 0
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 2
    assert main(["evaluate", str(out), "--k", "30", "--limit", "20"]) == 0
    evaluation = json.loads((out / "eval.json").read_text())
    assert 20 < evaluation["test_nll"] < 100 and 0 <= evaluation["leaf_accuracy"] <= 1


def test_top_down_kmeans_puts_the_leaves_on_separated_blobs():
    rng = np.random.default_rng(3)
    tree = TreeShape(branching=2, depth=2)
    centres = np.array([[-10, -10], [-10, -6], [10, 6], [10, 10]], np.float64)  # two pairs of two
    codes = np.concatenate([c + 0.1 * rng.normal(size=(30, 2)) for c in centres])
    root, level_1, leaves = hierarchical_kmeans(tree, codes)
    np.testing.assert_allclose(root[0], codes.mean(0))
    np.testing.assert_allclose(np.sort(level_1[:, 1]), [-8, 8], atol=0.1)
    for child in (0, 1):  # each level-1 node's leaves are its own pair of blobs
        pair = leaves[2 * child: 2 * child + 2]
        assert np.sign(pair[0, 0]) == np.sign(pair[1, 0]) == np.sign(level_1[child, 0])
    np.testing.assert_allclose(np.sort(leaves[:, 1]), [-10, -6, 6, 10], atol=0.1)


def test_leaf_update_is_the_gaussian_posterior_mean_given_hard_assignments():
    """Far-apart leaves take all of their codes (phi is 0 or 1), so the update is
    (sum z / sigma_Z^2 + m_pa / sigma_B^2) / (n / sigma_Z^2 + 1 / sigma_B^2)."""
    rng = np.random.default_rng(4)
    codes = np.concatenate([rng.normal(-20, 1, (5, 3)), rng.normal(20, 1, (7, 3))])
    parents = np.zeros((2, 3))
    means = coordinate_ascent_leaf_means(codes, np.array([[-19.0] * 3, [19.0] * 3]), parents, np.array([0.5, 0.5]), 0.5, 2.0)
    for leaf, rows in ((0, slice(0, 5)), (1, slice(5, 12))):
        n = rows.stop - rows.start
        expected = (codes[rows].sum(0) / 0.25) / (n / 0.25 + 1 / 4.0)
        np.testing.assert_allclose(means[leaf], expected, rtol=1e-10)
