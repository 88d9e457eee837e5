"""The generated pages other than the variants': index (the zoo table), getting
started (the README's commands), benchmarks (the benchmark scripts' result files),
the appendix of the concepts page, the API reference and the navigation."""

from __future__ import annotations

import json
import re
from pathlib import Path

from zoodocs import markdown as md
from zoodocs.results import benchmark_files, benchmark_scripts
from zoodocs.variant_page import VariantDocs, equation_links, page_path

# --- index ----------------------------------------------------------------------


def index(variants: list[VariantDocs]) -> str:
    rows = []
    for docs in variants:
        card = docs.card
        latest = next((run.headline() for run in docs.runs.values() if run.headline()), None)
        rows.append(
            (
                f"[{docs.name}]({page_path(docs.name)})",
                f'[{md.text(short_authors(card.paper.authors), in_table=True)}]({card.paper.url} "{_attribute(card.paper.title)}")',
                str(card.paper.year),
                md.text(card.objective_kind, in_table=True),
                _tick(docs, "pyro"),
                _tick(docs, "numpyro"),
                md.text(main_metric(card.evaluation), in_table=True, labels=equation_links(card, page_path(docs.name))),
                md.text(latest, in_table=True) if latest else "none yet",
            )
        )
    table = md.table(
        ("Variant", "Paper", "Year", "Objective", "Pyro", "NumPyro", "Evaluation", "Latest figure"), rows
    )
    return f"""---
hide:
  - toc
---

# vaezoo

The variational autoencoders of Liu (2023), *Review of variational autoencoders model*
(Table 1), and adVAE, each written twice, as a model-guide pair in
[Pyro](https://pyro.ai) and in [NumPyro](https://num.pyro.ai), with its mathematics
stated once in a *math card*.

Each variant's page is generated from that card and from the traced model and guide.
When the code and the card disagree, `tests/test_drift.py` fails, the page says so,
and `mkdocs build --strict` stops: the docs cannot silently drift from the code.

## The zoo

A tick means the backend's model and guide traced and matched the card when these
docs were built. *Evaluation* is the paper's metric (each page has the details);
*Latest figure* is the newest run found in `runs/` or `docs/runs/`.

{table}

New here? [Getting started](getting-started.md) trains the first model in two commands;
[Concepts](concepts.md) derives the objectives the variants share.
"""


def short_authors(authors: str) -> str:
    """``"Kingma & Welling"`` for two authors, ``"Burda et al."`` for more."""
    surnames = [name.strip().split()[-1] for name in authors.split(",") if name.strip()]
    if len(surnames) == 1:
        return surnames[0]
    if len(surnames) == 2:
        return f"{surnames[0]} & {surnames[1]}"
    return f"{surnames[0]} et al."


def main_metric(evaluation: str) -> str:
    """The first clause of a card's evaluation (up to its first semicolon)."""
    return evaluation.split(";")[0].strip()


def _attribute(value: str) -> str:
    return value.replace('"', "'").replace("|", "-")


def _tick(docs: VariantDocs, backend: str) -> str:
    if docs.backend_ok(backend):
        return "✓"
    return "✗ (fails)" if backend in docs.errors else "✗ (drift)"


# --- getting started ------------------------------------------------------------

_FENCE = re.compile(r"^(```+|~~~+)[ \t]*([^\n]*)\n(.*?)^\1\s*$", re.S | re.M)
_SHELL = ("bash", "sh", "shell", "console")
_COMMAND_HINTS = ("pip install", "vaezoo ", "pytest", "mkdocs ")


def readme_commands(readme: str) -> list[str]:
    """The README's shell blocks (fenced as bash, sh, shell or console), and any other
    fenced block that holds commands (installs, ``vaezoo``, ``pytest``, ``mkdocs``), in order."""
    return [
        match.group(3).rstrip()
        for match in _FENCE.finditer(readme)
        if match.group(2).strip().lower() in _SHELL or any(hint in match.group(3) for hint in _COMMAND_HINTS)
    ]


def getting_started(readme: str | None, variant_names: list[str]) -> str:
    first = variant_names[0] if variant_names else "vae"
    if readme is not None and readme_commands(readme):
        blocks = "\n\n".join(md.fenced(block, "bash") for block in readme_commands(readme))
        from_readme = f"These are the README's commands, included from `README.md` when the docs are built:\n\n{blocks}"
    else:
        from_readme = "The README has no commands yet; see the sections below."
    names = ", ".join(f"[{n}]({page_path(n)})" for n in variant_names)
    return f"""# Getting started

vaezoo runs on a CPU. The first run trains the VAE for ten epochs on scikit-learn's
8x8 digits, which ship with the package: no download, a minute or two.

## Install, train, test

{from_readme}

## Train any variant

```bash
vaezoo list                                   # the registered variants
vaezoo train {first} --epochs 10 --evaluate         # Pyro, digits
vaezoo train {first} --backend numpyro --epochs 10  # NumPyro
vaezoo train {first} --dataset mnist --epochs 50    # MNIST, downloaded once
vaezoo evaluate runs/{first}-pyro-digits --k 5000   # importance-sampled log-likelihood
```

A run folder (`runs/<variant>-<backend>-<dataset>`) holds the checkpoint,
`metrics.json`, `samples.png` and `reconstructions.png`; `--resume` continues it.
Every variant's page says how to train and evaluate it: {names}.

## Build these docs

The docs render offline: KaTeX and Mermaid are served from the site itself.

```bash
pip install -e ".[docs]"
bash docs/install_assets.sh   # KaTeX and Mermaid into docs/assets/vendor (npm pack)
mkdocs serve                  # http://127.0.0.1:8000, rebuilt on every change
mkdocs build --strict         # the static site in site/, as CI builds it
```
"""


# --- benchmarks -----------------------------------------------------------------


def benchmarks(root: Path) -> tuple[str, list[str]]:
    """The benchmarks page, and the problems (unreadable result files) to report."""
    problems = []
    sections = []
    for path in benchmark_files(root):
        relative = path.relative_to(root).as_posix()
        if path.suffix == ".md":
            sections.append(f"## `{relative}`\n\n" + _demote_headings(path.read_text()))
            continue
        try:
            record = json.loads(path.read_text())
        except ValueError as error:
            problems.append(f"{relative} is not valid JSON: {error}")
            continue
        sections.append(f"## `{relative}`\n\n" + json_tables(record))
    scripts = ", ".join(f"`{p.relative_to(root).as_posix()}`" for p in benchmark_scripts(root)) or "none yet"
    intro = (
        "# Benchmarks\n\nThe tables the benchmark scripts write into `benchmarks/results/`, "
        "included when the docs are built. Each script's docstring says what it measures and how "
        f"to run it. Scripts: {scripts}."
    )
    if not sections:
        sections.append("No result files yet: run a benchmark script, then rebuild the docs.")
    return "\n\n".join([intro, *sections]) + "\n", problems


def _demote_headings(text: str) -> str:
    return re.sub(r"^(#{1,5}) ", lambda m: "#" * (len(m.group(1)) + 2) + " ", text, flags=re.M)


def json_tables(record, level: int = 3) -> str:
    """A JSON record as tables: its scalars as a two-column table, each dict of
    dicts (or list of dicts) as a table with one row per entry, nested dicts of
    scalars as two-column tables."""
    if isinstance(record, list):
        return _rows_table(dict(enumerate(record))) if all(isinstance(r, dict) for r in record) else md.code(json.dumps(record))
    if not isinstance(record, dict):
        return md.code(json.dumps(record))
    scalars = {k: v for k, v in record.items() if not isinstance(v, (dict, list))}
    blocks = []
    if scalars:
        blocks.append(md.table(("Field", "Value"), ((md.code(k), md.number(v)) for k, v in scalars.items())))
    for key, value in record.items():
        if key in scalars:
            continue
        blocks.append(f"{'#' * level} {md.text(str(key))}")
        rows = dict(enumerate(value)) if isinstance(value, list) else value
        if rows and all(isinstance(v, dict) for v in rows.values()):
            blocks.append(_rows_table(rows))
        elif isinstance(value, dict):
            blocks.append(json_tables(value, level + 1))
        else:
            blocks.append(md.code(json.dumps(value)))
    return "\n\n".join(blocks)


def _rows_table(rows: dict) -> str:
    columns = list(dict.fromkeys(k for row in rows.values() for k in row))
    body = []
    for name, row in rows.items():
        cells = []
        for column in columns:
            value = row.get(column, "")
            cells.append(md.code(json.dumps(value)) if isinstance(value, (dict, list)) else md.number(value) if value != "" else "")
        body.append((md.code(name), *cells))
    return md.table(("", *(md.code(c) for c in columns)), body)


# --- concepts appendix ----------------------------------------------------------


def concepts_appendix(variants: list[VariantDocs]) -> str:
    rows = [
        (f"[{d.name}]({page_path(d.name)})", md.text(d.card.objective_kind, in_table=True),
         ", ".join(f"[({e.label})]({page_path(d.name)}#{e.label})" for e in d.card.objective))
        for d in variants
    ]
    return (
        "\n\n## Which variant uses what\n\n"
        "Generated from the math cards: each variant's objective kind and the equations of its objective.\n\n"
        + md.table(("Variant", "Objective kind", "Objective equations"), rows)
        + "\n"
    )


# --- API reference --------------------------------------------------------------


VARIANT_FILES = ("card.py", "config.py", "pyro_model.py", "numpyro_model.py")


def reference_modules(root: Path) -> list[str]:
    """Importable modules of ``zoo`` and ``guides`` for the API reference. Variant
    folders are left out (each has its page, with its source), also while a variant
    is still being written (a folder with any of the variant files)."""
    modules = []
    for package in ("zoo", "guides"):
        base = Path(root) / package
        variant_dirs = {p.parent for name in VARIANT_FILES for p in base.glob(f"*/{name}")}
        for path in sorted(base.rglob("*.py")):
            if any(parent in variant_dirs for parent in path.parents) or "__pycache__" in path.parts:
                continue
            if path.name == "__main__.py" or (path.name.startswith("_") and path.name != "__init__.py"):
                continue
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules.append(".".join(parts))
    return modules


def reference_path(module: str) -> str:
    return "reference/" + module.replace(".", "/") + ".md"


def reference_page(module: str) -> str:
    return f"# `{module}`\n\n::: {module}\n"


# --- navigation -----------------------------------------------------------------


def summary(variant_names: list[str], modules: list[str]) -> str:
    lines = [
        "* [Home](index.md)",
        "* [Getting started](getting-started.md)",
        "* [Concepts](concepts.md)",
        "* Variants",
        *(f"    * [{name}]({page_path(name)})" for name in variant_names),
        "* [Benchmarks](benchmarks.md)",
        "* API reference",
        *(f"    * [{module}]({reference_path(module)})" for module in modules),
    ]
    return "\n".join(lines) + "\n"

