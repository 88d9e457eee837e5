"""The Pyro training loop, shared by every Pyro variant.

The dataset is moved to the device once as tensors; a minibatch is an index slice of
them (no ``DataLoader``, no per-item Python). The permutation of epoch ``e`` comes
from ``(seed, e)``, and the checkpoint carries torch's RNG state, so a resumed run
draws the same noise and the same batches as an uninterrupted one.

Under ``torchrun`` (``--devices N``) the same trainer is one replica of a
data-parallel run: it takes its rows of every global batch and sums the gradients
over the processes between backward pass and update (:mod:`zoo.distributed`).
"""

from __future__ import annotations

import io

import numpy as np
import pyro
import torch
from pyro.infer.util import is_validation_enabled

from zoo import registry
from zoo.distributed import DistributedError, World, check_batch_size, check_data_plate_only, epoch_seed, torch_world
from zoo.checkpoint import FORMAT as CHECKPOINT_FORMAT
from zoo.checkpoint import VERSION as CHECKPOINT_VERSION
from zoo.checkpoint import CheckpointError, global_rng_state, require_zip, set_global_rng_state


class TrainingError(RuntimeError):
    pass


def resolve_device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError("--device cuda was asked for, but torch sees no CUDA GPU; use --device cpu")
    return torch.device(name)


class Trainer:
    backend = "pyro"

    def __init__(self, variant_name: str, config, dataset, options):
        self.options = options
        self.dataset = dataset
        self.world: World = torch_world(options.device)
        if options.devices not in (1, self.world.size):
            raise DistributedError(
                f"--devices {options.devices} trains Pyro in {options.devices} processes, but this is one of "
                f"{self.world.size}: start it with 'vaezoo train ... --devices {options.devices}' or torchrun"
            )
        self.device = resolve_device(options.device)
        pyro.set_rng_seed(options.seed)
        # The param store is global: stale values from another run in the same
        # process would overwrite this run's modules at their first pyro.module call.
        pyro.clear_param_store()
        variant_cls = registry.variant_class(variant_name, "pyro")
        self.variant = variant_cls(config, dataset.x_dim, dataset.num_classes).to(self.device)
        self.variant.configure_optimizers(options.lr)
        self.train_arrays = self._to_device(self.variant.training_data(dataset))
        self.num_train = len(self.train_arrays["x"])
        self.batch_size = min(options.batch_size, self.num_train)
        self.local_batch_size = check_batch_size(self.batch_size, self.world.size)
        self.validate_next_step = True
        if self.world.size > 1:
            # Identical replicas from the start (DDP does the same at wrap time), and
            # every group's gradients summed over the processes before its update.
            self.world.broadcast_module(self.variant)
            self.variant.reduce_gradients = self.world.sum_gradients

    def _to_device(self, arrays: dict) -> dict:
        return {k: torch.as_tensor(v).to(self.device) for k, v in arrays.items()}

    @property
    def batches_per_epoch(self) -> int:
        # The last incomplete batch is dropped: every step sees a full batch.
        return self.num_train // self.batch_size

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """The permutation of the training set for ``epoch``: the same on every rank."""
        order = np.random.default_rng([self.options.seed, epoch]).permutation(self.num_train)
        return torch.as_tensor(order, device=self.device)

    def local_batch(self, order: torch.Tensor, b: int, world: World | None = None) -> dict:
        """Batch ``b`` of the epoch, this rank's rows of it (all of them on one process),
        binarized afresh if the dataset says so."""
        world = world or self.world
        index = order[world.local_slice(b * self.batch_size, (b + 1) * self.batch_size)]
        batch = {k: v[index] for k, v in self.train_arrays.items()}
        if self.dataset.binarize == "dynamic":
            batch["x"] = torch.bernoulli(batch["x"])
        return batch

    def run_epoch(self, epoch: int, on_batch=lambda: None) -> float:
        """Train one epoch; returns the mean loss per datapoint (nats), or NaN early."""
        self.variant.train()
        order = self.epoch_order(epoch)
        distributed = self.world.size > 1
        if distributed:
            torch.manual_seed(epoch_seed(self.options.seed, epoch, self.world.rank))
        total = 0.0
        for b in range(self.batches_per_epoch):
            batch = self.local_batch(order, b)
            if distributed and self.validate_next_step:
                check_data_plate_only(self.variant, batch)
            loss = self._train_step(batch)
            # Every rank must reach every collective: a distributed run finishes the
            # epoch and stops on the summed loss instead.
            if not np.isfinite(loss) and not distributed:
                return float("nan")
            total += loss
            on_batch()
        total = self.world.sum_scalar(total, self.device)
        if not np.isfinite(total):
            return float("nan")
        self.variant.on_epoch_end(epoch, self.train_arrays)
        return total / (self.batches_per_epoch * self.batch_size)

    def _train_step(self, batch: dict) -> float:
        """``variant.train_step`` with Pyro's validation on the trainer's first step only.

        Validation (site shapes, plates, distribution arguments, the mean-field
        check) costs about 1 ms a step whatever the network, 5-10% of a
        784-400-50 VAE step on 2 CPU cores (benchmarks/README.md); Pyro advises
        turning it off for mature models. Every step has the same shapes, so the
        first one checks them all; a later non-finite argument shows up as a NaN
        loss, which stops the run (zoo.run.TrainingDiverged). A user who turned
        validation off globally keeps it off. Validation changes no number and
        draws no noise.
        """
        with pyro.validation_enabled(self.validate_next_step and is_validation_enabled()):
            loss = self.variant.train_step(batch)
        self.validate_next_step = False
        return loss

    # --- checkpoints ----------------------------------------------------------
    # Tensors and plain containers only, so torch.load(weights_only=True) reads it
    # back and a crafted file cannot run code (zoo/checkpoint.py).
    def state_bytes(self, epoch: int) -> bytes:
        rng = global_rng_state()
        state = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "epoch": epoch,
            "variant": self.variant.state_dict(),
            "optimizer": self.variant.optimizer_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
            "python_rng": rng["python"],
            "numpy_rng": {**rng["numpy"], "keys": torch.from_numpy(rng["numpy_keys"].astype(np.int64))},
        }
        buffer = io.BytesIO()
        torch.save(state, buffer)
        return buffer.getvalue()

    def load_state_bytes(self, data: bytes) -> int:
        require_zip(data)
        state = torch.load(io.BytesIO(data), map_location=self.device, weights_only=True)
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError("not a vaezoo checkpoint")
        if state.get("version") != CHECKPOINT_VERSION:
            raise CheckpointError(f"checkpoint format version {state.get('version')}, expected {CHECKPOINT_VERSION}")
        self.variant.load_state_dict(state["variant"])
        pyro.clear_param_store()
        self.variant.load_optimizer_state(state["optimizer"])
        torch.set_rng_state(state["torch_rng"].cpu())
        if state.get("cuda_rng") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])
        numpy_rng = dict(state["numpy_rng"])
        keys = numpy_rng.pop("keys").cpu().numpy()
        set_global_rng_state({"python": state["python_rng"], "numpy": numpy_rng, "numpy_keys": keys})
        return int(state["epoch"])

    # --- evaluation and pictures (numpy in, numpy out) ------------------------
    def _batch(self, arrays: dict) -> dict:
        return self._to_device(arrays)

    def log_weights(self, arrays: dict, num_particles: int) -> np.ndarray:
        self.variant.eval()
        return self.variant.log_weights(num_particles, **self._batch(arrays)).double().cpu().numpy()

    def reconstruct(self, arrays: dict) -> np.ndarray:
        self.variant.eval()
        return self.variant.reconstruct(**self._batch(arrays)).cpu().numpy()

    def sample(self, num_samples: int) -> np.ndarray:
        self.variant.eval()
        return self.variant.sample(num_samples, self.device).cpu().numpy()

    def test_data(self) -> dict:
        return self.variant.test_data(self.dataset)

    def extra_metrics(self) -> dict:
        self.variant.eval()
        with torch.no_grad():
            return self.variant.extra_metrics(self.dataset, self.device)
