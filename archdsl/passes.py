"""Graph-to-graph passes over the IR. Torch-free: they change the graph, never weights.

Each pass returns a **new** :class:`archdsl.ir.Graph` (the input is left as it was) and lints it.
The weights that go with a transformed graph are the torch side's business
(:mod:`archdsl.fold` maps a state_dict through :func:`fold_batchnorm`).

    >>> import archdsl
    >>> from archdsl.passes import fold_batchnorm
    >>> folded = fold_batchnorm(archdsl.load("specs/resnet18.yaml"))
    >>> sum(n.op == "bn" for n in folded)
    0
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .errors import Loc
from .ir import Graph, Node
from .ops import Attrs

__all__ = ["FOLDED_META", "fold_batchnorm", "foldable_batchnorms", "folded_convs"]

FOLDED_META = "folded_bn"  # node.meta key on a conv that absorbed a batch norm


def _absorbed(bn: Node) -> dict[str, Any]:
    """What a conv records (``node.meta["folded_bn"]``) about the batch norm it absorbed."""
    return {"name": bn.name, "eps": bn.attrs.eps, "affine": bn.attrs.affine}


def foldable_batchnorms(graph: Graph) -> list[tuple[str, str]]:
    """``(conv, bn)`` name pairs where the batch norm can be merged into the convolution.

    A ``bn`` folds when its only input is a ``conv`` that has no other consumer, is not itself a
    network output, and lives in the same scope (so every generated class keeps its shape: the
    conv keeps its name, the batch norm disappears from the same ``__init__`` and ``forward``).
    """
    outputs = set(graph.outputs.values())
    pairs = []
    for node in graph.op_nodes():
        if not node.opdef.foldable_norm or len(node.inputs) != 1:
            continue
        conv = graph.nodes[node.inputs[0]]
        if (conv.opdef.absorbs_norm and conv.scope == node.scope and conv.name not in outputs
                and graph.consumers(conv.name) == [node.name]):
            pairs.append((conv.name, node.name))
    return pairs


def fold_batchnorm(graph: Graph) -> Graph:
    """A new graph with foldable batch norms merged into their convolutions (inference only).

    In eval mode ``bn(conv(x)) = conv'(x)`` with ``w' = w * s``, ``b' = beta + (b - mean) * s`` and
    ``s = gamma / sqrt(var + eps)``: the conv gets ``bias: true``, the ``bn`` node is removed and
    its consumers (and scope outputs, network outputs) read the conv instead. Every surviving node
    keeps its name, so a state_dict maps over by name (:func:`archdsl.fold.fold_state_dict`); each
    folded conv's ``meta["folded_bn"]`` records the batch norm it absorbed (name, eps, affine).

    A pass over the IR alone. The code generator writes one class per template (block, or the
    network), so a batch norm folds only where its layer folds everywhere: every node its layer
    made (the nodes sharing its location) folds into nodes of one conv layer, every node of which
    absorbs one, and each of those nodes is made by a template item (a block written per use has
    none: its batch norms stay). The new graph records the folded layers' locations
    (``Graph.folded_locs``, and the convs' ``absorbing_locs``), by which every template made from
    it marks its items (``Graph.mark_folds``): the batch norm's ``folded``, the conv's ``absorbs``
    (what the code generator reads); its own templates are the input graph's, marked. A graph
    without its spec (no templates) folds on the graph alone.
    """
    pairs = _by_layer(graph, foldable_batchnorms(graph))
    if graph.spec is None:
        return _fold_graph(graph, pairs)
    if not graph.templates:
        from .blocks.expander import block_templates  # (torch-free; the IR layer's, made once)

        block_templates(graph)
    covered = _covered(graph)
    pairs = [(conv, bn) for conv, bn in pairs if bn in covered and conv in covered]
    new = _fold_graph(graph, pairs)
    new.templates = {name: new.mark_folds(t) for name, t in graph.templates.items()}
    return new


def _covered(graph: Graph) -> set[str]:
    """The nodes a template item makes: those whose nearest block (or the network) has a
    template (``Scope.template``; a block written per use has none)."""
    scopes = graph.scopes
    owner: dict[str, str | None] = {}  # scope -> the template its nodes come from

    def template_of(path: str) -> str | None:
        if path not in owner:
            scope = scopes[path]
            if scope.kind in ("block", "network"):
                owner[path] = scope.template
            else:
                owner[path] = template_of(scope.parent or "")
        return owner[path]

    return {n.name for n in graph.op_nodes() if template_of(n.scope) is not None}


def _by_layer(graph: Graph, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The pairs whose two layers fold in every instance (see :func:`fold_batchnorm`)."""
    made: dict[Loc | None, list[str]] = {}
    for node in graph.op_nodes():
        made.setdefault(node.loc, []).append(node.name)
    conv_of = {bn: conv for conv, bn in pairs}
    absorbing = set(conv_of.values())
    layers: dict[Loc, list[tuple[str, str]]] = {}
    for conv, bn in pairs:
        layers.setdefault(graph.nodes[bn].loc, []).append((conv, bn))
    kept = []
    for loc, group in layers.items():
        conv_locs = {graph.nodes[conv].loc for conv, _ in group}
        if (loc is None or len(group) != len(made[loc]) or len(conv_locs) != 1
                or None in conv_locs or not set(made[next(iter(conv_locs))]) <= absorbing):
            continue
        kept += group
    order = {name: i for i, name in enumerate(graph.nodes)}
    return sorted(kept, key=lambda pair: order[pair[1]])


def _fold_graph(graph: Graph, pairs: list[tuple[str, str]]) -> Graph:
    """The fold made on the graph: convs get a bias, batch norms go, readers are rewired."""
    absorbed = {conv: graph.nodes[bn] for conv, bn in pairs}
    rename = {bn: conv for conv, bn in pairs}
    new = Graph(name=graph.name, file=graph.file, input_shape=graph.input_shape,
                params=dict(graph.params), spec=graph.spec, block_names=graph.block_names,
                outputs={k: rename.get(v, v) for k, v in graph.outputs.items()},
                output_locs=dict(graph.output_locs), warnings=list(graph.warnings),
                folded_locs=graph.folded_locs | {graph.nodes[bn].loc for _, bn in pairs},
                absorbing_locs=graph.absorbing_locs | {graph.nodes[conv].loc for conv, _ in pairs})
    for node in graph:
        if node.name in rename:
            continue
        attrs, meta = node.attrs, dict(node.meta)
        if node.name in absorbed:
            attrs = Attrs(node.opdef.absorb_norm(node.attrs.as_dict()))
            meta[FOLDED_META] = _absorbed(absorbed[node.name])
        new.add_node(replace(node, attrs=attrs, meta=meta, attr_locs=dict(node.attr_locs),
                             inputs=tuple(rename.get(src, src) for src in node.inputs)))
    for path, scope in graph.scopes.items():
        new.scopes[path] = replace(
            scope, args=dict(scope.args), meta=dict(scope.meta),
            members=[m for m in scope.members if m not in rename],
            input=rename.get(scope.input, scope.input), output=rename.get(scope.output, scope.output))
    new.lint()
    return new


def folded_convs(graph: Graph) -> dict[str, dict[str, Any]]:
    """``{conv name: the batch norm it absorbed}`` of a graph from :func:`fold_batchnorm`."""
    return {n.name: n.meta[FOLDED_META] for n in graph.op_nodes() if FOLDED_META in n.meta}
