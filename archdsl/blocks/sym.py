"""Symbolic values: what a generic block class computes from its parameters when it runs.

A block class is written once for every use of the block, so the widths and conditions inside it
are expressions of its ctor parameters (``out``, ``in_channels``, ...), not numbers. A :class:`Sym`
is such an expression (an ``ast`` node over the class's local names) together with a *probe*: its
value for one concrete instance (the first use of the block), used for shape comments and checks.

Values known for every instance stay plain Python values (ints, floats, tuples); arithmetic on
plain values is plain, so the network class sees Syms only over its constructor arguments. Integer
sums are kept as sums (``64 + g + g`` is ``64 + 2 * g``, ``(2 * c) // 2`` is ``c``).
``==`` on a Sym means *provably equal* (same expression), so an op's lowering that compares a
value with a default keeps the keyword unless it is provably the default.

The ops' own shape rules run on Syms too (:func:`symbolic_shape`): their sizes come out as
expressions, and each test a rule makes on a size (``if c % groups:``, ``shape != ins[0]``) is
decided by the probe, as in the instance the probe comes from. The code generator then checks
that every other instance of the block gives the same code; when one does not, the block is
written per use.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ..ops.common import VALIDATING
from .pysrc import literal, parse_expr, unparse

__all__ = [
    "MISSING",
    "UNKNOWN",
    "Sym",
    "Undecidable",
    "all_plain",
    "binop",
    "compare",
    "deciding_by_probe",
    "decisions",
    "is_known",
    "is_sym",
    "key_of",
    "names_in",
    "node_of",
    "probe_of",
    "renamed",
    "render",
    "select",
    "substitute",
]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

_OPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv, ast.Div: operator.truediv, ast.Mod: operator.mod,
}
_CMP: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
}


class Undecidable(TypeError):
    """A test on a symbolic value whose probe is not known."""


_BY_PROBE = [False]  # while an op's rule runs on Syms: tests are decided by the probe
_DECIDED = [0]  # tests decided by a probe that may shape the code (not mere validity checks)


@contextmanager
def deciding_by_probe() -> Iterator[None]:
    """Within: ``==``, ``<``... and truth tests on a Sym are decided by its probe."""
    saved = _BY_PROBE[0]
    _BY_PROBE[0] = True
    try:
        yield
    finally:
        _BY_PROBE[0] = saved


def decisions() -> int:
    """How many tests on symbolic sizes have been decided by a probe so far (a counter)."""
    return _DECIDED[0]


def _truth_of_probe(value: Any) -> bool:
    if not VALIDATING[0]:
        _DECIDED[0] += 1
    if value is MISSING:
        raise Undecidable("a test on a size not known for the probed instance")
    return bool(value)


class Sym:
    """An expression over the generated class's locals, with its value for one instance."""

    __slots__ = ("_key", "node", "pair", "probe")

    def __init__(self, node: ast.expr, probe: Any = MISSING, pair: bool = False):
        self.node = node
        self.probe = probe
        self.pair = pair  # an int or an [h, w] pair (a `pair` parameter)
        self._key = ast.dump(node)

    @classmethod
    def name(cls, identifier: str, probe: Any = MISSING, pair: bool = False) -> Sym:
        return cls(ast.Name(identifier, ast.Load()), probe, pair)

    @classmethod
    def parse(cls, text: str, probe: Any = MISSING) -> Sym:
        return cls(parse_expr(text), probe)

    @property
    def text(self) -> str:
        return unparse(self.node)

    def __format__(self, spec: str) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Sym({self.text!r}, probe={self.probe!r})"

    def __eq__(self, other: object) -> Any:
        if _BY_PROBE[0]:  # a test of a shape rule: a condition, decided when its truth is asked
            return compare(self, ast.Eq(), other)
        return isinstance(other, Sym) and other._key == self._key

    def __ne__(self, other: object) -> Any:
        if _BY_PROBE[0]:
            return compare(self, ast.NotEq(), other)
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash(self._key)

    def __getitem__(self, index: int) -> Sym:
        probe = self.probe[index] if isinstance(self.probe, (list, tuple)) else MISSING
        return Sym(ast.Subscript(self.node, ast.Constant(index), ast.Load()), probe)

    def __bool__(self) -> bool:
        if _BY_PROBE[0]:
            return _truth_of_probe(self.probe)
        raise Undecidable(f"the truth of `{self.text}` is known only when the generated code runs")

    def __lt__(self, other: Any) -> Any:
        return compare(self, ast.Lt(), other)

    def __le__(self, other: Any) -> Any:
        return compare(self, ast.LtE(), other)

    def __gt__(self, other: Any) -> Any:
        return compare(self, ast.Gt(), other)

    def __ge__(self, other: Any) -> Any:
        return compare(self, ast.GtE(), other)

    def __neg__(self) -> Any:
        return binop(0, ast.Sub(), self)

    def __mod__(self, other: Any) -> Any:
        return binop(self, ast.Mod(), other)

    def __rmod__(self, other: Any) -> Any:
        return binop(other, ast.Mod(), self)

    def __truediv__(self, other: Any) -> Any:
        return binop(self, ast.Div(), other)

    def __rtruediv__(self, other: Any) -> Any:
        return binop(other, ast.Div(), self)

    def __add__(self, other: Any) -> Any:
        return binop(self, ast.Add(), other)

    def __radd__(self, other: Any) -> Any:
        return binop(other, ast.Add(), self)

    def __sub__(self, other: Any) -> Any:
        return binop(self, ast.Sub(), other)

    def __rsub__(self, other: Any) -> Any:
        return binop(other, ast.Sub(), self)

    def __mul__(self, other: Any) -> Any:
        return binop(self, ast.Mult(), other)

    def __rmul__(self, other: Any) -> Any:
        return binop(other, ast.Mult(), self)

    def __floordiv__(self, other: Any) -> Any:
        return binop(self, ast.FloorDiv(), other)

    def __rfloordiv__(self, other: Any) -> Any:
        return binop(other, ast.FloorDiv(), self)


# A size no rule can express (it spreads through arithmetic); generated code must never need it.
UNKNOWN = Sym.name("__unknown__")


def is_known(value: Any) -> bool:
    """False when ``value`` (or a part of it) depends on an :data:`UNKNOWN` size."""
    return "__unknown__" not in names_in(value)


def is_sym(value: Any) -> bool:
    return isinstance(value, Sym)


def all_plain(values: Any) -> bool:
    """No Sym anywhere in ``values`` (nested tuples, lists and dicts)."""
    if isinstance(values, Sym):
        return False
    if isinstance(values, (tuple, list)):
        return all(all_plain(v) for v in values)
    if isinstance(values, dict):
        return all(all_plain(v) for v in values.values())
    return True


def node_of(value: Any) -> ast.expr:
    if isinstance(value, Sym):
        return value.node
    if isinstance(value, (tuple, list)):
        elts = [node_of(v) for v in value]
        return ast.Tuple(elts, ast.Load()) if isinstance(value, tuple) else ast.List(elts, ast.Load())
    return literal(value)


def probe_of(value: Any) -> Any:
    """The value for the probed instance (MISSING when unknown)."""
    if isinstance(value, Sym):
        return value.probe
    if isinstance(value, (tuple, list)):
        items = [probe_of(v) for v in value]
        if any(i is MISSING for i in items):
            return MISSING
        return tuple(items) if isinstance(value, tuple) else items
    return value


def render(value: Any) -> str:
    """Python source for a plain value or a Sym."""
    return unparse(node_of(value))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _apply(function: Callable[[Any, Any], Any], a: Any, b: Any) -> Any:
    if a is MISSING or b is MISSING:
        return MISSING
    try:
        return function(a, b)
    except (ArithmeticError, TypeError, ValueError):
        return MISSING


def binop(a: Any, op: ast.operator, b: Any) -> Any:
    """``a op b``: computed when both are plain, else a Sym (``x + 0`` and ``x * 1`` simplified)."""
    function = _OPS[type(op)]
    if not isinstance(a, Sym) and not isinstance(b, Sym):
        return function(a, b)
    if isinstance(op, ast.Add) and _is_number(b) and b == 0:
        return a
    if isinstance(op, ast.Add) and _is_number(a) and a == 0:
        return b
    if isinstance(op, (ast.Mult, ast.FloorDiv)) and _is_number(b) and b == 1:
        return a
    if isinstance(op, ast.Mult) and _is_number(a) and a == 1:
        return b
    probe = _apply(function, probe_of(a), probe_of(b))
    if isinstance(op, (ast.Add, ast.Sub)) and isinstance(a, Sym) and _is_number(b):
        combined = _combine(a, b, -1 if isinstance(op, ast.Sub) else 1, probe)  # (64 + g) - 64
        return combined if combined is not None else _offset(a, b if isinstance(op, ast.Add) else -b)
    if isinstance(op, (ast.Add, ast.Sub)):
        combined = _combine(a, b, -1 if isinstance(op, ast.Sub) else 1, probe)
        if combined is not None:
            return combined
    if isinstance(op, ast.FloorDiv) and _is_int(b) and b > 0:
        divided = _divide(a, b, probe)
        if divided is not None:
            return divided
    return Sym(ast.BinOp(node_of(a), op, node_of(b)), probe)


def _linear(value: Any) -> list[tuple[str, int, ast.expr | None]] | None:
    """A sum as ``[(key, coefficient, term)]`` in order (the constant's term is None): ``64 + g +
    2 * g`` is ``[("", 64, None), ("g", 3, g)]``; None for a value that is not an int or a Sym."""
    if isinstance(value, Sym):
        return _linear_node(value.node)
    if isinstance(value, int) and not isinstance(value, bool):
        return [("", value, None)]
    return None


def _linear_node(node: ast.expr) -> list[tuple[str, int, ast.expr | None]] | None:
    if isinstance(node, ast.Constant):
        ok = isinstance(node.value, int) and not isinstance(node.value, bool)
        return [("", node.value, None)] if ok else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        left, right = _linear_node(node.left), _linear_node(node.right)
        if left is None or right is None:
            return None
        sign = -1 if isinstance(node.op, ast.Sub) else 1
        return _merge_terms(left, [(k, sign * c, t) for k, c, t in right])
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        for factor, term in ((node.left, node.right), (node.right, node.left)):
            if isinstance(factor, ast.Constant) and isinstance(factor.value, int) \
                    and not isinstance(factor.value, bool):
                return [(ast.dump(term), factor.value, term)]
    return [(ast.dump(node), 1, node)]  # a term of its own: a name, a call, a floor division...


def _merge_terms(a: list[tuple[str, int, Any]], b: list[tuple[str, int, Any]]) -> list[tuple[str, int, Any]]:
    merged = {key: [key, coef, term] for key, coef, term in a}
    for key, coef, term in b:
        if key in merged:
            merged[key][1] += coef
        else:
            merged[key] = [key, coef, term]
    return [(k, c, t) for k, c, t in merged.values()]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _divide(a: Any, k: int, probe: Any) -> Any:
    """``a // k`` when every coefficient of the integer sum ``a`` is a multiple of ``k``:
    ``(2 * c) // 2`` is ``c``, ``(64 + 6 * g) // 2`` is ``32 + 3 * g``; else None."""
    terms = _linear(a)
    if terms is None or not (_is_int(probe) and _is_int(probe_of(a))) \
            or any(coef % k for _, coef, _ in terms):
        return None
    return _sum([(key, coef // k, term) for key, coef, term in terms], probe)


def _combine(a: Any, b: Any, sign: int, probe: Any) -> Any:
    """``a + sign * b`` as one sum when both are integer sums (ints for the probed instance) of
    names that share a name or a constant: ``64 + g + g`` is ``64 + 2 * g``, ``g - g`` is 0;
    else None."""
    left, right = _linear(a), _linear(b)
    if left is None or right is None or not _is_int(probe):
        return None
    right = [(k, sign * c, t) for k, c, t in right]
    if not {k for k, _, _ in left} & {k for k, _, _ in right}:
        return None
    return _sum(_merge_terms(left, right), probe)


def _sum(terms: list[tuple[str, int, Any]], probe: Any) -> Any:
    """The Sym of an integer sum (see :func:`_linear`), or its value when no name is left."""
    node: ast.expr | None = None
    for _, coef, term in terms:
        if coef == 0:
            continue
        size = abs(coef)
        part: ast.expr = ast.Constant(size) if term is None else (
            term if size == 1 else ast.BinOp(ast.Constant(size), ast.Mult(), term))
        if node is None:
            node = part if coef > 0 else ast.UnaryOp(ast.USub(), part)
        else:
            node = ast.BinOp(node, ast.Add() if coef > 0 else ast.Sub(), part)
    if node is None or isinstance(node, ast.Constant):  # the names cancel out
        return probe
    return Sym(node, probe)


def _offset(a: Sym, delta: Any) -> Any:
    """``a + delta`` with constant offsets folded: ``(h - 1) + 1`` is ``h``."""
    base, total = a.node, delta
    node = a.node
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)) \
            and isinstance(node.right, ast.Constant) and _is_number(node.right.value):
        base = node.left
        total = delta + (node.right.value if isinstance(node.op, ast.Add) else -node.right.value)
    probe = _apply(operator.add, a.probe, delta)
    if total == 0:
        return Sym(base, probe)
    op: ast.operator = ast.Add() if total > 0 else ast.Sub()
    return Sym(ast.BinOp(base, op, ast.Constant(abs(total))), probe)


def compare(a: Any, op: ast.cmpop, b: Any) -> Any:
    function = _CMP[type(op)]
    if not isinstance(a, Sym) and not isinstance(b, Sym):
        return function(a, b)
    node = ast.Compare(node_of(a), [op], [node_of(b)])
    return Sym(node, _apply(function, probe_of(a), probe_of(b)))


def select(cond: Any, then: Any, orelse: Any) -> Any:
    """``then if cond else orelse``, folded when the condition is known or both sides are equal."""
    if not isinstance(cond, Sym):
        return then if cond else orelse
    if isinstance(then, Sym) == isinstance(orelse, Sym) and then == orelse:
        return then
    probe = cond.probe
    chosen = MISSING if probe is MISSING else probe_of(then if probe else orelse)
    return Sym(ast.IfExp(cond.node, node_of(then), node_of(orelse)), chosen)


def names_in(value: Any) -> set[str]:
    """The free names of a Sym (or of Syms nested in tuples and lists)."""
    if isinstance(value, Sym):
        return {n.id for n in ast.walk(value.node) if isinstance(n, ast.Name)}
    if isinstance(value, (tuple, list)):
        out: set[str] = set()
        for v in value:
            out |= names_in(v)
        return out
    return set()


class _Substitute(ast.NodeTransformer):
    def __init__(self, mapping: Mapping[str, ast.expr]):
        self.mapping = mapping

    def visit_Name(self, node: ast.Name) -> ast.expr:
        return self.mapping.get(node.id, node)


def substitute(node: ast.expr, mapping: Mapping[str, ast.expr]) -> ast.expr:
    """A copy of ``node`` with names replaced by the given nodes."""
    import copy

    return _Substitute(mapping).visit(copy.deepcopy(node))


def renamed(value: Any, names: Mapping[str, str]) -> Any:
    """``value`` (a Sym, or tuples and lists of them) with its names replaced as ``names`` say
    (a fresh copy of each Sym, its probe kept)."""
    if isinstance(value, Sym):
        nodes = {old: ast.Name(new, ast.Load()) for old, new in names.items()}
        return Sym(substitute(value.node, nodes), value.probe, value.pair)
    if isinstance(value, tuple):
        return tuple(renamed(v, names) for v in value)
    if isinstance(value, list):
        return [renamed(v, names) for v in value]
    return value


# --- simplifying under an assumption ----------------------------------------------------------

_SIMPLE_TESTS = (ast.Compare, ast.BoolOp, ast.UnaryOp, ast.Name, ast.Constant)


def refine(value: Any, assumption: Any) -> Any:
    """``value`` with the conditionals that ``assumption`` decides folded away.

    Inside ``if stride > 1:``, ``a if stride == 1 else b`` is ``b``. Only tests over one name
    compared with numbers are decided (checked on both sides of every constant they mention).
    """
    if isinstance(value, tuple):
        return tuple(refine(v, assumption) for v in value)
    if not isinstance(value, Sym) or not isinstance(assumption, Sym):
        return value
    node = _Refine(assumption.node).visit(_deepcopy(value.node))
    if isinstance(node, ast.Constant):
        return node.value
    return Sym(node, value.probe)


def _deepcopy(node: ast.expr) -> ast.expr:
    import copy

    return copy.deepcopy(node)


class _Refine(ast.NodeTransformer):
    def __init__(self, assumption: ast.expr):
        self.assumption = assumption

    def visit_IfExp(self, node: ast.IfExp) -> ast.expr:
        self.generic_visit(node)
        decided = _decide(node.test, self.assumption)
        if decided is None:
            return node
        return node.body if decided else node.orelse


def _comparison_names(node: ast.expr) -> set[str] | None:
    """The names of a test made only of ``name op number`` comparisons, and/or/not; else None."""
    names: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            names.add(sub.id)
        elif isinstance(sub, ast.Constant):
            if not _is_number(sub.value) and not isinstance(sub.value, bool):
                return None
        elif not isinstance(sub, (*_SIMPLE_TESTS, ast.cmpop, ast.boolop, ast.Not, ast.USub,
                                  ast.expr_context)):
            return None
    return names


_NEGATED = {ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.GtE, ast.GtE: ast.Lt,
            ast.Gt: ast.LtE, ast.LtE: ast.Gt}


def _negation(node: ast.expr) -> ast.expr:
    """``not node``, written as the opposite comparison where there is one."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return node.operand
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _NEGATED:
        return ast.Compare(node.left, [_NEGATED[type(node.ops[0])]()], node.comparators)
    return ast.UnaryOp(ast.Not(), node)


def _decide_same(test: ast.expr, assumption: ast.expr) -> bool | None:
    """A test that is the assumption (or one of its `and`-ed parts) as written, or its negation
    (``hidden != in_channels`` inside ``if hidden == in_channels``)."""
    parts = assumption.values if isinstance(assumption, ast.BoolOp) and isinstance(
        assumption.op, ast.And) else [assumption]
    for part in parts:
        if ast.dump(test) == ast.dump(part):
            return True
        if ast.dump(test) == ast.dump(_negation(part)) or ast.dump(_negation(test)) == ast.dump(part):
            return False
    return None


def _decide(test: ast.expr, assumption: ast.expr) -> bool | None:
    same = _decide_same(test, assumption)
    if same is not None:
        return same
    names = _comparison_names(test)
    assumed = _comparison_names(assumption)
    if names is None or assumed is None or len(names) != 1 or not assumed <= names:
        return None
    (name,) = names
    constants = [n.value for n in ast.walk(ast.BoolOp(ast.And(), [test, assumption]))
                 if isinstance(n, ast.Constant) and _is_number(n.value)]
    candidates = {0} | {c + d for c in constants for d in (-1, -0.5, 0, 0.5, 1)}
    seen: set[bool] = set()
    for value in sorted(candidates):
        if _truth(assumption, name, value):
            seen.add(bool(_truth(test, name, value)))
    return seen.pop() if len(seen) == 1 else None


def _truth(node: ast.expr, name: str, value: Any) -> Any:
    code = compile(ast.fix_missing_locations(ast.Expression(_deepcopy(node))), "<test>", "eval")
    return eval(code, {"__builtins__": {}}, {name: value})


def key_of(value: Any) -> str:
    """A hashable text identifying a value that may hold ``Sym``s (their expression and probe):
    equal keys, the same code."""
    if isinstance(value, Sym):
        return f"S{ast.dump(value.node)}={value.probe!r}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{key_of(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (tuple, list)):
        return "(" + ",".join(key_of(v) for v in value) + ")"
    return repr(value)
