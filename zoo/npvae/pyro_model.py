"""NpVAE in Pyro: the truncated tree prior (npvae.1–npvae.3), guide (npvae.4),
objective (npvae.5) with the leaf enumerated.

Goyal, Hu, Liang, Wang & Xing, Nonparametric Variational Auto-encoders for
Hierarchical Representation Learning, ICCV 2017. Node means form a Gaussian random
walk down a fixed, truncated tree, stick-breaking fractions give each leaf (path) a
probability, and a code z sits around the mean of its leaf c. The leaf is a
discrete latent of the **model**, summed out exactly by ``TraceEnum_ELBO``
(parallel enumeration, as Pyro's Gaussian-mixture example does); the globals have
mean-field guides (:class:`guides.torch_tree.TreeGuide`) and the codes the usual
amortized Gaussian.

The paper fits the tree by closed-form coordinate ascent between SGD epochs and
grows it by split/merge; here everything is one SVI objective on a fixed tree, with
the growth as an optional end-of-epoch hook (``grow_every``).
"""

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import TraceEnum_ELBO

from guides.torch_nets import GaussianEncoder
from guides.torch_tree import TreeGuide, inverse_softplus, leaf_probabilities
from guides.tree import coordinate_ascent_leaf_means, grow, hierarchical_kmeans, tree_metrics
from zoo.pyro_backend.variant import PyroVariant, make_decoder, observation


class Variant(PyroVariant):
    def __init__(self, config, x_dim, num_classes=10):
        super().__init__(config, x_dim, num_classes)
        self.tree = config.tree
        self.encoder = GaussianEncoder(x_dim, config.hidden, config.z_dim, config.activation)
        self.decoder = make_decoder(config, config.z_dim, x_dim)
        self.tree_guide = TreeGuide(self.tree, config.z_dim, config.sigma_b)
        self.num_train = None  # set by training_data: the globals' weight is B / N

    def global_scale(self, batch_size: int) -> float:
        """``B / N``: a minibatch loss sums B rows, so the globals' KL counts B/N times."""
        return batch_size / self.num_train if self.num_train else 1.0

    def model(self, x, **batch):
        pyro.module("decoder", self.decoder)
        d, size = self.config.z_dim, x.shape[0]
        with poutine.scale(scale=self.global_scale(size)):
            parent = x.new_zeros(1, d)
            for level in self.tree.levels:  # (npvae.1)
                parent = pyro.sample(
                    f"alpha_{level}",
                    dist.Normal(parent[torch.as_tensor(self.tree.parents(level))], self.config.sigma_b).to_event(2),
                )
            ones = x.new_ones(self.tree.num_sticks)
            v = pyro.sample("V", dist.Beta(ones, ones * self.config.gamma).to_event(1))  # (npvae.2)
        leaf_means, pi = parent, leaf_probabilities(v, self.tree)
        with pyro.plate("data", size, dim=-1):  # (npvae.3)
            c = pyro.sample("c", dist.Categorical(probs=pi), infer={"enumerate": "parallel"})
            z = pyro.sample("z", dist.Normal(leaf_means[c], self.config.sigma_z).to_event(1))
            pyro.sample("x", observation(self.decoder(z), self.config.likelihood), obs=x)

    def guide(self, x, **batch):
        pyro.module("tree", self.tree_guide)
        pyro.module("encoder", self.encoder)
        with poutine.scale(scale=self.global_scale(x.shape[0])):  # (npvae.4)
            for level in self.tree.levels:
                loc, scale = self.tree_guide.alpha(level)
                pyro.sample(f"alpha_{level}", dist.Normal(loc, scale).to_event(2))
            pyro.sample("V", self.tree_guide.sticks().to_event(1))
        with pyro.plate("data", x.shape[0], dim=-1):
            loc, scale = self.encoder(x)
            pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    def objective(self):
        return TraceEnum_ELBO(max_plate_nesting=1)

    def training_data(self, dataset) -> dict:
        self.num_train = len(dataset.x_train)
        return super().training_data(dataset)

    # --- evaluation -------------------------------------------------------------
    def prior_of_codes(self) -> dist.Distribution:
        """``p(z) = sum_l pi_l N(z; alpha_l, sigma_Z^2 I)`` at the guide's means of the globals."""
        leaf_means, pi = self.tree_guide.point_estimate()
        return dist.MixtureSameFamily(dist.Categorical(probs=pi), dist.Normal(leaf_means, self.config.sigma_z).to_event(1))

    @torch.no_grad()
    def log_weights(self, num_particles: int, x, **batch) -> torch.Tensor:
        """(k, B) ``log p(x|z) + log sum_l pi_l N(z; alpha_l) - log q(z|x)``: the leaf summed
        out exactly, the globals at their guide means (npvae.6)."""
        loc, scale = self.encoder(x)
        q = dist.Normal(loc, scale).to_event(1)
        z = q.sample((num_particles,))
        log_px = observation(self.decoder(z), self.config.likelihood).log_prob(x)
        return log_px + self.prior_of_codes().log_prob(z) - q.log_prob(z)

    @torch.no_grad()
    def sample(self, num_samples: int, device) -> torch.Tensor:
        return self.decode(self.prior_of_codes().sample((num_samples,)))

    @torch.no_grad()
    def codes(self, images) -> np.ndarray:
        return self.encoder(torch.as_tensor(images, device=self.tree_guide.stick_a.device))[0].cpu().numpy()

    def extra_metrics(self, dataset, device) -> dict:
        leaf_means, pi = (t.cpu().numpy() for t in self.tree_guide.point_estimate())
        return tree_metrics(self.tree, self.codes(dataset.x_train), dataset.y_train, self.codes(dataset.x_test),
                            dataset.y_test, leaf_means, pi)

    # --- the optional tree growth -------------------------------------------------
    @torch.no_grad()
    def on_epoch_end(self, epoch: int, train_arrays: dict) -> None:
        """The k-means restart of the node means after ``kmeans_init_epochs``, and the
        closed-form leaf update (``leaf_updates``), and the optional growth every
        ``grow_every`` epochs."""
        codes = self.codes(train_arrays["x"])
        locs = self.tree_guide.alpha_loc
        if epoch + 1 == self.config.kmeans_init_epochs:
            for loc, means in zip(locs, hierarchical_kmeans(self.tree, codes, epoch)):
                loc.copy_(torch.as_tensor(means, dtype=loc.dtype))
        elif self.config.leaf_updates and epoch + 1 > self.config.kmeans_init_epochs:
            _, pi = self.tree_guide.point_estimate()
            parents = locs[-2].cpu().numpy()[self.tree.parents(self.tree.depth)]
            means = coordinate_ascent_leaf_means(codes, locs[-1].cpu().numpy(), parents, pi.cpu().numpy(),
                                                 self.config.sigma_z, self.config.sigma_b)
            locs[-1].copy_(torch.as_tensor(means, dtype=locs[-1].dtype))
        every = self.config.grow_every
        if not every or (epoch + 1) % every:
            return
        leaf_means, pi = (t.cpu().numpy() for t in self.tree_guide.point_estimate())
        means, restarted = grow(self.tree, leaf_means, pi, self.codes(train_arrays["x"]), self.config.prune_mass, epoch)
        self.tree_guide.alpha_loc[-1].copy_(torch.as_tensor(means, dtype=self.tree_guide.alpha_loc[-1].dtype))
        restart_sticks(self.tree, restarted, self.tree_guide.stick_a, self.tree_guide.stick_b)


def restart_sticks(tree, parents, stick_a, stick_b) -> None:
    """Put the fractions of the given last-internal-level ``parents`` back at their
    initial values, an equal split between the children."""
    offset = tree.stick_slices()[-1].start
    equal_split = torch.as_tensor(tree.uniform_stick_b()[: tree.branching - 1], dtype=stick_b.dtype)
    for parent in parents:
        where = slice(offset + parent * (tree.branching - 1), offset + (parent + 1) * (tree.branching - 1))
        stick_a[where] = inverse_softplus(1.0)
        stick_b[where] = torch.log(torch.expm1(equal_split))

