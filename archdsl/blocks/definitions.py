"""What the templates are made from, as the spec declares it: its block definitions.

The IR layer's door to the spec AST for code generation, which reads the graph: the blocks a
spec defines (its libraries' too), in order, so that their classes are named before any is
planned, and a block's definition, which a class still walks (``ClassBuilder.build_block``,
``build_special``) until its template records all it needs (issue 11).
"""

from __future__ import annotations

from ..ir import Graph
from ..spec import BlockDef, Spec

__all__ = ["block_definition", "block_names", "spec_of"]


def spec_of(graph: Graph) -> Spec:
    """The spec ``graph`` was expanded from (a ``ValueError`` for a graph without one)."""
    if graph.spec is None:
        raise ValueError("the graph has no spec (load it with archdsl.load)")
    return graph.spec


def block_names(graph: Graph) -> tuple[str, ...]:
    """Every block the spec defines or its libraries give, used or not, in the spec's order."""
    return tuple(spec_of(graph).blocks)


def block_definition(graph: Graph, name: str) -> BlockDef:
    """Block ``name``'s definition (its parameters, body, doc, location)."""
    return spec_of(graph).blocks[name]
