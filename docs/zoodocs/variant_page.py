"""The page of one variant, generated from its math card and its traced structure.

Every page has the same sections, in this order (scvi-tools' model pages are the
model): the paper and the idea; the generative model, the guide and the objective
as the card's numbered equations, with the hyperparameters and their defaults; the
traced structure of both backends (a table of sites and a graphical model); the
source of the model, guide, config and card, included from the files at build time;
how to train and evaluate it, and the latest results when a run exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from zoodocs import diagram
from zoodocs import markdown as md

BACKEND_TITLES = {"pyro": "Pyro", "numpyro": "NumPyro"}
SOURCE_FILES = (("Pyro", "pyro_model.py"), ("NumPyro", "numpyro_model.py"), ("Config", "config.py"), ("Card", "card.py"))
_DATA_FLAGS = re.compile(r"(--(?:labels|normal-class)\s+\d+)")


@dataclass
class VariantDocs:
    """Everything the page of one variant shows."""

    name: str
    card: object  # zoo.card.MathCard
    structures: dict  # backend -> zoo.structure.Structure (the backends that traced)
    errors: dict = field(default_factory=dict)  # backend -> why tracing failed
    problems: list = field(default_factory=list)  # drift: card vs trace vs config
    runs: dict = field(default_factory=dict)  # backend -> zoodocs.results.Run
    other_labels: dict = field(default_factory=dict)  # equation label -> variant, for the other cards

    def backend_ok(self, backend: str) -> bool:
        """Traced, and no drift reported for this backend."""
        return backend in self.structures and not any(p.startswith(f"{backend}:") for p in self.problems)


def page_path(name: str) -> str:
    return f"variants/{name}.md"


def image_path(name: str, backend: str, image: str) -> str:
    """Where a run's picture is copied in the site, relative to the docs root."""
    return f"variants/{name}/{backend}-{image}"


def equation_links(card, page: str = "") -> dict[str, str]:
    """Each equation label of ``card`` and its anchor on the variant's page
    (``page``: the page's path relative to the linking page, empty on the page itself)."""
    return {equation.label: f"{page}#{equation.label}" for equation in card.equations()}


def render(docs: VariantDocs, source_root: Path) -> str:
    """The Markdown of the page (``source_root``: where ``zoo/<name>/`` lives)."""
    # Citations of this card's equations point into the page, of another card's to its page.
    labels = {label: f"{variant}.md#{label}" for label, variant in docs.other_labels.items()}
    labels.update(equation_links(docs.card))
    sections = [
        f"# {md.text(docs.card.title)}",
        _drift_notice(docs),
        _paper(docs.card, labels),
        _equations("Generative model", docs.card.generative, labels),
        _equations("Guide", docs.card.guide, labels),
        _objective(docs.card, labels),
        _structure(docs, labels),
        _source(docs.name, source_root),
        _train(docs, labels),
    ]
    return "\n\n".join(section for section in sections if section) + "\n"


def _drift_notice(docs: VariantDocs) -> str:
    lines = [f"- {md.text(problem)}" for problem in docs.problems]
    lines += [f"- {BACKEND_TITLES.get(b, b)}: {md.text(error)}" for b, error in docs.errors.items()]
    if not lines:
        return ""
    body = "The math card and the code disagree, so this page may be wrong:\n\n" + "\n".join(lines)
    return '!!! danger "Card and code disagree"\n\n' + md.indent(body)


def _paper(card, labels) -> str:
    paper = card.paper
    return (
        "## The paper\n\n"
        f"{md.text(paper.authors)}. *[{md.text(paper.title)}]({paper.url})*. {md.text(paper.venue)}, {paper.year}.\n\n"
        f"{md.text(card.idea, labels=labels)}"
    )


def _equations(title: str, equations, labels) -> str:
    blocks = [f"## {title}"]
    for equation in equations:
        if equation.text:
            blocks.append(md.text(equation.text, labels=labels))
        blocks.append(md.display_equation(equation.latex, equation.label))
    return "\n\n".join(blocks)


def _objective(card, labels) -> str:
    blocks = [
        _equations("Objective", card.objective, labels),
        f"Objective kind: **{md.text(card.objective_kind)}**.",
        "### Hyperparameters",
        "Every hyperparameter is a field of the variant's `Config` with this default "
        "(checked by `tests/test_drift.py`); change one with `--set name=value`.",
        md.table(
            ("Name", "Symbol", "Default", "Meaning"),
            (
                (md.code(h.name), md.inline_math(h.symbol, in_table=True), md.code(md.value_repr(h.default)), md.text(h.description, in_table=True, labels=labels))
                for h in card.hyperparameters
            ),
        ),
    ]
    if card.notes:
        blocks += ["### Notes", "\n".join(f"- {md.text(note, labels=labels)}" for note in card.notes)]
    return "\n\n".join(blocks)


# --- traced structure -----------------------------------------------------------


def _structure(docs: VariantDocs, labels) -> str:
    blocks = ["## Traced structure"]
    any_structure = next(iter(docs.structures.values()), None)
    if any_structure is not None:
        inputs = ", ".join(f"{md.code(k)} {md.code(tuple(v))}" for k, v in any_structure.inputs.items())
        blocks.append(
            "The model and the guide run once under each backend's tracer, with the default "
            f"configuration, on a training batch of the digits data ({inputs}). The tables list "
            "every site the tracer saw; the diagrams draw the dependencies that "
            "`pyro.infer.inspect.get_model_relations` and `numpyro.infer.inspect.get_model_relations` "
            "found. Shaded double circles are observed, white circles latent, hexagons factors "
            "(extra loss terms); boxes are plates."
        )
    blocks.append("### Sample sites")
    tabs = []
    for backend, title in BACKEND_TITLES.items():
        if backend in docs.structures:
            tabs.append((title, _site_table(docs.card, docs.structures[backend], labels)))
        else:
            tabs.append((title, f"Tracing failed: {md.text(docs.errors.get(backend, 'not traced'))}"))
    blocks.append(md.tabs(tabs))
    blocks.append("### Graphical model")
    for backend, title in BACKEND_TITLES.items():
        structure = docs.structures.get(backend)
        blocks.append(f"**{title}**")
        if structure is None:
            blocks.append(f"No diagram: tracing failed ({md.text(docs.errors.get(backend, 'not traced'))}).")
            continue
        parts = [(f"model p ({title})", structure.model), (f"guide q ({title})", structure.guide)]
        blocks.append(md.fenced(diagram.mermaid(parts), "mermaid"))
        for _, part in parts:
            if part.relations is None:
                blocks.append(f"The {part.program}'s relations could not be computed ({md.text(part.relations_error)}); its sites are drawn without arrows.")
    return "\n\n".join(blocks)


def _site_table(card, structure, labels) -> str:
    """The traced sites of the model and of the guide, each with the card's description."""
    declared = {"model": {s.name: s for s in card.model_sites}, "guide": {s.name: s for s in card.guide_sites}}
    blocks = []
    for program in ("model", "guide"):
        rows = []
        for site in structure.program(program).sites:
            on_card = declared[program].get(site.name)
            if site.is_factor:
                note = "factor (not a card site)"
            elif on_card is None:
                note = "**not on the card**"
            else:
                note = md.text(on_card.description, in_table=True, labels=labels) or "declared"
            rows.append(
                (
                    md.code(site.name),
                    site.kind,
                    site.distribution,
                    md.code(site.wrapped),
                    md.code(site.event_shape),
                    ", ".join(site.plates) or "none",
                    note,
                )
            )
        header = ("Site", "Kind", "Distribution", "Constructed as", "Event shape", "Plates", "On the card")
        blocks += [f"**{program.capitalize()}**", md.table(header, rows)]
    return "\n\n".join(blocks)


# --- source, training, results --------------------------------------------------


def _source(name: str, source_root: Path) -> str:
    tabs = []
    for title, filename in SOURCE_FILES:
        relative = f"zoo/{name}/{filename}"
        if (Path(source_root) / relative).is_file():
            # pymdownx.snippets includes the file when the page is built.
            tabs.append((title, f'```python title="{relative}"\n--8<-- "{relative}"\n```'))
    if not tabs:
        return ""
    return "## Source\n\nThe files of `zoo/" + name + "/`, included when the docs are built.\n\n" + md.tabs(tabs)


def train_commands(docs: VariantDocs) -> list[str]:
    """The commands that train and evaluate the variant in both backends."""
    card_text = " ".join([docs.card.evaluation, *docs.card.notes])
    flags = " ".join(dict.fromkeys(_DATA_FLAGS.findall(card_text)))
    if not flags and "one-class" in card_text.lower():
        flags = "--normal-class 0"
    extra = f" {flags}" if flags else ""
    return [
        "# Pyro (the default backend), on the embedded 8x8 digits",
        f"vaezoo train {docs.name} --epochs 10 --evaluate{extra}",
        "# NumPyro",
        f"vaezoo train {docs.name} --backend numpyro --epochs 10 --evaluate{extra}",
        "# evaluate a finished run again, with 5000 importance samples",
        f"vaezoo evaluate runs/{docs.name}-pyro-digits --k 5000",
        "# MNIST (downloaded once into ~/.cache/vaezoo)",
        f"vaezoo train {docs.name} --dataset mnist --epochs 50 --evaluate{extra}",
    ]


def _train(docs: VariantDocs, labels) -> str:
    blocks = [
        "## Train and evaluate",
        md.fenced("\n".join(train_commands(docs)), "bash"),
        f"The paper's evaluation: {md.text(docs.card.evaluation, labels=labels)}.",
        "Every run writes `metrics.json`, `samples.png` and `reconstructions.png` into its folder "
        f"(`runs/{docs.name}-<backend>-<dataset>` unless `--out` says otherwise), and `--evaluate` "
        "adds `eval.json`. Any hyperparameter of the table above can be set with `--set name=value`; "
        "`--labels N` and `--normal-class C` choose the semi-supervised and one-class data.",
        "### Latest results",
    ]
    if not docs.runs:
        blocks.append(
            "No run of this variant was found when the docs were built. Train one with the commands "
            f"above (into `runs/{docs.name}-<backend>-<dataset>`, or copy its folder to "
            f"`docs/runs/{docs.name}/` to publish it) and rebuild: its figures and pictures appear here."
        )
        return "\n\n".join(blocks)
    for backend, run in docs.runs.items():
        title = BACKEND_TITLES.get(backend, backend)
        blocks.append(f"#### {title}: `{run.path.name}`")
        blocks.append(md.table(("Figure", "Value"), ((md.code(k), md.number(v)) for k, v in run.figures().items())))
        pictures = []
        for image in run.images:
            label = image.removesuffix(".png")
            target = image_path(docs.name, backend, image).removeprefix("variants/")
            pictures.append(f"![{label} ({title})]({target}){{ loading=lazy }}")
        if pictures:
            blocks.append("Prior samples, and test images (odd rows) with their reconstructions (even rows):")
            blocks.append("\n".join(pictures))
    return "\n\n".join(blocks)


def images_to_copy(docs: VariantDocs) -> dict[str, Path]:
    """``{site path: source file}`` of the run pictures the page shows."""
    return {
        image_path(docs.name, backend, image): path
        for backend, run in docs.runs.items()
        for image, path in run.images.items()
    }
