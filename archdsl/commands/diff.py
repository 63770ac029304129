"""``archdsl diff``: how two networks differ, structurally, with what each change costs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import click

from ..analysis import analyze
from ..cli import CONTEXT, echo_warnings, load_from_options
from ..errors import ArchError, Diagnostic, UsageError
from ..expand import DEFAULT_MAX_NODES
from ..util import write_output

__all__ = ["diff"]

REPORT_SUFFIXES = {".txt": "text", ".md": "md", ".json": "json", ".html": "html", ".htm": "html"}
DIAGRAM_SUFFIXES = (".svg",)


def _depth(ctx: click.Context, param: click.Parameter, value: str) -> int | None:
    if value.strip().lower() in ("all", "max", "full"):
        return None
    if not value.strip().isdigit() or int(value) < 1:
        raise click.BadParameter("expected a whole number >= 1, or `all`", ctx, param)
    return int(value)


@click.command(context_settings=CONTEXT)
@click.argument("spec_a", metavar="A", type=click.Path(dir_okay=False))
@click.argument("spec_b", metavar="[B]", required=False, type=click.Path(dir_okay=False))
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE",
              help="Override a spec parameter of both A and B (repeatable).")
@click.option("--set-a", "sets_a", multiple=True, metavar="NAME=VALUE",
              help="Override a spec parameter of A only (repeatable).")
@click.option("--set-b", "sets_b", multiple=True, metavar="NAME=VALUE",
              help="Override a spec parameter of B only (repeatable).")
@click.option("--input", "input_shape", metavar="CxHxW", help="Input shape of both, e.g. 3x299x299.")
@click.option("--allow-path", "allow_paths", multiple=True, type=click.Path(file_okay=False),
              help="Also allow `use:` libraries from this directory (repeatable).")
@click.option("--max-nodes", type=click.IntRange(1), default=DEFAULT_MAX_NODES, show_default=True,
              help="Refuse specs that expand to more nodes.")
@click.option("-f", "--format", "fmt", type=click.Choice(("text", "md", "json", "html")),
              default=None, help="Output format [default: from the -o suffix, else text].")
@click.option("--depth", default="all", show_default=True, metavar="N|all", callback=_depth,
              help="How many levels of nested changes the tables show (JSON has all).")
@click.option("--batch", type=click.IntRange(1), default=1, show_default=True,
              help="Batch size (scales compute and activation memory).")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write to FILE (atomically): .txt .md .json .html for the diff, .svg for the two "
                   "diagrams with added, removed and changed boxes coloured.")
def diff(spec_a: str, spec_b: str | None, sets: tuple[str, ...], sets_a: tuple[str, ...],
         sets_b: tuple[str, ...], input_shape: str | None, allow_paths: tuple[str, ...],
         max_nodes: int, fmt: str | None, depth: int | None, batch: int,
         output: str | None) -> None:
    """Compare network A with network B: what was added, removed and changed, through the block
    hierarchy (not the YAML text), with each change's delta of parameters, MACs, activation memory
    and bytes kept for backward, and the totals.

    B defaults to A: compare one spec under two settings with --set-a and --set-b.

    \b
    Exit codes (like diff): 0 the same network (same structure and figures), 1 they differ,
    2 trouble: a wrong command line, or a spec with errors.

    \b
    Examples:
      archdsl diff specs/resnet50.yaml specs/resnext50_32x4d.yaml
      archdsl diff specs/densenet121.yaml specs/densenet169.yaml --depth 2 -o d.html
      archdsl diff specs/resnet_cifar.yaml --set-a depth=20 --set-b depth=56
      archdsl diff specs/resnet50.yaml specs/se_resnet50.yaml -o se.svg
    """
    from ..diff import diff_analyses, diff_svg, render_diff

    suffix = Path(output).suffix.lower() if output else ""
    if output and suffix not in REPORT_SUFFIXES and suffix not in DIAGRAM_SUFFIXES:
        raise UsageError(Diagnostic(f"-o {output}: unknown output format `{suffix or '(none)'}`",
                                    None, expected="a file ending in .txt, .md, .json, .html or .svg",
                                    found=repr(output)))
    if spec_b is None and not (sets_a or sets_b):
        raise UsageError(Diagnostic("diff needs two networks", None,
                                    expected="A B, or A with --set-a and/or --set-b",
                                    found=f"only {spec_a}",
                                    hint=f"archdsl diff {spec_a} OTHER.yaml, or archdsl diff "
                                         f"{spec_a} --set-a NAME=1 --set-b NAME=2"))
    graphs = []
    for path, own in ((spec_a, sets_a), (spec_b or spec_a, sets_b)):
        try:
            graph = load_from_options(path, sets + own, input_shape, allow_paths, max_nodes)
        except UsageError:
            raise
        except ArchError as error:  # diff's convention: 2 for trouble, 1 means "they differ"
            click.echo(error.render(), err=True)
            raise SystemExit(2) from None
        echo_warnings(graph)
        graphs.append(graph)
    result = diff_analyses(*(analyze(graph, batch=batch) for graph in graphs))
    if suffix in DIAGRAM_SUFFIXES:
        write_output(output, diff_svg(result))
        click.echo(f"{output}: {result.a.name} and {result.b.name}, changes coloured", err=True)
    else:
        fmt = fmt or REPORT_SUFFIXES.get(suffix, "text")
        text = render_diff(result, fmt, depth=depth, **_html_extras(result, fmt))
        write_output(output or "-", text)
    raise SystemExit(0 if result.same else 1)


def _html_extras(result, fmt: str) -> dict:
    """Charts and, when Graphviz is there, the coloured diagrams for an HTML page."""
    if fmt != "html":
        return {}
    from ..charts import stage_charts
    from ..diff import diff_svg, stage_rows

    diagram = None
    if shutil.which("dot") is not None:
        try:
            diagram = diff_svg(result)
        except (ArchError, OSError, RuntimeError, subprocess.SubprocessError) as error:
            click.echo(f"warning: no diagrams: {error}", err=True)
    return {"charts": lambda d: stage_charts([d.a, d.b], stage_rows(d)), "diagram": diagram}
