"""Anti-drift: every registered variant's math card against its code.

For every variant in the registry (whatever was added since this file was written)
and both backends, the model and guide are traced on a digits batch
(:mod:`zoo.structure`) and their sample sites (names in order, distribution,
observed flag, event dim, plates) must be those the card declares; the relations the
docs draw must cover the same sites; and every hyperparameter of the card must be a
config field with the card's default. The second half shows the check is not
vacuous: a copy of the VAE's model file with a renamed site, a changed distribution
or a dropped observation is caught, and so is a card with a wrong default.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
from pathlib import Path

import pytest

from zoo import registry, structure
from zoo.card import Hyperparameter, Site

VARIANTS = registry.names()
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def traced():
    """``traced(name, backend)``: the traced structure, once per module (the
    failure, when tracing fails, is reported by every test that asks)."""
    cache: dict = {}

    def get(name: str, backend: str) -> structure.Structure:
        if (name, backend) not in cache:
            try:
                cache[name, backend] = structure.trace(name, backend)
            except structure.TraceError as error:
                cache[name, backend] = error
        value = cache[name, backend]
        if isinstance(value, Exception):
            pytest.fail(str(value), pytrace=False)
        return value

    return get


# ---------------------------------------------------------------------------
# Every registered variant
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", registry.BACKENDS)
@pytest.mark.parametrize("name", VARIANTS)
def test_card_sites_are_the_traced_sites(name, backend, traced):
    problems = structure.site_drift(name, traced(name, backend))
    assert not problems, f"{name}: the card and the {backend} code disagree:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("backend", registry.BACKENDS)
@pytest.mark.parametrize("name", VARIANTS)
def test_model_relations_cover_the_traced_sites(name, backend, traced):
    """The docs draw the graphical model from get_model_relations: it must see the
    same sites (and the same observed ones) as the trace the table shows."""
    problems = structure.relations_drift(traced(name, backend))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", VARIANTS)
def test_card_hyperparameters_are_config_fields_with_the_card_defaults(name):
    problems = structure.hyperparameter_drift(name)
    assert not problems, f"{name}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("name", VARIANTS)
def test_card_equation_labels_are_unique_and_named_after_the_variant(name):
    """Docstrings cite equations as (name.n); the docs anchor each equation at its label."""
    card = registry.card(name)
    labels = [equation.label for equation in card.equations()]
    assert len(labels) == len(set(labels)), f"duplicate labels: {labels}"
    wrong = [label for label in labels if not re.fullmatch(rf"{re.escape(name)}\.\d+", label)]
    assert not wrong, f"labels must read '{name}.<n>': {wrong}"
    assert card.name == name


def test_every_variant_folder_with_a_card_is_registered():
    folders = sorted(p.parent.name for p in (ROOT / "zoo").glob("*/card.py"))
    assert sorted(VARIANTS) == folders


# ---------------------------------------------------------------------------
# The check fails when it should
# ---------------------------------------------------------------------------


def load_edited_copy(tmp_path: Path, backend: str, edits: list[tuple[str, str]]):
    """The ``Variant`` class of a copy of ``zoo/vae/<backend>_model.py`` with ``edits``
    (old, new) applied to its source, imported from ``tmp_path``."""
    source = (ROOT / "zoo" / "vae" / f"{backend}_model.py").read_text()
    for old, new in edits:
        assert old in source, f"{old!r} not in the VAE's {backend} model: update this test"
        source = source.replace(old, new)
    path = tmp_path / f"vae_copy_{backend}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Variant


def drift_of_copy(tmp_path, backend, edits) -> list[str]:
    variant_class = load_edited_copy(tmp_path, backend, edits)
    return structure.site_drift("vae", structure.trace("vae", backend, variant_class=variant_class))


@pytest.mark.parametrize("backend", registry.BACKENDS)
def test_an_unedited_copy_of_the_model_has_no_drift(tmp_path, backend):
    """The control for the tests below: copying the file alone changes nothing."""
    assert drift_of_copy(tmp_path, backend, []) == []


@pytest.mark.parametrize("backend", registry.BACKENDS)
def test_renaming_a_site_in_a_copy_of_the_model_fails_the_check(tmp_path, backend):
    problems = drift_of_copy(tmp_path, backend, [('sample("z"', 'sample("code"')])
    joined = "\n".join(problems)
    assert problems
    assert "['z']" in joined and "['code']" in joined, joined
    assert any(p.startswith(f"{backend}: model:") for p in problems)
    assert any(p.startswith(f"{backend}: guide:") for p in problems)


@pytest.mark.parametrize("backend", registry.BACKENDS)
def test_changing_a_distribution_in_a_copy_of_the_guide_fails_the_check(tmp_path, backend):
    problems = drift_of_copy(tmp_path, backend, [("dist.Normal(loc, scale)", "dist.Laplace(loc, scale)")])
    assert problems == [f"{backend}: guide site 'z': distribution is 'Laplace' in the trace, 'Normal' on the card"]


@pytest.mark.parametrize("backend", registry.BACKENDS)
def test_dropping_an_observation_in_a_copy_of_the_model_fails_the_check(tmp_path, backend):
    problems = drift_of_copy(tmp_path, backend, [(", obs=x)", ")")])
    assert problems == [f"{backend}: model site 'x': observed is False in the trace, True on the card"]


def test_a_card_with_other_sites_fails_against_the_real_code(traced):
    card = registry.card("vae")
    edited = dataclasses.replace(
        card,
        model_sites=(card.model_sites[1], card.model_sites[0]),  # x before z
        guide_sites=(Site("z", "Normal", event_dim=0, plates=("data", "particles")),),
    )
    problems = structure.site_drift("vae", traced("vae", "pyro"), edited)
    assert problems == [
        "pyro: model: sites run in the order ['z', 'x']; the card declares ['x', 'z']",
        "pyro: guide site 'z': event_dim is 1 in the trace, 0 on the card",
        "pyro: guide site 'z': plates is ('data',) in the trace, ('data', 'particles') on the card",
    ]


def test_a_card_default_that_differs_from_the_config_fails_the_check():
    card = registry.card("iwae")
    k = next(h for h in card.hyperparameters if h.name == "k")
    wrong_default = dataclasses.replace(card, hyperparameters=(dataclasses.replace(k, default=k.default + 1),))
    assert structure.hyperparameter_drift("iwae", wrong_default) == [
        f"hyperparameter 'k': the config's default is {k.default}, the card's {k.default + 1}"
    ]
    unknown = dataclasses.replace(card, hyperparameters=(Hyperparameter("temperature", 1.0, "not a field"),))
    assert structure.hyperparameter_drift("iwae", unknown) == [
        "hyperparameter 'temperature' of the card is not a field of Config"
    ]


def test_lists_and_tuples_compare_equal_in_the_hyperparameter_check():
    """Configs read back from JSON hold lists where the dataclass default is a tuple."""
    card = registry.card("vae")
    config = dataclasses.replace(registry.default_config("vae"), hidden=[400])
    assert structure.hyperparameter_drift("vae", card, config) == []
    config = dataclasses.replace(config, hidden=[400, 200])
    assert structure.hyperparameter_drift("vae", card, config) == [
        "hyperparameter 'hidden': the config's default is [400, 200], the card's (400,)"
    ]


# ---------------------------------------------------------------------------
# Site conventions shared by both backends
# ---------------------------------------------------------------------------


def test_distribution_names_peel_wrappers_and_name_numpyro_parameterisations_by_family():
    import jax.numpy as jnp
    import numpyro.distributions as ndist
    import pyro.distributions as pdist
    import torch

    wrapped = pdist.Normal(torch.zeros(3), 1.0).expand([2, 3]).mask(True).to_event(1)
    assert structure.distribution_name(wrapped) == "Normal"
    assert structure.wrapped_name(pdist.Normal(0.0, 1.0).expand([2]).to_event(1)) == "Independent(Normal)"
    assert structure.distribution_name(pdist.Bernoulli(logits=torch.zeros(2))) == "Bernoulli"
    assert structure.distribution_name(ndist.Bernoulli(logits=jnp.zeros(2)).to_event(1)) == "Bernoulli"
    assert structure.distribution_name(ndist.Categorical(probs=jnp.ones(3) / 3)) == "Categorical"
    assert structure.distribution_name(ndist.Normal(0.0, 1.0).expand([4]).mask(False)) == "Normal"
    # Only parameterisation classes lose their suffix: a family really named so keeps it.
    assert structure.distribution_name(ndist.RelaxedBernoulliLogits(1.0, jnp.zeros(2))) == "RelaxedBernoulli"
    assert structure.distribution_name(ndist.LogNormal(0.0, 1.0)) == "LogNormal"


def test_both_backends_list_nested_plates_outermost_first_and_skip_deterministic_sites():
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as ndist
    import pyro
    import pyro.distributions as pdist
    import torch

    def pyro_program():
        with pyro.plate("outer", 2, dim=-2), pyro.plate("inner", 3, dim=-1):
            a = pyro.sample("a", pdist.Normal(0.0, 1.0))
        pyro.deterministic("d", a.sum())
        pyro.factor("f", torch.tensor(0.0))
        pyro.sample("y", pdist.Normal(0.0, 1.0), obs=torch.tensor(0.5))

    def numpyro_program():
        with numpyro.plate("outer", 2, dim=-2), numpyro.plate("inner", 3, dim=-1):
            a = numpyro.sample("a", ndist.Normal(0.0, 1.0))
        numpyro.deterministic("d", a.sum())
        numpyro.factor("f", 0.0)
        numpyro.sample("y", ndist.Normal(0.0, 1.0), obs=jnp.array(0.5))

    for sites in (structure.pyro_sites(pyro_program, {}), structure.numpyro_sites(numpyro_program, {})):
        assert [(s.name, s.kind, s.plates, s.batch_shape) for s in sites] == [
            ("a", "latent", ("outer", "inner"), (2, 3)),
            ("f", "factor", (), ()),
            ("y", "observed", (), ()),
        ]
