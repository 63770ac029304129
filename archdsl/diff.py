"""``archdsl diff``: what changed between two networks, structurally, with what it costs.

The two graphs are matched as trees of scopes, not as YAML text: at every level of the visible
scope hierarchy (:attr:`archdsl.analysis.Analysis.tree`) the members of the two sides are aligned
with :class:`difflib.SequenceMatcher` over their *signatures* (a layer's op; a scope's kind and
block), so a renamed layer still matches its counterpart and an inserted one shows as added
without shifting everything after it. Matched scopes are compared recursively; a matched pair
with different signatures (a block swapped, an op replaced) is a change of its own.

Every change carries its deltas, read from the two analyses (never recomputed): parameters,
MACs, activation memory (the sum of its outputs) and the bytes autograd keeps for backward.
:class:`Diff` is the plan; :func:`render_diff` lays it out as text, Markdown, JSON or HTML, and
:func:`diff_svg` colours the two folded diagrams. Neither click nor torch is imported here.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .analysis import Analysis, NodeStats, ScopeStats, Stat
from .report import (
    bytes_text,
    count_text,
    human,
    outputs_text,
    shape_text,
    text_table,
)

__all__ = [
    "DIFF_FORMAT",
    "FORMATS",
    "Change",
    "Diff",
    "Row",
    "align",
    "diff_analyses",
    "diff_svg",
    "highlights",
    "render_diff",
    "stage_rows",
]

FORMATS = ("text", "md", "json", "html")
DIFF_FORMAT = "archdsl.diff/1"
ADDED, REMOVED, CHANGED = "added", "removed", "changed"
DELTAS = ("params", "macs", "activations", "saved")  # the figures every change carries


@dataclass
class Change:
    """One added, removed or changed layer or scope, with its own details and nested changes.

    ``path_a``/``path_b`` are its paths in A and B (None on the side where it does not exist);
    ``details`` say what differs (``groups: 1 -> 32``, ``block bottleneck -> se_bottleneck``,
    ``x3 -> x4``, ``renamed a -> b``); ``deltas`` are B minus A for each of :data:`DELTAS`.
    """

    status: str
    kind: str  # "layer", or the scope's kind (block, repeat, dense, seq, parallel, residual)
    path_a: str | None
    path_b: str | None
    label: str  # the op's label or the scope's block / kind, on B's side when it exists
    details: list[str]
    deltas: dict[str, int]
    children: list[Change] = field(default_factory=list)

    @property
    def path(self) -> str:
        return self.path_b if self.path_b is not None else self.path_a or ""


@dataclass
class Diff:
    """Two analysed networks and what differs between them."""

    a: Analysis
    b: Analysis
    header: list[tuple[str, str, str]]  # (what, in A, in B): spec parameters, input, outputs
    changes: list[Change]
    totals: list[tuple[str, int, int]]  # (figure, A, B)

    @property
    def same(self) -> bool:
        """The same network: no structural change, the same input, outputs and figures."""
        return not self.changes and not self.header and all(x == y for _, x, y in self.totals)

    def counts(self) -> dict[str, int]:
        """How many layers and scopes were added, removed and changed (nested ones included)."""
        counts = {ADDED: 0, REMOVED: 0, CHANGED: 0}
        for change in _walk(self.changes):
            counts[change.status] += 1
        return counts


def _walk(changes: Sequence[Change]) -> Iterator[Change]:
    for change in changes:
        yield change
        yield from _walk(change.children)


# --- matching ----------------------------------------------------------------------------------

def diff_analyses(a: Analysis, b: Analysis) -> Diff:
    """Compare two analyses (each with its graph) structurally."""
    header = _header(a, b)
    changes = _diff_members(a, b, "", "")
    totals = [
        ("params", a.params, b.params),
        ("macs", a.macs, b.macs),
        ("activations", a.memory.bytes(a.memory.activations), b.memory.bytes(b.memory.activations)),
        ("peak", a.memory.bytes(a.memory.peak), b.memory.bytes(b.memory.peak)),
        ("saved", a.training.saved, b.training.saved),
        ("depth", a.depth, b.depth),
    ]
    return Diff(a, b, header, changes, totals)


def _header(a: Analysis, b: Analysis) -> list[tuple[str, str, str]]:
    rows = []
    for name in dict.fromkeys([*a.spec_params, *b.spec_params]):
        va, vb = a.spec_params.get(name, "-"), b.spec_params.get(name, "-")
        if va != vb:
            rows.append((f"--set {name}", _value(va), _value(vb)))
    if a.input_shape != b.input_shape:
        rows.append(("input", shape_text(a.input_shape), shape_text(b.input_shape)))
    if a.outputs != b.outputs:
        rows.append(("output", outputs_text(a.outputs), outputs_text(b.outputs)))
    return rows


def _signature(analysis: Analysis, path: str) -> tuple[str, str | None]:
    stat = analysis.stat(path)
    if isinstance(stat, NodeStats):
        return ("layer", stat.op)
    return (stat.kind, stat.block)


def align(a: Analysis, b: Analysis, path_a: str = "", path_b: str = "") -> list[
        tuple[str | None, str | None]]:
    """The visible members of scope ``path_a`` of A and ``path_b`` of B, aligned in order:
    ``(a, b)`` pairs, ``(a, None)`` for a member only A has and ``(None, b)`` for one only B has."""
    left, right = a.children(path_a), b.children(path_b)
    matcher = difflib.SequenceMatcher(None, [_signature(a, p) for p in left],
                                      [_signature(b, p) for p in right], autojunk=False)
    pairs: list[tuple[str | None, str | None]] = []
    for _tag, i1, i2, j1, j2 in matcher.get_opcodes():
        removed, added = list(left[i1:i2]), list(right[j1:j2])
        # within a replaced run, a layer pairs with a layer and a scope with a scope, in order
        while removed and added and _is_layer(a, removed[0]) == _is_layer(b, added[0]):
            pairs.append((removed.pop(0), added.pop(0)))
        pairs += [(p, None) for p in removed]
        pairs += [(None, p) for p in added]
    return pairs


def _diff_members(a: Analysis, b: Analysis, path_a: str, path_b: str) -> list[Change]:
    changes: list[Change] = []
    for pa, pb in align(a, b, path_a, path_b):
        if pa is None:
            changes.append(_one_sided(b, pb, ADDED))
        elif pb is None:
            changes.append(_one_sided(a, pa, REMOVED))
        else:
            change = _compare(a, b, pa, pb)
            if change is not None:
                changes.append(change)
    return changes


def stage_rows(d: Diff) -> list[tuple[str, tuple[str | None, str | None]]]:
    """The two networks' stages aligned, for side-by-side charts: (label, (in A, in B))."""
    out = []
    for pa, pb in align(d.a, d.b):
        label = pa if pb is None or pa == pb else pb if pa is None else f"{pa} / {pb}"
        out.append((label, (pa, pb)))
    return out


def _is_layer(analysis: Analysis, path: str) -> bool:
    return path in analysis.nodes


def _compare(a: Analysis, b: Analysis, pa: str, pb: str) -> Change | None:
    """The change between two matched members, or None when they are the same."""
    sa, sb = a.stat(pa), b.stat(pb)
    details = []
    if sa.local_name != sb.local_name:
        details.append(f"renamed {sa.local_name} -> {sb.local_name}")
    children: list[Change] = []
    if isinstance(sa, NodeStats) and isinstance(sb, NodeStats):
        details += _node_details(a, sa, b, sb)
    else:
        details += _scope_details(a, sa, b, sb)
        children = _diff_members(a, b, pa, pb)
    deltas = _deltas(a, sa, b, sb)
    if not details and not children and not any(deltas.values()):
        return None
    return Change(CHANGED, _kind(sb), pa, pb, _label(b, sb), details, deltas, children)


def _one_sided(analysis: Analysis, path: str, status: str) -> Change:
    stat = analysis.stat(path)
    figures = _figures(analysis, stat)
    sign = 1 if status == ADDED else -1
    deltas = {key: sign * value for key, value in figures.items()}
    on_a, on_b = (None, path) if status == ADDED else (path, None)
    return Change(status, _kind(stat), on_a, on_b, _label(analysis, stat),
                  [_describe(analysis, stat)], deltas)


def _node_details(a: Analysis, sa: NodeStats, b: Analysis, sb: NodeStats) -> list[str]:
    details = []
    if sa.op != sb.op:
        details.append(f"{sa.label} -> {sb.label}")
    else:
        attrs_a = a.graph.nodes[sa.name].attrs.as_dict() if a.graph else {}
        attrs_b = b.graph.nodes[sb.name].attrs.as_dict() if b.graph else {}
        for key in dict.fromkeys([*attrs_a, *attrs_b]):
            va, vb = attrs_a.get(key), attrs_b.get(key)
            if va != vb:
                details.append(f"{key}: {_value(va)} -> {_value(vb)}")
    passes_shape = len(sa.in_shapes) == 1 and sa.in_shapes[0] == sa.shape and sb.in_shapes[0] == sb.shape
    if sa.in_shapes != sb.in_shapes and not passes_shape:  # (an element-wise op: output says it)
        details.append(_inputs_change(sa.in_shapes, sb.in_shapes))
    if sa.shape != sb.shape:
        details.append(f"output {shape_text(sa.shape)} -> {shape_text(sb.shape)}")
    return details


def _scope_details(a: Analysis, sa: ScopeStats, b: Analysis, sb: ScopeStats) -> list[str]:
    details = []
    if sa.block != sb.block:
        details.append(f"block {sa.block or sa.kind} -> {sb.block or sb.kind}")
    scope_a = a.graph.scopes[sa.path] if a.graph else None
    scope_b = b.graph.scopes[sb.path] if b.graph else None
    if scope_a is not None and scope_b is not None:
        count_a, count_b = scope_a.meta.get("count"), scope_b.meta.get("count")
        if count_a != count_b:
            details.append(f"x{count_a} -> x{count_b}")
        if sa.block == sb.block:
            for key in dict.fromkeys([*scope_a.args, *scope_b.args]):
                va, vb = scope_a.args.get(key), scope_b.args.get(key)
                if va != vb:
                    details.append(f"{key}: {_value(va)} -> {_value(vb)}")
    if sa.out_shape != sb.out_shape:
        details.append(f"output {shape_text(sa.out_shape)} -> {shape_text(sb.out_shape)}")
    return details


def _figures(analysis: Analysis, stat: Stat) -> dict[str, int]:
    return {"params": stat.params, "macs": stat.macs, "activations": stat.output_bytes,
            "saved": stat.saved_bytes}


def _deltas(a: Analysis, sa: Stat, b: Analysis, sb: Stat) -> dict[str, int]:
    fa, fb = _figures(a, sa), _figures(b, sb)
    return {key: fb[key] - fa[key] for key in DELTAS}


def _kind(stat: Stat) -> str:
    return "layer" if isinstance(stat, NodeStats) else stat.kind


def _label(analysis: Analysis, stat: Stat) -> str:
    if isinstance(stat, NodeStats):
        return stat.label
    count = analysis.graph.scopes[stat.path].meta.get("count") if analysis.graph else None
    name = stat.block or stat.kind
    return f"{name} x{count}" if count is not None else name


def _describe(analysis: Analysis, stat: Stat) -> str:
    """A one-line description of an added or removed member."""
    if isinstance(stat, NodeStats):
        return f"{stat.label} -> {shape_text(stat.shape)}"
    return f"{_label(analysis, stat)} ({stat.nodes} layers) -> {shape_text(stat.out_shape)}"


def _value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple) and len(value) == 2 and value[0] == value[1]:
        return str(value[0])
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _shapes(shapes: Sequence[Sequence[int]]) -> str:
    return ", ".join(shape_text(s) for s in shapes)


def _inputs_change(a: Sequence[Sequence[int]], b: Sequence[Sequence[int]]) -> str:
    """``input 64x56x56 -> 128x56x56``; of several inputs, only those that changed."""
    if len(a) != len(b):
        return f"inputs {_shapes(a)} -> {_shapes(b)}"
    if len(a) == 1:
        return f"input {shape_text(a[0])} -> {shape_text(b[0])}"
    return "; ".join(f"input {i} {shape_text(x)} -> {shape_text(y)}"
                     for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)


# --- the rows every format shows ----------------------------------------------------------------

@dataclass
class Row:
    """One line of the diff table: a change, or a run of identical sibling changes folded."""

    level: int
    status: str
    path: str  # the full path at the top level, relative to the parent row below it
    kind: str
    details: str
    deltas: dict[str, int]
    count: int = 1  # identical siblings folded into this row (deltas are their sum)


def rows(changes: Sequence[Change], level: int = 0, parent: str | None = None,
         depth: int | None = None) -> list[Row]:
    """The changes as table rows, depth first, down to ``depth`` levels (None: all); consecutive
    siblings that changed identically (ResNeXt-50's bottlenecks against ResNet-50's, stage by
    stage) fold into one row."""
    out: list[Row] = []
    groups: list[tuple[list[Change], list[Row], Any]] = []
    for change in changes:
        opened = depth is None or level + 1 < depth
        below = rows(change.children, level + 1, change.path, depth) if opened else []
        key = (change.status, change.kind, change.label, tuple(change.details),
               tuple(sorted(change.deltas.items())), _rows_key(below))
        if groups and groups[-1][2] == key and _consecutive(groups[-1][0][-1], change):
            groups[-1][0].append(change)
        else:
            groups.append(([change], below, key))
    for members, below, _ in groups:
        first, n = members[0], len(members)
        path = _shown_path(first, parent)
        if n > 1:
            path = f"{path} … {_shown_path(members[-1], parent).rsplit('.', 1)[-1]}"
        details = "; ".join(first.details) or ""
        deltas = {key: value * n for key, value in first.deltas.items()}
        out.append(Row(level, first.status, path, first.kind, details, deltas, n))
        for row in below:
            row.deltas = {key: value * n for key, value in row.deltas.items()}
            out.append(row)
    return out


def _rows_key(rows_below: list[Row]) -> tuple[Any, ...]:
    return tuple((r.level, r.status, r.path, r.details, tuple(sorted(r.deltas.items())), r.count)
                 for r in rows_below)


def _consecutive(prev: Change, change: Change) -> bool:
    """Siblings of one repeat (``layer1.1``, ``layer1.2``) fold; other neighbours do not."""
    pa, pb = prev.path.rsplit(".", 1), change.path.rsplit(".", 1)
    return len(pa) == len(pb) == 2 and pa[0] == pb[0] and pa[1].isdigit() and pb[1].isdigit()


def _shown_path(change: Change, parent: str | None) -> str:
    """The path relative to the parent row; a renamed member shows both names."""
    def relative(path: str | None) -> str | None:
        if path is None or parent is None or not path.startswith(parent + "."):
            return path
        return path[len(parent) + 1:]

    if parent is None:
        a, b = change.path_a, change.path_b
    else:
        a, b = relative(change.path_a), relative(change.path_b)
    if a is not None and b is not None and a != b:
        return f"{a} -> {b}"
    return b if b is not None else a or ""


# --- formats -------------------------------------------------------------------------------------

DELTA_TITLES = {"params": "ΔParams", "macs": "ΔMACs", "activations": "ΔActivations",
                "saved": "ΔSaved"}
TOTAL_TITLES = {"params": "Params", "macs": "MACs", "activations": "Activations (inference)",
                "peak": "Peak activation memory", "saved": "Saved for backward (training)",
                "depth": "Depth"}
BYTE_FIGURES = ("activations", "peak", "saved")


def signed(value: int, key: str) -> str:
    """``+1,234 (1.23 K)``, ``-4.2 MB``; ``0`` as ``0``."""
    if value == 0:
        return "0"
    sign = "+" if value > 0 else "-"
    if key in BYTE_FIGURES:
        return sign + bytes_text(abs(value))
    return sign + (f"{abs(value):,}" if abs(value) < 1000 else human(abs(value)))


def _total_text(value: int, key: str) -> str:
    return bytes_text(value) if key in BYTE_FIGURES else (str(value) if key == "depth"
                                                          else count_text(value))


def _title(d: Diff) -> str:
    return f"{d.a.name} ({d.a.file}) -> {d.b.name} ({d.b.file})"


def _verdict(d: Diff) -> str:
    if d.same:
        return "The same network: no structural change and the same figures."
    counts = d.counts()
    return (f"{counts[ADDED]} added, {counts[REMOVED]} removed, {counts[CHANGED]} changed "
            f"(layers and scopes, nested ones included).")


NOTE = ("Layers and scopes are matched level by level through the block hierarchy (by op and block, "
        "so renamed and inserted layers still line up); a change's deltas are B minus A: "
        "parameters, MACs, activation memory (the sum of its outputs) and what autograd keeps for "
        "backward; a folded row (a … b) sums its identical siblings. Totals are those of report: "
        "compute and activations cover the inference pass.")


def render_diff(d: Diff, fmt: str = "text", *, depth: int | None = None,
                charts: Callable[[Diff], str] | None = None, diagram: str | None = None) -> str:
    """The diff in ``fmt`` (one of :data:`FORMATS`); tables go ``depth`` levels deep (None: all;
    JSON always has everything). HTML takes the charts and the diagram as markup."""
    if fmt == "json":
        return json.dumps(to_json_data(d), indent=2) + "\n"
    table = rows(d.changes, depth=depth)
    if fmt == "text":
        return _text(d, table)
    if fmt == "md":
        return _markdown(d, table)
    if fmt == "html":
        from .report import template

        return template("diff.html.j2").render(
            d=d, title=_title(d), verdict=_verdict(d), rows=table, note=NOTE,
            totals=[(TOTAL_TITLES[k], _total_text(x, k), _total_text(y, k), signed(y - x, k))
                    for k, x, y in d.totals],
            delta_titles=DELTA_TITLES, signed=signed, charts=charts(d) if charts else "",
            diagram=diagram)
    raise ValueError(f"unknown format {fmt!r}")


def _total_rows(d: Diff) -> list[list[str]]:
    return [[TOTAL_TITLES[key], _total_text(x, key), _total_text(y, key), signed(y - x, key)]
            for key, x, y in d.totals]


def _change_cells(row: Row, indent: str) -> list[str]:
    return [row.status, indent * row.level + row.path + (f" (x{row.count})" if row.count > 1 else ""),
            *[signed(row.deltas[key], key) for key in DELTAS], row.details]


def _text(d: Diff, table: list[Row]) -> str:
    lines = [_title(d), "", _verdict(d), ""]
    if d.header:
        lines += [text_table(["", d.a.name, d.b.name], [list(h) for h in d.header],
                             [False, False, False]), ""]
    lines += [text_table(["", d.a.name, d.b.name, "Δ"], _total_rows(d), [False, True, True, True]), ""]
    if table:
        headers = ["Change", "Path", *DELTA_TITLES.values(), "What"]
        body = [_change_cells(row, "  ") for row in table]
        lines += [text_table(headers, body, [False, False, True, True, True, True, False]), ""]
    lines.append(_wrap(NOTE))
    return "\n".join(lines) + "\n"


def _wrap(text: str) -> str:
    import textwrap

    return textwrap.fill(text, width=100)


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("*", "\\*")


def _markdown(d: Diff, table: list[Row]) -> str:
    lines = [f"## {_md(_title(d))}", "", _verdict(d), ""]
    if d.header:
        lines += [f"|  | {_md(d.a.name)} | {_md(d.b.name)} |", "| --- | --- | --- |"]
        lines += [f"| {_md(w)} | {_md(x)} | {_md(y)} |" for w, x, y in d.header]
        lines.append("")
    lines += [f"|  | {_md(d.a.name)} | {_md(d.b.name)} | Δ |", "| --- | ---: | ---: | ---: |"]
    lines += ["| " + " | ".join(_md(c) for c in cells) + " |" for cells in _total_rows(d)]
    lines.append("")
    if table:
        lines += ["| Change | Path | " + " | ".join(DELTA_TITLES.values()) + " | What |",
                  "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
        for row in table:
            cells = _change_cells(row, "")
            cells[1] = "&nbsp;&nbsp;" * row.level + f"`{cells[1]}`"
            lines.append("| " + " | ".join(c if i == 1 else _md(c) for i, c in enumerate(cells)) + " |")
        lines.append("")
    lines += [_md(NOTE), ""]
    return "\n".join(lines)


def to_json_data(d: Diff) -> dict[str, Any]:
    """The diff as JSON-ready data (documented in docs/DIFF.md)."""
    return {
        "format": DIFF_FORMAT,
        "a": {"name": d.a.name, "file": d.a.file, "spec_params": d.a.spec_params},
        "b": {"name": d.b.name, "file": d.b.file, "spec_params": d.b.spec_params},
        "same": d.same,
        "counts": d.counts(),
        "header": [{"what": w, "a": x, "b": y} for w, x, y in d.header],
        "totals": {key: {"a": x, "b": y, "delta": y - x} for key, x, y in d.totals},
        "changes": [_change_json(c) for c in d.changes],
    }


def _change_json(c: Change) -> dict[str, Any]:
    return {"status": c.status, "kind": c.kind, "path_a": c.path_a, "path_b": c.path_b,
            "label": c.label, "details": list(c.details), "deltas": dict(c.deltas),
            "changes": [_change_json(child) for child in c.children]}


# --- the coloured diagrams -----------------------------------------------------------------------

def highlights(d: Diff) -> tuple[dict[str, str], dict[str, str]]:
    """Layer name -> status for A's diagram (removed, changed) and B's (added, changed).

    A changed scope with nested changes marks only what changed inside it; one whose change is
    its own (its block swapped, its arguments) marks all its layers.
    """
    marks_a: dict[str, str] = {}
    marks_b: dict[str, str] = {}

    def mark(analysis: Analysis, marks: dict[str, str], path: str | None, status: str) -> None:
        if path is None or analysis.graph is None:
            return
        if path in analysis.graph.nodes:
            marks[path] = status
        else:
            for node in analysis.graph.scope_nodes(path):
                marks[node.name] = status

    for change in _walk(d.changes):
        if change.children and change.status == CHANGED:
            continue
        mark(d.a, marks_a, change.path_a, change.status)
        mark(d.b, marks_b, change.path_b, change.status)
    return marks_a, marks_b


def diff_svg(d: Diff, **options: Any) -> str:
    """A and B's folded diagrams side by side in one SVG: removed and changed boxes coloured on
    A's, added and changed ones on B's (:data:`archdsl.draw.HIGHLIGHTS`)."""
    from .draw import render_svg

    marks_a, marks_b = highlights(d)
    left = render_svg(d.a.graph, inline=True, id_prefix="a-", highlight=marks_a, **options)
    right = render_svg(d.b.graph, inline=True, id_prefix="b-", highlight=marks_b, **options)
    return side_by_side([left, right])


def side_by_side(svgs: Sequence[str], gap: float = 24.0) -> str:
    """Several SVG documents placed left to right in one (Graphviz sizes are in points)."""
    sizes = [_svg_size(svg) for svg in svgs]
    width = sum(w for w, _ in sizes) + gap * (len(svgs) - 1)
    height = max(h for _, h in sizes)
    parts, x = [], 0.0
    for svg, (w, h) in zip(svgs, sizes, strict=True):
        inner = re.sub(r'width="[\d.]+pt" height="[\d.]+pt"', f'width="{w:g}" height="{h:g}"',
                       svg.strip(), count=1)
        parts.append(re.sub(r"^<svg\b", f'<svg x="{x:g}" y="0"', inner, count=1))
        x += w + gap
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
            f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'width="{width:g}pt" height="{height:g}pt" viewBox="0 0 {width:g} {height:g}">\n'
            + "\n".join(parts) + "\n</svg>\n")


def _svg_size(svg: str) -> tuple[float, float]:
    head = svg[svg.index("<svg"):svg.index(">", svg.index("<svg"))]
    width = re.search(r'width="([\d.]+)pt"', head)
    height = re.search(r'height="([\d.]+)pt"', head)
    if width is None or height is None:
        raise ValueError("an SVG without a width and height in points")
    return float(width.group(1)), float(height.group(1))
