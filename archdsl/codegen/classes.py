"""What a plan holds: the generated module, its classes, and the generic class of each block."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..spec import BlockDef

__all__ = ["BODY_INDENT", "BlockInfo", "ClassPlan", "ModulePlan"]

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


@dataclass
class ModulePlan:
    """The whole generated file."""

    name: str
    file: str
    doc: list[str]
    classes: list[ClassPlan]
    network: str
    factory: str
    helpers: list[str] = field(default_factory=list)


@dataclass
class BlockInfo:
    """A block's generated class: its name, its ctor parameter names, whether it reads in.h/in.w."""

    block: BlockDef
    class_name: str
    params: dict[str, str]
    uses_hw: bool = False
    plan: ClassPlan | None = None
