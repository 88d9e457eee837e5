"""The truncated tree prior of NpVAE for the NumPyro backend, the twin of
:mod:`guides.torch_tree`. The variational parameters are ``numpyro.param`` sites
(``tree_alpha_loc_<level>``, ``tree_alpha_scale_<level>``, ``tree_stick_a``,
``tree_stick_b``), unconstrained and mapped through the same softplus as in torch.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from guides.flax_nets import positive_scale
from guides.flax_stick import stick_breaking_weights
from guides.tree import TreeShape


def leaf_probabilities(v, tree: TreeShape):
    """``pi(l)``, the product of stick-breaking weights along each leaf's path."""
    probabilities = jnp.ones((*v.shape[:-1], 1))
    for level, where in enumerate(tree.stick_slices()):
        fractions = v[..., where].reshape(*v.shape[:-1], tree.level_size(level), tree.branching - 1)
        children = stick_breaking_weights(fractions)
        probabilities = (probabilities[..., :, None] * children).reshape(*v.shape[:-1], -1)
    return probabilities


def initial_locations(rng_key, tree: TreeShape, z_dim: int, sigma_b: float) -> list:
    """A draw of the tree prior for the node locations: the leaves start apart."""
    locs, parent = [], jnp.zeros((1, z_dim))
    for level, key in zip(tree.levels, jax.random.split(rng_key, len(tree.levels))):
        loc = parent[tree.parents(level)] + sigma_b * jax.random.normal(key, (tree.level_size(level), z_dim))
        locs.append(loc)
        parent = loc
    return locs


class TreeGuide:
    """The tree's variational parameters as ``numpyro.param`` sites; see the torch twin."""

    def __init__(self, tree: TreeShape, z_dim: int, sigma_b: float):
        self.tree, self.z_dim, self.sigma_b = tree, z_dim, sigma_b

    def alpha(self, level: int):
        """``(m, s)`` of the node means of ``level`` (registering the params)."""
        shape = (self.tree.level_size(level), self.z_dim)
        loc = numpyro.param(
            f"tree_alpha_loc_{level}",
            lambda key: initial_locations(key, self.tree, self.z_dim, self.sigma_b)[level],
        )
        raw_scale = numpyro.param(f"tree_alpha_scale_{level}", jnp.full(shape, math.log(math.expm1(0.1))))
        return loc, positive_scale(raw_scale)

    def sticks(self):
        size = (self.tree.num_sticks,)
        a = numpyro.param("tree_stick_a", jnp.full(size, math.log(math.expm1(1.0))))
        b = numpyro.param("tree_stick_b", jnp.log(jnp.expm1(jnp.asarray(self.tree.uniform_stick_b(), jnp.float32))))
        return dist.Kumaraswamy(jax.nn.softplus(a), jax.nn.softplus(b))

    def point_estimate(self, params):
        """Leaf means and leaf probabilities at the guide's means, from trained ``params``."""
        a, b = jax.nn.softplus(params["tree_stick_a"]), jax.nn.softplus(params["tree_stick_b"])
        return params[f"tree_alpha_loc_{self.tree.depth}"], leaf_probabilities(dist.Kumaraswamy(a, b).mean, self.tree)
