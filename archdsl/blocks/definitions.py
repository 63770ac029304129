"""What the templates are made from, as the spec declares it.

The IR layer's door to the spec AST: the spec a graph was expanded from. Code generation reads
none of it (its classes are walked from their templates' items and scopes, issue 11).
"""

from __future__ import annotations

from ..ir import Graph
from ..spec import Spec

__all__ = ["spec_of"]


def spec_of(graph: Graph) -> Spec:
    """The spec ``graph`` was expanded from (a ``ValueError`` for a graph without one)."""
    if graph.spec is None:
        raise ValueError("the graph has no spec (load it with archdsl.load)")
    return graph.spec
