"""archdsl: a graph-based architecture DSL and compiler for convolutional networks.

    >>> import archdsl
    >>> graph = archdsl.load("specs/resnet18.yaml", num_classes=10)
    >>> graph.main_output.shape
    (10,)

The analysis API (``load``, ``parse``, ``analyze``) never imports torch; ``build`` does.
"""

from __future__ import annotations

from typing import Any

from .errors import ArchError, Diagnostic, Loc, SpecError, UsageError
from .pipeline import load, parse

__all__ = ["load", "parse", "ArchError", "SpecError", "UsageError", "Diagnostic", "Loc"]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """Lazy attributes for the stages that are heavier to import."""
    raise AttributeError(f"module 'archdsl' has no attribute {name!r}")
