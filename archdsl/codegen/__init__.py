"""Lowering to PyTorch: one self-contained Python module per spec.

    >>> import archdsl
    >>> from archdsl.codegen import compile_graph
    >>> source = compile_graph(archdsl.load("specs/resnet18.yaml"))

The pipeline is :mod:`.plan` (decisions: classes, statements, names) then :mod:`.emit` (layout
through the Jinja2 templates in ``templates/``). Nothing here imports torch.
"""

from __future__ import annotations

from ..blocks.namespace import CodegenError
from .emit import Generated, compile_graph, generate
from .plan import make_plan

__all__ = [
    "CodegenError",
    "Generated",
    "compile_graph",
    "compile_spec",
    "generate",
    "make_plan",
]


def compile_spec(path: str, **overrides: object) -> str:
    """Load a spec (``overrides`` as for :func:`archdsl.load`) and return the generated source."""
    from ..pipeline import load

    return compile_graph(load(path, **overrides))

