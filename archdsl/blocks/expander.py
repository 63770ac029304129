"""Block templates: each block definition used, expanded once over symbolic values.

:class:`TemplateExpander` is the one expander (:class:`~archdsl.expand.Expander`) in template
mode, as ``symbolic._TracingExpander`` is in tracing mode: the block's parameters, the spec
parameters it sees and its input sizes are ``Sym`` s (with the first instance's values as
probes); expressions become ``Sym`` s (``blocks.values.eval_value``), each op's own attribute
and shape rules run over them, a ``when:`` that depends on them is a condition on the items it
makes (each such layer in a scope of its own, as a layer under a plain one is, empty when it is
false; a ``connect:`` one on the residual's ``add``), a
use of another block is one item whose
output shape is the callee expanded with these arguments, and a repeat count or a name that
depends on them makes the block one written per use. Names come from the same ``auto_name``.

:func:`block_templates` fills ``graph.templates`` (one per block used, and the network's under
``""``) and names each block scope's template. The probes are the first instance's values; a
test an op's rule decided by them must come out the same for every other instance (their
templates are compared), else the block is written per use. The concrete expansion's copies of
block bodies are not used: every template is expanded from the block's definition (the
network's with every value written in reads its block uses' output shapes from the expansion).
:func:`network_template` makes the network's over given spec parameters (the network class's,
or its header alone, ``body=False``), :func:`declared_template` what a block declares. Each
marks what it makes by the graph's folds (``Graph.mark_folds``: a graph from
``passes.fold_batchnorm``), so no reader copies them.
"""

from __future__ import annotations

import ast
import re
from dataclasses import replace
from itertools import islice
from typing import Any

from ..errors import Diagnostic, Loc, SpecError
from ..expand import DEFAULT_MAX_NODES, Ctx, Expander
from ..expr import InputShape
from ..ir import INPUT, BlockTemplate, Graph, Node, Scope, TemplateItem
from ..ops import REGISTRY, Attrs, OpError
from ..spec import BlockDef, Call, Layer, Repeat, Residual, Seq, Spec, Value
from .namespace import Namespace, NotGeneric
from .sym import MISSING, Sym, Undecidable, all_plain, decisions, key_of, names_in, probe_of, refine, select
from .values import Env, coerce_attrs, coerce_param, eval_value, op_shape

__all__ = ["USES_SEVERAL_INPUTS", "PerUse", "TemplateExpander", "block_templates", "bound_template",
           "branch_name",
           "declared_template", "network_template", "probed_template", "sharing", "template_signature"]

_IN_NAMES = ("in_channels", "in_height", "in_width")
_SHARED = re.compile(r"#\d+(?=\.|$)")  # the key of a scope sharing a name (``branch2#1``)
# Why a block that uses a block with several inputs is written per use (its class's docstring says)
USES_SEVERAL_INPUTS = "a use of a block with several inputs"


class PerUse(Exception):  # a decision, not an error: the block is written per use
    """The block has no generic template (a repeat count or a name follows its parameters...)."""

    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


class TemplateExpander(Expander):
    """The expander over symbolic values: one block's body into a :class:`BlockTemplate`.

    ``bind`` gives the parameters' values (a dry run: a callee's output for one use); without
    it each parameter is a local of the template, probed by ``probe_args``.
    """

    #: never the concrete expansion's block bodies: a use is recorded (``expand_block`` here),
    #: never expanded or copied, and values carry expressions their probes do not show
    reuse_blocks = False

    def __init__(self, spec: Spec, params: dict[str, Any], block: BlockDef,
                 probe_args: dict[str, Any], in_probe: tuple[Any, ...],
                 bind: tuple[dict[str, Any], tuple[Any, ...]] | None = None,
                 outputs: dict[Any, tuple[Any, ...]] | None = None,
                 more: tuple[tuple[Any, ...], ...] = (),
                 network: tuple[str, ...] | None = None, names: Namespace | None = None):
        super().__init__(spec, params, (), DEFAULT_MAX_NODES)
        self.block = block
        self.more = more  # (a dry run) the shapes of a block's other inputs (`inputs:`)
        # the network's template: the spec parameters it is written over (``network_template``)
        self.network = network
        self.names = Namespace() if names is None else names
        self.named_next = False  # the layer being named had a name (see ``layer_name``)
        self.name_loc_next: Loc | None = None  # ... and where it is written
        self.concrete: Graph | None = None  # the network's expansion, when every value is plain
        self.conditions: list[Sym] = []  # the symbolic `when:`s the layer being expanded is under
        self.renaming: set[int] = set()  # naming scopes with a conditional member so far
        self.freezing: list[str] = []  # the scopes a layer with `freeze:` is being expanded in
        self.reads_next = False  # the layer being expanded has a `from:` (see ``record``)
        self.varying: set[str] = set()  # automatic names given in them since
        self.outputs = {} if outputs is None else outputs  # dry runs: (block, args, input) -> shape
        self.dry = bind is not None
        self.graph_input = in_probe
        self.result = self._start(params, probe_args, in_probe, bind)

    def _start(self, params: dict[str, Any], probe_args: dict[str, Any], in_probe: tuple[Any, ...],
               bind: tuple[dict[str, Any], tuple[Any, ...]] | None) -> BlockTemplate:
        block, spec = self.block, self.spec
        local: dict[str, str] = {}
        env: dict[str, Any] = {}
        if bind is not None:
            values, inp = bind
            env.update(values)
        elif self.network is not None:
            env.update(params)
            for name in self.network:
                decl = spec.params[name]
                local[name] = self.names.create(name, fallback="p")
                env[name] = Sym.name(local[name], coerce_param(params[name], decl.type),
                                     decl.type == "pair")
            inp = tuple(self.eval_value(value, env) for value in spec.input)
            if probe_of(inp) != tuple(self.graph_input):  # (loaded with another input)
                inp = tuple(self.graph_input)
        else:
            names = [self.names.create(n) for n in _IN_NAMES[:len(in_probe)]]
            local.update(zip(("in.c", "in.h", "in.w"), names))
            inp = tuple(Sym.name(n, p) for n, p in zip(names, in_probe))
            for name, decl in spec.params.items():
                if name not in block.params:  # (a block parameter hides a spec parameter)
                    local[name] = self.names.create(name, fallback="p")
                    env[name] = Sym.name(local[name], coerce_param(params[name], decl.type),
                                         decl.type == "pair")
            for name, decl in block.params.items():
                local[name] = self.names.create(name, fallback="p")
                probe = coerce_param(probe_args.get(name, MISSING), decl.type)
                env[name] = Sym.name(local[name], probe, decl.type == "pair")
        env["in"] = inp
        self.env = env
        if self.network is not None:  # the class's arguments: the graph's values as defaults
            declared = {n: (spec.params[n].type, coerce_param(params[n], spec.params[n].type),
                            False) for n in self.network}
        else:
            declared = {n: (d.type, d.default, d.required) for n, d in block.params.items()}
        return BlockTemplate(block.name, declared, local, inp, doc=block.doc, loc=block.loc,
                             input_names=tuple(name for name, _ in block.inputs))

    def build(self) -> BlockTemplate:
        """Expand the body; a block that cannot be generic has ``per_use`` set (and no items)."""
        t, g, block = self.result, self.graph, self.block
        g.input_shape = t.inputs
        g.add_node(Node(INPUT, INPUT, Attrs({}), (), (), t.inputs, "", block.loc))
        top = Scope("", "block" if self.network is None else "network", block.loc,
                    block=block.name or None, in_shape=t.inputs)
        g.scopes[""] = top
        ctx = Ctx(top, "", self.env)
        if block.input_count > 1:
            if not self.dry:  # (its class's ctor would take the sizes of every input)
                return self.per_use("a block with several inputs is written per use")
            ctx.locals[block.inputs[0][0]] = INPUT
            for (name, loc), shape in zip(block.inputs[1:], self.more):
                g.add_node(Node(f"<{name}>", INPUT, Attrs({}), (), (), shape, "", loc))
                ctx.locals[name] = f"<{name}>"
        try:
            for key, value in block.lets:
                result = self.eval_value(value, self.env)
                # every let is recorded; a symbolic one is a local of the class (bound: the
                # values stay over the caller's names, as the use's output shape reads them)
                name = self.names.create(key, fallback="v")
                t.locals[key], t.lets[name] = name, result
                if isinstance(result, Sym) and not self.dry:
                    result = Sym.name(name, result.probe)
                self.env[key] = result
            self.run_checks(block.checks, self.env, f"block `{block.name}`")
            t.checks = tuple((self.eval_value(cond, self.env), message)
                             for cond, message in block.checks)
            out = self.expand(block.body, INPUT, ctx)
            if self.errors.diagnostics:
                raise PerUse(self.errors.diagnostics[0])
        except PerUse as err:
            return self.per_use(err.diagnostic.message)
        assert out is not None
        t.output, t.out_shape = out, g.nodes[out].shape
        t.outputs = dict(g.outputs)
        t.scopes = {path: s for path, s in g.scopes.items() if path}
        t.members = list(top.members)
        for node in g.op_nodes():
            t.items[node.name] = TemplateItem(
                node.meta["name"], node.meta["kind"], node.op, node.attrs.as_dict(), node.inputs,
                node.in_shapes, node.shape, node.scope, node.meta["when"], node.loc,
                node.meta["name_varies"], node.meta["named"], node.freeze, key=node.name,
                own_freeze=node.meta["own_freeze"], reads=node.meta["reads"],
                name_loc=node.meta["name_loc"])
        seen = {v: k for k, v in t.locals.items() if k in self.spec.params
                and k not in block.params}
        t.reads = frozenset(seen[n] for n in _free_names(t) if n in seen)
        return t

    def header(self) -> BlockTemplate:
        """The template without its body: parameters, locals, inputs, checks, doc."""
        t = self.result
        t.checks = tuple((self.eval_value(cond, self.env), message)
                         for cond, message in self.block.checks)
        t.per_use = "the header only: its body was not expanded"
        return t

    def per_use(self, reason: str) -> BlockTemplate:
        """The template of a block written per use: no items (its body was not expanded to the
        end), so it is taken to read every spec parameter it sees (a class that takes one would
        need a generic body)."""
        t = self.result
        t.per_use = reason
        t.items, t.scopes, t.members = {}, {}, []
        t.reads = frozenset(p for p in self.spec.params if p not in self.block.params)
        return t

    # --- values ----------------------------------------------------------------------------
    def eval_value(self, value: Value, env: dict[str, Any]) -> Any:
        if self.concrete is not None:  # (every value plain: the expansion's own evaluation)
            return super().eval_value(value, env)
        return eval_value(value, _env(env))

    def truth(self, value: Value, env: dict[str, Any], key: str) -> bool:
        result = self.eval_value(value, env)
        if isinstance(result, Sym):
            if key == "checks":  # a validity check: the concrete expansion checks each instance
                return True
            raise NotGeneric(Diagnostic(f"a `{key}:` here depends on the block's parameters",
                                        value.loc))
        return super().truth(value, env, key)

    @staticmethod
    def check_type(value: Any, type_name: str, key: str, loc: Loc, what: str) -> Any:
        if isinstance(value, Sym) or (isinstance(value, list) and not all_plain(value)):
            return coerce_param(value, type_name)
        return Expander.check_type(value, type_name, key, loc, what)

    def block_args(self, block: BlockDef, call: Call, ctx: Ctx) -> dict[str, Any]:
        """As the expander reads them; the allowed values are checked per instance by the
        concrete expansion (a symbolic argument is none of them)."""
        if self.concrete is not None:  # (every value plain: as the expansion read them)
            return super().block_args(block, call, ctx)
        unchecked = {k: replace(d, choices=()) for k, d in block.params.items()}
        return super().block_args(replace(block, params=unchecked), call, ctx)

    def auto_name(self, base: str, ctx: Ctx, structural: bool = False) -> str:
        name = super().auto_name(base, ctx, structural)
        self.named_next, self.name_loc_next = False, None
        if {id(ctx.counter), id(ctx.used)} & self.renaming:
            self.varying.add(_SHARED.sub("", ctx.prefix + name))
        return name

    def layer_name(self, layer: Layer, default: str, ctx: Ctx, structural: bool = False) -> str:
        """As the expander names; the item recorded next notes whether the layer had a name,
        and where it is written (``TemplateItem.name_loc``: the spec's `name:`, a name
        template's for a repeat's copy)."""
        name = super().layer_name(layer, default, ctx, structural)
        self.named_next = bool(layer.name)
        self.name_loc_next = layer.name_loc if layer.name else None
        return name

    def open_scope(self, kind: str, name: str, layer: Layer, ctx: Ctx, x: str, **kw: Any) -> Scope:
        """A named construct; one sharing its name with another under exclusive ``when:``s gets a
        path of its own (``branch2#1``, as items are keyed: its members are ``branch2#1.conv``)."""
        path = ctx.prefix + name
        if path in self.graph.scopes:
            name = f"{name}#{sharing(path, self.graph.scopes)}"
        return self.opened(super().open_scope(kind, name, layer, ctx, x, **kw), ctx)

    def construct_scope(self, kind: str, layer: Layer, ctx: Ctx, x: str) -> tuple[Scope, Ctx]:
        scope, inner = super().construct_scope(kind, layer, ctx, x)
        return self.opened(scope, ctx), inner

    def opened(self, scope: Scope, ctx: Ctx) -> Scope:
        """A scope made in ``ctx``: under a `freeze:` of its own layer or of an unnamed
        sequence around it (not of a scope above), ``meta["freeze"]``. (Which repeat copy made
        it its repeat's ``meta["parts"]`` records.)"""
        if ctx.scope.path in self.freezing:
            scope.meta["freeze"] = True
        if self.reads_next and scope.kind != "when":  # (its layer's `from:`; a `when:`'s
            # scope is made before the layer's own item or scope)
            scope.meta["reads"] = True
            self.reads_next = False
        return scope

    def claim(self, name: str, ctx: Ctx, loc: Loc | None) -> str:
        """Layers under exclusive ``when:``s may share a name (the concrete expansion checked
        that only one exists in each instance)."""
        if name in ctx.used and self.conditions:
            return name
        return super().claim(name, ctx, loc)

    def template(self, tmpl: Value, env: dict[str, Any]) -> str:
        for part in tmpl.items or ():
            if part.is_expr and isinstance(self.eval_value(part, env), Sym):
                raise NotGeneric(Diagnostic("a name template that follows the block's parameters",
                                            tmpl.loc))
        return super().template(tmpl, env)

    def lookup(self, name: str, loc: Loc, ctx: Ctx, current: str | None = None) -> str | None:
        """As the expander resolves a `from:`; a dotted name is one of the body's
        ``member_reads``."""
        if "." in name:
            self.result.member_reads |= {name}
        return super().lookup(name, loc, ctx, current)

    def check_shape(self, shape: Any, name: str, loc: Loc | None) -> None:
        if all_plain(shape):
            super().check_shape(shape, name, loc)

    def charge_weights(self, *args: Any) -> None:  # the concrete expansion charges them
        return

    # --- layers ----------------------------------------------------------------------------
    def _expand(self, layer: Layer, x: str | None, ctx: Ctx) -> str | None:
        self.reads_next = layer.meta.inputs is not None  # (the item or scope it makes next
        # records it)
        freeze = bool(layer.meta.freeze)  # (what it makes in ctx.scope records it: the items'
        # own_freeze, the scopes' meta["freeze"])
        if freeze:
            self.freezing.append(ctx.scope.path)
        try:
            when = layer.meta.when
            cond = self.eval_value(when, ctx.env) if when is not None else None
            if isinstance(cond, Sym):
                return self.conditional(layer, cond, x, ctx)
            if isinstance(cond, bool) and x is not None:  # a plain `when:`: a scope of its own
                # too (empty when false), its value recorded as the class reads it
                scope, inner = self.when_scope(layer, cond, x, ctx)
                dropped = own_names(layer) if not cond else []
                if dropped:  # (it records none of the layer's items)
                    scope.meta["dropped"] = dropped
                return self.close_scope(scope, super()._expand(layer, x, inner))
            return super()._expand(layer, x, ctx)
        except NotGeneric as err:
            raise PerUse(err.diagnostics[0]) from None
        finally:
            if freeze:
                self.freezing.pop()

    def expand_seq(self, seq: Seq, x: str, ctx: Ctx) -> str | None:
        """As the expander makes it; an unnamed sequence with `from:` or `output:` has a scope of
        its own too (unnamed: it adds nothing to names), recording its input (and that it reads
        one: ``meta["reads"]``) and output, so that the class walks it as one layer, its
        members from the scope."""
        if seq.name or (seq.meta.inputs is None and seq.meta.output is None):
            return super().expand_seq(seq, x, ctx)
        scope, inner = self.construct_scope("seq", seq, ctx, x)
        return self.close_scope(scope, super().expand_seq(seq, x, inner))

    def when_scope(self, layer: Layer, cond: Any, x: str, ctx: Ctx) -> tuple[Scope, Ctx]:
        """The scope of a layer under a ``when:`` (``meta["when"]``: its value, a Sym or a bool),
        and the context its items are made in (the same naming scope)."""
        scope = Scope(f"{ctx.prefix}<when{len(self.graph.scopes)}>", "when", layer.loc,
                      parent=ctx.scope.path, input=x, in_shape=self.graph.nodes[x].shape,
                      named=False, meta={"when": cond})
        self.graph.scopes[self.opened(scope, ctx).path] = scope
        ctx.scope.members.append(scope.path)
        return scope, Ctx(scope, ctx.prefix, ctx.env, ctx.chain, ctx.numbered, ctx.used,
                          ctx.locals, ctx.counter, ctx.parent, ctx.block_input)

    def branch_live(self, name: str, branch: Layer, ctx: Ctx) -> bool:
        """As the expander decides; a dropped branch's ``when:`` is recorded by an empty scope,
        the parallel's part ``name`` (a live one's by the scope it is expanded in). The
        parallel's scope records the name the spec gives the branch (``meta["hints"]``: ``name``
        -> :func:`branch_name`), where it gives one."""
        if branch_name(branch) is not None:
            ctx.scope.meta.setdefault("hints", {})[name] = branch_name(branch)
        ctx.scope.meta.setdefault("part_names", []).append(name)
        live = super().branch_live(name, branch, ctx)
        x = ctx.scope.input
        if not live and x is not None:
            scope = self.when_scope(branch, False, x, ctx)[0]
            self.close_scope(scope, x)
            ctx.scope.meta.setdefault("parts", {})[scope.path] = name
            ctx.scope.meta.setdefault("part_whens", {})[name] = scope.path
        return live

    def conditional(self, layer: Layer, cond: Sym, x: str | None, ctx: Ctx) -> str | None:
        """A layer under a ``when:`` that follows the parameters: its items carry the condition,
        and its output is the layer's output when true, its input when false."""
        assert x is not None
        if layer.meta.output is not None:  # the outputs tuple would change with the condition
            raise NotGeneric(Diagnostic("an auxiliary output under a `when:` on a parameter",
                                        layer.loc))
        if layer.meta.inputs is not None:
            raise NotGeneric(Diagnostic("a layer with `from:` under a `when:` that depends on "
                                        "the block's parameters", layer.loc))
        # the layer gets a scope of its own (``when``: the condition), its items the conjunction
        scope, inner = self.when_scope(layer, cond, x, ctx)
        # inside, the input's sizes are those the condition decides (as the translator narrows
        # them: its items read what the class computes under `if cond`)
        fed = self.graph.nodes[x]
        given = fed.shape
        fed.shape = refine(given, cond)
        self.conditions.append(cond)
        try:
            out = super()._expand(replace(layer, meta=replace(layer.meta, when=None)), x, inner)
        finally:
            self.conditions.pop()
            fed.shape = given
        self.close_scope(scope, out)
        # the later members' automatic names (numbers, `cat_1`) count this one's names only
        # where it exists
        self.renaming.update((id(ctx.counter), id(ctx.used)))
        if out is None or out == x:
            return out
        given, made = self.graph.nodes[x].shape, self.graph.nodes[out].shape
        if len(given) != len(made):
            raise NotGeneric(Diagnostic("a layer under a `when:` that follows the block's "
                                        "parameters changes the rank", layer.loc))
        shape = tuple(select(cond, o, s) for o, s in zip(made, given))
        name = f"<select{len(self.graph.nodes)}>"  # (not a scope's path: `<when2>`)
        self.record(Node(name, "select", Attrs({}), (out, x), (made, given), shape,
                         ctx.scope.path, layer.loc), ctx, "select")
        if layer.name:
            ctx.locals[layer.name] = name
        return name

    def condition(self) -> Sym | None:
        """The conjunction of the enclosing symbolic conditions (None: unconditional)."""
        if not self.conditions:
            return None
        if len(self.conditions) == 1:
            return self.conditions[0]
        probes = [c.probe for c in self.conditions]
        probe = MISSING if MISSING in probes else all(probes)
        return Sym(ast.BoolOp(ast.And(), [c.node for c in self.conditions]), probe)

    def expand_repeat(self, rep: Repeat, x: str, ctx: Ctx) -> str | None:
        if isinstance(self.eval_value(rep.count, ctx.env), Sym):
            raise NotGeneric(Diagnostic("a repeat count that depends on block parameters",
                                        rep.count.loc))
        return super().expand_repeat(rep, x, ctx)

    def expand_copies(self, rep: Repeat, count: int, head: str, x: str, ctx: Ctx) -> str | None:
        """As the expander makes them; an unnamed repeat (no naming scope) has a scope too,
        recording its count as a named or dense one's does, and each records the names its
        name template gives the copies (``names``)."""
        if rep.name or rep.dense:
            made = len(self.graph.scopes)
            out = super().expand_copies(rep, count, head, x, ctx)
            scope = next(islice(self.graph.scopes.values(), made, None))  # (the first it
            # made: its own)
        else:
            scope, inner = self.construct_scope("repeat", rep, ctx, x)
            scope.meta["count"] = count
            out = self.close_scope(scope, super().expand_copies(rep, count, head, x, inner))
        if rep.name_template is not None:
            scope.meta["names"] = tuple(self.template(rep.name_template, {**ctx.env, "i": i})
                                        for i in range(count))
        return out

    def expand_residual(self, res: Residual, x: str, ctx: Ctx) -> str | None:
        connect = self.eval_value(res.connect, ctx.env) if res.connect is not None else None
        if not isinstance(connect, Sym):
            return super().expand_residual(res, x, ctx)
        scope, inner = self.construct_scope("residual", res, ctx, x)
        body = self.expand_part("body", res.body, x, inner)
        shortcut = x if res.shortcut is None else self.expand_part("shortcut", res.shortcut, x,
                                                                    inner)
        if body is None or shortcut is None:
            return None
        scope.meta.update(connect=connect, body_output=body, shortcut_output=shortcut)
        name = self.auto_name("add", inner, structural=True)
        # the add runs only where connect holds: the body's shape (the probed instance, which
        # does not add, may have a shortcut of another shape)
        self.conditions.append(connect)
        try:
            shapes = (self.graph.nodes[body].shape, self.graph.nodes[shortcut].shape)
            out = self.record(Node(inner.prefix + name, "add", Attrs({}), (body, shortcut),
                                   shapes, shapes[0], inner.scope.path, res.loc), inner)
        finally:
            self.conditions.pop()
        scope.meta.setdefault("parts", {})[out] = "merge"
        if res.after is not None:
            out = self.expand_part("after", res.after, out, inner)
        return self.close_scope(scope, out)

    def expand_part(self, name: str, layer: Layer, x: str, ctx: Ctx) -> str | None:
        """As the expander makes it; the construct's scope records its parts in order
        (``meta["part_names"]``: one that makes no member too; every branch of a parallel, a
        dropped one too: :meth:`branch_live`), which part made each of its members
        (``meta["parts"]``: member -> ``name``) and a branch's own `when:` scope
        (``meta["part_whens"]``: ``name`` -> its path)."""
        scope = ctx.scope
        names = scope.meta.setdefault("part_names", [])
        if name not in names:
            names.append(name)
        made = len(scope.members)
        out = super().expand_part(name, layer, x, ctx)
        scope.meta.setdefault("parts", {}).update(dict.fromkeys(scope.members[made:], name))
        if scope.kind == "parallel" and name != "after" and layer.meta.when is not None \
                and len(scope.members) > made:
            scope.meta.setdefault("part_whens", {})[name] = scope.members[made]
        return out

    def merge_op(self, op_name: str, inputs: list[str], ctx: Ctx, loc: Loc | None) -> str:
        """As the expander makes it; the construct's scope records it (its part ``merge``)."""
        out = super().merge_op(op_name, inputs, ctx, loc)
        ctx.scope.meta.setdefault("parts", {})[out] = "merge"
        return out

    def add_op(self, op_name: str, raw: dict[str, Any], inputs: list[str], ctx: Ctx, name: str,
               loc: Loc | None, arg_locs: dict[str, Loc] | None = None) -> str:
        op = REGISTRY[op_name]
        in_shapes = [self.graph.nodes[i].shape for i in inputs]
        try:
            given = coerce_attrs(op, raw, loc)
            attrs = op.finalize(given, in_shapes)
            shape = op_shape(op, attrs, in_shapes, loc)
        except OpError as err:  # a plain rule failing: a layer the probed instance skips
            raise NotGeneric(Diagnostic(f"`{op_name}`: {err.message}", loc)) from None
        node = Node(ctx.prefix + name, op_name, Attrs(attrs), tuple(inputs), tuple(in_shapes),
                    shape, ctx.scope.path, loc)
        return self.record(node, ctx)

    def record(self, node: Node, ctx: Ctx, kind: str = "op") -> str:
        """Add an item (a node of the template's own graph) under the current conditions."""
        shown = _SHARED.sub("", node.name)  # (a member of `branch2#1` is `branch2.conv`)
        if node.name in self.graph.nodes:  # a name shared under exclusive `when:`s: a key of its own
            node.name = f"{node.name}#{sharing(node.name, self.graph.nodes)}"
        node.meta["name"] = shown
        name_varies = any(shown == v or shown.startswith(v + ".") for v in self.varying)
        node.meta.update(kind=kind, when=self.condition(), name_varies=name_varies,
                         named=self.named_next, own_freeze=ctx.scope.path in self.freezing,
                         reads=self.reads_next, name_loc=self.name_loc_next)
        self.named_next = self.reads_next = False
        self.name_loc_next = None
        self.graph.add_node(node)
        ctx.scope.members.append(node.name)
        return node.name

    def expand_block(self, call: Call, x: str, ctx: Ctx, more: tuple[str, ...] = ()) -> str | None:
        """A use of another block: one item, whose output shape is the callee expanded with
        these arguments (and the spec parameters as this template sees them)."""
        if more and not self.dry and self.network is None:  # (the use's class is written per
            # use: so is this block's)
            raise NotGeneric(Diagnostic(USES_SEVERAL_INPUTS, call.loc))
        block = self.spec.blocks[call.target]
        args = {k: coerce_param(v, block.params[k].type)
                for k, v in self.block_args(block, call, ctx).items()}
        name = self.layer_name(call, call.target, ctx)
        in_shape = self.graph.nodes[x].shape
        others = tuple(self.graph.nodes[m].shape for m in more)
        made = self.concrete.scopes.get(ctx.prefix + name) if self.concrete is not None else None
        if made is not None and made.kind == "block" and made.block == block.name:
            out_shape = made.out_shape  # (the network with every value written in: the
            # expansion made this use)
        else:
            out_shape = self.use_output(block, args, in_shape, others, ctx, call.loc)
        return self.record(Node(ctx.prefix + name, block.name, Attrs(args), (x, *more),
                                (in_shape, *others), out_shape, ctx.scope.path, call.loc),
                           ctx, "use")

    def use_output(self, block: BlockDef, args: dict[str, Any], in_shape: tuple[Any, ...],
                   others: tuple[tuple[Any, ...], ...], ctx: Ctx, loc: Loc | None,
                   ) -> tuple[Any, ...]:
        """The output shape of a use: the callee expanded with its arguments, once per distinct
        arguments, input shapes and spec parameters as the callee sees them (one this block's
        parameter hides: its value)."""
        seen = {k: self.graph.params[k] if k in self.block.params else ctx.env[k]
                for k in self.spec.params if k not in args}
        key = (block.name, key_of(args), key_of(seen), key_of(in_shape), key_of(others))
        if key not in self.outputs:
            dry = TemplateExpander(self.spec, self.graph.params, block, {}, (),
                                   bind=({**seen, **args}, in_shape), outputs=self.outputs,
                                   more=others).build()
            if dry.per_use is not None:
                raise NotGeneric(Diagnostic(dry.per_use, loc))
            self.outputs[key] = dry.out_shape
        return self.outputs[key]


def branch_name(branch: Layer) -> str | None:
    """The name the spec gives a parallel branch (what the class names its output): its own, or
    its last named layer's when it is a sequence; not a number (a repeat's copy); None: none."""
    if branch.name and not branch.name.isdigit():
        return branch.name
    if isinstance(branch, Seq):
        for item in reversed(branch.items):
            if item.name and not item.name.isdigit():
                return item.name
    return None


def own_names(layer: Layer) -> list[str]:
    """The names a layer gives at its own level: its name, or through an unnamed sequence its
    members' (what a plainly false `when:` scope records of its dropped layer: ``dropped``)."""
    if isinstance(layer, Seq) and not layer.name:
        return [name for item in layer.items for name in own_names(item)]
    return [layer.name] if layer.name else []


def sharing(key: str, taken: Any) -> int:
    """How many keys ``key`` has already: itself, ``key#1``, ``key#2``..."""
    return sum(1 for k in taken if k == key or (k.startswith(key + "#")
                                                   and k[len(key) + 1:].isdigit()))


def _env(env: dict[str, Any]) -> Env:
    inp = env.get("in", ())
    return Env({k: v for k, v in env.items() if k != "in"}, tuple(inp))


def _free_names(t: BlockTemplate) -> set[str]:
    names: set[str] = names_in(t.inputs)  # (the network's input may follow its parameters)
    for value in t.lets.values():
        names |= names_in(value)
    for item in t.items.values():
        names |= names_in(tuple(item.attrs.values())) | names_in(item.shape) | names_in(item.when)
    for scope in t.scopes.values():
        names |= names_in(scope.meta.get("connect"))
    return names


def template_signature(t: BlockTemplate) -> list[str]:
    """A template as text without its probes: two instances that give the same signature share
    one generic class."""
    def text(value: Any) -> str:
        if isinstance(value, Sym):
            return value.text
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k}: {text(v)}" for k, v in value.items()) + "}"
        if isinstance(value, (tuple, list)):
            return "(" + ", ".join(text(v) for v in value) + ")"
        return repr(value)

    lines = [f"per_use {t.per_use}"] if t.per_use else []
    lines += [f"let {k} = {text(v)}" for k, v in t.lets.items()]
    lines += [f"{i.name} {i.kind} {i.target} {text(i.attrs)} {i.inputs} -> {text(i.shape)} "
              f"when {text(i.when)}" for i in t.items.values()]
    return [*lines, f"out {t.output} {text(t.out_shape)}"]


def block_templates(graph: Graph) -> dict[str, BlockTemplate]:
    """The template of every block the graph uses (``graph.templates``); each block scope
    names its template, or None when the block is written per use. ``graph.templates[""]`` is
    the network's, with every spec parameter written in (what ``archdsl check`` plans; the
    planner makes the network class's own over the parameters it takes: ``network_template``)."""
    spec: Spec = graph.spec
    if spec is None:
        raise ValueError("the graph has no spec (load it with archdsl.load)")
    instances: dict[str, list[Scope]] = {}
    for scope in graph.scopes.values():
        if scope.kind == "block" and scope.block is not None:
            instances.setdefault(scope.block, []).append(scope)
    outputs: dict[Any, tuple[Any, ...]] = {}
    templates: dict[str, BlockTemplate] = {}
    templates.update(_instance_templates(spec, graph, instances, outputs))
    templates[""] = network = network_template(graph, (), outputs=outputs)
    _reached_templates(spec, graph, templates, outputs)
    _transitive_reads(templates)
    for scopes in instances.values():
        for scope in scopes:
            scope.template = scope.block if templates[scope.block].per_use is None else None
    graph.scopes[""].template = "" if network.per_use is None else None
    graph.templates = templates
    return templates


def network_template(graph: Graph, names: tuple[str, ...] | None = None,
                     namespace: Namespace | None = None,
                     outputs: dict[Any, tuple[Any, ...]] | None = None,
                     body: bool = True) -> BlockTemplate:
    """The network's template (``graph.templates[""]``): its body over the spec parameters
    ``names`` (all of them by default; the others are written in), whose identifiers come from
    ``namespace`` (the network class's); ``per_use`` says why the body cannot follow them (the
    parameters, input, checks and doc are there all the same). Without ``body``, only those: the
    network class's header."""
    spec: Spec = graph.spec
    names = tuple(spec.params) if names is None else names
    definition = BlockDef("", {}, (), spec.network, spec.loc, spec.doc, spec.checks)
    expander = TemplateExpander(spec, graph.params, definition, {}, tuple(graph.input_shape),
                                outputs=outputs, network=names, names=namespace)
    if not body:
        return expander.header()
    if not names:  # every value is the graph's: evaluated as the expansion does, and a use's
        # output is the one it had there
        expander.concrete = graph
        expander.env["in"] = InputShape.of(tuple(graph.input_shape))
    try:
        return graph.mark_folds(expander.build())
    except SpecError as err:  # (a resource limit of the dry runs)
        return expander.per_use(err.diagnostics[0].message)
    except Undecidable as err:
        return expander.per_use(str(err))


def declared_template(graph: Graph, name: str) -> BlockTemplate:
    """What block ``name`` declares (parameters, doc, location), its body not expanded: for a
    block no template reaches but a class does (under a `when:` a constructor argument decides)."""
    expander = TemplateExpander(graph.spec, graph.params, graph.spec.blocks[name], {}, ())
    return graph.mark_folds(expander.per_use("its declarations only: its body was not expanded"))


def bound_template(graph: Graph, name: str, values: dict[str, Any], in_shape: tuple[Any, ...],
                   outputs: dict[Any, tuple[Any, ...]] | None = None,
                   more: tuple[tuple[Any, ...], ...] = ()) -> BlockTemplate:
    """The template of one use of block ``name``: its body expanded with ``values`` (its
    arguments and the spec parameters it sees, plain or Syms) bound, on ``in_shape`` (and
    ``more``, its other inputs' shapes). Its ``out_shape`` is the use's output shape; with every
    value plain, its items, scopes and lets are what the use's own class is written from
    (``per_use`` set: that cannot be written generically)."""
    spec: Spec = graph.spec
    return graph.mark_folds(TemplateExpander(spec, graph.params, spec.blocks[name], {}, (),
                                             bind=(values, in_shape), outputs=outputs,
                                             more=more).build())


def _instance_templates(spec: Spec, graph: Graph, instances: dict[str, list[Scope]],
                        outputs: dict[Any, tuple[Any, ...]]) -> dict[str, BlockTemplate]:
    templates: dict[str, BlockTemplate] = {}
    for name, uses in instances.items():
        first = uses[0]
        before = decisions()
        t = _build(spec, graph, name, first, outputs)
        if t.per_use is None and decisions() != before:  # the probe shaped it: check the others
            signature = template_signature(t)
            seen = {(key_of(first.args), key_of(first.in_shape))}
            for scope in uses[1:]:
                key = (key_of(scope.args), key_of(scope.in_shape))
                if key in seen:
                    continue
                seen.add(key)
                if template_signature(_build(spec, graph, name, scope, outputs)) != signature:
                    reason = f"block `{name}` needs different code for {first.path} and {scope.path}"
                    t = _build(spec, graph, name, first, outputs, reason)
                    break
        templates[name] = t
    return templates


def _reached_templates(spec: Spec, graph: Graph, templates: dict[str, BlockTemplate],
                       outputs: dict[Any, tuple[Any, ...]]) -> None:
    """The blocks no instance uses but a template does (under a ``when:`` that is false in every
    instance): probed with the arguments and input of the first use that reaches them."""
    todo = list(templates.values())
    while todo:
        for item in todo.pop(0).items.values():
            if item.kind != "use" or item.target in templates:
                continue
            probe = Scope("", "block", item.loc, block=item.target,
                          args={k: probe_of(v) for k, v in item.attrs.items()},
                          in_shape=tuple(probe_of(d) for d in item.in_shapes[0]))
            templates[item.target] = _build(spec, graph, item.target, probe, outputs)
            todo.append(templates[item.target])


def probed_template(graph: Graph, name: str, args: dict[str, Any], in_shape: tuple[Any, ...],
                    outputs: dict[Any, tuple[Any, ...]] | None = None) -> BlockTemplate:
    """Block ``name``'s template over its parameters, probed by ``args`` and an input of
    ``in_shape`` (plain values) instead of its first instance's: for a generic class built from
    other probes (a block no instance uses, another instance of another rank)."""
    probe = Scope("", "block", None, block=name, args=dict(args), in_shape=tuple(in_shape))
    return _build(graph.spec, graph, name, probe, {} if outputs is None else outputs)


def _build(spec: Spec, graph: Graph, name: str, instance: Scope,
           outputs: dict[Any, tuple[Any, ...]], per_use: str | None = None) -> BlockTemplate:
    expander = TemplateExpander(spec, graph.params, spec.blocks[name], instance.args,
                                tuple(instance.in_shape), outputs=outputs)
    if per_use is not None:
        return expander.per_use(per_use)
    try:
        return graph.mark_folds(expander.build())
    except SpecError as err:  # (a resource limit of the dry runs)
        return expander.per_use(err.diagnostics[0].message)
    except Undecidable as err:  # a test on the parameters the expander itself makes
        return expander.per_use(str(err))


def _transitive_reads(templates: dict[str, BlockTemplate]) -> None:
    """A template reads the spec parameters the blocks it uses read (they are passed on)."""
    uses = {name: {i.target for i in t.items.values() if i.kind == "use"}
            for name, t in templates.items()}
    changed = True
    while changed:  # (block uses form no cycle: the parser refuses them)
        changed = False
        for name, t in templates.items():
            more = frozenset().union(*(templates[c].reads for c in uses[name] if c in templates))
            if not more <= t.reads:
                t.reads |= more
                changed = True


def probe_shape(shape: tuple[Any, ...]) -> tuple[Any, ...]:
    """A template shape at its probes."""
    return tuple(probe_of(d) for d in shape)
