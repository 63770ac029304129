"""``archdsl sweep``: every combination of spec-parameter values, analysed, without torch."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from ..analysis import DTYPE_BYTES
from ..cli import CONTEXT, spec_options
from ..errors import Diagnostic, UsageError
from ..pipeline import parse, parse_sets
from ..report import SUFFIX_FORMATS
from ..sweep import (
    DEFAULT_MAX_POINTS,
    FIGURES,
    FORMATS,
    PLOT_SUFFIXES,
    make_axes,
    parse_budget,
    parse_plot,
    plot,
    render,
    run_sweep,
)
from ..util import write_output

__all__ = ["sweep"]

FIGURE_NAMES = ", ".join(FIGURES)


@click.command(context_settings=CONTEXT)
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("-g", "--grid", "grids", multiple=True, metavar="NAME=VALUES",
              help="Sweep a spec parameter (or `input`) over VALUES: a comma-separated list of "
                   "values and START:STOP[:STEP] ranges, STOP included (repeatable; every "
                   "combination is analysed).")
@spec_options
@click.option("--max", "budgets", multiple=True, metavar="FIGURE=LIMIT",
              help=f"Keep the points with FIGURE at most LIMIT, e.g. macs=600M, params=5M, "
                   f"memory=4MB (repeatable). Figures: {FIGURE_NAMES}.")
@click.option("--largest-by", type=click.Choice(tuple(FIGURES)), default=None, metavar="FIGURE",
              help="Name the largest kept point by this figure (one of the --max figures) "
                   "[default with --max: params, or macs under a params budget].")
@click.option("--plot", "plot_axes", metavar="X:Y",
              help="Draw Y against X with the Pareto front (the most Y for each X) to -o "
                   "FILE.svg|png|pdf, e.g. --plot macs:params. Needs matplotlib.")
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Table format [default: from the -o suffix, else text].")
@click.option("--batch", type=click.IntRange(1), default=1, show_default=True,
              help="Batch size (scales compute and activation memory).")
@click.option("--dtype", type=click.Choice(tuple(DTYPE_BYTES)), default="float32",
              show_default=True, help="Element type for memory in bytes.")
@click.option("--max-points", type=click.IntRange(1), default=DEFAULT_MAX_POINTS, show_default=True,
              help="Refuse grids with more combinations.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write the table to FILE (atomically); with --plot, the plot (the table goes "
                   "to stdout).")
def sweep(spec: str, grids: tuple[str, ...], sets: tuple[str, ...], input_shape: str | None,
          allow_paths: tuple[str, ...], max_nodes: int, budgets: tuple[str, ...],
          largest_by: str | None, plot_axes: str | None, fmt: str | None, batch: int, dtype: str,
          max_points: int, output: str | None) -> None:
    """Analyse SPEC at every combination of the --grid values: params, MACs, peak memory, depth
    and output shape per point, without torch.

    The spec is read once. A point whose spec fails (a `checks:` condition, an input too small)
    is listed with the first line of its error and skipped. `--grid input=...` sweeps the input:
    shapes CxHxW, or one size S for SxS at the spec's input channels (ranges give sizes).
    Exits 1 when no point is valid, 2 for a wrong command line.

    \b
    Examples:
      archdsl sweep specs/resnet_cifar.yaml --grid depth=20:110:18 --grid width=8,16,32
      archdsl sweep specs/resnet_cifar.yaml -g depth=20:110:6 -g width=16:64:16 \\
          --max macs=600M --plot macs:params -o pareto.svg
      archdsl sweep specs/densenet121.yaml --grid growth_rate=12,24,32,48 --format md
      archdsl sweep specs/shufflenet_v2_x1_0.yaml --grid width=0.5,1.0,1.5,2.0 --max params=5M
      archdsl sweep specs/resnet18.yaml --grid input=32:224:32 --format csv
    """
    plot_xy = _plot_target(plot_axes, output)
    fmt = fmt or ("text" if plot_xy else _format_from_suffix(output))
    limits = [parse_budget(text) for text in budgets]
    overrides = parse_sets(sets)
    parsed = parse(spec, allow_paths)
    axes = make_axes(parsed, grids, overrides, input_given=input_shape is not None,
                     max_points=max_points)
    progress = _Progress()
    try:
        result = run_sweep(parsed, axes, sets=overrides, input=input_shape, max_nodes=max_nodes,
                           batch=batch, dtype=dtype, budgets=limits, largest_by=largest_by,
                           progress=progress.update)
    finally:
        progress.close()
    for warning in result.warnings:
        click.echo(warning, err=True)
    if not result.valid:
        for point in result.invalid:
            click.echo(f"{point.label}: {point.error}", err=True)
        click.echo(f"error: none of the {len(result.points):,} points is valid", err=True)
        raise SystemExit(1)
    front = plot(result, *plot_xy, output) if plot_xy and output else None
    text = render(result, fmt, front=front, plot_axes=plot_xy)
    if output and not plot_xy:
        write_output(output, text)
    else:
        click.echo(text, nl=False)
    if plot_xy and output:
        click.echo(f"wrote {output} ({len(front or [])} points on the Pareto front)", err=True)


def _plot_target(plot_axes: str | None, output: str | None) -> tuple[str, str] | None:
    """The plot's (x, y), checked with -o before any work: a plot needs -o FILE.svg|png|pdf."""
    suffix = Path(output).suffix.lower() if output else ""
    if plot_axes is None:
        if suffix in PLOT_SUFFIXES:
            raise UsageError(Diagnostic(f"-o {output}: a plot file, but no --plot X:Y", None,
                                        hint="add e.g. --plot macs:params, or write the table "
                                             "to .txt, .md, .csv or .json"))
        return None
    xy = parse_plot(plot_axes)
    if suffix not in PLOT_SUFFIXES:
        raise UsageError(Diagnostic(f"--plot {plot_axes}: needs -o FILE.svg, .png or .pdf", None,
                                    found=repr(output) if output else "no -o",
                                    hint=f"e.g. --plot {plot_axes} -o pareto.svg"))
    return xy


def _format_from_suffix(output: str | None) -> str:
    if output is None:
        return "text"
    fmt = SUFFIX_FORMATS.get(Path(output).suffix.lower(), "text")
    if fmt not in FORMATS:
        raise UsageError(Diagnostic(f"-o {output}: a sweep has no {fmt} format", None,
                                    expected="a table as .txt, .md, .csv or .json, or a plot as "
                                             ".svg, .png or .pdf (with --plot)"))
    return fmt


class _Progress:
    """A progress bar on stderr, shown once the sweep has run for more than a second (and only
    on a terminal: a log or a pipe gets nothing)."""

    DELAY = 1.0

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.stream = sys.stderr
        self.enabled = self.stream.isatty()
        self.bar: Any = None
        self.shown = 0

    def update(self, done: int, total: int) -> None:
        if self.bar is None:
            late = time.perf_counter() - self.started >= self.DELAY
            if not self.enabled or not late or done == total:
                return
            self.bar = click.progressbar(length=total, label="sweeping", file=self.stream,
                                         show_pos=True, show_eta=True)
        self.bar.update(done - self.shown)
        self.shown = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.render_finish()
