"""Every example runs for one epoch and gives a finite, sensible bound."""

import importlib.util
import math
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["vae_pyro", "vae_numpyro"])
def test_vae_examples_run_one_epoch(name):
    test_neg_elbo = load(name).main(epochs=1)
    # 64 binary pixels: a model that learnt nothing scores 64 log 2 = 44.4 nats.
    assert math.isfinite(test_neg_elbo) and 0 < test_neg_elbo < 64 * math.log(2) + 5


def test_iwae_example_bounds_are_ordered():
    bounds = load("iwae_pyro").main(k=5, epochs=1)
    assert bounds["L_1"] <= bounds["L_5"] + 0.1 <= bounds["L_1000"] + 0.2
