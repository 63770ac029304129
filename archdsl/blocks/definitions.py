"""What the templates are made from, as the spec declares it: its block definitions.

The IR layer's door to the spec AST for code generation, which reads the graph: a block's
(the network's) body, whose layers a class is still translated from
(``ClassBuilder.build_block``, ``build_special``, ``build_network``: everything else they read
from the template) until the walk reads its template's items and scopes only (issue 11).
"""

from __future__ import annotations

from ..ir import Graph
from ..spec import Layer, Spec

__all__ = ["block_body", "spec_of"]


def spec_of(graph: Graph) -> Spec:
    """The spec ``graph`` was expanded from (a ``ValueError`` for a graph without one)."""
    if graph.spec is None:
        raise ValueError("the graph has no spec (load it with archdsl.load)")
    return graph.spec


def block_body(graph: Graph, name: str) -> Layer:
    """Block ``name``'s body, as the spec writes it (``""``: the network's, as its template is
    named)."""
    spec = spec_of(graph)
    return spec.blocks[name].body if name else spec.network
