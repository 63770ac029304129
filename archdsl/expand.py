"""Stage 4: expand the spec AST into the graph IR, inferring shapes as nodes are made.

Blocks, repeats, dense blocks, branches and expressions are unfolded into primitive-op
:class:`~archdsl.ir.Node` s. Shapes are inferred node by node (expressions may read the incoming
tensor's shape through ``in.c``), each by the op's own rule. A layer that fails records its
diagnostics and yields no tensor; layers that depend on it are skipped silently, so one run reports
every independent error. Resource limits (node count, repeat counts) stop expansion at once.
"""

from __future__ import annotations

import keyword
import math
import re
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from . import expr as expr_mod
from .errors import Collector, Diagnostic, Loc, SpecError, did_you_mean
from .expr import InputShape
from .ir import INPUT, Graph, Node, Scope
from .ops import REGISTRY, Attrs, OpError, Shape
from .parser import LAYER_NAME_RE, LAYER_NAME_RULE
from .spec import BlockDef, Call, Layer, Parallel, Repeat, Residual, Seq, Spec, Value, fits_type
from .yamlsrc import describe

__all__ = ["expand", "DEFAULT_MAX_NODES", "MAX_PARAMS", "ResourceError"]

DEFAULT_MAX_NODES = 200_000
MAX_DIM = 2**31 - 1
MAX_ELEMENTS = 2**48
MAX_PARAMS = 2**40  # parameters and buffers of the whole network (~1.1 trillion, 4.4 TB of float32)
WORK_PER_NODE = 4
MAX_NESTING = 100  # layers inside layers (the zoo needs at most 10)


class ResourceError(SpecError):
    """A limit was hit: expansion stops at once instead of collecting more errors."""


@dataclass
class Ctx:
    """Where a layer is being expanded: its naming scope, expression environment and block chain."""

    scope: Scope
    prefix: str
    env: dict[str, Any]
    chain: tuple[str, ...] = ()
    numbered: bool = False
    used: NameSet = field(default_factory=lambda: NameSet())
    locals: dict[str, str | None] = field(default_factory=dict)
    counter: list[int] = field(default_factory=lambda: [0])
    parent: "Ctx | None" = None
    block_input: str = INPUT

    def child(self, scope: Scope, prefix: str, *, numbered: bool, env: dict[str, Any] | None = None,
              chain: tuple[str, ...] | None = None, block_input: str | None = None) -> "Ctx":
        return Ctx(scope, prefix, self.env if env is None else env,
                   self.chain if chain is None else chain, numbered, parent=self,
                   block_input=self.block_input if block_input is None else block_input)


@dataclass(frozen=True)
class BlockBody:
    """The expansion of one block use, kept so that an identical use (the same block, arguments,
    input shape, spec parameters and enclosing repeat counts) is copied instead of expanded and
    checked again: nodes and scopes as they were made, under the first use's path ``path``.

    Everything is a snapshot of each node's and scope's fields (a later ``freeze:`` of the first
    use does not reach it; fields the IR gains are carried along); attributes and shapes are
    immutable and shared.
    """

    path: str  # the first use's scope path (its nodes are ``path.<name>``)
    input: str  # the node that fed the first use
    first_scope: int  # how many scopes the graph had when the body began (unnamed scopes' numbers)
    nodes: tuple[tuple[dict[str, Any], tuple[str, ...]], ...]  # (fields, chain inside the block)
    scopes: tuple[dict[str, Any], ...]  # fields
    mutable: tuple[tuple[str, ...], tuple[str, ...]]  # the fields holding dicts or lists: node, scope
    members: tuple[str, ...]  # the block scope's members
    output: str
    meta: dict[str, Any]  # the block scope's meta (its `let` values)
    work: int  # expansion steps the body took
    weights: int  # parameters and buffers of the body
    nesting: int  # how deep layers nested inside it, below the block use


_UNNAMED = re.compile(r"<([a-z]+)(\d+)>")


def _named(layer: Layer, name: str, loc: Loc | None) -> Layer:
    """``dataclasses.replace(layer, name=name, name_loc=loc)`` without its per-field work (the AST
    dataclasses have no ``__post_init__``): once per repeated layer."""
    new = object.__new__(type(layer))
    new.__dict__.update(vars(layer), name=name, name_loc=loc)
    return new


def _frozen(value: Any) -> Any:
    """A hashable key for a spec value that tells apart what Python's ``==`` does not
    (``True``/``1``/``1.0``, ``0.0``/``-0.0``)."""
    kind = type(value)
    if kind is list or kind is tuple:
        items = tuple(_frozen(v) for v in value)
        return None if None in items else (kind.__name__, items)
    if kind is float:
        return ("float", repr(value))
    if kind is bool or kind is int or kind is str or value is None:
        return (kind.__name__, value)
    return None  # anything else (a subclass: symbolic's traced numbers): not cached


class Expander:
    #: identical block uses are copied from the first (:class:`BlockBody`); a subclass that gives
    #: values meaning beyond their concrete value (``symbolic``'s traced numbers) turns it off
    reuse_blocks = True

    def __init__(self, spec: Spec, params: dict[str, Any], input_shape: Shape, max_nodes: int,
                 block_cache: dict[Any, BlockBody] | None = None):
        self.spec = spec
        self.max_nodes = max_nodes
        # Work (layer expansions and node inputs) is bounded too: layers skipped by `when:`,
        # identities and blocks that only use other blocks make no nodes, but cost time.
        self.max_work = WORK_PER_NODE * max_nodes + 10_000
        self.work = 0
        self.repeat_factor = 1  # product of the counts of the enclosing repeats
        self.weights = 0  # parameters and buffers so far (MAX_PARAMS)
        self.nesting: list[Layer] = []  # the layers being expanded, outermost first
        self.later: list[dict[str, Loc | None]] = []  # names of the layers still to come, per sequence
        self.errors = Collector()
        # (block, arguments, input shape, parameters, repeat factor) -> its first expansion; may be
        # shared by the expansions of one parsed spec (a sweep): keys hold everything a body reads
        self.block_cache: dict[Any, BlockBody] = {} if block_cache is None else block_cache
        self.param_keys: dict[str, tuple[Any, ...]] = {}  # block -> the spec parameters it reads, as a key
        self.deepest = 0  # the deepest nesting reached (what a copied body must still respect)
        self.reach = 0  # the fewest enclosing blocks of a layer `from:` found (see record_block)
        self.graph = Graph(name=spec.name, file=spec.file, input_shape=input_shape,
                           params=dict(params), spec=spec, block_names=tuple(spec.blocks))

    # --- entry --------------------------------------------------------------------------------
    def run(self) -> Graph:
        g = self.graph
        self.check_shape(g.input_shape, INPUT, self.spec.input_loc)
        g.add_node(Node(INPUT, INPUT, Attrs({}), (), (), g.input_shape, "", self.spec.input_loc))
        top = Scope("", "network", self.spec.loc, in_shape=g.input_shape)
        g.scopes[""] = top
        env = {**g.params, "in": InputShape.of(g.input_shape)}
        ctx = Ctx(top, "", env)
        self.run_checks(self.spec.checks, env, "the spec")
        self.errors.raise_if_errors()
        out = self.expand(self.spec.network, INPUT, ctx)
        if out is not None:
            g.outputs = {"out": out, **g.outputs}
            g.output_locs.setdefault("out", self.spec.network.loc)
            top.output, top.out_shape = out, g.nodes[out].shape
        self.errors.raise_if_errors()
        g.warnings.extend(self.dead_branch_warnings())
        return g

    # --- layers --------------------------------------------------------------------------------
    def expand(self, layer: Layer, x: str | None, ctx: Ctx) -> str | None:
        """Expand one layer fed by ``x``; returns the node holding its output, or None on error."""
        self.spend(1, layer.loc)
        if len(self.nesting) >= MAX_NESTING:  # blocks using blocks using blocks ... (Python's stack)
            raise ResourceError(Diagnostic(
                f"layers are nested more than {MAX_NESTING} deep", layer.loc,
                found=f"{len(ctx.chain)} blocks inside each other here",
                hint="blocks may use other blocks, but not hundreds deep").with_chain(ctx.chain[:1]))
        self.nesting.append(layer)
        self.deepest = max(self.deepest, len(self.nesting))
        try:
            return self._expand(layer, x, ctx)
        except ResourceError:
            raise
        except SpecError as error:
            for diag in error.diagnostics:
                self.errors.add(diag.with_chain(ctx.chain))
            if layer.name:
                ctx.locals[layer.name] = None
            return None
        finally:
            self.nesting.pop()

    def spend(self, work: int, loc: Loc | None) -> None:
        self.work += work
        if self.work > self.max_work:
            raise ResourceError(Diagnostic(
                f"expanding the network takes more than {self.max_work:,} steps", loc,
                expected=f"at most {self.max_nodes:,} nodes, built in at most {WORK_PER_NODE} steps "
                         "each (a layer, an input of a node, or a `let` value or block argument "
                         "per 100 characters)",
                hint="layers skipped by `when:` and blocks that only use other blocks count too; "
                     "check repeat counts and dense blocks, or raise the limit with --max-nodes"))

    def spend_value(self, value: Any, loc: Loc | None) -> None:
        """A `let` value or block argument costs a step, and a step per 100 characters or items
        (strings and lists are copied into every use)."""
        self.spend(1 + expr_mod.value_size(value) // 100, loc)

    def _expand(self, layer: Layer, x: str | None, ctx: Ctx) -> str | None:
        meta = layer.meta
        if meta.when is not None and not self.truth(meta.when, ctx.env, "when"):
            if layer.name:
                ctx.locals[layer.name] = x
            return x
        inputs = [x] if meta.inputs is None else [self.lookup(n, loc, ctx, layer.name)
                                                  for n, loc in meta.inputs]
        if any(i is None for i in inputs):
            return None
        first = len(self.graph.nodes)
        if isinstance(layer, Call):
            out = self.expand_call(layer, inputs, ctx)
        elif isinstance(layer, Seq):
            out = self.expand_seq(layer, self.single(inputs, layer), ctx)
        elif isinstance(layer, Parallel):
            out = self.expand_parallel(layer, self.single(inputs, layer), ctx)
        elif isinstance(layer, Residual):
            out = self.expand_residual(layer, self.single(inputs, layer), ctx)
        elif isinstance(layer, Repeat):
            out = self.expand_repeat(layer, self.single(inputs, layer), ctx)
        else:  # pragma: no cover - the parser makes only these
            raise AssertionError(f"unknown layer {layer!r}")
        if meta.freeze:
            for node in list(self.graph.nodes.values())[first:]:
                node.freeze = True
        if layer.name:
            ctx.locals[layer.name] = out
        if meta.output is not None and out is not None:
            name, loc = meta.output
            if name in self.graph.outputs or name == "out":
                raise SpecError(Diagnostic(f"output `{name}` is defined twice", loc,
                                           notes=(("first defined here", self.graph.output_locs.get(name)),)))
            self.graph.outputs[name] = out
            self.graph.output_locs[name] = loc
            return x  # a side output does not feed the next layer
        return out

    def single(self, inputs: list[str], layer: Layer) -> str:
        if len(inputs) != 1:
            raise SpecError(Diagnostic("this construct takes one input", layer.loc,
                                       found=f"{len(inputs)} inputs in `from:`",
                                       hint="merge the inputs first with `{concat: {}, from: [...]}`"))
        return inputs[0]

    def block_inputs(self, call: Call, inputs: list[str]) -> list[str]:
        """The inputs of a block use: as many as the block declares (``inputs: [low, high]``),
        given in that order by ``from:``."""
        block = self.spec.blocks[call.target]
        if block.input_count == 1 and len(inputs) != 1:
            raise SpecError(Diagnostic(
                f"block `{block.name}` takes one input", call.meta.inputs[0][1], code="graph",
                found=f"{len(inputs)} inputs in `from:`",
                notes=((f"block `{block.name}` is defined here", block.loc),),
                hint="merge them first with `{concat: {}, from: [...]}`, or declare the block's "
                     "inputs by name (`inputs: [a, b]`) and read each with `from:`"))
        if block.input_count == 1:
            return inputs
        if len(inputs) != block.input_count:
            names = ", ".join(name for name, _ in block.inputs)
            where = call.meta.inputs[0][1] if call.meta.inputs else call.loc
            given = "the previous layer's output" if call.meta.inputs is None else "in `from:`"
            raise SpecError(Diagnostic(
                f"block `{block.name}` takes {block.input_count} inputs ({names})", where,
                expected=f"{block.input_count} layer names in `from:`, in the order {names}",
                found=f"{len(inputs)} ({given})", code="graph",
                notes=(("its inputs are declared here", block.inputs[0][1]),),
                hint=f"give them as `from: [{names}]` with the names of earlier layers"))
        return inputs

    def lookup(self, name: str, loc: Loc, ctx: Ctx, current: str | None = None) -> str | None:
        """Resolve a `from:` name in this scope or an enclosing one (``current``: the layer's name)."""
        if name == INPUT:
            return ctx.block_input
        scope: Ctx | None = ctx
        known: list[str] = []
        while scope is not None:
            if name in scope.locals:
                # (a layer outside the enclosing blocks: those blocks are not copied)
                self.reach = min(self.reach, len(scope.chain))
                return scope.locals[name]
            known.extend(scope.locals)
            scope = scope.parent
        head, dot, member = name.partition(".")
        if dot and any(head in s.locals for s in _chain(ctx)):
            return self.member(head, member, loc, ctx)
        if name == current:
            raise SpecError(Diagnostic(f"`{name}` takes its own output as input (a cycle)", loc,
                                       expected="a layer defined earlier in this or an enclosing scope, "
                                                "or `input`", found=f"`from: {name}`", code="graph",
                                       hint="a layer's inputs must come before it; use `repeat:` "
                                            "to chain copies"))
        for later in reversed(self.later):
            if name in later:
                raise SpecError(Diagnostic(
                    f"`from:` names `{name}`, which comes later (a cycle)", loc, code="graph",
                    expected="a layer defined earlier in this or an enclosing scope, or `input`",
                    found=f"`{name}`", notes=((f"`{name}` is defined here", later[name]),),
                    hint="a layer's inputs must come before it: reorder the layers"))
        raise SpecError(Diagnostic(f"`from:` names an undefined layer `{name}`", loc,
                                   expected="a layer defined earlier in this or an enclosing scope, or `input`",
                                   found=f"`{name}`", hint=did_you_mean(name, [*known, INPUT])))

    def member(self, head: str, member: str, loc: Loc, ctx: Ctx) -> str | None:
        """``from: layer1.conv2``: the output of a direct member of the named sequence ``layer1``
        (a layer of this or an enclosing scope), read from outside it."""
        owner = next(s for s in _chain(ctx) if head in s.locals)
        self.reach = min(self.reach, len(owner.chain))
        if owner.locals[head] is None:  # (it failed: its errors are reported)
            return None
        seq = self.graph.scopes.get(owner.prefix + head)
        if seq is None or seq.kind != "seq" or not seq.named:
            what = "is skipped by its `when:`" if seq is None else f"is a {seq.kind}"
            raise SpecError(Diagnostic(
                f"`from: {head}.{member}` reads inside `{head}`, which {what}", loc, code="graph",
                expected="a member of a named sequence (`layer1: [conv1: ..., ...]`)",
                found=f"`{head}`: {'no layers' if seq is None else 'a ' + seq.kind}",
                hint=f"read `{head}` itself, or write its layers as a named sequence "
                     f"(`{head}: [...]`) to read one of them"))
        path = f"{seq.path}.{member}"
        if path not in seq.members:
            names = [f"{head}.{m[len(seq.path) + 1:]}" for m in seq.members
                     if m.startswith(seq.path + ".")]
            raise SpecError(Diagnostic(
                f"`from:` names `{head}.{member}`, which is no member of the sequence `{head}`",
                loc, code="graph", expected="one of " + ", ".join(f"`{n}`" for n in names),
                found=f"`{head}.{member}`", hint=did_you_mean(f"{head}.{member}", names)))
        scope = self.graph.scopes.get(path)
        return scope.output if scope is not None else path

    # --- naming --------------------------------------------------------------------------------
    def auto_name(self, base: str, ctx: Ctx, structural: bool = False) -> str:
        return auto_name(base, ctx, structural)

    def claim(self, name: str, ctx: Ctx, loc: Loc | None) -> str:
        if name in ctx.used:
            raise SpecError(Diagnostic(f"two layers are named `{name}` in one scope", loc,
                                       code="graph",
                                       hint="give each layer of a scope its own name"))
        clash = _path_clash(name, ctx.used)
        if clash is not None:
            parent, child = sorted((name, clash), key=len)
            raise SpecError(Diagnostic(
                f"`{parent}` names a layer and also the container of `{child}`", loc, code="graph",
                expected="a dotted name (`paths.0`) whose container (`paths`) names no layer",
                found=f"`{name}` beside `{clash}` in one scope",
                hint="a layer cannot hold other layers; rename one of them"))
        ctx.used.add(name)
        if "." in name and isinstance(ctx.used, NameSet):
            ctx.used.dotted.add(name)
        return name

    def layer_name(self, layer: Layer, default: str, ctx: Ctx, structural: bool = False) -> str:
        if layer.name:
            if ctx.numbered:
                ctx.counter[0] += 1
            return self.claim(layer.name, ctx, layer.name_loc)
        return self.auto_name(default, ctx, structural)

    def open_scope(self, kind: str, name: str, layer: Layer, ctx: Ctx, x: str, **kw: Any) -> Scope:
        path = ctx.prefix + name
        scope = Scope(path, kind, layer.loc, parent=ctx.scope.path, input=x,
                      in_shape=self.graph.nodes[x].shape, name_loc=layer.name_loc, **kw)
        self.graph.scopes[path] = scope
        ctx.scope.members.append(path)
        return scope

    def close_scope(self, scope: Scope, out: str | None) -> str | None:
        if out is not None:
            scope.output, scope.out_shape = out, self.graph.nodes[out].shape
        return out

    # --- calls -----------------------------------------------------------------------------------
    def expand_call(self, call: Call, inputs: list[str], ctx: Ctx) -> str | None:
        if call.is_block:
            x, *more = self.block_inputs(call, inputs)
            return self.expand_block(call, x, ctx, tuple(more))
        op = REGISTRY[call.target]
        if op.passthrough and not call.name and len(inputs) == 1 and not call.args \
                and call.meta.inputs is None and call.meta.output is None:
            return inputs[0]  # an unnamed identity makes no node: the previous output goes on
        # (with `from:` or `output:` it is a node of its own: what it reads is its input, and
        # what `output:` names is its value, not the layer before it)
        raw = {key: self.eval_arg(value, ctx.env, _words(op, key)) for key, value in call.args.items()}
        name = self.layer_name(call, call.target, ctx)
        return self.add_op(op.name, raw, inputs, ctx, name, call.loc, call.arg_locs)

    def add_op(self, op_name: str, raw: dict[str, Any], inputs: list[str], ctx: Ctx, name: str,
               loc: Loc | None, arg_locs: dict[str, Loc] | None = None) -> str:
        op = REGISTRY[op_name]
        arg_locs = arg_locs or {}
        self.spend(len(inputs), loc)
        in_shapes = [self.graph.nodes[i].shape for i in inputs]
        if len(inputs) < op.min_inputs or (op.max_inputs is not None and len(inputs) > op.max_inputs):
            want = (f"{op.min_inputs}" if op.max_inputs == op.min_inputs
                    else f"at least {op.min_inputs}")
            raise SpecError(Diagnostic(f"`{op_name}` takes {want} input(s)", loc,
                                       found=f"{len(inputs)}", code="graph",
                                       hint="list its inputs with `from: [a, b]`" if op.min_inputs > 1 else None))
        try:
            values = op.finalize(op.resolve(raw), in_shapes)
            attrs = Attrs(values)
            shape = tuple(op.shape(attrs, in_shapes))
        except OpError as err:
            raise SpecError(self.op_diagnostic(err, op_name, name, ctx, loc, arg_locs, inputs)) from None
        self.check_shape(shape, ctx.prefix + name, loc)
        self.charge_weights(op, attrs, in_shapes, shape, ctx.prefix + name, loc)
        node = Node(ctx.prefix + name, op_name, attrs, tuple(inputs), tuple(in_shapes), shape,
                    ctx.scope.path, loc, ctx.chain, dict(arg_locs))
        if len(self.graph.nodes) >= self.max_nodes:
            raise ResourceError(Diagnostic(
                f"the network expands to more than {self.max_nodes:,} nodes", loc,
                hint="check repeat counts, or raise the limit with --max-nodes"))
        self.graph.add_node(node)
        ctx.scope.members.append(node.name)
        return node.name

    def op_diagnostic(self, err: OpError, op_name: str, name: str, ctx: Ctx, loc: Loc | None,
                      arg_locs: dict[str, Loc], inputs: list[str]) -> Diagnostic:
        where = arg_locs.get(err.attr, loc) if err.attr else loc
        notes = []
        if err.input_index is not None or len(inputs) > 1:
            for i, src in enumerate(inputs):
                node = self.graph.nodes[src]
                what = "the input of the enclosing block" if src == INPUT or src == ctx.block_input \
                    else f"`{src}`"
                notes.append((f"input {i} ({_fmt_shape(node.shape)}) comes from {what}", node.loc))
        elif inputs:
            src = self.graph.nodes[inputs[0]]
            notes.append((f"its input ({_fmt_shape(src.shape)}) comes from `{src.name}`", src.loc))
        return Diagnostic(f"`{ctx.prefix + name}` ({op_name}): {err.message}", where,
                          expected=err.expected, found=err.found, hint=err.hint,
                          notes=tuple(notes), code="shape" if err.attr is None else "attr")

    def check_shape(self, shape: Shape, name: str, loc: Loc | None) -> None:
        if any(d > MAX_DIM for d in shape):
            raise ResourceError(Diagnostic(f"`{name}`: the shape overflows", loc,
                                           found=_fmt_shape(shape),
                                           expected=f"each size at most {MAX_DIM:,}"))
        if math.prod(shape) > MAX_ELEMENTS:
            raise ResourceError(Diagnostic(f"`{name}`: the shape overflows", loc,
                                           found=f"{_fmt_shape(shape)} = {math.prod(shape):,} elements",
                                           expected=f"at most 2**48 = {MAX_ELEMENTS:,} elements per sample"))

    def charge_weights(self, op: Any, attrs: Attrs, in_shapes: list[Shape], shape: Shape, name: str,
                       loc: Loc | None) -> None:
        """Refuse a network whose weights no machine holds (a 2**31 x 2**31 linear layer) here,
        located, rather than in PyTorch's allocator."""
        count = op.params(attrs, in_shapes, shape) + op.buffers(attrs, in_shapes, shape)
        self.weights += count
        if self.weights > MAX_PARAMS:
            raise ResourceError(Diagnostic(
                f"`{name}`: the network has too many parameters", loc,
                found=f"{count:,} in this layer, {self.weights:,} so far",
                expected=f"at most 2**40 = {MAX_PARAMS:,} parameters and buffers in all",
                hint="check the sizes (`out`, the input shape); no PyTorch model this large fits "
                     "in memory"))

    # --- blocks ----------------------------------------------------------------------------------
    def expand_block(self, call: Call, x: str, ctx: Ctx, more: tuple[str, ...] = ()) -> str | None:
        """A block use fed by ``x`` (and ``more``: the other inputs of a block that declares
        several; such a use reads tensors from outside its body, so it is never copied)."""
        block = self.spec.blocks[call.target]
        args = self.block_args(block, call, ctx)
        name = self.layer_name(call, call.target, ctx)
        scope = self.open_scope("block", name, call, ctx, x, block=block.name, args=dict(args))
        if more:
            scope.meta["inputs"] = [x, *more]
        in_shape = self.graph.nodes[x].shape
        link = f"block `{block.name}` ({block.loc}) used by `{scope.path}` ({call.loc})"
        chain = (link, *ctx.chain)
        key = self.block_key(block, args, in_shape) if not more else None
        body = self.block_cache.get(key) if key is not None else None
        if body is not None and self.copy_fits(body):
            return self.copy_block(body, scope, x, chain)
        marks = (len(self.graph.nodes), len(self.graph.scopes), self.work, self.weights,
                 len(self.errors.diagnostics), len(self.graph.outputs), self.deepest, self.reach)
        self.deepest, self.reach = len(self.nesting), len(chain)
        try:
            out = self.expand_block_body(block, scope, x, ctx, in_shape, args, chain, more)
        finally:
            deepest, self.deepest = self.deepest, max(marks[6], self.deepest)
            reach, self.reach = self.reach, min(marks[7], self.reach)
        if key is not None and out is not None and reach >= len(chain):
            body = self.record_block(scope, x, out, marks, deepest - len(self.nesting), len(chain))
            if body is not None:
                self.block_cache[key] = body
        return out

    def expand_block_body(self, block: BlockDef, scope: Scope, x: str, ctx: Ctx, in_shape: Shape,
                          args: dict[str, Any], chain: tuple[str, ...],
                          more: tuple[str, ...] = ()) -> str | None:
        env = {**self.graph.params, **args, "in": InputShape.of(in_shape)}
        inner = ctx.child(scope, scope.path + ".", numbered=False, env=env, chain=chain,
                          block_input=x)
        inner.locals.update(zip((name for name, _ in block.inputs), (x, *more)))
        for key, value in block.lets:
            env[key] = self.eval_value(value, env)
            self.spend_value(env[key], value.loc)
        scope.meta["lets"] = {key: env[key] for key, _ in block.lets}
        self.run_checks(block.checks, env, f"block `{block.name}`")
        out = self.expand(block.body, x, inner)
        return self.close_scope(scope, out)

    # --- identical block uses ----------------------------------------------------------------
    def block_key(self, block: BlockDef, args: dict[str, Any], in_shape: Shape) -> Any:
        """What a block's body depends on: its definition, arguments, input shape, the spec
        parameters (its environment) and the enclosing repeats' counts (its limits); None when
        it is not to be reused."""
        if not self.reuse_blocks:
            return None
        values = tuple((k, _frozen(v)) for k, v in args.items())
        params = self.param_keys.get(block.name)
        if params is None:  # (the spec parameters do not change during one expansion)
            reads = self.block_cache.get(("reads", block.name))
            if reads is None:
                reads = self.block_cache[("reads", block.name)] = block_reads(self.spec, block.name)
            params = self.param_keys[block.name] = tuple(
                (k, _frozen(v)) for k, v in self.graph.params.items() if k in reads)
        if any(v is None for _, v in values + params) or any(type(d) is not int for d in in_shape):
            return None
        return ("body", block.name, id(block), values, in_shape, params, self.repeat_factor)

    def record_block(self, scope: Scope, x: str, out: str, marks: tuple[int, ...], nesting: int,
                     outer_chain: int) -> BlockBody | None:
        """The snapshot of a block use just expanded, or None when it cannot be copied: it had
        errors, declared a network output, or reads a tensor from outside (``from:`` a layer of
        an enclosing scope: the caller has checked that no name was looked up there)."""
        nodes0, scopes0, work0, weights0, errors0, outputs0 = marks[:6]
        if len(self.errors.diagnostics) != errors0 or len(self.graph.outputs) != outputs0:
            return None
        prefix = scope.path + "."
        names = list(self.graph.nodes)[nodes0:]
        inside = set(names)
        nodes = []
        for name in names:
            node = self.graph.nodes[name]
            if not name.startswith(prefix) or any(i != x and i not in inside for i in node.inputs):
                return None
            nodes.append((_snapshot(node), node.chain[:len(node.chain) - outer_chain]))
        inside.add(x)
        if out not in inside:
            return None
        scopes = []
        for path in list(self.graph.scopes)[scopes0:]:
            s = self.graph.scopes[path]
            if s.input not in inside or s.output not in inside:
                return None
            scopes.append(_snapshot(s))
        mutable = tuple(tuple(k for k, v in vars(item).items() if type(v) in (dict, list))
                        for item in (self.graph.nodes[names[0]] if names else None, scope)
                        if item is not None)
        return BlockBody(scope.path, x, scopes0, tuple(nodes), tuple(scopes),
                         (mutable[0] if names else (), mutable[-1]), tuple(scope.members),
                         out, dict(scope.meta), self.work - work0, self.weights - weights0, nesting)

    def copy_fits(self, body: BlockBody) -> bool:
        """Does a copy stay within every limit? If not, the use is expanded again and fails
        where the limit is reached, as it would have without the copy."""
        return (self.work + body.work <= self.max_work
                and self.weights + body.weights <= MAX_PARAMS
                and len(self.graph.nodes) + len(body.nodes) <= self.max_nodes
                and len(self.nesting) + body.nesting < MAX_NESTING)

    def copy_block(self, body: BlockBody, scope: Scope, x: str, chain: tuple[str, ...]) -> str:
        """Add a copy of ``body`` as the block use ``scope`` fed by ``x``: every name and path
        moved from the first use's path to this one, unnamed scopes numbered as an expansion
        would number them here."""
        old, new = body.path, scope.path
        cut = len(old)
        shift = len(self.graph.scopes) - body.first_scope
        graph = self.graph

        def renumber(match: re.Match[str]) -> str:
            return f"<{match.group(1)}{int(match.group(2)) + shift}>"

        names: dict[str, str] = {body.input: x, old: new}
        for fields_ in body.scopes:
            path = fields_["path"]
            names[path] = new + _UNNAMED.sub(renumber, path[cut:]) if "<" in path else new + path[cut:]
        for fields_, _ in body.nodes:
            names[fields_["name"]] = new + fields_["name"][cut:]
        used_by = "used by `" + old
        node_mutable, scope_mutable = body.mutable
        for fields_ in body.scopes:
            path = names[fields_["path"]]
            graph.scopes[path] = _copied(Scope, fields_, scope_mutable, path=path,
                                         parent=names[fields_["parent"]],
                                         members=[names[m] for m in fields_["members"]],
                                         input=names[fields_["input"]],
                                         output=names[fields_["output"]],
                                         meta=_renamed(fields_["meta"], names))
        # (the nodes as _copied and Graph.add_node make them, written out: 7 per block use)
        table, readers, new_object = graph.nodes, graph.readers, object.__new__
        for fields_, inner_chain in body.nodes:
            if inner_chain:
                inner_chain = tuple(link.replace(used_by, "used by `" + new, 1)
                                    for link in inner_chain)
            values = fields_.copy()
            for key in node_mutable:
                values[key] = values[key].copy()
            name = values["name"] = names[fields_["name"]]
            inputs = values["inputs"] = tuple([names[i] for i in fields_["inputs"]])
            values["scope"] = names[fields_["scope"]]
            values["chain"] = inner_chain + chain
            node = new_object(Node)
            node.__dict__ = values
            if graph._nx is not None:
                graph.add_node(node)
                continue
            table[name] = node
            if name not in readers:
                readers[name] = {}
            for src in inputs:
                readers[src][name] = None  # (every input is x or a node copied before)
        scope.members.extend(names[m] for m in body.members)
        scope.meta.update(_renamed(body.meta, names))
        self.work += body.work
        self.weights += body.weights
        return self.close_scope(scope, names[body.output])

    def block_args(self, block: BlockDef, call: Call, ctx: Ctx) -> dict[str, Any]:
        args: dict[str, Any] = {}
        for key, value in call.args.items():
            if key not in block.params:
                raise SpecError(Diagnostic(
                    f"block `{block.name}` has no parameter `{key}`", call.arg_locs.get(key, call.loc),
                    expected="one of " + ", ".join(f"`{p}`" for p in block.params) if block.params
                    else "no arguments", found=f"`{key}`", hint=did_you_mean(key, block.params)))
            decl = block.params[key]
            words = None if decl.type != "str" else _ANY_WORD
            args[key] = self.check_type(self.eval_arg(value, ctx.env, words), decl.type, key, value.loc,
                                        f"parameter `{key}` of block `{block.name}`")
            self.spend_value(args[key], value.loc)
            if decl.choices and args[key] not in decl.choices:
                raise SpecError(Diagnostic(
                    f"parameter `{key}` of block `{block.name}` is not one of its allowed values",
                    value.loc, expected=" or ".join(repr(c) for c in decl.choices),
                    found=describe(args[key]),
                    hint=did_you_mean(str(args[key]), [str(c) for c in decl.choices])))
        for key, decl in block.params.items():
            if key not in args:
                if decl.required:
                    raise SpecError(Diagnostic(
                        f"block `{block.name}` needs the parameter `{key}`", call.loc,
                        expected=f"`{key}: <{decl.type}>` in the arguments",
                        hint=f"declared at {decl.loc}"))
                args[key] = decl.default
        return args

    @staticmethod
    def check_type(value: Any, type_name: str, key: str, loc: Loc, what: str) -> Any:
        if not fits_type(value, type_name):
            expected = {"int": "an int", "pair": "an int or [h, w]"}.get(type_name, f"a {type_name}")
            raise SpecError(Diagnostic(f"{what} has the wrong type", loc,
                                       expected=expected, found=describe(value)))
        return float(value) if type_name == "float" else value

    # --- constructs ------------------------------------------------------------------------------
    def expand_seq(self, seq: Seq, x: str, ctx: Ctx) -> str | None:
        if seq.name:
            name = self.layer_name(seq, "seq", ctx)
            scope = self.open_scope("seq", name, seq, ctx, x)
            inner = ctx.child(scope, scope.path + ".", numbered=True)
        else:
            scope, inner = None, ctx
        out: str | None = x
        self.later.append({item.name: item.name_loc for item in seq.items if item.name})
        try:
            for item in seq.items:
                if out is None:
                    break
                self.later[-1].pop(item.name or "", None)
                out = self.expand(item, out, inner)
        finally:
            self.later.pop()
        return self.close_scope(scope, out) if scope else out

    def expand_parallel(self, par: Parallel, x: str, ctx: Ctx) -> str | None:
        scope, inner = self.construct_scope("parallel", par, ctx, x)
        scope.meta["merge"] = par.merge
        live = [k for k, branch in enumerate(par.branches)
                if self.branch_live(str(k), branch, inner)]
        if not live:
            return self.close_scope(scope, x)
        outs = [self.expand_part(str(k), par.branches[k], x, inner) for k in live]
        if any(o is None for o in outs):
            return None
        if len(outs) == 1:
            merged = outs[0]
        else:
            merged = self.merge_op(par.merge, outs, inner, par.merge_loc or par.loc)
        scope.meta["merge_node"] = merged
        scope.meta["branch_outputs"] = outs
        if par.after is not None:
            merged = self.expand_part("after", par.after, merged, inner)
        return self.close_scope(scope, merged)

    def branch_live(self, name: str, branch: Layer, ctx: Ctx) -> bool:
        """A parallel branch (its part ``name``, its index) whose `when:` is false is dropped (it
        is not an identity branch)."""
        return branch.meta.when is None or self.truth(branch.meta.when, ctx.env, "when")

    def expand_residual(self, res: Residual, x: str, ctx: Ctx) -> str | None:
        scope, inner = self.construct_scope("residual", res, ctx, x)
        body = self.expand_part("body", res.body, x, inner)
        shortcut = x if res.shortcut is None else self.expand_part("shortcut", res.shortcut, x, inner)
        if body is None or shortcut is None:
            return None
        connect = res.connect is None or self.truth(res.connect, inner.env, "connect")
        scope.meta["connect"] = connect
        scope.meta["body_output"] = body
        scope.meta["shortcut_output"] = shortcut
        out = body
        if connect:
            out = self.merge_op("add", [body, shortcut], inner, res.loc)
        if res.after is not None:
            out = self.expand_part("after", res.after, out, inner)
        return self.close_scope(scope, out)

    def expand_part(self, name: str, layer: Layer, x: str, ctx: Ctx) -> str | None:
        """One part of the construct whose scope is ``ctx.scope``: a residual's ``body``,
        ``shortcut`` or ``after``, a parallel's branch (by its index) or ``after``, a repeat's
        or dense block's copy (by its index) (the template expander records which members each
        part made: ``Scope.meta["parts"]``)."""
        return self.expand(layer, x, ctx)

    def merge_op(self, op_name: str, inputs: list[str], ctx: Ctx, loc: Loc | None) -> str:
        """A merge of the construct whose scope is ``ctx.scope`` (a residual's ``add``, a
        parallel's ``add``/``concat``/``mul``, a dense block's ``concat`` of its input and
        copies so far, before each copy after the first and at its end), named as its op
        names its nodes."""
        name = self.auto_name(REGISTRY[op_name].node_name or op_name, ctx, structural=True)
        return self.add_op(op_name, {}, inputs, ctx, name, loc)

    def construct_scope(self, kind: str, layer: Layer, ctx: Ctx, x: str) -> tuple[Scope, Ctx]:
        """Named constructs open a naming scope; unnamed ones record a scope but share names."""
        if layer.name:
            name = self.layer_name(layer, kind, ctx)
            scope = self.open_scope(kind, name, layer, ctx, x)
            return scope, ctx.child(scope, scope.path + ".", numbered=False)
        path = f"{ctx.prefix}<{kind}{len(self.graph.scopes)}>"
        scope = Scope(path, kind, layer.loc, parent=ctx.scope.path, input=x,
                      in_shape=self.graph.nodes[x].shape, named=False)
        self.graph.scopes[path] = scope
        ctx.scope.members.append(path)
        inner = Ctx(scope, ctx.prefix, ctx.env, ctx.chain, ctx.numbered, ctx.used, ctx.locals,
                    ctx.counter, ctx.parent, ctx.block_input)
        return scope, inner

    def expand_repeat(self, rep: Repeat, x: str, ctx: Ctx) -> str | None:
        count = self.eval_value(rep.count, ctx.env)
        head = "dense" if rep.dense else "repeat"
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise SpecError(Diagnostic(f"`{head}` needs a count", rep.count.loc,
                                       expected="a whole number >= 0", found=describe(count)))
        if count > self.max_nodes:
            raise ResourceError(Diagnostic(f"`{head}: {count:,}` exceeds the node limit", rep.count.loc,
                                           expected=f"at most {self.max_nodes:,} nodes in all",
                                           hint="raise the limit with --max-nodes if you mean it"))
        if count * self.repeat_factor > self.max_nodes:
            raise ResourceError(Diagnostic(
                f"`{head}: {count:,}` inside repeats of {self.repeat_factor:,} copies exceeds the node "
                "limit", rep.count.loc, expected=f"at most {self.max_nodes:,} nodes in all",
                found=f"{count * self.repeat_factor:,} copies",
                hint="raise the limit with --max-nodes if you mean it"))
        links = count * (count + 1) // 2 * self.repeat_factor
        if rep.dense and links > self.max_work:
            raise ResourceError(Diagnostic(
                f"`dense: {count:,}` makes too many connections", rep.count.loc,
                expected=f"at most {self.max_work:,} node inputs in all",
                found=f"{links:,} inputs to its concatenations",
                hint="each layer of a dense block reads every earlier one; "
                     "raise the limit with --max-nodes if you mean it"))
        self.repeat_factor *= max(1, count)
        try:
            return self.expand_copies(rep, count, head, x, ctx)
        finally:
            self.repeat_factor //= max(1, count)

    def expand_copies(self, rep: Repeat, count: int, head: str, x: str, ctx: Ctx) -> str | None:
        if rep.name:
            name = self.layer_name(rep, head, ctx)
            scope = self.open_scope("dense" if rep.dense else "repeat", name, rep, ctx, x)
            inner = ctx.child(scope, scope.path + ".", numbered=False)
        elif rep.dense:
            scope, inner = self.construct_scope("dense", rep, ctx, x)
        else:
            scope, inner = None, ctx
        if scope is not None:
            scope.meta["count"] = count
        features = [x]
        out: str | None = x
        for i in range(count):
            env = {**inner.env, "i": i}
            child_ctx = Ctx(inner.scope, inner.prefix, env, inner.chain, inner.numbered, inner.used,
                            inner.locals, inner.counter, inner.parent, inner.block_input)
            layer = rep.layer
            if rep.name_template is not None:
                layer = _named(layer, self.template(rep.name_template, env), rep.name_template.loc)
            elif rep.name:
                layer = _named(layer, str(i), None)
            if rep.dense and i > 0:
                out = self.merge_op("concat", list(features), child_ctx, rep.loc)
            out = self.expand_part(str(i), layer, out, child_ctx)
            if out is None:
                return None
            features.append(out)
        if rep.dense and count > 0:
            out = self.merge_op("concat", list(features), inner, rep.loc)
        return self.close_scope(scope, out) if scope else out

    def template(self, tmpl: Value, env: dict[str, Any]) -> str:
        parts = []
        for part in tmpl.items or ():
            parts.append(str(self.eval_value(part, env)) if part.is_expr else str(part.literal))
        name = "".join(parts)
        if not LAYER_NAME_RE.match(name) or keyword.iskeyword(name) or name in (INPUT, "in", "i"):
            shown = name.encode("unicode_escape").decode("ascii")[:60]
            raise SpecError(Diagnostic(f"the name template makes `{shown}`, which cannot name a layer",
                                       tmpl.loc, found=f"`{shown}`",
                                       expected=LAYER_NAME_RULE + " (not a Python keyword)"))
        return name

    def run_checks(self, checks: Any, env: dict[str, Any], owner: str) -> None:
        """Each failed ``checks:`` condition is an error at the condition, with its message."""
        for cond, message in checks:
            if not self.truth(cond, env, "checks"):
                names = sorted(n for n in cond.expr.names if n in env and n != "in")
                values = ", ".join(f"{n} = {env[n]!r}" for n in names)
                self.errors.add(Diagnostic(f"{owner}: {message}", cond.loc,
                                           expected=f"`{cond.literal}`",
                                           found=values or None, code="check"))

    # --- values ----------------------------------------------------------------------------------
    def eval_value(self, value: Value, env: dict[str, Any]) -> Any:
        if value.items is not None:
            return [self.eval_value(item, env) for item in value.items]
        if value.expr is not None:
            return expr_mod.evaluate(value.expr, env)
        return value.literal

    def eval_arg(self, value: Value, env: dict[str, Any], words: Any) -> Any:
        """Evaluate an argument; a bare word the attribute accepts as a keyword stays a word."""
        if value.expr is not None and _is_keyword(value, env, words):
            return value.literal
        if value.items is not None:
            return [self.eval_arg(item, env, words) for item in value.items]
        return self.eval_value(value, env)

    def truth(self, value: Value, env: dict[str, Any], key: str) -> bool:
        result = self.eval_value(value, env)
        if not isinstance(result, bool):
            raise SpecError(Diagnostic(f"`{key}:` needs a condition", value.loc,
                                       expected="true or false", found=describe(result)))
        return result

    # --- warnings --------------------------------------------------------------------------------
    def dead_branch_warnings(self) -> list[Diagnostic]:
        dead = self.graph.dead_nodes()
        warnings = []
        reported: set[str] = set()
        for node in dead:
            if any(node.inputs and src in reported for src in node.inputs):
                reported.add(node.name)
                continue
            reported.add(node.name)
            warnings.append(Diagnostic(f"`{node.name}` is computed but never used", node.loc,
                                       severity="warning",
                                       hint="feed it to a later layer with `from:`, mark it "
                                            "`output: NAME`, or remove it"))
        return warnings


def _chain(ctx: Ctx) -> list[Ctx]:
    """A naming context and those enclosing it, innermost first."""
    out: list[Ctx] = []
    scope: Ctx | None = ctx
    while scope is not None:
        out.append(scope)
        scope = scope.parent
    return out


def block_reads(spec: Spec, name: str) -> frozenset[str]:
    """Every name an expression of block ``name`` reads, through the blocks it uses: the spec
    parameters its body can depend on (the rest of a block's environment is its arguments).
    Iterative: blocks may use blocks hundreds deep (the expander refuses them, located)."""
    found: set[str] = set()
    seen_blocks = {name}
    blocks = [name]
    while blocks:
        stack: list[Any] = [spec.blocks[blocks.pop()]]
        while stack:
            item = stack.pop()
            if isinstance(item, expr_mod.Expr):
                found |= item.names
            elif item is None or isinstance(item, (Loc, str, int, float)):
                continue
            elif isinstance(item, (tuple, list)):
                stack.extend(item)
            elif isinstance(item, dict):
                stack.extend(item.values())
            elif is_dataclass(item):
                if isinstance(item, Call) and item.is_block and item.target not in seen_blocks \
                        and item.target in spec.blocks:
                    seen_blocks.add(item.target)
                    blocks.append(item.target)
                stack.extend(getattr(item, f.name) for f in fields(item))
    return frozenset(found)


# The keys of ``Scope.meta`` whose values name nodes (one, or a list): a copied block renames them.
# Any other value is kept as it is (copied): a key that names nodes must be listed here
# (tests/test_block_reuse.py compares copies with full expansions over the zoo).
NODE_META = frozenset({"merge_node", "branch_outputs", "body_output", "shortcut_output", "inputs"})


def _snapshot(item: Any) -> dict[str, Any]:
    """A node's or scope's fields, each dict and list copied (a later change to the original
    does not reach the snapshot)."""
    return {key: type(value)(value) if type(value) in (dict, list) else value
            for key, value in vars(item).items()}


def _copied(cls: type, fields_: dict[str, Any], mutable: tuple[str, ...], **changed: Any) -> Any:
    """A new ``cls`` (a dataclass of the IR) with a snapshot's fields, those in ``mutable``
    (dicts, lists) copied again so that each copy owns its own, and ``changed``."""
    values = dict(fields_)
    for key in mutable:
        values[key] = type(values[key])(values[key])
    values.update(changed)
    item = object.__new__(cls)  # (every field is given: the dataclass __init__ would only
    item.__dict__ = values      # assign them, one keyword at a time, 600 blocks x 7 nodes)
    return item


def _renamed(meta: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """A scope's meta for a copy: the node names under :data:`NODE_META` renamed."""
    out = {}
    for key, value in meta.items():
        if key in NODE_META:
            value = names[value] if isinstance(value, str) else [names[v] for v in value]
        elif isinstance(value, (dict, list)):
            value = type(value)(value)
        out[key] = value
    return out


_ANY_WORD = object()


class NameSet(set):
    """The names taken in one scope, and per base name the last suffix :func:`auto_name` gave,
    so that naming 100,000 unnamed relus is linear (not relu_1, relu_2, ... tried one by one)."""

    def __init__(self, *args: Any):
        super().__init__(*args)
        self.last_suffix: dict[str, int] = {}
        self.dotted: set[str] = {name for name in self if "." in name}  # (claim adds to it)


def auto_name(base: str, ctx: Any, structural: bool = False) -> str:
    """A name for an unnamed layer: its index in a named sequence, else the op name
    (``relu``, ``relu_1``, ...). Structural nodes (merges) never take an index.

    The one naming rule: the code generator calls it too (with its own context carrying
    ``numbered``, ``counter`` and ``used``, a :class:`NameSet`), so generated attribute names
    equal node names. Names are never released, so the search resumes at the last suffix given.
    """
    if ctx.numbered and not structural:
        name = str(ctx.counter[0])
        ctx.counter[0] += 1
    else:
        k = ctx.used.last_suffix.get(base, 0)
        name = f"{base}_{k}" if k else base
        while name in ctx.used:
            k += 1
            name = f"{base}_{k}"
        ctx.used.last_suffix[base] = k
    ctx.used.add(name)
    return name


def _path_clash(name: str, used: set[str]) -> str | None:
    """A used name that is a container of ``name`` (``paths`` for ``paths.0``) or inside it."""
    parts = name.split(".")
    for i in range(1, len(parts)):
        if ".".join(parts[:i]) in used:
            return ".".join(parts[:i])
    prefix = name + "."
    # (only a dotted name can be inside another; a NameSet keeps those apart)
    dotted = used.dotted if isinstance(used, NameSet) else used
    return min((other for other in dotted if other.startswith(prefix)), default=None)


def _words(op: Any, key: str) -> tuple[str, ...]:
    for attr in op.attrs:
        if attr.name == key:
            return attr.choices
    return ()


def _is_keyword(value: Value, env: dict[str, Any], words: Any) -> bool:
    """Is this argument a bare word meant literally (``pad: same``), not an expression?"""
    if not words or not (isinstance(value.literal, str) and value.literal.isidentifier()):
        return False
    if words is _ANY_WORD:
        return value.literal not in env
    if value.literal in words:
        return True
    if value.literal in env:
        return False
    # A word that names nothing in scope is a mistyped choice (`mode: rows`: the op lists the
    # words it takes), unless it is closer to a name in scope (`pad: paddng` for `padding`).
    return did_you_mean(value.literal, words) is not None or did_you_mean(value.literal, env) is None


def _fmt_shape(shape: Shape) -> str:
    return " x ".join(str(d) for d in shape)


def expand(spec: Spec, params: dict[str, Any], input_shape: Shape,
           max_nodes: int = DEFAULT_MAX_NODES,
           block_cache: dict[Any, BlockBody] | None = None) -> Graph:
    """Expand a parsed spec with resolved parameters into a checked :class:`Graph`.

    ``block_cache`` keeps the bodies of block uses across expansions of the same parsed spec
    (a sweep); without it, identical uses are still shared within this expansion.
    """
    return Expander(spec, params, input_shape, max_nodes, block_cache).run()
