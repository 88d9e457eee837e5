"""The truncated tree prior of NpVAE for the Pyro backend (see :mod:`guides.tree`).

- :func:`leaf_probabilities`: stick fractions -> the probability of every leaf
  (a path's product of stick-breaking weights);
- :class:`TreeGuide`: the variational parameters of the tree's globals, mean-field
  ``q(alpha_v) = N(m_v, s_v^2 I)`` per node and ``q(V_e) = Kumaraswamy(a_e, b_e)``
  per free stick fraction.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from guides.torch_nets import positive_scale
from guides.torch_stick import Kumaraswamy, stick_breaking_weights
from guides.tree import TreeShape


def inverse_softplus(value: float) -> float:
    return math.log(math.expm1(value))


def leaf_probabilities(v: torch.Tensor, tree: TreeShape) -> torch.Tensor:
    """``pi(l) = prod_{e in path(l)} V_e prod_{e' earlier sibling of e} (1 - V_e')``.

    ``v`` has the tree's free fractions in its last dim; the result has one
    probability per leaf, summing to one.
    """
    probabilities = v.new_ones(*v.shape[:-1], 1)
    for level, where in enumerate(tree.stick_slices()):
        fractions = v[..., where].reshape(*v.shape[:-1], tree.level_size(level), tree.branching - 1)
        children = stick_breaking_weights(fractions)  # (..., nodes of this level, branching)
        probabilities = (probabilities[..., :, None] * children).flatten(-2)
    return probabilities


class TreeGuide(nn.Module):
    """Variational parameters of the tree: node means and stick fractions.

    Node locations start at a draw of the prior (``alpha_root ~ N(0, sigma_B^2)``,
    each child around its parent), so the leaves start apart; their scales start at
    0.1. The fractions start at ``Kumaraswamy(1, b)`` with the ``b`` that gives every
    child of a node the same expected weight (:meth:`TreeShape.uniform_stick_b`):
    started at the ``Beta(1, gamma)`` prior instead, three quarters of the mass sit
    on one leaf and the encoder sends every code there.
    """

    def __init__(self, tree: TreeShape, z_dim: int, sigma_b: float):
        super().__init__()
        self.tree = tree
        locs, parent = [], torch.zeros(1, z_dim)
        for level in tree.levels:
            loc = parent[torch.as_tensor(tree.parents(level))] + sigma_b * torch.randn(tree.level_size(level), z_dim)
            locs.append(nn.Parameter(loc))
            parent = loc
        self.alpha_loc = nn.ParameterList(locs)
        self.alpha_scale = nn.ParameterList(
            [nn.Parameter(torch.full((tree.level_size(level), z_dim), inverse_softplus(0.1))) for level in tree.levels]
        )
        self.stick_a = nn.Parameter(torch.full((tree.num_sticks,), inverse_softplus(1.0)))
        b = torch.as_tensor(tree.uniform_stick_b(), dtype=torch.float32)
        self.stick_b = nn.Parameter(torch.log(torch.expm1(b)))

    def alpha(self, level: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(m, s)`` of the node means of ``level``."""
        return self.alpha_loc[level], positive_scale(self.alpha_scale[level])

    def sticks(self) -> Kumaraswamy:
        return Kumaraswamy(F.softplus(self.stick_a), F.softplus(self.stick_b))

    @torch.no_grad()
    def point_estimate(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The leaf means and leaf probabilities at the guide's means (for evaluation)."""
        return self.alpha_loc[-1].detach(), leaf_probabilities(self.sticks().mean, self.tree).detach()
