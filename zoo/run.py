"""One training run, whatever the variant and backend.

A run directory holds::

    run.json            variant, backend, config and training options (to resume/evaluate)
    checkpoint.ckpt     model, guide and optimizer state, RNG states, epoch (atomic;
                        a format that loads without running code, zoo/checkpoint.py)
    metrics.jsonl       one line per finished epoch
    metrics.json        the final summary
    samples.png         decoded prior samples
    reconstructions.png test images (odd rows) and their reconstructions (even rows)
    train.lock          held (fcntl.flock) by the one process training into the folder

Checkpoints are written to a temporary file in the same folder and renamed over the
old one, so an interrupted write never leaves a broken checkpoint; temporary files a
killed run left behind are removed by the next one. A non-finite loss stops the run
without checkpointing it: the last good checkpoint stays.

The rules of a run folder: one training writes into it at a time (a second is
refused); a training never replaces an existing run unless told to (``--resume``
continues it, ``--overwrite`` replaces it); a resumed run keeps its own options,
and a command that asks for different ones is refused with the list of them (the
epoch budget and the device may change); a budget the run is already past changes
nothing. A metrics line torn by a kill is dropped on resume, with a note.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from zoo import config as zconfig
from zoo import registry
from zoo.data import load_dataset
from zoo.images import save_grid, save_reconstructions
from zoo.text import is_text, save_text_samples

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
TRAINER_FILES = (CHECKPOINT, RUN_FILE, "metrics.json", "metrics.jsonl")


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
        raise RunError(
            f"{checkpoint} not found: the run has not finished an epoch yet, or the file was removed; "
            "train it again with --overwrite"
        )
    trainer = make_trainer(variant, config, options)
    epoch = load_checkpoint(trainer, checkpoint)
    return trainer, variant, config, options, epoch


METRICS_LOG = "metrics.jsonl"
LOCK_FILE = "train.lock"
# Everything a training writes; --overwrite removes these (and only these).
RUN_OUTPUTS = (RUN_FILE, CHECKPOINT, METRICS_LOG, "metrics.json", "eval.json", "samples.png", "reconstructions.png",
               "samples.txt", "reconstructions.txt")
# Options a resumed run may change: the epoch budget, and where it runs.
RESUMABLE_OPTIONS = ("epochs", "device", "devices")
# A loss this many times further from the best epoch's (in units of max(|best|, 1))
# is reported: the run is probably diverging without having reached NaN yet.
LOSS_GROWTH_WARNING = 100.0


def note(message: str) -> None:
    """A line for the user on stderr that is not an error."""
    print(f"vaezoo: {message}", file=sys.stderr, flush=True)


def _read_history(out: Path, up_to_epoch: int) -> list[dict]:
    """The per-epoch rows of ``metrics.jsonl`` up to the checkpointed epoch.

    A process killed while appending leaves a torn last line: it is dropped, with a
    note (its epoch was not checkpointed, so the resumed run trains it again). A
    damaged line before the last is no kill's doing and is an error.
    """
    path = out / METRICS_LOG
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            epoch = int(row["epoch"])
        except (ValueError, KeyError, TypeError):
            if all(not rest.strip() for rest in lines[number:]):
                note(f"ignored the torn last line {number} of {path} (a process was stopped while writing it)")
                continue
            raise RunError(
                f"{path} line {number} is damaged; delete that line to resume, or train again with --overwrite"
            ) from None
        if epoch <= up_to_epoch:
            rows.append(row)
    return rows


def check_out_dir(out: Path) -> None:
    """Refuse an ``--out`` that cannot be a run folder, before anything is written:
    an existing file, a path under a file, a place the user cannot write to."""
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out} is a file, not a folder; choose another --out")
    ancestor = out
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise RunError(f"--out {out} lies under {ancestor}, which is a file; choose another --out")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise RunError(f"--out {out}: {ancestor} is not writable for you; choose another --out")


class RunLock:
    """Exclusive right to write into a run folder, as an OS-level lock.

    ``fcntl.flock`` on ``train.lock`` in the folder: the kernel releases it when the
    holder exits however it ends (kill -9 included), so a crashed run never leaves
    the folder locked. A second training into the same folder is refused at once.
    Evaluation does not take it: it only reads the checkpoint, which is replaced
    atomically, and writes eval.json atomically.

    A folder this lock created is removed again when the run fails before writing
    anything into it, so a refused command leaves no trace.
    """

    def __init__(self, out: Path):
        self.out = out
        self.created: list[Path] = []
        self.handle = None

    def __enter__(self) -> RunLock:
        import fcntl

        missing = []
        folder = self.out
        while not folder.exists():
            missing.append(folder)
            folder = folder.parent
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            self.created = missing
            self.handle = open(self.out / LOCK_FILE, "a+")
        except OSError as error:
            self._remove_created()
            raise RunError(f"--out {self.out}: cannot write there ({error.strerror}); choose another --out") from None
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.handle.seek(0)
            holder = self.handle.read().strip() or "unknown"
            self.handle.close()
            raise RunError(
                f"{self.out} is being trained by another vaezoo process (pid {holder}); wait for it to finish, "
                "or train into another --out"
            ) from None
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(f"{os.getpid()}\n")
        self.handle.flush()
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if kind is not None and self.created and not any((self.out / name).exists() for name in RUN_OUTPUTS):
            (self.out / LOCK_FILE).unlink(missing_ok=True)
            self._remove_created()
        self.handle.close()  # releases the lock

    def _remove_created(self) -> None:
        for folder in self.created:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                break


def resume_differences(variant, config, options, recorded) -> list[str]:
    """The options of a resumed command that differ from the run's own record,
    as ``--flag value (the run has value)``; the epoch budget and device may change."""
    run_variant, run_config, run_options = recorded
    if variant != run_variant:
        return [f"variant {variant} (the run is {run_variant})"]
    differences = []
    ours, theirs = zconfig.to_dict(config), zconfig.to_dict(run_config)
    for name in ours:
        if _normalised(ours[name]) != _normalised(theirs.get(name)):
            differences.append(f"--set {name}={json.dumps(ours[name])} (the run has {json.dumps(theirs.get(name))})")
    ours, theirs = dataclasses.asdict(options), dataclasses.asdict(run_options)
    extra_ours, extra_theirs = ours.pop("extra"), theirs.pop("extra")
    for name in ours:
        if name not in RESUMABLE_OPTIONS and _normalised(ours[name]) != _normalised(theirs[name]):
            differences.append(f"--{name.replace('_', '-')} {ours[name]} (the run has {theirs[name]})")
    for name in sorted(set(extra_ours) | set(extra_theirs)):
        if extra_ours.get(name) != extra_theirs.get(name):
            differences.append(f"--{name.replace('_', '-')} {extra_ours.get(name)} (the run has {extra_theirs.get(name)})")
    return differences


def _normalised(value):
    """Lists and tuples compare alike (run.json stores tuples as lists), as do 1 and 1.0."""
    if isinstance(value, (list, tuple)):
        return [_normalised(v) for v in value]
    return value


def remove_outputs(out: Path) -> None:
    for name in RUN_OUTPUTS:
        (out / name).unlink(missing_ok=True)


def train(
    variant: str, config, options, out: Path, resume: bool = False, progress: bool = True, overwrite: bool = False
) -> dict:
    """Train ``variant``; write checkpoints, metrics and pictures into ``out``.

    Into a folder that already holds a run, only with ``resume`` (continue it from
    its checkpoint; every option but the epoch budget and the device must be the
    run's own) or ``overwrite`` (delete it first). Nothing is written before every
    check has passed.
    """
    out = Path(out)
    if resume and overwrite:
        raise RunError("--resume and --overwrite exclude each other: continue the run, or replace it")
    options.validate()
    config.validate()
    check_out_dir(out)
    with RunLock(out):
        return _train_locked(variant, config, options, out, resume, progress, overwrite)


def _train_locked(variant, config, options, out: Path, resume: bool, progress: bool, overwrite: bool) -> dict:
    start_epoch = 0
    history: list[dict] = []
    if resume:
        # Checked first: a folder without a checkpoint has nothing to resume, whatever
        # else it holds (it may not be a run at all).
        checkpoint = out / CHECKPOINT
        if not checkpoint.exists():
            raise RunError(f"--resume: {checkpoint} not found; start the run without --resume")
        recorded = load_run_file(out)
        differences = resume_differences(variant, config, options, recorded)
        if differences:
            raise RunError(
                f"--resume of {out} with options that differ from the run's: {'; '.join(differences)}. "
                "Only --epochs (and --device, --devices) may change: drop the others, or train a new run with another --out"
            )
        if options.device != recorded[2].device:
            note(f"continuing {out} on {options.device} (it was trained on {recorded[2].device})")
    elif any((out / name).exists() for name in RUN_OUTPUTS):
        if not overwrite:
            raise RunError(
                f"{out} already holds a run; continue it with --resume, replace it with --overwrite, "
                "or choose another --out"
            )
    removed = remove_stale_temporaries(out)
    if removed:
        note(f"removed {len(removed)} temporary file(s) a stopped run left in {out}: {', '.join(removed)}")
    trainer = make_trainer(variant, config, options)
    if resume:
        last_epoch = load_checkpoint(trainer, out / CHECKPOINT)
        trained = last_epoch + 1
        if trained > options.epochs:
            raise RunError(
                f"{out} has already trained {trained} epochs, past --epochs {options.epochs}; nothing was changed. "
                f"Resume with --epochs above {trained} to train further"
            )
        start_epoch = trained
        history = _read_history(out, last_epoch)
        if trained == options.epochs and (out / "metrics.json").exists():
            note(f"{out} has already trained {trained} epochs (--epochs {options.epochs}); nothing to do")
            return json.loads((out / "metrics.json").read_text())
    else:
        remove_outputs(out)
    save_run_file(out, variant, config, options)
    # The rows kept so far, written whole (a torn line of a killed run is gone),
    # then one appended line per epoch.
    atomic_write(out / METRICS_LOG, "".join(json.dumps(row) + "\n" for row in history).encode())
    if options.lr > 1:
        note(f"warning: --lr {options.lr} is unusually large for Adam (typical: 1e-4 to 1e-2)")
    best, warned = None, False

    with open(out / METRICS_LOG, "a") as log:
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
            if best is not None and not warned and loss - best > LOSS_GROWTH_WARNING * max(abs(best), 1.0):
                note(
                    f"warning: the loss grew from {best:.4g} to {loss:.4g} nats/datapoint in epoch {epoch + 1}; "
                    "the run is probably diverging: lower --lr"
                )
                warned = True
            best = loss if best is None else min(best, loss)
            row = {"epoch": epoch, "loss": loss, "seconds": time.perf_counter() - started}
            history.append(row)
            # One write of the whole line: a kill tears at most this line, which
            # resuming drops (its epoch has no checkpoint yet).
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
    if is_text(dataset):  # token sequences: samples.txt and reconstructions.txt
        save_text_samples(dataset, shown["x"], trainer.reconstruct(shown), trainer.sample(100), out)
    else:
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
