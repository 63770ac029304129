"""Spec values in generated code: expressions, op attributes and block arguments.

Inside a generic block class the names an expression reads (block parameters, ``let`` values,
``in.c``) are the class's locals, so an expression becomes a :class:`~archdsl.blocks.sym.Sym`
written with :func:`archdsl.expr.to_python`; when everything it reads is known it is evaluated,
exactly as the expander evaluates it.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..errors import Diagnostic, Loc, SpecError
from ..expr import InputShape, evaluate, to_python
from ..ops import Attrs, Lowering, Op, OpError
from ..spec import Value
from .namespace import CodegenError, NotGeneric
from .pysrc import parse_expr
from .sym import MISSING, Sym, Undecidable, all_plain, deciding_by_probe, is_known, probe_of, render

__all__ = ["Env", "coerce_attrs", "coerce_param", "eval_value", "op_lowering", "op_shape", "tidy"]

@dataclass(frozen=True)
class Env:
    """What an expression can read: spec params, block params, lets, ``i``; and ``in``."""

    values: Mapping[str, Any]
    inp: tuple[Any, ...]  # the enclosing block's input shape, plain or symbolic

    def with_values(self, **values: Any) -> Env:
        return replace(self, values={**self.values, **values})


def eval_value(value: Value, env: Env) -> Any:
    """A spec value: plain when known for every instance, else a Sym over the class's locals."""
    if value.items is not None:
        return [eval_value(item, env) for item in value.items]
    if value.expr is None:
        return value.literal
    expr = value.expr
    body = expr.tree.body
    if isinstance(body, ast.Name) and isinstance(env.values.get(body.id), Sym):
        return env.values[body.id]  # a parameter passed on as it is
    reads = {name: env.values.get(name) for name in expr.names if name != "in"}
    reads_input = "in" in expr.names
    symbolic = any(not all_plain(v) for v in reads.values()) or (reads_input and not all_plain(env.inp))
    if not symbolic:
        scope = dict(reads)
        if reads_input:
            scope["in"] = InputShape.of(env.inp)
        return evaluate(expr, {k: v for k, v in scope.items() if k in env.values or k == "in"})
    text = to_python(expr, _Rename(env, value.loc))
    return Sym(tidy(parse_expr(text)), _probe(value, env, reads, reads_input))


def _probe(value: Value, env: Env, reads: dict[str, Any], reads_input: bool) -> Any:
    scope = {k: probe_of(v) for k, v in reads.items()}
    if reads_input:
        dims = [probe_of(d) for d in env.inp]
        if any(d is MISSING for d in dims):
            return MISSING
        scope["in"] = InputShape.of(dims)
    if any(v is MISSING for v in scope.values()):
        return MISSING
    try:
        return evaluate(value.expr, scope)
    except SpecError:
        return MISSING


class _Rename(Mapping[str, str]):
    """Python text for each name an expression reads (``in.c`` -> ``in_channels``)."""

    def __init__(self, env: Env, loc: Loc | None):
        self.env = env
        self.loc = loc

    def _lookup(self, key: str) -> Any:
        if key.startswith("in."):
            dims = list(self.env.inp)
            attr = key[3:]
            if attr == "shape":
                return dims
            index = {"c": 0, "h": 1, "w": 2}[attr]
            return dims[index] if index < len(dims) else None
        return self.env.values[key]

    def __getitem__(self, key: str) -> str:
        value = self._lookup(key)
        if not is_known(value):
            raise NotGeneric(Diagnostic(
                f"`{key}` is not known in the generated class here", self.loc,
                hint="the code generator cannot express this size symbolically"))
        return render(value)

    def __contains__(self, key: object) -> bool:
        try:
            self._lookup(str(key))
        except (KeyError, IndexError):
            return False
        return True

    def __iter__(self):  # pragma: no cover - to_python only looks keys up
        return iter(self.env.values)

    def __len__(self) -> int:  # pragma: no cover
        return len(self.env.values)


def coerce_attrs(op: Op, raw: Mapping[str, Any], loc: Loc | None) -> dict[str, Any]:
    """An op's attributes from their values (plain or symbolic), complete and normalised like
    ``Op.resolve``."""
    values: dict[str, Any] = {}
    for attr in op.attrs:
        if attr.name not in raw and attr.required:
            raise CodegenError(Diagnostic(f"`{op.name}` needs `{attr.name}`", loc))
        value = raw.get(attr.name, attr.default)
        values[attr.name] = _coerce(attr, value, loc)
    return values


def op_shape(op: Op, attrs: dict[str, Any], ins: list[tuple[Any, ...]],
             loc: Loc | None) -> tuple[Any, ...]:
    """The op's own shape rule, over plain or symbolic values (tests decided by the probe).

    A rule that fails or cannot decide a test for the probed instance is on a layer that instance
    skips (a false ``when:``): the block is then written per use, where the layer is gone.
    """
    if all_plain(attrs) and all_plain(ins):
        return tuple(op.shape(Attrs(attrs), list(ins)))
    try:
        with deciding_by_probe():
            return tuple(op.shape(Attrs(attrs), list(ins)))
    except (OpError, Undecidable):
        raise NotGeneric(Diagnostic(f"`{op.name}`: its shape rule fails for the probed instance",
                                    loc)) from None


def op_lowering(op: Op, attrs: dict[str, Any], ins: list[tuple[Any, ...]], out: tuple[Any, ...],
                loc: Loc | None) -> Lowering:
    """The op's lowering; one that must decide a test on a symbolic value (``keepdim`` given by
    a block parameter) makes the block per use."""
    try:
        return op.lower(Attrs(attrs), list(ins), out)
    except Undecidable:
        raise NotGeneric(Diagnostic(f"`{op.name}`: its lowering depends on a block parameter",
                                    loc)) from None


def _coerce(attr: Any, value: Any, loc: Loc | None) -> Any:
    if all_plain(value):
        try:
            return attr.coerce(value)
        except OpError as err:
            raise SpecError(Diagnostic(err.message, loc, expected=err.expected,
                                       found=err.found)) from None
    pairs = ("pair", "size", "optional_pair", "padding")
    if attr.kind in pairs and isinstance(value, Sym) and not _maybe_pair(value):
        return (value, value)
    if attr.kind in pairs and isinstance(value, Sym) and all_plain(value.probe) \
            and value.probe is not MISSING:
        # a `pair` parameter: the probe normalised as the op normalises the value (1 -> (1, 1))
        try:
            return Sym(value.node, attr.coerce(value.probe), pair=True)
        except OpError:
            return value
    if isinstance(value, list):
        return tuple(value)
    return value


def _maybe_pair(value: Sym) -> bool:
    return value.pair or isinstance(value.probe, (list, tuple))


def coerce_param(value: Any, type_name: str) -> Any:
    """A block argument as the expander passes it: ints given for floats become floats."""
    if type_name == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type_name == "pair" and isinstance(value, list):
        return tuple(value)
    return value


# --- tidying spec expressions ----------------------------------------------------------------

_INT_RESULTS = ("round", "math.ceil", "math.floor", "int")


class _Tidy(ast.NodeTransformer):
    """Rewrites that keep the value and that linters ask for: ``int(round(x))`` is
    ``round(x)`` (RUF046); ``a <= b and b < c`` is ``a <= b < c`` (PLR1716); and arithmetic on
    two whole numbers (the known values of a symbolic expression: ``p * (1 + 0)``) is its value."""

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        self.generic_visit(node)
        a, b = node.left, node.right
        whole = all(isinstance(x, ast.Constant) and type(x.value) is int for x in (a, b))
        if whole and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult)):
            value = {ast.Add: int.__add__, ast.Sub: int.__sub__, ast.Mult: int.__mul__}[
                type(node.op)](a.value, b.value)  # type: ignore[union-attr]
            return ast.Constant(value) if value >= 0 else ast.UnaryOp(ast.USub(), ast.Constant(-value))
        return node

    def visit_Call(self, node: ast.Call) -> ast.expr:
        self.generic_visit(node)
        if (isinstance(node.func, ast.Name) and node.func.id == "int" and len(node.args) == 1
                and not node.keywords and _returns_int(node.args[0])):
            return node.args[0]
        return node

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.expr:
        self.generic_visit(node)
        if not isinstance(node.op, ast.And):
            return node
        values: list[ast.expr] = []
        for value in node.values:
            last = values[-1] if values else None
            if (isinstance(last, ast.Compare) and isinstance(value, ast.Compare)
                    and ast.dump(last.comparators[-1]) == ast.dump(value.left)):
                values[-1] = ast.Compare(last.left, last.ops + value.ops,
                                         last.comparators + value.comparators)
            else:
                values.append(value)
        return values[0] if len(values) == 1 else ast.BoolOp(ast.And(), values)


def _returns_int(node: ast.expr) -> bool:
    if not isinstance(node, ast.Call) or node.keywords:
        return False
    name = ast.unparse(node.func)
    if name == "round":
        return len(node.args) == 1
    return name in _INT_RESULTS


def tidy(node: ast.expr) -> ast.expr:
    return _Tidy().visit(node)
