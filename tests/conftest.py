"""Shared fixtures of the test suite.

- Every test starts from a clean slate: fixed seeds for ``random`` and numpy, and,
  when Pyro is loaded, an empty global param store and a fixed torch seed.
- ``VAEZOO_DATA`` points at a temporary folder and the IDX download sources at a
  URL that cannot be reached, so no test reads or fills the user's cache or touches
  the network.
- ``tiny_args`` / ``tiny_config`` / ``tiny_options`` build runs small enough for
  CI (digits, 16 hidden units, 4 latent dimensions, 200 training images).
- ``trained_run`` trains one tiny run per (variant, backend) per session and hands
  out its folder, so the CLI and evaluation tests share the training cost.
- ``LinearGaussian`` is a VAE whose marginal likelihood, posterior and ELBO are
  known in closed form; ``pyro_linear_gaussian`` writes it as a Pyro model/guide.
- ``pyro_pinned`` and ``flax_params`` help compare losses at a chosen z, and
  NumPyro variants without running ``SVI.init``.
- JAX's compilation cache is switched on for the session (see below).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from zoo import data

# JAX compiles every NumPyro trainer's epoch afresh (a new jit-wrapped closure per
# trainer); a compilation cache for the session turns the repeats (resumed runs,
# identical tiny configs, the subprocess checks) into look-ups. It must be set
# before JAX is imported: pytest_configure runs before any test module is.
_JAX_CACHE: str | None = None


def pytest_configure(config):
    global _JAX_CACHE
    if "JAX_COMPILATION_CACHE_DIR" in os.environ or "jax" in sys.modules:
        return
    _JAX_CACHE = tempfile.mkdtemp(prefix="vaezoo-tests-jax-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _JAX_CACHE
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")


def pytest_unconfigure(config):
    if _JAX_CACHE is not None:
        shutil.rmtree(_JAX_CACHE, ignore_errors=True)
        os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)


# The tiny run every CLI-level test uses: 200 training images in 4 batches of 50,
# 50 test images, a 64-16-4 encoder and its mirror decoder.
TINY_HIDDEN = "[16]"
TINY_Z_DIM = 4
TINY_LIMIT_TRAIN = 200
TINY_LIMIT_TEST = 50
TINY_BATCH = 50


@pytest.fixture(autouse=True)
def fresh_randomness():
    """Seeds, and Pyro's global param store emptied, before every test.

    Pyro is only touched when a test module already imported it, so the data and
    import tests stay free of torch.
    """
    random.seed(0)
    np.random.seed(0)
    if "pyro" in sys.modules:
        import pyro

        pyro.clear_param_store()
        pyro.set_rng_seed(0)
    yield
    if "pyro" in sys.modules:
        sys.modules["pyro"].clear_param_store()


@pytest.fixture(autouse=True)
def isolated_data(tmp_path_factory, monkeypatch):
    """An empty dataset cache per test and download sources that fail at once."""
    cache = tmp_path_factory.mktemp("vaezoo-data")
    monkeypatch.setenv("VAEZOO_DATA", str(cache))
    unreachable = (cache / "no-such-server").as_uri() + "/"
    for name, source in list(data.IDX_SOURCES.items()):
        monkeypatch.setitem(
            data.IDX_SOURCES, name, data.IdxSource(unreachable, source.sha256, source.system_dir)
        )
    return cache


def tiny_args(variant: str, backend: str, out, epochs: int = 1, *extra: str) -> list[str]:
    """``vaezoo train`` arguments of a tiny run."""
    return [
        "train", variant,
        "--backend", backend,
        "--epochs", str(epochs),
        "--set", f"hidden={TINY_HIDDEN}",
        "--z-dim", str(TINY_Z_DIM),
        "--limit-train", str(TINY_LIMIT_TRAIN),
        "--limit-test", str(TINY_LIMIT_TEST),
        "--batch-size", str(TINY_BATCH),
        "--out", str(out),
        "--quiet",
        *extra,
    ]


def tiny_config(variant: str, **overrides):
    """The variant's default config with tiny networks (and any overrides)."""
    from zoo import registry
    from zoo.config import override

    settings = {"hidden": TINY_HIDDEN, "z_dim": str(TINY_Z_DIM)}
    settings.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in overrides.items()})
    return override(registry.default_config(variant), settings)


def tiny_options(**changes):
    from zoo.config import TrainOptions

    values = dict(
        epochs=1,
        batch_size=TINY_BATCH,
        limit_train=TINY_LIMIT_TRAIN,
        limit_test=TINY_LIMIT_TEST,
        seed=0,
    )
    values.update(changes)
    return TrainOptions(**values)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """``trained_run(variant, backend)``: the folder of a tiny 1-epoch run, trained
    once per session with the CLI. Tests may add files (eval.json) but must not
    retrain into it."""
    from zoo.cli import main

    runs: dict[tuple[str, str], Path] = {}

    def get(variant: str, backend: str) -> Path:
        if (variant, backend) not in runs:
            out = tmp_path_factory.mktemp(f"{variant}-{backend}")
            assert main(tiny_args(variant, backend, out)) == 0
            runs[variant, backend] = out
        return runs[variant, backend]

    return get


# --------------------------------------------------------------------------
# A linear-Gaussian VAE: every quantity in closed form
# --------------------------------------------------------------------------


@dataclass
class LinearGaussian:
    """``z ~ N(0, I_d)``, ``x | z ~ N(W z + b, sigma^2 I_D)``, with closed forms.

    The marginal is ``p(x) = N(x; b, W W^T + sigma^2 I)`` and the posterior is
    ``p(z|x) = N(m, S)`` with ``S = (I + W^T W / sigma^2)^-1`` and
    ``m = S W^T (x - b) / sigma^2``. Everything here is float64 numpy/scipy, so the
    objectives of both backends are checked against an independent computation.
    """

    W: np.ndarray  # (D, d)
    b: np.ndarray  # (D,)
    sigma: float
    x: np.ndarray  # (B, D), drawn from the model

    @classmethod
    def make(cls, seed: int = 0, x_dim: int = 5, z_dim: int = 2, num_data: int = 4, sigma: float = 0.7):
        rng = np.random.default_rng(seed)
        W = rng.normal(size=(x_dim, z_dim))
        b = rng.normal(size=x_dim)
        z = rng.normal(size=(num_data, z_dim))
        x = z @ W.T + b + sigma * rng.normal(size=(num_data, x_dim))
        return cls(W, b, sigma, x)

    @property
    def z_dim(self) -> int:
        return self.W.shape[1]

    def log_marginal(self) -> np.ndarray:
        """``log p(x_n)`` per datapoint, shape (B,)."""
        from scipy.stats import multivariate_normal

        cov = self.W @ self.W.T + self.sigma**2 * np.eye(len(self.b))
        return multivariate_normal(self.b, cov).logpdf(self.x)

    def posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """``(m, S)``: posterior means (B, d) and the shared covariance (d, d)."""
        S = np.linalg.inv(np.eye(self.z_dim) + self.W.T @ self.W / self.sigma**2)
        m = (self.x - self.b) @ self.W @ S / self.sigma**2
        return m, S

    def imperfect_guide(self, shift: float = 0.5, widen: float = 1.3) -> tuple[np.ndarray, np.ndarray]:
        """A diagonal Gaussian guide off the posterior: shifted mean, wider scales."""
        m, S = self.posterior()
        scale = widen * np.sqrt(np.diag(S))
        return m + shift, np.broadcast_to(scale, m.shape).copy()

    def kl_to_posterior(self, loc: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """``KL(N(loc, diag scale^2) || p(z|x))`` per datapoint: ``log p(x) - ELBO``."""
        m, S = self.posterior()
        precision = np.linalg.inv(S)
        diff = m - loc
        trace = np.sum(np.diag(precision) * scale**2, axis=-1)
        mahalanobis = np.einsum("bi,ij,bj->b", diff, precision, diff)
        log_det_ratio = np.linalg.slogdet(S)[1] - np.sum(np.log(scale**2), axis=-1)
        return 0.5 * (trace + mahalanobis - self.z_dim + log_det_ratio)


def pyro_linear_gaussian(lg: LinearGaussian, guide_kind: str = "exact"):
    """Pyro ``(model, guide, x)`` of ``lg`` in float64.

    ``guide_kind``: ``"exact"`` (the full-covariance posterior), ``"imperfect"``
    (:meth:`LinearGaussian.imperfect_guide`) or ``"narrow"`` (the posterior mean
    with a third of its scale: heavy-tailed importance weights).
    """
    import pyro
    import pyro.distributions as dist
    import torch

    W, b = torch.tensor(lg.W), torch.tensor(lg.b)
    m, S = (torch.tensor(a) for a in lg.posterior())
    x = torch.tensor(lg.x)

    def model(x):
        with pyro.plate("data", x.shape[0], dim=-1):
            z = pyro.sample("z", dist.Normal(x.new_zeros(x.shape[0], lg.z_dim), 1.0).to_event(1))
            pyro.sample("x", dist.Normal(z @ W.T + b, lg.sigma).to_event(1), obs=x)

    if guide_kind == "exact":
        q = dist.MultivariateNormal(m, scale_tril=torch.linalg.cholesky(S))
    elif guide_kind == "imperfect":
        loc, scale = (torch.tensor(a) for a in lg.imperfect_guide())
        q = dist.Normal(loc, scale).to_event(1)
    elif guide_kind == "narrow":
        q = dist.Normal(m, torch.sqrt(torch.diag(S)) / 3).to_event(1)
    else:
        raise ValueError(guide_kind)

    def guide(x):
        with pyro.plate("data", x.shape[0], dim=-1):
            pyro.sample("z", q)

    return model, guide, x


def pyro_pinned(guide, z):
    """``guide`` with its site ``"z"`` replayed from the tensor ``z``, so a loss or a
    log weight is scored at that z (NumPyro's twin: put ``"z": z`` in the params,
    which ``handlers.substitute`` then sets)."""
    from pyro import poutine

    trace = poutine.Trace()
    trace.add_node("z", name="z", type="sample", value=z, is_observed=False, infer={})
    return poutine.replay(guide, trace=trace)


def flax_params(variant, x_dim: int, seed: int = 0) -> dict:
    """Fresh parameters ``{"encoder$params", "decoder$params"}`` of a NumPyro VAE-like
    variant, from Flax's own initialisers (cheaper than running ``SVI.init``)."""
    import jax
    import jax.numpy as jnp

    encoder_key, decoder_key = jax.random.split(jax.random.PRNGKey(seed))
    return {
        "encoder$params": variant.encoder.init(encoder_key, jnp.zeros((1, x_dim)))["params"],
        "decoder$params": variant.decoder.init(decoder_key, jnp.zeros((1, variant.config.z_dim)))["params"],
    }


def pytest_addoption(parser):
    parser.addoption(
        "--run-slow", action="store_true", default=False,
        help="also run tests marked slow (claim-sized checks; CI leaves them to the benchmarks)",
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow") or os.environ.get("VAEZOO_RUN_SLOW") == "1":
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --run-slow (or VAEZOO_RUN_SLOW=1)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


# --- CPU time per test --------------------------------------------------------------
# On a shared machine wall-clock durations mostly measure the neighbours; the CPU
# time a test uses (this process and the subprocesses it waited for) is what it will
# take on CI's idle cores. `VAEZOO_CPU_DURATIONS=25 pytest` prints the 25 largest.

_CPU_TIMES: dict[str, float] = {}


def _cpu_seconds() -> float:
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    if not os.environ.get("VAEZOO_CPU_DURATIONS"):
        yield
        return
    started = _cpu_seconds()
    yield
    _CPU_TIMES[item.nodeid] = _cpu_seconds() - started


def pytest_terminal_summary(terminalreporter):
    count = os.environ.get("VAEZOO_CPU_DURATIONS")
    if not count or not _CPU_TIMES:
        return
    terminalreporter.section(f"largest CPU times (total {sum(_CPU_TIMES.values()):.0f} s)")
    for nodeid, seconds in sorted(_CPU_TIMES.items(), key=lambda kv: -kv[1])[: int(count)]:
        terminalreporter.write_line(f"{seconds:8.2f}s  {nodeid}")
