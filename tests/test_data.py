"""Tests of zoo/data.py: digits, the IDX reader, the file lookup, downloads,
binarization and the one-class split. IDX data is synthetic, written to tmp_path;
no test touches the network or the user's cache."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import re
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

from zoo import data
from zoo.data import DataError, IdxSource, load_dataset

SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

# SHA-256 of the *decompressed* Fashion-MNIST IDX files, as published by several
# independent projects. Debian recompresses the archives (the .gz bytes differ
# from Zalando's), so the decompressed content is what identifies its copy.
FASHION_MNIST_CONTENT_SHA256 = {
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets an empty cache, and downloads from the real URLs fail at
    once (a missing local folder), so no test can reach the network by mistake."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("VAEZOO_DATA", str(cache))
    unreachable = (tmp_path / "no-such-server").as_uri() + "/"
    for name, source in list(data.IDX_SOURCES.items()):
        monkeypatch.setitem(
            data.IDX_SOURCES, name, IdxSource(unreachable, source.sha256, source.system_dir)
        )
    return cache


# --------------------------------------------------------------------------
# Synthetic IDX files
# --------------------------------------------------------------------------


def idx_bytes(array: np.ndarray, magic: bytes | None = None) -> bytes:
    """An uint8 array in IDX format: magic number, big-endian dims, then the data."""
    if magic is None:
        magic = bytes([0, 0, 0x08, array.ndim])
    header = magic + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, magic: bytes | None = None) -> Path:
    content = idx_bytes(array, magic)
    path.write_bytes(gzip.compress(content) if path.suffix == ".gz" else content)
    return path


def make_split(rng: np.random.Generator, count: int):
    images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
    labels = np.arange(count, dtype=np.uint8) % 10
    return images, labels


@pytest.fixture
def idx_arrays():
    rng = np.random.default_rng(7)
    train_images, train_labels = make_split(rng, 20)
    test_images, test_labels = make_split(rng, 10)
    return {
        data.TRAIN_IMAGES: train_images,
        data.TRAIN_LABELS: train_labels,
        data.TEST_IMAGES: test_images,
        data.TEST_LABELS: test_labels,
    }


def write_idx_folder(folder: Path, arrays: dict[str, np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for filename, array in arrays.items():
        write_idx(folder / filename, array)
    return folder


def assert_matches_arrays(dataset, arrays):
    expected_x_train = arrays[data.TRAIN_IMAGES].reshape(20, 784) / 255
    np.testing.assert_allclose(dataset.x_train, expected_x_train, rtol=1e-6)
    np.testing.assert_array_equal(dataset.y_train, arrays[data.TRAIN_LABELS])
    np.testing.assert_allclose(
        dataset.x_test, arrays[data.TEST_IMAGES].reshape(10, 784) / 255, rtol=1e-6
    )
    np.testing.assert_array_equal(dataset.y_test, arrays[data.TEST_LABELS])


def is_binary(x: np.ndarray) -> bool:
    return bool(np.all((x == 0) | (x == 1)))


# --------------------------------------------------------------------------
# digits
# --------------------------------------------------------------------------


def test_digits_shapes_types_and_range():
    dataset = load_dataset("digits", binarize="none")
    assert dataset.x_train.shape == (1437, 64)
    assert dataset.x_test.shape == (360, 64)
    assert dataset.y_train.shape == (1437,) and dataset.y_test.shape == (360,)
    assert dataset.x_train.dtype == np.float32 and dataset.y_train.dtype == np.int64
    assert dataset.x_train.min() == 0.0 and dataset.x_train.max() == 1.0
    assert dataset.image_shape == (8, 8) and dataset.x_dim == 64
    assert dataset.num_classes == 10
    assert set(np.unique(dataset.y_train)) == set(range(10))
    assert set(np.unique(dataset.y_test)) == set(range(10))
    assert dataset.binarize == "none" and dataset.normal_class is None


def test_digits_split_is_stratified_and_deterministic():
    first = load_dataset("digits", binarize="none", seed=0)
    second = load_dataset("digits", binarize="none", seed=5)  # seed must not move it
    np.testing.assert_array_equal(first.x_train, second.x_train)
    np.testing.assert_array_equal(first.y_test, second.y_test)
    # Stratified: each class holds 36 +/- 1 of the 360 test images.
    counts = np.bincount(first.y_test, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37


def test_dynamic_binarizes_only_the_test_set_with_a_constant_seed():
    dataset = load_dataset("digits", binarize="dynamic", seed=0)
    assert dataset.binarize == "dynamic"
    assert is_binary(dataset.x_test)
    assert not is_binary(dataset.x_train)  # grey levels, sampled per minibatch later
    other_seed = load_dataset("digits", binarize="dynamic", seed=9)
    np.testing.assert_array_equal(dataset.x_test, other_seed.x_test)


def test_fixed_binarizes_both_sets_reproducibly_per_seed():
    dataset = load_dataset("digits", binarize="fixed", seed=1)
    assert is_binary(dataset.x_train) and is_binary(dataset.x_test)
    assert dataset.x_train.dtype == np.float32
    again = load_dataset("digits", binarize="fixed", seed=1)
    np.testing.assert_array_equal(dataset.x_train, again.x_train)
    np.testing.assert_array_equal(dataset.x_test, again.x_test)
    other = load_dataset("digits", binarize="fixed", seed=2)
    assert not np.array_equal(dataset.x_train, other.x_train)
    assert not np.array_equal(dataset.x_test, other.x_test)


def test_none_keeps_grey_levels():
    dataset = load_dataset("digits", binarize="none")
    assert not is_binary(dataset.x_train) and not is_binary(dataset.x_test)


def test_binarize_fixed_draws_bernoulli_of_the_intensity():
    x = np.tile(np.array([0.0, 0.3, 1.0], dtype=np.float32), (20000, 1))
    draw = data.binarize_fixed(x, seed=0)
    assert draw.dtype == np.float32 and is_binary(draw)
    assert draw[:, 0].max() == 0.0 and draw[:, 2].min() == 1.0
    assert abs(draw[:, 1].mean() - 0.3) < 0.015
    np.testing.assert_array_equal(draw, data.binarize_fixed(x, seed=0))


def test_limits_take_a_fixed_ordered_subset():
    full = load_dataset("digits", binarize="none")
    limited = load_dataset("digits", binarize="none", limit_train=100, limit_test=50, seed=3)
    assert limited.x_train.shape == (100, 64) and limited.x_test.shape == (50, 64)
    assert len(np.unique(limited.y_train)) == 10  # a random subset, not a biased block
    # Every kept row is a row of the full set, in the original order.
    full_rows = {row.tobytes(): index for index, row in enumerate(full.x_train)}
    positions = [full_rows[row.tobytes()] for row in limited.x_train]
    assert positions == sorted(positions)
    same = load_dataset("digits", binarize="none", limit_train=100, seed=4)
    np.testing.assert_array_equal(limited.x_train, same.x_train)
    # A limit larger than the set keeps everything.
    assert load_dataset("digits", limit_test=10_000).x_test.shape == (360, 64)


def test_limit_does_not_change_the_binarized_test_images():
    full = load_dataset("digits", binarize="dynamic")
    limited = load_dataset("digits", binarize="dynamic", limit_test=50)
    full_rows = {row.tobytes() for row in full.x_test}
    assert all(row.tobytes() in full_rows for row in limited.x_test)


@pytest.mark.parametrize("limit", [0, -3])
def test_non_positive_limit_is_a_data_error(limit):
    with pytest.raises(DataError, match="limit_train"):
        load_dataset("digits", limit_train=limit)


def test_unknown_names_list_the_choices():
    with pytest.raises(DataError, match="digits, mnist, fashion-mnist"):
        load_dataset("cifar10")
    with pytest.raises(DataError, match="none, dynamic, fixed"):
        load_dataset("digits", binarize="stochastic")


# --------------------------------------------------------------------------
# IDX files found locally
# --------------------------------------------------------------------------


def test_idx_files_round_trip_from_data_dir(tmp_path, idx_arrays):
    folder = write_idx_folder(tmp_path / "idx", idx_arrays)
    dataset = load_dataset("mnist", data_dir=folder, binarize="none")
    assert dataset.name == "mnist" and dataset.image_shape == (28, 28)
    assert dataset.x_train.dtype == np.float32 and dataset.y_train.dtype == np.int64
    assert_matches_arrays(dataset, idx_arrays)


def test_idx_files_in_a_named_subfolder_or_unpacked(tmp_path, idx_arrays):
    write_idx_folder(tmp_path / "root" / "fashion-mnist", idx_arrays)
    dataset = load_dataset("fashion-mnist", data_dir=tmp_path / "root", binarize="none")
    assert_matches_arrays(dataset, idx_arrays)

    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    for filename, array in idx_arrays.items():
        write_idx(unpacked / filename.removesuffix(".gz"), array)
    assert_matches_arrays(load_dataset("mnist", data_dir=unpacked, binarize="none"), idx_arrays)


def test_idx_files_found_in_the_cache(isolated_cache, idx_arrays):
    write_idx_folder(isolated_cache / "mnist", idx_arrays)
    assert_matches_arrays(load_dataset("mnist", binarize="none"), idx_arrays)


def test_dynamic_binarization_of_idx_data(tmp_path, idx_arrays):
    folder = write_idx_folder(tmp_path / "idx", idx_arrays)
    dataset = load_dataset("mnist", data_dir=folder, binarize="dynamic")
    assert is_binary(dataset.x_test) and not is_binary(dataset.x_train)


def test_a_partial_data_dir_names_the_missing_file(tmp_path, idx_arrays):
    folder = write_idx_folder(tmp_path / "idx", idx_arrays)
    (folder / data.TEST_LABELS).unlink()
    with pytest.raises(DataError) as error:
        load_dataset("mnist", data_dir=folder)
    assert str(folder) in str(error.value) and data.TEST_LABELS in str(error.value)


def test_image_and_label_counts_must_agree(tmp_path, idx_arrays):
    idx_arrays[data.TRAIN_LABELS] = idx_arrays[data.TRAIN_LABELS][:19]
    folder = write_idx_folder(tmp_path / "idx", idx_arrays)
    with pytest.raises(DataError, match="20 images.*19 labels"):
        load_dataset("mnist", data_dir=folder)


def test_labels_out_of_range_are_rejected(tmp_path, idx_arrays):
    idx_arrays[data.TEST_LABELS] = idx_arrays[data.TEST_LABELS] + 10
    folder = write_idx_folder(tmp_path / "idx", idx_arrays)
    with pytest.raises(DataError, match=re.escape(str(folder / data.TEST_LABELS))):
        load_dataset("mnist", data_dir=folder)


# --------------------------------------------------------------------------
# The IDX reader on damaged files
# --------------------------------------------------------------------------


def test_read_idx_returns_the_array(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(data.read_idx(write_idx(tmp_path / "a.gz", images)), images)
    np.testing.assert_array_equal(data.read_idx(write_idx(tmp_path / "a", images)), images)


def assert_data_error_names(path: Path, read=data.read_idx):
    with pytest.raises(DataError) as error:
        read(path)
    assert str(path) in str(error.value)
    return str(error.value)


def test_truncated_payload(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    content = idx_bytes(np.zeros((5, 28, 28), dtype=np.uint8))
    path.write_bytes(gzip.compress(content[:-100]))
    assert "truncated" in assert_data_error_names(path)


def test_truncated_gzip_stream(tmp_path):
    path = write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.ones((50, 28, 28)))
    path.write_bytes(path.read_bytes()[:-30])
    assert "re-download" in assert_data_error_names(path)


def test_truncated_header(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    assert "header" in assert_data_error_names(path)


def test_wrong_magic_number(tmp_path):
    garbage = write_idx(tmp_path / "x.gz", np.zeros((2, 2, 2)), magic=b"\x12\x34\x08\x03")
    assert "0x12340803" in assert_data_error_names(garbage)
    # A label file where images are expected: a valid IDX file, but the wrong one.
    labels = write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(5))
    message = assert_data_error_names(
        labels, read=lambda path: data.read_idx(path, expected_ndim=3)
    )
    assert "0x00000801" in message and "0x00000803" in message


def test_missing_file(tmp_path):
    assert_data_error_names(tmp_path / "t10k-labels-idx1-ubyte.gz")


def test_file_named_gz_that_is_not_gzip(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8)))  # not compressed
    assert "gzip" in assert_data_error_names(path)


def test_damaged_files_are_reported_through_load_dataset(tmp_path, idx_arrays):
    folder = write_idx_folder(tmp_path / "idx", idx_arrays)
    damaged = folder / data.TEST_IMAGES
    damaged.write_bytes(b"<html>Not Found</html>")
    with pytest.raises(DataError, match=re.escape(str(damaged))):
        load_dataset("mnist", data_dir=folder)


# --------------------------------------------------------------------------
# Downloads
# --------------------------------------------------------------------------


@pytest.fixture
def served_folder(tmp_path, idx_arrays):
    """A folder of IDX files to download from, and their true SHA-256 sums."""
    folder = write_idx_folder(tmp_path / "server", idx_arrays)
    sha256 = {f: hashlib.sha256((folder / f).read_bytes()).hexdigest() for f in data.IDX_FILES}
    return folder, sha256


def assert_no_partial_files(folder: Path):
    leftovers = [p.name for p in folder.iterdir()] if folder.exists() else []
    assert not [name for name in leftovers if name.endswith(".part")], leftovers


def test_download_into_the_cache_then_reuse_it(
    monkeypatch, isolated_cache, served_folder, idx_arrays
):
    folder, sha256 = served_folder
    monkeypatch.setitem(data.IDX_SOURCES, "mnist", IdxSource(folder.as_uri() + "/", sha256))
    dataset = load_dataset("mnist", binarize="none")
    assert_matches_arrays(dataset, idx_arrays)
    cached = isolated_cache / "mnist"
    assert sorted(p.name for p in cached.iterdir()) == sorted(data.IDX_FILES)

    # The server is gone: the second load must come from the cache.
    for path in folder.iterdir():
        path.unlink()
    assert_matches_arrays(load_dataset("mnist", binarize="none"), idx_arrays)


def test_download_over_http(tmp_path, served_folder):
    folder, sha256 = served_folder
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None  # keep the test output quiet
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        destination = tmp_path / "downloaded"
        base_url = f"http://127.0.0.1:{server.server_address[1]}/"
        data.download_idx_files(destination, base_url, sha256, timeout=5)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    for filename in data.IDX_FILES:
        assert (destination / filename).read_bytes() == (folder / filename).read_bytes()


def test_a_wrong_checksum_raises_and_leaves_no_file(tmp_path, served_folder):
    folder, sha256 = served_folder
    sha256[data.TRAIN_LABELS] = "0" * 64
    destination = tmp_path / "downloaded"
    with pytest.raises(DataError) as error:
        data.download_idx_files(destination, folder.as_uri(), sha256)
    message = str(error.value)
    assert folder.as_uri() + "/" + data.TRAIN_LABELS in message and "SHA-256" in message
    assert not (destination / data.TRAIN_LABELS).exists()
    assert_no_partial_files(destination)


def test_an_unreachable_server_names_the_url_and_the_fix(isolated_cache):
    with pytest.raises(DataError) as error:
        load_dataset("mnist")
    message = str(error.value)
    assert data.IDX_SOURCES["mnist"].base_url + data.TRAIN_IMAGES in message
    assert str(isolated_cache / "mnist") in message and "--data-dir" in message
    assert_no_partial_files(isolated_cache / "mnist")


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("VAEZOO_DATA", str(tmp_path / "elsewhere"))
    assert data.default_cache_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("VAEZOO_DATA")
    assert data.default_cache_dir() == Path.home() / ".cache" / "vaezoo"


def test_checksum_constants_are_well_formed():
    # A mistyped sum would make every real download fail.
    for source in data.IDX_SOURCES.values():
        assert set(source.sha256) == set(data.IDX_FILES)
        for digest in source.sha256.values():
            assert re.fullmatch(r"[0-9a-f]{64}", digest), digest


# --------------------------------------------------------------------------
# The system copy of Fashion-MNIST
# --------------------------------------------------------------------------


@pytest.mark.skipif(not SYSTEM_FASHION_MNIST.is_dir(), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_system_copy():
    # The download URLs are unreachable here (isolated_cache), so this load can
    # only succeed through the system copy.
    dataset = load_dataset("fashion-mnist", binarize="none", limit_test=1000)
    assert dataset.x_train.shape == (60000, 784) and dataset.x_test.shape == (1000, 784)
    assert dataset.image_shape == (28, 28)
    assert 0.0 <= dataset.x_train.min() and dataset.x_train.max() <= 1.0
    assert np.array_equal(np.bincount(dataset.y_train), np.full(10, 6000))
    # The copy holds the official images: its decompressed files are the published ones.
    for filename, expected in FASHION_MNIST_CONTENT_SHA256.items():
        content = gzip.decompress((SYSTEM_FASHION_MNIST / filename).read_bytes())
        assert hashlib.sha256(content).hexdigest() == expected, filename


# --------------------------------------------------------------------------
# One-class split
# --------------------------------------------------------------------------


def test_one_class_split():
    dataset = load_dataset("digits", binarize="none")
    split = data.one_class_split(dataset, normal_class=3)
    np.testing.assert_array_equal(split.x_train, dataset.x_train[dataset.y_train == 3])
    assert len(split.x_train) == np.sum(dataset.y_train == 3)
    assert set(np.unique(split.y_train)) == {0}
    np.testing.assert_array_equal(split.x_test, dataset.x_test)
    assert set(np.unique(split.y_test)) == {0, 1}
    assert split.y_test.mean() == pytest.approx(np.mean(dataset.y_test != 3))
    np.testing.assert_array_equal(split.y_test == 0, dataset.y_test == 3)
    assert split.normal_class == 3 and split.num_classes == 2
    assert dataset.normal_class is None  # the original is left alone


@pytest.mark.parametrize("normal_class", [-1, 10])
def test_one_class_split_out_of_range(normal_class):
    dataset = load_dataset("digits")
    with pytest.raises(DataError, match="out of range"):
        data.one_class_split(dataset, normal_class)
