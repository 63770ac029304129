"""The torch side of ``archdsl run``: devices, timing and peak memory (the command is
:mod:`archdsl.commands.run`).

The model is built from the generated code (:func:`archdsl.builder.build_graph`), its parameter count
and output shapes are compared with the static analysis, then ``--steps`` forward passes (or
forward and backward passes with ``--train``) are timed after a warm-up, with a progress bar.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from .errors import ArchError, Diagnostic

__all__ = ["DEVICES", "RunError", "Timing", "autocast_context", "check_against_analysis",
           "measure_saved_bytes", "mib_text", "resolve_device", "step_function", "time_model",
           "zeroed_model"]

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


def check_against_analysis(graph: Any, model: Any, x: Any, autocast: Callable[[], Any]) -> Any:
    """Run ``model`` on ``x`` without gradients and compare its parameters and output shapes with
    the static analysis; a disagreement is a RunError. Returns the outputs."""
    import torch

    from .builder import check_model

    with torch.no_grad(), autocast():
        outputs = model(x)
    problems = check_model(graph, model, outputs)
    if problems:
        raise RunError([Diagnostic(f"the module disagrees with the static analysis: {p}", None)
                        for p in problems])
    return outputs


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


def zeroed_model(graph: Any) -> Any:
    """The built module of ``graph`` with every weight and buffer zero, in training mode: fast to
    make (no random initialisation of, say, VGG's 100 M-weight classifier), for measurements that
    do not depend on the values, such as :func:`measure_saved_bytes`. (Uninitialised memory is no
    faster: its denormal floats make the convolutions crawl.)"""
    import torch

    from .builder import build_graph

    with torch.device("meta"):
        model = build_graph(graph)
    model = model.to_empty(device="cpu")
    with torch.no_grad():
        for tensor in (*model.parameters(), *model.buffers()):
            tensor.zero_()
    return model.train()


def measure_saved_bytes(model: Any, x: Any) -> int:
    """Bytes autograd keeps for the backward pass of ``model(x)``, measured.

    Every tensor saved for backward passes through ``torch.autograd.graph.saved_tensors_hooks``;
    each storage counts once with its full size (in-place ops and views share one: they are told
    apart by the untyped storage's data pointer), and the model's parameters and buffers are left
    out. The model runs as it is (``train()`` for a training step); the graph is dropped
    afterwards. On PyTorch's ``meta`` device (the same autograd graph without the arithmetic)
    storages have no data, and are told apart by the storage object itself.
    """
    import torch

    def key(tensor: Any) -> int:
        storage = tensor.untyped_storage()
        return storage._cdata if storage.device.type == "meta" else storage.data_ptr()

    weights = {key(t) for t in (*model.parameters(), *model.buffers())}
    storages: dict[int, int] = {}

    def pack(tensor: Any) -> Any:
        if key(tensor) not in weights:
            storages[key(tensor)] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        outputs = model(x)
    del outputs
    return sum(storages.values())


def _main_output(outputs: Any) -> Any:
    return outputs if not isinstance(outputs, tuple) else outputs[0]


def step_function(model: Any, x: Any, train: bool, autocast: Callable[[], Any]) -> Callable[[], None]:
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


Progress = Callable[[Iterable[int], str], AbstractContextManager[Iterable[int]]]


def time_model(step: Callable[[], None], device: Any, steps: int, warmup: int, batch: int,
               label: str, progress: Progress | None = None) -> Timing:
    """Time ``steps`` calls of ``step`` after ``warmup`` untimed ones. ``progress(steps, label)``
    wraps the timed loop (the command line passes a progress bar)."""
    for _ in range(warmup):
        step()
    _synchronize(device)
    _reset_peak(device)
    wrap = progress or (lambda items, _label: nullcontext(items))
    with wrap(range(steps), label) as bar:
        start = time.perf_counter()
        for _ in bar:
            step()
        _synchronize(device)
        seconds = time.perf_counter() - start
    peak, what = _peak(device)
    return Timing(steps, batch, seconds, peak, what)


def autocast_context(device: Any, amp: bool) -> Callable[[], Any]:
    import torch

    if not amp:
        return nullcontext
    dtype = torch.float16 if device.type in ("cuda", "mps") else torch.bfloat16
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def mib_text(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:,.1f} MiB"
