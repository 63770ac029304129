"""Layers that are one module: constructor expressions and the members of an nn.Sequential.

A block call becomes ``Basic(64, 128, stride=2)``, a named sequence or repeat an
``nn.Sequential(...)`` of its members (built by statements when some exist only under ``when:``),
a dense block a ``DenseBlock(denselayer1=..., ...)``. :class:`ModuleMaker` is mixed into
:class:`~archdsl.codegen.translate.ClassBuilder`, whose naming, conditions and statements it uses.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

from ..blocks.namespace import NotGeneric
from ..blocks.pysrc import unparse
from ..blocks.sym import MISSING, Sym, all_plain, is_known, node_of, probe_of, refine, render, select
from ..blocks.values import Env, coerce_param, op_lowering
from ..errors import Diagnostic, Loc
from ..ir import BlockTemplate, Scope, TemplateItem
from ..ops import REGISTRY, Attrs, Lowering, Op
from .code import (
    Assign,
    CallExpr,
    Code,
    Ctor,
    DenseLoop,
    DictExpr,
    Expr,
    ExprStmt,
    Frozen,
    If,
    Inplace,
    ParameterExpr,
    SequentialExpr,
    Stmt,
)
from .forward import FValue, fresh_output
from .names import check_attribute

__all__ = ["Ctx", "Item", "ModuleMaker", "ModuleResult", "Step", "copy_steps",
           "has_params", "is_default", "name_loc", "numbered",
           "shared_item_names", "walk_steps"]

Shape = tuple[Any, ...]  # sizes without the batch: ints, or Syms inside a generic class
_CONSTRUCTS = ("seq", "repeat", "dense", "parallel", "residual")  # (a construct scope's kinds)
_PARTED = ("residual", "parallel", "repeat", "dense")  # (a scope walked by its parts or copies)


@dataclass
class ModuleResult:
    """A layer that is one module: its constructor expression, output shape and maker."""

    expr: Any
    shape: Shape
    op: str | None = None
    inplace: Inplace | None = None
    has_params: bool = True


@dataclass
class Item:
    """One member of an nn.Sequential being built."""

    name: str
    auto: bool  # numbered by position (not named in the spec)
    module: ModuleResult
    cond: Any = None  # a Sym: exists only when true


@dataclass
class Step:
    """One member of a walk (:func:`walk_steps`): a template item or scope, and the steps of
    its own members where the template walks them (a `when:`'s or a sequence's scope; None: it
    cannot, and the layer under it is an internal error: :meth:`ModuleMaker.walked_member`)."""

    member: TemplateItem | Scope
    inner: list[Step] | None = None
    parts: dict[str, list[Step]] | None = None  # an unnamed residual's or parallel's parts
    # (``body``, ``shortcut``, ``after``; a branch by its index), where the template walks them
    merge: TemplateItem | None = None  # an unnamed residual's or parallel's merge item (its
    # add, concat or mul), where the template walks its parts and has one

    def members(self) -> tuple[list[Step] | None, dict[str, list[Step]] | None]:
        """The steps of the layer's members (a sequence's) or parts (a residual's, a
        parallel's), where the template walks them: this step's, or, for a layer under a
        `when:`, its own step's in the `when:`'s scope (:meth:`own`)."""
        step = self.own()
        return step.inner, (step.parts if step is not self or not self.is_when() else None)

    def is_when(self) -> bool:
        return isinstance(self.member, Scope) and self.member.kind == "when"

    def own(self) -> Step:
        """This step, or, for a layer under a `when:`, its one step in the `when:`'s scope,
        whose member is at the scope's location (this step where there is not one: the scope
        records nothing of the layer's own, :func:`bare_when`)."""
        scope, inner = self.member, self.inner
        if isinstance(scope, Scope) and scope.kind == "when" and inner is not None \
                and len(inner) == 1 and inner[0].member.loc == scope.loc:
            return inner[0]
        return self

    def ctx(self, ctx: Ctx) -> Ctx:
        """The context of the member's layer: frozen when its record says so (an item's
        ``own_freeze``, a scope's ``meta["freeze"]``: its layer's `freeze:` or an unnamed
        sequence's around it; one of a scope above it froze that scope's whole module, or
        ``ctx``, already)."""
        member = self.member
        frozen = member.own_freeze if isinstance(member, TemplateItem) \
            else isinstance(member, Scope) and bool(member.meta.get("freeze"))
        return replace(ctx, frozen=True) if frozen and not ctx.frozen else ctx


def walk_steps(template: BlockTemplate, keys: list[str]) -> list[Step] | str:
    """The steps of the members ``keys`` of ``template`` (its body's, or a scope's), from the
    template alone: a `when:`'s or a sequence's scope with its members' steps, an unnamed
    residual's or parallel's, or a repeat's, with its parts' or copies' (:func:`_parts`) and
    its merge item; or why they cannot be (then the class is an internal error,
    :meth:`ClassBuilder.template_walk`, and so is the layer under the `when:` or a construct's
    parts: :meth:`ModuleMaker.walked_member`, :func:`copy_steps`)."""
    steps: list[Step] = []
    for key in keys:
        member: TemplateItem | Scope
        if key in template.items:
            member = template.items[key]
            if member.kind == "select":  # (made by the layer under a `when:` before it)
                continue
        elif key in template.scopes:
            member = template.scopes[key]
        else:
            return f"a member the template does not have ({key})"
        inner = parts = merge = None
        if isinstance(member, Scope) and member.kind in ("when", "seq"):
            found = walk_steps(template, member.members)
            inner = None if isinstance(found, str) else found
        elif isinstance(member, Scope) and member.kind in _PARTED \
                and (not member.named or member.kind in ("repeat", "dense")):
            parts = _parts(template, member)
            if parts is not None and member.kind in ("residual", "parallel"):
                merge = _merge(template, member)
        steps.append(Step(member, inner, parts, merge))
    return steps


def _parts(template: BlockTemplate, scope: Scope) -> dict[str, list[Step]] | None:
    """The steps of an unnamed residual's or parallel's parts, or a repeat's copies (by index),
    in the order its record names them (``meta["part_names"]``: a part that made no member too,
    a dropped branch too), each the scope's members its record says that part made
    (``meta["parts"]``); None when the template does not walk them."""
    names = scope.meta.get("part_names", [])  # (none: it made none, e.g. every branch dropped)
    made = scope.meta.get("parts", {})
    parts: dict[str, list[Step]] = {}
    for name in names:
        found = walk_steps(template, [key for key in scope.members if made.get(key) == name])
        if isinstance(found, str):
            return None
        parts[name] = found
    return parts


def _merge(template: BlockTemplate, scope: Scope) -> TemplateItem | None:
    """An unnamed residual's or parallel's merge item, as its scope records it (None: it has
    none, e.g. a residual whose `connect:` is false)."""
    made = scope.meta.get("parts", {})
    found = [key for key in scope.members if made.get(key) == "merge"]
    return template.items.get(found[0]) if len(found) == 1 else None


def bare_when(step: Step) -> Scope | None:
    """The `when:` scope of ``step`` where the scope records nothing of its layer's own (no
    item or scope at its location inside: an unnamed pass-through op such as ``identity``,
    which makes none; an unnamed sequence's members; a layer under a false `when:`): the layer
    is walked as the scope's members' steps, in order (none: its input passes through). None
    where ``step`` is no such `when:` step (its template does not walk the scope's members:
    ``inner`` None)."""
    if not step.is_when() or step.inner is None or step.own() is not step:
        return None
    return step.member  # type: ignore[return-value]


def copy_steps(scope: Scope, i: int, copies: dict[str, list[Step]] | None) -> list[Step]:
    """The steps of copy ``i`` of a repeat (its scope ``scope``), as the scope records them
    (``copies``: by the copy's index, :func:`walk_steps`; none: the copy made no member, its
    repeated layer passes its input through). A copy its template does not walk or record is a
    bug (a template that lost it), not the repeated layer made again from the AST."""
    assert copies is not None, f"repeat at {scope.loc}: its template does not walk its copies"
    assert str(i) in copies, f"repeat at {scope.loc}: its scope records no copy {i}"
    return copies[str(i)]


@dataclass
class Ctx:
    """A naming scope: ``prefix``, its path in the class (``layer1.`` inside the named sequence
    ``layer1``): a layer's key in the class's template is the prefix and its name."""

    env: Env
    block_input: FValue | None = None
    frozen: bool = False
    dense: bool = False  # members of a DenseBlock (an nn.ModuleDict), else of an nn.Sequential
    prefix: str = ""

    def with_env(self, env: Env) -> Ctx:
        return replace(self, env=env)

    def child(self, key: str, dense: bool = False) -> Ctx:
        """The naming scope of the named construct whose key is ``key``."""
        return Ctx(self.env, block_input=self.block_input,
                   frozen=self.frozen, dense=dense, prefix=key + ".")


class ModuleMaker:
    """Module expressions for :class:`~archdsl.codegen.translate.ClassBuilder` (mixed in)."""

    shared_names: frozenset[str] = frozenset()  # of the class being built (:func:`shared_item_names`)
    member_reads: frozenset[str] = frozenset()  # its `from: seq.member` names (its template's)

    def item_values(self, item: TemplateItem | None) -> dict[str, Any] | None:  # (ClassBuilder's)
        return None

    def item_shape(self, item: TemplateItem, shapes: list[Shape]) -> Shape:  # (ClassBuilder's)
        raise NotImplementedError

    def scope_value(self, key: str, scope: Scope) -> Any:  # (ClassBuilder's)
        return None

    # --- ops --------------------------------------------------------------------------------
    def op_shape(self, step: Step, env: Env,
                 shapes: list[Shape]) -> tuple[Op, dict[str, Any], Shape]:
        """An op layer's op, attributes (finalised) and output shape, plain or symbolic, from
        the template item its step gives it (:meth:`walked_item`), over the class's locals (a
        value reading both a local of the class and a spec parameter it writes in, ``in.c *
        base * width``, with the parameter's value written in: ClassBuilder.written)."""
        item = self.walked_item(step)
        assert item is not None, \
            f"op layer at {step.member.loc}: no template item (its template lost it)"
        op = REGISTRY[item.target]
        attrs = self.item_values(item)  # (from its template item)
        assert attrs is not None, \
            f"op layer at {item.loc}: its template item {item.key} has attributes the class " \
            "cannot write"
        if item.absorbs:  # a batch norm was folded into it (its item's
            # mark: every template made from a folded graph is marked, Graph.mark_folds)
            attrs = op.absorb_norm(attrs)
        return op, attrs, self.item_shape(item, shapes)  # (ditto, for the item's inputs)

    def walked_item(self, step: Step) -> TemplateItem | None:
        """What the op layer or block use of ``step`` is translated from: the template item
        ``step`` (or its `when:`'s scope's one inner step) gives it (:meth:`walked_member`);
        whether it is an op or a use is the item's ``kind``, its name and key the item's
        (:meth:`layer_key`), its op the item's ``target``, its attributes and shape the item's
        (:meth:`op_shape`; a use's block, arguments and shape: :meth:`block_call`). None where
        its member is a `when:` scope recording nothing of the layer's own (:func:`bare_when`:
        an unnamed `identity`, which makes no item). Whether it is folded or absorbs a batch
        norm is its item's mark (:meth:`folded_away`; every template made from a folded graph
        is marked: ``Graph.mark_folds``)."""
        member = self.walked_member(step)
        return member if isinstance(member, TemplateItem) else None

    def reads_from(self, step: Step) -> bool:
        """Has the layer of ``step`` a `from:`? As its item or scope records it (``reads``,
        :meth:`walked_member`)."""
        member = self.walked_member(step)
        return member.reads if isinstance(member, TemplateItem) else bool(member.meta.get("reads"))

    def output_of(self, step: Step) -> str | None:  # (ClassBuilder's)
        return None

    def kind_of(self, step: Step) -> tuple[str, bool]:
        """What the layer of ``step`` is (``op``, ``use``, ``seq``, ``repeat``, ``dense``,
        ``parallel``, ``residual``) and whether it is named (a construct: one module, not
        inline; a member of an nn.Sequential: not numbered), as its item or scope records it
        (``kind``, ``named``; :meth:`walked_member`: ``when``, unnamed, for a `when:` scope
        recording nothing of the layer's own, walked as its members' steps)."""
        member = self.walked_member(step)
        return member.kind, member.named

    def walked_scope(self, step: Step) -> Scope | None:
        """The scope ``step`` gives its construct (:meth:`walked_member`)."""
        member = self.walked_member(step)
        return member if isinstance(member, Scope) else None

    def walked_member(self, step: Step) -> TemplateItem | Scope:
        """The item (an op or a block use) or the construct's scope ``step`` (or its `when:`'s
        scope's one inner step, :meth:`Step.own`) gives its layer; else its `when:` scope, where
        that records nothing of the layer's own (:func:`bare_when`). What the layer is, is the
        member's record (its ``kind``: :meth:`kind_of`). A layer without one is a bug (a
        template that lost its member, or whose `when:` scope's members are not walked)."""
        member: TemplateItem | Scope | None = step.own().member
        if not (isinstance(member, TemplateItem) and member.kind in ("op", "use")
                or isinstance(member, Scope) and member.kind in _CONSTRUCTS):
            member = bare_when(step)
        assert member is not None, \
            f"layer at {step.member.loc}: its step gives it no template item or scope (its " \
            "template lost it, or does not walk its `when:` scope's members)"
        return member

    def folded_away(self, step: Step) -> bool:
        """Is this a batch-norm layer folded into its conv (passes.fold_batchnorm)? Then it makes
        nothing (its readers read the conv). Its step's item's mark (``TemplateItem.folded``:
        every template made from a folded graph is marked, ``Graph.mark_folds``)."""
        item = self.walked_item(step)
        return item is not None and item.folded  # (an op's mark)

    def ctor(self, op: Op, lowering: Lowering, ctx: Ctx,
             loc: Loc | None) -> tuple[Expr, Inplace | None]:
        """The op's attribute: its module's constructor (keywords equal to their defaults left
        out), or its bare parameter (``Lowering.parameter``); ``loc``: its item's."""
        if lowering.parameter is not None:
            shape, fill = lowering.parameter
            self.known(op.name, loc, [*shape, fill])
            return ParameterExpr(tuple(shape), fill), None
        args = list(lowering.args)
        kwargs = [(k, v) for k, v, default in lowering.kwargs if not is_default(v, default)]
        self.known(op.name, loc, [*args, *(v for _, v in kwargs)])
        inplace = Inplace() if lowering.inplace_ok and op.inplace_in_code else None
        args = [self.hoisted(v) for v in args]
        kwargs = [(k, self.hoisted(v)) for k, v in kwargs]
        return Ctor(lowering.module, args, kwargs, inplace), inplace

    def known(self, target: str, loc: Loc | None, values: list[Any]) -> None:
        """Refuse a generic class a value it cannot compute (the op ``target``'s, at ``loc``)."""
        for value in values:
            if not is_known(value):
                raise NotGeneric(Diagnostic(f"`{target}`: a size here cannot be computed in "
                                            "a generic class", loc))

    def none_when_absent(self, step: Step, shape: Shape, ctx: Ctx) -> bool:
        """Can a layer under a symbolic ``when:`` be ``self.name = None`` when absent and run under
        ``if self.name is not None``? Only when it is one module (an op whose lowering is a
        module, a block, a named sequence or repeat) and no other layer of the class has its name
        (two layers under exclusive ``when:``s share one attribute: each runs under its own
        condition). ``step``: the layer's in the template's walk."""
        if self.reads_from(step) or self.output_of(step) is not None:
            return False
        kind, named = self.kind_of(step)
        name = self.own_name(step, ctx)
        if name and name in self.shared_names:
            return False
        if kind == "seq" and self.read_inside(name):  # (run member by member: split_sequence)
            return False
        if kind == "op":
            op, attrs, out = self.op_shape(step, ctx.env, [shape])
            loc = self.walked_member(step).loc
            return op_lowering(op, attrs, [shape], out, loc).module is not None
        return kind == "use" or (named and kind in ("seq", "repeat", "dense"))

    def own_name(self, step: Step, ctx: Ctx) -> str | None:
        """The name the spec gives the layer of ``step`` (None: an automatic one): its walked
        item's or scope's key in ``ctx`` (without ``#k``) where it is named."""
        member = self.walked_member(step)
        if not member.named:
            return None
        key = member.key if isinstance(member, TemplateItem) else member.path
        return re.sub(r"#\d+", "", key[len(ctx.prefix):])

    # --- single modules (attributes and nn.Sequential members) --------------------------------
    def module_of(self, step: Step, shape: Shape, ctx: Ctx, key: str,
                  more: tuple[Shape, ...] = ()) -> ModuleResult:
        """The constructor expression of a layer that is one module (named: ``key``; ``step``:
        its step in the template's walk), and its output shape.

        Under ``freeze:`` the module is wrapped once in ``frozen(...)`` (its members are not).
        """
        frozen = ctx.frozen  # (its own `freeze:` too: its step's, Step.ctx)
        result = self.plain_module(step, shape, replace(ctx, frozen=False), key, more)
        if frozen and result.has_params:
            result = replace(result, expr=Frozen(result.expr))
        return result

    def read_inside(self, name: str | None) -> bool:
        """Is a member of the named sequence ``name`` read by ``from:`` elsewhere in the class?"""
        return bool(name) and any(read.startswith(f"{name}.") for read in self.member_reads)

    def sequence_items(self, step: Step, shape: Shape, ctx: Ctx,
                       key: str) -> tuple[list[Item], Shape]:
        """The members of a named sequence (an nn.Sequential; its key ``key``), as the template
        walks them (``step``'s: :meth:`sequence_steps`); one with a `from:` is refused."""
        if self.reads_from(step):  # (its scope's ``reads``; an `output:` was taken off
            # before: side_output, and a member with one is refused by chain_members)
            raise self.fail("a named sequence with branches or `from:` cannot be generated "
                            "yet", self.walked_member(step).loc,
                            hint="use an unnamed sequence, or a block")
        return self.chain_members(self.sequence_steps(step), shape, ctx.child(key))

    @staticmethod
    def sequence_steps(step: Step) -> list[Step]:
        """The steps of a sequence's members as the template walks them (``step``'s, or its
        `when:` scope's one inner step's: :meth:`Step.members`); one it does not walk is a bug
        (every sequence the class translates is walked from its scope), not an AST walk."""
        steps = step.members()[0]
        assert steps is not None, \
            f"sequence at {step.member.loc}: its template does not walk its members"
        return steps

    def plain_module(self, step: Step, shape: Shape, ctx: Ctx, key: str,
                     more: tuple[Shape, ...] = ()) -> ModuleResult:
        """A layer that is one module, by what it is (:meth:`kind_of`)."""
        kind, _ = self.kind_of(step)
        if kind == "use":
            return self.block_call(step, shape, ctx, key, more)
        if kind == "op":
            return self.op_module(step, shape, ctx)
        if kind == "seq":
            items, out = self.sequence_items(step, shape, ctx, key)
            return ModuleResult(self.sequential(items, ctx), out)
        if kind in ("repeat", "dense"):
            return self.repeat_module(step, shape, ctx, key)
        raise self.fail("a named parallel or residual construct cannot be generated yet",
                        self.walked_member(step).loc,
                        hint="make it the body of a block, or leave it unnamed")

    def op_module(self, step: Step, shape: Shape, ctx: Ctx) -> ModuleResult:
        op, attrs, out = self.op_shape(step, ctx.env, [shape])
        item = self.walked_item(step)
        assert item is not None  # (op_shape asserts it)
        lowering = op_lowering(op, attrs, [shape], out, item.loc)
        if lowering.module is None:
            if op.module_form is None:
                raise self.fail(f"`{item.target}` is not a module, so it cannot be part of an "
                                "nn.Sequential", item.loc,
                                hint="give the sequence no name (its layers become attributes of "
                                     "the class), or make it a block")
            return ModuleResult(Code(op.module_form), out, op.name, has_params=False)
        expr, inplace = self.ctor(op, lowering, ctx, item.loc)
        return ModuleResult(expr, out, op.name, inplace, has_params(op, attrs, [shape], out))

    def block_call(self, step: Step, shape: Shape, ctx: Ctx, item_key: str,
                   more: tuple[Shape, ...] = ()) -> ModuleResult:
        """The constructor of a block use (its key ``item_key``) on inputs of ``shape`` (and
        ``more``, the other inputs of a block with several)."""
        item = self.walked_item(step)  # (the walk's item: none only after a test's edit)
        args = self.item_values(item)  # (from its template item)
        assert item is not None and args is not None, \
            f"block use at {step.member.loc}: no template item {item_key}"
        name = item.target  # the block it uses, and what it declares: its template's
        declared = self.planner.template(name).params
        lifted = {p: self.spec_values[p] for p in self.planner.spec_params_of(name)}
        out = self.item_shape(item, [shape, *more])  # (ditto, for the item's inputs)
        info = self.planner.block_info(name, (args, shape))
        if info is None:  # no generic class: one class for this use
            if not all_plain(args) or not all_plain((shape, more)) or not all_plain(lifted):
                raise NotGeneric(Diagnostic(f"block `{name}` is written per use and needs "
                                            "known arguments", item.loc))
            return ModuleResult(Ctor(self.planner.special_class(name, args, shape, more)), out)
        positional: list[Any] = [shape[0]] + (list(shape[1:]) if info.uses_hw else [])
        keywords: list[tuple[str, Any]] = []
        for key, (type_, default, required) in declared.items():
            if required:
                positional.append(args[key])
            elif not is_default(args[key], coerce_param(default, type_)):
                keywords.append((info.params[key], args[key]))
        for p, value in lifted.items():  # (the class's default: the compiled value)
            if not is_default(value, self.planner.header.params[p][1]):
                keywords.append((info.spec_params[p], value))
        for value in positional + [v for _, v in keywords]:
            if not is_known(value):
                raise NotGeneric(Diagnostic(f"a size passed to block `{name}` cannot be "
                                            "computed in a generic class", item.loc))
        positional = [self.hoisted(v) for v in positional]
        keywords = [(k, self.hoisted(v)) for k, v in keywords]
        return ModuleResult(Ctor(info.class_name, positional, keywords), out)

    def repeat_module(self, step: Step, shape: Shape, ctx: Ctx, key: str) -> ModuleResult:
        scope = self.walked_scope(step)
        assert scope is not None, f"repeat at {step.member.loc}: no template scope"
        count = self.count(scope, ctx)
        copies = step.members()[1]
        dense = scope.kind == "dense"  # (as its scope records it)
        inner = ctx.child(key, dense=dense)
        items: list[Item] = []
        features = shape
        channels = shape[0]
        for i in range(count):
            item_ctx = inner.with_env(inner.env.with_values(i=i))
            if dense:
                features = (channels, *shape[1:])
            new, out = self.chain_members(copy_steps(scope, i, copies), features, item_ctx)
            items.extend(new)
            if dense:
                channels = channels + out[0]
            else:
                features = out
        if dense:
            self.planner.dense_used = True
            if any(item.cond is not None for item in items):
                raise self.fail("a dense layer with a `when:` cannot be generated", scope.loc)
            expr = dense_loop(self.planner.dense_class, items) or DictExpr(
                self.planner.dense_class, [(i.name, i.module.expr) for i in items])
            return ModuleResult(expr, (channels, *shape[1:]))
        inplace_in_chain(items)
        return ModuleResult(self.sequential(items, ctx), features)

    def count(self, scope: Scope, ctx: Ctx) -> int:
        """A repeat's count, as its template scope (``scope``: its step's) records it
        (:meth:`scope_value`)."""
        count = self.scope_value("count", scope)
        assert count is not None, f"repeat at {scope.loc}: no template scope records its count"
        assert not isinstance(count, Sym), f"repeat at {scope.loc}: a symbolic count in a template"
        return count

    # --- nn.Sequential ------------------------------------------------------------------------
    def chain(self, step: Step, shape: Shape, ctx: Ctx) -> tuple[list[Item], Shape]:
        """The members the layer of ``step`` adds to an nn.Sequential (an unnamed list adds
        each of its own: as its template walks them)."""
        if self.folded_away(step):
            return [], shape
        when = self.condition(ctx, step)
        if when is False:
            return [], shape
        cond = when if isinstance(when, Sym) else None
        given = shape
        shape = refine(shape, cond)  # inside `if cond`, the input's sizes as cond decides them
        kind, named = self.kind_of(step)
        if kind in ("seq", "when") and not named:  # (a `when:`'s: its scope's members)
            items, out = self.chain_members(self.sequence_steps(step), shape, ctx)
        elif kind == "repeat" and not named:
            items, out = [], shape
            scope = self.walked_scope(step)
            assert scope is not None
            copies = step.members()[1]
            for i in range(self.count(scope, ctx)):
                item_ctx = ctx.with_env(ctx.env.with_values(i=i))
                new, out = self.chain_members(copy_steps(scope, i, copies), out, item_ctx)
                items.extend(new)
        else:
            name, key = self.layer_key(step, ctx)
            check_attribute(name, name_loc(self.walked_member(step)), numbered_ok=True,
                            container="nn.ModuleDict" if ctx.dense else "nn.Sequential")
            result = self.module_of(step, shape, ctx, key)
            items, out = [Item(name, not named, result)], result.shape
        if cond is not None:
            for item in items:
                item.cond = cond if item.cond is None else _and(cond, item.cond)
            out = tuple(select(cond, o, s) for o, s in zip(out, given))
        return items, out

    def chain_members(self, steps: list[Step], shape: Shape, ctx: Ctx) -> tuple[list[Item], Shape]:
        items: list[Item] = []
        for step in steps:
            if not self.chainable_step(step):
                raise self.fail("this layer cannot be part of an nn.Sequential",
                                self.walked_member(step).loc,
                                hint="`from:`, `output:`, merges and unnamed branches need a "
                                     "block (or an unnamed sequence) around them")
            new, shape = self.chain(step, shape, step.ctx(ctx))
            items.extend(new)
        inplace_in_chain(items)
        return items, shape

    def chainable_step(self, step: Step) -> bool:
        """Can the layer of ``step`` be one or more members of an nn.Sequential? As its item or
        scope records it (:meth:`walked_member`): not when it reads a `from:` (``reads``) or
        has an `output:` (:meth:`output_of`); an op with one input, a block use, a named
        sequence or repeat, an unnamed sequence or repeat (or a `when:` scope recording none of
        its layer's own: :func:`bare_when`) whose members' steps are."""
        member = self.walked_member(step)
        if self.reads_from(step) or self.output_of(step) is not None:
            return False
        kind, named = member.kind, member.named
        if kind == "op":
            op = REGISTRY.get(member.target) if isinstance(member, TemplateItem) else None
            return op is not None and op.max_inputs == 1
        if kind == "use" or (named and kind in ("seq", "repeat", "dense")):
            return True
        own = step.own()
        if kind in ("seq", "when"):
            return all(self.chainable_step(inner) for inner in own.inner or [])
        if kind == "repeat":
            return all(self.chainable_step(inner) for steps in (own.parts or {}).values()
                       for inner in steps)
        return False

    def sequential_body(self, template: BlockTemplate, steps: list[Step]) -> bool:
        """Is a class an nn.Sequential subclass? When its template numbers its body's members
        (:func:`numbered`) and each of its steps (``steps``, the template's walk) can be members
        of an nn.Sequential (:meth:`chainable_step`)."""
        return numbered(template) and all(self.chainable_step(step) for step in steps)

    def sequential(self, items: list[Item], ctx: Ctx, func: str = "nn.Sequential") -> Any:
        """An nn.Sequential of ``items``; members under ``when:`` are added by statements first."""
        if not any(item.cond is not None for item in items):
            return SequentialExpr([(i.name, i.module.expr) for i in items], func)
        var = self.locals.create("layers")
        numbered = all(item.auto for item in items)
        self.emit(Assign(var, Code("[]" if numbered else "OrderedDict()")))
        for item in items:
            if numbered:
                stmt: Stmt = ExprStmt(CallExpr(f"{var}.append", [item.module.expr]))
            else:
                key = unparse(ast.Constant(item.name)) if not item.auto else f"str(len({var}))"
                stmt = Assign(f"{var}[{key}]", item.module.expr)
            self.emit(If(item.cond, [stmt]) if item.cond is not None else stmt)
        return Code(f"{func}(*{var})" if numbered else f"{func}({var})")


def dense_loop(func: str, items: list[Item]) -> DenseLoop | None:
    """A dense block's members as one comprehension (``**{f"denselayer{i + 1}": DenseLayer(64 +
    i * growth_rate, ...) for i in range(6)}``), as torchvision's ``_DenseBlock`` loops: when they
    are one class whose arguments follow the index, one of them through a constructor argument
    (plain numbers read best written out); else None."""
    ctors = [item.module.expr for item in items]
    if len(ctors) < 2 or not all(isinstance(c, Ctor) and c.inplace is None for c in ctors):
        return None
    first = ctors[0]
    if any(c.func != first.func or len(c.args) != len(first.args)
           or [k for k, _ in c.kwargs] != [k for k, _ in first.kwargs] for c in ctors):
        return None
    key = _indexed_name([item.name for item in items])
    columns = [*zip(*(c.args for c in ctors)), *zip(*([v for _, v in c.kwargs] for c in ctors))]
    affine = [_affine(list(values)) for values in columns]
    if key is None or None in affine or not any(varies for _, varies in affine):  # type: ignore[misc]
        return None
    values = [value for value, _ in affine]  # type: ignore[misc]
    args, kwargs = values[:len(first.args)], list(zip([k for k, _ in first.kwargs], values[len(first.args):]))
    return DenseLoop(func, key, Ctor(first.func, args, kwargs), len(items))


def _indexed_name(names: list[str]) -> ast.JoinedStr | None:
    """``f"denselayer{i + 1}"`` when the names are a prefix and consecutive numbers."""
    match = re.fullmatch(r"(\D*)(\d+)", names[0])
    if match is None:
        return None
    prefix, start = match.group(1), int(match.group(2))
    if names != [f"{prefix}{start + k}" for k in range(len(names))]:
        return None
    index: ast.expr = ast.Name("i", ast.Load())
    if start:
        index = ast.BinOp(index, ast.Add(), ast.Constant(start))
    parts: list[ast.expr] = [ast.Constant(prefix)] if prefix else []
    return ast.JoinedStr([*parts, ast.FormattedValue(index, -1, None)])


def _affine(values: list[Any]) -> tuple[Any, bool] | None:
    """``values[k]`` as ``first + k * step`` (a Sym over ``i``), and whether the step is
    symbolic; the value itself when all are equal; None when they follow no such rule."""
    first = values[0]
    if all(render(v) == render(first) for v in values):
        return first, False
    try:
        step = values[1] - first
        if any(render(v) != render(first + k * step) for k, v in enumerate(values[2:], 2)):
            return None
    except TypeError:  # (not numbers)
        return None
    index = ast.Name("i", ast.Load())
    term = index if all_plain(step) and step == 1 else ast.BinOp(index, ast.Mult(), node_of(step))
    node = term if all_plain(first) and first == 0 else ast.BinOp(node_of(first), ast.Add(), term)
    return Sym(node), not all_plain(step)


def is_default(value: Any, default: Any) -> bool:
    """Provably the default: same type and value, or the same symbolic expression."""
    if isinstance(value, Sym) or isinstance(default, Sym):
        return isinstance(value, Sym) and isinstance(default, Sym) and value == default
    if not all_plain(value) or not all_plain(default):
        return value == default
    return type(value) is type(default) and value == default


def has_params(op: Op, attrs: dict[str, Any], shapes: list[Shape],
                out: Shape) -> bool:
    """Does this op have parameters (for the probed instance; yes when not known)?"""
    values = {k: probe_of(v) for k, v in attrs.items()}
    ins = [tuple(probe_of(d) for d in s) for s in shapes]
    probed_out = tuple(probe_of(d) for d in out)
    if MISSING in values.values() or any(MISSING in s for s in [*ins, probed_out]):
        return True
    return op.params(Attrs(values), ins, probed_out) > 0


def inplace_in_chain(items: list[Item]) -> None:
    """A ReLU in an nn.Sequential works in place when the member before it made a fresh tensor."""
    for before, item in pairwise(items):
        if item.module.inplace is not None:
            item.module.inplace.safe = before.cond is None and fresh_output(before.module.op)


def name_loc(member: TemplateItem | Scope) -> Loc | None:
    """Where a refusal of a member's name points: where the name is written (the spec's
    `name:`, a name template's for a repeat's copy: its ``name_loc``), else (an automatic name, a
    numbered copy's) at the member."""
    return member.name_loc or member.loc


def _and(a: Sym, b: Sym) -> Sym:
    probe = MISSING if MISSING in (a.probe, b.probe) else bool(a.probe and b.probe)
    return Sym(ast.BoolOp(ast.And(), [a.node, b.node]), probe)


def numbered(template: BlockTemplate) -> bool:
    """Does the spec number members of ``template``'s body (``"0": conv``) at its own level
    (through unnamed sequences and `when:`s), as its items and scopes record it (``named``, a
    key ``2`` or ``2#1``; a layer under a plainly false `when:` too, by the names its empty
    scope records it would give, ``meta["dropped"]``: as under a `when:` on a parameter)?"""
    def names(keys: list[str]) -> Iterator[str]:
        for key in keys:
            member = template.items.get(key) or template.scopes.get(key)
            if member is None:  # (one the template lacks: the walk says so, where it walks it)
                continue
            if member.named:
                yield key
            elif isinstance(member, Scope) and member.kind in ("seq", "when"):
                yield from member.meta.get("dropped", ())
                yield from names(member.members)

    return any(name.split("#")[0].isdigit() for name in names(template.members))


def shared_item_names(template: BlockTemplate) -> frozenset[str]:
    """The attribute names more than one layer of a class gives (layers under exclusive
    ``when:``s, which the expander allows to share a name), from its template: the names of its own
    naming scope (not inside a named construct) that more than one item or construct has (keys
    ``proj#1``, scopes ``branch2#1``), layers the spec named."""
    scopes = template.scopes

    def own(path: str) -> bool:  # in the class's naming scope: under unnamed constructs only
        while path:
            if scopes[path].named:
                return False
            path = scopes[path].parent or ""
        return True

    keys = [k for k, item in template.items.items() if item.named and own(item.scope)]
    keys += [p for p, scope in scopes.items() if scope.named and own(scope.parent or "")]
    return frozenset(k.split("#")[0] for k in keys if "#" in k)

