"""``archdsl run``: build a spec's module on a device, check it against the analysis, time it."""

from __future__ import annotations

import sys

import click

from ..analysis import analyze
from ..cli import CONTEXT, echo_warnings, load_from_options, spec_options
from ..report import bytes_text
from ..runner import (
    DEVICES,
    autocast_context,
    check_against_analysis,
    measure_saved_bytes,
    mib_text,
    resolve_device,
    step_function,
    time_model,
)

__all__ = ["run"]


@click.command("run", context_settings=CONTEXT)
@click.argument("spec", type=click.Path(dir_okay=False))
@spec_options
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True,
              help="Where to run; auto is CUDA when present, else CPU.")
@click.option("--batch", type=click.IntRange(1), default=8, show_default=True, help="Batch size.")
@click.option("--steps", type=click.IntRange(1), default=20, show_default=True,
              help="Timed steps (after the warm-up).")
@click.option("--warmup", type=click.IntRange(0), default=2, show_default=True,
              help="Untimed steps first.")
@click.option("--train", is_flag=True,
              help="Time forward + backward in training mode, and compare the bytes autograd keeps "
                   "for backward with the static prediction.")
@click.option("--compile", "use_compile", is_flag=True, help="torch.compile the model first.")
@click.option("--amp", is_flag=True, help="Mixed precision (float16 on CUDA/MPS, bfloat16 on CPU).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for weights and input.")
def run(spec: str, sets: tuple[str, ...], input_shape: str | None, allow_paths: tuple[str, ...],
        max_nodes: int, device: str, batch: int, steps: int, warmup: int, train: bool,
        use_compile: bool, amp: bool, seed: int) -> None:
    """Build SPEC's generated module on a device, check it against the static analysis, and
    print its throughput and peak memory.

    \b
    Examples:
      archdsl run specs/resnet18.yaml --device cpu --batch 4 --steps 10
      archdsl run specs/resnet50.yaml --train --amp --compile
    """
    graph = load_from_options(spec, sets, input_shape, allow_paths, max_nodes)
    echo_warnings(graph)
    target = resolve_device(device)
    import torch

    from ..builder import build_graph, static_params

    torch.manual_seed(seed)
    model = build_graph(graph).to(target).train(train)
    x = torch.randn(batch, *graph.input_shape, device=target)
    autocast = autocast_context(target, amp)
    check_against_analysis(graph, model, x, autocast)
    shapes = ", ".join(f"{name} {' x '.join(map(str, s))}" for name, s in graph.output_shapes().items()
                       if name == "out" or train)
    click.echo(f"{graph.name} on {target}: {static_params(graph):,} parameters and output "
               f"{shapes} match the static analysis")
    if train:
        _compare_saved(graph, model, x, batch)
    runnable = torch.compile(model) if use_compile else model
    mode = "forward+backward (train)" if train else "forward (eval)"
    timing = time_model(step_function(runnable, x, train, autocast), target, steps, warmup,
                        batch, f"{mode}, batch {batch}", progress=_progress_bar)
    extras = ", ".join(t for t, on in (("torch.compile", use_compile), ("amp", amp)) if on)
    click.echo(f"  {mode}{' with ' + extras if extras else ''}: {timing.samples_per_second:,.1f} "
               f"samples/s ({timing.ms_per_step:,.2f} ms per step of {batch})")
    click.echo(f"  peak memory: {mib_text(timing.peak_bytes)} ({timing.peak_what})")


def _compare_saved(graph, model, x, batch: int) -> None:
    """Print the predicted bytes kept for backward against those measured on this model."""
    predicted = analyze(graph, batch=batch).training.saved
    measured = measure_saved_bytes(model, x)
    verdict = "exact" if predicted == measured else f"off by {measured - predicted:+,} bytes"
    click.echo(f"  saved for backward (float32, batch {batch}): predicted {bytes_text(predicted)} "
               f"({predicted:,} B), measured {bytes_text(measured)} ({measured:,} B) with "
               f"saved_tensors_hooks: {verdict}")


def _progress_bar(items: range, label: str) -> click.progressbar:
    return click.progressbar(items, label=label, file=sys.stderr, show_pos=True)
