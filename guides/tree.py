"""A complete, truncated tree for tree-structured priors (NpVAE), backend-free.

Nodes are numbered level by level: level ``l`` has ``branching**l`` nodes and the
parent of node ``j`` of level ``l`` is node ``j // branching`` of level ``l - 1``.
Each internal node breaks its stick over its children with ``branching - 1``
fractions (the last child takes the rest, so the leaf probabilities sum to one);
the fractions of all internal nodes are stored level by level, node by node.

Also here, because they only need numpy: the leaf-majority (cluster) accuracy of
Goyal et al.'s evaluation and a Graphviz drawing of a learned tree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TreeShape:
    """``branching`` children per internal node, ``depth`` levels below the root."""

    branching: int
    depth: int

    def level_size(self, level: int) -> int:
        return self.branching**level

    @property
    def levels(self) -> range:
        return range(self.depth + 1)

    @property
    def num_leaves(self) -> int:
        return self.level_size(self.depth)

    @property
    def num_nodes(self) -> int:
        return sum(self.level_size(level) for level in self.levels)

    @property
    def num_sticks(self) -> int:
        """Free stick fractions: ``branching - 1`` per internal node."""
        return (self.branching - 1) * sum(self.level_size(level) for level in range(self.depth))

    def parents(self, level: int) -> np.ndarray:
        """Index (in level ``level - 1``) of the parent of every node of ``level``."""
        return np.arange(self.level_size(level)) // self.branching

    def stick_slices(self) -> list[slice]:
        """Where the fractions of each internal level sit in the stick vector."""
        slices, start = [], 0
        for level in range(self.depth):
            stop = start + self.level_size(level) * (self.branching - 1)
            slices.append(slice(start, stop))
            start = stop
        return slices

    def uniform_stick_b(self) -> np.ndarray:
        """``b`` of ``Kumaraswamy(1, b)`` per fraction giving every child of a node the same
        expected weight: the k-th of B children (from 0) takes ``1 / (B - k)`` of what is
        left, the mean of ``Kumaraswamy(1, B - 1 - k)``."""
        per_node = self.branching - 1 - np.arange(self.branching - 1, dtype=np.float64)
        return np.tile(per_node, self.num_sticks // (self.branching - 1))

    def node_name(self, level: int, index: int) -> str:
        """``r`` for the root, then the path of child indices: ``r.2.0``."""
        path, digits = [], index
        for _ in range(level):
            path.append(str(digits % self.branching))
            digits //= self.branching
        return ".".join(["r", *reversed(path)])


def nearest_leaf(codes: np.ndarray, leaf_means: np.ndarray) -> np.ndarray:
    """The leaf whose mean is closest to each code (the paper's test-time assignment)."""
    distances = ((codes[:, None, :] - leaf_means[None, :, :]) ** 2).sum(-1)
    return distances.argmin(-1)


def leaf_majority_labels(leaves: np.ndarray, labels: np.ndarray, num_leaves: int) -> np.ndarray:
    """The majority training label of each leaf; an empty leaf gets the overall majority."""
    overall = np.bincount(labels).argmax()
    majority = np.full(num_leaves, overall)
    for leaf in range(num_leaves):
        members = labels[leaves == leaf]
        if len(members):
            majority[leaf] = np.bincount(members).argmax()
    return majority


def leaf_majority_accuracy(train_codes, train_labels, test_codes, test_labels, leaf_means) -> tuple[float, np.ndarray]:
    """Goyal et al.'s cluster accuracy: label each leaf by the majority class of the
    training codes nearest to it, then classify test codes by their nearest leaf.
    Returns the accuracy and the leaf labels."""
    train_labels, test_labels = np.asarray(train_labels), np.asarray(test_labels)
    majority = leaf_majority_labels(nearest_leaf(train_codes, leaf_means), train_labels, len(leaf_means))
    predicted = majority[nearest_leaf(test_codes, leaf_means)]
    return float(np.mean(predicted == test_labels)), majority


def tree_dot(tree: TreeShape, leaf_probabilities: np.ndarray, leaf_counts: np.ndarray, leaf_labels: np.ndarray) -> str:
    """The tree as Graphviz DOT text: internal nodes with their probability mass,
    leaves with mass, training points and majority label."""
    lines = ["digraph tree {", "  node [shape=box, fontsize=10];"]
    mass = np.asarray(leaf_probabilities, np.float64)
    for level in reversed(tree.levels):
        for index in range(tree.level_size(level)):
            name = tree.node_name(level, index)
            if level == tree.depth:
                label = f"{name}\\npi={mass[index]:.3f}\\nn={int(leaf_counts[index])}, y={int(leaf_labels[index])}"
            else:
                label = f"{name}\\npi={mass[index]:.3f}"
            lines.append(f'  "{name}" [label="{label}"];')
            if level > 0:
                parent = tree.node_name(level - 1, index // tree.branching)
                lines.append(f'  "{parent}" -> "{name}";')
        if level > 0:
            mass = mass.reshape(-1, tree.branching).sum(-1)
    lines.append("}")
    return "\n".join(lines)


def hierarchical_kmeans(tree: TreeShape, codes: np.ndarray, seed: int = 0) -> list[np.ndarray]:
    """Node means from the codes, top-down: the root at their mean, then every node's
    members split by k-means into ``branching`` children. A node with fewer members
    than children keeps its children at its own mean (plus a tiny offset so they
    differ). Returns one (nodes, d) array per level."""
    from sklearn.cluster import KMeans

    codes = np.asarray(codes, np.float64)
    rng = np.random.default_rng(seed)
    means = [codes.mean(0, keepdims=True)]
    members = [np.arange(len(codes))]
    for level in range(1, tree.depth + 1):
        level_means, level_members = [], []
        for parent, rows in enumerate(members):
            if len(rows) >= tree.branching:
                fit = KMeans(n_clusters=tree.branching, n_init=3, random_state=seed).fit(codes[rows])
                level_means.append(fit.cluster_centers_)
                level_members.extend(rows[fit.labels_ == child] for child in range(tree.branching))
            else:
                jitter = 1e-3 * rng.normal(size=(tree.branching, codes.shape[1]))
                level_means.append(means[-1][parent] + jitter)
                level_members.extend([rows] + [rows[:0]] * (tree.branching - 1))
        means.append(np.concatenate(level_means))
        members = level_members
    return means


def coordinate_ascent_leaf_means(codes, leaf_means, parent_means, leaf_probabilities, sigma_z: float,
                                 sigma_b: float) -> np.ndarray:
    """The paper's closed-form update of the leaf means given the codes (one CAVI round).

    Responsibilities ``phi_nl ∝ pi_l N(z_n; m_l, sigma_Z^2 I)`` at the current means,
    then each leaf's Gaussian posterior mean given its parent's:
    ``m_l = (sum_n phi_nl z_n / sigma_Z^2 + m_pa / sigma_B^2) / (sum_n phi_nl / sigma_Z^2 + 1 / sigma_B^2)``.
    ``parent_means`` holds each leaf's parent mean, one row per leaf.
    """
    codes = np.asarray(codes, np.float64)
    log_phi = np.log(np.maximum(leaf_probabilities, 1e-30))[None] - (
        ((codes[:, None, :] - leaf_means[None]) ** 2).sum(-1) / (2 * sigma_z**2))
    phi = np.exp(log_phi - log_phi.max(-1, keepdims=True))
    phi /= phi.sum(-1, keepdims=True)
    weight = phi.sum(0)[:, None] / sigma_z**2 + 1 / sigma_b**2
    return (phi.T @ codes / sigma_z**2 + parent_means / sigma_b**2) / weight


def grow(tree: TreeShape, leaf_means: np.ndarray, leaf_mass: np.ndarray, codes: np.ndarray,
         prune_mass: float, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """One round of the paper's split and merge, inside the fixed truncation.

    Goyal et al. drop leaves whose mean assignment falls below 1e-3 and split a leaf
    whose codes spread too far into new children. With the tree's size fixed, a
    dead leaf (mass below ``prune_mass``) is instead re-used: the live sibling
    whose assigned codes spread most (mean squared distance to its mean) is split
    by 2-means, its mean moving to one centre and the dead leaf's to the other.
    Returns the new leaf means and the parents whose sticks should restart from
    the prior (so the re-used leaf gets mass again).
    """
    from sklearn.cluster import KMeans

    means = np.array(leaf_means, np.float64, copy=True)
    assigned = nearest_leaf(codes, means)
    spread = np.array([((codes[assigned == l] - means[l]) ** 2).sum(-1).mean() if np.any(assigned == l) else -1.0
                       for l in range(tree.num_leaves)])
    restarted = []
    for dead in np.flatnonzero(np.asarray(leaf_mass) < prune_mass):
        parent = dead // tree.branching
        siblings = [s for s in range(parent * tree.branching, (parent + 1) * tree.branching)
                    if s != dead and leaf_mass[s] >= prune_mass and np.sum(assigned == s) >= 2]
        if not siblings:
            continue
        widest = max(siblings, key=lambda s: spread[s])
        centres = KMeans(n_clusters=2, n_init=3, random_state=seed).fit(codes[assigned == widest]).cluster_centers_
        means[widest], means[dead] = centres[0], centres[1]
        spread[widest] = spread[dead] = -1.0  # split once per round
        restarted.append(int(parent))
    return means, sorted(set(restarted))


def tree_metrics(tree, train_codes, train_labels, test_codes, test_labels, leaf_means, pi) -> dict:
    """Leaf-majority accuracy (the paper's metric), the same with k-means on the same
    codes as a reference, how many leaves hold training codes, and the tree in DOT."""
    from sklearn.cluster import KMeans

    accuracy, leaf_labels = leaf_majority_accuracy(train_codes, train_labels, test_codes, test_labels, leaf_means)
    centres = KMeans(n_clusters=tree.num_leaves, n_init=3, random_state=0).fit(train_codes).cluster_centers_
    kmeans_accuracy, _ = leaf_majority_accuracy(train_codes, train_labels, test_codes, test_labels, centres)
    counts = np.bincount(nearest_leaf(train_codes, leaf_means), minlength=tree.num_leaves)
    return {
        "leaf_accuracy": accuracy,
        "kmeans_accuracy_same_codes": kmeans_accuracy,
        "leaves_used": int(np.sum(counts > 0)),
        "leaf_probabilities": [round(float(p), 4) for p in pi],
        "tree_dot": tree_dot(tree, pi, counts, leaf_labels),
    }
