"""Build a spec's generated PyTorch module without writing a file (the torch side of archdsl).

    >>> import archdsl
    >>> model = archdsl.build("specs/resnet18.yaml", num_classes=10)

The source comes from :mod:`archdsl.codegen` (our own generated code: spec text reaches it only as
checked identifiers and literals) and is executed in a fresh module, registered with ``linecache``
so that ``inspect``, tracebacks and TorchScript can read it.
"""

from __future__ import annotations

import hashlib
import linecache
import os
import sys
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .codegen import Generated, generate
from .ir import Graph
from .pipeline import load

__all__ = ["build", "build_graph", "check_model", "load_generated", "verify_module"]


def build(spec_path: str | Path, *, input: Any = None, allow_paths: Iterable[str | Path] = (),
          **overrides: Any) -> nn.Module:
    """The network of a spec as an ``nn.Module`` (randomly initialised, in training mode).

    ``input`` and keyword ``overrides`` are as for :func:`archdsl.load` (``num_classes=10``).
    """
    graph = load(spec_path, input=input, allow_paths=allow_paths, **overrides)
    return build_graph(graph)


def build_graph(graph: Graph) -> nn.Module:
    """The network of a checked graph as an ``nn.Module``."""
    generated = generate(graph)
    module = load_generated(generated)
    return getattr(module, generated.factory)()


def load_generated(generated: Generated) -> types.ModuleType:
    """Execute generated source as a new module (also in ``sys.modules``, for pickling and
    TorchScript) and return it."""
    digest = hashlib.sha256(generated.source.encode("utf-8")).hexdigest()[:12]
    name = f"archdsl_generated_{generated.factory}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    filename = f"<archdsl:{name}>"
    lines = generated.source.splitlines(keepends=True)
    linecache.cache[filename] = (len(generated.source), None, lines, filename)
    module = types.ModuleType(name)
    module.__file__ = filename
    code = compile(generated.source, filename, "exec")
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)  # noqa: S102 - archdsl's own generated code
    except BaseException:
        del sys.modules[name]
        raise
    return module


def check_model(graph: Graph, model: nn.Module, outputs: Any) -> list[str]:
    """Problems found comparing a model and its outputs (batch first) with the static analysis."""
    problems = []
    expected_params = static_params(graph)
    params = sum(p.numel() for p in model.parameters())
    if params != expected_params:
        problems.append(f"parameters: the module has {params:,}, the static analysis "
                        f"{expected_params:,}")
    expected = graph.output_shapes()
    found = _output_shapes(outputs, list(expected))
    for name, shape in found.items():
        if tuple(shape) != tuple(expected[name]):
            problems.append(f"output {name}: the module gives {_fmt(shape)}, the static analysis "
                            f"{_fmt(expected[name])}")
    return problems


def _check_fits_in_memory(graph: Graph) -> None:
    """Refuse to build a model whose weights and activations (float32, batch 1) exceed this
    machine's memory: a clear error instead of the allocator's failure or the OOM killer."""
    from .analysis import analyze
    from .errors import Diagnostic, SpecError

    memory = analyze(graph).memory
    needed = memory.bytes(memory.params + memory.buffers + memory.training_activations)
    try:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: let torch try
        return
    if needed > available // 2:
        raise SpecError(Diagnostic(
            f"`{graph.name}` is too large to build here for --verify", graph.spec.loc if graph.spec else None,
            found=f"{needed / 1e9:,.1f} GB of weights and activations (float32, batch 1)",
            expected=f"at most half of this machine's {available / 1e9:,.1f} GB",
            hint="compile without --verify; the static analysis (archdsl report) needs no memory"))


def static_params(graph: Graph) -> int:
    total = 0
    for node in graph.op_nodes():
        total += node.opdef.params(node.attrs, list(node.in_shapes), node.shape)
    return total


def _output_shapes(outputs: Any, names: list[str]) -> dict[str, tuple[int, ...]]:
    """``{output name: shape without batch}`` from a tensor or a named tuple of tensors."""
    if isinstance(outputs, torch.Tensor):
        return {names[0]: tuple(outputs.shape[1:])}
    if hasattr(outputs, "_asdict"):
        return {name: tuple(t.shape[1:]) for name, t in outputs._asdict().items()}
    return {name: tuple(t.shape[1:]) for name, t in zip(names, outputs)}


def _fmt(shape: tuple[int, ...]) -> str:
    return " x ".join(str(d) for d in shape)


def verify_module(graph: Graph, generated: Generated) -> str:
    """Build the generated module on CPU, run one batch, compare with the static analysis.

    Returns a one-line summary; raises :class:`archdsl.errors.ArchError` on a mismatch.
    """
    from .errors import ArchError, Diagnostic

    _check_fits_in_memory(graph)
    module = load_generated(generated)
    model = getattr(module, generated.factory)()
    model.eval()
    with torch.no_grad():
        outputs = model(torch.randn(1, *graph.input_shape))
    problems = check_model(graph, model, outputs)
    if problems:
        raise ArchError([Diagnostic(f"the generated module disagrees with the static analysis: {p}",
                                    None) for p in problems])
    return (f"verified {graph.name}: {static_params(graph):,} parameters, output "
            f"{_fmt(graph.main_output.shape)} as the static analysis says")
