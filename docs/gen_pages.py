"""Generate the docs pages that come from the code (run by mkdocs-gen-files).

For every registered variant: trace its model and guide in both backends
(:mod:`zoo.structure`), compare them with its math card, and write its page. Then the
index (the zoo table), getting started, the benchmarks page, the concepts appendix,
the API reference and the navigation (``SUMMARY.md`` for mkdocs-literate-nav).

A variant that fails to trace, or whose card and code disagree, still gets its page,
with the disagreement at the top; the problem is also logged as a warning, so
``mkdocs build --strict`` fails on it while ``mkdocs serve`` keeps working.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
for path in (str(DOCS), str(ROOT)):
    if path not in sys.path:
        sys.path.insert(0, path)


def fresh_imports() -> None:
    """Forget the zoo's modules, so that `mkdocs serve`, which runs this script again
    in the same process on every change, reads the cards and programs as they are now
    (and finds variants added since)."""
    for module in list(sys.modules):
        if module.split(".")[0] in ("zoo", "guides", "zoodocs"):
            del sys.modules[module]


fresh_imports()

from zoodocs import benchmarks_page, diagram, results, site_pages  # noqa: E402
from zoodocs.variant_page import VariantDocs, images_to_copy, page_path, render  # noqa: E402

log = logging.getLogger("mkdocs.plugins.vaezoo")

VENDORED = ("assets/vendor/katex/katex.min.js", "assets/vendor/katex/katex.min.css", "assets/vendor/mermaid/mermaid.min.js")


def collect(name: str) -> VariantDocs:
    """Card, traced structures, drift and runs of one variant."""
    from zoo import registry, structure
    from zoo.card import MathCard

    card = registry.card(name)
    if not isinstance(card, MathCard):
        raise TypeError(f"zoo/{name}/card.py: CARD is {type(card).__name__}, not a MathCard")
    docs = VariantDocs(name=name, card=card, structures={}, runs=results.latest_runs(ROOT, name))
    for backend in registry.BACKENDS:
        try:
            traced = structure.trace(name, backend)
        except structure.TraceError as error:
            docs.errors[backend] = str(error)
            continue
        docs.structures[backend] = traced
        docs.problems += structure.site_drift(name, traced, card)
        docs.problems += structure.relations_drift(traced)
    docs.problems += [f"config: {p}" for p in structure.hyperparameter_drift(name, card)]
    return docs


def main() -> None:
    import mkdocs_gen_files

    from zoo import registry

    missing = [asset for asset in VENDORED if not (DOCS / asset).is_file()]
    if missing:
        log.warning("vendored assets missing (%s): run `bash docs/install_assets.sh`", ", ".join(missing))

    variants = []
    for name in registry.names():
        try:
            variants.append(collect(name))
        except Exception as error:  # a card that does not even load: report, skip the page
            log.warning("variant %s: cannot load its card: %s: %s", name, type(error).__name__, error)
    labels = {equation.label: docs.name for docs in variants for equation in docs.card.equations()}
    measured = results.claim_records(ROOT)
    drawn = {
        docs.name: (diagram.signature(docs.structures["pyro"]), tuple(n.name for n in getattr(docs.card, "derived", ())))
        for docs in variants if "pyro" in docs.structures
    }
    for docs in variants:
        name = docs.name
        docs.other_labels = {label: owner for label, owner in labels.items() if owner != name}
        docs.claim_results = {c.id: measured[c.id] for c in docs.card.claims if c.id in measured}
        docs.same_structure = [n for n, sig in drawn.items() if n != name and name in drawn and sig == drawn[name]]
        for problem in docs.problems:
            log.warning("variant %s: %s", name, problem)
        for error in docs.errors.values():
            log.warning("variant %s: %s", name, error)
        with mkdocs_gen_files.open(page_path(name), "w") as page:
            page.write(render(docs, ROOT))
        for target, source in images_to_copy(docs).items():
            with mkdocs_gen_files.open(target, "wb") as image:
                image.write(source.read_bytes())
    names = [docs.name for docs in variants]

    with mkdocs_gen_files.open("index.md", "w") as page:
        page.write(site_pages.index(variants))
    readme = ROOT / "README.md"
    with mkdocs_gen_files.open("getting-started.md", "w") as page:
        page.write(site_pages.getting_started(readme.read_text() if readme.is_file() else None, names))
    benchmarks, problems, published = benchmarks_page.benchmarks(ROOT)
    for problem in problems:
        log.warning("benchmarks: %s", problem)
    with mkdocs_gen_files.open("benchmarks.md", "w") as page:
        page.write(benchmarks)
    for target, data in published.items():
        with mkdocs_gen_files.open(target, "wb") as output:
            output.write(data)
    with mkdocs_gen_files.open("concepts.md", "a") as page:
        page.write(site_pages.concepts_appendix(variants, ROOT))

    modules = site_pages.reference_modules(ROOT)
    for module in modules:
        with mkdocs_gen_files.open(site_pages.reference_path(module), "w") as page:
            page.write(site_pages.reference_page(module))
    with mkdocs_gen_files.open("SUMMARY.md", "w") as nav:
        nav.write(site_pages.summary(names, modules))


if __name__ in ("__main__", "<run_path>"):  # mkdocs-gen-files runs scripts with runpy.run_path
    main()
