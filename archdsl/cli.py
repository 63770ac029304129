"""The ``archdsl`` command line.

Subcommands are imported lazily (``LAZY_COMMANDS``) so that ``check``, ``report`` and ``draw``
start fast and never import torch; only ``compile --verify`` and ``run`` do. The entry point
catches :class:`archdsl.errors.ArchError` alone and prints its diagnostics; any other exception is
a bug and keeps its traceback.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

import click

from .errors import ArchError, UsageError

__all__ = ["main", "cli", "spec_options", "load_from_options", "load_each", "echo_warnings"]

# name -> "module:attribute" of a click command; imported only when the command runs.
LAZY_COMMANDS: dict[str, str] = {
    "check": "archdsl.cli:check",
    "schema": "archdsl.cli:schema",
    "ops": "archdsl.cli:ops_table",
    "draw": "archdsl.draw:draw",
    "report": "archdsl.report:report",
    "compile": "archdsl.codegen:compile_command",
    "run": "archdsl.runner:run",
}

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class LazyGroup(click.Group):
    """A click group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(LAZY_COMMANDS)

    def invoke(self, ctx: click.Context) -> Any:
        """Print archdsl's own errors (exit 1, or 2 for usage); anything else keeps its traceback."""
        try:
            return super().invoke(ctx)
        except ArchError as error:
            click.echo(error.render(), err=True)
            ctx.exit(error.exit_code)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = LAZY_COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings=CONTEXT)
@click.version_option(package_name="archdsl")
def cli() -> None:
    """archdsl: a graph-based architecture DSL and compiler for convolutional networks.

    Write a network as a YAML spec; archdsl checks every shape statically, reports parameters,
    MACs/FLOPs, memory and receptive field without running it, draws it with Graphviz, and
    compiles it to PyTorch code.

    \b
    Examples:
      archdsl check specs/resnet50.yaml
      archdsl check specs/resnet18.yaml --set num_classes=10 --input 1x28x28
      archdsl report specs/alexnet.yaml specs/lenet.yaml --format md
      archdsl draw specs/googlenet.yaml -o googlenet.svg
      archdsl compile specs/resnet18.yaml -o resnet18.py

    Exit codes: 0 success, 1 the spec has errors, 2 the command line is wrong.
    """


def spec_options(fn: Any) -> Any:
    """The options every spec-reading command shares: --set, --input, --allow-path, --max-nodes."""
    from .expand import DEFAULT_MAX_NODES

    fn = click.option("--max-nodes", type=click.IntRange(1), default=DEFAULT_MAX_NODES,
                      show_default=True, help="Refuse specs that expand to more nodes.")(fn)
    fn = click.option("--allow-path", "allow_paths", multiple=True, type=click.Path(file_okay=False),
                      help="Also allow `use:` libraries from this directory (repeatable).")(fn)
    fn = click.option("--input", "input_shape", metavar="CxHxW",
                      help="Override the spec's input shape, e.g. 3x299x299.")(fn)
    fn = click.option("--set", "sets", multiple=True, metavar="NAME=VALUE",
                      help="Override a spec parameter, e.g. --set num_classes=10 (repeatable).")(fn)
    return fn


def load_from_options(path: str, sets: tuple[str, ...], input_shape: str | None,
                      allow_paths: tuple[str, ...], max_nodes: int) -> Any:
    from .pipeline import load, parse_sets

    return load(path, input=input_shape, allow_paths=allow_paths, max_nodes=max_nodes,
                **parse_sets(sets))


def load_each(paths: tuple[str, ...], sets: tuple[str, ...], input_shape: str | None,
              allow_paths: tuple[str, ...], max_nodes: int) -> tuple[list[Any], bool]:
    """Load several specs: the graphs that checked, and whether any failed.

    Each failing spec's diagnostics and each graph's warnings are printed as they come; a
    command-line error stops at once (exit 2).
    """
    graphs, failed = [], False
    for path in paths:
        try:
            graph = load_from_options(path, sets, input_shape, allow_paths, max_nodes)
        except UsageError:
            raise
        except ArchError as error:
            click.echo(error.render(), err=True)
            failed = True
            continue
        echo_warnings(graph)
        graphs.append((path, graph))
    return graphs, failed


def echo_warnings(graph: Any) -> None:
    for warning in graph.warnings:
        click.echo(warning.render(), err=True)


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


@click.command(context_settings=CONTEXT)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE instead of stdout.")
def schema(output: str | None) -> None:
    """Print the JSON Schema of the spec language (for editors' YAML language servers).

    \b
    VS Code (redhat.vscode-yaml), settings.json:
      "yaml.schemas": {"./archdsl-schema.json": "specs/*.yaml"}
    """
    from .schema import SPEC_SCHEMA
    from .util import write_atomic

    text = json.dumps(SPEC_SCHEMA, indent=2) + "\n"
    if output:
        write_atomic(output, text)
    else:
        click.echo(text, nl=False)


@click.command("ops", context_settings=CONTEXT)
def ops_table() -> None:
    """List every primitive op with its attributes and defaults."""
    from .ops import REGISTRY, REQUIRED

    for name in sorted(REGISTRY):
        op = REGISTRY[name]
        attrs = ", ".join(a.name if a.default is REQUIRED else f"{a.name}={a.default!r}"
                          for a in op.attrs)
        click.echo(f"{name:<18} {op.category:<10} {attrs}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI; print archdsl errors (exit 1, or 2 for usage) without traceback."""
    try:
        code = cli.main(args=argv, prog_name="archdsl", standalone_mode=False)
        if isinstance(code, int):  # ctx.exit(code) in non-standalone mode returns the code
            return code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except ArchError as error:
        click.echo(error.render(), err=True)
        return error.exit_code
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
