"""``archdsl report``: complexity reports from the static analysis, without torch.

Decisions are made here, in Python: which rows a table has (``--per layer|block|stage``), which
compute convention it shows (``--profile``), how numbers read. The result is a plan
(:class:`SpecReport`, :class:`Comparison`) that each format renders: text and CSV here, Markdown
and HTML through the Jinja2 templates in ``archdsl/templates``. JSON is :func:`to_json_data`, whose
shape is documented in ``docs/REPORT_JSON.md``.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import re
import textwrap
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .analysis import Analysis, NodeStats, ReceptiveField, ScopeStats, Stat
from .errors import ArchError, Diagnostic, Loc, SpecError
from .ir import Graph

__all__ = [
    "FORMATS",
    "PER",
    "PROFILES",
    "Column",
    "Comparison",
    "Profile",
    "SpecReport",
    "Table",
    "TableRow",
    "bytes_text",
    "count_text",
    "human",
    "plan_comparison",
    "plan_report",
    "ratio_text",
    "render",
    "shape_text",
    "summary_record",
    "template",
    "text_table",
    "to_json_data",
]

FORMATS = ("text", "md", "json", "csv", "html")
MAX_JSON_BYTES = 64_000_000  # a JSON report past this is refused as it is written (render_json)
PER = ("layer", "block", "stage")
SUFFIX_FORMATS = {".txt": "text", ".md": "md", ".json": "json", ".csv": "csv", ".html": "html",
                  ".htm": "html"}
JSON_FORMAT = "archdsl.report/1"

COMMON_NOTE = (
    "Compute and activation totals cover the inference pass (the main output); parameters "
    "include every branch. Memory assumes every layer output is a new tensor (no in-place ops or "
    "views). Saved: what autograd keeps for the backward pass of a training step (each op's own "
    "rule, every storage once, weights excluded; measured exact on CPU); a layer's figure is what "
    "it is the first to keep. Receptive field: size, jump (product of strides) and start (centre of the first "
    "unit, in input pixels). Depth: conv and linear layers on the longest path.")


@dataclass(frozen=True)
class Profile:
    """A compute convention: the column a table shows and how it is explained."""

    name: str
    column: str
    value: Callable[[Any], int]
    convention: str


PROFILES: dict[str, Profile] = {
    "torchvision": Profile(
        "torchvision", "MACs", lambda s: s.macs,
        "MACs are the multiply-accumulates of conv and linear layers, bias excluded, groups "
        "honoured (torchvision's _ops \"GFLOPS\" metadata, calflops' MACs); FLOPs = 2 x MACs."),
    "fvcore": Profile(
        "fvcore", "fvcore", lambda s: s.fvcore_flops,
        "fvcore is the total of fvcore's FlopCountAnalysis(model.eval(), x): one per conv and "
        "linear multiply-accumulate, eval-mode batch norm 2 per element (1 without affine), "
        "adaptive average pooling 1 per input element, layer and group norm 5 per element; "
        "activations, pooling windows and element-wise ops 0."),
}

AUX_NOTE = ("* not run by an inference pass (an auxiliary output or a dead branch): "
            "not in the compute totals")


# --- number formatting -----------------------------------------------------------------------

def human(value: float, units: Sequence[str] = ("", " K", " M", " G", " T", " P")) -> str:
    """``4089184256`` -> ``4.09 G`` (three significant digits, decimal units)."""
    index = 0
    while abs(value) >= 999.5 and index < len(units) - 1:
        value /= 1000
        index += 1
    return f"{value:.3g}{units[index]}"


def count_text(value: int) -> str:
    """``25557032`` -> ``25,557,032 (25.6 M)``; small numbers without the unit."""
    return f"{value:,}" if value < 1000 else f"{value:,} ({human(value)})"


def bytes_text(count: int) -> str:
    """``6422528`` -> ``6.42 MB`` (decimal units)."""
    return human(count, (" B", " KB", " MB", " GB", " TB", " PB"))


def shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape)


def outputs_text(outputs: dict[str, Sequence[int]]) -> str:
    if len(outputs) == 1:
        return shape_text(next(iter(outputs.values())))
    return ", ".join(f"{name} {shape_text(shape)}" for name, shape in outputs.items())


def rf_text(rf: ReceptiveField | None) -> str:
    """``5``, ``7x3`` or ``435 global`` (the size; global after a global op)."""
    if rf is None:
        return ""
    size = _axis_text(rf.size)
    return f"{size} global" if rf.global_ else size


def ratio_text(value: float, first: float) -> str:
    """``990x``, ``1,715x``, ``0.25x``; empty when both are 0, ``n/a`` when only the first is."""
    if first == 0:
        return "" if value == 0 else "n/a"
    ratio = value / first
    return f"{ratio:,.0f}x" if ratio >= 999.5 else f"{ratio:.3g}x"


def _axis_text(pair: Sequence[float]) -> str:
    values = [int(v) if float(v).is_integer() else v for v in pair]
    return str(values[0]) if values[0] == values[1] else f"{values[0]}x{values[1]}"


# --- the plan of one spec's report -------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    """A table column: the key of its cells, its title, and whether it is right-aligned."""

    key: str
    title: str
    numeric: bool = False


@dataclass(frozen=True)
class TableRow:
    """One row: a layer or a scope, at an indentation ``level``, its cells already formatted."""

    path: str
    level: int
    cells: dict[str, str]
    is_scope: bool
    runs: bool


@dataclass
class Table:
    """The rows of one report (chosen by ``--per``) and the total row."""

    columns: tuple[Column, ...]
    rows: list[TableRow]
    total: dict[str, str]

    def cell_rows(self) -> list[list[str]]:
        """Every row's cells in column order; the name cell carries the ``*`` of a row not run."""
        out = []
        for row in self.rows:
            cells = [row.cells.get(c.key, "") for c in self.columns]
            if not row.runs:
                cells[0] += " *"
            out.append(cells)
        return out


@dataclass
class SpecReport:
    """Everything one spec's report shows, decided; the formats only lay it out."""

    analysis: Analysis
    profile: Profile
    per: str
    title: str
    subtitle: str
    table: Table
    summary: list[tuple[str, str]]
    notes: list[str]
    diagram: str | None = None
    charts: str | None = None  # per-stage bar charts as inline SVG (HTML only)


def plan_report(analysis: Analysis, *, per: str = "layer", profile: str = "torchvision") -> SpecReport:
    """Decide the content of one spec's report."""
    prof = PROFILES[profile]
    a = analysis
    notes = [prof.convention, COMMON_NOTE]
    table = _table(a, per, prof)
    if any(not row.runs for row in table.rows):
        notes.insert(0, AUX_NOTE)
    return SpecReport(
        analysis=a,
        profile=prof,
        per=per,
        title=a.name,
        subtitle=(f"{a.file}: input {shape_text(a.input_shape)} -> output {outputs_text(a.outputs)}; "
                  f"batch {a.batch}, {a.memory.dtype}"),
        table=table,
        summary=_summary(a, prof),
        notes=notes,
    )


def _columns(prof: Profile) -> tuple[Column, ...]:
    return (Column("name", "Layer"), Column("type", "Type"), Column("output", "Output"),
            Column("params", "Params", True), Column("compute", prof.column, True),
            Column("saved", "Saved", True), Column("rf", "RF", True))


def _table(a: Analysis, per: str, prof: Profile) -> Table:
    rows = [_table_row(a, path, level, prof) for path, level in _walk(a, "", 0, per)]
    total = {"name": "Total", "params": f"{a.params:,}", "compute": f"{prof.value(a):,}",
             "saved": bytes_text(a.training.saved), "output": outputs_text(a.outputs)}
    return Table(_columns(prof), rows, total)


def _walk(a: Analysis, path: str, level: int, per: str) -> Iterator[tuple[str, int]]:
    """(path, level) of the rows, depth first; ``per`` says how deep scopes open."""
    for child in a.children(path):
        yield child, level
        stat = a.stat(child)
        if isinstance(stat, ScopeStats) and _opens(stat, per):
            yield from _walk(a, child, level + 1, per)


def _opens(scope: ScopeStats, per: str) -> bool:
    if per == "layer":
        return True
    if per == "block":
        return scope.kind != "block"
    return False


def _table_row(a: Analysis, path: str, level: int, prof: Profile) -> TableRow:
    stat = a.stat(path)
    is_scope = isinstance(stat, ScopeStats)
    cells = {
        "name": stat.local_name,
        "path": path,
        "type": _scope_type(a, stat) if is_scope else stat.label,
        "output": shape_text(stat.out_shape if is_scope else stat.shape),
        "params": f"{stat.params:,}",
        "compute": f"{prof.value(stat):,}",
        "saved": bytes_text(stat.saved_bytes) if stat.saved_bytes else "",
        "rf": rf_text(stat.rf),
    }
    return TableRow(path, level, cells, is_scope, stat.runs)


def _scope_type(a: Analysis, scope: ScopeStats) -> str:
    if scope.kind == "block" and scope.block:
        return scope.block
    count = a.graph.scopes[scope.path].meta.get("count") if a.graph is not None else None
    return f"{scope.kind} x{count}" if count is not None else scope.kind


def _summary(a: Analysis, prof: Profile) -> list[tuple[str, str]]:
    """The totals under the table, as (label, text) pairs."""
    m = a.memory
    params = (f"{count_text(a.params)}; trainable {a.trainable_params:,}; "
              f"buffers {a.buffers:,} (running statistics)")
    if prof.name == "fvcore":
        compute = [("fvcore", count_text(a.fvcore_flops))]
    else:
        compute = [("MACs", count_text(a.macs)), ("FLOPs", count_text(a.flops))]
    memory = (f"input {bytes_text(m.bytes(m.input))}; parameters {bytes_text(m.bytes(m.params))}; "
              f"buffers {bytes_text(m.bytes(m.buffers))}")
    activations = f"{bytes_text(m.bytes(m.activations))} (inference, sum of outputs)"
    peak = (f"{bytes_text(m.bytes(m.peak))} live at once in an inference pass "
            f"({m.peak:,} elements, at {m.peak_at})")
    return [
        ("Params", params),
        *compute,
        ("Memory", memory),
        ("Activations", activations),
        ("Peak", peak),
        ("Training", _training_summary(a)),
        ("Receptive field", _rf_summary(a.receptive_field)),
        ("Depth", f"{a.depth} (conv and linear layers on the longest path)"),
        ("Layers", ", ".join(f"{n} {op}" for op, n in a.layer_counts.items())),
    ]


def _training_summary(a: Analysis) -> str:
    t = a.training
    return (f"saved for backward {bytes_text(t.saved)}; gradients {bytes_text(t.gradients)}; "
            f"optimizer state {bytes_text(t.optimizer_state)} ({t.optimizer}); estimated peak of "
            f"a step {bytes_text(t.peak)} with the weights ({bytes_text(t.weights)}), at "
            f"{t.peak_at}")


def _rf_summary(rf: ReceptiveField | None) -> str:
    if rf is None:
        return "n/a (the input is not an image)"
    text = (f"{rf.size[0]}x{rf.size[1]} (jump {_axis_text(rf.jump)}, "
            f"start {_axis_text(rf.start)})")
    if rf.global_:
        text += "; global: every output depends on the whole input"
    return text


# --- comparison --------------------------------------------------------------------------------

@dataclass
class Comparison:
    """Several specs side by side; every figure after the first with its ratio to the first."""

    names: list[str]
    headers: list[str]
    rows: list[tuple[str, list[str]]]
    raw: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _metrics(prof: Profile) -> list[tuple[str, Callable[[Analysis], Any], Callable[[Any], str]]]:
    """(label, value, format) of each compared figure; numeric values get ratios."""
    compute: list[tuple[str, Callable[[Analysis], Any], Callable[[Any], str]]]
    if prof.name == "fvcore":
        compute = [("fvcore", lambda a: a.fvcore_flops, count_text)]
    else:
        compute = [("MACs", lambda a: a.macs, count_text), ("FLOPs", lambda a: a.flops, count_text)]
    return [
        ("Input", lambda a: shape_text(a.input_shape), str),
        ("Output", lambda a: outputs_text(a.outputs), str),
        ("Params", lambda a: a.params, count_text),
        *compute,
        ("Parameter memory", lambda a: a.memory.bytes(a.memory.params), bytes_text),
        ("Activations (inference)", lambda a: a.memory.bytes(a.memory.activations), bytes_text),
        ("Peak activation memory", lambda a: a.memory.bytes(a.memory.peak), bytes_text),
        ("Saved for backward (training)", lambda a: a.training.saved, bytes_text),
        ("Depth", lambda a: a.depth, str),
        ("Receptive field", lambda a: a.receptive_field.size[0] if a.receptive_field else 0,
         lambda v: str(v) if v else "n/a"),
    ]


def plan_comparison(analyses: Sequence[Analysis], *, profile: str = "torchvision") -> Comparison:
    """A row per figure; a column per spec, each after the first followed by its ratio column."""
    prof = PROFILES[profile]
    names = [a.name for a in analyses]
    headers = ["", names[0]]
    for name in names[1:]:
        headers += [name, f"vs {names[0]}"]
    rows = []
    for label, value, fmt in _metrics(prof):
        values = [value(a) for a in analyses]
        cells = [fmt(values[0])]
        for v in values[1:]:
            cells += [fmt(v), ratio_text(v, values[0]) if isinstance(v, int) else ""]
        rows.append((label, cells))
    raw = _comparison_records(analyses)
    return Comparison(names, headers, rows, raw, [prof.convention, COMMON_NOTE])


RATIO_KEYS = ("params", "macs", "flops", "fvcore_flops", "peak_bytes")


def _comparison_records(analyses: Sequence[Analysis]) -> list[dict[str, Any]]:
    """One flat record per spec (the CSV of a comparison), with ratios to the first."""
    records = [summary_record(a) for a in analyses]
    first = records[0]
    for record in records:
        for key in RATIO_KEYS:
            record[f"{key}_ratio"] = round(record[key] / first[key], 6) if first[key] else ""
    return records


def summary_record(a: Analysis) -> dict[str, Any]:
    """The headline figures of one analysis as a flat record (a comparison's or a sweep's row)."""
    m = a.memory
    return {"name": a.name, "file": a.file, "input": shape_text(a.input_shape),
            "output": outputs_text(a.outputs), "params": a.params, "buffers": a.buffers,
            "macs": a.macs, "flops": a.flops, "fvcore_flops": a.fvcore_flops,
            "param_bytes": m.bytes(m.params), "activation_bytes": m.bytes(m.activations),
            "peak_bytes": m.bytes(m.peak), "saved_bytes": a.training.saved, "depth": a.depth,
            "receptive_field": a.receptive_field.size[0] if a.receptive_field else ""}


# --- JSON ----------------------------------------------------------------------------------------

def to_json_data(a: Analysis, *, profile: str = "torchvision", layers: bool = True) -> dict[str, Any]:
    """The report of one spec as JSON-ready data (documented in docs/REPORT_JSON.md); without
    ``layers``, the per-layer, per-block and per-stage lists are left out."""
    outputs = {name: list(shape) for name, shape in a.outputs.items()}
    return {
        "format": JSON_FORMAT,
        "name": a.name,
        "file": a.file,
        "spec_params": {name: _json_value(value) for name, value in a.spec_params.items()},
        "input": list(a.input_shape),
        "output": next(iter(outputs.values())) if len(outputs) == 1 else outputs,
        "batch": a.batch,
        "profile": profile,
        "params": a.params,
        "trainable_params": a.trainable_params,
        "buffers": a.buffers,
        "macs": a.macs,
        "flops": a.flops,
        "fvcore_flops": a.fvcore_flops,
        "memory": _memory_json(a),
        "training": _training_json(a),
        "receptive_field": _rf_json(a.receptive_field),
        "depth": a.depth,
        "layer_counts": dict(a.layer_counts),
        **({"layers": [_node_json(s) for s in a.nodes.values()],
            "blocks": [_scope_json(s) for s in a.blocks],
            "stages": [_stat_json(s) for s in a.stages]} if layers else {}),
    }


def _json_value(value: Any) -> Any:
    """A parameter value as JSON has it: `.inf`/`.nan` (not JSON numbers) become the strings
    "inf", "-inf" and "nan"; everything else as it is."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    return value


def _memory_json(a: Analysis) -> dict[str, Any]:
    m = a.memory

    def amount(elements: int) -> dict[str, int]:
        return {"elements": elements, "bytes": m.bytes(elements)}

    return {
        "dtype": m.dtype,
        "bytes_per_element": m.bytes_per_element,
        "input": amount(m.input),
        "params": amount(m.params),
        "buffers": amount(m.buffers),
        "activations": amount(m.activations),
        "training_activations": amount(m.training_activations),
        "peak": {**amount(m.peak), "at": m.peak_at},
    }


def _training_json(a: Analysis) -> dict[str, Any]:
    t = a.training
    return {"optimizer": t.optimizer, "saved_bytes": t.saved, "weight_bytes": t.weights,
            "gradient_bytes": t.gradients, "optimizer_state_bytes": t.optimizer_state,
            "peak_bytes": t.peak, "peak_at": t.peak_at}


def _rf_json(rf: ReceptiveField | None) -> dict[str, Any] | None:
    if rf is None:
        return None
    return {"size": list(rf.size), "jump": list(rf.jump), "start": [float(v) for v in rf.start],
            "global": rf.global_}


def _stat_json(stat: Stat) -> dict[str, Any]:
    return _node_json(stat) if isinstance(stat, NodeStats) else _scope_json(stat)


_LAYER_KEYS = ("kind", "name", "path", "op", "category", "label", "scope", "block", "block_path",
               "stage", "inputs", "input_shapes", "output", "params", "trainable_params", "buffers",
               "macs", "flops", "fvcore_flops", "output_elements", "output_bytes", "saved_bytes",
               "receptive_field", "depth", "runs")


def json_layer_bytes() -> int:
    """A lower bound on one layer's record in the JSON report: its keys, indentation and
    punctuation, with every value at its shortest (one character; a layer has at least one
    input, and its shapes at least one size)."""
    shortest: dict[str, Any] = {key: 0 for key in _LAYER_KEYS}
    shortest.update(kind="layer", inputs=["x"], input_shapes=[[0]], output=[0])
    record = json.dumps(shortest, indent=2)
    depth = 4  # the record sits in the "layers" list of the report object
    return len(record) + depth * (record.count("\n") + 1) + len(",\n")


def check_json_size(graphs: Sequence[Graph], max_bytes: int = MAX_JSON_BYTES) -> None:
    """Refuse, before any analysis, a JSON report that cannot fit ``max_bytes``: each layer's
    record is at least :func:`json_layer_bytes` long (a 109-byte spec can expand to 190,000
    layers; analysing them all only to refuse the text took minutes)."""
    layers = sum(sum(1 for _ in g.op_nodes()) for g in graphs)
    if layers * json_layer_bytes() > max_bytes:
        first = graphs[0]
        raise _json_too_large(max_bytes, first.spec.loc if first.spec else None, layers)


def _json_too_large(max_bytes: int, loc: Loc | None, layers: int) -> SpecError:
    return SpecError(Diagnostic(
        f"the JSON report is larger than {max_bytes // 1_000_000:,} MB", loc,
        expected=f"at most {max_bytes:,} bytes of JSON",
        found=f"{layers:,} layers",
        hint="report the totals with --format text or md --per stage, or compare blocks "
             "with --per block; the JSON has one record per layer"))


def _node_json(s: NodeStats) -> dict[str, Any]:
    return {
        "kind": "layer",
        "name": s.local_name,
        "path": s.name,
        "op": s.op,
        "category": s.category,
        "label": s.label,
        "scope": s.scope,
        "block": s.block,
        "block_path": s.block_path,
        "stage": s.stage,
        "inputs": list(s.inputs),
        "input_shapes": [list(shape) for shape in s.in_shapes],
        "output": list(s.shape),
        "params": s.params,
        "trainable_params": s.trainable_params,
        "buffers": s.buffers,
        "macs": s.macs,
        "flops": s.flops,
        "fvcore_flops": s.fvcore_flops,
        "output_elements": s.output_elements,
        "output_bytes": s.output_bytes,
        "saved_bytes": s.saved_bytes,
        "receptive_field": _rf_json(s.rf),
        "depth": s.depth,
        "runs": s.runs,
    }


def _scope_json(s: ScopeStats) -> dict[str, Any]:
    return {
        "kind": s.kind,
        "name": s.local_name,
        "path": s.path,
        "block": s.block,
        "parent": s.parent,
        "input": list(s.in_shape),
        "output": list(s.out_shape),
        "params": s.params,
        "trainable_params": s.trainable_params,
        "buffers": s.buffers,
        "macs": s.macs,
        "flops": s.flops,
        "fvcore_flops": s.fvcore_flops,
        "output_elements": s.output_elements,
        "output_bytes": s.output_bytes,
        "saved_bytes": s.saved_bytes,
        "layers": s.nodes,
        "receptive_field": _rf_json(s.rf),
        "depth": s.depth,
        "runs": s.runs,
    }


# --- rendering -----------------------------------------------------------------------------------

def render(analyses: Sequence[Analysis], fmt: str = "text", *, per: str = "layer",
           profile: str = "torchvision", warn: Callable[[str], None] | None = None,
           timeout: float | None = None) -> str:
    """The report of one or several analysed specs in ``fmt`` (one of :data:`FORMATS`).

    The HTML page embeds each spec's diagram, laid out by Graphviz in at most ``timeout`` seconds
    (None: :data:`archdsl.draw.LAYOUT_TIMEOUT`). A diagram that cannot be drawn (no Graphviz,
    ``dot`` failing or too slow) is left out and ``warn`` receives a warning saying why.
    """
    if fmt == "json":
        return render_json(analyses, profile=profile)
    reports = [plan_report(a, per=per, profile=profile) for a in analyses]
    comparison = plan_comparison(analyses, profile=profile) if len(analyses) > 1 else None
    if fmt == "text":
        return render_text(reports, comparison)
    if fmt == "csv":
        return render_csv(reports, comparison)
    if fmt == "md":
        return template("report.md.j2").render(reports=reports, comparison=comparison)
    if fmt == "html":
        from .charts import stage_charts

        for rep in reports:
            rep.diagram = diagram_svg(rep.analysis, warn, timeout)
            rep.charts = stage_charts([rep.analysis])
        return template("report.html.j2").render(reports=reports, comparison=comparison)
    raise ValueError(f"unknown format {fmt!r}")


JSON_CHARGE_EVERY = 4096  # pieces of JSON text written between two charges to the budget


def render_json(analyses: Sequence[Analysis], *, profile: str = "torchvision",
                max_bytes: int = MAX_JSON_BYTES) -> str:
    """The JSON report, built layer by layer and charged to ``max_bytes`` as it is written:
    a 190,000-layer graph (a 109-byte spec) would be 340 MB of JSON and gigabytes of dicts;
    it is refused as soon as the text passes the budget, never held whole. The encoder's pieces
    are charged ``JSON_CHARGE_EVERY`` at a time, by their exact total (at most that many pieces,
    a few layer records, are made past the budget before it is refused)."""
    data = [_lazy_json_data(a, profile) for a in analyses]
    chunks: list[str] = []
    size = 0
    encoder = json.JSONEncoder(indent=2, allow_nan=False)
    pieces = encoder.iterencode(data[0] if len(data) == 1 else data)
    while batch := list(itertools.islice(pieces, JSON_CHARGE_EVERY)):
        size += sum(map(len, batch))
        if size > max_bytes:
            first = analyses[0]
            loc = first.graph.spec.loc if first.graph is not None and first.graph.spec else None
            raise _json_too_large(max_bytes, loc, sum(len(a.nodes) for a in analyses))
        chunks += batch
    return "".join(chunks) + "\n"


class _LazyList(list):
    """A list the JSON encoder reads item by item: each record is made when it is written (the
    pure-Python encoder, used with ``indent``, only iterates and tests emptiness)."""

    def __init__(self, items: Sequence[Any], make: Callable[[Any], Any]):
        super().__init__()
        self._items, self._make = items, make

    def __iter__(self) -> Iterator[Any]:
        return (self._make(item) for item in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)


def _lazy_json_data(a: Analysis, profile: str) -> dict[str, Any]:
    data = to_json_data(a, profile=profile, layers=False)
    data["layers"] = _LazyList(list(a.nodes.values()), _node_json)
    data["blocks"] = _LazyList(a.blocks, _scope_json)
    data["stages"] = _LazyList(a.stages, _stat_json)
    return data


def render_text(reports: list[SpecReport], comparison: Comparison | None) -> str:
    if comparison is not None:
        rows = [[label, *cells] for label, cells in comparison.rows]
        numeric = [False] + [True] * (len(comparison.headers) - 1)
        lines = [text_table(comparison.headers, rows, numeric), ""]
        lines += [_wrap(note) for note in comparison.notes]
        return "\n".join(lines) + "\n"
    return _text_report(reports[0])


def _text_report(rep: SpecReport) -> str:
    table = rep.table
    rows = table.cell_rows()
    for cells, row in zip(rows, table.rows, strict=True):
        cells[0] = "  " * row.level + cells[0]
    rows.append([table.total.get(c.key, "") for c in table.columns])
    body = text_table([c.title for c in table.columns], rows, [c.numeric for c in table.columns],
                      rule_before_last=True)
    width = max(len(label) for label, _ in rep.summary)
    summary = [f"{label:<{width}}  {value}" for label, value in rep.summary]
    notes = [_wrap(note) for note in rep.notes]
    return "\n".join([f"{rep.title}  ({rep.subtitle})", "", body, "", *summary, "", *notes]) + "\n"


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool],
               rule_before_last: bool = False) -> str:
    """A plain-text table: text columns left-aligned, numeric ones right-aligned."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [line(headers), rule]
    body = [line(r) for r in rows]
    if rule_before_last and body:
        body.insert(len(body) - 1, rule)
    return "\n".join(out + body)


def _wrap(text: str) -> str:
    return textwrap.fill(text, width=100)


def render_csv(reports: list[SpecReport], comparison: Comparison | None) -> str:
    """One spec: a row per table row (``--per``); several: a row per spec with ratios."""
    buffer = io.StringIO()
    if comparison is not None:
        writer = csv.DictWriter(buffer, fieldnames=list(comparison.raw[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(comparison.raw)
        return buffer.getvalue()
    rep = reports[0]
    records = [_csv_record(rep.analysis, row) for row in rep.table.rows]
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue()


CSV_FIELDS = ["level", "kind", "path", "name", "type", "output", "params", "trainable_params",
              "buffers", "macs", "flops", "fvcore_flops", "output_elements", "output_bytes",
              "saved_bytes", "rf_h", "rf_w", "rf_jump_h", "rf_jump_w", "rf_global", "depth", "runs"]


def _csv_record(a: Analysis, row: TableRow) -> dict[str, Any]:
    stat = a.stat(row.path)
    is_scope = isinstance(stat, ScopeStats)
    rf = stat.rf
    return {
        "level": row.level,
        "kind": stat.kind if is_scope else "layer",
        "path": row.path,
        "name": stat.local_name,
        "type": row.cells["type"] if is_scope else stat.op,
        "output": row.cells["output"],
        "params": stat.params,
        "trainable_params": stat.trainable_params,
        "buffers": stat.buffers,
        "macs": stat.macs,
        "flops": stat.flops,
        "fvcore_flops": stat.fvcore_flops,
        "output_elements": stat.output_elements,
        "output_bytes": stat.output_bytes,
        "saved_bytes": stat.saved_bytes,
        "rf_h": rf.size[0] if rf else "",
        "rf_w": rf.size[1] if rf else "",
        "rf_jump_h": rf.jump[0] if rf else "",
        "rf_jump_w": rf.jump[1] if rf else "",
        "rf_global": rf.global_ if rf else "",
        "depth": stat.depth,
        "runs": stat.runs,
    }


def template(name: str) -> Any:
    """A Jinja2 template of ``archdsl/templates`` (with the ``md`` filter for table cells)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2")),
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    env.filters["md"] = _md_cell
    return env.get_template(name)


def _md_cell(text: Any) -> str:
    """Escape a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("*", "\\*")


def diagram_svg(a: Analysis, warn: Callable[[str], None] | None = None,
                timeout: float | None = None) -> str | None:
    """The spec's diagram as inline SVG (:func:`archdsl.draw.render_svg` of this analysis), or
    None when it cannot be drawn: Graphviz missing, ``dot`` failing, or its layout running past
    ``timeout`` seconds. ``warn`` then receives a warning saying why and what helps."""
    from . import draw  # the graphviz package: only HTML pages need it

    if a.graph is None:
        return None
    try:
        svg = draw.render_svg(a, inline=True,
                              timeout=draw.LAYOUT_TIMEOUT if timeout is None else timeout)
    except ArchError as error:
        if warn is not None:
            warn(_no_diagram(a, error, isinstance(error, draw.LayoutError)))
        return None
    return _inline_svg(svg)


def _no_diagram(a: Analysis, error: ArchError, layout: bool) -> str:
    """The warning for a page without its diagram (the page itself is still written)."""
    first = error.first
    hint = first.hint
    if layout:
        hint = ("give Graphviz longer with `--timeout SECONDS`, or draw the network on its own with "
                "`archdsl draw` (`--layout fast`, `--depth 0`, `-o FILE.dot`)")
    return replace(first, message=f"the report of {a.name} has no diagram: {first.message}",
                   severity="warning", hint=hint).render()


def _inline_svg(svg: str) -> str:
    """Drop the XML declaration and DOCTYPE so the SVG can sit inside HTML."""
    return re.sub(r"^\s*(<\?xml[^>]*>\s*)?(<!DOCTYPE[^>]*>\s*)?", "", svg)
