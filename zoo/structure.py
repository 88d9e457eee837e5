"""The traced structure of a variant: its sample sites and how they depend on each other.

A variant's card *declares* its model and guide sites (``zoo.card.Site``). This
module *observes* them: it builds the variant in a backend, runs its ``model`` and
``guide`` once under a tracer on a small batch of the ``digits`` data, and reads off
every sample site (name, distribution, observed or latent, event shape, plates) and
the relations between sites (``pyro.infer.inspect.get_model_relations`` /
``numpyro.infer.inspect.get_model_relations``).

Two consumers, one implementation:

- ``tests/test_drift.py`` compares the declared and the traced sites
  (``site_drift``) and the card's hyperparameters with the config
  (``hyperparameter_drift``), so a model that changes without its math fails;
- the docs generator (``docs/gen_pages.py``) prints the traced sites as a table and
  draws the relations as a graphical model.

Conventions, shared with the cards:

- a *sample site* is every ``sample`` statement except ``factor`` sites (their
  distribution is ``Unit``; they are traced, shown as factors, and not compared),
  deterministic sites and the subsample sites of plates;
- the *distribution* of a site is the class name of its distribution with the
  wrappers ``Independent``, ``MaskedDistribution`` and ``ExpandedDistribution``
  peeled off; NumPyro's parameterisation classes (``BernoulliLogits``,
  ``CategoricalProbs``...) are named by their family (``Bernoulli``,
  ``Categorical``), the name of the constructor the code calls, so both backends
  answer to the same card;
- *plates* are listed outermost first, in nesting order.

The backends are imported only inside ``trace`` (this module imports neither
torch nor JAX at import time).
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from zoo import registry

# Batch the programs are traced on: small, so tracing every variant in both
# backends stays a few seconds, and larger than one so plates are visible and
# batch-level terms (MMD between groups) see more than one example.
BATCH_SIZE = 16
DATASET = "digits"
_DATA_LIMIT = 200  # training images loaded to slice the batch from
_BINARIZATION_SEED = 0

PROGRAMS = ("model", "guide")
_WRAPPERS = ("Independent", "MaskedDistribution", "ExpandedDistribution")
_PARAMETERISATIONS = ("Logits", "Probs")
FACTOR = "Unit"  # the distribution of pyro.factor / numpyro.factor sites


class TraceError(RuntimeError):
    """A variant's model or guide could not be built or traced."""


@dataclass(frozen=True)
class TracedSite:
    """One sample (or factor) site as the tracer saw it."""

    name: str
    distribution: str  # normalised, comparable with Site.distribution
    observed: bool
    event_dim: int
    plates: tuple[str, ...]  # outermost first
    event_shape: tuple[int, ...]
    batch_shape: tuple[int, ...]
    wrapped: str  # the distribution as constructed, e.g. "Independent(Normal)"
    plate_sizes: tuple[int, ...] = ()  # the size of each plate of ``plates``, in the trace

    @property
    def is_factor(self) -> bool:
        return self.distribution == FACTOR

    @property
    def kind(self) -> str:
        if self.is_factor:
            return "factor"
        return "observed" if self.observed else "latent"


@dataclass(frozen=True)
class ProgramStructure:
    """The traced sites of a model or a guide, and their relations.

    ``relations`` is the dictionary of ``get_model_relations`` (keys
    ``sample_sample``, ``sample_dist``, ``plate_sample``, ``observed``...), or
    ``None`` with ``relations_error`` saying why it could not be computed.
    """

    program: str
    sites: tuple[TracedSite, ...]
    relations: dict | None
    relations_error: str | None = None
    # Which of the program's arguments (``x``, ``y``, ``s``...) each site's
    # distribution depends on, found by perturbing one argument at a time (Pyro only;
    # empty when not computed). An argument that a site observes is not listed for it.
    input_edges: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    # The arguments observed by a site of the program: ``{argument: site}``.
    observed_inputs: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def sample_sites(self) -> tuple[TracedSite, ...]:
        """The sites a card declares: every traced site but the factors."""
        return tuple(site for site in self.sites if not site.is_factor)

    @property
    def factors(self) -> tuple[TracedSite, ...]:
        return tuple(site for site in self.sites if site.is_factor)


@dataclass(frozen=True)
class Structure:
    """A variant's model and guide traced in one backend."""

    variant: str
    backend: str
    model: ProgramStructure
    guide: ProgramStructure
    inputs: dict[str, tuple[int, ...]]  # batch keys the programs were called with, and shapes

    def program(self, name: str) -> ProgramStructure:
        return {"model": self.model, "guide": self.guide}[name]


# ---------------------------------------------------------------------------
# Example inputs
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def example_dataset(name: str = DATASET):
    """The data the programs are traced on (loaded once per process): digits, or the
    dataset a variant names in its class attribute ``example_dataset`` (the text
    variants trace on ``words``)."""
    from zoo.data import load_dataset

    return load_dataset(name, limit_train=_DATA_LIMIT, limit_test=BATCH_SIZE)


def example_batch(variant, dataset=None, batch_size: int = BATCH_SIZE) -> dict[str, np.ndarray]:
    """A training minibatch as the trainers build it: the first ``batch_size`` rows of
    every array of ``variant.training_data(dataset)``, with ``x`` binarized when the
    data is dynamically binarized (as the training loop does per minibatch)."""
    dataset = dataset if dataset is not None else example_dataset()
    arrays = variant.training_data(dataset)
    batch = {key: np.asarray(value)[:batch_size] for key, value in arrays.items()}
    if dataset.binarize == "dynamic" and "x" in batch:
        rng = np.random.default_rng(_BINARIZATION_SEED)
        batch["x"] = (rng.random(batch["x"].shape) < batch["x"]).astype(batch["x"].dtype)
    return batch


# ---------------------------------------------------------------------------
# Distribution names
# ---------------------------------------------------------------------------


def distribution_name(fn) -> str:
    """The card's name for a distribution object of either backend (see the module
    docstring): wrappers peeled off, NumPyro's ``XLogits``/``XProbs`` named ``X``."""
    while type(fn).__name__ in _WRAPPERS:
        fn = fn.base_dist
    name = type(fn).__name__
    module = sys.modules.get(type(fn).__module__)
    for suffix in _PARAMETERISATIONS:
        family = name[: -len(suffix)]
        if name.endswith(suffix) and family and callable(getattr(module, family, None)):
            return family
    return name


def wrapped_name(fn) -> str:
    """The distribution as constructed, e.g. ``Independent(Normal)``."""
    if type(fn).__name__ in _WRAPPERS:
        return f"{type(fn).__name__}({wrapped_name(fn.base_dist)})"
    return type(fn).__name__


def _traced_site(name: str, fn, observed: bool, plates: Sequence[str], sizes: Sequence[int] = ()) -> TracedSite:
    return TracedSite(
        name=name,
        distribution=distribution_name(fn),
        observed=bool(observed),
        event_dim=int(fn.event_dim),
        plates=tuple(plates),
        event_shape=tuple(int(n) for n in fn.event_shape),
        batch_shape=tuple(int(n) for n in fn.batch_shape),
        wrapped=wrapped_name(fn),
        plate_sizes=tuple(int(n) for n in sizes),
    )


# ---------------------------------------------------------------------------
# Tracing, one function per backend
# ---------------------------------------------------------------------------


def pyro_sites(program, batch: Mapping) -> tuple[TracedSite, ...]:
    """Every sample site of a Pyro program called with ``**batch``, in execution order."""
    import pyro.poutine as poutine
    from pyro.poutine.util import site_is_subsample

    trace = poutine.trace(program).get_trace(**batch)
    sites = []
    for name, site in trace.nodes.items():
        if site["type"] != "sample" or site_is_subsample(site) or site["infer"].get("_deterministic"):
            continue
        # Pyro stacks plate frames outermost first.
        frames = [frame for frame in site["cond_indep_stack"] if frame.vectorized]
        plates = [frame.name for frame in frames]
        sizes = [frame.size for frame in frames]
        sites.append(_traced_site(name, site["fn"], site["is_observed"], plates, sizes))
    return tuple(sites)


def numpyro_sites(program, batch: Mapping) -> tuple[TracedSite, ...]:
    """Every sample site of a NumPyro program called with ``**batch``, in execution order."""
    import jax
    from numpyro import handlers

    sites = []

    def run():
        trace = handlers.trace(handlers.seed(program, rng_seed=0)).get_trace(**batch)
        for name, site in trace.items():
            if site["type"] != "sample":
                continue
            # NumPyro appends plate frames innermost first; reverse to outermost first.
            frames = list(reversed(site["cond_indep_stack"]))
            plates = [frame.name for frame in frames]
            sizes = [frame.size for frame in frames]
            sites.append(_traced_site(name, site["fn"], site["is_observed"], plates, sizes))

    # Abstract evaluation: shapes and distributions without compiling a single XLA
    # kernel (eager tracing compiles every op once, seconds per process). The
    # trainers jit the programs, so a variant that traces under jit traces here.
    jax.eval_shape(run)
    return tuple(sites)


def _perturbed(value):
    """Another value of a program argument, of the same shape and type, that differs
    from ``value`` in every entry: labels shifted to the next class, other arrays
    shifted across the batch and rescaled."""
    import torch

    if not value.dtype.is_floating_point:
        return (value + 1) % (int(value.max()) + 1 if value.numel() else 1)
    return torch.roll(value, 1, 0) * 0.5 + 0.25 + 0.01 * torch.arange(value.numel()).reshape(value.shape) / max(value.numel(), 1)


def pyro_input_dependencies(program, batch: Mapping) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """Which arguments each site's distribution depends on: the program is traced, then
    replayed with one argument perturbed; a site whose log-density of the same value
    changes depends on that argument. A site whose *value* changes observes it.

    ``get_model_relations`` follows dependencies between sample sites only; this gives
    the arrows from the data into the guide (x -> z) and from conditioning inputs.
    """
    import pyro.poutine as poutine
    import torch
    from pyro.poutine.util import site_is_subsample

    def run(arguments, replayed=None):
        handled = poutine.replay(program, trace=replayed) if replayed is not None else program
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(0)
            return poutine.trace(handled).get_trace(**arguments)

    def sites(trace):
        return {
            name: site for name, site in trace.nodes.items()
            if site["type"] == "sample" and not site_is_subsample(site) and not site["infer"].get("_deterministic")
        }

    try:
        original = run(batch)
        before = sites(original)
        reference = {name: site["fn"].log_prob(site["value"]) for name, site in before.items()}
        edges: dict[str, list[str]] = {}
        observed: dict[str, str] = {}
        for argument, value in batch.items():
            if not torch.is_tensor(value):
                continue
            after = sites(run({**batch, argument: _perturbed(value)}, replayed=original))
            for name, site in after.items():
                if name not in before:
                    continue
                if site["is_observed"] and not torch.equal(site["value"], before[name]["value"]):
                    observed[argument] = name
                    continue
                density = site["fn"].log_prob(before[name]["value"])
                if density.shape != reference[name].shape or not torch.allclose(density, reference[name], rtol=1e-5, atol=1e-6):
                    edges.setdefault(name, []).append(argument)
    except Exception:  # a program that cannot be replayed: no input arrows, the rest is drawn
        return {}, {}
    return {name: tuple(arguments) for name, arguments in edges.items()}, observed


def _relations(get_model_relations, program, batch: Mapping) -> tuple[dict | None, str | None]:
    try:
        return get_model_relations(program, model_kwargs=dict(batch)), None
    except Exception as error:  # a program the inspector cannot follow: say so, keep the sites
        return None, f"{type(error).__name__}: {error}"


def _trace_pyro(name: str, variant_class, config, dataset) -> Structure:
    import pyro
    import torch
    from pyro.infer.inspect import get_model_relations

    variant = variant_class(config, dataset.x_dim, dataset.num_classes)
    arrays = example_batch(variant, dataset)
    batch = {key: torch.as_tensor(value) for key, value in arrays.items()}
    programs = {}
    # A private param store and RNG: tracing must not leak parameters or change the
    # caller's random state.
    with pyro.get_param_store().scope(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for program in PROGRAMS:
            fn = getattr(variant, program)
            sites = _wrap(name, "pyro", program, pyro_sites, fn, batch)
            relations, error = _relations(get_model_relations, fn, batch)
            edges, observed = pyro_input_dependencies(fn, batch)
            programs[program] = ProgramStructure(program, sites, relations, error, edges, observed)
    return Structure(name, "pyro", programs["model"], programs["guide"], _shapes(arrays))


def _trace_numpyro(name: str, variant_class, config, dataset) -> Structure:
    import jax.numpy as jnp
    from numpyro.infer.inspect import get_model_relations

    variant = variant_class(config, dataset.x_dim, dataset.num_classes)
    arrays = example_batch(variant, dataset)
    batch = {key: jnp.asarray(value) for key, value in arrays.items()}
    programs = {}
    for program in PROGRAMS:
        fn = getattr(variant, program)
        sites = _wrap(name, "numpyro", program, numpyro_sites, fn, batch)
        relations, error = _relations(get_model_relations, fn, batch)
        programs[program] = ProgramStructure(program, sites, relations, error)
    return Structure(name, "numpyro", programs["model"], programs["guide"], _shapes(arrays))


def _wrap(name, backend, program, sites_of, fn, batch):
    try:
        return sites_of(fn, batch)
    except Exception as error:
        raise TraceError(f"{name} ({backend}): tracing the {program} failed: {type(error).__name__}: {error}") from error


def _shapes(arrays: Mapping) -> dict[str, tuple[int, ...]]:
    return {key: tuple(np.shape(value)) for key, value in arrays.items()}


_TRACERS = {"pyro": _trace_pyro, "numpyro": _trace_numpyro}


def trace(name: str, backend: str, variant_class=None, config=None) -> Structure:
    """Trace the model and guide of variant ``name`` in ``backend``.

    ``variant_class`` and ``config`` default to the registered ``Variant`` and the
    default config; the drift tests pass an edited copy of a ``Variant`` to show the
    check catches it. Raises ``TraceError`` when the variant cannot be built
    or a program fails to run.
    """
    if backend not in _TRACERS:
        raise registry.UnknownBackendError(f"unknown backend {backend!r}; choose one of {', '.join(registry.BACKENDS)}")
    try:
        config = config if config is not None else registry.default_config(name)
        variant_class = variant_class if variant_class is not None else registry.variant_class(name, backend)
    except Exception as error:
        raise TraceError(f"{name} ({backend}): cannot load the variant: {type(error).__name__}: {error}") from error
    try:
        dataset = example_dataset(getattr(variant_class, "example_dataset", DATASET))
        return _TRACERS[backend](name, variant_class, config, dataset)
    except TraceError:
        raise
    except Exception as error:
        raise TraceError(f"{name} ({backend}): cannot build the variant: {type(error).__name__}: {error}") from error


# ---------------------------------------------------------------------------
# Drift: the card against the trace, the card against the config
# ---------------------------------------------------------------------------

_COMPARED_FIELDS = ("distribution", "observed", "event_dim", "plates")


def compare_sites(program: str, declared: Sequence, traced: Sequence[TracedSite]) -> list[str]:
    """Differences between the card's sites of ``program`` and the traced ones
    (empty when they agree): missing or extra sites, the order, and per site its
    distribution, observed flag, event dim and plates."""
    problems = []
    declared_names = [site.name for site in declared]
    traced_names = [site.name for site in traced]
    missing = [n for n in declared_names if n not in traced_names]
    extra = [n for n in traced_names if n not in declared_names]
    if missing:
        problems.append(f"{program}: the card declares {missing}, which the {program} does not sample")
    if extra:
        problems.append(f"{program}: the {program} samples {extra}, which the card does not declare")
    if not missing and not extra and declared_names != traced_names:
        problems.append(f"{program}: sites run in the order {traced_names}; the card declares {declared_names}")
    by_name = {site.name: site for site in traced}
    for site in declared:
        seen = by_name.get(site.name)
        if seen is None:
            continue
        for field in _COMPARED_FIELDS:
            want, got = _normalised(getattr(site, field)), _normalised(getattr(seen, field))
            if want != got:
                problems.append(f"{program} site {site.name!r}: {field} is {got!r} in the trace, {want!r} on the card")
    return problems


def site_drift(name: str, structure: Structure, card=None) -> list[str]:
    """Every disagreement between the card of ``name`` and a traced ``structure``."""
    card = card if card is not None else registry.card(name)
    problems = []
    for program, declared in (("model", card.model_sites), ("guide", card.guide_sites)):
        traced = structure.program(program).sample_sites
        problems += [f"{structure.backend}: {p}" for p in compare_sites(program, declared, traced)]
    return problems


def relations_drift(structure: Structure) -> list[str]:
    """Disagreements between the traced sites and the relations the inspector found
    (the diagram is drawn from the relations, the table from the sites)."""
    problems = []
    for program in PROGRAMS:
        part = structure.program(program)
        if part.relations is None:
            problems.append(f"{structure.backend}: get_model_relations failed on the {program}: {part.relations_error}")
            continue
        # The inspectors leave out point masses (Pyro drops every Delta site) and
        # NumPyro lists deterministic sites, which the trace leaves out.
        names = [site.name for site in part.sites if site.distribution != "Delta"]
        related = [n for n, d in part.relations["sample_dist"].items() if d not in ("Delta", "Deterministic")]
        if sorted(related) != sorted(names):
            problems.append(f"{structure.backend}: {program} relations cover {related}, the trace has {names}")
        observed = sorted(site.name for site in part.sites if site.observed and site.distribution != "Delta")
        # Pyro's pyro.deterministic is an observed point mass: its relations list it
        # as observed (with distribution "Deterministic"), the trace does not.
        point_masses = ("Delta", "Deterministic")
        related_observed = sorted(
            n for n in part.relations["observed"] if part.relations["sample_dist"].get(n) not in point_masses
        )
        if related_observed != observed:
            problems.append(
                f"{structure.backend}: {program} relations observe {related_observed}, the trace {observed}"
            )
    return problems


def hyperparameter_drift(name: str, card=None, config=None) -> list[str]:
    """Card hyperparameters that are not config fields, or whose default differs."""
    card = card if card is not None else registry.card(name)
    config = config if config is not None else registry.default_config(name)
    fields = {field.name for field in dataclasses.fields(config)}
    problems = []
    for hyper in card.hyperparameters:
        if hyper.name not in fields:
            problems.append(f"hyperparameter {hyper.name!r} of the card is not a field of {type(config).__name__}")
            continue
        value = getattr(config, hyper.name)
        if _normalised(value) != _normalised(hyper.default):
            problems.append(f"hyperparameter {hyper.name!r}: the config's default is {value!r}, the card's {hyper.default!r}")
    return problems


def _normalised(value):
    """Lists and tuples compare equal element by element (config values read from JSON
    are lists, dataclass defaults tuples)."""
    if isinstance(value, (list, tuple)):
        return tuple(_normalised(v) for v in value)
    return value
