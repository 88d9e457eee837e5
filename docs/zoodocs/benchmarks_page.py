"""The Benchmarks page: the benchmark scripts' JSON results as tables and plots.

Each result file of ``benchmarks/results/`` becomes a section: what its script
measures (the script's docstring), its settings as a short list, and its records as
tables, one row per run. Long arrays (per-epoch losses, sweeps) are not printed:
they are drawn (matplotlib, at build time) and the whole file is offered for
download. Machine-specific strings (absolute paths, kernel builds) are left out.
``benchmarks/README.md``, the measured figures in words, opens the page.
"""

from __future__ import annotations

import ast
import io
import json
import re
from pathlib import Path

from zoodocs import markdown as md

LONG_LIST = 8  # lists of numbers longer than this are plotted, not printed
MAX_COLUMNS = 12  # a table with more scalar columns is split by its sub-records
HIDDEN_KEYS = {"platform", "hostname", "node", "command_line", "cwd", "argv"}
_ABSOLUTE_PATH = re.compile(r"(?<![\w.])/(?:[\w.+-]+/)+[\w.+-]*")


def clean(value):
    """Scalars as shown: absolute paths reduced to their last part."""
    if isinstance(value, str):
        return _ABSOLUTE_PATH.sub(lambda m: Path(m.group(0)).name or m.group(0), value)
    return value


def is_number_list(value) -> bool:
    """A list of measurements (at least one non-integer: a list of class indices is not a curve)."""
    return (
        isinstance(value, list) and bool(value)
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        and any(isinstance(v, float) for v in value)
    )


def is_scalar(value) -> bool:
    return value is None or isinstance(value, (str, int, float, bool)) or (
        isinstance(value, list) and len(value) <= LONG_LIST and all(isinstance(v, (str, int, float, bool)) for v in value)
    )


def shown(value) -> str:
    value = clean(value)
    if isinstance(value, list):
        return ", ".join(md.number(v) if isinstance(v, (int, float)) else md.text(str(v), in_table=True) for v in value)
    if value is None:
        return "—"
    return md.number(value) if isinstance(value, (int, float)) else md.text(str(value), in_table=True)


def flatten(record: dict, prefix: str = "") -> tuple[dict, dict]:
    """``(scalars, curves)`` of a record: its scalar leaves by dotted path, and its long
    number lists by dotted path."""
    scalars, curves = {}, {}
    for key, value in record.items():
        if key in HIDDEN_KEYS:
            continue
        path = f"{prefix}{key}"
        if is_number_list(value) and len(value) > LONG_LIST:
            curves[path] = value
        elif is_scalar(value):
            scalars[path] = value
        elif isinstance(value, dict):
            inner_scalars, inner_curves = flatten(value, path + ".")
            scalars.update(inner_scalars)
            curves.update(inner_curves)
    return scalars, curves


class Page:
    """The page being written: Markdown blocks and the plots it links to."""

    def __init__(self):
        self.blocks: list[str] = []
        self.images: dict[str, bytes] = {}

    def plot(self, name: str, title: str, curves: dict[str, list], ylabel: str = "") -> str:
        """A line plot of ``curves`` (label -> values) as a PNG of the page; its Markdown."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(figsize=(6.4, 3.4), dpi=110)
        for label, values in curves.items():
            axes.plot(range(1, len(values) + 1), values, label=label, linewidth=1.4)
        axes.set_xlabel("index (epoch, step or sweep point)")
        if ylabel:
            axes.set_ylabel(ylabel)
        axes.set_title(title, fontsize=10)
        axes.grid(alpha=0.3)
        if 1 < len(curves) <= 12:
            axes.legend(fontsize=7, frameon=False)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        plt.close(figure)
        path = f"benchmarks/plots/{name}.png"
        self.images[path] = buffer.getvalue()
        return f"![{md.text(title)}](benchmarks/plots/{name}.png){{ loading=lazy }}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def rows_table(rows: dict) -> tuple[str, dict]:
    """A table with one row per entry of ``rows`` (each a dict), its scalar leaves as
    columns; returns the table and the long lists found (row label -> {path: values})."""
    flat = {}
    curves = {}
    for name, row in rows.items():
        scalars, row_curves = flatten(row) if isinstance(row, dict) else ({"value": row}, {})
        flat[name] = scalars
        for path, values in row_curves.items():
            curves.setdefault(path, {})[str(name)] = values
    columns = list(dict.fromkeys(c for scalars in flat.values() for c in scalars))
    body = [(md.code(str(name)), *(shown(scalars.get(c)) if c in scalars else "" for c in columns)) for name, scalars in flat.items()]
    return md.table(("", *(md.code(c) for c in columns)), body), curves


def _is_table_of_rows(value) -> bool:
    """A dict or list of records (dicts) that fits one table."""
    rows = value if isinstance(value, dict) else dict(enumerate(value)) if isinstance(value, list) else None
    if not rows or not all(isinstance(r, dict) for r in rows.values()):
        return False
    columns = {c for r in rows.values() for c in flatten(r)[0]}
    return len(columns) <= MAX_COLUMNS


def render_record(page: Page, record, title: str, level: int, slug: str) -> None:
    """Append the sections of one JSON value to ``page``."""
    if isinstance(record, list) and _is_table_of_rows(record):
        record = {str(i): r for i, r in enumerate(record)}
    if not isinstance(record, dict):
        page.blocks.append(shown(record))
        return
    if _is_table_of_rows(record):
        table, curves = rows_table(record)
        page.blocks.append(table)
        for path, lines in curves.items():
            page.blocks.append(page.plot(f"{slug}-{_slug(path)}", f"{title}: {path}", lines))
        return
    scalars = {k: v for k, v in record.items() if is_scalar(v) and k not in HIDDEN_KEYS}
    if scalars:
        page.blocks.append(md.table(("Field", "Value"), ((md.code(k), shown(v)) for k, v in scalars.items())))
    direct_curves = {k: v for k, v in record.items() if is_number_list(v) and len(v) > LONG_LIST}
    if direct_curves:
        page.blocks.append(page.plot(f"{slug}-curves", title, direct_curves))
    for key, value in record.items():
        if key in scalars or key in direct_curves or key in HIDDEN_KEYS:
            continue
        if isinstance(value, (dict, list)) and value:
            # Two heading levels under the file's own; deeper parts are labelled in bold,
            # so the page's table of contents stays a list of files and their parts.
            title_line = f"{'#' * level} {md.text(str(key))}" if level <= 5 else f"**{md.text(str(title))} / {md.text(str(key))}**"
            page.blocks.append(title_line)
            render_record(page, value, f"{title} / {key}", level + 1, f"{slug}-{_slug(str(key))}")


def script_summary(script: Path) -> str:
    """The first paragraph of a benchmark script's docstring."""
    try:
        doc = ast.get_docstring(ast.parse(script.read_text())) or ""
    except (OSError, SyntaxError):
        return ""
    return doc.split("\n\n")[0].replace("\n", " ").strip()


def _script_for(result: Path, scripts: list[Path]) -> Path | None:
    stem = result.stem
    for script in sorted(scripts, key=lambda p: -len(p.stem)):
        if stem == script.stem or stem.startswith(script.stem + "-") or stem.startswith(script.stem + "_"):
            return script
    return None


def _demote_headings(text: str, by: int = 1) -> str:
    return re.sub(r"^(#{1,5}) ", lambda m: "#" * (len(m.group(1)) + by) + " ", text, flags=re.M)


def benchmarks(root: Path) -> tuple[str, list[str], dict[str, bytes]]:
    """The Benchmarks page, the problems to report (unreadable files), and the images
    and result files to publish beside it (``{site path: bytes}``)."""
    root = Path(root)
    page = Page()
    problems: list[str] = []
    results = sorted((root / "benchmarks" / "results").glob("*.json")) if (root / "benchmarks" / "results").is_dir() else []
    scripts = sorted((root / "benchmarks").glob("*.py")) if (root / "benchmarks").is_dir() else []
    readme = root / "benchmarks" / "README.md"

    page.blocks.append(
        "# Benchmarks\n\nWhat the benchmark scripts of `benchmarks/` measured, on this project's "
        "machines (2 CPU cores unless a section says otherwise). Each compares a variant with its "
        "baseline at an equal budget. The first part is the scripts' own account "
        "(`benchmarks/README.md`); then every result file as tables and plots, with the file to download."
    )
    if readme.is_file():
        text = readme.read_text()
        text = re.sub(r"\A# [^\n]*\n", "", text)  # the page has its own title
        page.blocks.append("## What was measured\n\n" + _demote_headings(text, by=1))
    page.blocks.append("## Result files")
    if not results:
        page.blocks.append("No result files yet: run a benchmark script, then rebuild the docs.")
    for path in results:
        relative = path.relative_to(root).as_posix()
        try:
            record = json.loads(path.read_text())
        except ValueError as error:
            problems.append(f"{relative} is not valid JSON: {error}")
            continue
        page.images[f"benchmarks/results/{path.name}"] = path.read_bytes()
        if path.name == "claims.json":
            page.blocks.append(claims_section(record))
            continue
        script = _script_for(path, scripts)
        page.blocks.append(f"### {path.stem}")
        about = f"[Download `{path.name}`](benchmarks/results/{path.name})."
        if script is not None:
            summary = script_summary(script)
            about = f"From `benchmarks/{script.name}`" + (f": {md.text(summary)}" if summary else ".") + " " + about
        page.blocks.append(about)
        render_record(page, record, path.stem, 4, _slug(path.stem))
    return "\n\n".join(page.blocks) + "\n", problems, page.images


def claims_section(record: dict) -> str:
    """``benchmarks/results/claims.json`` (``vaezoo reproduce``) as one table: every
    claim, per budget and backend, ours against the reference, and the verdict."""
    from zoodocs.results import claim_summary

    rows = []
    for key, run in sorted((record.get("runs") or {}).items(), key=lambda kv: (kv[1].get("budget") != "full", kv[0])):
        for claim_id, claim in (run.get("claims") or {}).items():
            verdict = claim.get("verdict", "—")
            why = claim.get("why") if verdict != "holds" else ""
            rows.append((
                md.code(claim_id),
                md.text(str(claim.get("statement", "")), in_table=True),
                f"{run.get('budget', '?')}, {run.get('backend', '?')}",
                md.text(claim_summary(claim), in_table=True),
                md.text(verdict + (f": {why}" if why else ""), in_table=True),
            ))
    runs = ", ".join(
        f"{key} ({run.get('date', '?')[:10]}, {md.number(run.get('seconds', 0))} s)" for key, run in (record.get("runs") or {}).items()
    )
    intro = (
        "Every claim of every card, as `vaezoo reproduce` last measured it: ours (mean ± sd over seeds) "
        "against the reference at an equal budget, with the share of test points whose PSIS k-hat exceeds "
        f"0.7 where the figure is importance-sampled. Runs: {md.text(runs) or 'none'}. "
        "[Download `claims.json`](benchmarks/results/claims.json)."
    )
    return intro + "\n\n" + md.table(("Claim", "Statement", "Budget", "Ours vs reference", "Verdict"), rows)
