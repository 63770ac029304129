"""The ``archdsl compile`` command."""

from __future__ import annotations

import click

from ..cli import CONTEXT, echo_warnings, load_from_options, spec_options
from ..codegen import generate
from ..util import write_output

__all__ = ["compile_command"]


@click.command("compile", context_settings=CONTEXT)
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write the module to FILE instead of stdout (a regular file is replaced "
                   "atomically; a device or FIFO is written through; - is stdout).")
@spec_options
@click.option("--verify", is_flag=True,
              help="Also build it with torch and check its parameters and output shapes against "
                   "the static analysis.")
@click.option("--inference", is_flag=True,
              help="An inference model: fold every batch norm that follows a convolution into it "
                   "(load weights with archdsl.fold.fold_state_dict).")
def compile_command(spec: str, output: str | None, sets: tuple[str, ...], input_shape: str | None,
                    allow_paths: tuple[str, ...], max_nodes: int, verify: bool,
                    inference: bool = False) -> None:
    """Compile SPEC to one self-contained PyTorch module (Python source).

    The module has one nn.Module class per block, the network class and a factory function; its
    attribute names are the spec's layer names, so a spec named like torchvision loads
    torchvision's state_dict. The spec parameters that pass unchanged to layers (num_classes,
    in_channels) are the network's constructor and factory arguments, defaulting to the spec's
    values or --set; the others are fixed at compile time (--set).

    \b
    Examples:
      archdsl compile specs/resnet18.yaml -o resnet18.py
      archdsl compile specs/resnet18.yaml --set num_classes=10 --verify -o resnet18_10.py
      archdsl compile specs/resnet50.yaml --inference -o resnet50_folded.py
    """
    graph = load_from_options(spec, sets, input_shape, allow_paths, max_nodes)
    echo_warnings(graph)
    if inference:
        from ..passes import fold_batchnorm

        graph = fold_batchnorm(graph)
    generated = generate(graph)
    if verify:
        from ..builder import verify_module

        click.echo(verify_module(graph, generated), err=True)
    write_output(output or "-", generated.source)
    if output and output != "-":
        click.echo(f"wrote {output} ({graph.name}: class {generated.plan.network}, "
                   f"factory {generated.factory}())", err=True)
