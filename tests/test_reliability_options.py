"""Options checked at the boundary (zoo/cli.py, zoo/config.py).

Every bad value is refused before any data is loaded or any file written, with one
``vaezoo: error:`` line that names the value and the fix, and exit status 2. The
commands run in-process (``zoo.cli.main``): the checks come before either backend
is imported, so each case costs milliseconds; the backend is still parametrized,
since the refusal must not depend on it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path

import pytest
from conftest import tiny_args
from test_cli import assert_one_line_error

from zoo import registry
from zoo.cli import main
from zoo.config import ACTIVATIONS, ConfigError, override

BACKENDS = ["pyro", "numpyro"]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty current directory: a refused command must leave it empty."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def refused(capsys, args, *fragments) -> str:
    assert main(args) == 2
    return assert_one_line_error(capsys.readouterr(), *fragments)


BAD_OPTIONS = [
    (["--epochs", "0"], ["--epochs", "0", "at least 1"]),
    (["--epochs", "-3"], ["--epochs", "-3"]),
    (["--batch-size", "0"], ["--batch-size", "0", "at least 1"]),
    (["--batch-size", "-5"], ["--batch-size", "-5"]),
    (["--lr", "-1"], ["--lr", "-1", "positive"]),
    (["--lr", "0"], ["--lr", "0"]),
    (["--lr", "nan"], ["--lr", "nan"]),
    (["--lr", "inf"], ["--lr", "inf"]),
    (["--seed", "-1"], ["--seed", "-1"]),
    (["--limit-train", "0"], ["--limit-train", "0"]),
    (["--limit-test", "-2"], ["--limit-test", "-2"]),
    (["--device", "gpu"], ["--device", "gpu", "cuda"]),
    (["--eval-k", "0"], ["--eval-k", "0"]),
    (["--labels", "0"], ["--labels", "0"]),
    (["--epochs", "1e3"], ["--epochs", "1e3", "--help"]),  # argparse's own check, one line too
    (["--lr", "fast"], ["--lr", "fast"]),
    (["--set", "z_dim=abc"], ["z_dim=abc", "integer", "e.g. --set z_dim="]),
    (["--set", "z_dim=2.5"], ["z_dim=2.5", "integer"]),
    (["--set", "z_dim=true"], ["z_dim=true", "integer"]),
    (["--set", "z_dim=0"], ["z_dim", "0"]),
    (["--set", "z_dim=3"], ["z_dim is given twice, differently", "--z-dim", "--set z_dim=3", "give it once"]),
    (["--set", "hidden=[a]"], ["hidden=[a]", "list of integers"]),
    (["--set", "hidden=[16,2.5]"], ["hidden=[16,2.5]", "list of integers"]),
    (["--set", "hidden=[0]"], ["hidden", "[0]", "positive"]),
    (["--set", "hidden=16"], None),  # one layer of 16: accepted (checked below)
    (["--set", "activation=foo"], ["activation", "foo", "relu"]),
    (["--set", "likelihood=poisson"], ["likelihood", "poisson", "bernoulli"]),
    (["--likelihood", "poisson"], ["likelihood", "poisson"]),
    (["--z-dim", "0"], ["z_dim", "0"]),
    (["--set", "z_dim"], ["name=value"]),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("extra,fragments", BAD_OPTIONS, ids=[" ".join(a) for a, _ in BAD_OPTIONS])
def test_a_bad_train_option_is_refused_and_writes_nothing(workdir, capsys, monkeypatch, backend, extra, fragments):
    out = workdir / "run"
    if fragments is None:
        # Accepted values pass the checks: stop right after them, before training.
        from zoo import run as zrun

        def stop(*args, **kwargs):
            raise zrun.RunError("stopped after the checks")

        monkeypatch.setattr(zrun, "make_trainer", stop)
        refused(capsys, tiny_args("vae", backend, out, 1, *extra), "stopped after the checks")
        return
    refused(capsys, tiny_args("vae", backend, out, 1, *extra), *fragments)
    assert list(workdir.iterdir()) == []


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "variant,setting,fragments",
    [("iwae", "k=0", ["k must be at least 1"]), ("iwae", "k=1.5", ["k=1.5", "integer"]),
     ("infovae", "mmd_gamma=NaN", ["mmd_gamma=NaN", "finite"]), ("infovae", "alpha=x", ["alpha=x", "number"]),
     ("m2", "labels=some", ["labels=some", "integer or null"]), ("cvae", "condition_on_baseline=maybe", ["true or false"])],
)
def test_a_bad_variant_setting_is_refused(workdir, capsys, backend, variant, setting, fragments):
    refused(capsys, tiny_args(variant, backend, workdir / "run", 1, "--set", setting), *fragments)
    assert list(workdir.iterdir()) == []


def test_set_and_flags_are_validated_together():
    """A setting that depends on another field is judged against the value the
    command gives for it: VLAE's flow widths must be at least z_dim, so
    ``--set flow_hidden=[16,16]`` is refused at the default z_dim = 32 and
    accepted with ``--z-dim 4``, whichever comes first."""
    from zoo.cli import _configured

    default = registry.default_config("vlae")
    assert default.z_dim > 16
    with pytest.raises(ConfigError, match="flow_hidden"):
        _configured(default, {"flow_hidden": "[16,16]"}, {})
    config = _configured(default, {"flow_hidden": "[16,16]"}, {"z_dim": "4"})
    assert (config.z_dim, tuple(config.flow_hidden)) == (4, (16, 16))
    # The same value both ways is no conflict.
    assert _configured(default, {"z_dim": "4", "flow_hidden": "[16,16]"}, {"z_dim": "4"}).z_dim == 4


def _bad_text(hint) -> str | None:
    """A --set value of the wrong type for a field annotated ``hint`` (None for
    strings, which take any text, and types the checker does not know)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        hint = args[0]  # X | None
    if hint in (int, float):
        return '"seven"'
    if hint is bool:
        return "7"
    if typing.get_origin(hint) is tuple:
        return "[1,[2]]"
    return None


@pytest.mark.parametrize("variant", registry.names())
def test_every_config_field_is_type_checked(variant):
    """Driven by the dataclass annotations, so a new variant's fields are covered
    the day it is registered."""
    config = registry.default_config(variant)
    hints = typing.get_type_hints(type(config))
    checked = 0
    for f in dataclasses.fields(config):
        bad = _bad_text(hints[f.name])
        if bad is None:
            continue
        with pytest.raises(ConfigError, match=f.name):
            override(config, {f.name: bad})
        checked += 1
    assert checked >= 2  # z_dim and hidden at least


def test_the_activation_choices_are_those_of_both_backends():
    from guides import flax_nets, torch_nets

    assert set(ACTIVATIONS) == set(torch_nets.ACTIVATIONS) == set(flax_nets.ACTIVATIONS)


# --- --out ---------------------------------------------------------------------


def _out_case(kind: str, workdir: Path) -> tuple[Path, list[str]]:
    if kind == "file":
        (workdir / "notes.txt").write_text("not a run")
        return workdir / "notes.txt", ["is a file", "another --out"]
    if kind == "under-a-file":
        (workdir / "notes.txt").write_text("not a run")
        return workdir / "notes.txt" / "run", ["under", "notes.txt", "another --out"]
    # Unwritable even for root: /proc takes no new folders.
    return Path("/proc/vaezoo-test/run"), ["cannot write", "another --out"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["file", "under-a-file", "unwritable"])
def test_an_impossible_out_is_refused(workdir, capsys, backend, kind):
    out, fragments = _out_case(kind, workdir)
    before = sorted(p.name for p in workdir.iterdir())
    refused(capsys, tiny_args("vae", backend, out, 1), str(out), *fragments)
    assert sorted(p.name for p in workdir.iterdir()) == before
    if kind == "file":
        assert (workdir / "notes.txt").read_text() == "not a run"


def test_a_read_only_folder_is_refused(workdir, capsys):
    import os

    locked = workdir / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root: permissions do not apply
            pytest.skip("permission bits do not bind this user")
        refused(capsys, tiny_args("vae", "pyro", locked / "run", 1), "not writable", "another --out")
    finally:
        locked.chmod(0o700)


# --- evaluate ------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "extra,fragments",
    [(["--k", "0"], ["--k", "0"]), (["--k", "-5"], ["--k", "-5"]), (["--limit", "0"], ["--limit", "0"]),
     (["--limit", "-1"], ["--limit", "-1"]), (["--device", "tpu"], ["--device", "tpu"]),
     (["--k", "many"], ["--k", "many"])],
)
def test_a_bad_evaluate_option_is_refused(tmp_path, capsys, backend, extra, fragments):
    """The run folder has a record but no checkpoint: a check that came too late
    would end in "checkpoint not found" instead."""
    from conftest import tiny_config, tiny_options

    from zoo.run import save_run_file

    run = tmp_path / "run"
    run.mkdir()
    save_run_file(run, "vae", tiny_config("vae"), tiny_options(backend=backend))
    refused(capsys, ["evaluate", str(run), *extra], *fragments)
    assert not (run / "eval.json").exists()
