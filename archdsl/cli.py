"""The ``archdsl`` command line.

The group, the options every spec-reading command shares and the error handling live here; each
command is a module of :mod:`archdsl.commands`. Subcommands are imported lazily
(``LAZY_COMMANDS``) so that ``check``, ``report`` and ``draw``
start fast and never import torch; only ``compile --verify``, ``run`` and ``train`` do. The entry point
catches :class:`archdsl.errors.ArchError` alone and prints its diagnostics; any other exception is
a bug and keeps its traceback.
"""

from __future__ import annotations

import gc
import importlib
import sys
from typing import Any

import click

from .errors import ArchError, UsageError

__all__ = ["cli", "echo_warnings", "load_each", "load_from_options", "main", "spec_options"]

# name -> "module:attribute" of a click command; imported only when the command runs.
LAZY_COMMANDS: dict[str, str] = {
    "check": "archdsl.commands.check:check",
    "schema": "archdsl.commands.schema:schema",
    "ops": "archdsl.commands.ops:ops_table",
    "draw": "archdsl.commands.draw:draw",
    "report": "archdsl.commands.report:report",
    "sweep": "archdsl.commands.sweep:sweep",
    "compile": "archdsl.commands.compile:compile_command",
    "run": "archdsl.commands.run:run",
    "diff": "archdsl.commands.diff:diff",
    "train": "archdsl.commands.train:train",
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
      archdsl sweep specs/resnet_cifar.yaml --grid depth=20:110:18 --grid width=8,16,32
      archdsl diff specs/resnet50.yaml specs/resnext50_32x4d.yaml
      archdsl train specs/lenet.yaml --data fashion-mnist --root data --download

    Exit codes: 0 success, 1 the spec has errors, 2 the command line is wrong
    (diff: 0 the same network, 1 different, 2 trouble).
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


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI; print archdsl errors (exit 1, or 2 for usage) without traceback.

    Called without ``argv`` (the console script, ``python -m archdsl``), the process exits right
    after: the objects the command made are frozen (``gc.freeze``), so the collections of the
    interpreter's shutdown do not walk them all once more.
    """
    try:
        return _run(argv)
    finally:
        if argv is None:
            gc.freeze()


def _run(argv: list[str] | None) -> int:
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
