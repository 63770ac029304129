"""``archdsl check``: parse, expand and infer every shape of one or more specs."""

from __future__ import annotations

import click

from ..cli import CONTEXT, load_each, spec_options
from ..errors import ArchError

__all__ = ["check"]


def _fmt(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape)


@click.command(context_settings=CONTEXT)
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=True))
@spec_options
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")
def check(specs: tuple[str, ...], sets: tuple[str, ...], input_shape: str | None,
          allow_paths: tuple[str, ...], max_nodes: int, quiet: bool) -> None:
    """Check SPECS: parse, expand and infer every shape; print input and output shapes.

    A block library (a file with `blocks:` and no `network:`) is checked as a library: its blocks
    parsed, op, block and attribute names resolved, constant attributes checked (shapes need a
    model's input). A model that checks also compiles: what the PyTorch code generator refuses is
    refused here. Every independent error is reported, each with file:line:column, the source
    line, what was expected and found, and a hint. Exits 1 if any spec has an error.
    """
    from ..pipeline import check_library, check_lowering, is_library

    libraries = [path for path in specs if is_library(path)]
    models = tuple(path for path in specs if path not in libraries)
    failed = False
    for path in libraries:
        try:
            library = check_library(path, allow_paths)
        except ArchError as error:
            click.echo(error.render(), err=True)
            failed = True
            continue
        if not quiet:
            names = ", ".join(library.own)
            click.echo(f"{library.name}: library of {len(library.own)} block"
                       f"{'' if len(library.own) == 1 else 's'} ({names})  ({path})")
    loaded, failed_models = load_each(models, sets, input_shape, allow_paths, max_nodes)
    failed = failed or failed_models
    graphs = []
    for path, graph in loaded:
        try:
            check_lowering(graph)  # a spec that checks compiles
        except ArchError as error:
            click.echo(error.render(), err=True)
            failed = True
            continue
        graphs.append((path, graph))
    for path, graph in graphs:
        if not quiet:
            outs = graph.output_shapes()
            shown = ", ".join(f"{k} {_fmt(v)}" for k, v in outs.items()) if len(outs) > 1 \
                else _fmt(next(iter(outs.values())))
            click.echo(f"{graph.name}: input {_fmt(graph.input_shape)} -> output {shown}"
                       f"  ({len(graph) - 1} layers, {path})")
    if failed:
        raise SystemExit(1)
