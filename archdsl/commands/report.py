"""``archdsl report``: parameters, MACs/FLOPs, memory, receptive field and depth, without torch."""

from __future__ import annotations

from pathlib import Path

import click

from ..analysis import DTYPE_BYTES, OPTIMIZERS, analyze
from ..cli import CONTEXT, echo_warnings, load_each, spec_options
from ..errors import Diagnostic, UsageError
from ..report import FORMATS, PER, PROFILES, SUFFIX_FORMATS, check_json_size, render
from ..util import LAYOUT_TIMEOUT, write_output

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
@click.option("--symbolic", metavar="NAMES",
              help="Give the totals and the output shape as formulas of NAMES (comma-separated: "
                   "H, W, batch and spec parameters), e.g. --symbolic H,W,num_classes. Formats "
                   "text, md, json; the --set/--input/--batch values are the probe point.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write to FILE (a regular file is replaced atomically; a device or FIFO is "
                   "written through; - is stdout).")
@click.option("--timeout", type=click.FloatRange(0, min_open=True), default=LAYOUT_TIMEOUT,
              show_default=True, metavar="SECONDS",
              help="HTML: stop Graphviz after this long; the page then comes out without its diagram.")
def report(specs: tuple[str, ...], sets: tuple[str, ...], input_shape: str | None,
           allow_paths: tuple[str, ...], max_nodes: int, fmt: str | None, per: str, profile: str,
           batch: int, dtype: str, optimizer: str, symbolic: str | None, output: str | None,
           timeout: float) -> None:
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
      archdsl report specs/resnet50.yaml --symbolic H,W,num_classes
    """
    fmt = fmt or _format_from_suffix(output)
    if symbolic is not None:
        text = _symbolic(specs, sets, input_shape, allow_paths, max_nodes, fmt, batch, dtype,
                         symbolic)
        write_output(output or "-", text)
        return
    graphs, failed = load_each(specs, sets, input_shape, allow_paths, max_nodes)
    if fmt == "json" and graphs:
        check_json_size([graph for _, graph in graphs])
    analyses = [analyze(graph, batch=batch, dtype=dtype, optimizer=optimizer) for _, graph in graphs]
    if failed:
        raise SystemExit(1)
    text = render(analyses, fmt, per=per, profile=profile, timeout=timeout,
                  warn=lambda message: click.echo(message, err=True))
    write_output(output or "-", text)


def _symbolic(specs: tuple[str, ...], sets: tuple[str, ...], input_shape: str | None,
              allow_paths: tuple[str, ...], max_nodes: int, fmt: str, batch: int, dtype: str,
              names: str) -> str:
    from ..pipeline import parse, parse_input, parse_sets, resolve_params, spec_input
    from ..symbolic import FORMATS as SYMBOLIC_FORMATS
    from ..symbolic import analyze_symbolic, parse_symbols
    from ..symbolic import render as render_symbolic

    if len(specs) != 1:
        raise UsageError(Diagnostic("--symbolic takes one spec", None,
                                    found=f"{len(specs)} specs", hint="run it once per spec"))
    if fmt not in SYMBOLIC_FORMATS:
        raise UsageError(Diagnostic(f"--symbolic writes {', '.join(SYMBOLIC_FORMATS)}", None,
                                    found=f"--format {fmt}", expected="-f text, md or json"))
    spec = parse(specs[0], allow_paths)
    params = resolve_params(spec, parse_sets(sets))
    shape = parse_input(input_shape) if input_shape else spec_input(spec, params)
    result = analyze_symbolic(spec, params, parse_symbols(names, spec, shape), input=input_shape,
                              batch=batch, dtype=dtype, max_nodes=max_nodes)
    echo_warnings(result.analysis.graph)
    return render_symbolic(result, fmt)



def _format_from_suffix(output: str | None) -> str:
    if output is None:
        return "text"
    return SUFFIX_FORMATS.get(Path(output).suffix.lower(), "text")
