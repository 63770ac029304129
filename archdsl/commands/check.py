"""``archdsl check``: parse, expand and infer every shape of one or more specs."""

from __future__ import annotations

import click

from ..cli import CONTEXT, load_each, spec_options

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

    Every independent error is reported, each with file:line:column, the source line, what was
    expected and found, and a hint. Exits 1 if any spec has an error.
    """
    graphs, failed = load_each(specs, sets, input_shape, allow_paths, max_nodes)
    for path, graph in graphs:
        if not quiet:
            outs = graph.output_shapes()
            shown = ", ".join(f"{k} {_fmt(v)}" for k, v in outs.items()) if len(outs) > 1 \
                else _fmt(next(iter(outs.values())))
            click.echo(f"{graph.name}: input {_fmt(graph.input_shape)} -> output {shown}"
                       f"  ({len(graph) - 1} layers, {path})")
    if failed:
        raise SystemExit(1)
