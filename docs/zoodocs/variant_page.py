"""The page of one variant, generated from its math card and its traced structure.

Every page has the same sections, in this order (scvi-tools' model pages are the
model): the paper and the idea; the generative model, the guide and the objective
as the card's numbered equations, with the hyperparameters and their defaults; the
traced structure of both backends (a table of sites and a graphical model); the
source of the model, guide, config and card, included from the files at build time;
how to train and evaluate it, and the latest results when a run exists.
"""

from __future__ import annotations

import html
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
    claim_results: dict = field(default_factory=dict)  # claim id -> its record in claims.json
    same_structure: list = field(default_factory=list)  # other variants with the same diagram

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
        _results(docs, labels),
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
            "(extra loss terms), dashed boxes the inputs a program conditions on; the other boxes are plates, "
            "with their size (N: the minibatch, the data plate scaled to the dataset size in training)."
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
    drawn = diagram_structures(docs)
    if len(drawn) == 1 and len(docs.structures) == len(BACKEND_TITLES):
        blocks.append(
            "Both backends traced the same sites, plates and dependencies, so one diagram stands for both."
        )
    if docs.same_structure:
        others = ", ".join(f"[{n}]({n}.md)" for n in docs.same_structure)
        blocks.append(
            f"The same graphical model as {others}: these variants differ in their objective "
            "(below), not in their model or guide."
        )
    for title, structure in drawn:
        if len(drawn) > 1:
            blocks.append(f"**{title}**")
        parts = [(f"model p ({title})", structure.model), (f"guide q ({title})", structure.guide)]
        blocks.append(md.fenced(diagram.mermaid(parts, getattr(docs.card, "derived", ())), "mermaid"))
        for _, part in parts:
            if part.relations is None:
                blocks.append(f"The {part.program}'s relations could not be computed ({md.text(part.relations_error)}); its sites are drawn without arrows.")
    derived = getattr(docs.card, "derived", ())
    if derived:
        described = "; ".join(f"{md.code(node.name)}: {md.text(node.description, labels=labels)}" for node in derived)
        blocks.append(
            "Rounded boxes with dotted arrows are quantities of the math that are not sample sites, "
            f"so the tracer does not see them (the card declares them): {described}."
        )
    for backend, title in BACKEND_TITLES.items():
        if backend not in docs.structures:
            blocks.append(f"No {title} diagram: tracing failed ({md.text(docs.errors.get(backend, 'not traced'))}).")
    return "\n\n".join(blocks)


def diagram_structures(docs: VariantDocs) -> list[tuple[str, object]]:
    """``(title, structure)`` of the diagrams to draw: one when the backends' traces
    draw the same picture, else one per backend (the arrows from the inputs, found in
    Pyro, are drawn on the NumPyro diagram too where its sites have the same names)."""
    import dataclasses

    traced = {b: s for b, s in docs.structures.items()}
    if not traced:
        return []
    signatures = {diagram.signature(s) for s in traced.values()}
    if len(signatures) == 1:
        title = " and ".join(BACKEND_TITLES.get(b, b) for b in traced)
        return [(title, traced.get("pyro", next(iter(traced.values()))))]
    pyro = traced.get("pyro")
    drawn = []
    for backend, structure in traced.items():
        if pyro is not None and backend != "pyro":
            programs = {}
            for program in ("model", "guide"):
                part, source = structure.program(program), pyro.program(program)
                names = {site.name for site in part.sites}
                edges = {k: v for k, v in source.input_edges.items() if k in names}
                observed = {k: v for k, v in source.observed_inputs.items() if v in names}
                programs[program] = dataclasses.replace(part, input_edges=edges, observed_inputs=observed)
            structure = dataclasses.replace(structure, **programs)
        drawn.append((BACKEND_TITLES.get(backend, backend), structure))
    return drawn


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


def data_flags(card) -> list[str]:
    """The data options a variant trains with (``--labels 100``, ``--normal-class 0``),
    read from its card: its claims' options first, then its evaluation text."""
    for claim in getattr(card, "claims", ()) or ():
        options = dict(claim.ours.options)
        flags = []
        if options.get("labels") is not None:
            flags += ["--labels", str(options["labels"])]
        if options.get("normal_class") is not None:
            flags += ["--normal-class", str(options["normal_class"])]
        if flags:
            return flags
    card_text = " ".join([card.evaluation, *card.notes])
    found = list(dict.fromkeys(_DATA_FLAGS.findall(card_text)))
    if not found and "one-class" in card_text.lower():
        found = ["--normal-class 0"]
    return [part for flag in found for part in flag.split()]


def train_commands(docs: VariantDocs) -> list[str]:
    """The commands that train and evaluate the variant in both backends."""
    flags = " ".join(data_flags(docs.card))
    extra = f" {flags}" if flags else ""
    return [
        "# Pyro (the default backend), on the embedded 8x8 digits",
        f"vaezoo train {docs.name} --epochs 10 --evaluate{extra}",
        "# NumPyro",
        f"vaezoo train {docs.name} --backend numpyro --epochs 10 --evaluate{extra}",
        "# evaluate a finished run again, with 5000 importance samples",
        f"vaezoo evaluate runs/{docs.name}-pyro-digits --k 5000",
        "# Fashion-MNIST (Debian's dataset-fashion-mnist, or downloaded once into ~/.cache/vaezoo)",
        f"vaezoo train {docs.name} --dataset fashion-mnist --epochs 50 --evaluate{extra}",
        "# the paper's claims, checked at an equal budget against their baselines",
        f"vaezoo reproduce {docs.name} --budget quick",
    ]


def _train(docs: VariantDocs, labels) -> str:
    blocks = [
        "## Train and evaluate",
        md.fenced("\n".join(train_commands(docs)), "bash"),
        f"The zoo evaluates it by: {md.text(docs.card.evaluation, labels=labels)}.",
        "Every run writes `metrics.json`, `samples.png` and `reconstructions.png` into its folder "
        f"(`runs/{docs.name}-<backend>-<dataset>` unless `--out` says otherwise), and `--evaluate` "
        "adds `eval.json`. Any hyperparameter of the table above can be set with `--set name=value`.",
    ]
    return "\n\n".join(blocks)


# Figures of a run shown first, with their names in words; any other scalar follows.
FIGURE_NAMES = {
    "dataset": "data",
    "epochs": "epochs trained",
    "test_elbo_500": "test ELBO (500 test images, nats)",
    "test_log_likelihood": "importance-sampled test log-likelihood (nats)",
    "psis_khat_mean": "mean PSIS k-hat of those weights",
    "psis_khat_fraction_above_0.7": "share of test images with k-hat > 0.7",
    "k": "importance samples per image",
    "seconds_per_epoch": "seconds per epoch",
}
HIDDEN_FIGURES = {"variant", "backend", "train_loss", "test_nll", "epochs_trained", "binarize", "num_test",
                  "test_log_likelihood_stderr", "test_elbo"}


def figure_rows(run) -> list[tuple[str, str]]:
    """The run's figures as (name, value) rows: the named ones first, in order, with
    the importance-sampled log-likelihood's k-hat beside it."""
    figures = run.figures()
    rows = []
    for key, name in FIGURE_NAMES.items():
        if key in figures and figures[key] is not None:
            value = md.number(figures[key])
            if key == "test_log_likelihood" and "test_log_likelihood_stderr" in figures:
                value += f" ± {md.number(figures['test_log_likelihood_stderr'])}"
            rows.append((md.text(name, in_table=True), value))
    for key, value in figures.items():
        if key not in FIGURE_NAMES and key not in HIDDEN_FIGURES and value is not None:
            rows.append((md.code(key), md.number(value)))
    return rows


def _results(docs: VariantDocs, labels) -> str:
    blocks = ["## Results"]
    blocks.append(_claims_table(docs, labels))
    if not docs.runs:
        blocks.append(
            "No run of this variant was found when the docs were built. Train one with the commands "
            f"below, or run `python scripts/make_results.py {docs.name}` to publish a short run with the docs."
        )
        return "\n\n".join(b for b in blocks if b)
    for backend, run in docs.runs.items():
        title = BACKEND_TITLES.get(backend, backend)
        where = "published with the docs" if "docs/runs" in run.path.as_posix() else "a local run"
        blocks.append(f"### A short run: {title}, {md.text(run.dataset)}")
        blocks.append(
            f"From `{run.path.name}` ({where}; made by `python scripts/make_results.py`). These figures show "
            "what the variant does after a short run on small images; they are not the paper's protocol."
        )
        pictures = []
        for image in run.images:
            label = image.removesuffix(".png").replace("_", " ")
            target = image_path(docs.name, backend, image).removeprefix("variants/")
            pictures.append(f"![{label} ({title})]({target}){{ .vaezoo-result loading=lazy }}")
        samples = run.metrics.get("samples")
        if isinstance(samples, list) and samples and all(isinstance(t, str) for t in samples):
            # A text variant: its prior samples are sequences, shown as text.
            shown = "\n".join(html.escape(t) for t in samples)
            blocks.append("Prior samples, decoded:")
            blocks.append(f'<pre class="vaezoo-samples">{shown}</pre>')
        if pictures:
            blocks.append(
                "Prior samples; test images (odd rows) above their reconstructions (even rows)"
                + ("; and the variant's own pictures" if len(pictures) > 2 else "") + ":"
            )
            blocks.append("\n".join(pictures))
        blocks.append(md.table(("Figure", "Value"), figure_rows(run)))
    return "\n\n".join(b for b in blocks if b)


def _claims_table(docs: VariantDocs, labels) -> str:
    claims = getattr(docs.card, "claims", ()) or ()
    if not claims:
        return ""
    measured = docs.claim_results or {}
    rows = []
    for claim in claims:
        paper = claim.paper
        paper_cell = "not given"
        if paper is not None:
            sure = PAPER_STATUS_WORDS.get(paper.status, paper.status)
            paper_cell = f"{md.text(paper.value, in_table=True)} ({md.text(paper.source, in_table=True)}; {sure})"
        result = measured.get(claim.id)
        ours, verdict = "not run yet", "—"
        if result:
            def lines(value) -> str:
                return "<br>".join(md.text(part, in_table=True) for part in str(value).split("<br>")) or "—"

            ours, verdict = lines(result.get("summary", "")), lines(result.get("verdict", "—"))
        rows.append((md.text(claim.statement, in_table=True, labels=labels), paper_cell, ours, verdict))
    intro = (
        "### The paper's claims\n\nEach claim is checked by `vaezoo reproduce "
        f"{docs.name}` at an equal budget against its baseline (hyperparameters chosen on a "
        "validation split, never on the test set). *Ours* is the mean over seeds of the last "
        "recorded run (`benchmarks/results/claims.json`)."
    )
    return intro + "\n\n" + md.table(("Claim", "The paper's figure", "Ours", "Verdict"), rows)


PAPER_STATUS_WORDS = {
    "confirmed": "checked against the paper",
    "secondary": "as quoted by a third-party reproduction",
    "recalled": "quoted from memory of the paper, not re-checked",
    "unconfirmed": "could not be checked",
}


def images_to_copy(docs: VariantDocs) -> dict[str, Path]:
    """``{site path: source file}`` of the run pictures the page shows."""
    return {
        image_path(docs.name, backend, image): path
        for backend, run in docs.runs.items()
        for image, path in run.images.items()
    }
