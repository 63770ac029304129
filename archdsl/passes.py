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
from .expand import DEFAULT_MAX_NODES, expand
from .ir import Graph, Node
from .ops import REGISTRY, Attrs
from .spec import Call, Layer, Meta, Parallel, Repeat, Residual, Seq, Spec, Value

__all__ = ["FOLDED_META", "fold_batchnorm", "fold_spec", "foldable_batchnorms", "folded_convs"]

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

    The code generator writes one class per block definition from the spec's AST, so when the
    graph has its spec the same fold is made in the AST too (:func:`fold_spec`): the result is
    the expansion of the folded spec, checked node by node against the fold made on the graph.
    A batch norm folds in the AST only where every use of its layer folds in the graph and it
    directly follows its conv in a sequence; the others stay.
    """
    pairs = foldable_batchnorms(graph)
    if graph.spec is None:
        return _fold_graph(graph, pairs)
    spec, folded_bns = fold_spec(graph, pairs)
    pairs = [(conv, bn) for conv, bn in pairs if bn in folded_bns]
    expected = _fold_graph(graph, pairs)
    new = expand(spec, dict(graph.params), graph.input_shape, max(DEFAULT_MAX_NODES, len(graph)))
    _check_same(new, expected)
    for conv, _ in pairs:
        new.nodes[conv].meta[FOLDED_META] = expected.nodes[conv].meta[FOLDED_META]
    new.lint()
    return new


def _fold_graph(graph: Graph, pairs: list[tuple[str, str]]) -> Graph:
    """The fold made on the graph alone: convs get a bias, batch norms go, readers are rewired."""
    absorbed = {conv: graph.nodes[bn] for conv, bn in pairs}
    rename = {bn: conv for conv, bn in pairs}
    new = Graph(name=graph.name, file=graph.file, input_shape=graph.input_shape,
                params=dict(graph.params), spec=graph.spec,
                outputs={k: rename.get(v, v) for k, v in graph.outputs.items()},
                output_locs=dict(graph.output_locs), warnings=list(graph.warnings))
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


def _check_same(new: Graph, expected: Graph) -> None:
    """The expansion of the folded spec is the fold made on the graph (a failure is a bug)."""
    problems = []
    if list(new.nodes) != list(expected.nodes):
        missing = [n for n in expected.nodes if n not in new.nodes][:5]
        extra = [n for n in new.nodes if n not in expected.nodes][:5]
        problems.append(f"nodes differ (missing {missing}, extra {extra})")
    else:
        for name, node in expected.nodes.items():
            other = new.nodes[name]
            if (other.op, other.attrs, other.inputs, other.shape) != (node.op, node.attrs, node.inputs,
                                                                       node.shape):
                problems.append(f"node {name} differs")
    if new.outputs != expected.outputs:
        problems.append(f"outputs differ: {new.outputs} != {expected.outputs}")
    if problems:
        raise AssertionError("fold_batchnorm: the folded spec does not expand to the folded graph: "
                             + "; ".join(problems[:5]))


# --- the same fold in the spec AST -----------------------------------------------------------------

def fold_spec(graph: Graph, pairs: list[tuple[str, str]]) -> tuple[Spec, set[str]]:
    """The spec of ``graph`` with the batch norms of ``pairs`` removed where the AST can say it.

    Returns the new spec and the names of the batch-norm nodes it folds. A ``bn`` layer is removed
    when every node it makes is in ``pairs``, always after the same ``conv`` layer, which it
    directly follows in a sequence; it has no meta keys and no ``from:`` names it. That conv layer
    gets ``bias: true``. Unnamed layers after it in the sequence get their former names written out
    (``"2"`` in a numbered sequence, ``relu_1``...), so that no surviving layer is renamed.
    """
    fold = {bn: conv for conv, bn in pairs}
    nodes_at: dict[Loc | None, list[Node]] = {}
    for node in graph.op_nodes():
        nodes_at.setdefault(node.loc, []).append(node)
    names_at: dict[Loc | None, set[str]] = {}
    for node in graph.op_nodes():
        names_at.setdefault(node.loc, set()).add(node.local_name)
    for scope in graph.scopes.values():
        if scope.path:
            names_at.setdefault(scope.loc, set()).add(scope.local_name)
    referenced = _from_names(graph.spec)
    folded: set[str] = set()

    def conv_of(bn: Call) -> Loc | None:
        """The loc of the one conv layer every node of this bn layer folds into, else None."""
        made = nodes_at.get(bn.loc, [])
        if not made or any(n.name not in fold for n in made):
            return None
        convs = {graph.nodes[fold[n.name]].loc for n in made}
        return next(iter(convs)) if len(convs) == 1 else None

    def foldable(items: tuple[Layer, ...], i: int) -> bool:
        item, prev = items[i], items[i - 1] if i else None
        if not (isinstance(item, Call) and not item.is_block and REGISTRY[item.target].foldable_norm
                and isinstance(prev, Call) and not prev.is_block
                and REGISTRY[prev.target].absorbs_norm
                and item.meta == Meta() and prev.meta.output is None
                and (item.name is None or item.name not in referenced)
                and conv_of(item) == prev.loc and prev.loc is not None):
            return False
        return all(later.name is not None or (isinstance(later, Call) and len(names_at.get(later.loc, ())) <= 1)
                   for later in items[i + 1:])

    def rewrite(layer: Layer | None) -> Layer | None:
        if layer is None:
            return None
        if isinstance(layer, Seq):
            return replace(layer, items=rewrite_items(layer.items))
        if isinstance(layer, Parallel):
            return replace(layer, branches=tuple(rewrite(b) for b in layer.branches), after=rewrite(layer.after))
        if isinstance(layer, Residual):
            return replace(layer, body=rewrite(layer.body), shortcut=rewrite(layer.shortcut),
                           after=rewrite(layer.after))
        if isinstance(layer, Repeat):
            return replace(layer, layer=rewrite(layer.layer))
        return layer

    def rewrite_items(items: tuple[Layer, ...]) -> tuple[Layer, ...]:
        out: list[Layer] = []
        pin = False
        for i, item in enumerate(items):
            if foldable(items, i):
                conv = out[-1]
                assert isinstance(conv, Call)
                out[-1] = replace(conv, args={**conv.args, "bias": Value(conv.loc, literal=True)},
                                  arg_locs={**conv.arg_locs, "bias": conv.loc})
                folded.update(n.name for n in nodes_at[item.loc])
                pin = True
                continue
            item = rewrite(item)
            if pin and item.name is None and names_at.get(item.loc):
                item = replace(item, name=next(iter(names_at[item.loc])), name_loc=item.loc)
            out.append(item)
        return tuple(out)

    spec = graph.spec
    new = replace(spec, network=rewrite(spec.network),
                  blocks={name: replace(block, body=rewrite(block.body)) for name, block in spec.blocks.items()})
    return new, folded


def _from_names(spec: Spec) -> set[str]:
    """Every layer name a ``from:`` anywhere in the spec refers to."""
    names: set[str] = set()

    def visit(layer: Layer | None) -> None:
        if layer is None:
            return
        if layer.meta.inputs:
            names.update(name for name, _ in layer.meta.inputs)
        for child in _children(layer):
            visit(child)

    visit(spec.network)
    for block in spec.blocks.values():
        visit(block.body)
    return names


def _children(layer: Layer) -> tuple[Layer | None, ...]:
    if isinstance(layer, Seq):
        return layer.items
    if isinstance(layer, Parallel):
        return (*layer.branches, layer.after)
    if isinstance(layer, Residual):
        return (layer.body, layer.shortcut, layer.after)
    if isinstance(layer, Repeat):
        return (layer.layer,)
    return ()


def folded_convs(graph: Graph) -> dict[str, dict[str, Any]]:
    """``{conv name: the batch norm it absorbed}`` of a graph from :func:`fold_batchnorm`."""
    return {n.name: n.meta[FOLDED_META] for n in graph.op_nodes() if FOLDED_META in n.meta}
