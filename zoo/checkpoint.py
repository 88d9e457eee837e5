"""Checkpoint files that load without running code.

A run folder may come from someone else, so reading one must never execute what
is in it. Python's pickle (``torch.load(weights_only=False)``, ``pickle.loads``)
calls whatever callables the file names; the formats here cannot:

- Pyro: ``torch.save`` of tensors and plain containers (dicts, lists, tuples,
  numbers, strings, None), read back with ``torch.load(weights_only=True)``, whose
  unpickler refuses every global outside that set.
- NumPyro: an ``.npz`` archive of plain numeric arrays read with
  ``numpy.load(allow_pickle=False)``, plus a JSON manifest (epoch, format
  version, the leaves' shapes and dtypes) stored as one of its arrays, so the
  archive alone describes the checkpoint.

Both also carry the process-wide RNG states of Python's ``random`` and numpy's
legacy global generator (as lists and arrays), so code that draws from them
continues on the same stream after ``--resume``. This module imports neither
torch nor JAX.
"""

from __future__ import annotations

import io
import json
import random
import zipfile

import numpy as np

FORMAT = "vaezoo-checkpoint"
VERSION = 2  # version 1 was a pickle; it is refused, never loaded
MANIFEST = "manifest.json"


class CheckpointError(ValueError):
    """The bytes are not a checkpoint this version of vaezoo can safely load."""


def require_zip(data: bytes) -> None:
    """Both formats are zip archives; anything else (random bytes, an old pickle,
    a truncated copy) is refused before any parser sees it."""
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise CheckpointError("not a zip archive")


# --- process-wide RNG states as plain data ---------------------------------


def global_rng_state() -> dict:
    """Python's ``random`` and numpy's global RNG state as lists, numbers and one
    uint32 array (``numpy_keys``): containers any safe loader accepts."""
    version, internal, gauss_next = random.getstate()
    name, keys, pos, has_gauss, cached_gauss = np.random.get_state()
    return {
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
        "numpy": {"name": name, "pos": int(pos), "has_gauss": int(has_gauss), "cached_gauss": float(cached_gauss)},
        "numpy_keys": np.asarray(keys, dtype=np.uint32),
    }


def set_global_rng_state(state: dict) -> None:
    python = state["python"]
    random.setstate((int(python["version"]), tuple(int(v) for v in python["internal"]), python["gauss_next"]))
    numpy_state = state["numpy"]
    keys = np.asarray(state["numpy_keys"], dtype=np.uint32)
    np.random.set_state(
        (numpy_state["name"], keys, int(numpy_state["pos"]), int(numpy_state["has_gauss"]), float(numpy_state["cached_gauss"]))
    )


# --- NumPyro: arrays in an npz with a JSON manifest ------------------------


def dump_arrays(manifest: dict, arrays: list[np.ndarray]) -> bytes:
    """An npz archive of ``arrays`` (``leaf_00000``...) and ``manifest`` (JSON).

    Every array must be numeric: object arrays would need pickle to read back.
    """
    rng = global_rng_state()
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        **manifest,
        "rng": {"python": rng["python"], "numpy": rng["numpy"]},
        "leaves": [{"shape": list(a.shape), "dtype": a.dtype.str} for a in arrays],
    }
    members = {f"leaf_{i:05d}": a for i, a in enumerate(arrays)}
    members["numpy_keys"] = rng["numpy_keys"]
    members[MANIFEST] = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
    for name, array in members.items():
        if array.dtype.hasobject:
            raise TypeError(f"checkpoint array {name} has dtype object, which cannot be stored safely")
    buffer = io.BytesIO()
    np.savez(buffer, **members)
    return buffer.getvalue()


def load_arrays(data: bytes) -> tuple[dict, list[np.ndarray], dict]:
    """``(manifest, arrays, rng)`` of :func:`dump_arrays`; ``rng`` goes to
    :func:`set_global_rng_state` once the caller accepts the arrays.

    ``allow_pickle=False``: an object array in the archive raises instead of
    being unpickled.
    """
    require_zip(data)
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        if MANIFEST not in archive.files:
            raise CheckpointError(f"no {MANIFEST} in the archive")
        manifest = json.loads(archive[MANIFEST].tobytes().decode())
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise CheckpointError("the manifest is not a vaezoo checkpoint's")
        if manifest.get("version") != VERSION:
            raise CheckpointError(f"checkpoint format version {manifest.get('version')}, expected {VERSION}")
        arrays = [archive[f"leaf_{i:05d}"] for i in range(len(manifest["leaves"]))]
        for i, (array, meta) in enumerate(zip(arrays, manifest["leaves"], strict=True)):
            if list(array.shape) != meta["shape"] or array.dtype.str != meta["dtype"]:
                raise CheckpointError(f"leaf {i} does not match the manifest")
        rng = {**manifest["rng"], "numpy_keys": archive["numpy_keys"]}
    return manifest, arrays, rng
