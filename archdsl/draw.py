"""Stage 5c: diagrams of a checked graph, laid out by Graphviz ``dot``.

Two steps, decisions first and layout second:

    view = build_view(graph, DrawOptions(depth=1))  # which scopes are one box, which open, what folds
    text = to_dot(view)                             # deterministic DOT source (the graphviz package)
    render(graph, "resnet50.svg")                   # the real ``dot`` makes svg / png / pdf

The view is read from the graph's scope tree. ``depth`` says how far blocks open: at 0 a repeat
(a stage) is one box; at 1 (the default) repeats open into their blocks and every block and dense
block is one box; at 2 those open into their layers; and so on (``None`` opens everything).
``expand`` opens chosen scopes (by path, glob or block name) whatever the depth.

Folding (``fold=True``, the default) keeps diagrams small: consecutive identical block instances
become one box marked ``x N``, and chains such as conv-BN-ReLU become one box
(``3x3 conv 128, /2 · BN · ReLU``). Merges are drawn as merges (a ``+`` circle, a concat pill with
the channel sum), residual shortcuts are weightless edges beside a straight spine, parallel branches
keep their order, and an open dense block is a running concatenation.

Nothing here imports torch, and nothing here tests an op's name: box labels come from each op's
``label()``, colours, legend entries, chain roles and merge drawings from its
:class:`~archdsl.ops.Style` (``Op.style``). Figures (``--costs``) are read from
:mod:`archdsl.analysis`, so they are the numbers ``archdsl report`` prints.
"""

from __future__ import annotations

import fnmatch
import html
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import graphviz

from .analysis import Analysis, analyze
from .errors import ArchError, Diagnostic, UsageError, did_you_mean
from .ir import INPUT, Graph, Node, Scope
from .ops import Shape, Style
from .util import LAYOUT_TIMEOUT, write_output

__all__ = [
    "BLOCK_STYLE",
    "FORMATS",
    "HIGHLIGHTS",
    "LAYOUTS",
    "LAYOUT_TIMEOUT",
    "Box",
    "Cluster",
    "DrawOptions",
    "Edge",
    "GraphvizMissing",
    "LayoutError",
    "View",
    "build_view",
    "chain_groups",
    "dot_program",
    "draw_graph",
    "fmt_count",
    "fmt_shape",
    "output_format",
    "render",
    "render_bytes",
    "render_svg",
    "to_dot",
]

# --- style tables --------------------------------------------------------------------------------

# Ops bring their own style (Op.style); these are the boxes that are not ops.
BLOCK_STYLE = Style("block", "#f2ebdc", "#8a7550")  # a collapsed block, repeat or dense block
IO_STYLE = Style()  # the input and the outputs (drawn dashed, not in the legend)
# diff status -> (fill, border), stronger first: a box holding layers of several takes the first.
HIGHLIGHTS: dict[str, tuple[str, str]] = {
    "removed": ("#f6c9c4", "#c0392b"),
    "added": ("#c8efc4", "#2e8b2e"),
    "changed": ("#ffe2a8", "#d68910"),
}
# Kinds of scope that ``depth`` opens; the others (seq, residual, parallel) are always open.
LEVEL_KINDS = ("block", "dense")
COLLAPSIBLE = ("block", "dense", "repeat")

FORMATS: dict[str, str] = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}
RANKDIRS = ("TB", "BT", "LR", "RL")
SHAPE_MODES = ("none", "out", "edge")
PNG_DPI = 144
FONT = "Helvetica"
ARROW = "\u2192"  # →
TIMES = "\u00d7"  # ×
LONG_LABEL = 44   # a block label longer than this puts its title on its own line
MAX_TEXT = 120    # spec text (names, paths) in a label or tooltip is cut to this many characters
MAX_ID = 60       # DOT identifiers made from names are cut to this many characters (then numbered)
ELLIPSIS = "\u2026"  # …

LAYOUTS = ("full", "fast")
# ``--layout fast``: bound the network-simplex iterations (x coordinates, ranks) to twice the node
# count and shorten crossing minimisation; edges may bend more, the time stays near linear.
FAST_LAYOUT = {"nslimit": "2", "nslimit1": "2", "mclimit": "0.5"}

INSTALL_HINT = ("install Graphviz: `apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` "
                "(macOS), or `conda install -c conda-forge graphviz`; or write DOT source with "
                "`-o FILE.dot` and render it elsewhere")


class GraphvizMissing(ArchError):
    """The Graphviz ``dot`` program is not installed (``.dot`` output still works)."""


class LayoutError(ArchError):
    """Graphviz could not lay out the diagram: ``dot`` failed, crashed or ran past the timeout."""


# --- options -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DrawOptions:
    """What to draw. ``depth=None`` opens every level; ``expand`` names scopes to open."""

    depth: int | None = 1
    expand: tuple[str, ...] = ()
    rankdir: str = "TB"
    shapes: str = "edge"
    costs: bool = False
    fold: bool = True
    legend: bool = True
    title: bool = True
    layout: str = "full"  # "fast" bounds Graphviz's iterations (FAST_LAYOUT)
    # layer name -> added / removed / changed: boxes holding such layers are coloured (archdsl diff)
    highlight: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.depth is not None and (isinstance(self.depth, bool) or not isinstance(self.depth, int)
                                       or self.depth < 0):
            raise UsageError(Diagnostic(f"--depth {self.depth}: not a depth", None,
                                        expected="a whole number >= 0, or all", found=repr(self.depth)))
        if self.rankdir.upper() not in RANKDIRS:
            raise UsageError(Diagnostic(f"--rankdir {self.rankdir}: unknown direction", None,
                                        expected=", ".join(RANKDIRS), found=repr(self.rankdir)))
        if self.shapes not in SHAPE_MODES:
            raise UsageError(Diagnostic(f"--shapes {self.shapes}: unknown mode", None,
                                        expected=", ".join(SHAPE_MODES), found=repr(self.shapes)))
        if self.layout not in LAYOUTS:
            raise UsageError(Diagnostic(f"--layout {self.layout}: unknown layout", None,
                                        expected=", ".join(LAYOUTS), found=repr(self.layout)))
        object.__setattr__(self, "rankdir", self.rankdir.upper())
        object.__setattr__(self, "expand", tuple(self.expand))


# --- the view: what the diagram shows ------------------------------------------------------------

@dataclass
class Box:
    """One node of the diagram: an op, a folded chain, a collapsed block, a fold, a merge, an I/O."""

    id: str
    kind: str  # io, op, chain, block, fold, merge
    title: str  # the bold lead of a block label ("Bottleneck", "Inception 3a"); may be ""
    text: str  # the rest of the label ("256 -> 512, /2")
    style: Style  # colour and legend entry (the op's, or BLOCK_STYLE)
    nodes: tuple[str, ...]  # the graph nodes this box stands for (costs)
    shape: Shape  # the output shape
    path: str  # scope path or node name (tooltip)
    in_shape: Shape = ()  # the shape coming in (of the first input)
    sep: str = " "
    count: int = 1  # folded instances ("x N")
    symbol: bool = False  # a merge drawn as a small circle ("+")

    @property
    def label(self) -> str:
        """The label as plain text: ``Bottleneck 1024 x 35``."""
        head = self.title + self.sep + self.text if self.title and self.text else self.title or self.text
        return head + (f" {TIMES} {self.count}" if self.count > 1 else "")


@dataclass
class Cluster:
    """An open block, repeat or named sequence: a dashed frame around its contents."""

    id: str
    title: str
    kind: str
    shape: Shape
    count: int = 1
    items: list[Item] = field(default_factory=list)


Item = Box | Cluster


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    shape: Shape
    skip: bool = False  # a shortcut or identity branch: drawn beside the spine


@dataclass
class View:
    """The decided diagram: items (boxes and clusters, in drawing order) and edges."""

    name: str
    items: list[Item]
    edges: list[Edge]
    options: DrawOptions
    totals: tuple[int, int]  # params, MACs of the whole network
    costs: dict[str, tuple[int, int]] = field(default_factory=dict)  # box id -> params, MACs
    spine: set[str] = field(default_factory=set)  # boxes on the main path (kept in a straight line)
    same_rank: list[list[str]] = field(default_factory=list)  # the first boxes of parallel branches

    def boxes(self) -> list[Box]:
        return [item for item in _walk(self.items) if isinstance(item, Box)]

    def clusters(self) -> list[Cluster]:
        return [item for item in _walk(self.items) if isinstance(item, Cluster)]

    def box(self, box_id: str) -> Box:
        return next(b for b in self.boxes() if b.id == box_id)


def _walk(items: list[Item]) -> Iterable[Item]:
    for item in items:
        yield item
        if isinstance(item, Cluster):
            yield from _walk(item.items)


@dataclass(frozen=True)
class _Unit:
    """A drawing unit inside a container: one child scope, or a group of consecutive nodes."""

    scope: Scope | None = None
    nodes: tuple[str, ...] = ()


# --- text helpers --------------------------------------------------------------------------------

def fmt_shape(shape: Shape) -> str:
    return TIMES.join(str(d) for d in shape)


def fmt_count(n: int) -> str:
    """``11689512`` -> ``11.7M``."""
    for scale, suffix in ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K")):
        if abs(n) >= scale:
            value = n / scale
            return f"{value:.3g}{suffix}" if value < 100 else f"{value:.0f}{suffix}"
    return str(n)


def _sentence(name: str) -> str:
    """``inverted_residual`` -> ``Inverted residual``; one-letter words are capitals (``Inception A``)."""
    words = [w for w in name.split("_") if w]
    words = [w.upper() if len(w) == 1 else w for w in words]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def _trailing_id(local: str) -> str:
    match = re.search(r"(\d+[a-z]?)$", local)
    return match.group(1) if match else ""


def _humanize(local: str) -> str:
    """``layer3`` -> ``Layer 3``; ``features`` -> ``Features``."""
    ident = _trailing_id(local)
    head = local[: len(local) - len(ident)].rstrip("_") if ident else local
    return _sentence(head) + (f" {ident}" if ident and head else ident)


def _block_title(block: str, local: str) -> str:
    """``inception`` used as ``inception3a`` -> ``Inception 3a``."""
    key, name = block.replace("_", "").lower(), local.replace("_", "").lower()
    title = _sentence(block)
    if name.startswith(key) and len(name) > len(key):
        title += " " + name[len(key):]
    return title


def _channels(ins: Shape, out: Shape) -> str:
    """``256 -> 512, /2`` from a block's input and output shapes."""
    if not ins or not out:
        return ""
    text = str(out[0]) if ins[0] == out[0] else f"{ins[0]} {ARROW} {out[0]}"
    if len(ins) == 3 and len(out) == 3 and 0 < out[1] < ins[1]:
        factor = round(ins[1] / out[1])
        if factor > 1:
            text += f", /{factor}"
    return text


def _style(node: Node) -> Style:
    return node.opdef.style


def _drawn_attrs(node: Node) -> str:
    """The attributes that tell two instances apart in a diagram (a regularizer's rate does not)."""
    return node.opdef.drawn_identity(node.attrs)


def _op_label(node: Node) -> str:
    return node.opdef.label(node.attrs, list(node.in_shapes), node.shape)


def _compact(node: Node) -> str:
    """A node's label for a one-line summary: ``1x1 128`` for ``1x1 conv 128``."""
    return node.opdef.compact_label(node.attrs, list(node.in_shapes), node.shape)


def _compact_chain(nodes: list[Node]) -> str:
    """``[BN-ReLU-1x1 128, BN-ReLU-3x3 32]``: a linear run of layers on one line."""
    return "[" + ", ".join("-".join(_compact(n) for n in group) for group in chain_groups(nodes)) + "]"


def _in_shape(node: Node) -> Shape:
    return node.in_shapes[0] if node.in_shapes else ()


# --- chains --------------------------------------------------------------------------------------

def chain_groups(nodes: list[Node]) -> list[list[Node]]:
    """Split a linear run of nodes into chains: an anchor (conv, linear) with its norms,
    activations and dropouts. ``conv bn relu conv bn`` -> ``[conv bn relu] [conv bn]``;
    pre-activation ``bn relu conv bn relu conv`` -> ``[bn relu conv] [bn relu conv]``. Other ops
    (pools, merges, reshapes) stand alone."""
    groups: list[list[Node]] = []
    segment: list[Node] = []
    for node in nodes:
        if _style(node).chain != "alone":
            segment.append(node)
            continue
        groups.extend(_segment_groups(segment))
        segment = []
        groups.append([node])
    groups.extend(_segment_groups(segment))
    return groups


def _segment_groups(segment: list[Node]) -> list[list[Node]]:
    if not segment:
        return []
    pre = _style(segment[0]).chain != "anchor"  # pre-activation: groups end at an anchor
    groups: list[list[Node]] = []
    current: list[Node] = []
    for node in segment:
        anchor = _style(node).chain == "anchor"
        if anchor and not pre and current:
            groups.append(current)
            current = []
        current.append(node)
        if anchor and pre:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


def _chain_style(nodes: list[Node]) -> Style:
    """A chain is drawn in its anchor's colour (its first node's when it has none)."""
    for node in nodes:
        if _style(node).chain == "anchor":
            return _style(node)
    return _style(nodes[0])


def _summarised(node: Node) -> bool:
    """The node shows in a parallel block's summary as more than a fallback (a conv, a pool)."""
    return _style(node).token not in ("", "label")


# --- building the view ---------------------------------------------------------------------------

class _ViewBuilder:
    """Walks the scope tree and decides, for every scope, whether it is a box, a frame or
    transparent; records which box draws each graph node, then derives the edges."""

    def __init__(self, analysis: Analysis, options: DrawOptions):
        assert analysis.graph is not None
        self.analysis = analysis
        self.graph = graph = analysis.graph
        self.options = options
        self.ids = _Ids()
        self.owner: dict[str, str] = {}  # graph node -> id of the box that draws it
        self.alias: dict[str, str] = {}  # node of a hidden folded instance -> its counterpart
        self.instance: dict[str, tuple[int, int]] = {}  # node -> (fold run, instance index)
        self.virtual: dict[str, tuple[str, ...]] = {}  # node -> inputs as drawn (dense concat)
        self.skip: set[tuple[str, str]] = set()  # graph edges drawn as shortcuts
        self.side: set[str] = set()  # nodes off the main path: shortcuts and parallel branches
        self.branch_heads: list[list[str]] = []  # the first node of each branch, per parallel
        self.costs: dict[str, tuple[int, int]] = {}
        self.fold_runs = 0
        self.outputs: list[Box] = []
        self.levels: dict[str, int] = {}
        self.contained: dict[str, list[Node]] = {}
        self.output_nodes = set(graph.outputs.values())
        if graph.outputs:  # side heads (auxiliary classifiers) stay off the spine
            main = graph.main_output.name
            self.side |= set(graph.nodes) - graph.ancestors(main) - {main}
        self.targets, self.opened, self.pinned, self.unfold = self.match_expand()

    # entry
    def build(self) -> View:
        items: list[Item] = [self.input_box()]
        items.extend(self.contents(self.graph.scopes[""]))
        self.outputs = self.output_boxes()
        items.extend(self.outputs)
        totals = (self.analysis.params, self.analysis.macs)
        return View(self.graph.name, items, self.edges(), self.options, totals,
                    self.costs, self.spine(items), self.branch_ranks())

    # --expand
    def match_expand(self) -> tuple[set[str], set[str], set[str], set[str]]:
        """What --expand names: the scopes it opens (targets), those scopes and their ancestors
        (opened), the scopes named by path, with their ancestors, which are not folded away
        (pinned; a block name opens every instance but keeps folding them), and the nodes whose
        chains are not folded (unfold)."""
        targets: set[str] = set()
        by_path: set[str] = set()
        unfold: set[str] = set()
        for pattern in self.options.expand:
            paths = [p for p in self.graph.scopes if p and (
                fnmatch.fnmatchcase(p, pattern) or fnmatch.fnmatchcase(p, "*." + pattern))]
            blocks = [p for p, s in self.graph.scopes.items() if p and s.block == pattern]
            nodes = [n.name for n in self.graph.op_nodes() if fnmatch.fnmatchcase(n.name, pattern)]
            if not paths and not blocks and not nodes:
                raise UsageError(self.unknown_expand(pattern))
            targets.update(paths + blocks)
            by_path.update(paths)
            unfold.update(nodes)
        node_scopes = sorted(self.graph.nodes[n].scope for n in unfold)
        opened = self.with_ancestors(sorted(targets) + node_scopes)
        pinned = self.with_ancestors(sorted(by_path) + node_scopes)
        return targets, opened, pinned, unfold

    def with_ancestors(self, paths: list[str]) -> set[str]:
        out: set[str] = set()
        for path in paths:
            current: str | None = path
            while current is not None and current not in out:
                out.add(current)
                current = self.graph.scopes[current].parent
        return out

    def unknown_expand(self, pattern: str) -> Diagnostic:
        names = [p for p, s in self.graph.scopes.items() if p and s.named]
        names += sorted({s.block for s in self.graph.scopes.values() if s.block})
        shown = ", ".join(n for n in names if "." not in n)[:200]
        return Diagnostic(f"--expand {pattern}: no block, scope or layer has this name", None,
                          expected=f"a scope path, a glob or a block name (e.g. {shown})",
                          found=repr(pattern), hint=did_you_mean(pattern, names))

    def nodes_in(self, scope: Scope) -> list[Node]:
        """Every node inside a scope, in topological order (read from the member tree: the nodes
        of a named scope inside an unnamed construct do not carry the construct's path)."""
        if scope.path not in self.contained:
            nodes: list[Node] = []
            for member in scope.members:
                child = self.graph.scopes.get(member)
                nodes.extend(self.nodes_in(child) if child is not None else [self.graph.nodes[member]])
            self.contained[scope.path] = nodes
        return self.contained[scope.path]

    # which scopes open
    def level(self, scope: Scope) -> int:
        """How many blocks and dense blocks enclose the scope."""
        if scope.path not in self.levels:
            parent = self.graph.scopes.get(scope.parent) if scope.parent is not None else None
            self.levels[scope.path] = 0 if parent is None else \
                self.level(parent) + (parent.kind in LEVEL_KINDS)
        return self.levels[scope.path]

    def is_open(self, scope: Scope) -> bool:
        if scope.path in self.opened or scope.kind not in COLLAPSIBLE:
            return True
        if self.options.fold and scope.kind == "block" and self.single_chain(scope):
            return False  # a conv-bn-relu block stays one chain box
        if self.options.depth is None:
            return True
        need = self.level(scope) + (1 if scope.kind == "repeat" else 2)
        return self.options.depth >= need

    def is_cluster(self, scope: Scope) -> bool:
        if scope.kind in COLLAPSIBLE:
            return True
        parent = self.graph.scopes.get(scope.parent or "")
        return scope.kind == "seq" and scope.named and parent is not None \
            and parent.kind in ("network", "seq")

    # containers
    def contents(self, scope: Scope) -> list[Item]:
        self.note_structure(scope)
        items: list[Item] = []
        for run in self.runs(self.units(scope)):
            items.extend(self.draw_run(run))
        return items

    def units(self, scope: Scope) -> list[_Unit]:
        units: list[_Unit] = []
        pending: list[str] = []
        for member in scope.members:
            if member in self.graph.scopes:
                units.extend(self.node_units(pending, scope))
                pending = []
                units.append(_Unit(scope=self.graph.scopes[member]))
            else:
                pending.append(member)
        units.extend(self.node_units(pending, scope))
        return units

    def node_units(self, names: list[str], scope: Scope) -> list[_Unit]:
        """Consecutive member nodes as units: chains when folding, else one node each."""
        fold = self.options.fold and scope.path not in self.targets
        units: list[_Unit] = []
        for run in self.linear_runs(names):
            if not fold or any(name in self.unfold for name in run):
                units.extend(_Unit(nodes=(name,)) for name in run)
                continue
            groups = chain_groups([self.graph.nodes[name] for name in run])
            units.extend(_Unit(nodes=tuple(n.name for n in group)) for group in groups)
        return units

    def linear_runs(self, names: list[str]) -> list[list[str]]:
        runs: list[list[str]] = []
        for name in names:
            if runs and self.linked(runs[-1][-1], name):
                runs[-1].append(name)
            else:
                runs.append([name])
        return runs

    def linked(self, a: str, b: str) -> bool:
        """``b`` reads only ``a`` and is ``a``'s only reader."""
        return (self.graph.nodes[b].inputs == (a,) and self.graph.consumers(a) == [b]
                and a not in self.output_nodes)

    def single_chain(self, scope: Scope) -> list[Node] | None:
        """The block's nodes when they form one chain (``conv bn relu``), else None."""
        nodes = self.nodes_in(scope)
        if not nodes or any(not self.linked(a.name, b.name) for a, b in pairwise(nodes)):
            return None
        return nodes if len(chain_groups(nodes)) == 1 else None

    # folding identical neighbours
    def runs(self, units: list[_Unit]) -> list[list[_Unit]]:
        runs: list[tuple[Any, list[_Unit]]] = []
        for unit in units:
            sig = self.signature(unit) if self.options.fold else None
            if runs and sig is not None and runs[-1][0] == sig and self.follows(runs[-1][1][-1], unit):
                runs[-1][1].append(unit)
            else:
                runs.append((sig, [unit]))
        return [run for _, run in runs]

    def follows(self, prev: _Unit, unit: _Unit) -> bool:
        """``unit`` reads ``prev``'s output, and nothing else reads it."""
        out = prev.scope.output if prev.scope is not None else prev.nodes[-1]
        first_input = unit.scope.input if unit.scope is not None else \
            self.graph.nodes[unit.nodes[0]].inputs
        inside = set(self.unit_nodes(unit))
        return first_input in (out, (out,)) and out not in self.output_nodes \
            and all(reader in inside for reader in self.graph.consumers(out))

    def sealed(self, unit: _Unit) -> bool:
        """Only the unit's output is read from outside it (so hiding a copy hides nothing)."""
        names = self.unit_nodes(unit)
        if not names:
            return False
        inside = set(names)
        return all(reader in inside for name in names[:-1] for reader in self.graph.consumers(name)) \
            and not any(name in self.output_nodes for name in names[:-1])

    def signature(self, unit: _Unit) -> Any:
        """Equal signatures mean identical instances (same ops, attributes, shapes, wiring).

        The rate of a regularizer (dropout, stochastic depth) does not make instances different:
        EfficientNet's blocks differ only in a stochastic-depth rate that grows along the network.
        """
        if not self.sealed(unit):
            return None
        if unit.scope is None:
            nodes = [self.graph.nodes[n] for n in unit.nodes]
            return ("nodes",) + tuple((n.op, _drawn_attrs(n), n.in_shapes, n.shape) for n in nodes)
        scope = unit.scope
        if scope.path in self.pinned or not scope.named or self.nodes_in(scope)[-1].name != scope.output:
            return None
        if scope.meta.get("inputs"):  # a block with several inputs: each use's edges are drawn
            return None
        prefix = scope.path + "."
        nodes = self.nodes_in(scope)
        if not nodes or any(not n.name.startswith(prefix) for n in nodes):
            return None

        def rel(name: str) -> str:
            return name[len(prefix):] if name.startswith(prefix) else \
                "<in>" if name == scope.input else name

        body = tuple((rel(n.name), n.op, _drawn_attrs(n), tuple(rel(i) for i in n.inputs), n.shape)
                     for n in nodes)
        return (scope.kind, scope.block, scope.in_shape, scope.out_shape, body)

    def draw_run(self, run: list[_Unit]) -> list[Item]:
        if len(run) == 1:
            return self.draw_unit(run[0])
        first = run[0]
        if first.scope is not None and self.is_open(first.scope):
            return [self.fold_cluster(run)]
        box = self.unit_box(first)
        if box is None:
            return []
        box.count = len(run)
        box.kind = "fold" if box.kind == "block" else box.kind
        self.own(box, [n for unit in run for n in self.unit_nodes(unit)])
        return [box]

    def fold_cluster(self, run: list[_Unit]) -> Cluster:
        """The first of N identical open instances stands for all of them."""
        scopes = [unit.scope for unit in run if unit.scope is not None]
        first, last = scopes[0], scopes[-1]
        items = self.contents(first)
        self.fold_runs += 1
        for index, scope in enumerate(scopes):
            for node in self.nodes_in(scope):
                self.instance[node.name] = (self.fold_runs, index)
                if index:
                    self.alias[node.name] = first.path + node.name[len(scope.path):]
        title = f"{first.path} \u2026 {last.path}"
        return Cluster(self.ids("cluster_" + first.path), title, first.kind, last.out_shape,
                       len(run), items)

    def draw_unit(self, unit: _Unit) -> list[Item]:
        scope = unit.scope
        if scope is None or not self.is_open(scope):
            box = self.unit_box(unit)
            if box is None:
                return []
            self.own(box, self.unit_nodes(unit))
            return [box]
        items = self.contents(scope)
        if not items or not self.is_cluster(scope) or (scope.kind == "seq" and len(items) < 2):
            return items
        return [Cluster(self.ids("cluster_" + scope.path), scope.path, scope.kind, scope.out_shape,
                        items=items)]

    def unit_nodes(self, unit: _Unit) -> list[str]:
        if unit.scope is None:
            return list(unit.nodes)
        return [n.name for n in self.nodes_in(unit.scope)]

    def own(self, box: Box, nodes: list[str]) -> None:
        box.nodes = tuple(nodes)
        stats = [self.analysis.nodes[name] for name in nodes]
        for name in nodes:
            self.owner[name] = box.id
        self.costs[box.id] = (sum(s.params for s in stats), sum(s.macs for s in stats))

    # boxes
    def unit_box(self, unit: _Unit) -> Box | None:
        if unit.scope is not None:
            return self.scope_box(unit.scope)
        nodes = [self.graph.nodes[n] for n in unit.nodes]
        if len(nodes) == 1 and _style(nodes[0]).merge is not None:
            return self.merge_box(nodes[0])
        text = " \u00b7 ".join(_op_label(n) for n in nodes)
        kind = "op" if len(nodes) == 1 else "chain"
        path = nodes[0].name if len(nodes) == 1 else f"{nodes[0].name} \u2026 {nodes[-1].local_name}"
        return Box(self.ids(nodes[0].name), kind, "", text, _chain_style(nodes), (),
                   nodes[-1].shape, path, in_shape=_in_shape(nodes[0]))

    def merge_box(self, node: Node) -> Box:
        style = _style(node)
        label = text = _op_label(node)
        if style.merge == "channels":
            inputs = self.virtual.get(node.name, node.inputs)
            chans = [self.graph.nodes[i].shape[0] for i in inputs]
            parts = " + ".join(map(str, chans)) if len(chans) <= 6 else f"{len(chans)} inputs"
            text = f"{label} {parts} = {node.shape[0]}"
        return Box(self.ids(node.name), "merge", "", text, style, (), node.shape, node.name,
                   in_shape=_in_shape(node), symbol=style.merge == "symbol")

    def scope_box(self, scope: Scope) -> Box | None:
        nodes = self.nodes_in(scope)
        if not nodes:
            return None
        box_id = self.ids(scope.path)
        chain = self.single_chain(scope) if scope.kind == "block" else None
        if chain is not None:
            text = " \u00b7 ".join(_op_label(n) for n in chain)
            return Box(box_id, "chain", "", text, _chain_style(chain), (), scope.out_shape,
                       scope.path, in_shape=scope.in_shape)
        title, sep, text = self.describe(scope)
        return Box(box_id, "block", title, text, BLOCK_STYLE, (), scope.out_shape, scope.path,
                   in_shape=scope.in_shape, sep=sep)

    def describe(self, scope: Scope) -> tuple[str, str, str]:
        """A collapsed scope's label from its structure: (title, separator, details)."""
        chans = _channels(scope.in_shape, scope.out_shape)
        count = scope.meta.get("count", 0)
        if scope.kind == "dense":
            ident = _trailing_id(scope.local_name)
            title = "Dense block" + (f" {ident}" if ident else "")
            text = f"{count} {TIMES} {self.layer_summary(scope)}, {scope.in_shape[0]} {ARROW} " \
                f"{scope.out_shape[0]}"
            return title, ": ", text
        if scope.kind == "repeat":
            text = f"{count} {TIMES} {self.layer_summary(scope)}, {chans}"
            return _humanize(scope.local_name), ": ", text
        if scope.kind == "block" and scope.block:
            title = _block_title(scope.block, scope.local_name)
            branches = self.parallel_summary(scope)
            if branches is not None:
                return title, ": ", branches
            return title, " ", chans
        return _humanize(scope.local_name), " ", chans

    def layer_summary(self, scope: Scope) -> str:
        """What a repeat or dense block repeats: ``Bottleneck`` or ``[BN-ReLU-1x1 128, ...]``."""
        children = [self.graph.scopes[m] for m in scope.members if m in self.graph.scopes]
        if not children:  # repeated single layers: the first instance's share of the nodes
            nodes = self.nodes_in(scope)
            count = scope.meta.get("count", 0)
            if nodes and count and len(nodes) % count == 0:
                return _compact_chain(nodes[: len(nodes) // count])
            return "layers"
        first = children[0]
        nodes = self.nodes_in(first)
        linear = bool(nodes) and all(self.linked(a.name, b.name) for a, b in pairwise(nodes))
        if first.block and all(c.block == first.block for c in children):
            return _compact_chain(nodes) if scope.kind == "dense" and linear \
                else _block_title(first.block, "")
        return _compact_chain(nodes) if linear else _humanize(first.local_name)

    def parallel_summary(self, scope: Scope) -> str | None:
        """``64 | 96->128 | 16->32 | pool->32 = 256`` for a block whose body is one concat."""
        parallel = None
        for member in scope.members:
            child = self.graph.scopes.get(member)
            if child is not None and child.kind == "parallel" and parallel is None:
                parallel = child
            elif child is not None or _summarised(self.graph.nodes[member]):
                return None
        merge = self.merge_node(parallel) if parallel is not None else None
        if merge is None or _style(merge).merge != "channels":  # the summary sums channels
            return None
        branches = self.branches(parallel)
        if branches is None:
            return None
        return " | ".join(branches) + f" = {parallel.out_shape[0]}"

    def branches(self, parallel: Scope) -> list[str] | None:
        merge = self.merge_node(parallel)
        if merge is None:
            return None
        within = {n.name for n in self.nodes_in(parallel)}
        out = []
        for src in merge.inputs:
            upstream = self.upstream(src, within)
            members = [m for m in parallel.members if self.output_of(m) in upstream]
            out.append(ARROW.join(self.tokens(members)) or "id")
        return out

    def tokens(self, members: list[str]) -> list[str]:
        """Channel tokens of a branch: conv/linear outputs, ``pool``, nested ``(a | b)``."""
        tokens: list[str] = []
        fallback: list[str] = []
        for member in members:
            child = self.graph.scopes.get(member)
            if child is None:
                node = self.graph.nodes[member]
                token = _style(node).token
                if token == "channels":
                    tokens.append(str(node.shape[0]))
                elif token == "label":
                    fallback.append(_op_label(node))
                elif token:
                    tokens.append(token)
            elif child.kind == "parallel":
                inner = self.branches(child)
                if inner:
                    tokens.append("(" + " | ".join(inner) + ")")
            else:
                tokens.extend(self.tokens(child.members))
        return tokens or fallback

    def merge_node(self, parallel: Scope) -> Node | None:
        """The node merging a parallel's branches (None when one branch was left)."""
        if len(parallel.meta.get("branch_outputs", ())) < 2:
            return None
        return self.graph.nodes.get(parallel.meta.get("merge_node", ""))

    def output_of(self, member: str) -> str:
        scope = self.graph.scopes.get(member)
        return scope.output if scope is not None else member

    def upstream(self, start: str, within: set[str]) -> set[str]:
        """``start`` and its ancestors, staying inside ``within``."""
        seen: set[str] = set()
        stack = [start]
        while stack:
            name = stack.pop()
            if name in seen or name not in within:
                continue
            seen.add(name)
            stack.extend(self.graph.nodes[name].inputs)
        return seen

    # structure that changes how edges are drawn
    def note_structure(self, scope: Scope) -> None:
        if scope.kind == "residual":
            self.note_residual(scope)
        elif scope.kind == "parallel":
            self.note_parallel(scope)
        elif scope.kind == "dense":
            self.note_dense(scope)

    def note_parallel(self, scope: Scope) -> None:
        merge = self.merge_node(scope)
        if merge is None:
            return
        self.skip.update((src, merge.name) for src in merge.inputs if src == scope.input)
        within = {n.name for n in self.nodes_in(scope)}
        order = {n.name: i for i, n in enumerate(self.nodes_in(scope))}
        heads = []
        for src in merge.inputs:
            branch = self.upstream(src, within)
            self.side.update(branch)
            if branch:
                heads.append(min(branch, key=order.__getitem__))
        self.branch_heads.append(heads)

    def note_residual(self, scope: Scope) -> None:
        body_out = scope.meta.get("body_output")
        short_out = scope.meta.get("shortcut_output")
        if not scope.meta.get("connect") or body_out is None or short_out is None:
            return
        within = {n.name for n in self.nodes_in(scope)}
        body = self.upstream(body_out, within)
        for name in self.upstream(short_out, within) - body:
            self.side.add(name)
            self.skip.update((src, name) for src in self.graph.nodes[name].inputs)
        for member in scope.members:
            node = self.graph.nodes.get(member)
            if node is not None and node.inputs == (body_out, short_out):  # the residual's merge
                self.skip.add((short_out, member))

    def note_dense(self, scope: Scope) -> None:
        """Draw dense connectivity as a running concatenation: each concat reads the previous
        concat and the newest layer, not every earlier layer."""
        previous: str | None = None
        for member in scope.members:
            node = self.graph.nodes.get(member)
            if node is None or member in self.graph.scopes or _style(node).merge != "channels":
                continue
            if previous is not None and len(node.inputs) > 2:
                self.virtual[member] = (previous, node.inputs[-1])
            self.skip.add((previous or node.inputs[0], member))  # the features carried past a layer
            previous = member

    # inputs, outputs, edges
    def input_box(self) -> Box:
        node = self.graph.nodes[INPUT]
        box = Box(self.ids(INPUT), "io", "", "input", IO_STYLE, (INPUT,), node.shape, INPUT)
        self.owner[INPUT] = box.id
        return box

    def output_boxes(self) -> list[Box]:
        boxes = []
        for name, node in self.graph.outputs.items():
            text = "output" if name == "out" else name
            boxes.append(Box(self.ids("output_" + name), "io", "", text, IO_STYLE, (),
                             self.graph.nodes[node].shape, name))
        return boxes

    def owner_of(self, name: str) -> str | None:
        return self.owner.get(self.alias.get(name, name))

    def edges(self) -> list[Edge]:
        edges: dict[tuple[str, str], Edge] = {}
        for node in self.graph.op_nodes():
            for src in self.virtual.get(node.name, node.inputs):
                a, b = self.owner_of(src), self.owner_of(node.name)
                if a is None or b is None or a == b or self.across_instances(src, node.name):
                    continue
                if (a, b) not in edges:
                    skip = (src, node.name) in self.skip
                    edges[(a, b)] = Edge(a, b, self.graph.nodes[src].shape, skip)
        for box, node in zip(self.outputs, self.graph.outputs.values()):
            src = self.owner_of(node)
            if src is not None:
                edges[(src, box.id)] = Edge(src, box.id, self.graph.nodes[node].shape)
        return list(edges.values())

    def spine(self, items: list[Item]) -> set[str]:
        return {box.id for box in _walk(items) if isinstance(box, Box)
                and not any(name in self.side for name in box.nodes)}

    def branch_ranks(self) -> list[list[str]]:
        groups = []
        for heads in self.branch_heads:
            boxes: list[str] = []
            for name in heads:
                box = self.owner_of(name)
                if box is not None and box not in boxes:
                    boxes.append(box)
            if len(boxes) > 1:
                groups.append(boxes)
        return groups

    def across_instances(self, src: str, dst: str) -> bool:
        """An edge between two folded instances (drawn once, inside the first)."""
        a, b = self.instance.get(src), self.instance.get(dst)
        return a is not None and b is not None and a[0] == b[0] and a[1] != b[1]


class _Ids:
    """Stable, unique DOT identifiers from graph names (``layer1.0.conv1`` -> ``layer1_0_conv1``)."""

    RESERVED = ("legend", "graph", "node", "edge", "digraph", "subgraph", "strict")

    def __init__(self) -> None:
        self.used: set[str] = set(self.RESERVED)

    def __call__(self, name: str) -> str:
        base = re.sub(r"[^0-9A-Za-z_]+", "_", name).strip("_")[:MAX_ID] or "n"
        if base[0].isdigit():
            base = "n" + base
        ident, k = base, 1
        while ident in self.used:
            k += 1
            ident = f"{base}_{k}"
        self.used.add(ident)
        return ident


def build_view(source: Graph | Analysis, options: DrawOptions | None = None, **kwargs: Any) -> View:
    """Decide what the diagram shows: boxes, frames, folds and edges (no layout yet).

    ``source`` is a checked graph or its :class:`~archdsl.analysis.Analysis`; the figures the
    diagram shows (``costs``, the title's totals) are the analysis's (a graph is analysed here,
    batch 1), so they agree with ``archdsl report``.
    """
    options = options or DrawOptions(**kwargs)
    return _ViewBuilder(_analysis_of(source), options).build()


def _analysis_of(source: Graph | Analysis) -> Analysis:
    if isinstance(source, Analysis):
        if source.graph is None:
            raise ValueError("this Analysis has no graph to draw (analyse a graph from archdsl.load)")
        return source
    return analyze(source)


# --- DOT -----------------------------------------------------------------------------------------

GRAPH_ATTRS = {"fontname": FONT, "fontsize": "11", "nodesep": "0.22", "ranksep": "0.28",
               "newrank": "true", "bgcolor": "white", "pad": "0.15"}
NODE_ATTRS = {"fontname": FONT, "fontsize": "11", "shape": "box", "style": "rounded,filled",
              "penwidth": "1.0", "height": "0.32", "margin": "0.12,0.05"}
EDGE_ATTRS = {"fontname": FONT, "fontsize": "9", "fontcolor": "#666666", "color": "#555555",
              "arrowsize": "0.6", "penwidth": "0.9"}
CLUSTER_ATTRS = {"style": "dashed,rounded", "color": "#9a9a9a", "fontsize": "10",
                 "labeljust": "l", "fontcolor": "#444444", "margin": "10"}
SMALL = '<FONT POINT-SIZE="9" COLOR="#666666">{}</FONT>'


class _DotWriter:
    """Turns a :class:`View` into DOT source with the graphviz package (layout decisions only)."""

    def __init__(self, view: View, prefix: str):
        self.view = view
        self.options = view.options
        self.prefix = prefix
        fanout: dict[str, int] = {}
        for edge in view.edges:
            fanout[edge.src] = fanout.get(edge.src, 0) + 1
        self.fanout = fanout
        self.boxes = {box.id: box for box in view.boxes()}

    def source(self) -> str:
        attrs = dict(GRAPH_ATTRS, rankdir=self.options.rankdir, id=self.prefix + "graph")
        if self.options.title:
            attrs.update(label=self.title(), labelloc="t", fontsize="13")
        if self.options.layout == "fast":
            attrs.update(FAST_LAYOUT)
        dot = graphviz.Digraph(_clip(self.view.name, MAX_ID), graph_attr=attrs, node_attr=NODE_ATTRS,
                               edge_attr=EDGE_ATTRS)
        self.add_items(dot, self.view.items)
        for boxes in self.view.same_rank:  # parallel branches start side by side
            with dot.subgraph() as same:
                same.attr(rank="same")
                for box in boxes:
                    same.node(box)
        for index, edge in enumerate(self.view.edges):
            dot.edge(edge.src, edge.dst, **self.edge_attrs(edge, index))
        if self.options.legend:
            self.add_legend(dot)
        return dot.source

    def title(self) -> str:
        text = f"<B>{_esc(self.view.name)}</B>"
        if self.options.costs:
            params, macs = self.view.totals
            text += SMALL.format(f"   {fmt_count(params)} params, {fmt_count(macs)} MACs")
        return f"<{text}>"

    def add_items(self, dot: graphviz.Digraph, items: list[Item]) -> None:
        for item in items:
            if isinstance(item, Cluster):
                with dot.subgraph(name=item.id) as sub:
                    sub.attr(**CLUSTER_ATTRS, label=self.cluster_label(item),
                             id=self.prefix + item.id)
                    self.add_items(sub, item.items)
            else:
                dot.node(item.id, **self.box_attrs(item))

    def cluster_label(self, cluster: Cluster) -> str:
        text = f"<B>{_esc(cluster.title)}</B>"
        if cluster.count > 1:
            text += f"  <B>{TIMES} {cluster.count}</B>"
        if self.options.shapes != "none":
            text += "  " + SMALL.format(_esc(fmt_shape(cluster.shape)))
        return f"<{text}>"

    def box_attrs(self, box: Box) -> dict[str, str]:
        attrs = {"label": self.box_label(box), "fillcolor": box.style.fill, "color": box.style.border,
                 "tooltip": _clip(box.path), "id": self.prefix + box.id}
        if box.kind == "io":
            attrs.update(style="rounded,dashed", fillcolor="white", color="#777777")
        elif box.style == BLOCK_STYLE:
            attrs.update(style="filled", penwidth="1.2")
        if box.count > 1:
            attrs["peripheries"] = "2"
        if box.symbol:
            attrs.update(shape="circle", fixedsize="true", width="0.3", height="0.3",
                         fontsize="14", margin="0")
        attrs.update(self.highlight_attrs(box))
        if self.fanout.get(box.id, 0) > 1:
            attrs["ordering"] = "out"
        if box.id in self.view.spine:
            attrs["group"] = "spine"
        return attrs

    def highlight_attrs(self, box: Box) -> dict[str, str]:
        """A box holding a diff's added, removed or changed layers takes that status's colours."""
        marks = {self.options.highlight.get(name) for name in box.nodes}
        status = next((s for s in HIGHLIGHTS if s in marks), None)
        if status is None:
            return {}
        fill, border = HIGHLIGHTS[status]
        return {"fillcolor": fill, "color": border, "penwidth": "2.2",
                "tooltip": f"{_clip(box.path)} ({status})"}

    def box_label(self, box: Box) -> str:
        if box.symbol:
            return _esc(box.text)
        lines = [self.main_line(box)]
        if self.shape_under(box):
            lines.append(SMALL.format(_esc(fmt_shape(box.shape))))
        if self.options.costs and box.kind != "io":
            params, macs = self.view.costs.get(box.id, (0, 0))
            if params or macs:
                lines.append(SMALL.format(_esc(f"{fmt_count(params)} params, {fmt_count(macs)} MACs")))
        return "<" + "<BR/>".join(lines) + ">"

    def main_line(self, box: Box) -> str:
        count = f"  <B>{TIMES} {box.count}</B>" if box.count > 1 else ""
        if not box.title:
            return _esc(box.text) + count
        title = f"<B>{_esc(box.title)}</B>"
        if not box.text:
            return title + count
        if len(box.label) > LONG_LABEL:
            return title + count + "<BR/>" + _esc(box.text)
        return title + _esc(box.sep) + _esc(box.text) + count

    def shape_under(self, box: Box) -> bool:
        mode = self.options.shapes
        if mode == "none" or box.symbol:
            return False
        if mode == "out" or box.kind == "io":
            return True
        # edge mode: shapes where they change; a fan-out shows its shape once, under the box
        return self.fanout.get(box.id, 0) > 1 and box.shape != box.in_shape

    def edge_attrs(self, edge: Edge, index: int) -> dict[str, str]:
        attrs = {"id": f"{self.prefix}e{index}"}
        src, dst = self.boxes[edge.src], self.boxes[edge.dst]
        labelled = (self.options.shapes == "edge" and self.fanout.get(edge.src, 0) == 1
                    and src.kind not in ("io", "merge") and dst.kind != "io"
                    and not (dst.kind == "merge" and not dst.symbol)  # a concat shows its sum
                    and src.shape != src.in_shape)
        if labelled:
            attrs["label"] = " " + fmt_shape(edge.shape)
        if edge.skip:
            attrs.update(weight="0", color="#888888")
        else:
            attrs["weight"] = "4"
        return attrs

    def add_legend(self, dot: graphviz.Digraph) -> None:
        used: list[Style] = []  # one row per colour, in the order the boxes first show it
        for box in self.view.boxes():
            if box.kind != "io" and not any(_same_entry(box.style, u) for u in used):
                used.append(box.style)
        marked = [status for status in HIGHLIGHTS if status in self.options.highlight.values()]
        if not used and not marked:
            return
        rows = []
        for style in used:
            rows.append(f'<TR><TD BGCOLOR="{_esc(style.fill)}" COLOR="{_esc(style.border)}" '
                        f'WIDTH="16" HEIGHT="10"></TD>'
                        f'<TD BORDER="0" ALIGN="LEFT">{_esc(style.legend)}</TD></TR>')
        for status in marked:
            fill, border = HIGHLIGHTS[status]
            rows.append(f'<TR><TD BGCOLOR="{fill}" COLOR="{border}" WIDTH="16" HEIGHT="10"></TD>'
                        f'<TD BORDER="0" ALIGN="LEFT">{_esc(status)}</TD></TR>')
        table = ('<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="3" CELLPADDING="2">'
                 + "".join(rows) + "</TABLE>>")
        dot.node("legend", label=table, shape="plaintext", style="", fontsize="9",
                 id=self.prefix + "legend")


def _same_entry(a: Style, b: Style) -> bool:
    """Two styles share a legend row when they look the same and have the same name."""
    return (a.legend, a.fill, a.border) == (b.legend, b.fill, b.border)


def _esc(text: str) -> str:
    """Spec text in an HTML-like label: escaped, and at most :data:`MAX_TEXT` characters."""
    return html.escape(_clip(text), quote=False)


def _clip(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis (Graphviz refuses a DOT token longer
    than 16,384 characters, and a box is no place for a name that long)."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def to_dot(view: View, id_prefix: str | None = None) -> str:
    """The view as DOT source; the same graph and options always give the same text.

    Every SVG id (graph, clusters, nodes, edges) starts with ``id_prefix`` (default: the network's
    name and ``-``) so that several diagrams can share one HTML page.
    """
    prefix = f"{_clip(view.name, MAX_ID)}-" if id_prefix is None else id_prefix
    return _DotWriter(view, re.sub(r"[^0-9A-Za-z_-]+", "_", prefix)).source()


def draw_graph(source: Graph | Analysis, **options: Any) -> str:
    """DOT source of the diagram of a graph or its analysis (keyword arguments: :class:`DrawOptions`)."""
    prefix = options.pop("id_prefix", None)
    return to_dot(build_view(source, DrawOptions(**options)), prefix)


# --- rendering -----------------------------------------------------------------------------------

def dot_program() -> str:
    """The path of Graphviz's ``dot``, or :class:`GraphvizMissing` saying how to install it."""
    path = shutil.which("dot")
    if path is None:
        raise GraphvizMissing(Diagnostic(
            "Graphviz is not installed: the `dot` program is not on PATH", None,
            expected="the `dot` program of Graphviz (https://graphviz.org/download/)",
            hint=INSTALL_HINT))
    return path


def render_bytes(source: str, fmt: str, *, timeout: float | None = LAYOUT_TIMEOUT,
                 view: View | None = None) -> bytes:
    """Run ``dot -T<fmt>`` on DOT source; ``fmt`` is ``svg``, ``png``, ``pdf`` or ``dot``.

    ``dot`` is killed after ``timeout`` seconds (None: no bound). A failure, a crash or the
    timeout is a :class:`LayoutError` saying what happened and what helps (for ``view``'s options
    when given).
    """
    if fmt == "dot":
        return source.encode("utf-8")
    if timeout is not None and not timeout > 0:
        raise UsageError(Diagnostic(f"--timeout {timeout}: not a time", None,
                                    expected="a number of seconds > 0", found=repr(timeout)))
    args = [dot_program(), f"-T{fmt}"]
    if fmt == "png":
        args.append(f"-Gdpi={PNG_DPI}")
    try:
        proc = subprocess.run(args, input=source.encode("utf-8"), capture_output=True,
                              check=False, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LayoutError(_layout_diagnostic(
            f"Graphviz did not lay out {_what(view)} within {_seconds(timeout)}; it was stopped",
            view, timed_out=True)) from None
    except OSError as error:
        raise LayoutError(_layout_diagnostic(f"could not run Graphviz's `dot`: {error.strerror}",
                                             view)) from None
    if proc.returncode != 0:
        how = (f"was killed by signal {-proc.returncode} (out of memory?)" if proc.returncode < 0
               else f"failed (exit code {proc.returncode})")
        said = " ".join(proc.stderr.decode("utf-8", "replace").split())
        raise LayoutError(_layout_diagnostic(
            f"Graphviz could not lay out {_what(view)}: dot -T{fmt} {how}", view,
            found=_clip(said, 300) or "no message from dot"))
    return proc.stdout


def _what(view: View | None) -> str:
    if view is None:
        return "the diagram"
    return f"the diagram of {_clip(view.name, 60)} ({len(view.boxes()):,} boxes, {len(view.edges):,} edges)"


def _seconds(timeout: float | None) -> str:
    return f"{timeout:g} s" if timeout is not None else "the time allowed"


def _layout_diagnostic(message: str, view: View | None, *, timed_out: bool = False,
                       found: str | None = None) -> Diagnostic:
    """What failed, and the options that give Graphviz less to do, given those already used."""
    options = view.options if view is not None else DrawOptions()
    helps = []
    if options.layout != "fast":
        helps.append("`--layout fast` (a quicker, less polished layout)")
    if not options.fold:
        helps.append("`--fold` (repeats and chains as one box)")
    if (options.depth is None or options.depth > 0) and (view is None or view.clusters()):
        helps.append("a lower `--depth` (0 draws one box per stage)")
    if options.rankdir in ("TB", "BT"):
        helps.append("`--rankdir LR`")
    if timed_out:
        helps.append("a longer `--timeout`")
    else:
        helps.append("shorter layer names")
    hint = ("draw less or differently: " + ", ".join(helps)
            + "; or write `-o FILE.dot` and lay it out with Graphviz yourself")
    return Diagnostic(message, None, found=found, hint=hint)


def render_svg(source: Graph | Analysis, *, inline: bool = False,
               timeout: float | None = LAYOUT_TIMEOUT, **options: Any) -> str:
    """The diagram as SVG text. ``inline=True`` drops the XML prologue, for embedding in HTML
    (ids start with ``id_prefix``, by default the network's name, so diagrams can share a page).
    ``dot`` runs at most ``timeout`` seconds (:func:`render_bytes`)."""
    prefix = options.pop("id_prefix", None)
    view = build_view(source, DrawOptions(**options))
    svg = render_bytes(to_dot(view, prefix), "svg", timeout=timeout, view=view).decode("utf-8")
    return svg[svg.index("<svg"):] if inline else svg


def output_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise UsageError(Diagnostic(f"-o {path}: unknown diagram format `{suffix or '(none)'}`", None,
                                    expected="a file ending in " + ", ".join(sorted(FORMATS)),
                                    found=repr(str(path))))
    return FORMATS[suffix]


def render(source: Graph | Analysis, path: str | Path, *, timeout: float | None = LAYOUT_TIMEOUT,
           **options: Any) -> View:
    """Draw a graph (or its analysis) to ``path``; the format follows the extension. ``dot`` runs
    at most ``timeout`` seconds; on any failure the file is left as it was. Returns the view."""
    fmt = output_format(path)
    if fmt != "dot":
        dot_program()
    prefix = options.pop("id_prefix", None)
    view = build_view(source, DrawOptions(**options))
    data = render_bytes(to_dot(view, prefix), fmt, timeout=timeout, view=view)
    write_output(path, data)
    return view
