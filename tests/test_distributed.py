"""Data-parallel Pyro (zoo.distributed): two gloo processes against one process.

Two processes (``torch.multiprocessing.spawn``, gloo on 127.0.0.1) run the zoo's
own trainer as ranks of a ``torch.distributed`` world, once for all tests here:

- one epoch of the VAE and of adVAE (three optimizers per batch, one all-reduce
  per group) on digits; the reference is a single process over the same global
  batches: one replica per rank's rows, run in lockstep in this process, each with
  the noise stream its rank draws, whose gradients are summed at every step
  (:class:`Lockstep`). After the epoch both ranks hold the reference's weights,
  the first step's all-reduced gradient is the reference's summed one (this is
  what tells SUM from AVG: Adam's update barely depends on the gradient's scale),
  and the reported losses agree;
- a run stopped after epoch 1 and resumed (both ranks from rank 0's checkpoint)
  ends with the weights and losses of an uninterrupted two-epoch run.

Plus the CLI end to end (slow): ``vaezoo train vae --devices 2``, which starts
torchrun itself, writes one run folder.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pyro
import pytest
import torch
from conftest import tiny_args, tiny_config, tiny_options

from zoo.distributed import World, epoch_seed

WORLD_SIZE = 2
EQUIVALENCE_VARIANTS = ("vae", "advae")
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank: int, port: int, out: str) -> None:
    """One rank: the equivalence epochs, then the resume runs (rank 0 writes the runs)."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
        WORLD_SIZE=str(WORLD_SIZE), LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    from zoo.distributed import train_replica
    from zoo.run import make_trainer, train

    out = Path(out)
    for name in EQUIVALENCE_VARIANTS:
        pyro.clear_param_store()
        trainer = make_trainer(name, tiny_config(name), tiny_options())
        first: dict = {}
        reduce = trainer.variant.reduce_gradients

        def spy(parameters, reduce=reduce, first=first):
            reduce(parameters)
            if not first:
                first.update({id(p): p.grad.clone() for p in parameters if p.grad is not None})

        trainer.variant.reduce_gradients = spy
        loss = trainer.run_epoch(0)
        names = {id(p): n for n, p in trainer.variant.named_parameters()}
        torch.save(
            {"state": trainer.variant.state_dict(), "loss": loss, "first": {names[k]: g for k, g in first.items()}},
            out / f"{name}-rank{rank}.pt",
        )
    config = tiny_config("vae")
    for folder, epochs, resume in (("straight", 2, False), ("resumed", 1, False), ("resumed", 2, True)):
        pyro.clear_param_store()
        train_replica(train, "vae", config, tiny_options(epochs=epochs, devices=WORLD_SIZE), out / folder, resume, False)
    torch.distributed.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """The folder the two ranks wrote into."""
    out = tmp_path_factory.mktemp("ddp")
    torch.multiprocessing.spawn(worker, args=(free_port(), str(out)), nprocs=WORLD_SIZE, join=True)
    return out


class Lockstep:
    """One process over the global batches: a replica per rank, stepped together.

    Replica ``r`` trains on the rows rank ``r`` would take, with the noise stream
    rank ``r`` would draw (its own torch RNG state, swapped in at its turn). The
    replicas run in threads that take turns; at every ``reduce_gradients`` the last
    one to arrive sums the gradients of all replicas and gives every replica the
    sum, as ``all_reduce`` would. So each update is the single-process update on
    the union of the rows, with the same noise as the distributed run.
    """

    TIMEOUT = 120.0

    def __init__(self, trainer, world_size: int):
        self.trainer = trainer
        self.size = world_size
        pyro.clear_param_store()
        self.replicas = [copy.deepcopy(trainer.variant) for _ in range(world_size)]
        for r, replica in enumerate(self.replicas):
            replica.configure_optimizers(trainer.options.lr)
            replica.reduce_gradients = lambda parameters, r=r: self.rendezvous(r, parameters)
        self.turn = 0
        self.cond = threading.Condition()
        self.stash: dict = {}
        self.first: dict | None = None
        self.errors: list = []

    def wait_turn(self, r: int) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: self.turn == r or self.errors, timeout=self.TIMEOUT):
                raise TimeoutError("lockstep replicas stalled")
            if self.errors:
                raise RuntimeError("another replica failed")
        torch.set_rng_state(self.rng[r])
        pyro.clear_param_store()  # pyro.module would hand one replica another's tensors

    def pass_turn(self, r: int, nxt: int) -> None:
        self.rng[r] = torch.get_rng_state()
        with self.cond:
            self.turn = nxt
            self.cond.notify_all()

    def rendezvous(self, r: int, parameters) -> None:
        self.stash[r] = list(parameters)
        if r < self.size - 1:
            self.pass_turn(r, r + 1)
        else:
            grads = [[p.grad for p in self.stash[q]] for q in range(self.size)]
            for i in range(len(grads[0])):
                if grads[0][i] is None:
                    continue
                total = sum(grads[q][i] for q in range(self.size))
                for q in range(self.size):
                    self.stash[q][i].grad = total.clone()
            if self.first is None:
                names = {id(p): n for n, p in self.replicas[0].named_parameters()}
                self.first = {names[id(p)]: p.grad.clone() for p in self.stash[0] if p.grad is not None}
            self.pass_turn(r, 0)
        self.wait_turn(r)

    def run_epoch(self, epoch: int) -> float:
        trainer = self.trainer
        order = trainer.epoch_order(epoch)
        self.rng = []
        for r in range(self.size):
            torch.manual_seed(epoch_seed(trainer.options.seed, epoch, r))
            self.rng.append(torch.get_rng_state())
        losses = [0.0] * self.size

        def replica_loop(r: int) -> None:
            try:
                self.wait_turn(r)
                for b in range(trainer.batches_per_epoch):
                    batch = trainer.local_batch(order, b, World(rank=r, size=self.size))
                    losses[r] += self.replicas[r].train_step(batch)
                if r < self.size - 1:
                    self.pass_turn(r, r + 1)
            except BaseException as error:  # reported by the main thread
                with self.cond:
                    self.errors.append(error)
                    self.cond.notify_all()

        threads = [threading.Thread(target=replica_loop, args=(r,)) for r in range(self.size)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self.errors:
            raise self.errors[0]
        return sum(losses) / (trainer.batches_per_epoch * trainer.batch_size)


@pytest.mark.parametrize("name", EQUIVALENCE_VARIANTS)
def test_two_processes_train_like_one_process_over_the_same_global_batches(name, ranks):
    from zoo.run import make_trainer

    trainer = make_trainer(name, tiny_config(name), tiny_options())
    initial = {k: v.clone() for k, v in trainer.variant.state_dict().items()}
    reference = Lockstep(trainer, WORLD_SIZE)
    loss = reference.run_epoch(0)
    expected = reference.replicas[0].state_dict()
    # The replicas stayed identical: the sum reached every one of them.
    for k, v in reference.replicas[1].state_dict().items():
        torch.testing.assert_close(v, expected[k], rtol=0, atol=0)

    results = [torch.load(ranks / f"{name}-rank{r}.pt", weights_only=False) for r in range(WORLD_SIZE)]
    moved = [k for k in expected if not torch.equal(expected[k], initial[k])]
    assert moved, "the reference epoch moved no weight; the comparison would be vacuous"
    for r, result in enumerate(results):
        for k, v in expected.items():
            torch.testing.assert_close(result["state"][k], v, rtol=1e-4, atol=1e-5, msg=f"rank {r}: {k}")
        assert result["loss"] == pytest.approx(loss, rel=1e-5)
        assert set(result["first"]) == set(reference.first)
        for k, g in reference.first.items():
            torch.testing.assert_close(result["first"][k], g, rtol=1e-4, atol=1e-6, msg=f"rank {r}: first gradient {k}")
    # The ranks drew different noise (their local losses differ), yet hold one model.
    for k in expected:
        torch.testing.assert_close(results[0]["state"][k], results[1]["state"][k], rtol=0, atol=0)


def test_a_resumed_distributed_run_matches_an_uninterrupted_one(ranks):
    straight, resumed = ranks / "straight", ranks / "resumed"
    a = torch.load(straight / "checkpoint.ckpt", weights_only=False)
    b = torch.load(resumed / "checkpoint.ckpt", weights_only=False)
    assert a["epoch"] == b["epoch"] == 1
    for k, v in a["variant"].items():
        torch.testing.assert_close(b["variant"][k], v, rtol=1e-6, atol=1e-7, msg=k)
    rows_a = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    rows_b = [json.loads(line) for line in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in rows_b] == pytest.approx([r["loss"] for r in rows_a], rel=1e-6)
    assert json.loads((resumed / "run.json").read_text())["options"]["devices"] == WORLD_SIZE
    # Only rank 0 wrote: one run folder each, nothing of rank 1 left behind in them.
    assert sorted(p.name for p in resumed.iterdir()) == sorted(p.name for p in straight.iterdir())


def test_the_per_rank_rows_partition_each_global_batch():
    from zoo.run import make_trainer

    trainer = make_trainer("vae", tiny_config("vae"), tiny_options(binarize="none"))
    order = trainer.epoch_order(3)
    for b in range(trainer.batches_per_epoch):
        whole = trainer.local_batch(order, b)["x"]
        parts = [trainer.local_batch(order, b, World(rank=r, size=WORLD_SIZE))["x"] for r in range(WORLD_SIZE)]
        assert all(len(p) == trainer.batch_size // WORLD_SIZE for p in parts)
        interleaved = torch.stack(parts, dim=1).reshape(whole.shape)
        torch.testing.assert_close(interleaved, whole, rtol=0, atol=0)
    assert not torch.equal(trainer.epoch_order(3), trainer.epoch_order(4)), "every epoch must reshuffle"


@pytest.mark.slow  # three more Python processes importing torch: ~20 s on 2 busy cores
def test_cli_devices_2_starts_torchrun_and_writes_one_run(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "zoo", *tiny_args("vae", "pyro", out, 1, "--devices", str(WORLD_SIZE))],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("trained vae (pyro)") == 1  # rank 0 reports, alone
    assert json.loads((out / "run.json").read_text())["options"]["devices"] == WORLD_SIZE
    assert np.isfinite(json.loads((out / "metrics.json").read_text())["train_loss"])


def test_cli_refuses_a_batch_the_processes_cannot_share(tmp_path, capsys):
    from zoo.cli import main

    args = tiny_args("vae", "pyro", tmp_path / "run", 1, "--devices", "3")
    assert main(args) == 2
    assert "multiple of --devices 3" in capsys.readouterr().err


def test_a_latent_outside_the_data_plate_is_refused_and_one_inside_is_not():
    """Summed over ranks, a global latent's prior would count once per process."""
    import pyro.distributions as dist

    from zoo.distributed import DistributedError, check_data_plate_only

    class Toy:
        def __init__(self, global_latent: bool):
            self.global_latent = global_latent

        def model(self, x):
            if self.global_latent:
                pyro.sample("alpha", dist.Gamma(1.0, 1.0))
            with pyro.plate("data", x.shape[0]):
                z = pyro.sample("z", dist.Normal(torch.zeros(x.shape[0]), 1.0))
                pyro.sample("x", dist.Normal(z, 1.0), obs=x)

        def guide(self, x):
            if self.global_latent:
                pyro.sample("alpha", dist.Gamma(2.0, 2.0))
            with pyro.plate("data", x.shape[0]):
                pyro.sample("z", dist.Normal(x, 1.0))

    batch = {"x": torch.randn(5)}
    state = torch.get_rng_state()
    check_data_plate_only(Toy(global_latent=False), batch)
    assert torch.equal(torch.get_rng_state(), state), "the check must not move the RNG the steps draw from"
    with pytest.raises(DistributedError, match="'alpha' is outside the 'data' plate"):
        check_data_plate_only(Toy(global_latent=True), batch)
