"""The graph IR: primitive-op nodes in topological order, plus the tree of scopes that made them.

Every :class:`Node` is one primitive op (or the ``input`` placeholder) with resolved attributes,
its input and output shapes, the dotted path that is also its PyTorch attribute path and state_dict
prefix (``layer1.0.conv1``), its source location and the chain of block uses that produced it.
Analysis passes put their typed results in ``node.meta``. Edges are the nodes' ``inputs`` (in
order); ``Graph.readers`` keeps the reverse direction. ``Graph.nx`` gives the same graph as a
networkx DiGraph (edges carry ``index``, the position of the input), built when first asked for:
checking and analysing a network never imports networkx (about 90 ms of a cold start).

:class:`Scope` records each block instance, named sequence, repeat, dense block, parallel and
residual: its kind, block name and arguments, and its ordered members (nodes and child scopes).
The code generator and the diagrams read the hierarchy from here.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import Diagnostic, Loc, SpecError
from .ops import REGISTRY, Attrs, Shape

__all__ = ["INPUT", "BlockTemplate", "Graph", "Node", "Scope", "TemplateItem"]

INPUT = "input"


@dataclass
class Node:
    name: str
    op: str
    attrs: Attrs
    inputs: tuple[str, ...]
    in_shapes: tuple[Shape, ...]
    shape: Shape
    scope: str
    loc: Loc | None
    chain: tuple[tuple[str, Loc | None], ...] = ()
    attr_locs: dict[str, Loc] = field(default_factory=dict)
    freeze: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def local_name(self) -> str:
        """The name within its scope (``paths.0`` stays whole: a layer's name may hold dots)."""
        return _relative(self.name, self.scope)

    @property
    def opdef(self):  # noqa: ANN201 - an ops.Op
        return REGISTRY[self.op]


@dataclass
class Scope:
    """One instance of a construct. ``members`` lists child scope paths and node names in order.

    ``meta`` is what the expander records: a repeat's ``count``, a residual's ``connect``, a
    parallel's ``merge``...; in a block template also a ``when`` scope's condition (a layer under
    a ``when:``: a Sym, or a bool when plain, the scope empty when false), every repeat's
    ``count`` (unnamed ones too) and ``names``: the names its name template gives its copies,
    in order (only a repeat's or dense block's with a name template), and a residual's,
    parallel's, repeat's or dense block's ``parts``: which part made each member
    (member -> ``body``, ``shortcut``, ``after``, a branch's or copy's index as a string (a
    dropped branch's: its empty ``when`` scope), or ``merge``: its add, concat or mul, a dense
    block's concats), its ``part_names``: its parts in order (one that makes no member too,
    a dropped branch too), a parallel's ``part_whens``: a branch's own ``when`` scope (the
    branch is dropped when it is false), a plainly false ``when`` scope's ``dropped``: the
    names its layer would give at its own level (its own, or its unnamed sequence's members';
    recorded only where it gives one: a numbered one numbers the body), and ``freeze``: true under a `freeze:` of its own layer or of
    an unnamed sequence around it in its parent scope (as ``TemplateItem.own_freeze``), and
    ``reads``: true when its layer has a `from:` (as ``TemplateItem.reads``); a
    parallel's ``hints``: a branch's index -> the name the spec gives that branch (its own,
    or its last named layer's: ``blocks.expander.branch_name``), where it gives one.
    """

    path: str
    kind: str  # network, block, seq, repeat, dense, parallel, residual; when (a template's;
    # in a template an unnamed `seq:` with `from:` or `output:` has an unnamed seq scope too)
    loc: Loc | None
    block: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    parent: str | None = None
    members: list[str] = field(default_factory=list)
    input: str = INPUT
    output: str = INPUT
    in_shape: Shape = ()
    out_shape: Shape = ()
    named: bool = True
    meta: dict[str, Any] = field(default_factory=dict)
    template: str | None = None  # a block instance: its block's template (None: written per use)
    name_loc: Loc | None = None  # where its name is written: a named construct's or block use's
    # `name:`, a name template's for a repeat's copy (None: no name of its own, or a numbered
    # copy's): where a refusal of the name points (else ``loc``)

    @property
    def local_name(self) -> str:
        return _relative(self.path, self.parent or "")


@dataclass
class TemplateItem:
    """One item of a :class:`BlockTemplate`'s body, in expansion order.

    ``kind`` is ``op`` (a primitive op: ``target`` names it, ``attrs`` are its attributes), ``use``
    (a use of another block: ``target`` names it, ``attrs`` are its arguments) or ``select`` (the
    output of a layer under a symbolic ``when:``: ``inputs`` are the layer's output and its input).
    Attributes, arguments and shapes are plain values or ``Sym`` s over the template's locals.
    """

    name: str  # as the expander names it: the attribute path inside the block's class
    kind: str
    target: str
    attrs: dict[str, Any]
    inputs: tuple[str, ...]
    in_shapes: tuple[tuple[Any, ...], ...]
    shape: tuple[Any, ...]
    scope: str  # the construct it is in (a path of ``BlockTemplate.scopes``; "" the body)
    when: Any = None  # a ``Sym``: the item exists only when true
    loc: Loc | None = None
    name_varies: bool = False  # named after a member under a symbolic `when:` in its naming
    # scope: its automatic name (a number, `cat_1`) counts that member, which an instance may lack
    named: bool = False  # the layer had a name (the spec's, or its repeat's `0`, `1`, a name
    # template): else an automatic one (a position number in an nn.Sequential, `conv_1`, `add`)
    freeze: bool = False  # under a `freeze:` (its own or an enclosing layer's)
    own_freeze: bool = False  # under a `freeze:` of its own layer or of an unnamed sequence
    # around it in its scope (a scope's own: its ``meta["freeze"]``), not of a scope above it
    folded: bool = False  # a batch norm folded into the conv before it (passes.fold_batchnorm)
    absorbs: bool = False  # a conv that absorbed the batch norm after it (ditto)
    key: str = ""  # its key in ``BlockTemplate.items`` (the name, ``proj#1`` for a second ``proj``,
    # ``branch2#1.conv`` inside a construct sharing a name): its path as the class keys it
    reads: bool = False  # its layer has a `from:` (``inputs`` are what it names); a scope's
    # layer: its ``meta["reads"]``
    name_loc: Loc | None = None  # where its name is written, as a scope's (``Scope.name_loc``:
    # the spec's `name:`, a name template's for a repeat's copy; None: none of its own)


@dataclass
class BlockTemplate:
    """One block definition over symbolic values: what one generic class of it is made from.

    Made by ``blocks.expander.TemplateExpander`` (the expander in template mode) from the
    block's first instance, whose values are the probes. ``locals`` maps each name the body reads (the block's
    parameters, the spec parameters it sees, its lets, ``in.c``/``in.h``/``in.w``) to the
    identifier its values are written over; ``reads`` are the spec parameters it reads, with
    those of the blocks it uses. ``per_use`` says why the block has no generic class (None: it
    has one).

    The network's template (``graph.templates[""]``, name ``""``) is the network body over the
    spec parameters the class takes (``params``: each with its type and the graph's value as its
    default), ``inputs`` the spec's ``input:`` over them.
    """

    name: str
    params: dict[str, tuple[str, Any, bool]]  # parameter -> (type, default, required)
    locals: dict[str, str]
    inputs: tuple[Any, ...]
    lets: dict[str, Any] = field(default_factory=dict)  # local -> value (a Sym, or plain)
    items: dict[str, TemplateItem] = field(default_factory=dict)  # by key: the name, or `2#1` for
    # the second layer named `2` (under exclusive `when:`s); ``inputs`` are keys
    scopes: dict[str, Scope] = field(default_factory=dict)
    members: list[str] = field(default_factory=list)  # the body's, in order: item keys and scope
    # paths (as a Scope's ``members``)
    output: str = INPUT
    out_shape: tuple[Any, ...] = ()
    reads: frozenset[str] = frozenset()
    per_use: str | None = None
    doc: str = ""  # what the spec declares: the block's (the network's) `doc:`, ...
    loc: Loc | None = None  # ... where it is defined,
    outputs: dict[str, str] = field(default_factory=dict)  # its `output:`s (name -> item key),
    checks: tuple[tuple[Any, str], ...] = ()  # its `checks:`: (condition over the locals, message)
    input_names: tuple[str, ...] = ()  # its `inputs:` in order (a block with several; empty: one)
    # the dotted names its body's `from:`s read (`layer1.bn1`: a member of a named sequence, or a
    # layer named with a dot), not inside the blocks it uses
    member_reads: frozenset[str] = frozenset()


def _relative(name: str, scope: str) -> str:
    """``name`` without the path of its nearest named scope (unnamed scopes, ``<residual3>``, add
    nothing to names)."""
    prefix = _named_prefix(scope)
    if prefix and name.startswith(prefix + "."):
        return name[len(prefix) + 1:]
    return name if not prefix else name.rsplit(".", 1)[-1]


@functools.lru_cache(maxsize=4096)
def _named_prefix(scope: str) -> str:
    """The path of a scope's nearest named scope (itself, or its parent past unnamed ones)."""
    parts = scope.split(".") if scope else []
    while parts and parts[-1].startswith("<"):
        parts.pop()
    return ".".join(parts)


@dataclass
class Graph:
    """A checked network: nodes in topological (insertion) order, scopes, outputs."""

    name: str
    file: str
    input_shape: Shape
    params: dict[str, Any]
    spec: Any = None
    nodes: dict[str, Node] = field(default_factory=dict)
    scopes: dict[str, Scope] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    output_locs: dict[str, Loc | None] = field(default_factory=dict)
    warnings: list[Diagnostic] = field(default_factory=list)
    templates: dict[str, BlockTemplate] = field(default_factory=dict)  # blocks.expander
    # every block the spec defines or its libraries give, used or not, in the spec's order (the
    # generated module names a class for each before planning any)
    block_names: tuple[str, ...] = ()
    # a graph from passes.fold_batchnorm: the locations of the batch-norm layers it folded and of
    # the conv layers that absorbed them (a layer folds in every instance or in none); every
    # template made from the graph is marked by them (mark_folds)
    folded_locs: frozenset[Loc] = frozenset()
    absorbing_locs: frozenset[Loc] = frozenset()
    # node -> the nodes that read it, in the order they were added (each once)
    readers: dict[str, dict[str, None]] = field(default_factory=dict, repr=False, compare=False)
    _nx: Any = field(default=None, init=False, repr=False, compare=False)

    def mark_folds(self, template: BlockTemplate) -> BlockTemplate:
        """``template`` (made from this graph) with its op items at the locations of folded
        batch-norm layers marked ``folded`` and those at the locations of the convs that absorbed
        them ``absorbs`` (``folded_locs``/``absorbing_locs``); the template itself when no item
        is at either (every template of a graph no fold made)."""
        folded, absorbing = self.folded_locs, self.absorbing_locs
        either = folded | absorbing
        if not either or not any(item.kind == "op" and item.loc in either
                                 for item in template.items.values()):
            return template
        return replace(template, items={
            key: replace(item, folded=item.loc in folded, absorbs=item.loc in absorbing)
            if item.kind == "op" and item.loc in either else item
            for key, item in template.items.items()})

    def add_node(self, node: Node) -> None:
        name = node.name
        self.nodes[name] = node
        readers = self.readers
        readers.setdefault(name, {})
        for src in node.inputs:
            readers.setdefault(src, {})[name] = None  # (a later lint reports a missing source)
        if self._nx is not None:
            self._add_to_nx(self._nx, node)

    @property
    def nx(self) -> Any:
        """The graph as a ``networkx.DiGraph`` (nodes by name, edges with their input ``index``),
        built on first use and kept up to date."""
        if self._nx is None:
            import networkx

            graph = networkx.DiGraph()
            for node in self.nodes.values():
                self._add_to_nx(graph, node)
            self._nx = graph
        return self._nx

    @staticmethod
    def _add_to_nx(graph: Any, node: Node) -> None:
        graph.add_node(node.name)
        for index, src in enumerate(node.inputs):
            graph.add_edge(src, node.name, index=index)

    def ancestors(self, name: str) -> set[str]:
        """Every node ``name`` depends on (not itself), as ``networkx.ancestors``."""
        nodes = self.nodes
        seen: set[str] = set()
        stack = [name]
        while stack:
            for src in nodes[stack.pop()].inputs:
                if src not in seen:
                    seen.add(src)
                    stack.append(src)
        return seen

    def live(self, roots: Iterable[str]) -> set[str]:
        """``roots`` and every node they depend on: one sweep over the nodes in reverse
        (topological) order, each node's inputs added once it is known to be needed; the same
        set as the union of ``ancestors`` and the roots, without a search per root."""
        live = set(roots)
        for node in reversed(self.nodes.values()):
            if node.name in live:
                live.update(node.inputs)
        return live

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def __len__(self) -> int:
        return len(self.nodes)

    def op_nodes(self) -> Iterator[Node]:
        return (n for n in self.nodes.values() if n.op != INPUT)

    def consumers(self, name: str) -> list[str]:
        return list(self.readers[name])

    @property
    def main_output(self) -> Node:
        return self.nodes[next(iter(self.outputs.values()))]

    def output_shapes(self) -> dict[str, Shape]:
        return {name: self.nodes[node].shape for name, node in self.outputs.items()}

    def scope_nodes(self, path: str) -> list[Node]:
        """All nodes inside a scope (recursively, through unnamed constructs), in topological order.

        Walks the scope's members rather than matching name prefixes: the nodes of an unnamed
        construct keep their enclosing scope's prefix.
        """
        found: list[str] = []
        stack = [path]
        while stack:
            for member in self.scopes[stack.pop()].members:
                if member in self.scopes:
                    stack.append(member)
                else:
                    found.append(member)
        order = {name: i for i, name in enumerate(self.nodes)}
        return [self.nodes[n] for n in sorted(found, key=order.__getitem__)]

    def lint(self) -> None:
        """Check the IR's invariants after a transformation; a failure is a bug, not a user error."""
        problems = []
        seen: set[str] = set()  # (every input defined before its reader: no cycle)
        for node in self.nodes.values():
            if node.op != INPUT and node.op not in REGISTRY:
                problems.append(f"node {node.name} has unknown op {node.op}")
            for src in node.inputs:
                if src not in seen:
                    problems.append(f"node {node.name} reads {src}, which is not defined before it")
                elif node.name not in self.readers[src]:
                    problems.append(f"node {node.name} reads {src}, which does not list it as a reader")
            if len(node.in_shapes) != len(node.inputs):
                problems.append(f"node {node.name} has {len(node.inputs)} inputs but "
                                f"{len(node.in_shapes)} input shapes")
            seen.add(node.name)
        if self.readers.keys() != self.nodes.keys() or (
                self._nx is not None and set(self._nx.nodes) != set(self.nodes)):
            problems.append("the edges and the node table disagree")
        for name, node in self.outputs.items():
            if node not in self.nodes:
                problems.append(f"output {name} names a missing node {node}")
        if problems:
            raise AssertionError("IR lint failed: " + "; ".join(problems))

    def dead_nodes(self) -> list[Node]:
        """Nodes no output depends on (dead branches)."""
        live = self.live(self.outputs.values())
        return [n for n in self.op_nodes() if n.name not in live]


def fail(message: str, loc: Loc | None, **kwargs: Any) -> SpecError:
    return SpecError(Diagnostic(message, loc, **kwargs))
