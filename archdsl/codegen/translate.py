"""Translate one block (or the network) into a class: ``__init__`` statements and ``forward``.

One class per block definition, parameterised by the block's parameters: its ``__init__`` is the
block's body translated once, with widths carried symbolically (``in_channels``, ``out``,
``int(planes * (base_width / 64.0)) * groups``), ``when:`` as ``if``, and its ``forward`` the
straight-line dataflow (:mod:`archdsl.codegen.forward`). The network class is the same translation
with every value known but its constructor arguments (the spec parameters it can follow), so its
stages are written out (``nn.Sequential(Basic(64, 64), ...)``) and its forward carries exact shape
comments. Names are given exactly as the expander gives them, so
attribute paths are the graph's node names (the state_dict keys).
"""

from __future__ import annotations

import ast
import copy
import os
import re
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from ..blocks.expander import USES_SEVERAL_INPUTS, network_template
from ..blocks.namespace import CodegenError, Namespace, NotGeneric
from ..blocks.pysrc import LINE_LENGTH, docstring_lines, literal, parse_expr, unparse
from ..blocks.sym import (
    MISSING,
    Sym,
    all_plain,
    is_known,
    key_of,
    names_in,
    probe_of,
    refine,
    renamed,
    render,
    select,
    substitute,
)
from ..blocks.values import Env, coerce_param, op_lowering, tidy
from ..errors import Diagnostic, Loc
from ..ir import INPUT, BlockTemplate, Scope, TemplateItem
from ..ops import REGISTRY
from .classes import BODY_INDENT, BlockInfo, ClassPlan, Planning
from .code import Assign, Code, Comment, ExprStmt, Frozen, If, Raise, Stmt, render_block, to_node
from .forward import ForwardBuilder, FValue
from .modules import (
    Ctx,
    Item,
    ModuleMaker,
    Shape,
    Step,
    copy_steps,
    has_params,
    name_loc,
    shared_item_names,
    walk_steps,
)
from .names import MODULE_ATTRIBUTES, member_access

__all__ = ["ClassBuilder"]

_TYPES = {"int": "int", "float": "float", "bool": "bool", "str": "str", "pair": "int | tuple[int, int]"}


class ClassBuilder(ModuleMaker):
    """Translates one block (or the network) into a class plan."""

    def __init__(self, planner: Planning, name: str):
        self.planner = planner
        self.name = name
        self.locals = Namespace(parent=planner.globals)
        self.init: list[Stmt] = []
        self._sink = self.init
        self.lets: list[tuple[str, Any]] = []  # (local, value) of non-constant lets
        self.class_locals: set[str] = set()  # names a forward may read through self.<cfg>
        self.cfg: dict[str, tuple[str, ast.expr]] = {}  # marker -> (wanted name, init value)
        self.attributes: dict[str, None] = {}  # in order of assignment; a dict for linear lookups
        self.containers: dict[str, None] = {}  # nn.ModuleDict attributes of dotted layer names
        self.placeholders: list[str] = []  # attributes built only under a `when:` condition
        self.outputs: dict[str, FValue] = {}
        self.output_names = Namespace(["out"])
        self.is_network = False
        self.fb: ForwardBuilder | None = None
        self.ctor_params: dict[str, str] = {}  # spec parameter -> ctor parameter (the network)
        self.checks: list[Stmt] = []  # the spec's checks on the ctor parameters
        self.hoists: dict[str, str] = {}  # sizes computed once in the network class: expr -> local
        # the spec parameters as the blocks this class uses see them (a block parameter of the
        # same name hides one only from this block's own layers)
        self.spec_values: dict[str, Any] = dict(planner.graph.params)
        # the keys its layers have (as the template's items and scopes are keyed: layer_key)
        # a generic block class: its template and the template's locals as this class names
        # them (:meth:`read_items`)
        self.template: BlockTemplate | None = None
        self.written_in: set[str] = set()  # its locals for spec parameters this class writes in
        self.renames: dict[str, str] = {}
        # what the class computes, by template key (an item's, a scope's output, a select's):
        # what a walked layer's inputs are (:meth:`inputs_of`)
        self.produced: dict[str, FValue] = {}
        self.selects: dict[str, str] = {}  # a symbolic `when:`'s layer's output key -> its select

    # --- entry points ------------------------------------------------------------------------
    def build_network(self, ctor_params: tuple[str, ...] = ()) -> ClassPlan:
        """The network class; the spec parameters named in ``ctor_params`` are its constructor
        arguments (symbolic, with the graph's values as defaults and probes), checked by the
        spec's ``checks:``; the others are written in. Its layers' values come from its template
        over those arguments, as a generic block class's do (:meth:`read_template`), and its
        layers are walked from that template's members as a block class's are
        (:meth:`template_walk`; a template per use refuses the class before)."""
        graph = self.planner.graph
        self.is_network = True
        if ctor_params:  # its template over its constructor arguments (its locals the class's),
            # which is its header too
            header = template = network_template(
                graph, ctor_params, self.locals, outputs=self.planner.template_outputs)
        else:  # every value written in: the graph's (what `archdsl check` plans), and a header
            header = network_template(graph, (), self.locals, body=False)
            template = self.planner.template("")
        self.planner.header = header
        if template.per_use is not None:  # what stops the template stops the class (a count
            # or an auxiliary output under a `when:` following the arguments: make_plan writes
            # the parameter in, and says why)
            raise NotGeneric(Diagnostic(template.per_use, None))
        values, signature = self.network_params(header)
        self.read_template(template, dict(template.locals))
        in_shape = header.inputs
        env = Env(values, in_shape)
        self.network_checks(header)
        self.fb = ForwardBuilder(in_shape)
        ctx = Ctx(env, block_input=self.fb.input)
        self.shared_names = shared_item_names(template)
        self.member_reads = template.member_reads
        doc = _network_doc(header, graph.name, self.ctor_params, bool(self.checks))
        walk = self.template_walk()
        if self.sequential_body(template, walk):
            items, _ = self.chain_walk(walk, in_shape, ctx)
            return self.sequential_plan(items, signature, doc, [])
        out = self.walk(walk, self.fb.input, ctx)
        self.check_network_shape(out)
        self.network_return(out)
        return self.module_plan(signature, doc, [])

    def network_params(self, header: BlockTemplate) -> tuple[dict[str, Any], list[str]]:
        """The spec parameters' values (Syms for constructor arguments) and the signature, from
        the network's header template (its locals are this class's: ``self.locals``)."""
        values: dict[str, Any] = dict(self.planner.graph.params)
        signature = []
        for name, local in header.locals.items():
            type_name, value, _ = header.params[name]
            self.ctor_params[name] = local
            values[name] = self.spec_values[name] = Sym.name(local, value, type_name == "pair")
            signature.append(f"{local}: {_TYPES[type_name]} = {unparse(to_node(value))}")
        self.class_locals |= set(self.ctor_params.values())
        return values, signature

    def network_checks(self, header: BlockTemplate) -> None:
        """The spec's ``checks:`` over constructor arguments, as the spec words them."""
        for result, message in header.checks:
            if isinstance(result, Sym):
                failed = ast.UnaryOp(ast.Not(), result.node)
                error = ast.Call(ast.Name("ValueError", ast.Load()), [ast.Constant(message)], [])
                self.checks.append(If(failed, [Raise(error)]))

    def build_block(self, name: str, instance: Any,
                    call: tuple[dict[str, Any], tuple[Any, ...]] | None = None,
                    ) -> tuple[BlockInfo, ClassPlan]:
        """The generic class of block ``name``, read from its template; ``instance`` (a use in
        the graph) gives the probes; its layers are walked from the template's members
        (:meth:`template_walk`).

        A block no instance uses (a layer under a false ``when:`` everywhere) is probed with the
        arguments and input of the ``call`` that reaches it, and has no shape comments.
        """
        probe_args = instance.args if instance is not None else {
            k: probe_of(v) for k, v in (call[0] if call else {}).items()}
        if instance is not None:
            in_probe = tuple(instance.in_shape)
        elif call is not None:
            in_probe = tuple(probe_of(d) for d in call[1])
        else:
            in_probe = (MISSING, MISSING, MISSING)
        in_names = ["in_channels", "in_height", "in_width"][:len(in_probe)]
        for local in in_names:
            self.locals.create(local)
        inp = tuple(Sym.name(n, p) for n, p in zip(in_names, in_probe))
        template = self.planner.template(name)
        params: dict[str, str] = {}
        values: dict[str, Any] = dict(self.planner.graph.params)
        for pname, (type_name, _, _) in template.params.items():
            local = self.locals.create(pname, fallback="p")
            params[pname] = local
            probe = probe_args.get(pname, MISSING)
            values[pname] = Sym.name(local, coerce_param(probe, type_name), type_name == "pair")
        spec_params: dict[str, str] = {}  # the network's arguments this block reads
        header = self.planner.header
        for pname in self.planner.spec_params_of(name):
            type_name, value, _ = header.params[pname]  # (the network's: its default)
            spec_params[pname] = self.locals.create(pname, fallback="p")
            self.spec_values[pname] = Sym.name(spec_params[pname], value, type_name == "pair")
            if pname not in template.params:
                values[pname] = self.spec_values[pname]
        self.class_locals |= set(in_names) | set(params.values()) | set(spec_params.values())
        self.read_items(template, instance, {**dict(zip(("in.c", "in.h", "in.w"), in_names)),
                                             **spec_params, **params}, (probe_args, in_probe))
        env = self.bind_lets(Env(values, inp))
        self.fb = ForwardBuilder(inp, comments=instance is not None)
        ctx = Ctx(env, block_input=self.fb.input)
        # (the template read: a block only a class reaches has its declarations only, the one
        # probed by the call that reaches it its body)
        assert self.template is not None
        self.shared_names = shared_item_names(self.template)
        self.member_reads = self.template.member_reads
        signature = self.block_signature(template, params) + [
            f"{local}: {_TYPES[header.params[p][0]]} = "
            f"{unparse(to_node(self.spec_values[p].probe))}" for p, local in spec_params.items()]
        doc = _block_doc(template, self.planner.graph.file, instance)
        walk = self.template_walk()
        if self.sequential_body(self.template, walk):
            items, out = self.chain_walk(walk, inp, ctx)
            plan = self.sequential_plan(items, signature, doc, in_names)
        else:
            out = self.walk(walk, self.fb.input, ctx)
            self.fb.ret([out], lambda names: names[0])
            plan = self.module_plan(signature, doc, in_names)
        self.check_block_shape(instance, out)
        uses_hw = any(p.startswith(("in_height", "in_width")) for p in plan.params)
        return BlockInfo(self.name, params, uses_hw, plan, spec_params), plan

    def build_special(self, bound: BlockTemplate, args: dict[str, Any],
                      in_shape: tuple[Any, ...], more: tuple[tuple[Any, ...], ...] = ()) -> ClassPlan:
        """The class of one use of a block, with every argument and size written in, read from
        ``bound``, the use's template (every value plain: :meth:`read_template`); a block with
        several inputs (``more``: the others' shapes) has ``forward(self, low, high)``; its
        layers are walked from ``bound``'s members (:meth:`template_walk`)."""
        self.read_template(bound, {})
        values = {**self.planner.graph.params, **args}
        env = self.bind_lets(Env(values, in_shape), inline=True)
        names = list(bound.input_names)
        self.fb = ForwardBuilder(in_shape, more=tuple(zip(names[1:], more)),
                                 first=names[0] if names else "x")
        ctx = Ctx(env, block_input=self.fb.input)
        self.produced.update((f"<{n}>", value) for n, value in zip(names[1:], self.fb.inputs[1:]))
        self.shared_names = shared_item_names(bound)  # (as a generic class's; with every value
        # plain no layer is under a symbolic `when:`, so none asks: none_when_absent)
        self.member_reads = bound.member_reads
        shown = ", ".join(f"{k}={v!r}" for k, v in args.items())
        given = " and ".join(_fmt(s) for s in (in_shape, *more))
        template = self.planner.template(bound.name)
        if more:
            why = "it has several inputs"
        elif template.per_use == USES_SEVERAL_INPUTS:
            why = "it uses a block with several inputs"
        else:
            why = "a repeat count, a size or a branch of this block depends on its arguments"
        note = (f"Written for one use: input{'s' if more else ''} {given}, "
                f"{shown or 'no arguments'} ({why}, so it has no generic class).")
        doc = [*_block_doc(template, self.planner.graph.file, None), "", note]
        walk = self.template_walk()
        if self.sequential_body(bound, walk):
            items, _ = self.chain_walk(walk, in_shape, ctx)
            return self.sequential_plan(items, [], doc, [])
        out = self.walk(walk, self.fb.input, ctx)
        self.fb.ret([out], lambda names: names[0])
        return self.module_plan([], doc, [])

    def bind_lets(self, env: Env, inline: bool = False) -> Env:
        """Evaluate the lets the class's template records, in its order (a generic class's
        symbolic ones: as its template has them, :meth:`template_let`); a symbolic one becomes a
        local of __init__ (written only if used), unless ``inline`` (dry runs and one-use
        classes)."""
        assert self.template is not None
        keys = {local: key for key, local in self.template.locals.items()}
        for key in [keys[local] for local in self.template.lets]:
            result = self.template_let(key)
            assert result is not MISSING, \
                f"block `{self.template.name}`: let `{key}`: no value in its template the class reads"
            if isinstance(result, Sym) and not inline:
                local = self.locals.create(key, fallback="v")
                self.lets.append((local, result))
                self.class_locals.add(local)
                if self.template is not None and key in self.template.locals:
                    self.renames[self.template.locals[key]] = local
                result = Sym.name(local, result.probe)
            env = env.with_values(**{key: result})
        return env

    def read_items(self, template: BlockTemplate, instance: Any, ours: dict[str, str],
                   probes: tuple[dict[str, Any], tuple[Any, ...]]) -> None:
        """A generic class reads its values from its template (:meth:`read_template`): the
        block's, when built from the instance that probed it, else one probed by its own
        ``probes`` (arguments, input sizes: a block no instance uses, another instance of
        another rank); ``ours``: what this class names each of the template's locals (``in.c``,
        parameters, spec parameters; its lets are added as they are bound)."""
        if instance is None or instance is not self.planner.first_instance(template.name):
            args, in_shape = probes
            assert MISSING not in in_shape and MISSING not in args.values(), \
                f"block `{template.name}`: a generic class built without probes"
            template = self.planner.probed(template.name, args, in_shape)
        assert template.per_use is None, \
            f"block `{template.name}`: a generic class of a template per use ({template.per_use})"
        self.read_template(template, ours)

    def read_template(self, template: BlockTemplate, ours: dict[str, str]) -> None:
        """Read values from ``template``: a generic class's (:meth:`read_items`), or the bound
        template of the one use a class is written for (``ours`` empty: every value plain)."""
        self.template = template
        self.selects = {item.inputs[0]: key for key, item in template.items.items()
                        if item.kind == "select"}
        self.renames = {local: ours[key] for key, local in template.locals.items() if key in ours}
        self.written_in = {local for key, local in template.locals.items()
                           if key in self.planner.graph.params and local not in self.renames
                           and local not in template.lets}

    def ours(self, value: Any) -> Any:
        """A template value over this class's locals (its names renamed); one that reads only
        spec parameters the class writes in is its probe (the graph's values are the template's
        probes: InceptionAux's ``num_classes``); MISSING when it reads both kinds. Names that
        are no template local are helpers and builtins (``make_divisible``)."""
        assert self.template is not None
        reads = names_in(value) & set(self.template.locals.values())
        if reads <= set(self.renames):
            return renamed(value, self.renames)
        if reads & set(self.renames) or not reads <= self.written_in:
            return MISSING
        probe = probe_of(value)
        return probe if probe is not MISSING and all_plain(probe) else MISSING

    def template_let(self, key: str) -> Any:
        """A let as the template has it (symbolic or plain), over this class's locals (MISSING:
        not in the template, or one reading a name the class has not). One reading both a local
        of the class and a spec parameter it writes in has the parameter's value written in its
        place (:meth:`written_into`)."""
        assert self.template is not None
        if key not in self.template.locals:
            return MISSING
        value = self.template.lets.get(self.template.locals[key], MISSING)
        if value is MISSING:
            return MISSING
        result = self.ours(value)
        return self.written_into(value) if result is MISSING and isinstance(value, Sym) else result

    def written_into(self, value: Sym) -> Any:
        """A template expression over this class's locals and spec parameters it writes in, with
        those parameters' values in their place, as the class's own evaluation writes them
        (``make_divisible(c * 1.0, 8)``: an expression's names replaced, then tidied): a let, a
        block argument, and an op's attribute or a size its rules composed (``in.c * base *
        width``: the same expression and probe as the op's rules give over the written-in
        values)."""
        assert self.template is not None
        params = self.planner.graph.params
        values = {local: literal(params[key]) for key, local in self.template.locals.items()
                  if local in self.written_in}
        if not names_in(value) & set(self.template.locals.values()) <= {*self.renames, *values}:
            return MISSING
        names = {old: ast.Name(new, ast.Load()) for old, new in self.renames.items()}
        return Sym(tidy(substitute(value.node, {**names, **values})), value.probe, value.pair)

    def item_values(self, item: TemplateItem | None) -> dict[str, Any] | None:
        """An op layer's attributes (finalised), or a block use's arguments (defaults filled), as
        its template item (``item``: an op layer's as its step gives it, :meth:`walked_item`; a
        block use's by key, :meth:`item`) has them, over this class's locals (:meth:`written`:
        one reading both a local of the class and a spec parameter it writes in has the
        parameter's value written in); None when the template does not say (no item)."""
        return None if item is None else self.ours_written(item.attrs)

    def ours_written(self, values: dict[str, Any]) -> dict[str, Any] | None:
        """``values`` (a template item's) over this class's locals (:meth:`written`); None when
        one cannot be."""
        ours = {name: self.written(value) for name, value in values.items()}
        return None if any(value is MISSING for value in ours.values()) else ours

    def written(self, value: Any) -> Any:
        """A template value over this class's locals (:meth:`ours`), one that reads both a local
        of the class and a spec parameter it writes in with the parameter's value written in
        (:meth:`written_into`; a pair's or a shape's each); MISSING when it cannot be."""
        result = self.ours(value)
        if result is not MISSING or not isinstance(value, (Sym, tuple)):
            return result
        if isinstance(value, Sym):
            return self.written_into(value)
        parts = tuple(self.written(part) for part in value)
        return MISSING if any(part is MISSING for part in parts) else parts

    def item_shape(self, item: TemplateItem,
                   shapes: list[tuple[Any, ...]]) -> tuple[Any, ...]:
        """An op layer's, a block use's or a merge's output shape as its template item has it,
        over this class's locals (:meth:`written`: a size reading both a local of the class and
        a spec parameter it writes in, ``in_channels * 4 * width``, has the parameter's value
        written in; under the ``if`` of a `when:` on a parameter, its input's sizes narrowed by
        the condition, as the translator narrows them: ``refine``), for the inputs ``shapes``,
        which are the item's (``in_shapes``): inputs other than the item's, or a size the class
        cannot write, are an internal error (the class's sizes are its template's)."""
        given = tuple(self.written(shape) for shape in item.in_shapes)
        assert MISSING not in given and key_of(given) == key_of(tuple(tuple(s) for s in shapes)), \
            f"{item.target} {item.key} at {item.loc}: its inputs {render(tuple(shapes))} are " \
            f"not its item's {render(given)} (its template lost what makes them)"
        out = self.written(item.shape)
        assert out is not MISSING, \
            f"{item.target} {item.key} at {item.loc}: its shape {render(item.shape)} reads a " \
            "name the class has not"
        return out

    def scope_value(self, key: str, scope: Scope) -> Any:
        """What a walked construct's template scope (``scope``: its step's,
        :meth:`walked_scope`) records under ``key`` (a residual's ``connect:``, a repeat's
        ``count``), over this class's locals; None when the template does not say."""
        if key not in scope.meta:
            return None
        result = self.ours(scope.meta[key])
        return None if result is MISSING else result

    def block_signature(self, template: BlockTemplate, params: dict[str, str]) -> list[str]:
        """The block's parameters as ctor parameters: required ones first (channels positional,
        the rest keywords at the call sites)."""
        required, optional = [], []
        for pname, (type_name, default, is_required) in template.params.items():
            annotation = _TYPES[type_name]
            if is_required:
                required.append(f"{params[pname]}: {annotation}")
            else:
                value = to_node(coerce_param(default, type_name))
                optional.append(f"{params[pname]}: {annotation} = {unparse(value)}")
        return required + optional

    # --- checks against the static analysis ----------------------------------------------------
    def check_block_shape(self, instance: Any, out: Any) -> None:
        """The class's output at its probes is what its instance (a block scope) gives."""
        shape = out.shape if isinstance(out, FValue) else out
        if instance is None:
            return
        probed = tuple(probe_of(d) for d in shape)
        if MISSING not in probed and probed != tuple(instance.out_shape):
            raise AssertionError(f"codegen: block {instance.block} gives {probed} for {instance.path}, "
                                 f"the graph {instance.out_shape}")

    def check_network_shape(self, out: FValue) -> None:
        expected = self.planner.graph.main_output.shape
        if probe_of(tuple(out.shape)) != tuple(expected):
            raise AssertionError(f"codegen: the network gives {out.shape}, the graph {expected}")

    # --- statements -------------------------------------------------------------------------
    def emit(self, stmt: Stmt) -> None:
        self._sink.append(stmt)

    @contextmanager
    def sink(self, target: list[Stmt]) -> Iterator[list[Stmt]]:
        outer = self._sink
        self._sink = target
        try:
            yield target
        finally:
            self._sink = outer

    @staticmethod
    def fail(message: str, loc: Loc | None, hint: str | None = None) -> CodegenError:
        """What the code generator cannot express, located at ``loc`` (a template member's)."""
        return CodegenError(Diagnostic(message, loc, hint=hint))

    # --- naming (as the expander names) ------------------------------------------------------
    @staticmethod
    def taken(key: str, ctx: Ctx) -> tuple[str, str]:
        """The name a template key gives in ``ctx`` (its path there, without ``#k``), and the
        key."""
        assert key.startswith(ctx.prefix), f"{key} named in {ctx.prefix!r}"
        return re.sub(r"#\d+", "", key[len(ctx.prefix):]), key

    def layer_key(self, step: Step, ctx: Ctx) -> tuple[str, str]:
        """The layer's name, and its key in the class: its path as the template keys its item
        (an op or a block use) or its scope (a named construct), ``proj#1`` for the second
        layer named ``proj`` (under exclusive `when:`s), and the name that path gives it in
        ``ctx``: the key of the item or scope its step gives it (``step``: the layer's in the
        template's walk, :meth:`walked_member`; every walked layer has one), taken in ``ctx``
        (:meth:`taken`)."""
        member = self.walked_member(step)
        return self.taken(member.key if isinstance(member, TemplateItem) else member.path, ctx)

    def attribute(self, name: str, step: Step) -> str:
        """The layer's attribute as ``self.<it>`` reaches it: ``conv1``, or ``paths["0"]`` (a
        refused name points where its member's name is written: :func:`name_loc`)."""
        container, access = member_access(name, name_loc(self.walked_member(step)))
        if container is not None:
            self.containers.setdefault(container)
            self.attributes.setdefault(container)
        self.attributes.setdefault(access)
        return access

    # --- conditions and config attributes -----------------------------------------------------
    def condition(self, ctx: Ctx, step: Step, key: str = "when") -> Any:
        """A layer's `when:` or a residual's `connect:`, as its template records it, never as
        the AST has it: a layer's `when:` is its step's `when:` scope's condition (none: True);
        a `connect:` its own scope's (:meth:`scope_value`: its step's, which records one where
        the spec writes none too)."""
        if key == "when":
            scope = step.member
            if not step.is_when():
                return True
            result = self.ours(scope.meta.get("when", MISSING))
            result = None if result is MISSING else result
        else:
            scope = self.walked_member(step)
            result = self.scope_value(key, scope) if isinstance(scope, Scope) else None
        assert result is not None, f"`{key}:` at {scope.loc}: no template scope records it"
        if isinstance(result, Sym):
            if not is_known(result):
                raise NotGeneric(Diagnostic(f"`{key}:` depends on a size the generated class "
                                            "cannot compute", scope.loc))
            return result
        if not isinstance(result, bool):
            raise self.fail(f"`{key}:` needs a condition", scope.loc)
        return result

    def in_forward(self, node: ast.expr) -> ast.expr:
        """An init-time expression as the forward reads it: class locals become self.<cfg>."""
        return self.forward_names(_copy(node))

    def forward_names(self, node: ast.expr) -> ast.expr:
        """:meth:`in_forward` in place, for an expression made for this forward statement."""
        return _Locals(self).visit(node)

    def hoisted(self, value: Any) -> Any:
        """In the network class, a size computed from its arguments by a floor division, a
        helper (``make_divisible(32 * alpha, 8)``) or a choice (``48 if width == 0.5 else 116``)
        is computed once, in a local of __init__ (``channels``), and the layers read the local."""
        if not self.is_network or not isinstance(value, Sym):
            return value
        return Sym(_Hoist(self).visit(_copy(value.node)), value.probe, value.pair)

    def hoist(self, node: ast.expr) -> ast.expr:
        key = ast.dump(node)
        if key not in self.hoists:
            local = self.locals.create("channels")
            self.lets.append((local, Sym(node)))
            self.hoists[key] = local
        return ast.Name(self.hoists[key], ast.Load())

    def cfg_marker(self, wanted: str, value: ast.expr) -> ast.expr:
        """``self.<name>`` holding ``value`` (assigned in __init__); the name is chosen at the end."""
        key = ast.dump(value)
        for marker, (_, existing) in self.cfg.items():
            if ast.dump(existing) == key:
                return ast.Name(marker, ast.Load())
        marker = f"__cfg{len(self.cfg)}__"
        self.cfg[marker] = (wanted, value)
        return ast.Name(marker, ast.Load())

    # --- the walk ------------------------------------------------------------------------------
    def template_walk(self) -> list[Step]:
        """The class's layers as its template has them: its body's members in order (items and
        scopes; a `when:`'s ``select`` is its layer's), a `when:`'s or a sequence's members from
        its scope, a construct's parts and copies from theirs (:func:`walk_steps`). A template
        that cannot be walked is a bug (one that lost a member)."""
        assert self.template is not None, f"class {self.name}: no template"
        steps = walk_steps(self.template, self.template.members)
        whose = f"block `{self.template.name}`'s" if self.template.name else "the network's"
        assert not isinstance(steps, str), \
            f"class {self.name}: {whose} template cannot be walked: {steps}"
        return steps

    def walk(self, steps: list[Step], x: FValue, ctx: Ctx, hint: Any = None) -> FValue:
        """Translate the members of a class or an unnamed sequence one after the other (the
        first takes ``hint``)."""
        for k, step in enumerate(steps):
            x = self.layer(step, x, step.ctx(ctx), hint if k == 0 else None)
        return x

    def chain_walk(self, steps: list[Step], shape: Shape, ctx: Ctx) -> tuple[list[Item], Shape]:
        """The members of an nn.Sequential class (:meth:`template_walk`), as :meth:`chain`."""
        return self.chain_members(steps, shape, ctx)

    # --- layers in a module class ---------------------------------------------------------------
    def layer(self, step: Step, x: FValue, ctx: Ctx, hint: Any = None) -> FValue:
        """Translate the layer of ``step`` (its step in the template's walk: its members' and
        parts' steps) fed by ``x``: attributes into __init__, statements into forward."""
        folded = self.folded_away(step)  # (then its readers read the conv)
        when = False if folded else self.condition(ctx, step)
        if when is False:
            if folded:
                self.record(step, x)
            out = x
        elif isinstance(when, Sym):
            out = self.conditional(step, x, ctx, when, hint)
        else:
            out = self.present(step, x, ctx, hint)
        scope = step.member if step.is_when() else None
        if isinstance(scope, Scope) and scope.output in self.selects:  # (its select: what the
            # layers after it read; with the class's `when:` plain too, a parameter written in)
            self.produced[self.selects[scope.output]] = out
        return out

    def record(self, step: Step, out: FValue) -> None:
        """What a walked layer computes, under its item's key or its scope's output's."""
        member = self.walked_member(step)
        self.produced[member.key if isinstance(member, TemplateItem) else member.output] = out

    def inputs_of(self, step: Step, ctx: Ctx) -> list[FValue]:
        """A walked layer's inputs, as its item (its ``inputs``) or scope (its ``input``) has
        them: the values computed under those keys (the block's input: ``ctx.block_input``).
        A key not computed before it is a bug (a template that lost what computes it), not a
        name looked up over the AST."""
        member = self.walked_member(step)
        keys = member.inputs if isinstance(member, TemplateItem) else (member.input,)
        values = [ctx.block_input if key == INPUT else self.produced.get(key) for key in keys]
        missing = [key for key, value in zip(keys, values) if value is None]
        assert not missing, f"layer at {member.loc}: its input {missing[0]} is not computed " \
            "before it in its class"
        return values  # type: ignore[return-value]

    def present(self, step: Step, x: FValue, ctx: Ctx, hint: Any) -> FValue:
        # a `from:` reads what its item's (scope's) input keys name
        inputs = self.inputs_of(step, ctx) if self.reads_from(step) else [x]
        output = self.output_of(step)
        if output is not None:  # (it does not feed the next layer: ``x`` goes on, not what
            # it read with `from:`)
            self.side_output(step, output, inputs, ctx)
            return x
        out = self.dispatch(step, inputs, ctx, hint)
        self.record(step, out)
        return out

    def dispatch(self, step: Step, inputs: list[FValue], ctx: Ctx, hint: Any) -> FValue:
        """Translate the layer of ``step`` by what it is, as its item or scope records it
        (:meth:`kind_of`): an op, a block use, an unnamed construct inline, a named one as one
        module."""
        kind, named = self.kind_of(step)
        if kind == "op":
            return self.op_call(step, inputs, ctx, hint)
        if kind == "when":  # (a `when:` scope recording nothing of the layer's own: its
            # members' steps; none: its input passes through)
            return self.walk(self.sequence_steps(step), inputs[0], ctx, hint)
        if kind == "use" and len(inputs) > 1:  # a block with several inputs
            return self.submodule(step, inputs[0], ctx, hint, inputs[1:])
        x = inputs[0]
        parts = step.members()[1]
        if kind == "seq" and not named:
            return self.walk(self.sequence_steps(step), x, ctx, hint)
        own = step.own()  # (a construct's step)
        scope = own.member
        if kind in ("repeat", "dense") and not named:
            assert isinstance(scope, Scope)
            return self.inline_dense(scope, x, ctx, parts) if kind == "dense" \
                else self.inline_repeat(scope, x, ctx, parts)
        if kind == "parallel" and not named:
            assert isinstance(scope, Scope)
            return self.parallel(scope, x, ctx, hint, parts, own.merge)
        if kind == "residual" and not named:
            assert isinstance(scope, Scope)
            return self.residual(step, x, ctx, hint, parts, own.merge)
        if kind == "seq" and self.read_inside(self.own_name(step, ctx)):
            return self.split_sequence(step, x, ctx)
        return self.submodule(step, x, ctx, hint)

    def split_sequence(self, step: Step, x: FValue, ctx: Ctx) -> FValue:
        """A named sequence a member of which is read elsewhere (``from: layer1.bn1``): one
        nn.Sequential still (its state_dict keys), run member by member in forward
        (``bn1 = self.layer1[1](x)``), each member's output known by its path."""
        own, key = self.layer_key(step, ctx)
        name = self.attribute(own, step)
        frozen = ctx.frozen  # (its own `freeze:` too: its step's, Step.ctx)
        items, _ = self.sequence_items(step, x.shape, replace(ctx, frozen=False), key)
        if any(item.cond is not None for item in items):
            raise NotGeneric(Diagnostic("a member of a sequence read with `from:` under a "
                                        "`when:` on a parameter", self.walked_member(step).loc))
        expr = self.sequential(items, ctx)
        if frozen and any(item.module.has_params for item in items):
            expr = Frozen(expr)
        self.emit(Assign(f"self.{name}", expr))
        out = x
        for k, item in enumerate(items):
            path = f"{own}.{item.name}"  # (as member_reads name it)
            hint = item.name if path in self.member_reads and item.name.isidentifier() else x
            out = self.fb.assign(f"self.{name}[{k}]({{0}})", [out], item.module.shape,
                                 op=item.module.op, hint=hint, inplace=item.module.inplace)
            self.produced[f"{key}.{item.name}"] = out
        return out

    def submodule(self, step: Step, x: FValue, ctx: Ctx, hint: Any,
                  more: list[FValue] | tuple[FValue, ...] = ()) -> FValue:
        """A layer that is one module: ``self.name = ...`` and ``out = self.name(x)`` (a block
        with several inputs: ``self.name(x, y)``)."""
        name, key = self.layer_key(step, ctx)
        name = self.attribute(name, step)
        result = self.module_of(step, x.shape, ctx, key, tuple(v.shape for v in more))
        self.emit(Assign(f"self.{name}", result.expr))
        slots = ", ".join("{" + str(i) + "}" for i in range(1 + len(more)))
        return self.fb.assign(f"self.{name}({slots})", [x, *more], result.shape, op=result.op,
                              hint=hint, inplace=result.inplace)

    def conditional(self, step: Step, x: FValue, ctx: Ctx, cond: Sym, hint: Any) -> FValue:
        """A layer with a symbolic ``when:``: built under ``if`` in __init__, run under ``if``."""
        assert self.output_of(step) is None, f"output: at {step.member.loc} under a symbolic " \
            "when: (its template refuses it)"
        with _assuming(x, cond):  # (its `when:` is its step's: :meth:`condition`)
            then, block = self.conditional_body(step, x, ctx, cond)
        shape = tuple(select(cond, t, e) for t, e in zip(then.shape, x.shape))
        return self.fb.merge(block, then, x, shape, hint if isinstance(hint, str) else None)

    def conditional_body(self, step: Step, x: FValue, ctx: Ctx, cond: Sym) -> tuple[FValue, Any]:
        if self.none_when_absent(step, x.shape, ctx):
            name, key = self.layer_key(step, ctx)
            name = self.attribute(name, step)
            body: list[Stmt] = []
            with self.sink(body):
                result = self.module_of(step, x.shape, ctx, key)
            body.append(Assign(f"self.{name}", result.expr))
            self.emit(If(cond, body, [Assign(f"self.{name}", None)]))
            with self.fb.branch(parse_expr(f"self.{name} is not None")) as block:
                then = self.fb.assign(f"self.{name}({{0}})", [x], result.shape, op=result.op,
                                      inplace=result.inplace)
        else:
            body = []
            with self.sink(body), self.fb.branch(self.in_forward(cond.node)) as block:
                then = self.present(step, x, ctx, None)
            if body:
                self.emit(If(cond, body))
            self.placeholders.extend(a for a in _assigned_attributes(body)
                                     if a not in self.placeholders)
        return then, block

    def output_of(self, step: Step) -> str | None:
        """A layer's ``output:`` name, as its template records it (the output whose node is its
        item's key or its scope's output, unless that is the output of the scope around it
        too)."""
        member = self.walked_member(step)
        assert self.template is not None
        key = member.key if isinstance(member, TemplateItem) else member.output
        parent = self.template.scopes.get(member.scope if isinstance(member, TemplateItem)
                                          else member.parent or "")
        if parent is not None and parent.output == key:  # (the output of the construct around
            # it, as its last member: the construct's `output:`, an unnamed `seq:`'s)
            return None
        return next((name for name, out in self.template.outputs.items() if out == key), None)

    def side_output(self, step: Step, name: str, inputs: list[FValue], ctx: Ctx) -> None:
        """``output: NAME``: computed in training mode only, returned in the outputs tuple."""
        if not self.is_network:
            raise self.fail(f"`output: {name}` inside a block cannot be generated",
                            self.walked_member(step).loc,
                            hint="mark auxiliary outputs on layers of the network itself")
        with self.fb.branch(parse_expr("self.training")):
            out = self.dispatch(step, inputs, ctx, name)
        self.record(step, out)
        field_name = self.output_names.create(name.lstrip("_"), fallback="aux")
        self.outputs[field_name] = out

    # --- ops -------------------------------------------------------------------------------
    def op_call(self, step: Step, inputs: list[FValue], ctx: Ctx, hint: Any) -> FValue:
        shapes = [v.shape for v in inputs]
        name, _ = self.layer_key(step, ctx)
        op, attrs, shape = self.op_shape(step, ctx.env, shapes)
        loc = self.walked_member(step).loc
        lowering = op_lowering(op, attrs, shapes, shape, loc)
        if lowering.has_attribute:
            attr = self.attribute(name, step)
            ctor, inplace = self.ctor(op, lowering, ctx, loc)
            frozen = ctx.frozen and has_params(op, attrs, shapes, shape)
            self.emit(Assign(f"self.{attr}", Frozen(ctor) if frozen else ctor))
            template = _positional(lowering.forward, len(inputs), f"self.{attr}")
        else:
            inplace = None
            template = _positional(lowering.forward, len(inputs), None)
        return self.fb.assign(template, inputs, shape, op=op.name, hint=hint, inplace=inplace,
                              transform=self.forward_names)

    # --- inline constructs (unnamed: their layers are this class's attributes) -----------------
    def inline_repeat(self, scope: Scope, x: FValue, ctx: Ctx,
                      copies: dict[str, list[Step]] | None) -> FValue:
        """An unnamed repeat (its scope ``scope``): its copies one after the other."""
        out = x
        for i in range(self.count(scope, ctx)):
            item_ctx = ctx.with_env(ctx.env.with_values(i=i))
            out = self.copy(scope, i, copies, out, item_ctx)
        return out

    def copy(self, scope: Scope, i: int, copies: dict[str, list[Step]] | None, x: FValue,
             ctx: Ctx) -> FValue:
        """Copy ``i`` of a repeat: its steps, as the repeat's scope records them
        (:func:`~archdsl.codegen.modules.copy_steps`; none: its input passes through)."""
        return self.walk(copy_steps(scope, i, copies), x, ctx)

    def inline_dense(self, scope: Scope, x: FValue, ctx: Ctx,
                     copies: dict[str, list[Step]] | None) -> FValue:
        """An unnamed dense block: its concats are the items its scope records as its merges
        (``meta["parts"]``), in order (one it does not record is an internal error)."""
        assert self.template is not None
        made = scope.meta.get("parts", {})
        concats = iter([self.template.items[key] for key in scope.members
                        if made.get(key) == "merge"])

        def concat() -> TemplateItem:
            item = next(concats, None)
            assert item is not None, f"dense at {scope.loc}: its scope records no concat of " \
                f"{len(features)} inputs"
            return item

        features = [x]
        out = x
        for i in range(self.count(scope, ctx)):
            item_ctx = ctx.with_env(ctx.env.with_values(i=i))
            if i > 0:
                out = self.merge(concat(), features, item_ctx, None)
            out = self.copy(scope, i, copies, out, item_ctx)
            features.append(out)
        if len(features) > 1:
            out = self.merge(concat(), features, ctx, None)
        return out

    def merge(self, item: TemplateItem, inputs: list[FValue], ctx: Ctx, hint: Any,
              shape: tuple[Any, ...] | None = None) -> FValue:
        """``add``/``mul``/``concat`` of ``inputs``, as its item records it (``item``: the one
        its construct's step gives it, :attr:`Step.merge`): its op, its key (in ``ctx``:
        :meth:`taken`) and, unless ``shape`` is known (an add run under ``if`` may not
        type-check for the probed instance, which does not run it), its shape (inputs other
        than the item's are an internal error)."""
        op = REGISTRY[item.target]
        key = self.taken(item.key, ctx)[1]
        assert self.template is not None
        assert self.template.items.get(key) is item, \
            f"{op.name} {key}: the step's merge item is {item.name}"
        shapes = [v.shape for v in inputs]
        if shape is None:
            shape = self.item_shape(item, shapes)
        template = _positional(op_lowering(op, {}, shapes, shape, None).forward, len(inputs), None)
        self.produced[key] = out = self.fb.assign(template, inputs, shape, op=op.name, hint=hint)
        return out

    def parallel(self, scope: Scope, x: FValue, ctx: Ctx, hint: Any,
                 parts: dict[str, list[Step]] | None,
                 merge: TemplateItem | None) -> FValue:
        """An unnamed parallel (its scope ``scope``): its branches and ``after`` are the parts
        its scope records (``parts``: a branch by its index,
        :func:`~archdsl.codegen.modules.walk_steps`), a branch live unless its own `when:` scope
        says not (``meta["part_whens"]``: :meth:`branch_exists`), each live branch's output
        named as its scope's record says (``meta["hints"]``:
        :func:`~archdsl.blocks.expander.branch_name`), else by its position."""
        assert parts is not None, f"parallel at {scope.loc}: its template does not walk its parts"
        whens = scope.meta.get("part_whens") or {}
        live = [name for name, steps in parts.items() if name != "after"
                and self.branch_exists(steps, whens.get(name), x, ctx)]
        if not live:  # every branch dropped: the construct passes its input through
            return x
        names = scope.meta.get("hints") or {}
        outs = [self.walk(parts[k], x, ctx, names.get(k) or f"branch{int(k) + 1}") for k in live]
        if len(outs) == 1:
            merged = outs[0]
        else:  # (its op: its scope's merge item's)
            assert merge is not None, f"parallel at {scope.loc}: its template records no merge"
            merged = self.merge(merge, outs, ctx, hint if hint is not None else x)
        if "after" in parts:
            merged = self.walk(parts["after"], merged, ctx)
        return merged

    def branch_exists(self, steps: list[Step], when: str | None, x: FValue, ctx: Ctx) -> bool:
        """A branch whose ``when:`` is false is dropped from the merge (not an identity branch),
        as the expander drops it; one whose ``when:`` depends on the block's parameters would
        change the merge's inputs per use, so the block is written per use (its template
        refuses it). ``steps``: its part's; ``when``: the path of its own `when:` scope, its
        first step, recording the condition (:meth:`condition`; none: it has no `when:`)."""
        if when is None:
            return True
        (step,) = [step for step in steps[:1] if isinstance(step.member, Scope)
                   and step.member.path == when]
        live = self.condition(ctx, step)  # (its scope's, not the AST's)
        assert not isinstance(live, Sym), \
            f"branch at {step.member.loc}: a symbolic when: in a template"
        return live is not False

    def residual(self, step: Step, x: FValue, ctx: Ctx, hint: Any,
                 parts: dict[str, list[Step]] | None,
                 merge: TemplateItem | None) -> FValue:
        """An unnamed residual (its step ``step``): its ``body``, ``shortcut`` (none: its input)
        and ``after`` are the parts its scope records (``parts``)."""
        loc = self.walked_member(step).loc
        assert parts is not None, f"residual at {loc}: its template does not walk its parts"
        body = self.walk(parts["body"], x, ctx, hint or "out")
        shortcut = self.walk(parts["shortcut"], x, ctx, "identity") if "shortcut" in parts else x
        connect = self.condition(ctx, step, "connect")
        assert merge is not None or connect is False, \
            f"residual at {loc}: its template records no merge"
        out = body
        if connect is True:
            out = self.merge(merge, [body, shortcut], ctx, None)
        elif isinstance(connect, Sym):
            flag = self.cfg_marker("use_res_connect", connect.node)
            with self.fb.branch(flag) as block:
                added = self.merge(merge, [body, shortcut], ctx, None, body.shape)
            out = self.fb.merge(block, added, body, body.shape)
        if "after" in parts:
            out = self.walk(parts["after"], out, ctx)
        return out

    # --- finishing ---------------------------------------------------------------------------
    def network_return(self, out: FValue) -> None:
        if self.outputs:
            names = list(self.outputs)
            values = list(self.outputs.values())
            cls = self.planner.outputs_class
            with self.fb.branch(parse_expr("self.training")):
                self.fb.ret([out, *values], lambda nodes: ast.Call(
                    ast.Name(cls, ast.Load()), list(nodes), []))
            self.outputs = {"out": out, **dict(zip(names, values))}
        self.fb.ret([out], lambda nodes: nodes[0])

    def cfg_names(self) -> dict[str, str]:
        """Final names of the config attributes: after the submodules, which keep theirs."""
        names = Namespace([*self.attributes, *MODULE_ATTRIBUTES])
        return {marker: names.create(wanted, marker, fallback="cfg")
                for marker, (wanted, _) in self.cfg.items()}

    def module_plan(self, signature: list[str], doc: list[str], in_names: list[str]) -> ClassPlan:
        names = self.cfg_names()
        reserved = set(self.planner.globals.names())
        markers = _Markers(names)
        forward = render_block(self.fb.finish(markers.visit, reserved), BODY_INDENT)
        cfg_stmts: list[Stmt] = [Assign(f"self.{names[m]}", value)  # (those forward reads: an
                                 # `if` that runs nothing is not written, nor its flag)
                                 for m, (_, value) in self.cfg.items() if m in markers.used]
        containers: list[Stmt] = [Assign(f"self.{c}", Code("nn.ModuleDict()")) for c in self.containers]
        init_lines = render_block(cfg_stmts + containers + self.placeholder_stmts() + self.init,
                                  BODY_INDENT)
        lets = self.used_lets(init_lines)
        init = [" " * BODY_INDENT + "super().__init__()", *render_block(self.checks, BODY_INDENT),
                *render_block(lets, BODY_INDENT), *init_lines]
        params = self.used_params(signature, in_names, init)
        returns = "Tensor"
        if self.is_network and len(self.outputs) > 1:
            returns = f"{self.planner.outputs_class} | Tensor"
        return ClassPlan(self.name, "nn.Module", doc, params, init, forward, returns,
                         inputs=[v.var for v in self.fb.inputs])

    def placeholder_stmts(self) -> list[Stmt]:
        """Modules built only under a condition start as ``nn.Identity()`` (replaced when they
        exist), so that every branch of forward refers to a module (TorchScript compiles all)."""
        always = set(_assigned_attributes(self.init))
        missing = [a for a in self.placeholders if a not in always]
        if not missing:
            return []
        note = Comment("modules built only under a condition; placeholders until then")
        return [note] + [Assign(f"self.{a}", Code("nn.Identity()")) for a in missing]

    def sequential_plan(self, items: list[Item], signature: list[str], doc: list[str],
                        in_names: list[str]) -> ClassPlan:
        body: list[Stmt] = []
        with self.sink(body):
            expr = self.sequential(items, Ctx(Env({}, ())), func="super().__init__")
        body.append(ExprStmt(expr))
        body_lines = render_block(body, BODY_INDENT)
        lets = self.used_lets(body_lines)
        init = [*render_block(self.checks, BODY_INDENT), *render_block(lets, BODY_INDENT), *body_lines]
        params = self.used_params(signature, in_names, init)
        return ClassPlan(self.name, "nn.Sequential", doc, params, init, [], kind="sequential")

    def used_lets(self, lines: list[str]) -> list[Stmt]:
        used = _names_in_lines(lines)
        keep: list[tuple[str, Any]] = []
        for local, value in reversed(self.lets):
            if local in used:
                keep.append((local, value))
                used |= names_in(value)
        return [Assign(local, value) for local, value in reversed(keep)]

    def used_params(self, signature: list[str], in_names: list[str], init: list[str]) -> list[str]:
        used = _names_in_lines(init)
        params = [f"{n}: int" for n in in_names if n == "in_channels" or n in used]
        return params + signature if in_names else signature


# --- helpers -----------------------------------------------------------------------------------

_BUILTINS = frozenset({"int", "float", "round", "max", "min", "abs"})


class _Hoist(ast.NodeTransformer):
    """Floor divisions, helper calls and choices become locals of __init__ (inner ones first)."""

    def __init__(self, builder: ClassBuilder):
        self.builder = builder

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        self.generic_visit(node)
        return self.builder.hoist(node) if isinstance(node.op, ast.FloorDiv) else node

    def visit_Call(self, node: ast.Call) -> ast.expr:
        self.generic_visit(node)
        helper = isinstance(node.func, ast.Name) and node.func.id not in _BUILTINS
        return self.builder.hoist(node) if helper else node

    def visit_IfExp(self, node: ast.IfExp) -> ast.expr:  # a value chosen by a parameter
        self._visit_choice(node)
        return self._short_choice(node)

    def _short_choice(self, node: ast.IfExp) -> ast.expr:
        """A choice as one local whose line fits (ruff joins a split one at 110 columns and
        splits a joined one at 88); a longer chain's tail becomes a local first."""
        if isinstance(node.orelse, ast.IfExp) and \
                BODY_INDENT + len("channels_10 = " + unparse(node)) > LINE_LENGTH:
            node.orelse = self._short_choice(node.orelse)
        return self.builder.hoist(node)

    def _visit_choice(self, node: ast.IfExp) -> None:
        """The parts of a chain of choices (``a if x else b if y else c``): one local in all."""
        node.test = self.visit(node.test)
        node.body = self.visit(node.body)
        if isinstance(node.orelse, ast.IfExp):
            self._visit_choice(node.orelse)
        else:
            node.orelse = self.visit(node.orelse)


class _Locals(ast.NodeTransformer):
    """Class locals (parameters, lets) in a forward expression become config attributes."""

    def __init__(self, builder: ClassBuilder):
        self.builder = builder

    def visit_Name(self, node: ast.Name) -> ast.expr:
        if node.id in self.builder.class_locals:
            return self.builder.cfg_marker(node.id, ast.Name(node.id, ast.Load()))
        return node


@contextmanager
def _assuming(x: FValue, cond: Sym) -> Iterator[None]:
    """While a layer under ``if cond`` is translated, its input's sizes are simplified by ``cond``."""
    saved = x.shape
    x.shape = refine(saved, cond)
    try:
        yield
    finally:
        x.shape = saved


def _copy(node: ast.expr) -> ast.expr:
    return copy.deepcopy(node)


class _Markers(ast.NodeTransformer):
    """Config-attribute markers become ``self.<name>`` once the names are chosen."""

    def __init__(self, names: dict[str, str]):
        self.names = names
        self.used: set[str] = set()  # the markers met

    def visit_Name(self, node: ast.Name) -> ast.expr:
        if node.id in self.names:
            self.used.add(node.id)
            return ast.Attribute(ast.Name("self", ast.Load()), self.names[node.id], ast.Load())
        return node


def _assigned_attributes(stmts: list[Stmt]) -> list[str]:
    """``self.<name>`` assigned directly (not under an ``if``) by these statements."""
    return [s.target[5:] for s in stmts if isinstance(s, Assign) and s.target.startswith("self.")]


def _names_in_lines(lines: list[str]) -> set[str]:
    tree = ast.parse(textwrap.dedent("\n".join(lines)) or "pass")
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def _positional(template: str, count: int, module: str | None) -> str:
    """An op's forward template with its inputs as {0}, {1}, ... for the forward builder."""
    slots = ["{" + str(i) + "}" for i in range(count)]
    fields = {f"x{i}": slot for i, slot in enumerate(slots)}
    return template.format(m=module or "", x="{0}", xs=", ".join(slots), **fields)


def _network_doc(header: BlockTemplate, name: str, ctor_params: dict[str, str],
                 checked: bool) -> list[str]:
    """The network's docstring: the spec's doc, then which spec parameters the class takes."""
    lines = docstring_lines(header.doc or f"The network `{name}`.")
    if ctor_params:
        names = ", ".join(f"`{p}`" for p in ctor_params.values())
        lines += ["", f"Arguments: the spec parameters {names}"
                  + ("; the spec's `checks:` run on them." if checked else ".")]
    return lines  # (make_plan adds the parameters written in, once it has chosen)


def _block_doc(template: BlockTemplate, file: str, instance: Any) -> list[str]:
    """A block class's docstring: the block's doc, where it is defined (relative to ``file``,
    the spec's), whose shapes the comments show."""
    lines = docstring_lines(template.doc or f"The block `{template.name}`.")
    assert template.loc is not None
    origin = os.path.relpath(template.loc.file, os.path.dirname(file) or ".")
    where = f"Block `{template.name}` of {origin.replace(os.sep, '/')}."
    if instance is not None:
        where += f" Shape comments are those of `{instance.path}`."
    return lines + [""] + docstring_lines(where)


def _fmt(shape: tuple[int, ...]) -> str:
    return " x ".join(str(d) for d in shape)

