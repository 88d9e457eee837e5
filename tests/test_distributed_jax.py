"""Data-parallel NumPyro: the compiled epoch on a 2-device mesh against one device.

JAX's device count is fixed once its backend starts, so the check runs in a
subprocess started with ``XLA_FLAGS=--xla_force_host_platform_device_count=2``
(two CPU "devices"). There the zoo's NumPyro trainer runs one epoch of the VAE
with ``devices=1`` and with ``devices=2`` from the same seed. The sharded epoch
must report the same loss and end with the same parameters (the program is
written for the global batch, and JAX's partitionable threefry draws the same
noise however the batch is split), its state must be replicated over the mesh,
and the compiled epoch must contain the all-reduce of the gradients (without the
sharding constraint there would be nothing to reduce: every device would hold the
whole batch).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, "tests")
    import jax
    import numpy as np
    from conftest import tiny_config, tiny_options
    from zoo.run import make_trainer

    name = sys.argv[1]
    one = make_trainer(name, tiny_config(name), tiny_options(backend="numpyro"))
    two = make_trainer(name, tiny_config(name), tiny_options(backend="numpyro", devices=2))
    initial = [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(one.params)]
    losses = [one.run_epoch(0), two.run_epoch(0)]
    leaves = [jax.tree_util.tree_leaves(t.params) for t in (one, two)]
    gap = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in zip(*leaves))
    moved = max(float(np.max(np.abs(np.asarray(a) - b))) for a, b in zip(leaves[0], initial))
    order = jax.random.permutation(jax.random.PRNGKey(0), two.num_train)
    compiled = two._run_batches.lower(two.state, two.train_arrays, order, jax.random.PRNGKey(1), 0, 1).compile()
    hlo = compiled.as_text()  # the partitioned program, collectives included
    specs = {str(leaf.sharding.spec) for leaf in jax.tree_util.tree_leaves(two.state)}
    devices = {len(leaf.sharding.device_set) for leaf in jax.tree_util.tree_leaves(two.state)}
    print(json.dumps({
        "num_devices": len(jax.devices()), "losses": losses, "gap": gap, "moved": moved,
        "all_reduce": hlo.count("all-reduce"), "specs": sorted(specs), "devices": sorted(devices),
    }))
    """
)


def run_sharded(name: str) -> dict:
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, name], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "name",
    # adVAE: three optax optimizers per batch (GroupedState), the same one constraint.
    ["vae", pytest.param("advae", marks=pytest.mark.slow)],
)
def test_the_sharded_epoch_equals_the_one_device_epoch_and_all_reduces(name):
    report = run_sharded(name)
    assert report["num_devices"] == 2
    one, two = report["losses"]
    assert abs(one - two) <= 1e-5 * abs(one), report
    assert report["moved"] > 1e-4, "the epoch moved no parameter; the comparison would be vacuous"
    assert report["gap"] < 1e-5, report
    assert report["specs"] in (["P()"], ["PartitionSpec()"]) and report["devices"] == [2], "the state must be replicated"
    assert report["all_reduce"] > 0, "the compiled epoch has no all-reduce: the batch was not split"
