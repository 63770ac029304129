"""archdsl: a graph-based architecture DSL and compiler for convolutional networks.

    >>> import archdsl
    >>> graph = archdsl.load("specs/resnet18.yaml", num_classes=10)
    >>> graph.main_output.shape
    (10,)

The analysis API (``load``, ``parse``, ``analyze``) never imports torch; ``build`` does.
"""

from __future__ import annotations

from typing import Any

from .analysis import analyze
from .errors import ArchError, Diagnostic, Loc, SpecError, UsageError
from .pipeline import load, parse

__all__ = ["load", "parse", "analyze", "ArchError", "SpecError", "UsageError", "Diagnostic", "Loc"]

__version__ = "0.1.0"


_LAZY = {
    "build": "archdsl.builder",
    "draw_graph": "archdsl.draw",
    "render_svg": "archdsl.draw",
    "compile_graph": "archdsl.codegen",
}


def __getattr__(name: str) -> Any:
    """Lazy attributes for the stages that are heavier to import (``build`` imports torch)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'archdsl' has no attribute {name!r}")
