"""The public Python API: train a variant, load a run, use the trained model.

For people who script SVI rather than call the command line. Arrays go in and come
out as numpy, the same in both backends::

    import zoo

    model = zoo.train("vae", backend="pyro", epochs=5)   # or zoo.load("runs/vae-pyro-digits")
    x = model.test_data()["x"][:8]
    z = model.encode(x)                                  # (8, z_dim) posterior means
    x_mean = model.decode(z)                             # (8, 64) means of p(x | z)
    images = model.sample(16)                            # (16, 64) prior samples, decoded
    log_px = model.log_likelihood(x, k=1000)             # (8,) importance-sampled log p(x)

Training writes the same run folder as ``vaezoo train`` (checkpoint, metrics,
pictures), so a run made here can be evaluated with ``vaezoo evaluate`` and the
reverse. Importing this module imports neither torch nor JAX: a backend is imported
when a model of it is built.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np

from zoo import config as zconfig
from zoo import registry

# Options of the command line that are not fields of TrainOptions but data choices.
_EXTRA_OPTIONS = ("labels", "normal_class")


class Model:
    """A trained variant: encode, decode, sample, reconstruct, log-likelihood.

    Built by :func:`train` or :func:`load`; not meant to be constructed directly.

    Attributes:
        variant: the variant's name, e.g. ``"vae"``.
        backend: ``"pyro"`` or ``"numpyro"``.
        config: the variant's ``Config`` (a frozen dataclass) the run was trained with.
        options: the run's ``TrainOptions`` (dataset, epochs, learning rate, seed...).
        run_dir: the run folder holding the checkpoint and metrics.
        epochs_trained: how many epochs the checkpoint has seen.
    """

    def __init__(self, trainer, variant: str, config, options, run_dir: Path, epoch: int):
        self._trainer = trainer
        self.variant = variant
        self.config = config
        self.options = options
        self.backend = options.backend
        self.run_dir = Path(run_dir)
        self.epochs_trained = epoch + 1

    def __repr__(self) -> str:
        return (
            f"Model({self.variant!r}, backend={self.backend!r}, dataset={self.options.dataset!r}, "
            f"epochs_trained={self.epochs_trained}, run_dir={str(self.run_dir)!r})"
        )

    # --- data -------------------------------------------------------------------
    def test_data(self) -> dict[str, np.ndarray]:
        """The run's test arrays as the variant uses them: ``x`` and, for the
        variants that need them, ``y`` (labels) or ``s`` (sensitive attribute)."""
        return {key: np.asarray(value) for key, value in self._trainer.test_data().items()}

    def _batch(self, x, inputs: dict) -> dict:
        batch = {"x": np.asarray(x, dtype=np.float32)}
        if batch["x"].ndim != 2:
            raise ValueError(f"x must be a 2-d array (datapoints, features), got shape {batch['x'].shape}")
        for key, value in inputs.items():
            batch[key] = np.asarray(value)
        return batch

    # --- the model --------------------------------------------------------------
    def encode(self, x, **inputs) -> np.ndarray:
        """Posterior means of ``q(z | x)`` (``inputs``: e.g. ``y=`` for conditional variants)."""
        batch = self._batch(x, inputs)
        if self.backend == "pyro":
            import torch

            variant = self._trainer.variant
            variant.eval()
            with torch.no_grad():
                return variant.encode(**self._trainer._to_device(batch)).cpu().numpy()
        import jax.numpy as jnp

        arrays = {k: jnp.asarray(v) for k, v in batch.items()}
        return np.asarray(self._trainer.variant.encode(self._trainer.params, **arrays))

    def decode(self, z) -> np.ndarray:
        """Means of ``p(x | z)`` for latent codes ``z`` of shape (n, z_dim)."""
        z = np.asarray(z, dtype=np.float32)
        if self.backend == "pyro":
            import torch

            variant = self._trainer.variant
            variant.eval()
            with torch.no_grad():
                return variant.decode(torch.as_tensor(z, device=self._trainer.device)).cpu().numpy()
        import jax.numpy as jnp

        return np.asarray(self._trainer.variant.decode(self._trainer.params, jnp.asarray(z)))

    def sample(self, num_samples: int) -> np.ndarray:
        """``num_samples`` draws of z from the prior, decoded to the means of ``p(x | z)``."""
        if int(num_samples) < 1:
            raise ValueError(f"num_samples must be at least 1, got {num_samples}")
        return np.asarray(self._trainer.sample(int(num_samples)))

    def reconstruct(self, x, **inputs) -> np.ndarray:
        """``decode(encode(x))``: the mean of ``p(x | z)`` at the posterior mean."""
        return np.asarray(self._trainer.reconstruct(self._batch(x, inputs)))

    def log_weights(self, x, k: int = 100, **inputs) -> np.ndarray:
        """Log importance weights ``log p(x, z_k) - log q(z_k | x)``, shape (k, n)."""
        if int(k) < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        return np.asarray(self._trainer.log_weights(self._batch(x, inputs), int(k)))

    def log_likelihood(self, x, k: int = 1000, **inputs) -> np.ndarray:
        """Importance-sampled ``log p(x)`` per datapoint, ``log (1/k) sum_k w_k``.

        A stochastic lower bound that tightens with ``k`` (Burda et al.'s
        ``L_k``); check it with :meth:`psis_khat` (above 0.7, a loose bound)."""
        log_w = self.log_weights(x, k, **inputs)
        return np.logaddexp.reduce(log_w, axis=0) - np.log(log_w.shape[0])

    def psis_khat(self, x, k: int = 1000, **inputs) -> np.ndarray:
        """PSIS k-hat of the guide as proposal, per datapoint (NaN for k < 21)."""
        from zoo.evaluate import psis_khat

        return psis_khat(self.log_weights(x, k, **inputs))


def _options(variant: str, backend: str, options: dict) -> tuple[object, dict]:
    extra = {key: options.pop(key) for key in _EXTRA_OPTIONS if options.get(key) is not None}
    for key in _EXTRA_OPTIONS:
        options.pop(key, None)
    known = {f.name for f in dataclasses.fields(zconfig.TrainOptions)} - {"backend", "extra"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(
            f"unknown training option(s) {', '.join(unknown)} for {variant}; "
            f"known: {', '.join(sorted(known | set(_EXTRA_OPTIONS)))} (config fields go in settings=)"
        )
    return zconfig.TrainOptions(backend=backend, extra=extra, **options), extra


def train(
    variant: str,
    backend: str = "pyro",
    *,
    settings: dict | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = False,
    **options: object,
) -> Model:
    """Train ``variant`` and return the trained :class:`Model`.

    Args:
        variant: a registered name (see ``zoo.names()``).
        backend: ``"pyro"`` or ``"numpyro"``.
        settings: config fields to override, e.g. ``{"z_dim": 10, "hidden": (200,)}``.
        out: the run folder (a fresh temporary folder when omitted). A folder that
            already holds a run is refused unless ``overwrite`` is true.
        overwrite: replace the run in ``out``.
        progress: show tqdm progress bars.
        **options: training options as on the command line: ``epochs``, ``dataset``,
            ``batch_size``, ``lr``, ``seed``, ``binarize``, ``limit_train``,
            ``limit_test``, ``device``, ``data_dir``, ``labels``, ``normal_class``.

    Returns:
        The model at the end of training.
    """
    from zoo import run

    if backend not in registry.BACKENDS:
        raise registry.UnknownBackendError(f"unknown backend {backend!r}; choose one of {', '.join(registry.BACKENDS)}")
    config = registry.default_config(variant)
    if settings:
        config = dataclasses.replace(config, **settings)
    train_options, _ = _options(variant, backend, dict(options))
    if out is None:
        out = Path(tempfile.mkdtemp(prefix=f"vaezoo-{variant}-{backend}-"))
    run.train(variant, config, train_options, Path(out), progress=progress, overwrite=overwrite)
    return load(out)


def load(run_dir: str | Path, device: str | None = None) -> Model:
    """The trained :class:`Model` of a run folder (``vaezoo train``'s ``--out``),
    from its last checkpoint."""
    from zoo import run

    trainer, variant, config, options, epoch = run.restore(Path(run_dir), device=device)
    return Model(trainer, variant, config, options, Path(run_dir), epoch)
