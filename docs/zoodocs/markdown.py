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


LONG_EQUATION = 140  # characters of LaTeX above which a formula is set on several lines
_SEPARATOR = re.compile(r",?\\qquad|,\\quad|\\quad\\text\{or\}\\quad")


def _top_level(latex: str) -> list[bool]:
    """For each character, whether it sits outside every ``{...}`` group, bracket pair
    and ``\\left...\\right`` pair (where a line may be broken). Unbalanced brackets
    (an interval ``[0, 1)``) fall back to braces alone."""
    flags = _depths(latex, brackets=True)
    return flags if flags is not None else _depths(latex, brackets=False)


def _depths(latex: str, brackets: bool) -> list[bool] | None:
    depth, flags, i = 0, [], 0
    while i < len(latex):
        if latex.startswith("\\left", i) and not latex[i + 5:i + 6].isalpha():
            depth += 1
        elif latex.startswith("\\right", i) and not latex[i + 6:i + 7].isalpha():
            depth -= 1
        char = latex[i]
        escaped = i > 0 and latex[i - 1] == "\\"
        if (char == "{" and not escaped) or (brackets and char in "(["):
            depth += 1
        flags.append(depth == 0)
        if (char == "}" and not escaped) or (brackets and char in ")]"):
            depth -= 1
            if depth < 0:
                return None
        i += 1
    return flags if depth == 0 else None


def break_lines(latex: str, width: int = LONG_EQUATION) -> str:
    """A long formula as ``aligned`` rows, broken where a reader would break it: between
    the formulas a ``\\qquad``/``\\quad`` separates, then at a ``+`` or ``-`` near the middle
    of a row that is still long. Short formulas and those already laid out are kept."""
    if len(latex) <= width or any(k in latex for k in ("\\begin", "\\\\")):
        return latex
    flags = _top_level(latex)
    rows, start = [], 0
    for match in _SEPARATOR.finditer(latex):
        if flags[match.start()]:
            row = latex[start:match.start()] + ("," if match.group(0).startswith(",") else "")
            rows.append(row.strip())
            start = match.end()
            if "text{or}" in match.group(0):
                rows.append(None)  # marker: the next row starts with "or"
    rows.append(latex[start:].strip())
    lines, prefix_or = [], False
    for row in rows:
        if row is None:
            prefix_or = True
            continue
        lead = "\\text{or}\\ " if prefix_or else ""
        prefix_or = False
        lines += [f"&{lead}{part}" for part in _split_sum(row, width)]
    return "\\begin{aligned}" + " \\\\ ".join(lines) + "\\end{aligned}"


def _split_sum(row: str, width: int) -> list[str]:
    """``row`` cut at the top-level ``+``/``-`` closest to its middle (after its first
    ``=``) while a part is longer than ``width``; continuation rows are indented."""
    if len(row) <= width:
        return [row]
    flags = _top_level(row)
    equals = next((i for i, c in enumerate(row) if c == "=" and flags[i]), -1)
    cuts = [
        i for i, c in enumerate(row)
        if c in "+-" and flags[i] and i > equals + 1 and i > 0 and row[i - 1] == " "
        and row[:i].rstrip()[-1:] not in "=(,[{&"
    ]
    if not cuts:
        return [row]
    middle = len(row) / 2
    cut = min(cuts, key=lambda i: abs(i - middle))
    head, tail = row[:cut].rstrip(), row[cut:]
    return [head, *("\\qquad " + part for part in _split_sum(tail, width))]


def display_equation(latex: str, label: str) -> str:
    """A numbered display equation: the card's LaTeX, and its label on the right.

    Written as the HTML that pymdownx.arithmatex (generic mode) produces for inline
    math, with ``\\displaystyle``: KaTeX breaks inline math after a relation or an
    operator when the line is full, so a formula wider than the column wraps instead
    of being cut (display mode never breaks). The box carries the label and the
    anchor ``#<label>`` (docstrings cite equations by label).
    """
    body = break_lines(" ".join(line.strip() for line in latex.strip().splitlines() if line.strip()))
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
