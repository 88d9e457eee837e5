"""The NumPyro training loop, shared by every NumPyro variant.

Python never touches a minibatch: the batches of an epoch run inside one
jit-compiled ``lax.fori_loop`` over ``variant.update``. The loop's bounds are traced
values, so the same compiled function runs the epoch in a few chunks (one
progress-bar tick each) without recompiling. Randomness comes from keys folded from
``(seed, epoch)`` and from the SVI state's own key, which the checkpoint carries.

With ``--devices N`` the same compiled epoch runs on an ``N``-device mesh
(:func:`zoo.distributed.data_mesh`): the state and the dataset are replicated, each
gathered batch is constrained to be split over the devices along its rows, and
XLA's partitioner (GSPMD) runs each step's rows on their devices and all-reduces
the gradients. The program is still written for the whole batch, so the losses are
those of one device.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from zoo import registry
from zoo.distributed import check_batch_size, data_mesh
from zoo.checkpoint import CheckpointError, dump_arrays, load_arrays, set_global_rng_state


# Keys are folded from the seed: epoch e uses stream e, the rest use streams no
# epoch count reaches.
INIT_STREAM, SAMPLE_STREAM, METRICS_STREAM = 2**31, 2**31 + 1, 2**31 + 2


class TrainingError(RuntimeError):
    pass


def check_device(name: str) -> None:
    """JAX places arrays on its default backend; ``--device cuda`` only checks it is a GPU."""
    if name.startswith("cuda") and jax.default_backend() != "gpu":
        raise TrainingError(
            f"--device cuda was asked for, but JAX's backend is {jax.default_backend()!r}; "
            "install jax[cuda12] or use --device cpu"
        )


class Trainer:
    backend = "numpyro"
    progress_chunks = 10

    def __init__(self, variant_name: str, config, dataset, options):
        # The mesh first: on a CPU it may have to give JAX more host devices, which
        # only works before anything (check_device included) starts JAX's backend.
        self.mesh = data_mesh(options.devices) if options.devices > 1 else None
        check_device(options.device)
        self.options = options
        self.dataset = dataset
        variant_cls = registry.variant_class(variant_name, "numpyro")
        self.variant = variant_cls(config, dataset.x_dim, dataset.num_classes)
        self.variant.configure_optimizers(options.lr)
        self.train_arrays = {k: jnp.asarray(v) for k, v in self.variant.training_data(dataset).items()}
        self.num_train = len(self.train_arrays["x"])
        self.batch_size = min(options.batch_size, self.num_train)
        check_batch_size(self.batch_size, options.devices)
        self.root_key = jax.random.PRNGKey(options.seed)
        first_batch = {k: v[: self.batch_size] for k, v in self.train_arrays.items()}
        self.state = self.variant.init_state(jax.random.fold_in(self.root_key, INIT_STREAM), first_batch)
        if self.mesh is not None:
            from jax.sharding import NamedSharding, PartitionSpec

            self.replicated = NamedSharding(self.mesh, PartitionSpec())
            self.row_sharded = NamedSharding(self.mesh, PartitionSpec("data"))
            self.train_arrays = jax.device_put(self.train_arrays, self.replicated)
        self._run_batches = jax.jit(self._run_batches_impl)
        self._log_weights = jax.jit(self._log_weights_impl, static_argnums=2)

    @property
    def batches_per_epoch(self) -> int:
        return self.num_train // self.batch_size

    def _run_batches_impl(self, state, arrays, order, epoch_key, start, stop):
        size = self.batch_size
        dynamic = self.dataset.binarize == "dynamic"

        def one_step(b, carry):
            state, total = carry
            index = jax.lax.dynamic_slice_in_dim(order, b * size, size)
            batch = {k: jnp.take(v, index, axis=0) for k, v in arrays.items()}
            if self.mesh is not None:
                # The one line data parallelism needs: each device holds B/N rows.
                batch = jax.lax.with_sharding_constraint(batch, self.row_sharded)
            if dynamic:
                noise_key = jax.random.fold_in(epoch_key, b)
                batch["x"] = jax.random.bernoulli(noise_key, batch["x"]).astype(batch["x"].dtype)
            state, loss = self.variant.update(state, batch)
            return state, total + loss

        return jax.lax.fori_loop(start, stop, one_step, (state, jnp.zeros(())))

    def run_epoch(self, epoch: int, on_batch=lambda: None) -> float:
        """Train one epoch; returns the mean loss per datapoint (nats), or NaN early."""
        epoch_key = jax.random.fold_in(self.root_key, epoch)
        order = jax.random.permutation(jax.random.fold_in(epoch_key, 1), self.num_train)
        if self.mesh is not None:
            # Replicated over the mesh (a no-op once it is; a loaded checkpoint is not).
            self.state, order = jax.device_put((self.state, order), self.replicated)
        chunk = max(1, math.ceil(self.batches_per_epoch / self.progress_chunks))
        total = 0.0
        for start in range(0, self.batches_per_epoch, chunk):
            stop = min(start + chunk, self.batches_per_epoch)
            self.state, chunk_total = self._run_batches(
                self.state, self.train_arrays, order, epoch_key, start, stop
            )
            chunk_total = float(chunk_total)
            if not np.isfinite(chunk_total):
                return float("nan")
            total += chunk_total
            for _ in range(stop - start):
                on_batch()
        self.state = self.variant.on_epoch_end(self.state, epoch, self.train_arrays)
        return total / (self.batches_per_epoch * self.batch_size)

    # --- checkpoints ----------------------------------------------------------
    # The SVI state's leaves as numeric arrays in an npz, read back without pickle
    # (zoo/checkpoint.py): a crafted file cannot run code.
    def state_bytes(self, epoch: int) -> bytes:
        leaves = [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(jax.device_get(self.state))]
        return dump_arrays({"epoch": epoch, "backend": self.backend}, leaves)

    def load_state_bytes(self, data: bytes) -> int:
        manifest, leaves, rng = load_arrays(data)
        current = jax.tree_util.tree_leaves(self.state)
        if len(leaves) != len(current):
            raise CheckpointError(f"{len(leaves)} arrays where this variant and config have {len(current)}")
        for saved, ours in zip(leaves, current):
            if saved.shape != ours.shape or saved.dtype != ours.dtype:
                raise CheckpointError(
                    f"an array of shape {saved.shape} ({saved.dtype}) where this variant and config "
                    f"have {ours.shape} ({ours.dtype})"
                )
        treedef = jax.tree_util.tree_structure(self.state)
        self.state = jax.tree_util.tree_unflatten(treedef, [jnp.asarray(leaf) for leaf in leaves])
        set_global_rng_state(rng)
        return int(manifest["epoch"])

    # --- evaluation and pictures (numpy in, numpy out) ------------------------
    @property
    def params(self):
        return self.variant.params(self.state)

    def _log_weights_impl(self, params, key, num_particles, arrays):
        return self.variant.log_weights(params, key, num_particles, **arrays)

    def log_weights(self, arrays: dict, num_particles: int, key=None) -> np.ndarray:
        if key is None:
            self.root_key, key = jax.random.split(self.root_key)
        arrays = {k: jnp.asarray(v) for k, v in arrays.items()}
        return np.asarray(self._log_weights(self.params, key, num_particles, arrays), dtype=np.float64)

    def reconstruct(self, arrays: dict) -> np.ndarray:
        arrays = {k: jnp.asarray(v) for k, v in arrays.items()}
        return np.asarray(self.variant.reconstruct(self.params, **arrays))

    def sample(self, num_samples: int) -> np.ndarray:
        key = jax.random.fold_in(self.root_key, SAMPLE_STREAM)
        return np.asarray(self.variant.sample(self.params, key, num_samples))

    def test_data(self) -> dict:
        return self.variant.test_data(self.dataset)

    def extra_metrics(self) -> dict:
        key = jax.random.fold_in(self.root_key, METRICS_STREAM)
        return self.variant.extra_metrics(self.params, self.dataset, key)
