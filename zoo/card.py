"""Math cards: the declared mathematics of a variant.

Every variant folder holds a ``card.py`` that defines ``CARD``, a :class:`MathCard`.
The docs pages are generated from it, and ``tests/test_drift.py`` checks that the
sites it declares are exactly the sites the Pyro and NumPyro programs trace, so the
page cannot drift from the code.

This module imports neither torch nor JAX.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Site:
    """One sample site of a model or guide.

    ``name``: the site name used in ``pyro.sample`` / ``numpyro.sample``.
    ``distribution``: the distribution class name (``"Normal"``, ``"Bernoulli"``,
    ``"Categorical"``...), as ``type(fn.base_dist if Independent else fn).__name__``.
    ``observed``: True for observed sites (``obs=...``).
    ``event_dim``: number of event dimensions of the site.
    ``plates``: names of the plates the site sits in, outermost first.
    ``description``: one line, for the docs table.
    """

    name: str
    distribution: str
    observed: bool = False
    event_dim: int = 1
    plates: tuple[str, ...] = ("data",)
    description: str = ""


@dataclass(frozen=True)
class DerivedNode:
    """A variable of the math that is not a sample site of the model or the guide, and so
    not traced: a quantity an objective computes (adVAE's transformed code z_T). The
    docs draw it in the ``program``'s diagram, computed from ``parents`` (site or input
    names). It is not compared with the code by the drift test, which checks sites."""

    name: str
    program: str  # "model" or "guide"
    parents: tuple[str, ...]
    description: str = ""
    plates: tuple[str, ...] = ("data",)


@dataclass(frozen=True)
class Equation:
    """A numbered equation of the card: ``label`` is used for cross-references
    (docstrings cite equations as ``(vae.2)``), ``latex`` is the display math
    without delimiters, ``text`` is the sentence that introduces it."""

    label: str
    latex: str
    text: str = ""


@dataclass(frozen=True)
class Hyperparameter:
    """A hyperparameter the objective or the networks name, with its default.

    The drift test checks that ``name`` is a field of the variant's config with
    this ``default``.
    """

    name: str
    default: object
    description: str
    symbol: str = ""  # LaTeX symbol used in the equations, e.g. r"\lambda"


@dataclass(frozen=True)
class Paper:
    authors: str
    title: str
    venue: str
    year: int
    url: str


@dataclass(frozen=True)
class MathCard:
    """The declared mathematics of one variant.

    ``model_sites`` and ``guide_sites`` list every sample site of the Pyro/NumPyro
    programs (factor sites excluded), in execution order.
    """

    name: str
    title: str
    paper: Paper
    idea: str
    generative: tuple[Equation, ...]
    guide: tuple[Equation, ...]
    objective: tuple[Equation, ...]
    model_sites: tuple[Site, ...]
    guide_sites: tuple[Site, ...]
    hyperparameters: tuple[Hyperparameter, ...]
    objective_kind: str
    evaluation: str
    notes: tuple[str, ...] = field(default_factory=tuple)
    # The paper's headline claims, checked by ``vaezoo reproduce`` (zoo.claims.Claim).
    claims: tuple = field(default_factory=tuple)
    derived: tuple[DerivedNode, ...] = field(default_factory=tuple)  # drawn, not traced

    def equations(self) -> tuple[Equation, ...]:
        return self.generative + self.guide + self.objective

    def hyperparameter_defaults(self) -> dict[str, object]:
        return {h.name: h.default for h in self.hyperparameters}
