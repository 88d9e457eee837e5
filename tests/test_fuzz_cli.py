"""A property-based test of the command line (hypothesis): whatever mix of valid
and invalid options a user types,

- the exit status is 0 (it worked) or 2 (one ``vaezoo: error:`` line said why),
- no traceback reaches stderr,
- nothing is written outside ``--out``.

The option space mixes good values with the bad ones of issue 9 (zero and negative
sizes, non-finite learning rates, mistyped ``--set`` values, impossible ``--out``
paths, a second train into the same folder with and without ``--resume`` /
``--overwrite``). Examples are few and derandomized, so CI sees the same cases
every time; training stays tiny (digits, at most 60 images, 8 hidden units, one or
two epochs, Pyro: NumPyro's refusals are the same code, tested case by case in
test_reliability_options.py).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from zoo.cli import main

OPTION_VALUES = {
    "--epochs": ["1", "2", "0", "-3", "x", "1.5"],
    "--batch-size": ["32", "1000", "0", "-5"],
    "--lr": ["1e-3", "-1", "0", "nan", "inf", "abc"],
    "--seed": ["0", "7", "-1", "99999999999"],
    "--limit-train": ["60", "0", "-1"],
    "--limit-test": ["20", "0"],
    "--binarize": ["dynamic", "none", "fixed", "weird"],
    "--dataset": ["digits", "nope"],
    "--device": ["cpu", "gpu", "cuda:x"],
    "--backend": ["pyro", "tensorflow"],
    "--eval-k": ["3", "0"],
}
SETTINGS = ["z_dim=2", "z_dim=abc", "z_dim=2.5", "z_dim=0", "hidden=[a]", "hidden=[0]", "hidden=[4,4]",
            "activation=tanh", "activation=foo", "likelihood=gaussian", "likelihood=poisson", "k=0", "k=2",
            "nosuch=1", "z_dim"]
OUTS = ["run", "run", "nested/deeper/run", "notes.txt", "notes.txt/run", "/proc/vaezoo-fuzz/run"]
FLAGS = ["--resume", "--overwrite", "--evaluate"]


@st.composite
def train_command(draw) -> list[str]:
    variant = draw(st.sampled_from(["vae", "iwae", "no-such-vae"]))
    args = ["train", variant, "--quiet", "--set", "hidden=[8]", "--limit-train", "60", "--limit-test", "20",
            "--batch-size", "32"]
    # Half the values drawn are each option's first (valid) one, so that a fair
    # share of the commands get past the checks and train.
    for option in draw(st.lists(st.sampled_from(sorted(OPTION_VALUES)), max_size=3, unique=True)):
        values = OPTION_VALUES[option]
        args += [option, draw(st.one_of(st.just(values[0]), st.sampled_from(values)))]
    for setting in draw(st.lists(st.sampled_from(SETTINGS), max_size=1)):
        args += ["--set", setting]
    return args + draw(st.lists(st.sampled_from(FLAGS), max_size=2, unique=True))


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def assert_clean_exit(status, captured) -> None:
    assert status in (0, 2), (status, captured.err)
    assert "Traceback" not in captured.err and "Traceback" not in captured.out
    if status == 2:
        errors = [line for line in captured.err.splitlines() if line.startswith("vaezoo: error: ")]
        assert len(errors) == 1, captured.err


@settings(max_examples=14, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(first=train_command(), second=train_command(), out_name=st.sampled_from(OUTS))
def test_any_command_line_exits_0_or_2_and_writes_only_into_out(capsys, first, second, out_name):
    """Two commands into the same folder (the second finds the first's run), then
    an evaluation of it."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "notes.txt").write_text("the user's file")
        previous = os.getcwd()
        os.chdir(root)
        try:
            out = Path(out_name) if out_name.startswith("/") else root / out_name
            for args in (first, second):
                status = main([*args, "--out", str(out)])
                event(f"train exit {status}")
                assert_clean_exit(status, capsys.readouterr())
            status = main(["evaluate", str(out), "--k", "2", "--limit", "3"])
            assert_clean_exit(status, capsys.readouterr())
        finally:
            os.chdir(previous)
        outside = {p for p in files_under(root) if not p.is_relative_to(out)} - {root / "notes.txt"}
        assert outside == set(), sorted(map(str, outside))
        assert (root / "notes.txt").read_text() == "the user's file"


def test_the_fuzzed_space_reaches_both_outcomes(capsys, tmp_path, monkeypatch):
    """The space is not all refusals: its default corner trains (status 0)."""
    monkeypatch.chdir(tmp_path)
    args = ["train", "vae", "--quiet", "--set", "hidden=[8]", "--limit-train", "60", "--limit-test", "20",
            "--batch-size", "32", "--epochs", "1", "--out", str(tmp_path / "run")]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 2
    assert "already holds a run" in capsys.readouterr().err
