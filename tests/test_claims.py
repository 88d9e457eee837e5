"""Claims as data (zoo/claims.py) and ``vaezoo reproduce`` (zoo/reproduce.py).

The verdict logic is checked on constructed cases built to hold and to fail; the
cards' claims for well-formedness against the registry (a typo in a setting or a
variant name fails here, not in a 20-minute full run); one tiny end-to-end run
through the real training and evaluation code, with equal budgets, the run cache
and a validation-tuned contender.
"""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from zoo import registry
from zoo.claims import BUDGETS, DIRECTIONS, Budget, Claim, Contender
from zoo.reproduce import Runner, config_class, format_table, judge, mean_sd, reproduce_claim, write_results

# --- the verdict ---------------------------------------------------------------


def test_mean_and_sample_sd():
    assert mean_sd([1.0, 2.0, 4.0]) == pytest.approx((7 / 3, math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2)))
    assert mean_sd([3.0]) == (3.0, 0.0)


@pytest.mark.parametrize(
    "ours, reference, direction, margin, verdict",
    [
        ([0.80, 0.82], [0.70, 0.74], "higher", 0.0, "holds"),
        ([0.80, 0.82], [0.70, 0.74], "higher", 0.1, "does not hold"),  # gain 0.09 < 0.1
        ([0.80, 0.82], [0.70, 0.74], "higher", 0.09, "holds"),
        ([0.70, 0.74], [0.80, 0.82], "higher", 0.0, "does not hold"),
        ([0.70, 0.74], [0.80, 0.82], "higher", -0.1, "holds"),  # a tolerance: no worse than 0.1
        ([0.70, 0.74], [0.80, 0.82], "higher", -0.05, "does not hold"),
        ([90.0, 92.0], [95.0, 96.0], "lower", 0.0, "holds"),
        ([90.0, 92.0], [95.0, 96.0], "lower", 5.0, "does not hold"),  # 4.5 below, 5 needed
        ([95.0, 96.0], [90.0, 92.0], "lower", 0.0, "does not hold"),
        ([510.0, 530.0], 500.0, "near", 25.0, "holds"),
        ([510.0, 530.0], 500.0, "near", 15.0, "does not hold"),
        ([470.0], 500.0, "near", 25.0, "does not hold"),
    ],
)
def test_verdicts_on_constructed_cases(ours, reference, direction, margin, verdict):
    result = judge(ours, reference, direction, margin)
    assert result["verdict"] == verdict
    ref_mean = reference if isinstance(reference, float) else sum(reference) / len(reference)
    assert result["difference"] == pytest.approx(sum(ours) / len(ours) - ref_mean)


@pytest.mark.parametrize("bad", [[float("nan"), 1.0], [None], [], [float("inf")]])
def test_missing_or_non_finite_values_are_not_comparable(bad):
    assert judge(bad, [1.0], "higher")["verdict"] == "not comparable"
    assert judge([1.0], bad, "higher")["verdict"] == "not comparable"


def test_importance_sampled_figures_with_large_khat_are_not_comparable():
    """A clear win on L_K is refused when most k-hat exceed 0.7 (the figure is a
    loose lower bound), and accepted when they do not."""
    ours, reference = [-90.0, -91.0], [-100.0, -101.0]
    assert judge(ours, reference, "higher", 0.0, ours_khat=[0.2, 0.3], reference_khat=[0.1, 0.0])["verdict"] == "holds"
    refused = judge(ours, reference, "higher", 0.0, ours_khat=[0.9, 0.7], reference_khat=[0.1, 0.0])
    assert refused["verdict"] == "not comparable" and "k-hat" in refused["why"] and "ours" in refused["why"]
    assert judge(ours, reference, "higher", 0.0, reference_khat=[0.6, 0.6])["verdict"] == "not comparable"
    # k-hat unavailable (too few particles) does not block the verdict.
    assert judge(ours, reference, "higher", 0.0, ours_khat=[None, None])["verdict"] == "holds"


def test_claims_refuse_ambiguous_references_and_unknown_names():
    ours = Contender("VAE", "vae")
    with pytest.raises(ValueError, match="exactly one"):
        Claim("x.y", "s", "m", ours)
    with pytest.raises(ValueError, match="exactly one"):
        Claim("x.y", "s", "m", ours, baseline=ours, threshold=1.0)
    with pytest.raises(ValueError, match="direction"):
        Claim("x.y", "s", "m", ours, threshold=1.0, direction="up")
    with pytest.raises(ValueError, match="budgets"):
        Claim("x.y", "s", "m", ours, threshold=1.0, budgets={"huge": Budget()})
    with pytest.raises(ValueError, match="tune_metric"):
        Contender("VAE", "vae", tune={"z_dim": (2, 4)})


# --- the cards' claims ---------------------------------------------------------


def _all_claims():
    return [(name, claim) for name in registry.names() for claim in registry.card(name).claims]


def test_every_claim_of_every_card_is_well_formed():
    """Claim ids are unique and named after their variant; every contender names
    a registered variant, and every setting, tune key and option is a config
    field, a training option or a data option the trainer reads."""
    from zoo.config import TrainOptions
    from zoo.reproduce import OPTION_FIELDS

    data_options = {"labels", "normal_class"}
    assert set(OPTION_FIELDS) <= {f.name for f in dataclasses.fields(TrainOptions)}
    ids = [claim.id for _, claim in _all_claims()]
    assert len(ids) == len(set(ids))
    for name, claim in _all_claims():
        assert claim.id.startswith(name + "."), claim.id
        assert claim.direction in DIRECTIONS and set(claim.budgets) <= set(BUDGETS) and claim.budgets
        contenders = [claim.ours] + ([claim.baseline] if claim.baseline else [])
        for contender in contenders:
            fields = {f.name for f in dataclasses.fields(config_class(contender.variant))}
            for key in [*contender.settings, *contender.tune, *contender.options]:
                assert key in fields | set(OPTION_FIELDS) | data_options, (claim.id, key)
            for budget in claim.budgets.values():
                assert set(budget.options) <= data_options, claim.id
                if contender.tune:
                    assert budget.validation > 0, f"{claim.id}: a tuned contender needs validation rows"


def test_the_built_variants_declare_claims():
    for name in ("iwae", "cvae", "m2", "vfae", "infovae", "lsvae", "fae", "vaesvdd", "advae", "vae"):
        assert registry.card(name).claims, f"{name} declares no claim"


# --- end to end ------------------------------------------------------------------

TINY = Budget(dataset="digits", epochs=1, seeds=2, batch_size=50, limit_train=200, limit_test=40, eval_k=25,
              settings={"hidden": (16,), "z_dim": 4})


def test_reproduce_a_claim_end_to_end(tmp_path):
    """IWAE against the VAE at equal budget: two seeds each, every value a real
    evaluation, the verdict the one judge gives on them; the VAE trained for the
    first claim is reused by a second."""
    runner = Runner("pyro", tmp_path, log=lambda *a: None)
    claim = Claim("iwae.tiny", "IWAE above VAE", "test_log_likelihood", Contender("IWAE", "iwae", settings={"k": 3}),
                  baseline=Contender("VAE", "vae"), budgets={"quick": TINY})
    record = reproduce_claim(claim, "iwae", "quick", runner)
    ours, reference = record["ours"], record["reference"]
    assert record["protocol"]["seeds"] == [0, 1] and len(ours["values"]) == len(reference["values"]) == 2
    assert ours["settings"] == {"hidden": [16], "z_dim": 4, "k": 3} and reference["settings"] == {"hidden": [16], "z_dim": 4}
    for contender in (ours, reference):
        assert contender["options"]["epochs"] == 1 and contender["options"]["limit_train"] == 200
        assert [m["test_log_likelihood"] for m in contender["metrics"]] == contender["values"]
        assert [m["k"] for m in contender["metrics"]] == [25, 25]
        assert contender["khat_fraction"] == [m["psis_khat_fraction_above_0.7"] for m in contender["metrics"]]
    assert ours["values"][0] != ours["values"][1], "seeds must differ"
    expected = judge(ours["values"], reference["values"], "higher", 0.0, ours["khat_fraction"], reference["khat_fraction"])
    assert {k: record[k] for k in expected} == expected
    assert len(runner.cache) == 4

    # Thresholds built to hold and to fail on the same (cached) VAE runs.
    easy = Claim("vae.easy", "s", "test_log_likelihood", Contender("VAE", "vae"), threshold=-1e6, budgets={"quick": TINY})
    impossible = dataclasses.replace(easy, id="vae.impossible", threshold=0.0)  # log p(x) of a 64-pixel image < 0
    assert reproduce_claim(easy, "vae", "quick", runner)["verdict"] == "holds"
    assert reproduce_claim(impossible, "vae", "quick", runner)["verdict"] == "does not hold"
    assert len(runner.cache) == 4, "the VAE runs are reused, not retrained"
    # A claim without a protocol at this budget, and a metric no run reports.
    assert reproduce_claim(easy, "vae", "full", runner)["verdict"] == "not comparable"
    missing = dataclasses.replace(easy, id="vae.missing", metric="no_such_metric")
    assert reproduce_claim(missing, "vae", "quick", runner)["verdict"] == "not comparable"

    entry = {"budget": "quick", "backend": "pyro", "seconds": 1.0, "claims": {record["id"]: record}}
    table = format_table(entry)
    assert "iwae.tiny" in table and record["verdict"] in table


def test_tuning_uses_the_validation_split_and_records_it(tmp_path):
    runner = Runner("pyro", tmp_path, log=lambda *a: None)
    # The budget's grid replaces the contender's for the names both tune.
    budget = dataclasses.replace(TINY, seeds=1, validation=60, tune={"z_dim": (2, 4), "k": (1, 2)})
    tuned = Contender("VAE", "vae", tune={"z_dim": (2, 3, 4)}, tune_metric="test_elbo_500")
    claim = Claim("vae.tuned", "s", "test_elbo_500", tuned, threshold=-1e6, budgets={"quick": budget})
    record = reproduce_claim(claim, "vae", "quick", runner)
    validation = record["ours"]["validation"]
    assert validation["rows"] == 60 and validation["metric"] == "test_elbo_500"
    assert [point["values"] for point in validation["grid"]] == [{"z_dim": 2}, {"z_dim": 4}]
    best = max(validation["grid"], key=lambda point: point["score"])
    assert validation["chosen"] == best["values"] and record["ours"]["settings"]["z_dim"] == best["values"]["z_dim"]
    # The grid runs saw 140 training rows and were scored on the 60 held out;
    # the final run trains on all 200 and is scored on the test set.
    runs = list(runner.cache.values())
    assert len(runs) == 3


def test_tuning_is_kept_per_contender_not_per_label(tmp_path, monkeypatch):
    """Two contenders that differ only in their options (M2 at 100 and 600 labels)
    get their own grid runs and their own best values; a repeated one is cached."""
    runner = Runner("pyro", tmp_path, log=lambda *a: None)
    calls = []

    def fake_run(variant, settings, options, seed, validation=0):
        calls.append((options["extra"]["labels"], settings["z_dim"], validation))
        return {"score": -abs(settings["z_dim"] - options["extra"]["labels"])}

    monkeypatch.setattr(runner, "run", fake_run)
    budget = dataclasses.replace(TINY, validation=60)
    few = Contender("M", "vae", options={"labels": 2}, tune={"z_dim": (2, 4)}, tune_metric="score")
    many = dataclasses.replace(few, options={"labels": 4})
    assert runner.tune(few, budget)["chosen"] == {"z_dim": 2}
    assert runner.tune(many, budget)["chosen"] == {"z_dim": 4}
    assert runner.tune(few, budget)["chosen"] == {"z_dim": 2}
    assert calls == [(2, 2, 60), (2, 4, 60), (4, 2, 60), (4, 4, 60)]


def test_validation_split_holds_out_training_rows():
    import numpy as np

    from zoo.data import load_dataset, validation_split

    dataset = load_dataset("digits", limit_train=200, limit_test=40)
    split = validation_split(dataset, 50, seed=0)
    assert len(split.x_train) == 150 and len(split.x_test) == 50
    rows = {tuple(r) for r in dataset.x_train}
    assert all(tuple(r) in rows for r in split.x_test), "validation rows come from the training set"
    assert not {tuple(r) for r in split.x_train} & {tuple(r) for r in split.x_test}
    assert np.array_equal(validation_split(dataset, 50, seed=0).x_test, split.x_test)


def test_results_file_merges_claims(tmp_path):
    path = tmp_path / "claims.json"
    write_results(path, {"budget": "quick", "backend": "pyro", "claims": {"a.x": {"verdict": "holds"}}})
    write_results(path, {"budget": "quick", "backend": "pyro", "claims": {"b.y": {"verdict": "does not hold"}}})
    write_results(path, {"budget": "full", "backend": "numpyro", "claims": {"a.x": {"verdict": "not comparable"}}})
    record = json.loads(path.read_text())
    assert record["schema"] == 1
    assert set(record["runs"]["quick-pyro"]["claims"]) == {"a.x", "b.y"}
    assert record["runs"]["full-numpyro"]["claims"]["a.x"]["verdict"] == "not comparable"


def test_cli_reproduce(tmp_path, capsys):
    from zoo.cli import main

    assert main(["reproduce", "iwae", "--claim", "iwae.k5_above_vae", "--seeds", "1", "--out", str(tmp_path), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "iwae.k5_above_vae" in printed and "iwae.k50_above_vae" not in printed
    record = json.loads((tmp_path / "claims.json").read_text())["runs"]["quick-pyro"]
    claim = record["claims"]["iwae.k5_above_vae"]
    assert claim["verdict"] in ("holds", "does not hold", "not comparable") and claim["protocol"]["seeds"] == [0]
    # Each claim remembers the call that measured it: later calls for the same
    # budget and backend replace the entry's top-level command and date.
    assert claim["measured_by"]["date"] == record["date"]
    assert record["machine"]["cpus"] >= 1
    assert main(["reproduce", "no-such-variant", "--out", str(tmp_path)]) == 2
    assert main(["reproduce", "iwae", "--claim", "iwae.no_such_claim", "--out", str(tmp_path)]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["pyro", "numpyro"])
def test_reproduce_all_quick(tmp_path, backend):
    """``vaezoo reproduce all --budget quick``: every claim gets a verdict with a reason."""
    from zoo.reproduce import reproduce

    entry = reproduce(registry.names(), "quick", backend, out=tmp_path, log=lambda *a: None)
    for claim in entry["claims"].values():
        assert claim["verdict"] in ("holds", "does not hold", "not comparable") and claim["why"]
        assert not claim["why"].startswith("a run failed"), claim["why"]


def test_a_reference_of_another_backend_is_refused_before_training(tmp_path):
    runner = Runner("numpyro", tmp_path, log=lambda *a: None)
    claim = registry.card("vae").claims[0]
    assert claim.baseline.variant == "reference:pyro-vae-example"
    record = reproduce_claim(claim, "vae", "quick", runner)
    assert record["verdict"] == "not comparable" and "pyro backend only" in record["why"] and not runner.cache
