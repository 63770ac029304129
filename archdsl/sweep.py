"""``archdsl sweep``: analyse a spec at every combination of parameter values, without torch.

The spec is parsed once; each point of the grid resolves its parameters, expands the spec again
(:func:`archdsl.pipeline.instantiate`) and analyses it (:func:`archdsl.analysis.analyze`). A point
whose spec is wrong there (a failed ``checks:`` condition, an input too small) is kept with the
first line of its diagnostic and skipped; it never stops the sweep.

Grids (``--grid NAME=VALUES``): ``VALUES`` is a comma-separated list of values and ranges;
``START:STOP[:STEP]`` counts from ``START`` up to ``STOP`` included (``20:110:18`` is 20, 38, 56,
74, 92, 110; decimals are exact: ``0.5:2:0.5``). ``NAME`` is a spec parameter or ``input``, whose
values are input shapes ``CxHxW`` or one size ``S`` (``S x S`` at the point's input channels).

Budgets (``--max FIGURE=LIMIT``, ``600M``, ``5M``, ``2.5G``, ``4MB``) keep the points within them
and name the largest point by another figure (:func:`largest`). :func:`pareto_front` is the front
a ``--plot x:y`` draws: the points no other point beats with at most their ``x`` and at least
their ``y``. :func:`plot` draws it with matplotlib, imported only there.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from .analysis import analyze
from .errors import Diagnostic, SpecError, UsageError, did_you_mean
from .pipeline import instantiate, parse_input, resolve_params, spec_input
from .report import bytes_text, human, shape_text, summary_record, template, text_table
from .spec import Spec
from .util import write_output

__all__ = [
    "FIGURES",
    "FORMATS",
    "INPUT_AXIS",
    "PLOT_SUFFIXES",
    "Axis",
    "Budget",
    "Figure",
    "Point",
    "Sweep",
    "largest",
    "make_axes",
    "pareto_front",
    "parse_budget",
    "parse_plot",
    "plot",
    "render",
    "run_sweep",
]

INPUT_AXIS = "input"
FORMATS = ("text", "md", "json", "csv")
PLOT_SUFFIXES = (".svg", ".png", ".pdf")
JSON_FORMAT = "archdsl.sweep/1"
DEFAULT_MAX_POINTS = 10_000


# --- the figures a sweep shows, budgets and plots --------------------------------------------

@dataclass(frozen=True)
class Figure:
    """A numeric figure of a point: its key in the point's record, its title, how it reads."""

    key: str
    title: str
    is_bytes: bool = False

    def text(self, value: int) -> str:
        return bytes_text(value) if self.is_bytes else f"{value:,}"

    def short(self, value: float) -> str:
        """``600 M``, ``4.2 MB``: for budgets and plot labels."""
        return bytes_text(value) if self.is_bytes else human(value)


FIGURES: dict[str, Figure] = {
    "params": Figure("params", "Params"),
    "buffers": Figure("buffers", "Buffers"),
    "macs": Figure("macs", "MACs"),
    "flops": Figure("flops", "FLOPs"),
    "fvcore_flops": Figure("fvcore_flops", "fvcore FLOPs"),
    "memory": Figure("peak_bytes", "Peak memory", is_bytes=True),
    "activation_bytes": Figure("activation_bytes", "Activations", is_bytes=True),
    "param_bytes": Figure("param_bytes", "Parameter memory", is_bytes=True),
    "depth": Figure("depth", "Depth"),
}
TABLE_FIGURES = ("params", "macs", "memory", "depth")

_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15}
_LIMIT = re.compile(r"(?P<number>\d[\d_]*(\.\d*)?([eE]\d+)?|\.\d+)\s*(?P<unit>[kKmMgGtTpP]?)[bB]?")


@dataclass(frozen=True)
class Budget:
    """``--max FIGURE=LIMIT``: a point is kept when its figure is at most ``limit``."""

    figure: str
    limit: float

    def allows(self, record: Mapping[str, Any]) -> bool:
        return record[FIGURES[self.figure].key] <= self.limit

    def __str__(self) -> str:
        return f"{self.figure} <= {FIGURES[self.figure].short(self.limit)}"


def figure_name(name: str, option: str, text: str) -> str:
    """Check a figure's name as given to ``option``; a did-you-mean when it is unknown."""
    if name in FIGURES:
        return name
    raise UsageError(Diagnostic(f"{option} {text}: no figure `{name}`", None,
                                expected="one of " + ", ".join(f"`{f}`" for f in FIGURES),
                                found=repr(name), hint=did_you_mean(name, FIGURES)))


def parse_budget(text: str) -> Budget:
    """``"macs=600M"`` -> ``Budget("macs", 600e6)`` (K, M, G, T, P are powers of 1000; a
    trailing ``B`` is allowed for the memory figures)."""
    name, sep, limit = text.partition("=")
    if not sep or not name.strip() or not limit.strip():
        raise UsageError(Diagnostic(f"--max {text}: expected FIGURE=LIMIT", None,
                                    expected="e.g. --max macs=600M or --max params=5M",
                                    found=repr(text)))
    name = figure_name(name.strip(), "--max", text)
    match = _LIMIT.fullmatch(limit.strip())
    if match is None:
        raise UsageError(Diagnostic(f"--max {text}: `{limit.strip()}` is not a limit", None,
                                    expected="a number with an optional K, M, G or T, e.g. 600M, "
                                             "5M, 2.5G, 4MB", found=repr(limit.strip())))
    value = float(match["number"].replace("_", "")) * _UNITS[match["unit"].upper()]
    return Budget(name, value)


def parse_plot(text: str) -> tuple[str, str]:
    """``"macs:params"`` -> ``("macs", "params")``: the x and y figures of a plot."""
    x, sep, y = text.partition(":")
    if not sep or not x.strip() or not y.strip():
        raise UsageError(Diagnostic(f"--plot {text}: expected X:Y", None,
                                    expected="two figures, e.g. --plot macs:params",
                                    found=repr(text)))
    return figure_name(x.strip(), "--plot", text), figure_name(y.strip(), "--plot", text)


# --- the grid ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Axis:
    """One ``--grid``: a spec parameter (or the input) and its values, in order."""

    name: str
    values: tuple[Any, ...]  # typed parameter values; for the input, a shape tuple or a size
    texts: tuple[str, ...]  # how each value reads in the table

    @property
    def is_input(self) -> bool:
        return self.name == INPUT_AXIS


_RANGE = re.compile(r"(?P<start>-?[\d.]+):(?P<stop>-?[\d.]+)(:(?P<step>[\d.]+))?")


def split_grid(text: str, max_points: int = DEFAULT_MAX_POINTS) -> tuple[str, list[str]]:
    """``"depth=20:56:18,110"`` -> ``("depth", ["20", "38", "56", "110"])``: ranges unrolled."""
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or not name or not values.strip():
        raise UsageError(Diagnostic(f"--grid {text}: expected NAME=VALUES", None,
                                    expected="e.g. --grid depth=20,56,110 or --grid width=8:64:8",
                                    found=repr(text)))
    out: list[str] = []
    for item in values.split(","):
        item = item.strip()
        if not item:
            raise UsageError(Diagnostic(f"--grid {text}: an empty value", None,
                                        expected="values separated by single commas",
                                        found=repr(values)))
        out.extend(_unroll(name, item, max_points) if ":" in item else [item])
    return name, out


def _unroll(name: str, item: str, max_points: int) -> list[str]:
    """``"20:110:18"`` -> ``["20", "38", "56", "74", "92", "110"]`` (exact decimal steps)."""
    match = _RANGE.fullmatch(item)
    bad = UsageError(Diagnostic(f"--grid {name}: `{item}` is not a range", None,
                                expected="START:STOP or START:STOP:STEP with STOP >= START and "
                                         "STEP > 0, e.g. 20:110:18 or 0.5:2:0.5",
                                found=repr(item)))
    if match is None:
        raise bad
    try:
        start, stop = Decimal(match["start"]), Decimal(match["stop"])
        step = Decimal(match["step"] or 1)
    except InvalidOperation:
        raise bad from None
    if step <= 0 or stop < start:
        raise bad
    count = int((stop - start) / step) + 1
    if count > max_points:
        raise UsageError(Diagnostic(f"--grid {name}: the range `{item}` has {count:,} values", None,
                                    expected=f"at most {max_points:,} points in all",
                                    hint="use a larger step, or raise --max-points"))
    return [str(start + k * step) for k in range(count)]


def make_axes(spec: Spec, grids: Sequence[str], sets: Mapping[str, str], *,
              input_given: bool = False, max_points: int = DEFAULT_MAX_POINTS) -> list[Axis]:
    """The axes of ``--grid`` options, checked against the spec: known names (with a
    did-you-mean), values of the parameter's type and choices, no name twice or also in
    ``--set``, at most ``max_points`` combinations. Every mistake is a :class:`UsageError`."""
    if not grids:
        raise UsageError(Diagnostic("no --grid given", None,
                                    expected="at least one --grid NAME=VALUES",
                                    hint="e.g. --grid depth=20,56,110"))
    axes: list[Axis] = []
    names = [*spec.params, INPUT_AXIS]
    for text in grids:
        name, values = split_grid(text, max_points)
        if name not in names:
            known = ", ".join(f"`{n}`" for n in names)
            raise UsageError(Diagnostic(f"--grid {name}: the spec has no parameter `{name}`", None,
                                        expected=f"one of {known}", found=repr(name),
                                        hint=did_you_mean(name, names)))
        if any(axis.name == name for axis in axes):
            raise UsageError(Diagnostic(f"--grid {name}: given twice", None,
                                        hint=f"put all values in one: --grid {name}=A,B,C"))
        if name in sets or (name == INPUT_AXIS and input_given):
            option = "--input" if name == INPUT_AXIS else f"--set {name}"
            raise UsageError(Diagnostic(f"--grid {name}: also fixed by {option}", None,
                                        hint="a parameter is either swept or fixed: drop one"))
        axes.append(_input_axis(values) if name == INPUT_AXIS else _param_axis(spec, name, values))
    total = 1
    for axis in axes:
        total *= len(axis.values)
    if total > max_points:
        sizes = " x ".join(str(len(a.values)) for a in axes)
        raise UsageError(Diagnostic(f"--grid: {total:,} points ({sizes})", None,
                                    expected=f"at most {max_points:,} points",
                                    hint="fewer values, or raise --max-points"))
    return axes


def _param_axis(spec: Spec, name: str, texts: list[str]) -> Axis:
    """Each value typed and checked like ``--set`` does; repeated values dropped."""
    values: list[Any] = []
    shown: list[str] = []
    for text in texts:
        value = resolve_params(spec, {name: text}, option="--grid")[name]
        if not any(type(v) is type(value) and v == value for v in values):
            values.append(value)
            shown.append(_value_text(value))
    return Axis(name, tuple(values), tuple(shown))


def _input_axis(texts: list[str]) -> Axis:
    values: list[Any] = []
    for text in texts:
        value = int(text) if text.isdigit() and int(text) > 0 else _input_shape(text)
        if value not in values:
            values.append(value)
    shown = tuple(str(v) if isinstance(v, int) else shape_text(v) for v in values)
    return Axis(INPUT_AXIS, tuple(values), shown)


def _input_shape(text: str) -> tuple[int, ...]:
    try:
        return parse_input(text)
    except UsageError:
        raise UsageError(Diagnostic(f"--grid input: `{text}` is not an input shape", None,
                                    expected="CxHxW (e.g. 3x64x64) or one size S for S x S at "
                                             "the spec's input channels (e.g. 64)",
                                    found=repr(text))) from None


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- running it ----------------------------------------------------------------------------

@dataclass
class Point:
    """One combination of the grid: its values, and its figures or the error that skipped it."""

    index: int
    values: dict[str, Any]  # axis name -> value
    texts: dict[str, str]  # axis name -> value as shown
    record: dict[str, Any] | None = None  # report.summary_record of its analysis
    error: str | None = None  # the first line of its diagnostic, located

    @property
    def label(self) -> str:
        """``depth=56, width=32``."""
        return ", ".join(f"{name}={text}" for name, text in self.texts.items())

    def figure(self, name: str) -> int:
        assert self.record is not None
        return self.record[FIGURES[name].key]


@dataclass
class Sweep:
    """Every point of a sweep, the budgets and what follows from them."""

    name: str
    file: str
    axes: list[Axis]
    fixed: dict[str, Any]  # the --set parameters every point shares
    input: str | None  # the --input every point shares
    batch: int
    dtype: str
    points: list[Point]
    budgets: list[Budget] = field(default_factory=list)
    largest_by: str | None = None
    warnings: list[str] = field(default_factory=list)  # each distinct warning once

    @property
    def valid(self) -> list[Point]:
        return [p for p in self.points if p.record is not None]

    @property
    def invalid(self) -> list[Point]:
        return [p for p in self.points if p.record is None]

    @property
    def kept(self) -> list[Point]:
        """The valid points within every budget."""
        return [p for p in self.valid if all(b.allows(p.record) for b in self.budgets)]

    @property
    def over_budget(self) -> list[Point]:
        return [p for p in self.valid if not all(b.allows(p.record) for b in self.budgets)]

    @property
    def largest(self) -> Point | None:
        """The largest kept point by ``largest_by`` (None without budgets or ``largest_by``)."""
        if self.largest_by is None:
            return None
        return largest(self.kept, self.largest_by)


def default_largest_by(budgets: Sequence[Budget]) -> str:
    """The figure a budget's largest point is named by: params under a MAC budget, MACs under
    a parameter budget (the one of the two not limited; params when both or neither are)."""
    limited = {b.figure for b in budgets}
    return next((f for f in ("params", "macs") if f not in limited), "params")


def run_sweep(spec: Spec, axes: Sequence[Axis], *, sets: Mapping[str, Any] | None = None,
              input: str | None = None, max_nodes: int | None = None, batch: int = 1,
              dtype: str = "float32", budgets: Sequence[Budget] = (), largest_by: str | None = None,
              progress: Callable[[int, int], None] | None = None) -> Sweep:
    """Analyse ``spec`` at every combination of the axes' values (the last axis varies fastest).

    ``sets`` and ``input`` are shared by every point (``--set``, ``--input``). ``progress(done,
    total)`` is called after each point. A point whose spec fails is kept with its error.
    """
    sets = dict(sets or {})
    resolved = resolve_params(spec, sets)  # a wrong --set is a command-line error before any point
    extra: dict[str, Any] = {} if max_nodes is None else {"max_nodes": max_nodes}
    extra["block_cache"] = {}  # each distinct block use is expanded once for the whole sweep
    combos = list(itertools.product(*(range(len(a.values)) for a in axes)))
    points: list[Point] = []
    warnings: dict[str, None] = {}
    for done, combo in enumerate(combos, 1):
        values = {a.name: a.values[k] for a, k in zip(axes, combo, strict=True)}
        texts = {a.name: a.texts[k] for a, k in zip(axes, combo, strict=True)}
        point = Point(len(points), values, texts)
        try:
            graph = _instantiate(spec, sets, values, input, extra)
        except SpecError as error:
            point.error = _first_line(error)
        else:
            warnings.update((w.render(), None) for w in graph.warnings)
            point.record = summary_record(analyze(graph, batch=batch, dtype=dtype))
        points.append(point)
        if progress is not None:
            progress(done, len(combos))
    if budgets and largest_by is None:
        largest_by = default_largest_by(budgets)
    fixed = {name: resolved[name] for name in sets}
    return Sweep(name=spec.name, file=str(spec.file), axes=list(axes), fixed=fixed, input=input,
                 batch=batch, dtype=dtype, points=points, budgets=list(budgets),
                 largest_by=largest_by, warnings=list(warnings))


def _instantiate(spec: Spec, sets: Mapping[str, Any], values: Mapping[str, Any], input: str | None,
                 extra: dict[str, Any]) -> Any:
    overrides = {**sets, **{k: v for k, v in values.items() if k != INPUT_AXIS}}
    params = resolve_params(spec, overrides)
    shape: Any = input
    if INPUT_AXIS in values:
        shape = values[INPUT_AXIS]
        if isinstance(shape, int):  # one size: S x S at the point's input channels
            base = parse_input(input) if input is not None else spec_input(spec, params)
            shape = (base[0], shape, shape)
    return instantiate(spec, params, input=shape, smallest_input_hint=False, **extra)


def _first_line(error: SpecError) -> str:
    """``file:line:col: error: message``: the first line of the first error's diagnostic."""
    first = next((d for d in error.diagnostics if d.severity == "error"), error.first)
    return first.render().splitlines()[0]


def largest(points: Iterable[Point], by: str) -> Point | None:
    """The point with the largest ``by`` figure (the first in grid order on a tie)."""
    best: Point | None = None
    for point in points:
        if best is None or point.figure(by) > best.figure(by):
            best = point
    return best


def pareto_front(points: Iterable[Point], x: str, y: str) -> list[Point]:
    """The points no other point dominates (at most its ``x`` and at least its ``y``, one of the
    two strictly), by increasing ``x``: the most ``y`` for each budget of ``x``."""
    ordered = sorted(points, key=lambda p: (p.figure(x), -p.figure(y), p.index))
    front: list[Point] = []
    for point in ordered:
        if not front or point.figure(y) > front[-1].figure(y):
            front.append(point)
        elif (point.figure(x), point.figure(y)) == (front[-1].figure(x), front[-1].figure(y)):
            front.append(point)  # an exact twin of a front point is not dominated either
    return front


# --- output ----------------------------------------------------------------------------------

@dataclass
class SweepTable:
    """What every text format shows, decided: headers, rows of formatted cells, the lines below."""

    title: str
    headers: list[str]
    numeric: list[bool]
    rows: list[list[str]]
    lines: list[str]  # the largest point, the points left out
    invalid: list[str]  # "label: first line of the diagnostic"


def plan_table(sweep: Sweep, front: Sequence[Point] | None = None) -> SweepTable:
    """The table of the kept points (``front`` marks the Pareto front in a ``Front`` column)."""
    on_front = {p.index for p in front or ()}
    headers = [a.name for a in sweep.axes] + [FIGURES[f].title for f in TABLE_FIGURES] + ["Output"]
    numeric = [True] * len(sweep.axes) + [True] * len(TABLE_FIGURES) + [False]
    if front is not None:
        headers.append("Front")
        numeric.append(False)
    rows = []
    for point in sweep.kept:
        row = [point.texts[a.name] for a in sweep.axes]
        row += [FIGURES[f].text(point.figure(f)) for f in TABLE_FIGURES]
        row.append(point.record["output"])
        if front is not None:
            row.append("*" if point.index in on_front else "")
        rows.append(row)
    return SweepTable(_title(sweep), headers, numeric, rows, _summary_lines(sweep),
                      [f"{p.label}: {p.error}" for p in sweep.invalid])


def _title(sweep: Sweep) -> str:
    axes = " x ".join(f"{a.name} ({len(a.values)})" for a in sweep.axes)
    shared = [f"{k}={_value_text(v)}" for k, v in sweep.fixed.items()]
    if sweep.input is not None:
        shared.append(f"input {sweep.input}")
    shared += [f"batch {sweep.batch}", sweep.dtype]
    valid = len(sweep.valid)
    return (f"{sweep.name}: {len(sweep.points):,} points over {axes}, {valid:,} valid "
            f"({sweep.file}; {', '.join(shared)})")


def _summary_lines(sweep: Sweep) -> list[str]:
    lines = []
    if sweep.budgets:
        within = " and ".join(str(b) for b in sweep.budgets)
        lines.append(f"Within {within}: {len(sweep.kept):,} of {len(sweep.valid):,} valid points "
                     f"({len(sweep.over_budget):,} over budget, not shown).")
    best = sweep.largest
    if sweep.largest_by is not None:
        by = FIGURES[sweep.largest_by]
        if best is None:
            lines.append("No point is within the budget.")
        else:
            others = [f for f in ("params", "macs") if f != sweep.largest_by]
            figures = ", ".join(f"{FIGURES[f].title} {FIGURES[f].text(best.figure(f))}"
                                for f in [sweep.largest_by, *others])
            lines.append(f"Largest by {by.title}: {best.label} ({figures}).")
    return lines


def render(sweep: Sweep, fmt: str = "text", *, front: Sequence[Point] | None = None,
           plot_axes: tuple[str, str] | None = None) -> str:
    """The sweep in ``fmt`` (one of :data:`FORMATS`); ``front`` is marked when given."""
    if fmt == "json":
        return json.dumps(to_json_data(sweep, front, plot_axes), indent=2) + "\n"
    if fmt == "csv":
        return _csv(sweep, front)
    table = plan_table(sweep, front)
    if fmt == "md":
        return template("sweep.md.j2").render(table=table)
    if fmt == "text":
        lines = [table.title, ""]
        lines.append(text_table(table.headers, table.rows, table.numeric) if table.rows
                     else "(no point to show)")
        lines += ["", *table.lines] if table.lines else []
        if table.invalid:
            lines += ["", f"Invalid points (skipped): {len(table.invalid):,}"]
            lines += [f"  {line}" for line in table.invalid]
        return "\n".join(lines) + "\n"
    raise ValueError(f"unknown format {fmt!r}")


CSV_SKIP = ("name", "file")


def _csv(sweep: Sweep, front: Sequence[Point] | None) -> str:
    """A row per kept point: its grid values, then every figure of the summary record."""
    on_front = {p.index for p in front or ()}
    rows = []
    for point in sweep.kept:
        row: dict[str, Any] = {a.name: point.texts[a.name] for a in sweep.axes}
        row.update((k, v) for k, v in point.record.items() if k not in CSV_SKIP)
        if front is not None:
            row["front"] = point.index in on_front
        rows.append(row)
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()


def to_json_data(sweep: Sweep, front: Sequence[Point] | None = None,
                 plot_axes: tuple[str, str] | None = None) -> dict[str, Any]:
    """The sweep as JSON-ready data: every point (kept, over budget or invalid) with its values."""
    on_front = {p.index for p in front or ()}
    kept = {p.index for p in sweep.kept}
    best = sweep.largest

    def point_json(point: Point) -> dict[str, Any]:
        out: dict[str, Any] = {"values": {k: _json_value(v) for k, v in point.values.items()}}
        if point.record is None:
            out["error"] = point.error
            return out
        out.update((k, v) for k, v in point.record.items() if k not in CSV_SKIP)
        out["within_budget"] = point.index in kept
        if front is not None:
            out["front"] = point.index in on_front
        return out

    return {
        "format": JSON_FORMAT,
        "name": sweep.name,
        "file": sweep.file,
        "grid": {a.name: [_json_value(v) for v in a.values] for a in sweep.axes},
        "fixed": sweep.fixed,
        "input": sweep.input,
        "batch": sweep.batch,
        "dtype": sweep.dtype,
        "budgets": {b.figure: b.limit for b in sweep.budgets},
        "largest_by": sweep.largest_by,
        "largest": None if best is None else best.index,
        "plot": None if plot_axes is None else {"x": plot_axes[0], "y": plot_axes[1]},
        "points": [point_json(p) for p in sweep.points],
        "warnings": sweep.warnings,
    }


def _json_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


# --- the plot ----------------------------------------------------------------------------------

def plot(sweep: Sweep, x: str, y: str, path: str | Path) -> list[Point]:
    """Draw the kept points (``x`` against ``y``), the points over budget in grey, and the
    Pareto front; write SVG, PNG or PDF (by the suffix) atomically. Returns the front.

    Imports matplotlib (the ``plot`` extra); nothing else in the analysis path does.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in PLOT_SUFFIXES:
        raise UsageError(Diagnostic(f"-o {path}: a plot is written as SVG, PNG or PDF", None,
                                    expected=" or ".join(PLOT_SUFFIXES), found=repr(path.suffix)))
    figure_class = _figure_class()
    kept = sweep.kept
    front = pareto_front(kept, x, y)
    fx, fy = FIGURES[x], FIGURES[y]
    fig = figure_class(figsize=(7, 4.8), layout="constrained")
    ax = fig.subplots()
    over = sweep.over_budget
    if over:
        ax.scatter([p.figure(x) for p in over], [p.figure(y) for p in over], s=14,
                   color="#bbbbbb", label=f"over budget ({len(over)})")
    ax.scatter([p.figure(x) for p in kept], [p.figure(y) for p in kept], s=16, color="#4c72b0",
               label=f"points ({len(kept)})")
    ax.step([p.figure(x) for p in front], [p.figure(y) for p in front], where="post",
            color="#dd5555", linewidth=1.2)
    ax.scatter([p.figure(x) for p in front], [p.figure(y) for p in front], s=30,
               color="#dd5555", label=f"Pareto front ({len(front)})", zorder=3)
    if len(front) <= 12:
        for p in front:
            ax.annotate(p.label, (p.figure(x), p.figure(y)), fontsize=7, parse_math=False,
                        xytext=(4, -10), textcoords="offset points")  # values as plain text
    ax.set_xlabel(f"{fx.title} (lower is better)")
    ax.set_ylabel(f"{fy.title} (higher is better)")
    ax.xaxis.set_major_formatter(lambda v, _: fx.short(v))
    ax.yaxis.set_major_formatter(lambda v, _: fy.short(v))
    ax.set_title(f"{sweep.name}: {fy.title} against {fx.title}", fontsize=10, parse_math=False)
    ax.grid(True, linewidth=0.4, alpha=0.5)
    ax.legend(fontsize=8)
    buffer = io.BytesIO()
    with _rc_context({"svg.hashsalt": "archdsl-sweep"}):  # fixed SVG ids: the same bytes each run
        fig.savefig(buffer, format=suffix[1:], metadata=_plot_metadata(suffix))
    write_output(path, buffer.getvalue())
    return front


def _figure_class() -> Any:
    """matplotlib's Figure (its object API: no pyplot, no global backend or figure registry)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise UsageError(Diagnostic("--plot needs matplotlib, which is not installed", None,
                                    hint="pip install 'archdsl[plot]'")) from None
    return Figure


def _rc_context(settings: dict[str, Any]) -> Any:
    import matplotlib

    return matplotlib.rc_context(settings)


def _plot_metadata(suffix: str) -> dict[str, Any]:
    """No creation date in the file, so the same sweep writes the same bytes."""
    if suffix == ".svg":
        return {"Date": None}
    if suffix == ".pdf":
        return {"CreationDate": None}
    return {}
