"""``archdsl report``: parameters, MACs/FLOPs, memory, receptive field and depth, without torch."""

from __future__ import annotations

from pathlib import Path

import click

from ..analysis import DTYPE_BYTES, OPTIMIZERS, analyze
from ..cli import CONTEXT, load_each, spec_options
from ..draw import LAYOUT_TIMEOUT
from ..report import FORMATS, PER, PROFILES, SUFFIX_FORMATS, render
from ..util import write_output

__all__ = ["report"]


@click.command(context_settings=CONTEXT)
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@spec_options
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Output format [default: from the -o suffix, else text].")
@click.option("--per", type=click.Choice(PER), default="layer", show_default=True,
              help="Table rows: every layer, down to blocks, or top-level stages.")
@click.option("--profile", type=click.Choice(tuple(PROFILES)), default="torchvision",
              show_default=True, help="Compute convention: torchvision MACs, or fvcore's count.")
@click.option("--batch", type=click.IntRange(1), default=1, show_default=True,
              help="Batch size (scales compute and activation memory).")
@click.option("--dtype", type=click.Choice(tuple(DTYPE_BYTES)), default="float32",
              show_default=True, help="Element type for memory in bytes.")
@click.option("--optimizer", type=click.Choice(tuple(OPTIMIZERS)), default="sgd-momentum",
              show_default=True, help="Optimizer whose state the training memory includes.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write to FILE (a regular file is replaced atomically; a device or FIFO is "
                   "written through; - is stdout).")
@click.option("--timeout", type=click.FloatRange(0, min_open=True), default=LAYOUT_TIMEOUT,
              show_default=True, metavar="SECONDS",
              help="HTML: stop Graphviz after this long; the page then comes out without its diagram.")
def report(specs: tuple[str, ...], sets: tuple[str, ...], input_shape: str | None,
           allow_paths: tuple[str, ...], max_nodes: int, fmt: str | None, per: str, profile: str,
           batch: int, dtype: str, optimizer: str, output: str | None, timeout: float) -> None:
    """Report parameters, MACs/FLOPs, memory, receptive field and depth of SPECS, without torch.

    One spec prints a table of its layers (--per) and the totals; several print them side by
    side with ratios to the first. Exits 1 if any spec has an error (nothing is written).
    An HTML page embeds the diagram when Graphviz can lay it out within --timeout; otherwise a
    warning says why and the page comes out without it.

    \b
    Examples:
      archdsl report specs/resnet50.yaml
      archdsl report specs/resnet50.yaml --profile fvcore --per stage
      archdsl report specs/lenet.yaml specs/alexnet.yaml --format md
      archdsl report specs/resnet18.yaml --batch 32 --set num_classes=10 -o r18.html
      archdsl report specs/resnet50.yaml --batch 64 --optimizer adam --per stage
    """
    fmt = fmt or _format_from_suffix(output)
    graphs, failed = load_each(specs, sets, input_shape, allow_paths, max_nodes)
    analyses = [analyze(graph, batch=batch, dtype=dtype, optimizer=optimizer) for _, graph in graphs]
    if failed:
        raise SystemExit(1)
    text = render(analyses, fmt, per=per, profile=profile, timeout=timeout,
                  warn=lambda message: click.echo(message, err=True))
    write_output(output or "-", text)


def _format_from_suffix(output: str | None) -> str:
    if output is None:
        return "text"
    return SUFFIX_FORMATS.get(Path(output).suffix.lower(), "text")
