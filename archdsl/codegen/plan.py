"""Decisions: from a checked graph (its templates) to the plan of the generated module.

The :class:`Planner` decides which classes the module has (one per block used, generic in the
block's parameters; the network; ``DenseBlock`` and the outputs tuple when needed), names them
through one namespace, and has :class:`~archdsl.codegen.translate.ClassBuilder` translate each.
Layout is left to the templates (:mod:`archdsl.codegen.emit`).
"""

from __future__ import annotations

import ast
import os
import textwrap
from typing import Any

from ..blocks.expander import (
    block_templates,
    bound_template,
    declared_template,
    network_template,
    probed_template,
)
from ..blocks.namespace import CodegenError, Namespace, NotGeneric
from ..blocks.pysrc import docstring_lines
from ..blocks.sym import decisions, key_of
from ..errors import Diagnostic
from ..ir import BlockTemplate, Graph
from .classes import BODY_INDENT, BlockInfo, ClassPlan, ModulePlan
from .names import camel_case
from .translate import ClassBuilder

__all__ = ["BODY_INDENT", "ClassPlan", "ModulePlan", "Planner", "make_plan"]


class Planner:
    """Plans the classes of one generated module."""

    def __init__(self, graph: Graph, reuse: Planner | None = None):
        self.graph = graph
        self.globals = Namespace()
        self.network_class = self.globals.create(camel_case(graph.name), fallback="Net")
        self.factory = self.globals.create(graph.name.replace("-", "_").replace(".", "_"),
                                           fallback="model")
        self.outputs_class = self.globals.create(self.network_class + "Outputs")
        self.dense_class = self.globals.create("DenseBlock")
        self.block_classes = {name: self.globals.create(camel_case(name), fallback="Block")
                              for name in graph.block_names}  # all first: no local hides one
        self.blocks: dict[str, BlockInfo | None] = {}
        self.classes: list[ClassPlan] = []
        self.dense_used = False
        self._bound: dict[Any, BlockTemplate] = {}  # (one use's template: see bound)
        self.template_outputs: dict[Any, tuple[Any, ...]] = {}  # (the template expander's)
        self._special: dict[Any, str] = {}
        self._declared: dict[str, BlockTemplate] = {}  # (see template)
        self._instances = self._first_instances()
        self.templates = graph.templates or block_templates(graph)
        self.reads = {name: set(t.reads) for name, t in self.templates.items() if name}
        self.lifted: tuple[str, ...] = ()  # the network's constructor arguments (see plan)
        self.header = network_template(graph, (), body=False)  # (the network class's, once planned)
        self.block_plans: list[ClassPlan] = []  # the classes of blocks, once the network is planned
        if reuse is not None:
            self._reuse_blocks(reuse)

    def _reuse_blocks(self, other: Planner) -> None:
        """Take the block classes ``other`` planned for the same graph: they do not depend on which
        spec parameters the network class takes unless they read one (``make_plan`` plans again
        then), and planning them is most of the work (every instance is checked)."""
        self.blocks = dict(other.blocks)
        self.classes = list(other.block_plans)
        self.dense_used = other.dense_used
        self._bound = dict(other._bound)
        self.template_outputs = other.template_outputs
        self._special = dict(other._special)
        for name in self._special.values():
            self.globals.reserve(name)

    def _first_instances(self) -> dict[str, Any]:
        first: dict[str, Any] = {}
        for scope in self.graph.scopes.values():
            if scope.kind == "block" and scope.block not in first:
                first[scope.block] = scope
        return first

    def _check_ranks(self) -> None:
        """A block used on images and on flat features must generate the same class for both
        (``bn`` is BatchNorm2d on one and BatchNorm1d on the other)."""
        for name, info in self.blocks.items():
            if info is None:
                continue
            first = self._instances.get(name)
            others = [s for s in self.graph.scopes.values() if s.kind == "block" and s.block == name
                      and first is not None and len(s.in_shape) != len(first.in_shape)]
            if not others:
                continue
            _, plan = ClassBuilder(self, info.class_name).build_block(name, others[0])
            if _code_of(plan) != _code_of(info.plan):
                raise CodegenError(Diagnostic(
                    f"block `{name}` is used on inputs of different ranks ({first.path}: "
                    f"{_fmt(first.in_shape)}, {others[0].path}: {_fmt(others[0].in_shape)}) and "
                    "needs different code for each", self.template(name).loc,
                    hint="define one block for images and one for flat features"))

    def plan(self, ctor_params: tuple[str, ...] = ()) -> ModulePlan:
        """The module; ``ctor_params`` are the spec parameters the network class takes."""
        # a block that reads a constructor argument (or uses one that does) takes it too
        self.lifted = ctor_params
        builder = ClassBuilder(self, self.network_class)
        network = builder.build_network(ctor_params)
        self.block_plans = list(self.classes)
        if not set(builder.ctor_params.values()) <= _names_in_init(network):
            raise NotGeneric(Diagnostic("a spec parameter no layer of the class uses", None))
        self._check_ranks()
        if self.dense_used:
            self.classes.append(_dense_class(self.dense_class))
        if builder.outputs:
            self.classes.append(ClassPlan(
                self.outputs_class, "NamedTuple",
                ["The outputs in training mode: the main output first, then the auxiliary heads."],
                fields=[f"{name}: Tensor" for name in builder.outputs], kind="outputs"))
        self.classes.append(network)
        locals_ = builder.ctor_params.values()
        return ModulePlan(self.graph.name, os.path.basename(self.graph.file), self.classes,
                          self.network_class, self.factory,
                          [p for p in network.params if p.split(":")[0] in locals_],
                          list(locals_), doc=self.templates[""].doc)

    # --- blocks ------------------------------------------------------------------------------
    def block_info(self, name: str, call: tuple[dict[str, Any], tuple[Any, ...]] | None = None,
                   ) -> BlockInfo | None:
        """The generic class of block ``name``, planned on first use (callees before callers);
        None when the block needs one class per use (see :meth:`special_class`). ``call``: the
        arguments and input shape of the use being translated."""
        template = self.templates.get(name)
        if name not in self.blocks and template is not None and template.per_use is not None:
            self.blocks[name] = None  # (its template says why)
        if name not in self.blocks:
            builder = ClassBuilder(self, self.block_classes[name])
            try:  # (the template checked that every instance decides its tests as the first)
                info, plan = builder.build_block(name, self._instances.get(name), call)
            except NotGeneric:
                self.blocks[name] = None
                return None
            self.blocks[name] = info
            self.classes.append(plan)
        return self.blocks[name]

    def template(self, name: str) -> BlockTemplate:
        """Block ``name``'s template; one no instance or template uses (a class does, under a
        `when:` a constructor argument decides) has its declarations only."""
        if name in self.templates:
            return self.templates[name]
        if name not in self._declared:
            self._declared[name] = declared_template(self.graph, name)
        return self._declared[name]

    def special_class(self, block_name: str, args: dict[str, Any], in_shape: tuple[Any, ...],
                      more: tuple[tuple[Any, ...], ...] = ()) -> str:
        """A class for one use of block ``block_name`` that cannot be generic: every value
        written in (``more``: the shapes of the other inputs of a block with several)."""
        key = (block_name, key_of(args), key_of(in_shape), key_of(more))
        if key not in self._special:
            count = 1 + sum(1 for k in self._special if k[0] == block_name)
            name = self.globals.create(f"{self.block_classes[block_name]}_{count}")
            builder = ClassBuilder(self, name)
            self._special[key] = name
            bound = self.bound(block_name, args, in_shape, more)
            self.classes.append(builder.build_special(bound, args, in_shape, more))
        return self._special[key]

    def first_instance(self, block: str) -> Any:
        """The first use of block ``block`` in the graph (None: none): its template's probes."""
        return self._instances.get(block)

    def spec_params_of(self, block: str) -> list[str]:
        """The spec parameters block ``block``'s class takes: the network's constructor
        arguments it reads, in the spec's order."""
        return [p for p in self.lifted if p in self.reads.get(block, ())]

    def bound(self, name: str, args: dict[str, Any], in_shape: tuple[Any, ...],
              more: tuple[tuple[Any, ...], ...] = ()) -> BlockTemplate:
        """The template of one use of block ``name``, its values bound (``bound_template``), expanded
        once per arguments and input shapes: a class written for the use reads it."""
        key = (name, key_of(args), key_of(in_shape), key_of(more))
        if key not in self._bound:
            t = bound_template(self.graph, name, {**self.graph.params, **args}, in_shape,
                               self.template_outputs, more)
            if t.per_use is not None:
                raise NotGeneric(Diagnostic(f"the output of block `{name}` cannot be "
                                            "computed in a generic class", t.loc))
            self._bound[key] = t
        return self._bound[key]

    def probed(self, name: str, args: dict[str, Any], in_shape: tuple[Any, ...]) -> BlockTemplate:
        """Block ``name``'s template probed by these arguments and input sizes (plain): what a
        generic class built from other probes than its template's reads (``probed_template``)."""
        return probed_template(self.graph, name, args, in_shape, self.template_outputs)


def _code_of(plan: ClassPlan) -> list[str]:
    """A class's code without its comments (shape comments differ between instances)."""
    return [line.split("  #")[0] for line in (*plan.params, *plan.init, *plan.forward)
            if not line.lstrip().startswith("#")]


def _fmt(shape: tuple[int, ...]) -> str:
    return " x ".join(str(d) for d in shape)


def _dense_class(name: str) -> ClassPlan:
    doc = ("A dense block (DenseNet): every layer sees the concatenation of the block's input and "
           "all earlier layers' outputs; the block returns the concatenation of all of them.")
    return ClassPlan(name, "nn.ModuleDict", [doc],
        params=["/", "**layers: nn.Module"],
        init=[" " * BODY_INDENT + "super().__init__(layers)"],
        forward=[
            " " * BODY_INDENT + "features = [x]",
            " " * BODY_INDENT + "for layer in self.values():",
            " " * (BODY_INDENT + 4) + "features.append(layer(torch.cat(features, 1)))",
            " " * BODY_INDENT + "return torch.cat(features, 1)",
        ], kind="dense")


# --- one class -----------------------------------------------------------------------------------

def make_plan(graph: Graph, ctor_params: bool = True) -> ModulePlan:
    """The plan of the generated module for a checked graph.

    With ``ctor_params``, the network class takes the spec parameters, as torchvision's builders
    do (``densenet121(growth_rate=48)``): their values in the class are expressions of its
    arguments, checked by the spec's ``checks:``; a block class that reads one takes it too
    (``InvertedResidual(..., width_mult=width_mult)``). A parameter stays written in when the
    class could not follow it: it counts repeats, or sizes a block written per use, or a test on
    a size computed from it was decided by its value (the code would be right for this value
    only), or no layer uses it. Without ``ctor_params``, every parameter is written in (what
    ``archdsl check`` plans: the refusals are the same).
    """
    if not graph.templates:  # (before counting the tests the plans decide by their probes; a
        # graph without its spec has none: a ValueError)
        block_templates(graph)
    before = decisions()
    planner = Planner(graph)
    fixed = planner.plan()
    full = decisions() - before  # by the block classes' probes and the network class
    if not ctor_params or not graph.params:
        return fixed
    before = decisions()
    Planner(graph, reuse=planner).plan()
    network_only = decisions() - before  # by the network class with every parameter written in
    chosen: tuple[str, ...] = ()
    best = fixed
    why: dict[str, str] = {}  # a parameter written in -> why the class cannot take it
    candidates = [tuple(graph.params)] if len(graph.params) > 1 else []
    candidates += [(name,) for name in graph.params]
    for trial in candidates:
        names = tuple(n for n in graph.params if n in chosen or n in trial)
        # the block classes do not depend on the choice unless one reads a chosen parameter
        lifting = any(planner.reads[block] & set(names) for block in planner.reads)
        before = decisions()
        try:
            plan = Planner(graph, reuse=None if lifting else planner).plan(names)
        except CodegenError as error:
            if len(trial) == 1:
                why[trial[0]] = error.first.message
            continue
        if decisions() - before != (full if lifting else network_only):
            if len(trial) == 1:
                why[trial[0]] = "a test on a size computed from it is decided by its value"
            continue
        best, chosen = plan, names
        if len(chosen) == len(graph.params):
            break
    _say_what_is_fixed(best, graph, chosen, why)
    return best


def _say_what_is_fixed(plan: ModulePlan, graph: Graph, chosen: tuple[str, ...],
                       why: dict[str, str]) -> None:
    """The network class's docstring names the spec parameters written in, each with the reason
    the class cannot take it (a repeat count, an auxiliary output under `when:`...)."""
    fixed = [f"`{name}={value!r}` ({why.get(name, 'not taken by the class')})"
             for name, value in graph.params.items() if name not in chosen]
    if not fixed:
        return
    network = next(c for c in plan.classes if c.name == plan.network)
    network.doc += ["", *docstring_lines(
        f"Fixed when compiled: {'; '.join(fixed)}. The code does not follow a change of these: "
        "compile again with `--set`.")]


def _names_in_init(network: ClassPlan) -> set[str]:
    tree = ast.parse(textwrap.dedent("\n".join(network.init)) or "pass")
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
