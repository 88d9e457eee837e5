"""One training run, whatever the variant and backend.

A run directory holds::

    run.json            variant, backend, config and training options (to resume/evaluate)
    checkpoint.ckpt     model, guide and optimizer state, RNG state, epoch (atomic)
    metrics.jsonl       one line per finished epoch
    metrics.json        the final summary
    samples.png         decoded prior samples
    reconstructions.png test images (odd rows) and their reconstructions (even rows)

Checkpoints are written to a temporary file in the same folder and renamed over the
old one, so an interrupted write never leaves a broken checkpoint. A non-finite loss
stops the run without checkpointing it: the last good checkpoint stays.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from zoo import config as zconfig
from zoo import registry
from zoo.data import load_dataset
from zoo.images import save_grid, save_reconstructions

CHECKPOINT = "checkpoint.ckpt"
RUN_FILE = "run.json"


class RunError(RuntimeError):
    """A problem with a run the user can fix (message says how)."""


class TrainingDiverged(RunError):
    pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, data: bytes) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); give it the permissions any other
        # file of the run gets, so a shared run folder stays readable.
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# Files only the (single) training process writes; their leftover temporary files
# (a process killed inside atomic_write) are removed when the next one starts.
# eval.json's are not: an evaluation may be writing one right now.
TRAINER_FILES = (CHECKPOINT, RUN_FILE, "metrics.json")


def remove_stale_temporaries(out: Path) -> list[str]:
    """Delete ``checkpoint.ckpt.*.tmp`` and the like left by a killed run; returns their names."""
    removed = []
    for name in TRAINER_FILES:
        for stale in Path(out).glob(f"{name}.*.tmp"):
            stale.unlink(missing_ok=True)
            removed.append(stale.name)
    return sorted(removed)


def make_trainer(variant: str, config, options):
    """Load the data and build the backend's trainer (imports that backend only)."""
    dataset = load_dataset(
        options.dataset,
        data_dir=options.data_dir,
        binarize=options.binarize,
        seed=options.seed,
        limit_train=options.limit_train,
        limit_test=options.limit_test,
    )
    # Model selection (zoo.reproduce): the run is scored on held-out training rows.
    validation = options.extra.get("validation")
    if validation:
        from zoo.data import validation_split

        dataset = validation_split(dataset, int(validation), seed=int(options.extra.get("validation_seed", 0)))
    normal_class = options.extra.get("normal_class")
    if normal_class is not None:
        from zoo.data import one_class_split

        dataset = one_class_split(dataset, int(normal_class))
    # Semi-supervised variants: --labels N, else the default of the variant's
    # config (a field ``labels``; None there means every label is observed).
    labels = options.extra.get("labels", getattr(config, "labels", None))
    if labels is not None:
        from zoo.data import select_labelled

        dataset = select_labelled(dataset, int(labels), seed=options.seed)
    if options.backend == "pyro":
        from zoo.pyro_backend.trainer import Trainer
    elif options.backend == "numpyro":
        from zoo.numpyro_backend.trainer import Trainer
    else:
        raise registry.UnknownBackendError(
            f"unknown backend {options.backend!r}; choose one of {', '.join(registry.BACKENDS)}"
        )
    return Trainer(variant, config, dataset, options)


def save_run_file(out: Path, variant: str, config, options) -> None:
    record = {
        "variant": variant,
        "config": zconfig.to_dict(config),
        "options": dataclasses.asdict(options),
    }
    atomic_write(out / RUN_FILE, json.dumps(record, indent=2).encode())


def load_run_file(out: Path):
    """``(variant, config, options)`` recorded in ``out/run.json``.

    A missing, unreadable or hand-damaged file is a :class:`RunError` naming it.
    """
    path = Path(out) / RUN_FILE
    if not path.exists():
        raise RunError(f"{path} not found: {out} is not a vaezoo run directory (train one with 'vaezoo train')")
    fix = "restore it from a copy, or train the run again with --overwrite"
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunError(f"{path} could not be read as JSON ({_first_line(error)}); {fix}") from None
    try:
        variant = record["variant"]
        config = zconfig.from_dict(registry.config_class(variant), record["config"])
        options = zconfig.TrainOptions(**record["options"])
    except registry.UnknownVariantError as error:
        raise RunError(f"{path} names a variant this vaezoo does not have ({_first_line(error)}); {fix}") from None
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise RunError(f"{path} is not a vaezoo run record ({type(error).__name__}: {_first_line(error)}); {fix}") from None
    return variant, config, options


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def load_checkpoint(trainer, checkpoint: Path) -> int:
    """Load ``checkpoint`` into ``trainer``; returns its epoch.

    Only the formats of zoo/checkpoint.py are read, and none of them can run code.
    A damaged file (random bytes, a truncated copy), a checkpoint of an older
    vaezoo (a pickle: never loaded) or one written by another variant or config
    cannot be loaded; the user gets one sentence naming the file, not a traceback.
    """
    try:
        data = checkpoint.read_bytes()
    except OSError as error:
        raise RunError(f"{checkpoint} could not be read ({_first_line(error)}); check its permissions") from None
    try:
        return trainer.load_state_bytes(data)
    except Exception as error:  # noqa: BLE001 - any parser failure means the same to the user
        detail = _first_line(error)
        if len(detail) > 160:
            detail = detail[:157] + "..."
        raise RunError(
            f"{checkpoint} could not be loaded ({type(error).__name__}: {detail}): it is damaged, written by "
            "an older vaezoo, or belongs to another variant or config. Train the run again with --overwrite."
        ) from None


def restore(out: Path, device: str | None = None):
    """The trainer of a run directory, loaded from its last checkpoint."""
    variant, config, options = load_run_file(out)
    if device is not None:
        options = dataclasses.replace(options, device=device)
    checkpoint = Path(out) / CHECKPOINT
    if not checkpoint.exists():
        raise RunError(f"{checkpoint} not found: the run has not finished an epoch yet")
    trainer = make_trainer(variant, config, options)
    epoch = load_checkpoint(trainer, checkpoint)
    return trainer, variant, config, options, epoch


def _read_history(out: Path, up_to_epoch: int) -> list[dict]:
    path = out / "metrics.jsonl"
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [row for row in rows if row["epoch"] <= up_to_epoch]


def train(variant: str, config, options, out: Path, resume: bool = False, progress: bool = True) -> dict:
    """Train ``variant``; write checkpoints, metrics and pictures into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    start_epoch = 0
    if resume:
        # Checked first: a folder without a checkpoint has nothing to resume, whatever
        # else it holds (it may not be a run at all).
        checkpoint = out / CHECKPOINT
        if not checkpoint.exists():
            raise RunError(f"--resume: {checkpoint} not found; start the run without --resume")
        # The run's own record wins over the command line, except for the epoch budget.
        epochs = options.epochs
        variant, config, options = load_run_file(out)
        options = dataclasses.replace(options, epochs=epochs)
    config.validate()
    trainer = make_trainer(variant, config, options)
    history: list[dict] = []
    if resume:
        last_epoch = load_checkpoint(trainer, out / CHECKPOINT)
        start_epoch = last_epoch + 1
        history = _read_history(out, last_epoch)
    else:
        for stale in (CHECKPOINT, "metrics.jsonl", "metrics.json", "eval.json"):
            (out / stale).unlink(missing_ok=True)
    save_run_file(out, variant, config, options)

    with open(out / "metrics.jsonl", "w") as log:
        for row in history:
            log.write(json.dumps(row) + "\n")
        for epoch in range(start_epoch, options.epochs):
            started = time.perf_counter()
            bar = tqdm(
                total=trainer.batches_per_epoch,
                desc=f"{variant}/{options.backend} epoch {epoch + 1}/{options.epochs}",
                disable=not progress,
                leave=False,
            )
            loss = trainer.run_epoch(epoch, on_batch=lambda: bar.update(1))
            bar.close()
            if not np.isfinite(loss):
                has_checkpoint = (out / CHECKPOINT).exists()
                kept = f"the checkpoint of epoch {epoch} is kept" if has_checkpoint else "no checkpoint was written"
                raise TrainingDiverged(
                    f"the loss became {loss} in epoch {epoch + 1}; training stopped and {kept} in {out}. "
                    "Lower --lr, or try --likelihood bernoulli / another --seed."
                )
            row = {"epoch": epoch, "loss": loss, "seconds": time.perf_counter() - started}
            history.append(row)
            log.write(json.dumps(row) + "\n")
            log.flush()
            atomic_write(out / CHECKPOINT, trainer.state_bytes(epoch))
            if progress:
                tqdm.write(f"epoch {epoch + 1:>3}  loss {loss:10.4f} nats/datapoint  ({row['seconds']:.2f} s)")

    return finish(trainer, variant, config, options, out, history)


def finish(trainer, variant, config, options, out: Path, history: list[dict]) -> dict:
    """Pictures and the final metrics of a trained run."""
    dataset = trainer.dataset
    test = trainer.test_data()
    shown = {k: v[:50] for k, v in test.items()}
    save_reconstructions(shown["x"], trainer.reconstruct(shown), dataset.image_shape, out / "reconstructions.png")
    save_grid(trainer.sample(100), dataset.image_shape, out / "samples.png")
    subset = {k: v[:500] for k, v in test.items()}
    test_elbo = float(np.mean(trainer.log_weights(subset, 1)))
    summary = {
        "variant": variant,
        "backend": options.backend,
        "dataset": options.dataset,
        "binarize": dataset.binarize,
        "epochs": len(history),
        "train_loss": history[-1]["loss"] if history else None,
        "test_elbo_500": test_elbo,
        "seconds_per_epoch": float(np.mean([row["seconds"] for row in history])) if history else None,
        "config": zconfig.to_dict(config),
    }
    summary.update(trainer.extra_metrics())
    atomic_write(out / "metrics.json", json.dumps(summary, indent=2).encode())
    return summary
