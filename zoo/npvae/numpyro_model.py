"""NpVAE in NumPyro: the truncated tree prior (npvae.1–npvae.3), guide (npvae.4),
objective (npvae.5) with the leaf enumerated.

Goyal, Hu, Liang, Wang & Xing, Nonparametric Variational Auto-encoders for
Hierarchical Representation Learning, ICCV 2017. The twin of
:mod:`zoo.npvae.pyro_model`: the model's leaf ``c`` carries
``infer={"enumerate": "parallel"}`` and NumPyro's ``TraceEnum_ELBO`` (funsor) sums
it out; the tree's variational parameters are ``numpyro.param`` sites
(:class:`guides.flax_tree.TreeGuide`).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro import handlers
from numpyro.infer import TraceEnum_ELBO

from guides.flax_nets import GaussianEncoder
from guides.flax_tree import TreeGuide, leaf_probabilities
from guides.tree import coordinate_ascent_leaf_means, grow, hierarchical_kmeans, tree_metrics
from zoo.numpyro_backend.variant import NumPyroVariant, make_decoder, observation


class Variant(NumPyroVariant):
    def __init__(self, config, x_dim, num_classes=10):
        super().__init__(config, x_dim, num_classes)
        self.tree = config.tree
        self.encoder = GaussianEncoder(config.hidden, config.z_dim, config.activation)
        self.decoder = make_decoder(config, x_dim)
        self.tree_guide = TreeGuide(self.tree, config.z_dim, config.sigma_b)
        self.num_train = None  # set by training_data: the globals' weight is B / N

    def global_scale(self, batch_size: int) -> float:
        """``B / N``: a minibatch loss sums B rows, so the globals' KL counts B/N times."""
        return batch_size / self.num_train if self.num_train else 1.0

    def model(self, x, **batch):
        decoder = self.module("decoder", self.decoder, self.config.z_dim)
        d, size = self.config.z_dim, x.shape[0]
        with handlers.scale(scale=self.global_scale(size)):
            parent = jnp.zeros((1, d))
            for level in self.tree.levels:  # (npvae.1)
                parent = numpyro.sample(
                    f"alpha_{level}", dist.Normal(parent[self.tree.parents(level)], self.config.sigma_b).to_event(2)
                )
            ones = jnp.ones(self.tree.num_sticks)
            v = numpyro.sample("V", dist.Beta(ones, ones * self.config.gamma).to_event(1))  # (npvae.2)
        leaf_means, pi = parent, leaf_probabilities(v, self.tree)
        with numpyro.plate("data", size, dim=-1):  # (npvae.3)
            c = numpyro.sample("c", dist.Categorical(probs=pi), infer={"enumerate": "parallel"})
            z = numpyro.sample("z", dist.Normal(leaf_means[c], self.config.sigma_z).to_event(1))
            numpyro.sample("x", observation(decoder(z), self.config.likelihood), obs=x)

    def guide(self, x, **batch):
        encoder = self.module("encoder", self.encoder, self.x_dim)
        with handlers.scale(scale=self.global_scale(x.shape[0])):  # (npvae.4)
            for level in self.tree.levels:
                loc, scale = self.tree_guide.alpha(level)
                numpyro.sample(f"alpha_{level}", dist.Normal(loc, scale).to_event(2))
            numpyro.sample("V", self.tree_guide.sticks().to_event(1))
        with numpyro.plate("data", x.shape[0], dim=-1):
            loc, scale = encoder(x)
            numpyro.sample("z", dist.Normal(loc, scale).to_event(1))

    def objective(self):
        return TraceEnum_ELBO(max_plate_nesting=1)

    def training_data(self, dataset) -> dict:
        self.num_train = len(dataset.x_train)
        return super().training_data(dataset)

    # --- evaluation -------------------------------------------------------------
    def prior_of_codes(self, params) -> dist.Distribution:
        """``p(z) = sum_l pi_l N(z; alpha_l, sigma_Z^2 I)`` at the guide's means of the globals."""
        leaf_means, pi = self.tree_guide.point_estimate(params)
        return dist.MixtureSameFamily(dist.Categorical(probs=pi), dist.Normal(leaf_means, self.config.sigma_z).to_event(1))

    def log_weights(self, params, rng_key, num_particles: int, x, **batch):
        """(k, B) weights with the leaf summed out, globals at their guide means (npvae.6)."""
        loc, scale = self.apply(params, "encoder", self.encoder, x)
        q = dist.Normal(loc, scale).to_event(1)
        z = q.sample(rng_key, (num_particles,))
        log_px = observation(self.apply(params, "decoder", self.decoder, z), self.config.likelihood).log_prob(x)
        return log_px + self.prior_of_codes(params).log_prob(z) - q.log_prob(z)

    def sample(self, params, rng_key, num_samples: int):
        return self.decode(params, self.prior_of_codes(params).sample(rng_key, (num_samples,)))

    def codes(self, params, images) -> np.ndarray:
        return np.asarray(jax.jit(lambda x: self.encode(params, x))(jnp.asarray(images)))

    def extra_metrics(self, params, dataset, rng_key) -> dict:
        leaf_means, pi = (np.asarray(t) for t in self.tree_guide.point_estimate(params))
        return tree_metrics(self.tree, self.codes(params, dataset.x_train), dataset.y_train,
                            self.codes(params, dataset.x_test), dataset.y_test, leaf_means, pi)

    # --- the optional tree growth -------------------------------------------------
    def on_epoch_end(self, state, epoch: int, train_arrays: dict):
        """The k-means restart of the node means after ``kmeans_init_epochs``, and the
        closed-form leaf update (``leaf_updates``) and the optional growth every
        ``grow_every`` epochs (all outside jit, on the SVI state)."""
        params = self.params(state)
        codes = self.codes(params, train_arrays["x"])
        depth = self.tree.depth
        if epoch + 1 == self.config.kmeans_init_epochs:
            levels = hierarchical_kmeans(self.tree, codes, epoch)
            state = self.replace_params(state, {f"tree_alpha_loc_{level}": jnp.asarray(means, jnp.float32)
                                                for level, means in enumerate(levels)})
        elif self.config.leaf_updates and epoch + 1 > self.config.kmeans_init_epochs:
            _, pi = self.tree_guide.point_estimate(params)
            parents = np.asarray(params[f"tree_alpha_loc_{depth - 1}"])[self.tree.parents(depth)]
            means = coordinate_ascent_leaf_means(codes, np.asarray(params[f"tree_alpha_loc_{depth}"]), parents,
                                                 np.asarray(pi), self.config.sigma_z, self.config.sigma_b)
            state = self.replace_params(state, {f"tree_alpha_loc_{depth}": jnp.asarray(means, jnp.float32)})
        every = self.config.grow_every
        if not every or (epoch + 1) % every:
            return state
        params = self.params(state)
        leaf_means, pi = (np.asarray(t) for t in self.tree_guide.point_estimate(params))
        means, restarted = grow(self.tree, leaf_means, pi, self.codes(params, train_arrays["x"]),
                                self.config.prune_mass, epoch)
        a, b = np.array(params["tree_stick_a"]), np.array(params["tree_stick_b"])
        offset = self.tree.stick_slices()[-1].start
        equal_split = np.log(np.expm1(self.tree.uniform_stick_b()[: self.tree.branching - 1]))
        for parent in restarted:  # the re-used leaf's siblings split their stick equally again
            where = slice(offset + parent * (self.tree.branching - 1), offset + (parent + 1) * (self.tree.branching - 1))
            a[where], b[where] = math.log(math.expm1(1.0)), equal_split
        return self.replace_params(state, {f"tree_alpha_loc_{self.tree.depth}": jnp.asarray(means, jnp.float32),
                                           "tree_stick_a": jnp.asarray(a), "tree_stick_b": jnp.asarray(b)})

    @staticmethod
    def replace_params(state, changes: dict):
        """``state`` with some parameters set (all tree parameters are unconstrained,
        so the optimizer's copy is the value). The optax moments are kept."""
        step, (params, optimizer_state) = state.optim_state
        return state._replace(optim_state=(step, ({**params, **changes}, optimizer_state)))
