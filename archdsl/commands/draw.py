"""``archdsl draw``: a Graphviz diagram of a spec."""

from __future__ import annotations

import click

from ..cli import CONTEXT, echo_warnings, load_from_options, spec_options
from ..draw import LAYOUT_TIMEOUT, LAYOUTS, RANKDIRS, SHAPE_MODES, dot_program, output_format, render

__all__ = ["draw"]


def _depth(ctx: click.Context, param: click.Parameter, value: str) -> int | None:
    if value.strip().lower() in ("all", "max", "full"):
        return None
    try:
        depth = int(value)
    except ValueError:
        depth = -1
    if depth < 0:
        raise click.BadParameter("expected a whole number >= 0, or `all`", ctx, param)
    return depth


@click.command(context_settings=CONTEXT)
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The diagram file; the format follows the extension: .svg .png .pdf .dot")
@click.option("--depth", default="1", show_default=True, metavar="N|all", callback=_depth,
              help="How far blocks open: 0 stages, 1 blocks, 2 and more down to layers; all.")
@click.option("--expand", multiple=True, metavar="NAME",
              help="Open these blocks whatever the depth: a path (layer3.0), a glob (inception4*) "
                   "or a block name (bottleneck); repeatable or comma-separated.")
@click.option("--rankdir", type=click.Choice(RANKDIRS, case_sensitive=False), default="TB",
              show_default=True, help="Direction of the data flow: top-bottom, left-right, ...")
@click.option("--shapes", type=click.Choice(SHAPE_MODES), default="edge", show_default=True,
              help="Tensor shapes: on the edges, under each box, or none.")
@click.option("--costs", is_flag=True, help="Add parameters and MACs to every box.")
@click.option("--fold/--no-fold", default=True, show_default=True,
              help="Fold repeated blocks into `x N` and conv-BN-ReLU chains into one box.")
@click.option("--legend/--no-legend", default=True, show_default=True,
              help="Show the colour legend.")
@click.option("--layout", type=click.Choice(LAYOUTS), default="full", show_default=True,
              help="Graphviz's effort: full, or fast (bounded iterations: quick on big graphs with "
                   "many long skip connections, edges may bend more).")
@click.option("--timeout", type=click.FloatRange(0, min_open=True), default=LAYOUT_TIMEOUT,
              show_default=True, metavar="SECONDS",
              help="Stop Graphviz after this long and say what helps (no file is written).")
@click.option("--diff", "other", type=click.Path(dir_okay=False), metavar="OTHER",
              help="Colour what SPEC adds (green) or changes (orange) relative to OTHER (same --set "
                   "and --input); `archdsl diff OTHER SPEC -o x.svg` draws both sides.")
@spec_options
def draw(spec: str, output: str, depth: int | None, expand: tuple[str, ...], rankdir: str,
         shapes: str, costs: bool, fold: bool, legend: bool, layout: str, timeout: float,
         other: str | None, sets: tuple[str, ...], input_shape: str | None,
         allow_paths: tuple[str, ...], max_nodes: int) -> None:
    """Draw the network of SPEC with Graphviz: blocks collapse or open, repeats fold into `x N`.

    --costs shows the figures of `archdsl report` (the totals cover the inference pass).
    Graphviz is stopped after --timeout seconds; a diagram too big or too tangled to lay out in
    time is an error that names what helps (--layout fast, --fold, a lower --depth).

    \b
    Examples:
      archdsl draw specs/resnet152.yaml -o resnet152.svg
      archdsl draw specs/googlenet.yaml -o googlenet.png --expand inception3a
      archdsl draw specs/densenet121.yaml -o densenet.pdf --depth 2 --rankdir LR --costs
      archdsl draw specs/resnet18.yaml -o resnet18.dot --depth all --no-fold
      archdsl draw big.yaml -o big.svg --layout fast --timeout 300
      archdsl draw specs/se_resnet50.yaml --diff specs/resnet50.yaml -o se.png
    """
    fmt = output_format(output)
    if fmt != "dot":
        dot_program()
    names = tuple(name.strip() for item in expand for name in item.split(",") if name.strip())
    graph = load_from_options(spec, sets, input_shape, allow_paths, max_nodes)
    echo_warnings(graph)
    highlight = {}
    if other is not None:
        from ..analysis import analyze
        from ..diff import diff_analyses, highlights

        base = load_from_options(other, sets, input_shape, allow_paths, max_nodes)
        highlight = highlights(diff_analyses(analyze(base), analyze(graph)))[1]
    view = render(graph, output, timeout=timeout, depth=depth, expand=names, rankdir=rankdir,
                  shapes=shapes, costs=costs, fold=fold, legend=legend, layout=layout,
                  highlight=highlight)
    click.echo(f"{output}: {graph.name}, {len(view.boxes())} boxes, {len(view.edges)} edges", err=True)
