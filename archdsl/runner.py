"""``archdsl run``: build a spec's module on a device, check it, and time it.

The model is built from the generated code (:func:`archdsl.build.build_graph`), its parameter count
and output shapes are compared with the static analysis, then ``--steps`` forward passes (or
forward and backward passes with ``--train``) are timed after a warm-up, with a progress bar.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import click

from .cli import CONTEXT, echo_warnings, load_from_options, spec_options
from .errors import ArchError, Diagnostic

__all__ = ["RunError", "Timing", "resolve_device", "run"]

DEVICES = ("auto", "cpu", "cuda", "mps")


class RunError(ArchError):
    """The model cannot run as asked (no such device, or it disagrees with the static analysis)."""


def resolve_device(name: str) -> Any:
    """``auto`` is CUDA when present, else CPU; a device that is not there is a RunError."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RunError(Diagnostic("--device cuda: CUDA is not available on this machine", None,
                                  hint="use --device cpu, or --device auto (CUDA when present)"))
    if name == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise RunError(Diagnostic("--device mps: Apple's MPS backend is not available here", None,
                                  hint="use --device cpu, or --device auto"))
    return torch.device(name)


@dataclass(frozen=True)
class Timing:
    steps: int
    batch: int
    seconds: float
    peak_bytes: int | None
    peak_what: str

    @property
    def samples_per_second(self) -> float:
        return self.steps * self.batch / self.seconds if self.seconds > 0 else float("inf")

    @property
    def ms_per_step(self) -> float:
        return 1000 * self.seconds / self.steps


def _main_output(outputs: Any) -> Any:
    return outputs if not isinstance(outputs, tuple) else outputs[0]


def _step_function(model: Any, x: Any, train: bool, autocast: Callable[[], Any]) -> Callable[[], None]:
    import torch

    def forward_backward() -> None:
        with autocast():
            loss = _main_output(model(x)).float().mean()
        loss.backward()
        model.zero_grad(set_to_none=True)

    def forward() -> None:
        with torch.inference_mode(), autocast():
            model(x)

    return forward_backward if train else forward


def _synchronize(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _reset_peak(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak(device: Any) -> tuple[int | None, str]:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device), "CUDA allocated"
    if device.type == "mps":
        return torch.mps.driver_allocated_memory(), "MPS driver allocated"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss * (1 if sys.platform == "darwin" else 1024), "process peak RSS"


def time_model(step: Callable[[], None], device: Any, steps: int, warmup: int, batch: int,
               label: str) -> Timing:
    for _ in range(warmup):
        step()
    _synchronize(device)
    _reset_peak(device)
    with click.progressbar(range(steps), label=label, file=sys.stderr, show_pos=True) as bar:
        start = time.perf_counter()
        for _ in bar:
            step()
        _synchronize(device)
        seconds = time.perf_counter() - start
    peak, what = _peak(device)
    return Timing(steps, batch, seconds, peak, what)


def _autocast(device: Any, amp: bool) -> Callable[[], Any]:
    import torch

    if not amp:
        return nullcontext
    dtype = torch.float16 if device.type in ("cuda", "mps") else torch.bfloat16
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def _mib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:,.1f} MiB"


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
@click.option("--train", is_flag=True, help="Time forward + backward in training mode.")
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

    from .build import build_graph, check_model, static_params

    torch.manual_seed(seed)
    model = build_graph(graph).to(target).train(train)
    x = torch.randn(batch, *graph.input_shape, device=target)
    autocast = _autocast(target, amp)
    with torch.no_grad(), autocast():
        outputs = model(x)
    problems = check_model(graph, model, outputs)
    if problems:
        raise RunError([Diagnostic(f"the module disagrees with the static analysis: {p}", None)
                        for p in problems])
    shapes = ", ".join(f"{name} {' x '.join(map(str, s))}" for name, s in graph.output_shapes().items()
                       if name == "out" or train)
    click.echo(f"{graph.name} on {target}: {static_params(graph):,} parameters and output "
               f"{shapes} match the static analysis")
    runnable = torch.compile(model) if use_compile else model
    mode = "forward+backward (train)" if train else "forward (eval)"
    timing = time_model(_step_function(runnable, x, train, autocast), target, steps, warmup,
                        batch, f"{mode}, batch {batch}")
    extras = ", ".join(t for t, on in (("torch.compile", use_compile), ("amp", amp)) if on)
    click.echo(f"  {mode}{' with ' + extras if extras else ''}: {timing.samples_per_second:,.1f} "
               f"samples/s ({timing.ms_per_step:,.2f} ms per step of {batch})")
    click.echo(f"  peak memory: {_mib(timing.peak_bytes)} ({timing.peak_what})")
