"""The spec AST: small frozen dataclasses, each with its source location.

The parser builds these from the located YAML tree; the expander walks them. A :class:`Value` is an
argument as written: a literal, a list of values, or an expression (:class:`archdsl.expr.Expr`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import Loc
from .expr import Expr

__all__ = [
    "Value",
    "Meta",
    "Layer",
    "Call",
    "Seq",
    "Parallel",
    "Residual",
    "Repeat",
    "ParamDecl",
    "BlockDef",
    "Spec",
    "Library",
    "PARAM_TYPES",
    "fits_type",
    "is_pair",
]

# Parameter types of blocks and specs. `pair` is an int or [h, w] (asymmetric kernels: [1, 7]).
PARAM_TYPES = {"int": int, "float": float, "bool": bool, "str": str, "pair": (int, list)}


def is_pair(value: Any) -> bool:
    """``[h, w]``: a list of two whole numbers (what a ``pair`` parameter takes besides an int)."""
    return isinstance(value, list) and len(value) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value)


def fits_type(value: Any, type_name: str) -> bool:
    """Is ``value`` of the parameter type? Bools are not numbers; an int fits `float` and `pair`."""
    if isinstance(value, bool):
        return type_name == "bool"
    if type_name == "pair":
        return isinstance(value, int) or is_pair(value)
    if type_name == "float":
        return isinstance(value, (int, float))
    return isinstance(value, PARAM_TYPES[type_name])


@dataclass(frozen=True)
class Value:
    """An argument as written. Exactly one of ``literal``/``expr``/``items`` is meaningful."""

    loc: Loc
    literal: Any = None
    expr: Expr | None = None
    items: tuple["Value", ...] | None = None

    @property
    def is_expr(self) -> bool:
        return self.expr is not None


@dataclass(frozen=True)
class Meta:
    """Meta keys that may stand beside any layer."""

    inputs: tuple[tuple[str, Loc], ...] | None = None
    when: Value | None = None
    output: tuple[str, Loc] | None = None
    freeze: bool = False


@dataclass(frozen=True)
class Layer:
    loc: Loc
    name: str | None = None
    name_loc: Loc | None = None
    meta: Meta = field(default_factory=Meta)


@dataclass(frozen=True)
class Call(Layer):
    """An op or block used with arguments: ``{conv: {out: 64, k: 3}}``."""

    target: str = ""
    is_block: bool = False
    args: dict[str, Value] = field(default_factory=dict)
    arg_locs: dict[str, Loc] = field(default_factory=dict)


@dataclass(frozen=True)
class Seq(Layer):
    items: tuple[Layer, ...] = ()


@dataclass(frozen=True)
class Parallel(Layer):
    branches: tuple[Layer, ...] = ()
    merge: str = "concat"
    merge_loc: Loc | None = None
    after: Layer | None = None


@dataclass(frozen=True)
class Residual(Layer):
    body: Layer | None = None
    shortcut: Layer | None = None
    after: Layer | None = None
    connect: Value | None = None


@dataclass(frozen=True)
class Repeat(Layer):
    """``repeat: N`` (a chain) or ``dense: N`` (each layer sees the concat of all earlier)."""

    count: Value | None = None
    layer: Layer | None = None
    name_template: Value | None = None
    dense: bool = False


@dataclass(frozen=True)
class ParamDecl:
    """A parameter: its type, default (or required), and optionally the values it may take."""

    name: str
    type: str
    default: Any
    loc: Loc
    required: bool = False
    choices: tuple[Any, ...] = ()
    doc: str = ""


@dataclass(frozen=True)
class BlockDef:
    name: str
    params: dict[str, ParamDecl]
    lets: tuple[tuple[str, Value], ...]
    body: Layer
    loc: Loc
    doc: str = ""
    checks: tuple[tuple[Value, str], ...] = ()
    # ``inputs: [low, high]``: the names of its inputs, in the order a use's ``from:`` gives them
    # (empty: one input, read as ``input``)
    inputs: tuple[tuple[str, Loc], ...] = ()

    @property
    def input_count(self) -> int:
        return max(1, len(self.inputs))


@dataclass(frozen=True)
class Spec:
    name: str
    file: str
    loc: Loc
    input: tuple[Value, ...]  # ints, or expressions over the spec parameters (in_channels)
    input_loc: Loc
    params: dict[str, ParamDecl]
    blocks: dict[str, BlockDef]
    network: Layer
    doc: str = ""
    uses: tuple[str, ...] = ()
    checks: tuple[tuple[Value, str], ...] = ()  # (condition, message) on the spec parameters


@dataclass(frozen=True)
class Library:
    """A block library (a file with ``blocks:`` and no ``network:``), checked on its own."""

    name: str
    file: str
    loc: Loc
    blocks: dict[str, BlockDef]  # its own blocks and those of the libraries it uses
    own: tuple[str, ...] = ()  # the names of the blocks this file defines, in order
    doc: str = ""
    uses: tuple[str, ...] = ()
