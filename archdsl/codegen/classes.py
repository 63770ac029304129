"""What a plan holds: the generated module, its classes, and the generic class of each block."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ..blocks.namespace import Namespace
from ..ir import BlockTemplate, Graph

__all__ = ["BODY_INDENT", "BlockInfo", "ClassPlan", "ModulePlan", "Planning"]

BODY_INDENT = 8  # statements of a method: class -> def -> body


@dataclass
class ClassPlan:
    """One generated class: its header, docstring, ctor and forward, as lines."""

    name: str
    base: str
    doc: list[str]
    params: list[str] = field(default_factory=list)  # ctor parameters after self
    init: list[str] = field(default_factory=list)  # body lines, indented
    forward: list[str] = field(default_factory=list)  # body lines; empty: no forward
    returns: str = "Tensor"
    fields: list[str] = field(default_factory=list)  # NamedTuple fields
    kind: str = "module"  # module, sequential, dense, outputs
    inputs: list[str] = field(default_factory=lambda: ["x"])  # forward's parameters after self


@dataclass
class ModulePlan:
    """The whole generated file."""

    name: str
    file: str
    classes: list[ClassPlan]
    network: str
    factory: str
    factory_params: list[str] = field(default_factory=list)  # ``num_classes: int = 1000``
    factory_args: list[str] = field(default_factory=list)  # passed on by keyword: ``num_classes``
    doc: str = ""  # what the spec says it is (its `doc:`, as the network's template records it)


@dataclass
class BlockInfo:
    """A block's generated class: its name, its ctor parameter names, whether it reads in.h/in.w."""

    class_name: str
    params: dict[str, str]
    uses_hw: bool = False
    plan: ClassPlan | None = None
    spec_params: dict[str, str] = field(default_factory=dict)  # spec parameter -> ctor parameter


class Planning(Protocol):
    """What a class translator asks of the module planner (:class:`~archdsl.codegen.plan.Planner`)."""

    graph: Graph
    globals: Namespace
    outputs_class: str
    dense_class: str
    dense_used: bool
    lifted: tuple[str, ...]
    header: BlockTemplate  # the network class's template over its arguments (its header)
    template_outputs: dict[Any, tuple[Any, ...]]  # the template expander's dry runs (shared)

    def first_instance(self, block: str) -> Any: ...

    def spec_params_of(self, block: str) -> list[str]: ...

    def template(self, name: str) -> BlockTemplate: ...

    def probed(self, name: str, args: dict[str, Any], in_shape: tuple[Any, ...]) -> BlockTemplate: ...

    def block_info(self, name: str, call: tuple[dict[str, Any], tuple[Any, ...]] | None = None,
                   ) -> BlockInfo | None: ...

    def special_class(self, block_name: str, args: dict[str, Any], in_shape: tuple[Any, ...],
                      more: tuple[tuple[Any, ...], ...] = ()) -> str: ...
