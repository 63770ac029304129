"""Static analysis of a checked graph: parameters, MACs, FLOPs, memory, receptive field, depth.

Everything is computed from the graph alone (no torch): every figure comes from the op's own rules
(:meth:`archdsl.ops.Op.params`, ``buffers``, ``macs``, ``fvcore_flops``, ``rf``,
``counts_in_depth``); nothing here switches on op names.

Conventions (stated once, used everywhere):

* **params** count every parameter tensor once, including branches an inference pass does not run
  (auxiliary heads); **buffers** (batch-norm running statistics) are counted separately.
* **macs** are conv and linear multiply-accumulates, bias excluded, groups honoured (torchvision's
  ``_ops`` metadata, calflops' MACs); **flops** = 2 x macs. **fvcore_flops** is what fvcore's
  ``FlopCountAnalysis(model.eval(), x).total()`` reports.
* The network totals of compute and activation memory cover the **inference pass**: the nodes the
  main output (the first output) depends on. Auxiliary heads and dead branches have per-node
  figures but are not in those totals (their ``runs`` is False).
* **memory**: every node's output is a new tensor (no in-place ops, no views). The peak is the
  largest sum of live tensors while the inference pass runs in topological order, the input
  included, each tensor freed after its last consumer; network outputs are never freed.
* **receptive field** per axis: ``size`` (pixels of the input one output unit sees), ``jump`` (the
  distance in input pixels between neighbouring units: the product of strides) and ``start`` (the
  centre of the first unit's window, in input pixel coordinates; input pixel ``i`` is centred at
  ``i``). A node with several inputs takes the widest. After an op that sees its whole input
  (global pooling, flatten, linear) the field is ``global_``: the size, jump and start stay those
  of the last spatial layer (the figure people quote, e.g. 435 for ResNet-18).
* **depth** is the number of conv and linear layers on the longest path (the ResNet paper's
  convention: ResNet-101 has depth 101).
* ``batch`` multiplies compute and activation memory; counts of parameters do not change.
* **training memory** (:class:`TrainingMemory`) is what one training step needs: the tensors
  autograd keeps for the backward pass, by each op's own rule
  (:meth:`archdsl.ops.Op.saved_for_backward`), every storage counted once (an in-place ReLU's
  output is its producer's storage; flatten is a view), weights and buffers excluded, the input
  included when the first layer keeps it; an op none of whose inputs needs a gradient and which
  has no trainable parameters keeps nothing (it builds no autograd node). Every node any output
  depends on runs (auxiliary heads too). Each layer's ``saved_bytes`` are the storages it is the
  first to keep. Gradients are one per trainable parameter; optimizer state is ``OPTIMIZERS``
  tensors per trainable parameter. The peak is an estimate (see :func:`_training_peak`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .ir import INPUT, Graph, Node
from .ops import RF, Shape
from .util import gc_paused

__all__ = [
    "DTYPE_BYTES",
    "OPTIMIZERS",
    "Analysis",
    "Memory",
    "NodeStats",
    "ReceptiveField",
    "ScopeStats",
    "TrainingMemory",
    "analyze",
]

MAX_RF = 2**53  # a receptive-field size or jump past this saturates (reported as global)
DTYPE_BYTES: dict[str, int] = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int8": 1}

# optimizer -> state tensors per trainable parameter (momentum buffer; Adam's two moments)
OPTIMIZERS: dict[str, int] = {"sgd": 0, "sgd-momentum": 1, "adam": 2, "adamw": 2}


# --- typed results ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ReceptiveField:
    """Receptive-field geometry of one node's output units, per axis ``(h, w)``."""

    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[float, float]
    global_: bool = False  # the unit sees the whole input (after global pooling / flatten / linear)

    @classmethod
    def of_input(cls) -> ReceptiveField:
        return cls(size=(1, 1), jump=(1, 1), start=(0.0, 0.0))

    def through(self, rf: RF) -> ReceptiveField:
        """The geometry after an op with window ``rf``.

        An op that sees its whole input (``rf.global_``) keeps the window of the last spatial
        layer and marks the field global: each output unit depends on every input pixel.
        """
        if rf.global_:
            return ReceptiveField(self.size, self.jump, self.start, True)
        if rf.kernel == (1, 1) and rf.stride == (1, 1) and rf.padding == (0, 0):
            return self  # a pointwise op (relu, bn, add, 1x1 conv): the same geometry
        # one axis's recurrence (Araujo et al., Distill 2019), on both axes written out
        (sh, sw), (jh, jw), (kh, kw) = self.size, self.jump, rf.kernel
        size = (sh + (kh - 1) * jh, sw + (kw - 1) * jw)
        jump = (jh * rf.stride[0], jw * rf.stride[1])
        if size[0] > MAX_RF or size[1] > MAX_RF or jump[0] > MAX_RF or jump[1] > MAX_RF:
            # Windows or strides beyond 2**53 pixels (40 stride-2**31 convs): far past any input
            # archdsl accepts (sizes < 2**31) and past what a float holds exactly; the field
            # saturates: global, with the last geometry a float can hold.
            return ReceptiveField(self.size, self.jump, self.start, True)
        start = (self.start[0] + ((kh - 1) / 2 - rf.padding[0]) * jh,
                 self.start[1] + ((kw - 1) / 2 - rf.padding[1]) * jw)
        field_ = object.__new__(ReceptiveField)  # (the frozen dataclass without its __init__)
        field_.__dict__.update(size=size, jump=jump, start=start, global_=self.global_)
        return field_


def _ask_rf(f: OpFigures, node: Node) -> None:
    """Ask the op's receptive-field rule (once per :class:`OpFigures`: only for an image input)."""
    rf = f.rf = node.opdef.rf(node.attrs, list(node.in_shapes), node.shape)
    f.rf_pointwise = not rf.global_ and rf.kernel == (1, 1) and rf.stride == (1, 1) and rf.padding == (0, 0)


def _widest(fields: list[ReceptiveField]) -> ReceptiveField:
    """For a node with several inputs: per axis, the geometry of the input that sees the most
    (the first of the widest)."""
    h = w = fields[0]
    global_ = h.global_
    for f in fields[1:]:
        if f.size[0] > h.size[0]:
            h = f
        if f.size[1] > w.size[1]:
            w = f
        global_ = global_ or f.global_
    if h is w and h.global_ == global_:
        return h  # (a residual's body: one input sees the most on both axes)
    field_ = object.__new__(ReceptiveField)  # (the frozen dataclass without its __init__)
    field_.__dict__.update(size=(h.size[0], w.size[1]), jump=(h.jump[0], w.jump[1]),
                           start=(h.start[0], w.start[1]), global_=global_)
    return field_


@dataclass(frozen=True)
class Memory:
    """Memory figures in elements (multiply by ``bytes_per_element`` for bytes); batch included."""

    dtype: str
    bytes_per_element: int
    input: int
    params: int
    buffers: int
    activations: int  # the outputs of every node of the inference pass
    training_activations: int  # the outputs of every node (what a training pass keeps for backward)
    peak: int  # the largest live set of an inference pass, input included
    peak_at: str  # the node whose computation reaches the peak

    def bytes(self, elements: int) -> int:
        return elements * self.bytes_per_element


@dataclass(frozen=True)
class TrainingMemory:
    """The memory of one training step, in bytes; batch included.

    ``saved`` is what autograd keeps for the backward pass (each storage once, weights excluded),
    ``weights`` the parameters and buffers, ``gradients`` one per trainable parameter,
    ``optimizer_state`` the optimizer's per-parameter tensors, ``peak`` the estimated largest
    total during the step (weights, optimizer state, saved tensors and gradients live together),
    reached at ``peak_at`` (``forward`` or ``backward of NODE``).
    """

    optimizer: str
    saved: int
    weights: int
    gradients: int
    optimizer_state: int
    peak: int
    peak_at: str


@dataclass(frozen=True)
class NodeStats:
    """The figures of one op node. Compute and output sizes include the batch."""

    name: str  # dotted path: attribute path and state_dict prefix (layer1.0.conv1)
    local_name: str
    op: str
    category: str
    label: str
    scope: str
    block: str | None  # the block (definition name) of the innermost enclosing block instance
    block_path: str | None  # that instance's scope path (layer1.0)
    stage: str  # the top-level member (stage) it belongs to
    inputs: tuple[str, ...]
    in_shapes: tuple[Shape, ...]
    shape: Shape
    params: int
    trainable_params: int
    buffers: int
    macs: int
    fvcore_flops: int
    output_elements: int
    output_bytes: int
    rf: ReceptiveField | None
    depth: int  # conv and linear layers on the longest path from the input, this node included
    runs: bool  # part of the inference pass (the main output depends on it)
    saved_bytes: int = 0  # storages this layer is the first to keep for backward (training)

    @property
    def flops(self) -> int:
        return 2 * self.macs


@dataclass
class ScopeStats:
    """Totals of one scope (block instance, named sequence, repeat, ...) over all its nodes."""

    path: str
    local_name: str
    kind: str
    block: str | None
    parent: str | None
    named: bool
    in_shape: Shape
    out_shape: Shape
    output: str
    params: int = 0
    trainable_params: int = 0
    buffers: int = 0
    macs: int = 0
    fvcore_flops: int = 0
    output_elements: int = 0  # the sum of its nodes' outputs
    output_bytes: int = 0
    saved_bytes: int = 0  # what its layers keep for backward (training)
    nodes: int = 0
    depth: int = 0  # conv and linear layers on the longest path through the scope
    runs: bool = False
    rf: ReceptiveField | None = None

    @property
    def flops(self) -> int:
        return 2 * self.macs


Stat = NodeStats | ScopeStats


@dataclass
class Analysis:
    """The analysis of one graph: totals, per node, per scope, per stage."""

    name: str
    file: str
    input_shape: Shape
    outputs: dict[str, Shape]
    main_output: str  # the node of the first output
    spec_params: dict[str, Any]
    batch: int
    params: int
    trainable_params: int
    buffers: int
    macs: int
    fvcore_flops: int
    memory: Memory
    training: TrainingMemory
    receptive_field: ReceptiveField | None
    depth: int
    layer_counts: dict[str, int]
    # (read-only mappings made when first read: a consumer of the totals never pays for them)
    nodes: Mapping[str, NodeStats]
    scopes: Mapping[str, ScopeStats]
    tree: Mapping[str, tuple[str, ...]]  # visible scope path -> visible children (scopes and nodes)
    graph: Graph | None = field(repr=False, compare=False, default=None)

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def blocks(self) -> list[ScopeStats]:
        """Every block instance, outer before inner, in spec order."""
        return [s for s in self.scopes.values() if s.kind == "block"]

    @property
    def stages(self) -> list[Stat]:
        """The top-level members of the network (layers and scopes)."""
        return [self.stat(path) for path in self.tree[""]]

    def stat(self, path: str) -> Stat:
        """The figures of a node or a scope by its path."""
        if path in self.nodes:
            return self.nodes[path]
        return self.scopes[path]

    def children(self, path: str) -> tuple[str, ...]:
        """The visible children of a scope (anonymous scopes are inlined); () for a node."""
        return self.tree.get(path, ())


# --- the analysis ----------------------------------------------------------------------------

@gc_paused()
def analyze(graph: Graph, *, batch: int = 1, dtype: str = "float32",
            optimizer: str = "sgd-momentum") -> Analysis:
    """Analyse a checked graph (from :func:`archdsl.load`). Pure: the graph is not changed (nor
    may it be while the analysis is read: the per-node and per-scope records are made from it
    when first asked for).

    ``optimizer`` (one of :data:`OPTIMIZERS`) only sets the optimizer state of ``training``.
    """
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype!r}; one of {', '.join(DTYPE_BYTES)}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; one of {', '.join(OPTIMIZERS)}")
    width = DTYPE_BYTES[dtype]
    running = _inference_nodes(graph)
    training = running if len(set(graph.outputs.values())) == 1 else _training_nodes(graph)
    totals = _Totals(graph, running, batch)
    figures, fields, depths = totals.figures, totals.fields, totals.depths
    saved = SavedTensors(graph, batch, width, figures, training)
    first_kept = saved.first_kept
    main = graph.main_output.name

    def node_stats() -> dict[str, NodeStats]:
        return _node_stats(graph, figures, batch, width, running, tree.data, fields, depths,
                           first_kept)

    def scope_stats() -> dict[str, ScopeStats]:
        return _scope_stats(graph, nodes, depths, fields, width)

    tree: _Lazy[tuple[str, ...]] = _Lazy(lambda: _visible_tree(graph))
    nodes: _Lazy[NodeStats] = _Lazy(node_stats)
    return Analysis(
        name=graph.name,
        file=graph.file,
        input_shape=graph.input_shape,
        outputs=graph.output_shapes(),
        main_output=main,
        spec_params=dict(graph.params),
        batch=batch,
        params=totals.params,
        trainable_params=totals.trainable_params,
        buffers=totals.buffers,
        macs=totals.macs,
        fvcore_flops=totals.fvcore_flops,
        memory=_memory(graph, totals, running, batch, dtype),
        training=_training(graph, saved, totals, width, optimizer),
        receptive_field=fields.get(main),
        depth=max(depths.values(), default=0),
        layer_counts=totals.layer_counts,
        nodes=nodes,
        scopes=_Lazy(scope_stats),
        tree=tree,
        graph=graph,
    )


V = TypeVar("V")


class _Lazy(Mapping[str, V]):
    """A read-only dict made by ``build`` when first read: the per-node and per-scope records
    (4,208 nodes and 3,011 scopes for ResNet-1202) are made only for a consumer that reads them
    (a per-layer report, JSON, draw, diff), not for the totals, a check or a sweep point."""

    __slots__ = ("_build", "_data")

    def __init__(self, build: Callable[[], dict[str, V]]):
        self._build: Callable[[], dict[str, V]] | None = build
        self._data: dict[str, V] = {}

    @property
    def data(self) -> dict[str, V]:
        if self._build is not None:
            build, self._build = self._build, None
            self._data = build()
        return self._data

    def __getitem__(self, key: str) -> V:
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __contains__(self, key: object) -> bool:
        return key in self.data

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def keys(self) -> KeysView[str]:
        return self.data.keys()

    def values(self) -> ValuesView[V]:
        return self.data.values()

    def items(self) -> ItemsView[str, V]:
        return self.data.items()

    def __eq__(self, other: object) -> bool:
        return self.data == (other.data if isinstance(other, _Lazy) else other)

    def __repr__(self) -> str:
        return repr(self.data)


class _Totals:
    """One walk over the nodes in topological order: each node's op figures (as
    :func:`op_figures`), receptive field (none when the input is not an image) and depth (conv
    and linear layers on the longest path from the input, the node included), and the network's
    totals: every node for parameters, buffers and the training activations, the inference pass
    for compute and the inference activations (no per-node record is made)."""

    def __init__(self, graph: Graph, running: set[str], batch: int):
        params = trainable = buffers = macs = fvcore = elements = run_elements = 0
        counts: dict[str, int] = {}
        seen: dict[tuple[Any, ...], OpFigures] = {}
        figures: dict[str, OpFigures] = {}
        image = len(graph.input_shape) == 3
        fields: dict[str, ReceptiveField] = {}
        depths: dict[str, int] = {}
        for node in graph:
            name, inputs, op = node.name, node.inputs, node.op
            if op == INPUT:
                depths[name] = 0
                if image:
                    fields[name] = ReceptiveField.of_input()
                continue
            key = (op, id(node.attrs), id(node.in_shapes), id(node.shape))  # as op_figures
            f = seen.get(key)
            if f is None:
                f = seen[key] = OpFigures(node)
            figures[name] = f
            # the field and depth
            if len(inputs) == 1:
                src = inputs[0]
                depths[name] = depths[src] + (1 if f.counts_in_depth else 0)
                if image:
                    before = fields[src]
            else:
                depths[name] = max((depths[s] for s in inputs), default=0) + (1 if f.counts_in_depth else 0)
                if image:
                    before = _widest([fields[s] for s in inputs])
            if image:
                if f.rf is None:
                    _ask_rf(f, node)
                fields[name] = before if f.rf_pointwise else before.through(f.rf)
            # the totals
            params += f.params
            if not node.freeze:
                trainable += f.params
            buffers += f.buffers
            elements += f.elements
            if name in running:
                macs += f.macs
                fvcore += f.fvcore_flops
                run_elements += f.elements
            counts[op] = counts.get(op, 0) + 1
        self.figures, self.fields, self.depths = figures, fields, depths
        self.params, self.trainable_params, self.buffers = params, trainable, buffers
        self.macs, self.fvcore_flops = macs * batch, fvcore * batch
        self.activations, self.training_activations = run_elements * batch, elements * batch
        self.layer_counts = dict(Counter(counts).most_common())


class OpFigures:
    """What an op's own rules say about one node, before the batch: computed once per distinct
    (op, attributes, shapes) -- the copies of a block share their nodes' attributes, so a network
    of 600 identical blocks asks each rule a handful of times, not 4,000."""

    __slots__ = ("buffers", "category", "counts_in_depth", "elements", "fvcore_flops",
                 "in_elements", "label", "macs", "params", "rf", "rf_pointwise", "saved")

    def __init__(self, node: Node):
        op = node.opdef
        ins = list(node.in_shapes)
        a, out = node.attrs, node.shape
        self.params = op.params(a, ins, out)
        self.buffers = op.buffers(a, ins, out)
        self.macs = op.macs(a, ins, out)
        self.fvcore_flops = op.fvcore_flops(a, ins, out)
        self.label = op.label(a, ins, out)
        self.category = op.category
        self.counts_in_depth = op.counts_in_depth
        self.rf: RF | None = None  # asked only when the input is an image (_ask_rf)
        self.rf_pointwise = False  # rf keeps the geometry (ReceptiveField.through returns it)
        self.saved = op.saved_for_backward(a, ins, out)
        self.elements = math.prod(out)
        self.in_elements = sum(math.prod(shape) for shape in ins)


def op_figures(graph: Graph) -> dict[str, OpFigures]:
    """Node name -> its op's figures (:class:`OpFigures`), shared by nodes that are alike.

    Alike is the same op on the same attribute object and shape tuples (``id``: attributes and
    shapes are immutable and the graph keeps every one alive while this runs)."""
    seen: dict[tuple[Any, ...], OpFigures] = {}
    out: dict[str, OpFigures] = {}
    for node in graph.op_nodes():
        # (the shapes by identity too: a copied block's nodes share their shape tuples; equal
        # shapes in distinct tuples only cost another figures record)
        key = (node.op, id(node.attrs), id(node.in_shapes), id(node.shape))
        figures = seen.get(key)
        if figures is None:
            figures = seen[key] = OpFigures(node)
        out[node.name] = figures
    return out


def _node_stats(graph: Graph, figures: dict[str, OpFigures], batch: int, width: int,
                running: set[str], tree: dict[str, tuple[str, ...]],
                fields: dict[str, ReceptiveField], depths: dict[str, int],
                first_kept: dict[str, int]) -> dict[str, NodeStats]:
    """Every op node's figures (one loop: it runs once per node of the network)."""
    stage_of = _stage_of(graph, tree)
    blocks: dict[str, tuple[str | None, str | None]] = {}  # scope -> its block instance, block
    stats: dict[str, NodeStats] = {}
    for node in graph.op_nodes():
        name, scope, f = node.name, node.scope, figures[node.name]
        block = blocks.get(scope)
        if block is None:
            path = _enclosing_block(graph, scope)
            block = blocks[scope] = (path, graph.scopes[path].block if path is not None else None)
        params = f.params
        elements = f.elements * batch
        stats[name] = _frozen_record(
            NodeStats,
            name=name,
            local_name=node.local_name,
            op=node.op,
            category=f.category,
            label=f.label,
            scope=scope,
            block=block[1],
            block_path=block[0],
            stage=stage_of[name],
            inputs=node.inputs,
            in_shapes=node.in_shapes,
            shape=node.shape,
            params=params,
            trainable_params=0 if node.freeze else params,
            buffers=f.buffers,
            macs=f.macs * batch,
            fvcore_flops=f.fvcore_flops * batch,
            output_elements=elements,
            output_bytes=elements * width,
            rf=fields.get(name),
            depth=depths[name],
            runs=name in running,
            saved_bytes=first_kept.get(name, 0),
        )
    return stats


def _frozen_record(cls: type, **values: Any) -> Any:
    """An instance of the frozen dataclass ``cls`` from every one of its field values, made
    without the generated ``__init__``, whose ``object.__setattr__`` per field costs 2 us a
    record (a tenth of analysing a node); the instance is the same (no ``__post_init__``)."""
    record = object.__new__(cls)
    record.__dict__.update(values)
    return record


def _inference_nodes(graph: Graph) -> set[str]:
    """The nodes an inference pass runs: the main output and everything it depends on."""
    return graph.live([graph.main_output.name])


def _enclosing_block(graph: Graph, scope: str | None) -> str | None:
    while scope is not None:
        if graph.scopes[scope].kind == "block":
            return scope
        scope = graph.scopes[scope].parent
    return None


# --- the visible hierarchy -------------------------------------------------------------------

def _visible_tree(graph: Graph) -> dict[str, tuple[str, ...]]:
    """Every named scope's children, with anonymous scopes (``<residual3>``) inlined."""
    tree: dict[str, tuple[str, ...]] = {}
    for path, scope in graph.scopes.items():
        if path == "" or scope.named:
            tree[path] = tuple(_visible_members(graph, path))
    return tree


def _visible_members(graph: Graph, path: str) -> Iterable[str]:
    for member in graph.scopes[path].members:
        scope = graph.scopes.get(member)
        if scope is not None and not scope.named:
            yield from _visible_members(graph, member)
        elif scope is not None or member in graph.nodes:
            yield member


def _stage_of(graph: Graph, tree: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Node name -> the top-level member (a node or a scope path) that contains it."""
    stage_of: dict[str, str] = {}
    for stage in tree[""]:
        if stage in graph.nodes:
            stage_of[stage] = stage
        else:
            for node in graph.scope_nodes(stage):
                stage_of[node.name] = stage
    for node in graph.op_nodes():  # members of anonymous top-level scopes, if any
        stage_of.setdefault(node.name, node.name)
    return stage_of


# --- receptive field, depth ------------------------------------------------------------------

# --- scopes ----------------------------------------------------------------------------------

def _scope_stats(graph: Graph, nodes: Mapping[str, NodeStats], depths: dict[str, int],
                 fields: dict[str, ReceptiveField], width: int) -> dict[str, ScopeStats]:
    """Each scope's totals: its own nodes summed, then every scope added to its parent, innermost
    first (a scope is recorded after its parent)."""
    scopes = {path: _empty_scope(graph, path, depths, fields) for path in graph.scopes}
    for stats in nodes.values():
        _add(scopes[stats.scope], stats, width)
    order = list(graph.scopes)
    position = {path: i for i, path in enumerate(order)}
    if any(s.parent is not None and position[s.parent] > position[s.path]
           for s in graph.scopes.values()):  # (not as the expander records them)
        order.sort(key=lambda path: _scope_depth(graph, path))
    for path in reversed(order):
        parent = graph.scopes[path].parent
        if parent is not None:
            _add_scope(scopes[parent], scopes[path])
    return scopes


def _scope_depth(graph: Graph, path: str | None) -> int:
    depth = 0
    while path is not None:
        path, depth = graph.scopes[path].parent, depth + 1
    return depth


def _empty_scope(graph: Graph, path: str, depths: dict[str, int],
                 fields: dict[str, ReceptiveField]) -> ScopeStats:
    scope = graph.scopes[path]
    return ScopeStats(
        path=path,
        local_name=scope.local_name,
        kind=scope.kind,
        block=scope.block,
        parent=scope.parent,
        named=scope.named,
        in_shape=scope.in_shape,
        out_shape=scope.out_shape,
        output=scope.output,
        depth=depths.get(scope.output, 0) - depths.get(scope.input, 0),
        rf=fields.get(scope.output),
    )


def _add(total: ScopeStats, stats: NodeStats, width: int) -> None:
    total.params += stats.params
    total.trainable_params += stats.trainable_params
    total.buffers += stats.buffers
    total.macs += stats.macs
    total.fvcore_flops += stats.fvcore_flops
    total.output_elements += stats.output_elements
    total.output_bytes += stats.output_elements * width
    total.saved_bytes += stats.saved_bytes
    total.nodes += 1
    total.runs = total.runs or stats.runs


def _add_scope(total: ScopeStats, inner: ScopeStats) -> None:
    total.params += inner.params
    total.trainable_params += inner.trainable_params
    total.buffers += inner.buffers
    total.macs += inner.macs
    total.fvcore_flops += inner.fvcore_flops
    total.output_elements += inner.output_elements
    total.output_bytes += inner.output_bytes
    total.saved_bytes += inner.saved_bytes
    total.nodes += inner.nodes
    total.runs = total.runs or inner.runs


# --- memory ----------------------------------------------------------------------------------

def _memory(graph: Graph, totals: _Totals, running: set[str], batch: int, dtype: str) -> Memory:
    peak, peak_at = _peak_live(graph, running, batch, totals.figures)
    return Memory(
        dtype=dtype,
        bytes_per_element=DTYPE_BYTES[dtype],
        input=math.prod(graph.input_shape) * batch,
        params=totals.params,
        buffers=totals.buffers,
        activations=totals.activations,
        training_activations=totals.training_activations,
        peak=peak,
        peak_at=peak_at,
    )


def _peak_live(graph: Graph, running: set[str], batch: int,
               figures: dict[str, OpFigures] | None = None) -> tuple[int, str]:
    """The largest live set (elements) of an inference pass and the node where it is reached.

    While a node runs, its inputs and its output are live together; then every input whose last
    consumer it was is freed. Network outputs stay live to the end.
    """
    order = [n for n in graph if n.op == INPUT or n.name in running]
    last_use: dict[str, str] = {}
    size: dict[str, int] = {}
    for node in order:
        name = node.name
        for src in node.inputs:
            last_use[src] = name
        f = figures.get(name) if figures is not None else None
        size[name] = (f.elements if f is not None else math.prod(node.shape)) * batch
    keep = set(graph.outputs.values())
    live, peak, peak_at = 0, 0, INPUT
    for node in order:
        name = node.name
        live += size[name]
        if live > peak:
            peak, peak_at = live, name
        inputs = node.inputs
        for src in inputs if len(inputs) < 2 else set(inputs):  # (an input read twice: once)
            if last_use[src] == name and src not in keep:
                live -= size[src]
        if name not in last_use and name not in keep:  # nothing reads it
            live -= size[name]
    return peak, peak_at


# --- training memory -------------------------------------------------------------------------

class SavedTensors:
    """The storages a training step's forward pass makes and the ones autograd keeps.

    Every node's output is a storage of its own, unless its op's rule says the output is its
    input (``alias``: a view or the same tensor) or it runs in place over its input. ``kept``
    maps each node to the storages its backward keeps; ``first_kept`` the bytes each node is the
    first (in forward order) to keep; ``size`` the bytes of each storage.
    """

    def __init__(self, graph: Graph, batch: int, width: int,
                 figures: dict[str, OpFigures] | None = None, training: set[str] | None = None):
        self.graph = graph
        self.batch = batch
        self.figures = op_figures(graph) if figures is None else figures
        if training is None:
            training = _training_nodes(graph)
        self.order = [n for n in graph if n.op == INPUT or n.name in training]
        self.size: dict[str, int] = {}
        self.storage: dict[str, str] = {}
        self.kept: dict[str, list[str]] = {}
        self.first_kept: dict[str, int] = {}
        self.released: dict[str, list[str]] = {}  # node -> the storages it is the earliest to keep
        needs_grad: dict[str, bool] = {}
        storage, size, all_figures = self.storage, self.size, self.figures
        kept_by, first_kept, released = self.kept, self.first_kept, self.released
        may_overwrite = self._may_overwrite
        seen: set[str] = set()
        per_element = batch * width
        extra_bytes: dict[OpFigures, list[int]] = {}  # (the bytes of an op's extra tensors)
        for node in self.order:
            name, inputs = node.name, node.inputs
            if node.op == INPUT:
                storage[name] = name
                size[name] = math.prod(node.shape) * per_element
                needs_grad[name] = False
                continue
            figures = all_figures[name]
            rule = figures.saved
            grad = not node.freeze and figures.params > 0
            if not grad:
                for src in inputs:
                    if needs_grad[src]:
                        grad = True
                        break
            needs_grad[name] = grad
            if rule.alias or (rule.inplace and may_overwrite(inputs[0])):
                storage[name] = storage[inputs[0]]
            else:
                storage[name] = name
                size[name] = figures.elements * per_element
            if not grad:
                continue
            # the storages its backward keeps; each counted where it is first kept (forward order)
            kept = [storage[inputs[i]] for i in rule.inputs]
            if rule.output:
                kept.append(storage[name])
            if rule.extra:
                extras = extra_bytes.get(figures)
                if extras is None:
                    extras = extra_bytes[figures] = [e.elements(batch) * (e.bytes or width)
                                                     for e in rule.extra]
                for k, nbytes in enumerate(extras):
                    key = f"{name}#{k}"
                    size[key] = nbytes
                    kept.append(key)
            kept_by[name] = kept
            first = 0
            for s in kept:
                if s not in seen:
                    seen.add(s)
                    first += size[s]
                    released.setdefault(name, []).append(s)
            first_kept[name] = first
        self.total = sum(size[s] for s in seen)

    def _may_overwrite(self, producer: str) -> bool:
        """An in-place op may overwrite its producer's output: a new tensor the producer's
        backward does not need, read by nothing else (and not a network output)."""
        node = self.graph.nodes[producer]
        if node.op == INPUT or producer in self.graph.outputs.values():
            return False
        return self.figures[producer].saved.overwritable and len(self.graph.readers[producer]) == 1

    def released_by(self) -> dict[str, list[str]]:
        """Node -> the storages freed once its backward has run (it was their earliest keeper)."""
        return self.released


def _training_nodes(graph: Graph) -> set[str]:
    """The nodes a training forward pass runs: everything any output depends on."""
    return graph.live(graph.outputs.values())


def _training(graph: Graph, saved: SavedTensors, totals: _Totals, width: int,
              optimizer: str) -> TrainingMemory:
    trainable = totals.trainable_params * width
    weights = (totals.params + totals.buffers) * width
    state = OPTIMIZERS[optimizer] * trainable
    peak, peak_at = _training_peak(saved, width)
    return TrainingMemory(optimizer=optimizer, saved=saved.total, weights=weights,
                          gradients=trainable, optimizer_state=state,
                          peak=weights + state + peak, peak_at=peak_at)


def _training_peak(saved: SavedTensors, width: int) -> tuple[int, str]:
    """The largest of saved tensors + gradients + in-flight activation gradients during a step.

    At the end of the forward pass every saved tensor is live, with the main output. The backward
    pass then visits the nodes in reverse: at each, its parameters' gradients are added (they stay
    until the optimizer step), the gradient of its output and of its inputs are in flight, and
    afterwards the saved storages it was the earliest keeper of are freed. Gradients of several
    branches waiting to be summed and allocator caching are not modelled: an estimate.
    """
    released = saved.released
    main = saved.graph.main_output
    live = saved.total
    # (the main output's bytes from its shape: it may be the input node, which has no stats,
    # when every layer is skipped by `when: false`)
    peak, peak_at = live + math.prod(main.shape) * saved.batch * width, "end of forward"
    grads = 0
    kept, size, figures = saved.kept, saved.size, saved.figures
    per_element = saved.batch * width
    for node in reversed(saved.order):
        name = node.name
        if name not in kept:  # (nor the input)
            continue
        f = figures[name]
        if not node.freeze:
            grads += f.params * width
        in_flight = (f.elements + f.in_elements) * per_element
        if live + grads + in_flight > peak:
            peak, peak_at = live + grads + in_flight, f"backward of {name}"
        for storage in released.get(name, ()):
            live -= size[storage]
    return peak, peak_at
