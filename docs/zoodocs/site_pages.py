"""The generated pages other than the variants' and the benchmarks': index (the zoo
table), getting started (the README's commands), the appendix of the concepts page, the API reference and the navigation."""

from __future__ import annotations

import json
import re
from pathlib import Path

from zoodocs import markdown as md
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
                md.text(latest, in_table=True) if latest else "no run yet",
            )
        )
    table = md.table(
        ("Variant", "Paper", "Year", "Objective", "Pyro", "NumPyro", "The zoo evaluates", "Result of a short run"), rows
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
docs were built. *The zoo evaluates* names the zoo's metric for the variant (each page
has the details, and the paper's own figures beside ours); *Result of a short run* is
the headline figure of the newest run in `runs/` or `docs/runs/` (a short run on the
8x8 digits, published with the docs by `python scripts/make_results.py`), with the
PSIS k-hat of its importance-sampled estimate (below 0.7: trustworthy).

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

vaezoo runs on a CPU; no download is needed to start. The README's first command
installs the package and trains the VAE for 100 epochs on scikit-learn's 8x8 digits
(1,437 training and 360 test images, shipped with scikit-learn). It takes a minute or
two. You see a progress bar per epoch and one line per epoch with the training loss
(about 45 nats per image at first, falling to about 25), then a table with the test
ELBO, the importance-sampled log-likelihood and its PSIS k-hat, and the folder that
holds the run's pictures and metrics (`runs/vae-pyro-digits`).

## Install, train, test

{from_readme}

## Train any variant

```bash
vaezoo list                                   # the registered variants
vaezoo train {first} --epochs 10 --evaluate         # Pyro, digits
vaezoo train {first} --backend numpyro --epochs 10  # NumPyro
vaezoo train {first} --dataset fashion-mnist --epochs 20  # Fashion-MNIST (Debian's dataset-fashion-mnist)
vaezoo evaluate runs/{first}-pyro-digits --k 5000   # importance-sampled log-likelihood, with k-hat
vaezoo reproduce {first} --budget quick             # the paper's claims against their baselines
```

A run folder (`runs/<variant>-<backend>-<dataset>`) holds the checkpoint,
`metrics.json`, `samples.png` and `reconstructions.png`; `--resume` continues it.
Every variant's page says how to train and evaluate it: {names}.

## From Python

`zoo.train` and `zoo.load` return a trained model whose methods take and give numpy
arrays, in either backend (the [API reference](reference/zoo/api.md) lists them all).
This example is `examples/python_api.py`; the test suite runs it:

```python title="examples/python_api.py"
--8<-- "examples/python_api.py"
```

Running it prints the run, the mean importance-sampled log p(x) of 100 test images
(about -25 nats after 20 epochs) with the share of images whose k-hat exceeds 0.7, and
the reconstruction error.

## Build these docs

The docs render offline: KaTeX and Mermaid are served from the site itself.

```bash
pip install -e ".[docs]"
bash docs/install_assets.sh   # KaTeX and Mermaid into docs/assets/vendor (npm pack)
mkdocs serve                  # http://127.0.0.1:8000, rebuilt on every change
mkdocs build --strict         # the static site in site/, as CI builds it
python scripts/make_results.py  # retrain the short runs the variant pages show
```
"""


# --- concepts appendix ----------------------------------------------------------


def concepts_appendix(variants: list[VariantDocs], root: Path | None = None) -> str:
    rows = [
        (f"[{d.name}]({page_path(d.name)})", md.text(d.card.objective_kind, in_table=True),
         ", ".join(f"[({e.label})]({page_path(d.name)}#{e.label})" for e in d.card.objective))
        for d in variants
    ]
    from zoo.registry import TABLE_ORDER

    built = {d.name for d in variants}
    coming = [name for name in TABLE_ORDER if name not in built]
    text = (
        "\n\n## Which variant uses what\n\n"
        "Generated from the math cards: each variant's objective kind and the equations of its objective.\n\n"
        + md.table(("Variant", "Objective kind", "Objective equations"), rows)
        + "\n"
    )
    if coming:
        text += (
            "\nNot in the zoo yet (rows of the review's Table 1 still being written): "
            + ", ".join(md.code(name) for name in coming)
            + ". Where this page names them, it describes what they will use.\n"
        )
    if root is not None:
        text += khat_table(variants, Path(root))
    return text


def khat_findings(variants: list[VariantDocs], root: Path) -> list[tuple[str, str, float, float | None]]:
    """``(where, figure, mean k-hat, share above 0.7)`` of the zoo's own importance-sampled
    figures whose k-hat exceeds 0.7: published runs and benchmark result files."""
    found = []
    for docs in variants:
        for backend, run in docs.runs.items():
            record = run.evaluation or {}
            khat, share = record.get("psis_khat_mean"), record.get("psis_khat_fraction_above_0.7")
            if isinstance(khat, (int, float)) and (khat > 0.7 or (isinstance(share, (int, float)) and share > 0.5)):
                found.append((f"{docs.name} ({backend}, {run.dataset}, short run)", "test log-likelihood", khat, share))
    folder = Path(root) / "benchmarks" / "results"
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text())
        except ValueError:
            continue
        for where, khat, share in _khat_leaves(record, path.stem):
            if khat > 0.7 or (share is not None and share > 0.5):
                found.append((where, "importance-sampled figure", khat, share))
    return found


def _khat_leaves(record, where: str):
    if isinstance(record, dict):
        khat = next((v for k, v in record.items() if "khat" in k and "mean" in k and isinstance(v, (int, float))), None)
        share = next((v for k, v in record.items() if "khat" in k and ("fraction" in k or "above" in k) and isinstance(v, (int, float))), None)
        if khat is not None:
            yield where, float(khat), share
        for key, value in record.items():
            if isinstance(value, (dict, list)):
                yield from _khat_leaves(value, f"{where} / {key}")
    elif isinstance(record, list):
        for index, value in enumerate(record):
            yield from _khat_leaves(value, f"{where} / {index}")


def khat_table(variants: list[VariantDocs], root: Path) -> str:
    found = khat_findings(variants, root)
    heading = "\n## Where the zoo's figures have k-hat above 0.7\n\n"
    if not found:
        return heading + "None of the published runs or benchmark results has a mean k-hat above 0.7.\n"
    rows = [(md.text(where, in_table=True), md.text(figure, in_table=True), md.number(khat),
             md.number(share) if share is not None else "—") for where, figure, khat, share in found]
    return (
        heading
        + "Generated from the published runs and `benchmarks/results/`: read these figures as loose lower bounds.\n\n"
        + md.table(("Where", "Figure", "Mean k-hat", "Share above 0.7"), rows)
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

