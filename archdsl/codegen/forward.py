"""A class's ``forward`` as single-assignment statements, then named like a person would.

The translator appends one :class:`FAssign` per computed tensor (reading earlier
:class:`FValue` s) and :class:`FIf` blocks for layers that exist only for some instances or only
in training. :func:`finish` then counts uses, chooses variable names (a value reuses its input's
variable when that input is dead, so chains read ``x = self.conv1(x)``; residual bodies start an
``out``, shortcuts an ``identity``) and decides which ReLUs may work in place: those whose input is
a fresh tensor (conv, bn, add, ...) used by nothing else.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..blocks.namespace import GENERATED_NAMES, PYTHON_NAMES
from ..blocks.pysrc import parse_expr
from ..blocks.sym import MISSING, probe_of
from ..ops import REGISTRY
from .code import Assign, If, Inplace, Return, Stmt

__all__ = ["FAssign", "FIf", "FValue", "ForwardBuilder", "fresh_output", "shape_comment"]


def fresh_output(op: str | None) -> bool:
    """Did op ``op`` make a new tensor its backward does not read (a ReLU may overwrite it)?"""
    return op is not None and REGISTRY[op].fresh_output


_MARKER = re.compile(r"^__v(\d+)__$")


@dataclass(eq=False)
class FValue:
    """One tensor of the forward pass."""

    shape: tuple[Any, ...]
    hint: str | FValue | None = None  # a variable name, or "the variable of that value"
    op: str | None = None  # the op that made it (None: a call of a submodule, a phi, the input)
    uses: int = 0
    last: int = -1
    var: str | None = None
    forced: str | None = None


@dataclass(eq=False)
class FAssign:
    out: FValue
    expr: ast.expr  # reads its inputs as names __v0__, __v1__, ...
    inputs: list[FValue]
    inplace: Inplace | None = None
    pos: int = 0
    comment: str | None = None  # the shape comment (``N x 64 x 56 x 56``)


@dataclass(eq=False)
class FIf:
    test: ast.expr
    body: list[Any]
    phi: FValue | None = None
    then: FValue | None = None
    orelse: FValue | None = None
    copy_pos: int = 0
    pos: int = 0


@dataclass(eq=False)
class FReturn:
    values: list[FValue]
    build: Callable[[list[ast.expr]], ast.expr]
    pos: int = 0


def shape_comment(shape: tuple[Any, ...]) -> str | None:
    """``N x 64 x 56 x 56`` from the probed shape, or None when a size is unknown."""
    dims = [probe_of(d) for d in shape]
    if any(d is MISSING or not isinstance(d, int) for d in dims):
        return None
    return " x ".join(["N", *map(str, dims)])


class ForwardBuilder:
    """Collects the forward statements of one class."""

    def __init__(self, input_shape: tuple[Any, ...], comments: bool = True,
                 more: tuple[tuple[str, tuple[Any, ...]], ...] = (), first: str = "x"):
        self.input = FValue(input_shape)
        self.input.var = first
        # the other inputs of a block with several (`inputs:`): (wanted name, shape)
        self.more = [FValue(shape, var=name) for name, shape in more]
        self.stmts: list[Any] = []
        self._sink = self.stmts
        self.comments = comments  # shape comments from the probes (of a real instance)

    def assign(self, template: str, inputs: list[FValue], shape: tuple[Any, ...], *,
               op: str | None = None, hint: str | FValue | None = None,
               inplace: Inplace | None = None,
               transform: Callable[[ast.expr], ast.expr] | None = None) -> FValue:
        """A statement computing ``template`` ({0}, {1}... are the inputs) into a new value;
        ``transform`` rewrites the parsed expression (the class's own names).

        A template that is one of its inputs unchanged (an op lowering to ``{x}``, as
        ``identity``) writes no statement: that input is the value, under its own variable
        (``x = x`` or ``out = a`` is no line a person writes)."""
        markers = [f"__v{i}__" for i in range(len(inputs))]
        expr = parse_expr(template.format(*markers))
        if transform is not None:
            expr = transform(expr)
        if isinstance(expr, ast.Name) and expr.id in markers:
            return inputs[markers.index(expr.id)]
        out = FValue(shape, hint, op)
        comment = shape_comment(shape) if self.comments else None
        self._sink.append(FAssign(out, expr, list(inputs), inplace, comment=comment))
        return out

    @contextmanager
    def branch(self, test: ast.expr) -> Iterator[FIf]:
        """Statements that run only when ``test`` holds; close with :meth:`merge` for a value."""
        block = FIf(test, [])
        outer = self._sink
        outer.append(block)
        self._sink = block.body
        try:
            yield block
        finally:
            self._sink = outer

    def merge(self, block: FIf, then: FValue, orelse: FValue, shape: tuple[Any, ...],
              hint: str | None = None) -> FValue:
        """The value after ``block``: ``then`` when it ran, else ``orelse`` (which it is when
        the block computes it no other value: an op lowering to its input)."""
        if then is orelse:
            return orelse
        block.phi = FValue(shape, hint, None)
        block.then, block.orelse = then, orelse
        return block.phi

    @property
    def inputs(self) -> list[FValue]:
        """forward's parameters: the input, then the others of a block with several."""
        return [self.input, *self.more]

    def ret(self, values: list[FValue], build: Callable[[list[ast.expr]], ast.expr]) -> None:
        self._sink.append(FReturn(values, build))

    # --- naming ----------------------------------------------------------------------------
    def finish(self, resolve: Callable[[ast.expr], ast.expr], reserved: set[str]) -> list[Stmt]:
        """Count uses, name every value, decide in-place ReLUs; the statements to write.

        ``resolve`` rewrites what the class keeps on itself (``stride`` becomes ``self.stride``);
        ``reserved`` are names the forward must not hide (the module's classes).
        """
        _number(self.stmts, [0])
        _decide_inplace(self.stmts)
        namer = _Namer(reserved | PYTHON_NAMES | GENERATED_NAMES)
        for value in self.inputs:  # (a spec's input names, made safe and distinct)
            namer.bind(value, namer.fresh(value.var or "x", -2))
        return namer.block(self.stmts, resolve)


def _number(stmts: list[Any], pos: list[int]) -> None:
    """Give every statement a position and every value its use count and last use."""
    for stmt in stmts:
        if isinstance(stmt, FAssign):
            stmt.pos = pos[0]
            _read(stmt.inputs, pos[0])
        elif isinstance(stmt, FIf):
            stmt.copy_pos = pos[0]
            pos[0] += 1
            _number(stmt.body, pos)
            stmt.pos = pos[0]
            if stmt.phi is not None:
                _read([stmt.then, stmt.orelse], pos[0])
        elif isinstance(stmt, FReturn):
            stmt.pos = pos[0]
            _read(stmt.values, pos[0])
        pos[0] += 1


def _read(values: list[Any], pos: int) -> None:
    for value in values:
        value.uses += 1
        value.last = max(value.last, pos)


def _decide_inplace(stmts: list[Any]) -> None:
    for stmt in stmts:
        if isinstance(stmt, FIf):
            _decide_inplace(stmt.body)
        elif isinstance(stmt, FAssign) and stmt.inplace is not None:
            source = stmt.inputs[0]
            stmt.inplace.safe = fresh_output(source.op) and source.uses == 1


class _Namer:
    """Chooses variable names: a name is free again once the value holding it is dead."""

    def __init__(self, reserved: set[str]):
        self.reserved = reserved
        self.holders: dict[str, FValue] = {}

    def bind(self, value: FValue, var: str) -> None:
        value.var = var
        self.holders[var] = value

    def free(self, var: str, pos: int) -> bool:
        holder = self.holders.get(var)
        return var not in self.reserved and (holder is None or holder.last <= pos)

    def fresh(self, base: str, pos: int) -> str:
        base = re.sub(r"[^0-9A-Za-z_]", "_", base).strip("_") or "x"
        if base[0].isdigit():
            base = "x" + base
        name, k = base, 0
        while not self.free(name, pos):
            k += 1
            name = f"{base}_{k}"
        return name

    def base_of(self, value: FValue, inputs: list[FValue]) -> str:
        hint = value.hint
        if isinstance(hint, str):
            return hint
        if isinstance(hint, FValue) and hint.var:
            return hint.var
        return inputs[0].var if inputs and inputs[0].var else "x"

    def block(self, stmts: list[Any], resolve: Callable[[ast.expr], ast.expr]) -> list[Stmt]:
        out: list[Stmt] = []
        for stmt in stmts:
            if isinstance(stmt, FAssign):
                out.append(self.assign(stmt, resolve))
            elif isinstance(stmt, FIf):
                out.extend(self.if_block(stmt, resolve))
            elif isinstance(stmt, FReturn):
                out.append(Return(stmt.build([ast.Name(v.var, ast.Load()) for v in stmt.values])))
        return out

    def assign(self, stmt: FAssign, resolve: Callable[[ast.expr], ast.expr]) -> Assign:
        var = stmt.out.forced or self.fresh(self.base_of(stmt.out, stmt.inputs), stmt.pos)
        expr = _with_vars(stmt.expr, stmt.inputs, resolve)
        self.bind(stmt.out, var)
        return Assign(var, expr, stmt.comment)

    def if_block(self, block: FIf, resolve: Callable[[ast.expr], ast.expr]) -> list[Stmt]:
        before: list[Stmt] = []
        phi, orelse = block.phi, block.orelse
        if phi is not None:
            same = phi.hint is None or phi.hint == orelse.var
            if same and orelse.last == block.pos and self.holders.get(orelse.var) is orelse:
                var = orelse.var
            else:
                var = self.fresh(phi.hint or orelse.var, block.copy_pos)
                before.append(Assign(var, ast.Name(orelse.var, ast.Load())))
            self.bind(phi, var)
            block.then.forced = var if block.then is not orelse else None
        body = self.block(block.body, resolve)
        if not body and phi is None:  # (it ran nothing: an op lowering to its input)
            return before
        if phi is not None:
            if block.then.var != phi.var:
                body.append(Assign(phi.var, ast.Name(block.then.var, ast.Load())))
            self.bind(phi, phi.var)
        return before + [If(resolve(block.test), body)]


class _Vars(ast.NodeTransformer):
    def __init__(self, inputs: list[FValue]):
        self.inputs = inputs

    def visit_Name(self, node: ast.Name) -> ast.expr:
        match = _MARKER.match(node.id)
        if match:
            return ast.Name(self.inputs[int(match.group(1))].var, ast.Load())
        return node


def _with_vars(expr: ast.expr, inputs: list[FValue], resolve: Callable[[ast.expr], ast.expr]) -> ast.expr:
    """The statement's expression with its inputs' variables, rewritten in place: each FAssign
    owns its expression (parsed for it) and is finished once."""
    return resolve(_Vars(inputs).visit(expr))
