"""Spec expressions: a small, whitelisted, located expression language.

Any scalar argument of a spec may be an expression string (``"in.c // 4"``,
``"2 if i == 0 else 1"``, ``"make_divisible(32 * width, 8)"``). Specs are untrusted, so an
expression is never handed to ``eval``: :func:`compile_expr` parses it with
``ast.parse(mode="eval")`` and walks the tree against an explicit whitelist, and :func:`evaluate`
interprets the validated tree node by node, checking types and magnitudes as it goes. Every
refusal is a :class:`~archdsl.errors.SpecError` whose location points at the offending part of
the expression text.

``in`` is a Python keyword, but specs write ``in.c``: before parsing, each ``in`` token followed by
``.`` is replaced by the same-length placeholder ``IN`` so that AST columns still map onto the
original text; afterwards those placeholders (and only those) become the name ``in``.
YAML-style ``true``/``false``/``null`` are accepted as constants.
"""

from __future__ import annotations

import ast
import copy
import io
import math
import operator
import re
import tokenize
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from archdsl.errors import Diagnostic, Loc, SpecError, did_you_mean

__all__ = [
    "FUNCTIONS",
    "Expr",
    "InputShape",
    "compile_expr",
    "evaluate",
    "is_expression",
    "to_python",
    "value_size",
]

MAX_LENGTH = 1000
MAX_DEPTH = 50
MAX_INT = 2**62
MAX_EXPONENT = 64
MAX_BASE = 2**32
MAX_ROUND_DIGITS = 64
MAX_VALUE_SIZE = 10_000  # characters of a string, or items (nested lists count every item) of a list

INPUT = "in"
INPUT_ATTRS = ("c", "h", "w", "shape")
_PLACEHOLDER = "IN"  # same length as "in", so columns do not move
_YAML_CONSTANTS = {"true": True, "false": False, "null": None}


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """torchvision's ``_make_divisible``: round ``v`` to a multiple of ``divisor``, losing < 10%."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def _int(value: float) -> int:
    """``int(x)`` of a number: truncation through ``__trunc__``, which returns what the number's
    type makes of it (``int()`` would copy a subclass to a plain int: ``report --symbolic``'s
    traced numbers keep their formula this way)."""
    return math.trunc(value)


def _float(value: float) -> float:
    """``float(x)`` of a number, through arithmetic for the same reason as :func:`_int`
    (``x * 1.0`` converts ``x`` exactly as ``float(x)`` does)."""
    return value if isinstance(value, float) else value * 1.0


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": min,
    "max": max,
    "abs": abs,
    "int": _int,
    "float": _float,
    "round": round,
    "ceil": math.ceil,
    "floor": math.floor,
    "make_divisible": make_divisible,
}

# (fewest, most) arguments, positional and keyword together; None means no upper bound.
_ARITY: dict[str, tuple[int, int | None]] = {
    "min": (1, None),
    "max": (1, None),
    "abs": (1, 1),
    "int": (1, 1),
    "float": (1, 1),
    "round": (1, 2),
    "ceil": (1, 1),
    "floor": (1, 1),
    "make_divisible": (1, 3),
}
_KEYWORDS: dict[str, tuple[str, ...]] = {"make_divisible": ("min_value",)}

# What to_python emits for each function; the generated module must `import math` and define
# `make_divisible` (same body as above).
_PYTHON_FUNCTIONS = {name: name for name in FUNCTIONS}
_PYTHON_FUNCTIONS.update(ceil="math.ceil", floor="math.floor")

_CALLS_ALLOWED = "calls are limited to " + ", ".join(FUNCTIONS)
_ALLOWED = ("numbers, strings, true/false/null, names, + - * / // % **, comparisons, and/or/not, "
            "`a if c else b`, [lists], calls to " + ", ".join(FUNCTIONS)
            + ", and in.c, in.h, in.w, in.shape[i]")

_BINARY: dict[type, tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv),
    ast.FloorDiv: ("//", operator.floordiv),
    ast.Mod: ("%", operator.mod),
    ast.Pow: ("**", operator.pow),
}
_UNARY: dict[type, tuple[str, Callable[[Any], Any]]] = {
    ast.UAdd: ("+", operator.pos),
    ast.USub: ("-", operator.neg),
    ast.Not: ("not", operator.not_),
}
_COMPARE: dict[type, tuple[str, Callable[[Any, Any], bool]]] = {
    ast.Eq: ("==", operator.eq),
    ast.NotEq: ("!=", operator.ne),
    ast.Lt: ("<", operator.lt),
    ast.LtE: ("<=", operator.le),
    ast.Gt: (">", operator.gt),
    ast.GtE: (">=", operator.ge),
}
_REFUSED_OPERATORS = {
    ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>",
    ast.MatMult: "@", ast.Invert: "~",
}
_REFUSED_NODES = {
    ast.Lambda: "a lambda", ast.ListComp: "a comprehension", ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension", ast.GeneratorExp: "a generator expression",
    ast.JoinedStr: "an f-string", ast.FormattedValue: "an f-string", ast.NamedExpr: "`:=`",
    ast.Starred: "`*` unpacking", ast.Dict: "a dict", ast.Set: "a set", ast.Slice: "a slice",
    ast.Await: "`await`", ast.Yield: "`yield`", ast.YieldFrom: "`yield`",
}


@dataclass(frozen=True)
class InputShape:
    """The shape of a block's input as expressions see it: ``in.c``, ``in.h``, ``in.w``.

    ``h`` and ``w`` are None for a flat ``(F,)`` input, whose ``c`` is F.
    """

    c: int
    h: int | None = None
    w: int | None = None

    @classmethod
    def of(cls, shape: tuple[int, ...] | list[int]) -> InputShape:
        dims = tuple(shape)
        if len(dims) == 3:
            return cls(dims[0], dims[1], dims[2])
        if len(dims) == 1:
            return cls(dims[0])
        raise ValueError(f"an input shape is (C, H, W) or (F,), not {dims!r}")

    @property
    def shape(self) -> list[int]:
        if self.h is None:
            return [self.c]
        return [self.c, self.h, self.w]


@dataclass(frozen=True)
class Expr:
    """A compiled expression: its text, where it starts, its validated tree and its free names.

    ``tree`` is an ``ast.Expression``; ``in.c`` appears in it as ``Attribute(Name("in"), "c")``
    and ``names`` holds ``"in"`` when any ``in.*`` is used. Function names are not free names.
    """

    source: str
    loc: Loc | None
    tree: ast.Expression = field(compare=False, repr=False)
    names: frozenset[str] = field(default=frozenset(), compare=False)

    def __str__(self) -> str:
        return self.source


def is_expression(value: object) -> bool:
    """True for a spec value to compile and evaluate: any non-blank string.

    YAML numbers, booleans, lists and null are literal values. Attributes that also take a bare
    keyword (``pad: same``) must check their choices before asking this.
    """
    return isinstance(value, str) and bool(value.strip())


def value_size(value: Any, limit: int = MAX_VALUE_SIZE) -> int:
    """The size of a value: 1 for a number, its length for a string, every item (nested ones
    too) for a list. The walk stops once it passes ``limit`` (a list nested 40 times in itself
    holds 2**40 items but takes no memory), so its cost is bounded."""
    if isinstance(value, str):
        return len(value)
    if not isinstance(value, (list, tuple)):
        return 1
    total, stack = 0, [value]
    while stack and total <= limit:
        for item in stack.pop():
            if isinstance(item, (list, tuple)):
                stack.append(item)
                total += 1
            else:
                total += value_size(item)
    return total


# Checked trees by expression text (successes only; a tree never depends on where its text is),
# so each distinct expression is parsed and checked once per process, like `re`'s pattern cache.
_COMPILED: dict[str, tuple[ast.Expression, frozenset[str]]] = {}
_COMPILED_MAX = 4096


def compile_expr(text: str, loc: Loc | None = None) -> Expr:
    """Parse ``text`` and check it against the whitelist; ``loc`` is where its first char is."""
    cached = _COMPILED.get(text)
    if cached is not None:
        return Expr(text, loc, *cached)
    where = _Where.of(text, loc)
    if len(text) > MAX_LENGTH:
        where.fail(None, "expression is too long", expected=f"at most {MAX_LENGTH} characters",
                   found=f"{len(text)} characters")
    if not where.body.strip():
        where.fail(None, "empty expression", expected="an expression such as `in.c // 2`")
    masked, placeholders = _mask_input(where.body)
    tree = _parse(masked, where)
    _check_depth(tree, where)
    _refuse_dunders(tree, where)
    tree = _Resolve(placeholders, where).visit(tree)
    checker = _Checker(where)
    checker.check(tree.body)
    if len(_COMPILED) >= _COMPILED_MAX:
        _COMPILED.clear()
    _COMPILED[text] = (tree, frozenset(checker.names))
    return Expr(text, loc, tree, frozenset(checker.names))


def evaluate(expr: Expr, env: Mapping[str, Any]) -> Any:
    """The value of ``expr`` with free names taken from ``env`` (``"in"`` maps to an InputShape).

    A plain result (a number, string, bool or None) is memoised by the text and the values of
    the names it reads when those are plain ints, strings, bools, None or an InputShape of ints
    (each value's type in the key: ``1``, ``1.0`` and ``True`` are equal keys otherwise): the
    600 block uses of ResNet-1202 evaluate the same few arguments. An error is never memoised
    (it is raised, located, every time); other values (a traced number of ``report --symbolic``,
    a float, a list) are always evaluated."""
    key = _memo_key(expr, env)
    if key is not None:
        value = _VALUES.get(key, _VALUES)
        if value is not _VALUES:
            return value
    value = _Evaluator(_Where.of(expr.source, expr.loc), env).eval(expr.tree.body)
    if key is not None and type(value) in _PLAIN_RESULTS:
        if len(_VALUES) >= _COMPILED_MAX:
            _VALUES.clear()
        _VALUES[key] = value
    return value


_VALUES: dict[tuple[Any, ...], Any] = {}
_PLAIN_NAMES = frozenset({int, str, bool, type(None)})  # (not float: -0.0 == 0.0)
_PLAIN_RESULTS = frozenset({int, float, str, bool, type(None)})


def _memo_key(expr: Expr, env: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """``evaluate``'s memo key, or None when a value read is not plain (or missing)."""
    key: list[Any] = [expr.source]
    for name in expr.names:
        value = env.get(name, _VALUES)
        kind = type(value)
        if kind is InputShape:
            if not (type(value.c) is int and type(value.h) in _PLAIN_NAMES
                    and type(value.w) in _PLAIN_NAMES):
                return None
        elif kind not in _PLAIN_NAMES:
            return None
        key += (name, kind, value)
    return tuple(key)


def to_python(expr: Expr, rename: Mapping[str, str]) -> str:
    """Python source for ``expr`` with each free name ``n`` replaced by ``rename[n]``.

    ``in.c``, ``in.h``, ``in.w`` and ``in.shape`` are looked up as ``rename["in.c"]`` etc. A rename
    value may be any Python expression; it is inserted as a unit (parenthesised when needed).
    Calls come out as ``min``, ``max``, ``abs``, ``int``, ``float``, ``round`` (builtins),
    ``math.ceil``, ``math.floor`` (the generated module must ``import math``) and
    ``make_divisible`` (the generated module must define it, as in this module). Strings are
    written with ``repr``. Raises KeyError when a name has no rename.
    """
    tree = _ToPython(rename).visit(copy.deepcopy(expr.tree))
    return ast.unparse(ast.fix_missing_locations(tree))


# --- locations ---------------------------------------------------------------------------------


class _Where:
    """Maps AST nodes onto the expression text and raises located SpecErrors (the one fail path)."""

    def __init__(self, body: str, loc: Loc | None, lead: int):
        self.body = body
        self.loc = loc
        self.lead = lead
        self.encoded = body.encode("utf-8")

    @classmethod
    def of(cls, source: str, loc: Loc | None) -> _Where:
        """Leading blanks are skipped (the parser refuses them) and line breaks become spaces,
        so every column of the parsed text is a column of ``source`` shifted by ``lead``."""
        lead = len(source) - len(source.lstrip())
        return cls(source[lead:].replace("\r", " ").replace("\n", " "), loc, lead)

    def char(self, byte_offset: int) -> int:
        """AST columns count UTF-8 bytes; diagnostics count characters."""
        return len(self.encoded[:byte_offset].decode("utf-8", errors="ignore"))

    def span(self, node: ast.AST) -> tuple[int, int]:
        start = self.char(node.col_offset)
        end = self.char(node.end_col_offset) if node.end_col_offset is not None else start + 1
        return start, end

    def text(self, node: ast.AST) -> str:
        start, end = self.span(node)
        return self.body[start:end]

    def fail(self, node: ast.AST | tuple[int, int] | None, message: str, *,
             expected: str | None = None, found: str | None = None,
             hint: str | None = None) -> NoReturn:
        """Raise a SpecError at ``node`` (an AST node, a (start, end) span, or None: everything)."""
        loc = self.loc
        if loc is not None and node is not None:
            start, end = node if isinstance(node, tuple) else self.span(node)
            loc = loc.shifted(self.lead + start, end - start)
        if found is None and isinstance(node, ast.AST):
            text = self.text(node)
            found = f"`{text}`" if len(text) <= 80 else f"`{text[:77]}...`"
        raise SpecError(Diagnostic(message, loc, expected=expected, found=found, hint=hint))


# --- compiling ---------------------------------------------------------------------------------


def _mask_input(body: str) -> tuple[str, frozenset[int]]:
    """Replace each ``in`` token followed by ``.`` with the placeholder; return their columns."""
    columns: list[int] = []
    previous = None
    try:
        for token in tokenize.generate_tokens(io.StringIO(body).readline):
            if (token.type == tokenize.OP and token.string == "." and previous is not None
                    and previous.type == tokenize.NAME and previous.string == INPUT):
                columns.append(previous.start[1])
            previous = token
    except (tokenize.TokenError, SyntaxError):
        pass  # the parser reports the problem, with a better message
    masked = body
    for col in columns:
        masked = masked[:col] + _PLACEHOLDER + masked[col + len(INPUT):]
    return masked, frozenset(columns)


def _parse(masked: str, where: _Where) -> ast.Expression:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarnings about user text are not ours to print
            return ast.parse(masked, mode="eval")
    except SyntaxError as error:
        start = max(0, min((error.offset or 1) - 1, len(masked) - 1))
        end = max(start + 1, (error.end_offset or 0) - 1)
        message = (error.msg or "invalid syntax").replace(_PLACEHOLDER, INPUT)
        where.fail((start, end), "invalid expression syntax", expected=_ALLOWED,
                   found=message, hint=_syntax_hint(masked))
    except (ValueError, RecursionError, MemoryError) as error:
        where.fail(None, "invalid expression syntax", found=str(error))


def _syntax_hint(masked: str) -> str | None:
    if re.search(r"\bin\b", masked):
        return "`in` is only the block input (in.c, in.h, in.w, in.shape); `x in y` is refused"
    return None


def _check_depth(tree: ast.Expression, where: _Where) -> None:
    """Refuse deep nesting before any recursive walk (iteratively, so depth cannot hurt us)."""
    stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            where.fail(node, "expression is nested too deeply",
                       expected=f"at most {MAX_DEPTH} levels of nesting")
        stack.extend((child, depth + isinstance(child, ast.expr))
                     for child in ast.iter_child_nodes(node))


def _refuse_dunders(tree: ast.Expression, where: _Where) -> None:
    """Names and attributes starting with ``__`` are refused first, wherever they are."""
    for node in ast.walk(tree):
        for name in (getattr(node, "id", None), getattr(node, "attr", None),
                     getattr(node, "arg", None)):
            if isinstance(name, str) and name.startswith("__"):
                where.fail(node, f"`{name}` is not allowed in an expression", expected=_ALLOWED,
                           hint="names starting with `__` are never reachable")


class _Resolve(ast.NodeTransformer):
    """Placeholders back to ``in``; ``true``/``false``/``null`` to constants."""

    def __init__(self, placeholders: frozenset[int], where: _Where):
        self.placeholders = placeholders
        self.where = where

    def visit_Name(self, node: ast.Name) -> ast.expr:
        if node.id == _PLACEHOLDER and self.where.char(node.col_offset) in self.placeholders:
            return ast.copy_location(ast.Name(INPUT, ast.Load()), node)
        if node.id in _YAML_CONSTANTS:
            return ast.copy_location(ast.Constant(_YAML_CONSTANTS[node.id]), node)
        return node


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _is_input(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == INPUT


class _Checker:
    """The whitelist: one ``visit_<Kind>`` per allowed node kind; anything else is refused."""

    def __init__(self, where: _Where):
        self.where = where
        self.names: set[str] = set()

    def check(self, node: ast.AST) -> None:
        visit = getattr(self, "visit_" + type(node).__name__, None)
        if visit is None:
            self.refuse(node)
        visit(node)

    def refuse(self, node: ast.AST) -> NoReturn:
        what = _REFUSED_NODES.get(type(node), f"`{self.where.text(node)}`")
        self.where.fail(node, f"{what} is not allowed in an expression", expected=_ALLOWED)

    def refuse_operator(self, node: ast.AST, op: ast.AST) -> NoReturn:
        symbol = _REFUSED_OPERATORS.get(type(op), type(op).__name__)
        self.where.fail(node, f"operator `{symbol}` is not allowed in an expression",
                        expected="+ - * / // % **, comparisons, and/or/not")

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if value is None or isinstance(value, (bool, str)):
            return
        if not isinstance(value, (int, float)):
            self.where.fail(node, f"{type(value).__name__} literals are not allowed in an "
                            "expression", expected="int, float, str, true, false or null")
        if abs(value) > MAX_INT if isinstance(value, int) else not math.isfinite(value):
            self.where.fail(node, "value overflows", expected="a number of magnitude at most 2**62")

    def visit_Name(self, node: ast.Name) -> None:
        self.names.add(node.id)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if not _is_input(node.value):
            self.where.fail(node, "attribute access is allowed only on `in`",
                            expected="in.c, in.h, in.w or in.shape")
        if node.attr not in INPUT_ATTRS:
            self.where.fail(node, f"`in` has no attribute `{node.attr}`",
                            expected="in.c, in.h, in.w or in.shape",
                            hint=did_you_mean(node.attr, INPUT_ATTRS))
        self.names.add(INPUT)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if not (isinstance(node.value, ast.Attribute) and node.value.attr == "shape"
                and _is_input(node.value.value)):
            self.where.fail(node, "indexing is allowed only on `in.shape`",
                            expected="in.shape[0], in.shape[1], in.shape[2]")
        self.check(node.value)
        self.check(node.slice)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if type(node.op) not in _UNARY:
            self.refuse_operator(node, node.op)
        self.check(node.operand)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if type(node.op) not in _BINARY:
            self.refuse_operator(node, node.op)
        self.check(node.left)
        self.check(node.right)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        for value in node.values:
            self.check(value)

    def visit_Compare(self, node: ast.Compare) -> None:
        for op in node.ops:
            if isinstance(op, (ast.In, ast.NotIn)):
                self.where.fail(node, "`x in y` is not supported in an expression",
                                expected="== != < <= > >=",
                                hint="`in` is only the block input: in.c, in.h, in.w, in.shape")
            if isinstance(op, (ast.Is, ast.IsNot)):
                self.where.fail(node, "`is` is not supported in an expression",
                                expected="== != < <= > >=", hint="use `==` or `!=`")
        self.check(node.left)
        for comparator in node.comparators:
            self.check(comparator)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        self.check(node.test)
        self.check(node.body)
        self.check(node.orelse)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if not (isinstance(func, ast.Name) and func.id in FUNCTIONS):
            self.where.fail(func, _CALLS_ALLOWED, expected=", ".join(FUNCTIONS),
                            hint=did_you_mean(func.id, FUNCTIONS) if isinstance(func, ast.Name)
                            else None)
        self.check_arguments(node, func.id)
        for arg in node.args:
            self.check(arg)
        for keyword in node.keywords:
            self.check(keyword.value)

    def check_arguments(self, node: ast.Call, name: str) -> None:
        allowed = _KEYWORDS.get(name, ())
        for keyword in node.keywords:
            if keyword.arg not in allowed:
                shown = "**" if keyword.arg is None else f"{keyword.arg}="
                keywords = "".join(f" and {k}=" for k in allowed)
                self.where.fail(keyword, f"`{name}` does not take `{shown}`",
                                expected="positional arguments" + keywords)
        fewest, most = _ARITY[name]
        count = len(node.args) + len(node.keywords)
        if count < fewest or (most is not None and count > most):
            if most is None:
                wanted = f"at least {_plural(fewest, 'argument')}"
            elif most == fewest:
                wanted = _plural(fewest, "argument")
            else:
                wanted = f"{fewest} to {most} arguments"
            self.where.fail(node, f"`{name}` takes {wanted}", found=_plural(count, "argument"))

    def visit_List(self, node: ast.List) -> None:
        for element in node.elts:
            self.check(element)

    visit_Tuple = visit_List


# --- evaluating --------------------------------------------------------------------------------


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    return {int: "int", float: "float", str: "str", list: "list", tuple: "list"}.get(
        type(value), type(value).__name__)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float))  # bool is an int, as in Python


class _Evaluator:
    """Interprets a validated tree: one ``visit_<Kind>`` per node kind the checker allows."""

    def __init__(self, where: _Where, env: Mapping[str, Any]):
        self.where = where
        self.env = env

    def eval(self, node: ast.AST) -> Any:
        value = getattr(self, "visit_" + type(node).__name__)(node)
        return self.checked(node, value)

    def checked(self, node: ast.AST, value: Any) -> Any:
        """Refuse results no sane network needs: huge ints, inf/nan, complex numbers."""
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and abs(value) > MAX_INT:
            self.where.fail(node, "value overflows", expected="a number of magnitude at most 2**62",
                            found=f"`{self.where.text(node)}` is about 2**{value.bit_length()}")
        if isinstance(value, float) and not math.isfinite(value):
            self.where.fail(node, "value overflows", expected="a finite number",
                            found=f"`{self.where.text(node)}` is {value}")
        if isinstance(value, complex):
            self.where.fail(node, "result is not a real number",
                            found=f"`{self.where.text(node)}` is {value}")
        if isinstance(value, (str, list, tuple)) and value_size(value) > MAX_VALUE_SIZE:
            self.where.fail(node, "value too large",
                            expected=f"a string or list of at most {MAX_VALUE_SIZE:,} characters or "
                                     "items",
                            found=f"`{self.where.text(node)}` is larger",
                            hint="a value that doubles at every `let` grows past any network's need")
        return value

    def type_error(self, node: ast.AST, symbol: str, expected: str, *operands: ast.AST,
                   values: tuple[Any, ...]) -> NoReturn:
        found = ", ".join(f"`{self.where.text(operand)}` is {_kind(value)}"
                          for operand, value in zip(operands, values, strict=True))
        self.where.fail(node, f"wrong types for `{symbol}` in expression", expected=expected,
                        found=found)

    def visit_Constant(self, node: ast.Constant) -> Any:
        return node.value

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id in self.env:
            return self.env[node.id]
        if node.id in FUNCTIONS:
            self.where.fail(node, f"`{node.id}` is a function", hint=f"call it: `{node.id}(...)`")
        hint = did_you_mean(node.id, [*self.env, *FUNCTIONS])
        if node.id == INPUT:
            hint = "`in` is the input of the enclosing block; it is not defined here"
        self.where.fail(node, f"unknown name `{node.id}` in expression", hint=hint,
                        expected="a parameter, a `let` value, `i` or in.c/in.h/in.w/in.shape")

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        shape = self.eval(node.value)
        if not isinstance(shape, InputShape):
            self.where.fail(node.value, "`in` is not a shape here", found=_kind(shape))
        value = getattr(shape, node.attr)
        if value is None:
            self.where.fail(node, f"`in.{node.attr}` is not defined: the input is flat",
                            found=f"input shape ({shape.c},)", hint="use `in.c` for its size")
        return value

    def visit_Subscript(self, node: ast.Subscript) -> Any:
        shape = self.eval(node.value)
        index = self.eval(node.slice)
        if not isinstance(index, int) or isinstance(index, bool):
            self.where.fail(node.slice, "an index of `in.shape` must be an int",
                            found=f"{_kind(index)} `{self.where.text(node.slice)}`")
        if not -len(shape) <= index < len(shape):
            self.where.fail(node.slice, "index out of range for `in.shape`",
                            expected=f"0 to {len(shape) - 1}", found=f"{index} (shape {shape})")
        return shape[index]

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Any:
        symbol, function = _UNARY[type(node.op)]
        value = self.eval(node.operand)
        if symbol != "not" and not _is_number(value):
            self.type_error(node, symbol, "a number", node.operand, values=(value,))
        return function(value)

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        symbol, function = _BINARY[type(node.op)]
        left, right = self.eval(node.left), self.eval(node.right)
        if symbol == "+" and isinstance(left, str) and isinstance(right, str):
            return left + right
        if not (_is_number(left) and _is_number(right)):
            expected = "two numbers or two strings" if symbol == "+" else "two numbers"
            self.type_error(node, symbol, expected, node.left, node.right, values=(left, right))
        if symbol == "**":
            self.check_power(node, left, right)
        try:
            return function(left, right)
        except ZeroDivisionError:
            self.where.fail(node.right, "division by zero in expression",
                            found=f"`{self.where.text(node.right)}` is {right}")
        except OverflowError:
            self.where.fail(node, "value overflows", expected="a finite number")

    def check_power(self, node: ast.BinOp, base: Any, exponent: Any) -> None:
        if abs(exponent) > MAX_EXPONENT:
            self.where.fail(node.right, "exponent too large", expected=f"at most {MAX_EXPONENT}",
                            found=f"`{self.where.text(node.right)}` is {exponent}")
        if abs(base) > MAX_BASE:
            self.where.fail(node.left, "base of `**` too large", expected="at most 2**32",
                            found=f"`{self.where.text(node.left)}` is {base}")

    def visit_BoolOp(self, node: ast.BoolOp) -> Any:
        is_or = isinstance(node.op, ast.Or)
        value = None
        for operand in node.values:
            value = self.eval(operand)
            if (is_or and value) or (not is_or and not value):
                return value  # short-circuit, returning the operand as Python does
        return value

    def visit_Compare(self, node: ast.Compare) -> bool:
        left_node, left = node.left, self.eval(node.left)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            symbol, function = _COMPARE[type(op)]
            right = self.eval(right_node)
            ordered = symbol not in ("==", "!=")
            comparable = (_is_number(left) and _is_number(right)) or (
                isinstance(left, str) and isinstance(right, str))
            if ordered and not comparable:
                self.type_error(node, symbol, "two numbers or two strings", left_node, right_node,
                                values=(left, right))
            if not function(left, right):
                return False
            left_node, left = right_node, right
        return True

    def visit_IfExp(self, node: ast.IfExp) -> Any:
        return self.eval(node.body) if self.eval(node.test) else self.eval(node.orelse)

    def visit_List(self, node: ast.List) -> list[Any]:
        return [self.eval(element) for element in node.elts]

    def visit_Tuple(self, node: ast.Tuple) -> tuple[Any, ...]:
        return tuple(self.eval(element) for element in node.elts)

    def visit_Call(self, node: ast.Call) -> Any:
        name = node.func.id
        args = [self.eval(arg) for arg in node.args]
        kwargs = {keyword.arg: self.eval(keyword.value) for keyword in node.keywords}
        if name in ("min", "max") and len(args) == 1:
            args = self.list_argument(node, name, args[0])
        else:
            for arg_node, value in zip(node.args, args, strict=True):
                self.check_number(node, name, arg_node, value)
        self.check_call(node, name, args, kwargs)
        try:
            return FUNCTIONS[name](*args, **kwargs)
        except ZeroDivisionError:
            self.where.fail(node, "division by zero in expression",
                            found=f"`{self.where.text(node)}`")
        except (OverflowError, ValueError):
            self.where.fail(node, "value overflows", expected="a finite number")

    def list_argument(self, node: ast.Call, name: str, value: Any) -> list[Any]:
        if not isinstance(value, (list, tuple)):
            self.where.fail(node, f"`{name}` of one argument needs a list",
                            expected=f"`{name}(a, b)` or `{name}([a, b])`", found=_kind(value))
        if not value:
            self.where.fail(node, f"`{name}` of an empty list")
        for item in value:
            self.check_number(node, name, node.args[0], item)
        return list(value)

    def check_number(self, node: ast.Call, name: str, arg_node: ast.AST, value: Any) -> None:
        if not _is_number(value):
            self.where.fail(arg_node, f"wrong type of argument to `{name}` in expression",
                            expected="a number", found=f"`{self.where.text(arg_node)}` is "
                            f"{_kind(value)}")

    def check_call(self, node: ast.Call, name: str, args: list[Any],
                   kwargs: dict[str, Any]) -> None:
        """Guards the Python functions: conversions of huge floats, round's digits, min_value."""
        if name in ("int", "round", "ceil", "floor", "make_divisible") and abs(args[0]) > MAX_INT:
            self.where.fail(node, "value overflows", expected="a number of magnitude at most 2**62",
                            found=f"`{self.where.text(node.args[0])}` is {args[0]}")
        if name == "round" and len(args) == 2 and (
                not isinstance(args[1], int) or abs(args[1]) > MAX_ROUND_DIGITS):
            self.where.fail(node.args[1], "`round` takes a number of digits from -64 to 64",
                            found=f"`{self.where.text(node.args[1])}` is {args[1]}")
        if name == "make_divisible":
            min_value = kwargs.get("min_value", args[2] if len(args) == 3 else None)
            if min_value is not None and not _is_number(min_value):
                self.where.fail(node, "wrong type of argument to `make_divisible` in expression",
                                expected="min_value: a number or null", found=_kind(min_value))


# --- code generation ---------------------------------------------------------------------------


class _ToPython(ast.NodeTransformer):
    """Rewrites a (copied) validated tree into the generator's names."""

    def __init__(self, rename: Mapping[str, str]):
        self.rename = rename

    def substitute(self, key: str) -> ast.expr:
        if key not in self.rename:
            raise KeyError(f"to_python: no rename given for `{key}`")
        return ast.parse(self.rename[key], mode="eval").body

    def visit_Name(self, node: ast.Name) -> ast.expr:
        return self.substitute(node.id)

    def visit_Attribute(self, node: ast.Attribute) -> ast.expr:  # only in.<attr> gets here
        return self.substitute(f"{INPUT}.{node.attr}")

    def visit_Call(self, node: ast.Call) -> ast.expr:
        node.func = ast.parse(_PYTHON_FUNCTIONS[node.func.id], mode="eval").body
        node.args = [self.visit(arg) for arg in node.args]
        for keyword in node.keywords:
            keyword.value = self.visit(keyword.value)
        return node
