"""Markdown building blocks: text from the cards made safe, tables, code, math.

Card text is prose that may hold inline math between ``$`` signs. Outside the math,
characters that Markdown would read as markup (``*``, ``_``, brackets, backticks,
``<``) are escaped, so a card's "mu + sigma * eps" stays text; inside it, nothing
is touched, because arithmatex hands it to KaTeX as it is.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence

_INLINE_MATH = re.compile(r"(\$[^$]+\$)")
_MARKUP = re.compile(r"([\\`*_\[\]])")
_CITATION = re.compile(r"\(([A-Za-z0-9-]+\.\d+)\)")


def text(value: str, in_table: bool = False, labels: Mapping[str, str] | None = None) -> str:
    """Card prose as Markdown: markup escaped outside ``$...$``, math kept.

    ``labels`` maps equation labels to URLs: a citation such as ``(vae.2)`` in the
    prose becomes a link to that equation.
    """
    parts = []
    for i, part in enumerate(_INLINE_MATH.split(value)):
        if i % 2:  # math
            parts.append(_table_math(part) if in_table else part)
            continue
        # "<" and ">" as entities: a backslash does not stop Python-Markdown from reading
        # "z_<t" as the start of an HTML tag, which then swallows the next blocks.
        escaped = _MARKUP.sub(r"\\\1", part).replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")
        if in_table:
            escaped = escaped.replace("|", r"\|")
        if labels:
            escaped = _CITATION.sub(lambda m: _cite(m, labels), escaped)
        parts.append(escaped)
    return "".join(parts)


def _cite(match: re.Match, labels: Mapping[str, str]) -> str:
    label = match.group(1)
    return f"[({label})]({labels[label]})" if label in labels else match.group(0)


def _table_math(math: str) -> str:
    # A pipe splits a table cell before arithmatex sees it: write it as a command.
    return math.replace(r"\|", r"\Vert ").replace("|", r"\vert ")


def inline_math(latex: str, in_table: bool = False) -> str:
    """``latex`` as inline math (empty string for no symbol)."""
    if not latex:
        return ""
    math = f"${latex}$"
    return _table_math(math) if in_table else math


def code(value: str) -> str:
    """An inline code span that survives backticks and table pipes in ``value``."""
    value = str(value).replace("|", r"\|")
    fence = "``" if "`" in value else "`"
    pad = " " if "`" in value else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def display_equation(latex: str, label: str) -> str:
    """A numbered display equation: the card's LaTeX, and its label on the right.

    Written as the HTML that pymdownx.arithmatex (generic mode) produces for inline
    math, with ``\\displaystyle``: KaTeX breaks inline math after a relation or an
    operator when the line is full, so a formula wider than the column wraps instead
    of being cut (display mode never breaks). The box carries the label and the
    anchor ``#<label>`` (docstrings cite equations by label).
    """
    body = " ".join(line.strip() for line in latex.strip().splitlines() if line.strip())
    label_html = html.escape(label)
    return (
        f'<div class="vaezoo-equation" id="{label_html}"><div class="vaezoo-formula">'
        f'<span class="arithmatex">\\(\\displaystyle {html.escape(body, quote=False)}\\)</span></div>'
        f'<span class="vaezoo-equation-label">({label_html})</span></div>'
    )


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A pipe table; cells must already be Markdown (use :func:`text` / :func:`code`)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(cell) for cell in row) + " |")
    return "\n".join(lines)


def fenced(body: str, language: str = "") -> str:
    fence = "````" if "```" in body else "```"
    return f"{fence}{language}\n{body.rstrip()}\n{fence}"


def indent(block: str, spaces: int = 4) -> str:
    pad = " " * spaces
    return "\n".join(pad + line if line.strip() else "" for line in block.splitlines())


def tabs(items: Sequence[tuple[str, str]]) -> str:
    """Content tabs (pymdownx.tabbed): ``[(title, markdown), ...]``."""
    blocks = [f'=== "{title}"\n\n{indent(body)}' for title, body in items]
    return "\n\n".join(blocks)


def value_repr(value) -> str:
    """A default as the config would print it; lists as tuples (config fields are tuples)."""
    if isinstance(value, list):
        value = tuple(value)
    return repr(value)


def number(value) -> str:
    """A metric for a table: floats to 4 significant decimals, the rest as is."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) >= 1e4 or (value and abs(value) < 1e-3) else f"{value:.4f}"
    return text(str(value), in_table=True)
