"""Graphical models as Mermaid flowcharts, drawn from the traced structure.

Nodes are the traced sites: latent variables as circles, observed ones as shaded
double circles, factors (extra loss terms added with ``pyro.factor`` /
``numpyro.factor``) as hexagons. Plates are boxes, nested as the program nests them
(:attr:`zoo.structure.TracedSite.plates`). Arrows are the ``sample_sample`` relations
that ``get_model_relations`` found by following each value's provenance:
``a --> b`` when the distribution of ``b`` was computed from the value of ``a``.

One diagram per backend shows the model and the guide side by side. The diagrams
are rendered in the browser by the vendored Mermaid (see
``docs/assets/javascripts/vaezoo.js``); no ``dot`` binary is needed.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

CLASS_DEFS = (
    "classDef latent fill:#ffffff,stroke:#333333,stroke-width:1px",
    "classDef observed fill:#c9c9c9,stroke:#333333,stroke-width:1px",
    "classDef factor fill:#fff3cd,stroke:#b58900,stroke-width:1px",
)
_SHAPES = {"latent": '(("{}"))', "observed": '((("{}")))', "factor": '{{{{"{}"}}}}'}


def _label(name: str) -> str:
    return name.replace('"', "#quot;")


def mermaid(parts: Sequence[tuple[str, object]]) -> str:
    """Mermaid source with one box per ``(title, program)``; ``program`` is a
    :class:`zoo.structure.ProgramStructure`."""
    lines = ["flowchart LR"]
    counter = itertools.count()
    members: dict[str, list[str]] = {"latent": [], "observed": [], "factor": []}
    for index, (title, part) in enumerate(parts):
        ids = {site.name: f"n{index}_{i}" for i, site in enumerate(part.sites)}
        lines.append(f'    subgraph g{index}["{_label(title)}"]')
        lines.append("        direction TB")
        _emit_plate(list(part.sites), 0, ids, lines, "        ", counter)
        lines.append("    end")
        for source, target in edges(part):
            lines.append(f"    {ids[source]} --> {ids[target]}")
        for site in part.sites:
            members[site.kind].append(ids[site.name])
    # An invisible link between consecutive boxes keeps them side by side, in order.
    lines += [f"    g{i} ~~~ g{i + 1}" for i in range(len(parts) - 1)]
    lines += [f"    {line}" for line in CLASS_DEFS]
    for kind, ids_of_kind in members.items():
        if ids_of_kind:
            lines.append(f"    class {','.join(ids_of_kind)} {kind}")
    return "\n".join(lines)


def _emit_plate(sites, level, ids, lines, pad, counter) -> None:
    """Sites whose plate path ends at ``level``, then one box per inner plate."""
    inner: dict[str, list] = {}
    for site in sites:
        if len(site.plates) == level:
            lines.append(f"{pad}{ids[site.name]}{_SHAPES[site.kind].format(_label(site.name))}")
        else:
            inner.setdefault(site.plates[level], []).append(site)
    for plate, members in inner.items():
        lines.append(f'{pad}subgraph p{next(counter)}["plate {_label(plate)}"]')
        _emit_plate(members, level + 1, ids, lines, pad + "    ", counter)
        lines.append(f"{pad}end")


def edges(part) -> list[tuple[str, str]]:
    """The arrows of a program's diagram as ``(source, target)`` site names."""
    relations = part.relations or {}
    names = {site.name for site in part.sites}
    return [
        (source, target)
        for target, sources in relations.get("sample_sample", {}).items()
        for source in sources
        if source in names and target in names
    ]
