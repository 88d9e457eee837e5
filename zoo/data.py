"""Datasets: loading, binarization, subsets and the one-class split.

Conventions every model in the zoo relies on:

* Images are flattened. ``x_train`` and ``x_test`` are float32 arrays of shape
  ``(N, D)`` with values in ``[0, 1]``; ``image_shape`` gives ``(H, W)`` so plots
  can fold a row back into an image. Labels are int64 arrays of shape ``(N,)``.
* ``binarize`` says how pixel intensities become the binary observations a
  Bernoulli likelihood needs, and is recorded in the metrics because log-likelihoods
  are only comparable under the same protocol:

  - ``"none"``: grey levels everywhere.
  - ``"dynamic"``: the training set stays grey and the training loop draws a fresh
    Bernoulli sample per minibatch (Salakhutdinov & Murray, 2008); the test set is
    binarized once with the constant seed :data:`TEST_BINARIZATION_SEED`, so every
    run, whatever its ``seed``, is evaluated on the same binary test set.
  - ``"fixed"``: train and test are binarized once, with draws seeded by ``seed``.

* ``limit_train`` / ``limit_test`` keep at most that many examples: a random subset
  drawn with the constant seed :data:`SUBSET_SEED` (so runs with different seeds
  still see the same examples), kept in the original order. A random subset rather
  than the first N keeps the classes roughly balanced. Binarization happens
  before the subset is taken, so an image is binarized the same way whatever the
  limit.
* ``digits`` is scikit-learn's bundled 8x8 digits set: no download, always there,
  and the default for tests and quick runs. Its train/test split is stratified
  and seeded with a constant, independent of ``seed``.
* ``mnist`` and ``fashion-mnist`` are read from the four standard IDX files. They are
  looked for in ``data_dir`` (directly, or in ``data_dir/<name>/``), then in the
  cache ``default_cache_dir()/<name>/``, then in a system copy (Debian's
  ``dataset-fashion-mnist`` package for Fashion-MNIST); only if none of these
  holds them are they downloaded into the cache. Downloads are checked against
  SHA-256 sums. Files found locally are not, because other copies are legitimate
  (Debian's, for one, is recompressed: its bytes differ while its images are the
  same); they are checked structurally instead, by :func:`read_idx`.
* ``adult`` is UCI Adult (census income), a table: x holds the standardised numeric
  and one-hot categorical attributes, y is income > 50K, and the sensitive
  attribute s is sex (:func:`load_adult`). It is read from ``data_dir`` or the
  cache, else downloaded into the cache; the zoo knows no SHA-256 of its two files,
  so a download is kept with a warning that prints its sum. Binarization does not
  apply to it.
* Semi-supervised variants see the labels of a balanced, seeded subset of the
  training set (:func:`select_labelled`, ``--labels N``); fair-representation
  variants add a binary sensitive attribute (:func:`with_sensitive`): Adult's sex,
  or for images the synthetic, label-correlated ``frame`` nuisance.
* Every problem the user can fix raises :class:`DataError`, whose message names
  the file and says what to do. No raw gzip, struct or numpy error escapes.

This module uses numpy and scikit-learn only; it imports neither torch nor JAX.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import math
import os
import struct
import sys
import tempfile
import urllib.request
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

DATASETS = ("digits", "mnist", "fashion-mnist", "adult", "words", "glosses", "ptb")
# Token sequences (zoo.text): no binarization, x holds int64 token ids.
TEXT_DATASETS = ("words", "glosses", "ptb")
# Tables rather than images: no binarization, rows shown as 1xD strips.
TABULAR_DATASETS = ("adult",)
BINARIZE_MODES = ("none", "dynamic", "fixed")

# Constant seeds: these choices define the benchmark data, so they must not move
# with the run's ``seed``.
DIGITS_SPLIT_SEED = 0
DIGITS_TEST_SIZE = 360
TEST_BINARIZATION_SEED = 123
SUBSET_SEED = 0

DOWNLOAD_TIMEOUT_SECONDS = 60.0


class DataError(Exception):
    """A dataset problem the user can fix; the message names the file and the fix."""


@dataclass
class Dataset:
    """A train/test pair of flattened images with labels (see the module docstring)."""

    name: str
    x_train: np.ndarray  # float32, (N, D), values in [0, 1]
    y_train: np.ndarray  # int64, (N,)
    x_test: np.ndarray
    y_test: np.ndarray
    image_shape: tuple[int, int]  # (H, W), with H * W == D
    num_classes: int
    binarize: str  # "none" | "dynamic" | "fixed"
    # Set by one_class_split: the class treated as normal; labels are then
    # 0 (normal) / 1 (anomaly).
    normal_class: int | None = None
    # Set by select_labelled (semi-supervised variants): True for the training
    # examples whose label the model may see. None: every label is observed.
    labelled: np.ndarray | None = None  # bool, (N_train,)
    # A binary sensitive attribute per example (fair representations): its name
    # ("sex" for adult, "frame" for synthetic_nuisance) and its values 0/1.
    sensitive: str | None = None
    s_train: np.ndarray | None = None  # int64, (N_train,)
    s_test: np.ndarray | None = None  # int64, (N_test,)

    @property
    def x_dim(self) -> int:
        return self.x_train.shape[1]


def default_cache_dir() -> Path:
    """Where downloads go: ``$VAEZOO_DATA`` if set, else ``~/.cache/vaezoo``."""
    configured = os.environ.get("VAEZOO_DATA")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "vaezoo"


# --------------------------------------------------------------------------
# IDX files
# --------------------------------------------------------------------------

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
IDX_FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

# The IDX magic number is two zero bytes, a type code and the number of dimensions:
# 0x00000803 for image stacks (N, rows, cols), 0x00000801 for label vectors (N,).
IDX_UNSIGNED_BYTE = 0x08
IMAGES_NDIM = 3
LABELS_NDIM = 1

FIX_CORRUPT_FILE = (
    "Delete it and run again to re-download, or point --data-dir at a folder "
    "with the four IDX files."
)


def read_idx(path: str | Path, expected_ndim: int | None = None) -> np.ndarray:
    """Read an unsigned-byte IDX file (gzip-compressed if its name ends in ``.gz``).

    Checks the magic number (and, if given, that the array has ``expected_ndim``
    dimensions), the header, and that the payload holds exactly the bytes the
    header promises. Returns a uint8 array of the header's shape.
    """
    path = Path(path)
    raw = _read_file_bytes(path)

    if len(raw) < 4:
        raise DataError(f"{path} is too short to be an IDX file. {FIX_CORRUPT_FILE}")
    zero_1, zero_2, type_code, ndim = raw[:4]
    magic_is_valid = (
        zero_1 == 0
        and zero_2 == 0
        and type_code == IDX_UNSIGNED_BYTE
        and ndim >= 1
        and (expected_ndim is None or ndim == expected_ndim)
    )
    if not magic_is_valid:
        if expected_ndim is None:
            expected = "0x000008NN (unsigned bytes, NN dimensions)"
        else:
            expected = f"0x{(IDX_UNSIGNED_BYTE << 8) | expected_ndim:08x}"
        raise DataError(
            f"{path} has magic number 0x{raw[:4].hex()}, expected {expected}: it is "
            f"not the IDX file this name promises. {FIX_CORRUPT_FILE}"
        )

    header_length = 4 + 4 * ndim
    if len(raw) < header_length:
        raise DataError(f"{path} is truncated inside its header. {FIX_CORRUPT_FILE}")
    shape = struct.unpack(f">{ndim}I", raw[4:header_length])

    expected_payload = math.prod(shape)
    actual_payload = len(raw) - header_length
    if actual_payload != expected_payload:
        problem = "truncated" if actual_payload < expected_payload else "too long"
        raise DataError(
            f"{path} is {problem}: its header promises shape {shape}, "
            f"{expected_payload} bytes of data, but it holds {actual_payload}. "
            f"{FIX_CORRUPT_FILE}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_length).reshape(shape)


def _read_file_bytes(path: Path) -> bytes:
    """The file's (decompressed) bytes, with every failure turned into a DataError."""
    compressed = path.suffix == ".gz"
    try:
        if compressed:
            with gzip.open(path, "rb") as file:
                return file.read()
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(
            f"{path} does not exist. Point --data-dir at a folder with the four "
            f"IDX files ({', '.join(IDX_FILES)})."
        ) from None
    # A damaged gzip stream shows up as any of these: BadGzipFile (an OSError)
    # for a bad header or checksum, EOFError for a cut-off stream, zlib.error
    # for garbled compressed data.
    except (OSError, EOFError, zlib.error) as error:
        what = "a gzip file" if compressed else "a file"
        raise DataError(
            f"{path} could not be read as {what} ({error}). {FIX_CORRUPT_FILE}"
        ) from None


def _read_idx_split(images_path: Path, labels_path: Path, num_classes: int):
    """One split from its image and label files: flattened float32 images in
    [0, 1], int64 labels, and the (H, W) image shape."""
    images = read_idx(images_path, expected_ndim=IMAGES_NDIM)
    labels = read_idx(labels_path, expected_ndim=LABELS_NDIM)
    if len(images) == 0:
        raise DataError(f"{images_path} holds no images. {FIX_CORRUPT_FILE}")
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images)} images but {labels_path} holds "
            f"{len(labels)} labels, so the two files do not belong together. "
            f"{FIX_CORRUPT_FILE}"
        )
    if labels.max() >= num_classes:
        raise DataError(
            f"{labels_path} holds label {labels.max()}, but this dataset has "
            f"{num_classes} classes (0..{num_classes - 1}). {FIX_CORRUPT_FILE}"
        )
    count, height, width = images.shape
    x = images.reshape(count, height * width).astype(np.float32) / np.float32(255)
    return x, labels.astype(np.int64), (height, width)


# --------------------------------------------------------------------------
# Where the IDX files come from
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class IdxSource:
    """Where a dataset's IDX files can be downloaded, their SHA-256 sums as
    served there, and an optional system-wide copy to use instead."""

    base_url: str
    sha256: Mapping[str, str]
    system_dir: Path | None = None


IDX_SOURCES: dict[str, IdxSource] = {
    # A mirror of yann.lecun.com/exdb/mnist, which no longer serves the files
    # reliably; the archives are byte-identical, so the sums are the usual ones.
    "mnist": IdxSource(
        base_url="https://ossci-datasets.s3.amazonaws.com/mnist/",
        sha256={
            TRAIN_IMAGES: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            TRAIN_LABELS: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            TEST_IMAGES: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            TEST_LABELS: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
    ),
    # The sums of the archives as Zalando serves them (their README publishes
    # MD5s of the same files). Debian's copy is recompressed, so its .gz bytes
    # have other sums; it is found locally and so never checked against these.
    "fashion-mnist": IdxSource(
        base_url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        sha256={
            TRAIN_IMAGES: "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            TRAIN_LABELS: "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            TEST_IMAGES: "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            TEST_LABELS: "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
        system_dir=Path("/usr/share/datasets/fashion-mnist"),
    ),
}


def _local_copy(folder: Path, filename: str) -> Path | None:
    """The file in ``folder``, gzipped or already unpacked (users often gunzip)."""
    for candidate in (folder / filename, folder / filename.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _locate_idx_files(name: str, data_dir: str | Path | None) -> dict[str, Path]:
    """Paths of the four IDX files, following the lookup order of the module
    docstring and downloading into the cache as the last resort."""
    source = IDX_SOURCES[name]
    cache_folder = default_cache_dir() / name

    user_folders = []
    if data_dir is not None:
        data_dir = Path(data_dir).expanduser()
        user_folders = [data_dir, data_dir / name]
    system_folders = [source.system_dir] if source.system_dir is not None else []

    for folder in user_folders + [cache_folder] + system_folders:
        found = {filename: _local_copy(folder, filename) for filename in IDX_FILES}
        if all(found.values()):
            return found
        # A user folder with only some of the files is a mistake worth reporting;
        # silently downloading elsewhere would hide it. (A partial cache is just
        # an interrupted download, completed below.)
        missing = [filename for filename, path in found.items() if path is None]
        if folder in user_folders and len(missing) < len(IDX_FILES):
            raise DataError(
                f"{folder} holds some of the {name} IDX files but not "
                f"{', '.join(missing)}. Put all four files there: {', '.join(IDX_FILES)}."
            )

    if data_dir is not None:
        print(f"No {name} IDX files in {data_dir}; downloading.", file=sys.stderr)
    download_idx_files(cache_folder, source.base_url, source.sha256)
    return {filename: cache_folder / filename for filename in IDX_FILES}


# --------------------------------------------------------------------------
# Downloading
# --------------------------------------------------------------------------


def download_idx_files(
    folder: Path,
    base_url: str,
    sha256: Mapping[str, str],
    timeout: float = DOWNLOAD_TIMEOUT_SECONDS,
) -> None:
    """Download each of the four IDX files that ``folder`` lacks from
    ``base_url + filename``, checking it against ``sha256[filename]``."""
    folder = Path(folder)
    for filename in IDX_FILES:
        destination = folder / filename
        if destination.is_file():
            continue
        url = base_url.rstrip("/") + "/" + filename
        print(f"Downloading {url} to {destination}", file=sys.stderr)
        download_file(url, destination, sha256[filename], timeout=timeout)


def download_file(
    url: str,
    destination: Path,
    expected_sha256: str | None,
    timeout: float = DOWNLOAD_TIMEOUT_SECONDS,
) -> None:
    """Download ``url`` to ``destination`` if its SHA-256 is ``expected_sha256``.

    ``expected_sha256=None`` is for files whose sum the zoo does not know (UCI
    Adult): the file is kept unchecked, with a warning that says so and prints the
    sum it has, so the user can compare it with a trusted source.

    The bytes go to a temporary file in the destination's folder, which is renamed
    into place only once verified: the rename is atomic on one filesystem, so an
    interrupted or failed download never leaves a file that looks complete.
    """
    folder = destination.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(
            dir=folder, prefix=f".{destination.name}.", suffix=".part"
        )
    except OSError as error:
        raise DataError(f"Cannot write to {folder} ({error}). {_fix_download(folder)}") from None
    temp_path = Path(temp_name)

    try:
        digest = hashlib.sha256()
        try:
            with os.fdopen(handle, "wb") as file, urllib.request.urlopen(
                url, timeout=timeout
            ) as response:
                while chunk := response.read(1 << 20):
                    digest.update(chunk)
                    file.write(chunk)
        # URLError, HTTPError and timeouts are OSErrors; a malformed URL is a ValueError.
        except (OSError, ValueError) as error:
            raise DataError(
                f"Could not download {url} ({error}). {_fix_download(folder)}"
            ) from None

        actual_sha256 = digest.hexdigest()
        if expected_sha256 is None:
            print(
                f"Warning: {url} was not checked against a known SHA-256 (the zoo "
                f"records none for it); its SHA-256 is {actual_sha256}.",
                file=sys.stderr,
            )
        elif actual_sha256 != expected_sha256:
            raise DataError(
                f"The file downloaded from {url} has SHA-256 {actual_sha256}, expected "
                f"{expected_sha256}, so it was discarded. {_fix_download(folder)}"
            )
        os.replace(temp_path, destination)
    finally:
        # After a successful rename there is nothing left to remove.
        temp_path.unlink(missing_ok=True)


def _fix_download(folder: Path) -> str:
    return (
        f"Download the four IDX files ({', '.join(IDX_FILES)}) by hand into "
        f"{folder}/, or pass --data-dir pointing at a folder that holds them."
    )


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    binarize: str = "dynamic",
    seed: int = 0,
    limit_train: int | None = None,
    limit_test: int | None = None,
) -> Dataset:
    """Load a dataset of :data:`DATASETS` under the conventions of the module
    docstring. ``data_dir`` is only used by the IDX datasets; ``seed`` only seeds
    ``binarize="fixed"``."""
    if name not in DATASETS:
        raise DataError(f"Unknown dataset {name!r}; choose one of {', '.join(DATASETS)}.")
    if binarize not in BINARIZE_MODES:
        raise DataError(
            f"Unknown binarize mode {binarize!r}; choose one of {', '.join(BINARIZE_MODES)}."
        )

    if name in TEXT_DATASETS:
        if binarize == "fixed":
            raise DataError(f"{name} is a text dataset of token ids: binarization does not apply. Use --binarize none.")
        from zoo.text import load_text

        return _limited(load_text(name, data_dir), limit_train, limit_test)
    if name in TABULAR_DATASETS:
        # Binarization is a protocol for pixel intensities; a table's columns keep
        # their values. The CLI's default "dynamic" is accepted and means "none".
        if binarize == "fixed":
            raise DataError(
                f"{name} is a table of standardised and one-hot columns: binarization does "
                "not apply. Use --binarize none."
            )
        dataset = load_adult(data_dir)
        return _limited(dataset, limit_train, limit_test)
    if name == "digits":
        dataset = _load_digits()
    else:
        dataset = _load_idx_dataset(name, data_dir)
    dataset = _binarized(dataset, binarize, seed)
    return _limited(dataset, limit_train, limit_test)


def _load_digits() -> Dataset:
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)  # pixel counts run from 0 to 16
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=DIGITS_TEST_SIZE, stratify=y, random_state=DIGITS_SPLIT_SEED
    )
    return Dataset(
        name="digits",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        image_shape=(8, 8),
        num_classes=10,
        binarize="none",
    )


def _load_idx_dataset(name: str, data_dir: str | Path | None) -> Dataset:
    num_classes = 10
    paths = _locate_idx_files(name, data_dir)
    x_train, y_train, train_shape = _read_idx_split(
        paths[TRAIN_IMAGES], paths[TRAIN_LABELS], num_classes
    )
    x_test, y_test, test_shape = _read_idx_split(
        paths[TEST_IMAGES], paths[TEST_LABELS], num_classes
    )
    if train_shape != test_shape:
        raise DataError(
            f"{paths[TRAIN_IMAGES]} holds {train_shape} images but "
            f"{paths[TEST_IMAGES]} holds {test_shape} images; the files come from "
            f"different datasets. {FIX_CORRUPT_FILE}"
        )
    return Dataset(
        name=name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        image_shape=train_shape,
        num_classes=num_classes,
        binarize="none",
    )


def binarize_fixed(x: np.ndarray, seed: int) -> np.ndarray:
    """One Bernoulli(x) draw per pixel, seeded: float32 zeros and ones."""
    rng = np.random.Generator(np.random.PCG64(seed))
    uniforms = rng.random(x.shape, dtype=np.float32)
    return (uniforms < x).astype(np.float32)


def _binarized(dataset: Dataset, mode: str, seed: int) -> Dataset:
    if mode == "none":
        x_train, x_test = dataset.x_train, dataset.x_test
    elif mode == "dynamic":
        x_train = dataset.x_train  # sampled afresh per minibatch by the training loop
        x_test = binarize_fixed(dataset.x_test, TEST_BINARIZATION_SEED)
    else:  # "fixed"
        # seed + 1 for the test set, so its draw does not reuse the train draw's
        # uniforms pixel for pixel.
        x_train = binarize_fixed(dataset.x_train, seed)
        x_test = binarize_fixed(dataset.x_test, seed + 1)
    return dataclasses.replace(dataset, x_train=x_train, x_test=x_test, binarize=mode)


def _limited(dataset: Dataset, limit_train: int | None, limit_test: int | None) -> Dataset:
    keep_train = _subset_index(len(dataset.x_train), limit_train, "limit_train")
    keep_test = _subset_index(len(dataset.x_test), limit_test, "limit_test")
    changes = {
        "x_train": dataset.x_train[keep_train],
        "y_train": dataset.y_train[keep_train],
        "x_test": dataset.x_test[keep_test],
        "y_test": dataset.y_test[keep_test],
    }
    # Per-example arrays beside x and y follow the same rows.
    if dataset.s_train is not None:
        changes.update(s_train=dataset.s_train[keep_train], s_test=dataset.s_test[keep_test])
    if dataset.labelled is not None:
        changes.update(labelled=dataset.labelled[keep_train])
    return dataclasses.replace(dataset, **changes)


def _subset_index(count: int, limit: int | None, option: str):
    """Rows of at most ``limit`` examples out of ``count``: a fixed random subset, in
    the original order (a full slice when there is no limit)."""
    if limit is None:
        return slice(None)
    if limit < 1:
        raise DataError(f"{option} must be a positive number of examples, got {limit}.")
    if limit >= count:
        return slice(None)
    rng = np.random.Generator(np.random.PCG64(SUBSET_SEED))
    return np.sort(rng.choice(count, size=limit, replace=False))


def _random_subset(x: np.ndarray, y: np.ndarray, limit: int | None, option: str):
    """At most ``limit`` examples: a fixed random subset, in the original order."""
    keep = _subset_index(len(x), limit, option)
    return x[keep], y[keep]


# --------------------------------------------------------------------------
# Model selection: a validation split carved from the training data
# --------------------------------------------------------------------------


def validation_split(dataset: Dataset, num_validation: int, seed: int = 0) -> Dataset:
    """Hold out ``num_validation`` training examples and make them the test set.

    Hyperparameters are chosen on these rows, never on the test set (VARIANTS.md
    §19, item 10): a run trained on the returned dataset is scored on training
    images it never saw. The rows are a random subset drawn with ``seed``; the
    training set keeps the rest, in order. Apply it before ``one_class_split`` and
    ``select_labelled`` so that both act on the reduced training set.
    """
    count = len(dataset.x_train)
    if not 0 < num_validation < count:
        raise DataError(
            f"a validation split of {num_validation} rows needs 1..{count - 1} of the "
            f"{count} training examples of {dataset.name}."
        )
    rng = np.random.default_rng([SUBSET_SEED, seed])
    held_out = np.zeros(count, dtype=bool)
    held_out[rng.choice(count, size=num_validation, replace=False)] = True
    changes = {
        "x_train": dataset.x_train[~held_out],
        "y_train": dataset.y_train[~held_out],
        "x_test": dataset.x_train[held_out],
        "y_test": dataset.y_train[held_out],
    }
    if dataset.s_train is not None:
        changes.update(s_train=dataset.s_train[~held_out], s_test=dataset.s_train[held_out])
    if dataset.labelled is not None:
        changes.update(labelled=dataset.labelled[~held_out])
    return dataclasses.replace(dataset, **changes)


# --------------------------------------------------------------------------
# Anomaly detection
# --------------------------------------------------------------------------


def one_class_split(dataset: Dataset, normal_class: int) -> Dataset:
    """The one-class anomaly-detection protocol: train on the training images of
    ``normal_class`` only, test on the whole test set.

    Labels become anomaly indicators in both splits: 0 for ``normal_class``, 1 for
    every other class, so ``num_classes`` becomes 2.
    """
    if dataset.normal_class is not None:
        raise DataError(
            f"{dataset.name} is already a one-class split (normal class "
            f"{dataset.normal_class}); split the original dataset instead."
        )
    if not 0 <= normal_class < dataset.num_classes:
        raise DataError(
            f"normal_class {normal_class} is out of range; {dataset.name} has classes "
            f"0..{dataset.num_classes - 1}."
        )
    is_normal_train = dataset.y_train == normal_class
    per_example = {}
    if dataset.s_train is not None:
        per_example["s_train"] = dataset.s_train[is_normal_train]
    if dataset.labelled is not None:
        per_example["labelled"] = dataset.labelled[is_normal_train]
    return dataclasses.replace(
        dataset,
        **per_example,
        x_train=dataset.x_train[is_normal_train],
        y_train=np.zeros(int(is_normal_train.sum()), dtype=np.int64),
        y_test=(dataset.y_test != normal_class).astype(np.int64),
        num_classes=2,
        normal_class=normal_class,
    )


# --------------------------------------------------------------------------
# Semi-supervised learning: which training labels the model sees
# --------------------------------------------------------------------------


def select_labelled(dataset: Dataset, num_labelled: int, seed: int) -> Dataset:
    """Mark ``num_labelled`` training examples as labelled, balanced over the
    classes and drawn with ``seed``; the others become unlabelled.

    Each class gets ``num_labelled // num_classes`` examples; the remainder goes
    one each to classes picked at random (same seed). The labels of the unlabelled
    examples stay in ``y_train`` (evaluation needs them); ``dataset.labelled`` says
    which ones a model may train on.
    """
    count = len(dataset.y_train)
    if num_labelled < 1:
        raise DataError(f"--labels must be a positive number of examples, got {num_labelled}.")
    if num_labelled > count:
        raise DataError(
            f"--labels {num_labelled} asks for more labelled examples than the {dataset.name} "
            f"training set holds ({count}, after --limit-train). Use at most {count}."
        )
    rng = np.random.default_rng(seed)
    classes = np.arange(dataset.num_classes)
    quota = np.full(dataset.num_classes, num_labelled // dataset.num_classes)
    quota[rng.permutation(classes)[: num_labelled % dataset.num_classes]] += 1
    labelled = np.zeros(count, dtype=bool)
    for label in classes:
        members = np.flatnonzero(dataset.y_train == label)
        if len(members) < quota[label]:
            raise DataError(
                f"--labels {num_labelled} needs {quota[label]} labelled examples of class "
                f"{label}, but the {dataset.name} training set holds {len(members)}. "
                "Ask for fewer labels or a larger --limit-train."
            )
        labelled[rng.choice(members, size=quota[label], replace=False)] = True
    return dataclasses.replace(dataset, labelled=labelled)


def oversampled_rows(labelled: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Row indices of a training set in which the labelled rows are repeated until
    they make up about ``fraction`` of it: every minibatch of a random permutation
    then holds about ``fraction * B`` labelled rows (VARIANTS.md §3b Corrections).

    Each labelled row appears ``r`` or ``r + 1`` times (the extra copies drawn with
    ``seed``), every unlabelled row once, in the original order. Per-row loss weights
    are not changed, so the labelled terms weigh ``r`` times more per epoch. With
    ``fraction`` 0, or when the labelled share already reaches it, nothing repeats.
    """
    labelled = np.asarray(labelled, dtype=bool)
    num_labelled, num_unlabelled = int(labelled.sum()), int((~labelled).sum())
    if not 0.0 <= fraction < 1.0:
        raise DataError(f"the labelled fraction must lie in [0, 1), got {fraction}.")
    if fraction == 0.0 or num_labelled == 0 or num_labelled >= fraction * len(labelled):
        return np.arange(len(labelled))
    # copies * N_l / (copies * N_l + N_u) = fraction
    copies = fraction * num_unlabelled / ((1.0 - fraction) * num_labelled)
    repeats = np.full(len(labelled), 1)
    whole = int(np.floor(copies))
    rows = np.flatnonzero(labelled)
    repeats[rows] = whole
    extra = int(round((copies - whole) * num_labelled))
    repeats[np.random.default_rng(seed).choice(rows, size=extra, replace=False)] += 1
    return np.repeat(np.arange(len(labelled)), repeats)


# --------------------------------------------------------------------------
# Fair representations: a sensitive attribute per example
# --------------------------------------------------------------------------

# The offline nuisance task (synthetic_nuisance): a constant seed, so every run
# and both backends see the same s; and how strongly s follows the class.
NUISANCE_SEED = 7
NUISANCE_PROBABILITY = (0.25, 0.75)  # P(s=1) for the lower / upper half of the classes


def synthetic_nuisance(
    dataset: Dataset, probability: tuple[float, float] = NUISANCE_PROBABILITY, seed: int = NUISANCE_SEED
) -> Dataset:
    """An image task with a visible, label-correlated nuisance ``s`` (offline, no download).

    ``s = 1`` images get a white frame: their border pixels are set to 1. ``s`` is
    drawn per image with ``P(s=1) = probability[0]`` for the classes
    ``0..C/2-1`` and ``probability[1]`` for the others, so ``s`` is correlated with
    the label as sex is with income in Adult, and a representation that keeps the
    frame lets a classifier read ``s`` off at once. This is a synthetic stand-in
    for the paper's fairness data sets, not one of them.
    """
    if dataset.name in TABULAR_DATASETS:
        raise DataError(f"{dataset.name} is a table; the synthetic frame nuisance needs images.")
    rng = np.random.default_rng(seed)

    def draw(x, y):
        upper = y >= dataset.num_classes / 2
        s = (rng.random(len(y)) < np.where(upper, probability[1], probability[0])).astype(np.int64)
        framed = x.reshape(len(x), *dataset.image_shape).copy()
        border = np.ones(dataset.image_shape, dtype=bool)
        border[1:-1, 1:-1] = False
        framed[s == 1] = np.where(border, np.float32(1), framed[s == 1])
        return framed.reshape(x.shape), s

    x_train, s_train = draw(dataset.x_train, dataset.y_train)
    x_test, s_test = draw(dataset.x_test, dataset.y_test)
    return dataclasses.replace(
        dataset, x_train=x_train, x_test=x_test, s_train=s_train, s_test=s_test, sensitive="frame"
    )


def sensitive_attributes(dataset: Dataset) -> tuple[str, ...]:
    """The sensitive attributes ``with_sensitive`` offers for ``dataset``."""
    if dataset.sensitive is not None:
        return (dataset.sensitive,)
    return () if dataset.name in TABULAR_DATASETS else ("frame",)


def with_sensitive(dataset: Dataset, name: str) -> Dataset:
    """``dataset`` with the binary sensitive attribute ``name`` in ``s_train``/``s_test``.

    Tables bring their own (Adult: ``"sex"``); image datasets offer the synthetic
    ``"frame"`` nuisance of :func:`synthetic_nuisance`.
    """
    available = sensitive_attributes(dataset)
    if name not in available:
        raise DataError(
            f"unknown sensitive attribute {name!r} for {dataset.name}; it offers "
            f"{', '.join(available) or 'none'} (set it with --set sensitive=NAME)."
        )
    if dataset.sensitive == name:
        return dataset
    return synthetic_nuisance(dataset)


# --------------------------------------------------------------------------
# UCI Adult (census income)
# --------------------------------------------------------------------------

ADULT_BASE_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/adult/"
ADULT_TRAIN, ADULT_TEST = "adult.data", "adult.test"
# The zoo records no SHA-256 for these files (none could be checked when this
# loader was written), so downloads are kept unchecked with a warning that prints
# their sums. Fill in the values to have them verified like the IDX files.
ADULT_SHA256: dict[str, str | None] = {ADULT_TRAIN: None, ADULT_TEST: None}

ADULT_COLUMNS = (
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
    "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
    "hours-per-week", "native-country", "income",
)
ADULT_NUMERIC = ("age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week")
ADULT_CATEGORICAL = ("workclass", "education", "marital-status", "occupation", "relationship", "race", "native-country")
ADULT_SENSITIVE = "sex"  # s = 1 for "Female", 0 for "Male"
ADULT_POSITIVE = ">50K"  # y = 1 when the income is above 50K


def _locate_adult_files(data_dir: str | Path | None) -> dict[str, Path]:
    """``adult.data`` and ``adult.test`` in ``data_dir`` (or ``data_dir/adult``),
    then in the cache; downloaded into the cache when neither holds them."""
    cache_folder = default_cache_dir() / "adult"
    folders = []
    if data_dir is not None:
        data_dir = Path(data_dir).expanduser()
        folders = [data_dir, data_dir / "adult"]
    for folder in folders + [cache_folder]:
        found = {name: folder / name for name in (ADULT_TRAIN, ADULT_TEST)}
        if all(path.is_file() for path in found.values()):
            return found
    for name in (ADULT_TRAIN, ADULT_TEST):
        destination = cache_folder / name
        if not destination.is_file():
            url = ADULT_BASE_URL + name
            print(f"Downloading {url} to {destination}", file=sys.stderr)
            try:
                download_file(url, destination, ADULT_SHA256[name])
            except DataError as error:
                raise DataError(
                    f"{error} (For Adult: put {ADULT_TRAIN} and {ADULT_TEST} from "
                    f"{ADULT_BASE_URL} into {cache_folder}/ or a --data-dir.)"
                ) from None
    return {name: cache_folder / name for name in (ADULT_TRAIN, ADULT_TEST)}


def read_adult_rows(path: Path) -> list[list[str]]:
    """The records of an Adult file: 15 stripped fields each.

    Blank lines and the ``|`` comment line that opens ``adult.test`` are skipped,
    and the test file's trailing full stop on the income (``>50K.``) is removed.
    """
    try:
        text = Path(path).read_text(encoding="ascii", errors="strict")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path} could not be read as the Adult text file ({error}).") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("|"):
            continue
        fields = [field.strip() for field in line.split(",")]
        if len(fields) != len(ADULT_COLUMNS):
            raise DataError(
                f"{path}, line {number}: {len(fields)} comma-separated fields, expected "
                f"{len(ADULT_COLUMNS)}; it is not an Adult file. Delete it to re-download."
            )
        fields[-1] = fields[-1].rstrip(".")
        if fields[-1] not in (ADULT_POSITIVE, "<=50K"):
            raise DataError(f"{path}, line {number}: income {fields[-1]!r} is neither '>50K' nor '<=50K'.")
        if fields[ADULT_COLUMNS.index(ADULT_SENSITIVE)] not in ("Female", "Male"):
            raise DataError(f"{path}, line {number}: sex {fields[9]!r} is neither 'Female' nor 'Male'.")
        rows.append(fields)
    if not rows:
        raise DataError(f"{path} holds no Adult records. Delete it to re-download.")
    return rows


def load_adult(data_dir: str | Path | None = None) -> Dataset:
    """UCI Adult as a Dataset: x the other 13 attributes, y = income > 50K, s = sex.

    Categorical attributes are one-hot encoded over the categories of the training
    file (sorted; ``?``, a missing value, is a category of its own, so no row is
    dropped; a test category unseen in training encodes as all zeros). Numeric
    attributes are standardised with the training mean and standard deviation.
    The columns are neither in [0, 1] nor binary: fit them with a Gaussian
    likelihood. ``image_shape`` is ``(1, D)``, so pictures show a row per record.
    """
    paths = _locate_adult_files(data_dir)
    train_rows = read_adult_rows(paths[ADULT_TRAIN])
    test_rows = read_adult_rows(paths[ADULT_TEST])
    column = {name: i for i, name in enumerate(ADULT_COLUMNS)}
    categories = {name: sorted({row[column[name]] for row in train_rows}) for name in ADULT_CATEGORICAL}

    def numeric(rows):
        try:
            return np.array([[float(row[column[name]]) for name in ADULT_NUMERIC] for row in rows])
        except ValueError as error:
            raise DataError(f"a numeric Adult attribute is not a number ({error}).") from None

    train_numeric = numeric(train_rows)
    mean, std = train_numeric.mean(0), train_numeric.std(0)
    std[std == 0] = 1.0

    def encode(rows):
        parts = [(numeric(rows) - mean) / std]
        for name in ADULT_CATEGORICAL:
            index = {value: i for i, value in enumerate(categories[name])}
            one_hot = np.zeros((len(rows), len(index)))
            for r, row in enumerate(rows):
                if row[column[name]] in index:
                    one_hot[r, index[row[column[name]]]] = 1.0
            parts.append(one_hot)
        x = np.concatenate(parts, axis=1).astype(np.float32)
        y = np.array([row[-1] == ADULT_POSITIVE for row in rows], dtype=np.int64)
        s = np.array([row[column[ADULT_SENSITIVE]] == "Female" for row in rows], dtype=np.int64)
        return x, y, s

    x_train, y_train, s_train = encode(train_rows)
    x_test, y_test, s_test = encode(test_rows)
    return Dataset(
        name="adult",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        image_shape=(1, x_train.shape[1]),
        num_classes=2,
        binarize="none",
        sensitive=ADULT_SENSITIVE,
        s_train=s_train,
        s_test=s_test,
    )


# --------------------------------------------------------------------------
# The quadrant-completion task (conditional generation)
# --------------------------------------------------------------------------

# Quadrants revealed in this order as inputs, as in Pyro's CVAE tutorial: one
# given quadrant is the bottom-left, two the left half, three all but bottom-right.
QUADRANT_ORDER = ("bottom-left", "top-left", "top-right", "bottom-right")


def square_image_shape(x_dim: int) -> tuple[int, int]:
    """``(H, W)`` of a flattened square image of ``x_dim`` pixels."""
    side = math.isqrt(x_dim)
    if side * side != x_dim or side < 2:
        raise DataError(
            f"the quadrant task needs square images; {x_dim} values per example are not a "
            "square picture (use an image dataset: digits, mnist, fashion-mnist)."
        )
    return side, side


def quadrant_mask(image_shape: tuple[int, int], given: int) -> np.ndarray:
    """Boolean mask of the flattened image, True on the ``given`` input quadrants
    (:data:`QUADRANT_ORDER`); the rest of the image is the output to predict."""
    if given not in (1, 2, 3):
        raise DataError(f"the number of given quadrants must be 1, 2 or 3, got {given}")
    height, width = image_shape
    top, left = np.zeros((height, width), dtype=bool), np.zeros((height, width), dtype=bool)
    top[: height // 2], left[:, : width // 2] = True, True
    quadrant = {
        "bottom-left": ~top & left,
        "top-left": top & left,
        "top-right": top & ~left,
        "bottom-right": ~top & ~left,
    }
    mask = np.zeros((height, width), dtype=bool)
    for name in QUADRANT_ORDER[:given]:
        mask |= quadrant[name]
    return mask.reshape(-1)


def check_likelihood(dataset: Dataset, likelihood: str) -> None:
    """A Bernoulli likelihood scores values in [0, 1] only; say so before training
    on a table of standardised columns (Adult)."""
    if likelihood == "bernoulli" and (dataset.x_train.min() < 0 or dataset.x_train.max() > 1):
        raise DataError(
            f"{dataset.name} has values outside [0, 1], which a Bernoulli likelihood cannot "
            "score; use --likelihood gaussian."
        )
