"""Graphical models as Mermaid flowcharts, drawn from the traced structure.

Nodes are the traced sites: latent variables as circles, observed ones as shaded
double circles, factors (extra loss terms added with ``pyro.factor`` /
``numpyro.factor``) as hexagons, and the program's inputs that no site observes
(the data a guide conditions on, a conditioning label) as shaded boxes. Plates are
boxes, nested as the program nests them (:attr:`zoo.structure.TracedSite.plates`),
labelled with their size (``N`` for the minibatch). Arrows between sites are the
``sample_sample`` relations that ``get_model_relations`` found by following each
value's provenance: ``a --> b`` when the distribution of ``b`` was computed from the
value of ``a``; arrows from inputs come from
:func:`zoo.structure.pyro_input_dependencies`.

One diagram shows the model and the guide side by side; the page draws one per
backend only when the backends' traced structures differ. The diagrams
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
    "classDef input fill:#e3e3e3,stroke:#333333,stroke-width:1px,stroke-dasharray:3 2",
    "classDef derived fill:#eef4ff,stroke:#3f51b5,stroke-width:1px,stroke-dasharray:4 3",
)
_SHAPES = {"latent": '(("{}"))', "observed": '((("{}")))', "factor": '{{{{"{}"}}}}', "input": '["{}"]', "derived": '(["{}"])'}
BATCH_PLATE_SIZE = 16  # the trace's minibatch (zoo.structure.BATCH_SIZE): drawn as N


class _Input:
    """A program argument drawn as a node, placed in the plates of its first dependant."""

    kind = "input"

    def __init__(self, name: str, plates: tuple, plate_sizes: tuple):
        self.name, self.plates, self.plate_sizes = name, plates, plate_sizes


class _Derived:
    """A card's :class:`zoo.card.DerivedNode`, drawn as a rounded box in its plates."""

    kind = "derived"

    def __init__(self, node, sizes: dict[str, int]):
        self.name, self.plates, self.parents = node.name, tuple(node.plates), tuple(node.parents)
        self.plate_sizes = tuple(sizes.get(plate) for plate in self.plates)


def input_nodes(part) -> list[_Input]:
    """The arguments the program's sites depend on and no site observes."""
    observed = set(getattr(part, "observed_inputs", {}) or {})
    by_name = {site.name: site for site in part.sites}
    nodes: dict[str, _Input] = {}
    for site_name, arguments in (getattr(part, "input_edges", {}) or {}).items():
        site = by_name.get(site_name)
        for argument in arguments:
            if argument in observed or argument in nodes or argument in by_name or site is None:
                continue
            nodes[argument] = _Input(argument, tuple(site.plates[:1]), tuple(site.plate_sizes[:1]))
    return list(nodes.values())


def plate_label(name: str, size: int | None) -> str:
    if size is None:
        return f"plate {name}"
    return f"plate {name} (N)" if size == BATCH_PLATE_SIZE else f"plate {name} ({size})"


def _label(name: str) -> str:
    return name.replace('"', "#quot;")


def mermaid(parts: Sequence[tuple[str, object]], derived: Sequence = ()) -> str:
    """Mermaid source with one box per ``(title, program)``; ``program`` is a
    :class:`zoo.structure.ProgramStructure`. ``derived`` are the card's
    :class:`zoo.card.DerivedNode`\\ s, each drawn in the box of its program."""
    lines = ["flowchart LR"]
    counter = itertools.count()
    members: dict[str, list[str]] = {"latent": [], "observed": [], "factor": [], "input": [], "derived": []}
    for index, (title, part) in enumerate(parts):
        inputs = input_nodes(part)
        sizes = {plate: size for site in part.sites for plate, size in zip(site.plates, getattr(site, "plate_sizes", ()))}
        extra = [_Derived(node, sizes) for node in derived if node.program == part.program]
        known = {site.name for site in part.sites} | {node.name for node in inputs} | {node.name for node in extra}
        # A derived node's parent that the trace did not show as an input (x, say) is one.
        inputs += [_Input(parent, node.plates[:1], node.plate_sizes[:1]) for node in extra for parent in node.parents
                   if parent not in known and not known.add(parent)]
        ids = {site.name: f"n{index}_{i}" for i, site in enumerate(part.sites)}
        ids.update({node.name: f"i{index}_{i}" for i, node in enumerate(inputs)})
        ids.update({node.name: f"d{index}_{i}" for i, node in enumerate(extra)})
        lines.append(f'    subgraph g{index}["{_label(title)}"]')
        lines.append("        direction TB")
        _emit_plate([*inputs, *part.sites, *extra], 0, ids, lines, "        ", counter)
        lines.append("    end")
        for node in extra:
            for parent in node.parents:
                lines.append(f"    {ids[parent]} -.-> {ids[node.name]}")
            members["derived"].append(ids[node.name])
        for source, target in edges(part):
            lines.append(f"    {ids[source]} --> {ids[target]}")
        for site_name, arguments in (getattr(part, "input_edges", {}) or {}).items():
            for argument in arguments:
                if argument in ids and site_name in ids and argument != site_name and ids[argument].startswith("i"):
                    lines.append(f"    {ids[argument]} --> {ids[site_name]}")
        for site in [*inputs, *part.sites]:
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
    sizes: dict[str, int | None] = {}
    for site in sites:
        if len(site.plates) == level:
            lines.append(f"{pad}{ids[site.name]}{_SHAPES[site.kind].format(_label(site.name))}")
        else:
            inner.setdefault(site.plates[level], []).append(site)
            known = getattr(site, "plate_sizes", ())
            sizes.setdefault(site.plates[level], known[level] if len(known) > level else None)
    for plate, members in inner.items():
        lines.append(f'{pad}subgraph p{next(counter)}["{_label(plate_label(plate, sizes[plate]))}"]')
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


def signature(structure) -> tuple:
    """What a diagram draws of a traced structure, comparable across backends and
    variants: per program, its sites (name, kind, plates) and its arrows between sites."""
    return tuple(
        (
            tuple(sorted((site.name, site.kind, tuple(site.plates)) for site in part.sites)),
            tuple(sorted(edges(part))),
        )
        for part in (structure.model, structure.guide)
    )
