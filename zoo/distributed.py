"""Data-parallel training: Pyro on ``torch.distributed``, NumPyro on a JAX device mesh.

Pyro (one process per device, launched by ``torchrun``)
-------------------------------------------------------
::

    vaezoo train vae --devices 2                       # spawns torchrun itself
    torchrun --nproc-per-node 2 -m zoo train vae       # the same, by hand
    torchrun --nnodes 2 --node-rank R --rdzv-endpoint HOST:29500 --nproc-per-node 8 -m zoo train vae

Every process builds the same trainer; this module turns it into one replica of a
data-parallel run (:class:`World`):

- **Process group.** gloo on CPU, NCCL on GPUs (``--device cuda``: process
  ``LOCAL_RANK`` uses GPU ``LOCAL_RANK``), rendezvous from torchrun's environment.
  Rank 0's initial parameters and buffers are broadcast to every rank.
- **Batches.** ``--batch-size`` is the global batch ``B``; each of the ``R`` ranks
  takes ``B / R`` rows of it, DistributedSampler-style: rank ``r`` takes positions
  ``r, r + R, r + 2R, ...`` of each global batch of the epoch's permutation, which
  is drawn from ``(seed, epoch)`` afresh every epoch (what ``sampler.set_epoch``
  does). The union of the ranks' batches is exactly the single-process batch, and
  ``--devices 1`` is the single-process trainer.
- **Noise.** Each rank reseeds torch at the start of every epoch from
  ``(seed, epoch, rank)``: ranks draw independent reparameterisation noise and
  dynamic binarisations, and a resumed run (every rank loads rank 0's checkpoint)
  draws the same noise as an uninterrupted one without carrying R RNG states.
- **Gradients.** The variant's :meth:`~zoo.pyro_backend.variant.PyroVariant.step`
  calls ``reduce_gradients`` between backward pass and update, for every parameter
  group separately, so adversarial variants with several optimizers per batch are
  covered too. Here it is one ``torch.distributed.all_reduce`` (SUM) of the
  group's gradients, flattened into a single buffer. SUM, because every zoo loss
  is a sum over the rows of its batch (with batch-level terms multiplied by the
  batch size): the sum of the ranks' gradients is the gradient of the global
  batch's loss, the single-process step. This is the plate scaling of VARIANTS.md
  §20a in the zoo's convention (the data plate is the batch): each rank's plate
  is a subsample of ``B_local`` rows of the global batch of ``B``, its loss scaled
  by ``B / B_local = R`` and the gradients averaged, which is the same sum. A
  latent site outside the ``"data"`` plate would be counted once per rank, so such
  variants are refused. Batch-level estimators (MMD, the Fisher penalties) are
  estimated on each rank's local batch, a noisier estimate than on the global one.
- **Output.** Rank 0 writes the run folder (checkpoints, metrics, pictures); the
  other ranks run the same code into a private scratch folder that is deleted
  afterwards, and on ``--resume`` start from rank 0's checkpoint.

The reported epoch loss is summed over ranks (nats per datapoint of the global
batches). A non-finite loss stops the run at the end of the epoch on every rank
(a rank leaving early would leave the others waiting in a collective).

NumPyro (one process, ``--devices N`` of JAX's devices)
-------------------------------------------------------
:func:`data_mesh` builds a one-axis mesh ``("data",)`` over ``N`` devices; the
NumPyro trainer replicates the training state and the dataset over it and puts a
sharding constraint on each gathered batch inside its compiled epoch, so GSPMD
splits every step over the devices and inserts the gradient all-reduce. The
program is written for the global batch, so sharded and unsharded runs compute the
same losses. On a CPU-only machine JAX is given ``N`` host devices
(``jax_num_cpu_devices``). Multi-host: call ``jax.distributed.initialize(
coordinator_address, num_processes, process_id)`` in every process before
training (on Slurm/TPU/Kubernetes without arguments), so ``jax.devices()`` lists
every host's devices and ``--devices`` counts them all; each process then feeds
its own rows (``jax.make_array_from_process_local_data``). The zoo's trainer keeps
the whole dataset replicated, which fits the datasets it ships.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ENV_RANK, ENV_WORLD_SIZE, ENV_LOCAL_RANK = "RANK", "WORLD_SIZE", "LOCAL_RANK"


class DistributedError(RuntimeError):
    """A data-parallel setting the user can fix (message says how)."""


def launched_world_size() -> int:
    """The number of processes torchrun started this one among (1 outside torchrun)."""
    return int(os.environ.get(ENV_WORLD_SIZE, "1"))


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The torch seed of ``rank`` in ``epoch``: independent streams per rank and epoch."""
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1, dtype=np.uint64)[0] % 2**63)


def check_batch_size(batch_size: int, world_size: int) -> int:
    """The local batch size, or a one-line error when ``world_size`` does not divide it."""
    if batch_size % world_size:
        raise DistributedError(
            f"--batch-size {batch_size} is the global batch and must be a multiple of --devices {world_size}"
        )
    return batch_size // world_size


# ---------------------------------------------------------------------------
# Pyro: one replica of a torch.distributed run
# ---------------------------------------------------------------------------


@dataclass
class World:
    """This process's place in a data-parallel run (``size == 1``: a plain run)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_writer(self) -> bool:
        return self.rank == 0

    def local_slice(self, start: int, stop: int) -> slice:
        """This rank's rows of the global batch ``order[start:stop]``."""
        return slice(start + self.rank, stop, self.size)

    # --- collectives (no-ops on one process) ---------------------------------
    def broadcast_module(self, module) -> None:
        """Rank 0's parameters and buffers on every rank (as DDP does at wrap time)."""
        if self.size == 1:
            return
        import torch.distributed as dist

        for tensor in module.state_dict().values():
            dist.broadcast(tensor, src=0)

    def sum_gradients(self, parameters) -> None:
        """Replace each gradient by its sum over the ranks: one flat all-reduce.

        Every rank runs the same code on batches of the same shape, so the same
        parameters have a gradient (a loss that does not reach a parameter leaves
        it ``None`` on every rank, and the optimizer skips it everywhere).
        """
        if self.size == 1:
            return
        import torch
        import torch.distributed as dist

        grads = [p.grad for p in parameters if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def sum_scalar(self, value: float, device) -> float:
        if self.size == 1:
            return value
        import torch
        import torch.distributed as dist

        tensor = torch.tensor([value], dtype=torch.float64, device=device)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return float(tensor.item())


def torch_world(device_name: str) -> World:
    """The process group torchrun set up the environment for (joined once), or a world of one."""
    size = launched_world_size()
    if size == 1:
        return World()
    import torch
    import torch.distributed as dist

    rank, local_rank = int(os.environ[ENV_RANK]), int(os.environ.get(ENV_LOCAL_RANK, "0"))
    if device_name.startswith("cuda"):
        if torch.cuda.device_count() <= local_rank:
            raise DistributedError(
                f"process {local_rank} of this node needs GPU {local_rank}, but torch sees "
                f"{torch.cuda.device_count()}; start fewer processes or use --device cpu"
            )
        # "cuda" then means this process's GPU for every tensor the trainer moves.
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        backend = "nccl" if device_name.startswith("cuda") else "gloo"
        dist.init_process_group(backend, init_method="env://", rank=rank, world_size=size)
    return World(rank=rank, size=size, local_rank=local_rank)


def check_data_plate_only(variant, batch: dict) -> None:
    """Refuse variants with latent sites outside the ``"data"`` plate (see the module docstring)."""
    import torch
    from pyro import poutine
    from pyro.poutine.util import site_is_subsample

    x = next(iter(batch.values()))
    cuda = [x.device.index or 0] if x.device.type == "cuda" else []
    # The check runs the guide once; it must not move the RNG the step draws from.
    with torch.random.fork_rng(devices=cuda), poutine.block():
        guide_trace = poutine.trace(variant.guide).get_trace(**batch)
        model_trace = poutine.trace(poutine.replay(variant.model, trace=guide_trace)).get_trace(**batch)
    for trace in (model_trace, guide_trace):
        for name, site in trace.nodes.items():
            if site["type"] != "sample" or site["is_observed"] or site_is_subsample(site):
                continue
            if not any(frame.name == "data" for frame in site["cond_indep_stack"]):
                raise DistributedError(
                    f"site {name!r} is outside the 'data' plate: a global latent would be counted once "
                    "per process, so this variant cannot train data-parallel; use --devices 1"
                )


def launch(argv: list[str], devices: int, batch_size: int, device: str) -> int:
    """Run ``vaezoo <argv>`` in ``devices`` processes under torchrun; its exit status.

    ``--standalone`` rendezvouses on this machine (a free port); several machines
    are started with torchrun directly (see the module docstring). The settings a
    process would refuse are checked here first, so they fail once, in one line.
    """
    check_batch_size(batch_size, devices)
    if device.startswith("cuda"):
        import torch

        if torch.cuda.device_count() < devices:
            raise DistributedError(
                f"--devices {devices} --device cuda needs {devices} GPUs, torch sees {torch.cuda.device_count()}"
            )
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        "--nproc-per-node", str(devices), "-m", "zoo", *argv,
    ]
    env = dict(os.environ)
    # Each process gets its share of the cores, not all of them (torchrun's default).
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // devices)))
    return subprocess.call(command, env=env)


def train_replica(train, variant: str, config, options, out: Path, resume: bool, progress: bool):
    """``zoo.run.train`` as one rank of a torchrun world; rank 0's summary, None elsewhere.

    Rank 0 trains into ``out``. The others train into a scratch copy (with the run
    file and the checkpoint on ``--resume``, so they start where rank 0 does), which
    is removed afterwards: one code path for every rank, one writer of the run.
    """
    rank = int(os.environ.get(ENV_RANK, "0"))
    if rank == 0:
        return train(variant, config, options, out, resume=resume, progress=progress)
    scratch = Path(tempfile.mkdtemp(prefix=f"vaezoo-rank{rank}-"))
    try:
        if resume:
            for name in ("run.json", "checkpoint.ckpt", "metrics.jsonl"):
                if (Path(out) / name).exists():
                    shutil.copy2(Path(out) / name, scratch / name)
        train(variant, config, options, scratch, resume=resume, progress=False)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return None


# ---------------------------------------------------------------------------
# NumPyro: a device mesh under jit
# ---------------------------------------------------------------------------


def data_mesh(devices: int):
    """A one-axis mesh ``("data",)`` over the first ``devices`` of JAX's devices.

    On a CPU-only machine that has not initialised JAX's backend yet, JAX is given
    ``devices`` host devices first. The axis is ``Auto``: the trainer's
    ``with_sharding_constraint`` is only allowed on Auto axes (JAX 0.10's
    ``make_mesh`` defaults to Explicit ones).
    """
    import jax

    if devices > 1:
        try:
            if jax.config.jax_num_cpu_devices < devices:
                jax.config.update("jax_num_cpu_devices", devices)
        except (RuntimeError, AttributeError):
            pass  # the backend is already up; the check below reports a shortfall
    available = jax.devices()
    if len(available) < devices:
        raise DistributedError(
            f"--devices {devices}: JAX sees {len(available)} device(s) ({available[0].platform}); on a CPU set "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={devices} before starting"
        )
    return jax.make_mesh((devices,), ("data",), axis_types=(jax.sharding.AxisType.Auto,), devices=available[:devices])
