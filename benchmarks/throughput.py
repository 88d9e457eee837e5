"""Seconds per training epoch: the zoo's trainers against their floors (issue 2, item 9).

One epoch of the VAE at the settings of Pyro's VAE example (MLP 784-400-50, batch
256, Adam 1e-3, Bernoulli logits on grey levels of Fashion-MNIST), for

==================  ===========================================================
``torch``           a plain-PyTorch loop of the same network and loss: the floor
``torch-fused``     the same loop with torch's fused Adam, which the zoo uses
``pyro-tutorial``   ``SVI.step`` over a ``DataLoader``, as in Pyro's VAE tutorial:
                    the reference for the Pyro backend
``zoo-pyro``        the zoo's Pyro backend (``make_trainer`` then ``run_epoch``)
``numpyro-jit``     one jit-compiled ``lax.fori_loop`` over ``svi.update``, the
                    NumPyro example's way: the reference for the NumPyro backend
``zoo-numpyro``     the zoo's NumPyro backend (``make_trainer`` then ``run_epoch``)
==================  ===========================================================

All contenders share the process, the threads and the machine's noise: each gets
one warm-up epoch (excluded: it holds NumPyro's compilation), then the timed epochs
run round-robin (one epoch of each contender in turn), so a burst of load from
elsewhere hits them all alike. The reported time is the median over the timed
epochs; the ratios of medians are the numbers to read, not the absolute seconds.

The zoo's VAE trains with ``TraceMeanField_ELBO`` (analytic KL), so the floor and
the NumPyro reference use the analytic KL too; the tutorial loop keeps the
tutorial's ``Trace_ELBO``.

Two more figures (issue 14):

- **the FLOP floor** of the network: its FLOPs per epoch (forward and backward of
  every matrix product, ``6 * sum(in * out) * B`` per step) over the GEMM throughput
  ``jnp.dot`` reaches on this machine for the network's own products, measured
  here; the zoo's NumPyro epoch is reported as a multiple of it;
- **scaling** (``--scaling``): seconds per epoch of the zoo's trainers data-parallel,
  Pyro with 2 processes (``torch.distributed``, gloo on CPU, NCCL on GPUs, each
  process with its share of the cores) against 1, NumPyro with 2 devices (on a CPU
  2 forced host devices, in a subprocess) against 1.

The data is Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package
(``apt-get install dataset-fashion-mnist``: the IDX files in
/usr/share/datasets/fashion-mnist), else digits with a warning; the JSON says which.

    python benchmarks/throughput.py --scaling         # Fashion-MNIST, 3 timed epochs, the issue-14 table
    python benchmarks/throughput.py --dataset digits --epochs 1 --limit 512
    python benchmarks/throughput.py --device cuda     # on a GPU (JAX uses its default backend)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from zoo import registry
from zoo.config import TrainOptions
from zoo.data import DataError, load_dataset
from zoo.run import make_trainer

RESULTS = Path(__file__).parent / "results"
CONTENDERS = ("torch", "torch-fused", "pyro-tutorial", "zoo-pyro", "numpyro-jit", "zoo-numpyro")
FLOOR, PYRO_REFERENCE, NUMPYRO_REFERENCE = "torch", "pyro-tutorial", "numpyro-jit"
# (measured, reference, at most): issue 14's targets for the ratios of medians.
TARGETS = (
    ("zoo-pyro", "torch", 1.05),
    ("zoo-pyro", "pyro-tutorial", 0.8),
    ("zoo-numpyro", "numpyro-jit", 1.0),
)


def resolve_dataset(name: str, limit: int | None):
    """The dataset asked for, or digits with a warning when it is not available."""
    try:
        return name, load_dataset(name, binarize="none", limit_train=limit)
    except DataError as error:
        if name == "digits":
            raise
        warnings.warn(f"{name} is not available ({error}); benchmarking on digits instead", stacklevel=2)
        return "digits", load_dataset("digits", binarize="none", limit_train=limit)


# --- the floor: plain PyTorch -------------------------------------------------


class TorchLoop:
    """The same encoder, decoder and loss (vae.4 with the closed-form KL vae.5), by hand."""

    def __init__(self, dataset, config, batch_size: int, lr: float, seed: int, fused: bool = False, device="cpu"):
        from guides.torch_nets import GaussianEncoder
        from zoo.pyro_backend.variant import make_decoder

        torch.manual_seed(seed)
        self.x = torch.as_tensor(dataset.x_train, device=device)
        self.batch_size = batch_size
        self.encoder = GaussianEncoder(dataset.x_dim, config.hidden, config.z_dim, config.activation).to(device)
        self.decoder = make_decoder(config, config.z_dim, dataset.x_dim).to(device)
        parameters = [*self.encoder.parameters(), *self.decoder.parameters()]
        self.optimizer = torch.optim.Adam(parameters, lr=lr, **({"fused": True} if fused else {}))

    def negative_elbo(self, x: torch.Tensor) -> torch.Tensor:
        loc, scale = self.encoder(x)
        z = loc + scale * torch.randn_like(loc)
        reconstruction = F.binary_cross_entropy_with_logits(self.decoder(z), x, reduction="sum")
        kl = 0.5 * (loc.pow(2) + scale.pow(2) - 1.0 - 2.0 * scale.log()).sum()
        return reconstruction + kl

    def run_epoch(self, epoch: int) -> float:
        num_batches = len(self.x) // self.batch_size
        order = torch.randperm(len(self.x), device=self.x.device)
        total = 0.0
        for b in range(num_batches):
            x = self.x[order[b * self.batch_size : (b + 1) * self.batch_size]]
            loss = self.negative_elbo(x)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            total += loss.item()
        return total / (num_batches * self.batch_size)


# --- the Pyro reference: the tutorial's loop ----------------------------------


class PyroTutorialLoop:
    """``svi.step(x)`` for each batch of a ``DataLoader``, as in Pyro's VAE tutorial.

    Its modules are registered under their own names, so they never meet the zoo
    trainer's ``encoder``/``decoder`` in Pyro's global param store.
    """

    def __init__(self, dataset, config, batch_size: int, lr: float, seed: int, device="cpu"):
        import pyro
        import pyro.distributions as dist
        from pyro.infer import SVI, Trace_ELBO
        from torch.utils.data import DataLoader, TensorDataset

        from guides.torch_nets import GaussianEncoder
        from zoo.pyro_backend.variant import make_decoder

        pyro.set_rng_seed(seed)
        encoder = GaussianEncoder(dataset.x_dim, config.hidden, config.z_dim, config.activation).to(device)
        decoder = make_decoder(config, config.z_dim, dataset.x_dim).to(device)
        z_dim = config.z_dim
        self.device = device

        def model(x):
            pyro.module("tutorial_decoder", decoder)
            with pyro.plate("data", x.shape[0]):
                z_loc = x.new_zeros(torch.Size((x.shape[0], z_dim)))
                z_scale = x.new_ones(torch.Size((x.shape[0], z_dim)))
                z = pyro.sample("latent", dist.Normal(z_loc, z_scale).to_event(1))
                logits = decoder(z)
                pyro.sample("obs", dist.Bernoulli(logits=logits, validate_args=False).to_event(1), obs=x)

        def guide(x):
            pyro.module("tutorial_encoder", encoder)
            with pyro.plate("data", x.shape[0]):
                z_loc, z_scale = encoder(x)
                pyro.sample("latent", dist.Normal(z_loc, z_scale).to_event(1))

        self.loader = DataLoader(TensorDataset(torch.as_tensor(dataset.x_train)), batch_size=batch_size, shuffle=True)
        self.svi = SVI(model, guide, pyro.optim.Adam({"lr": lr}), loss=Trace_ELBO())

    def run_epoch(self, epoch: int) -> float:
        epoch_loss = 0.0
        for (x,) in self.loader:
            epoch_loss += self.svi.step(x.to(self.device, non_blocking=True))
        return epoch_loss / len(self.loader.dataset)


# --- the NumPyro reference: one jit-compiled epoch ----------------------------


class NumPyroJitLoop:
    """The NumPyro example's epoch: ``lax.fori_loop`` over ``svi.update``, jit-compiled."""

    def __init__(self, dataset, config, batch_size: int, lr: float, seed: int):
        import jax
        import jax.numpy as jnp
        import numpyro
        import numpyro.distributions as dist
        import optax
        from numpyro.contrib.module import flax_module
        from numpyro.infer import SVI, TraceMeanField_ELBO

        from guides.flax_nets import BernoulliDecoder, GaussianEncoder

        self.jax = jax
        encoder = GaussianEncoder(config.hidden, config.z_dim, config.activation)
        decoder = BernoulliDecoder(tuple(reversed(config.hidden)), dataset.x_dim, config.activation)
        z_dim, x_dim = config.z_dim, dataset.x_dim

        def model(x):
            decode = flax_module("decoder", decoder, input_shape=(1, z_dim))
            with numpyro.plate("data", x.shape[0]):
                z = numpyro.sample("z", dist.Normal(jnp.zeros((x.shape[0], z_dim)), 1.0).to_event(1))
                numpyro.sample("x", dist.Bernoulli(logits=decode(z), validate_args=False).to_event(1), obs=x)

        def guide(x):
            encode = flax_module("encoder", encoder, input_shape=(1, x_dim))
            with numpyro.plate("data", x.shape[0]):
                z_loc, z_scale = encode(x)
                numpyro.sample("z", dist.Normal(z_loc, z_scale).to_event(1))

        svi = SVI(model, guide, optax.adam(lr), TraceMeanField_ELBO())
        self.x = jnp.asarray(dataset.x_train)
        num_train = len(dataset.x_train)
        num_batches = num_train // batch_size
        self.num_data = num_batches * batch_size
        init_key, self.key = jax.random.split(jax.random.PRNGKey(seed))
        self.state = svi.init(init_key, self.x[:batch_size])

        def epoch(state, x, key):
            order = jax.random.permutation(key, num_train)

            def body(i, carry):
                state, total = carry
                index = jax.lax.dynamic_slice_in_dim(order, i * batch_size, batch_size)
                state, loss = svi.update(state, jnp.take(x, index, axis=0))
                return state, total + loss

            return jax.lax.fori_loop(0, num_batches, body, (state, jnp.zeros(())))

        self.epoch = jax.jit(epoch)

    def run_epoch(self, epoch: int) -> float:
        key = self.jax.random.fold_in(self.key, epoch)
        self.state, total = self.epoch(self.state, self.x, key)
        return float(total) / self.num_data


# --- the zoo's trainers ------------------------------------------------------


class ZooLoop:
    """The zoo's real code path: ``zoo.run.make_trainer`` then ``trainer.run_epoch``."""

    def __init__(self, backend: str, dataset_name: str, limit, batch_size: int, lr: float, seed: int,
                 device: str = "cpu", devices: int = 1):
        options = TrainOptions(
            backend=backend,
            dataset=dataset_name,
            binarize="none",
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            limit_train=limit,
            device=device,
            devices=devices,
        )
        self.trainer = make_trainer("vae", registry.default_config("vae"), options)

    def run_epoch(self, epoch: int) -> float:
        return self.trainer.run_epoch(epoch)


def build(name: str, dataset_name: str, dataset, limit, batch_size: int, lr: float, seed: int, device: str = "cpu"):
    config = registry.default_config("vae")
    if name == "torch":
        return TorchLoop(dataset, config, batch_size, lr, seed, device=device)
    if name == "torch-fused":
        return TorchLoop(dataset, config, batch_size, lr, seed, fused=True, device=device)
    if name == "pyro-tutorial":
        return PyroTutorialLoop(dataset, config, batch_size, lr, seed, device=device)
    if name == "numpyro-jit":
        return NumPyroJitLoop(dataset, config, batch_size, lr, seed)
    if name == "zoo-pyro":
        return ZooLoop("pyro", dataset_name, limit, batch_size, lr, seed, device=device)
    if name == "zoo-numpyro":
        return ZooLoop("numpyro", dataset_name, limit, batch_size, lr, seed)
    raise ValueError(f"unknown contender {name!r}; choose from {', '.join(CONTENDERS)}")


# --- measuring -----------------------------------------------------------------


def timed(loop, epoch: int) -> tuple[float, float, float]:
    """Wall-clock and CPU seconds (all threads of the process) of one epoch, and its loss.

    CPU time is the steadier number on a busy machine: it leaves out the time the
    process waits for a core, though not the cost of threads waiting on each other.
    """
    started, started_cpu = time.perf_counter(), time.process_time()
    loss = loop.run_epoch(epoch)  # every contender returns a Python float: the epoch has finished
    return time.perf_counter() - started, time.process_time() - started_cpu, loss


def measure(loops: dict, epochs: int, log=print) -> dict:
    """Warm-up epoch per contender, then ``epochs`` timed rounds, round-robin."""
    seconds = {name: [] for name in loops}
    cpu_seconds = {name: [] for name in loops}
    losses = {name: [] for name in loops}
    for name, loop in loops.items():
        warmup, warmup_cpu, loss = timed(loop, 0)
        log(f"  warm-up  {name:<14} {warmup:7.2f} s  ({warmup_cpu:6.2f} s CPU)   loss {loss:9.3f}")
    for round_ in range(1, epochs + 1):
        for name, loop in loops.items():
            elapsed, cpu, loss = timed(loop, round_)
            seconds[name].append(elapsed)
            cpu_seconds[name].append(cpu)
            losses[name].append(loss)
            log(f"  epoch {round_:<2} {name:<14} {elapsed:7.2f} s  ({cpu:6.2f} s CPU)   loss {loss:9.3f}")
    return {
        name: {
            "median_seconds": statistics.median(seconds[name]),
            "min_seconds": min(seconds[name]),
            "median_cpu_seconds": statistics.median(cpu_seconds[name]),
            "seconds": seconds[name],
            "cpu_seconds": cpu_seconds[name],
            "losses": losses[name],
        }
        for name in loops
    }


# --- the FLOP floor: the network's matrix products at jnp.dot's speed -----------


def network_shapes(x_dim: int, config) -> list[tuple[int, int]]:
    """(in, out) of every matrix product of one VAE step: encoder layers, its two
    heads (loc and scale), decoder layers."""
    widths = [x_dim, *config.hidden]
    encoder = list(zip(widths[:-1], widths[1:])) + [(widths[-1], config.z_dim)] * 2
    back = [config.z_dim, *reversed(config.hidden), x_dim]
    return encoder + list(zip(back[:-1], back[1:]))


def flop_floor(x_dim: int, config, batch_size: int, num_batches: int, repeats: int = 20) -> dict:
    """Seconds per epoch if every FLOP ran at the speed of a jit-compiled ``jnp.dot``.

    A step multiplies a (B, in) batch by each (in, out) weight forward and twice
    backward (the gradients of input and weight): ``6 * B * in * out`` FLOPs. The
    throughput is measured on those very products (same shapes, float32), so the
    floor is what this machine's GEMM can do for this network, with everything
    else (activations, the loss, Adam, the loop) taken as free.
    """
    import jax
    import jax.numpy as jnp

    shapes = network_shapes(x_dim, config)
    key = jax.random.PRNGKey(0)
    inputs = [jax.random.normal(key, (batch_size, n_in)) for n_in, _ in shapes]
    weights = [jax.random.normal(key, (n_in, n_out)) for n_in, n_out in shapes]

    @jax.jit
    def products(inputs, weights):
        return [jnp.dot(x, w) for x, w in zip(inputs, weights)]

    jax.block_until_ready(products(inputs, weights))
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        jax.block_until_ready(products(inputs, weights))
        times.append(time.perf_counter() - started)
    forward_flops = sum(2 * batch_size * n_in * n_out for n_in, n_out in shapes)
    flops_per_second = forward_flops / statistics.median(times)
    epoch_flops = 3 * forward_flops * num_batches
    return {
        "shapes": shapes,
        "flops_per_epoch": epoch_flops,
        "gemm_flops_per_second": flops_per_second,
        "floor_seconds": epoch_flops / flops_per_second,
    }


# --- scaling: 2 processes (Pyro) and 2 devices (NumPyro) against 1 --------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ddp_worker(rank: int, world_size: int, port: int, settings: dict, out: str) -> None:
    """One rank of the Pyro scaling run: the zoo trainer with ``devices=world_size``."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
        WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(settings["threads"])
    loop = ZooLoop("pyro", settings["dataset"], settings["limit"], settings["batch_size"], settings["lr"],
                   settings["seed"], device=settings["device"], devices=world_size)
    seconds = []
    for epoch in range(settings["epochs"] + 1):  # epoch 0 warms up
        elapsed, _, loss = timed(loop, epoch)
        if epoch:
            seconds.append(elapsed)
    if rank == 0:
        Path(out).write_text(json.dumps({"seconds": seconds, "loss": loss}))
    torch.distributed.destroy_process_group()


def pyro_scaling(settings: dict, world_size: int) -> dict:
    """Median seconds per epoch of the zoo's Pyro trainer in ``world_size`` processes."""
    import tempfile

    cores = os.cpu_count() or 1
    gpu = settings["device"].startswith("cuda")
    if gpu and torch.cuda.device_count() < world_size:
        return {"skipped": f"{torch.cuda.device_count()} GPU(s)"}
    settings = {**settings, "threads": max(1, cores // world_size)}
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "rank0.json"
        torch.multiprocessing.spawn(_ddp_worker, args=(world_size, _free_port(), settings, str(out)), nprocs=world_size)
        record = json.loads(out.read_text())
    return {"processes": world_size, "threads_per_process": settings["threads"],
            "median_seconds": statistics.median(record["seconds"]), **record}


JAX_SCALING = """
import json, statistics, sys
sys.path.insert(0, {bench!r})
import throughput
settings = json.loads(sys.argv[1])
loops = {{n: throughput.ZooLoop("numpyro", settings["dataset"], settings["limit"], settings["batch_size"],
        settings["lr"], settings["seed"], devices=n) for n in (1, 2)}}
seconds = {{n: [] for n in loops}}
for epoch in range(settings["epochs"] + 1):
    for n, loop in loops.items():
        elapsed, _, loss = throughput.timed(loop, epoch)
        if epoch:
            seconds[n].append(elapsed)
print(json.dumps({{str(n): {{"devices": n, "median_seconds": statistics.median(s), "seconds": s}} for n, s in seconds.items()}}))
"""


def numpyro_scaling(settings: dict) -> dict:
    """Median seconds per epoch of the zoo's NumPyro trainer on 1 and on 2 devices
    (a subprocess: on a CPU the 2 devices are forced host devices, fixed at start)."""
    import subprocess

    env = dict(os.environ)
    if settings["device"] == "cpu":
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()
    code = JAX_SCALING.format(bench=str(Path(__file__).parent))
    result = subprocess.run([sys.executable, "-c", code, json.dumps(settings)], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        return {"skipped": (result.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def scaling(args, dataset_name: str, pyro_one: float | None) -> dict:
    settings = {"dataset": dataset_name, "limit": args.limit, "batch_size": args.batch_size, "lr": args.lr,
                "seed": args.seed, "epochs": args.epochs, "device": args.device}
    pyro_rows = {"1": {"processes": 1, "median_seconds": pyro_one, "note": "zoo-pyro above"}}
    pyro_rows["2"] = pyro_scaling(settings, 2)
    return {"pyro": pyro_rows, "numpyro": numpyro_scaling(settings)}


def check_targets(results: dict) -> list[dict]:
    rows = []
    for name, base, limit in TARGETS:
        if name in results and base in results:
            ratio = results[name]["median_seconds"] / results[base]["median_seconds"]
            # CPU seconds: the steadier ratio when other jobs share the cores.
            cpu_ratio = results[name]["median_cpu_seconds"] / results[base]["median_cpu_seconds"]
            rows.append({"contender": name, "reference": base, "ratio": ratio, "cpu_ratio": cpu_ratio,
                         "target": limit, "met": ratio <= limit})
    return rows


def add_ratios(results: dict) -> None:
    """Each contender's median over the floor's and over its backend's reference."""
    for name, row in results.items():
        for label, base in (("vs_torch", FLOOR), ("vs_pyro_tutorial", PYRO_REFERENCE), ("vs_numpyro_jit", NUMPYRO_REFERENCE)):
            if base in results:
                row[label] = row["median_seconds"] / results[base]["median_seconds"]


def machine_info() -> dict:
    import jax
    import numpyro
    import pyro

    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "pyro": pyro.__version__,
        "jax": jax.__version__,
        "jax_backend": jax.default_backend(),
        "numpyro": numpyro.__version__,
    }


def format_table(results: dict) -> str:
    header = (
        f"{'contender':<14} {'s/epoch':>8} {'CPU s':>7} {'x torch':>8} {'x tutorial':>11} {'x numpyro-jit':>14}"
        f" {'x FLOP floor':>13}"
    )
    lines = [header, "-" * len(header)]
    for name, row in results.items():

        def ratio(key):
            return f"{row[key]:.2f}" if key in row else "-"

        lines.append(
            f"{name:<14} {row['median_seconds']:8.3f} {row['median_cpu_seconds']:7.2f} {ratio('vs_torch'):>8} "
            f"{ratio('vs_pyro_tutorial'):>11} {ratio('vs_numpyro_jit'):>14} {ratio('vs_flop_floor'):>13}"
        )
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="fashion-mnist", help="fashion-mnist (default; digits if missing), mnist, digits")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per contender, after one warm-up (default 3)")
    parser.add_argument("--limit", type=int, default=None, help="train on at most this many images")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own choice)")
    parser.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=CONTENDERS)
    parser.add_argument("--device", default="cpu", help="cpu or cuda for the torch contenders (JAX: its default backend)")
    parser.add_argument("--scaling", action="store_true", help="also time 2 processes (Pyro) and 2 devices (NumPyro)")
    parser.add_argument("--out", type=Path, default=RESULTS / "throughput.json")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    dataset_name, dataset = resolve_dataset(args.dataset, args.limit)
    print(
        f"{dataset_name}: {len(dataset.x_train)} training images of {dataset.x_dim} pixels, batch {args.batch_size}, "
        f"torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs"
    )
    loops = {
        name: build(name, dataset_name, dataset, args.limit, args.batch_size, args.lr, args.seed, args.device)
        for name in args.contenders
    }
    results = measure(loops, args.epochs)
    del loops  # the scaling runs below get the memory and the cores
    add_ratios(results)
    config = registry.default_config("vae")
    floor = None
    if any(name.startswith(("numpyro", "zoo-numpyro")) for name in results):
        floor = flop_floor(dataset.x_dim, config, args.batch_size, len(dataset.x_train) // args.batch_size)
        for name, row in results.items():
            row["vs_flop_floor"] = row["median_seconds"] / floor["floor_seconds"]
    targets = check_targets(results)
    scaled = None
    if args.scaling:
        scaled = scaling(args, dataset_name, results.get("zoo-pyro", {}).get("median_seconds"))
    print()
    print(format_table(results))
    if floor:
        print(
            f"\nFLOP floor: {floor['flops_per_epoch'] / 1e9:.1f} GFLOP per epoch at {floor['gemm_flops_per_second'] / 1e9:.1f} "
            f"GFLOP/s (jnp.dot on this machine) = {floor['floor_seconds']:.3f} s per epoch"
        )
    if targets:
        print("\ntarget                              ratio   (CPU s)   at most   met")
        for row in targets:
            print(
                f"{row['contender'] + ' / ' + row['reference']:<35} {row['ratio']:5.2f}   ({row['cpu_ratio']:5.2f})"
                f"   {row['target']:7.2f}   {'yes' if row['met'] else 'NO'}"
            )
    if scaled:
        print("\nscaling (median s/epoch)")
        for backend, rows in scaled.items():
            for n, row in sorted(rows.items()):
                shown = f"{row['median_seconds']:.3f}" if row.get("median_seconds") else row.get("skipped", "-")
                print(f"  {backend:<8} x{n}  {shown}")
    record = {
        "benchmark": "throughput",
        "dataset": dataset_name,
        "num_train": int(len(dataset.x_train)),
        "batch_size": args.batch_size,
        "lr": args.lr,
        "network": f"{dataset.x_dim}-{'-'.join(map(str, registry.default_config('vae').hidden))}-{registry.default_config('vae').z_dim}",
        "timed_epochs": args.epochs,
        "machine": machine_info(),
        "command": " ".join([Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)]),
        "results": results,
        "flop_floor": floor,
        "targets": targets,
        "scaling": scaled,
        "device": args.device,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2))
    print(f"\nwritten to {args.out}")
    return record


if __name__ == "__main__":
    main()
