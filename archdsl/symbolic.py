"""``archdsl report --symbolic``: parameters, MACs, memory and output shape as formulas.

The method: the spec is expanded once concretely (its structure and validity at the *probe*: the
parameter values and input it is given), then once more with the named quantities (``H``, ``W``,
``batch`` and spec parameters) as *traced numbers*: ints and floats that carry a SymPy expression
beside their probe value. Expressions, block arguments and the ops' own shape and cost rules run
on them unchanged, so every size and count comes out as an exact formula (``//`` is ``floor``,
``int()`` of a positive value is ``floor``). Nothing here knows an op: the formulas are the ops'
rules (:mod:`archdsl.ops`), summed as :func:`archdsl.analysis.analyze` sums them.

A test on a traced value (``==``, ``<``, ``if``) is decided by its probe, as Python must; the
tracer records it and asks SymPy whether it holds for *every* value of the symbols (named
parameters are positive; integer ones integers). Where it does not:

* in a structural position (a ``repeat:``/``dense:`` count, ``when:``, ``connect:``, a name
  template) or in an expression (``min``, ``max``, ``make_divisible``'s rounding, a choice):
  the count is not a closed form, and a located :class:`SpecError` says so;
* inside an op's shape rule (e.g. the last window of a ``ceil_mode`` pooling): the formula holds
  where the test goes as it went at the probe, and the condition is reported with the formulas
  (``assuming``);
* a validity check (an op's ``violated(...)`` test, the expander's size limits, ``checks:``):
  ignored: the formulas hold where the spec is valid.
"""

from __future__ import annotations

import json
import math
import operator
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Self

import sympy

from .analysis import DTYPE_BYTES, Analysis, analyze
from .errors import Diagnostic, Loc, SpecError, UsageError, did_you_mean
from .expand import DEFAULT_MAX_NODES, Expander
from .ir import Graph
from .ops.common import VALIDATING
from .pipeline import instantiate, parse_input, spec_input
from .spec import Repeat, Spec, Value

__all__ = [
    "FORMATS",
    "FORMULAS",
    "SIZE_SYMBOLS",
    "Formula",
    "SymbolicAnalysis",
    "analyze_symbolic",
    "expression_tree",
    "named_floors",
    "parse_symbols",
    "render",
    "to_json_data",
]

SIZE_SYMBOLS = ("H", "W", "batch")

# The figures, in report order: (key, what it is).
FORMULAS = (
    ("params", "parameters (every branch, auxiliary heads included)"),
    ("trainable_params", "trainable parameters"),
    ("buffers", "buffers (batch-norm running statistics)"),
    ("macs", "multiply-accumulates of the inference pass (conv and linear, bias excluded)"),
    ("flops", "FLOPs = 2 x MACs"),
    ("fvcore_flops", "what fvcore's FlopCountAnalysis counts"),
    ("input_elements", "elements of the input (batch included)"),
    ("activations", "elements of every output of the inference pass (batch included)"),
    ("activation_bytes", "bytes of those activations in the chosen dtype"),
)

# A comparison with a number at least this large is one of the compiler's overflow limits.
_LIMIT = 2**31 - 1


# --- traced numbers ----------------------------------------------------------------------------

@dataclass
class _Context:
    kind: str  # structural, value, rule, validity
    loc: Loc | None
    what: str


@dataclass
class _Tracer:
    """What the traced numbers report to while one expansion runs."""

    active: bool = False
    contexts: list[_Context] = field(default_factory=list)
    assumptions: list[tuple[sympy.Basic, _Context]] = field(default_factory=list)


_TRACER = _Tracer()


@contextmanager
def _context(kind: str, loc: Loc | None, what: str) -> Iterator[None]:
    _TRACER.contexts.append(_Context(kind, loc, what))
    try:
        yield
    finally:
        _TRACER.contexts.pop()


def _sym(value: Any) -> sympy.Expr:
    """A number (traced or plain) as a SymPy expression: floats by their shortest decimal."""
    if isinstance(value, _Traced):
        return value.sym
    if isinstance(value, bool):
        return sympy.Integer(int(value))
    if isinstance(value, int):
        return sympy.Integer(value)
    return sympy.Rational(repr(value))


def _traced(value: Any, sym: sympy.Expr) -> Any:
    """``value`` carrying ``sym``; a plain number when the expression has no symbol."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if not sym.free_symbols:
        return value
    if isinstance(value, int):
        return TracedInt(value, sym)
    return TracedFloat(value, sym)


def _known(relation: sympy.Basic) -> bool | None:
    """True or False when ``relation`` holds for every value of its symbols, else None."""
    if relation in (sympy.true, sympy.false):
        return bool(relation)
    difference = relation.lhs - relation.rhs
    test = {
        sympy.Eq: lambda d: d.is_zero,
        sympy.Ne: lambda d: None if d.is_zero is None else not d.is_zero,
        sympy.Lt: lambda d: d.is_negative,
        sympy.Le: lambda d: d.is_nonpositive,
        sympy.Gt: lambda d: d.is_positive,
        sympy.Ge: lambda d: d.is_nonnegative,
    }[type(relation)]
    return test(difference)


_RELATIONS: dict[str, tuple[Callable[[Any, Any], bool], Callable[..., sympy.Basic]]] = {
    "eq": (operator.eq, sympy.Eq), "ne": (operator.ne, sympy.Ne),
    "lt": (operator.lt, sympy.Lt), "le": (operator.le, sympy.Le),
    "gt": (operator.gt, sympy.Gt), "ge": (operator.ge, sympy.Ge),
}


def _decide(name: str, left: Any, right: Any) -> Any:
    """``left <name> right`` by the probes; a test SymPy cannot decide is recorded."""
    function, relation = _RELATIONS[name]
    plain = function(_probe(left), _probe(right))
    if not _TRACER.active or VALIDATING[0]:
        return plain
    if not isinstance(right, (int, float, _Traced)):
        return plain
    if any(not isinstance(v, _Traced) and abs(v) >= _LIMIT for v in (left, right)):
        return plain  # an overflow limit of the compiler: a validity check
    held = relation(_sym(left), _sym(right))
    if _known(held) is None:
        _undecided(held if plain else sympy.Not(held))
    return plain


def _undecided(condition: sympy.Basic, what: str | None = None) -> None:
    """A test on the symbols that SymPy cannot decide: an assumption, or not a closed form."""
    context = _innermost()
    if context.kind == "validity":
        return
    if context.kind == "rule" and what is None:
        _TRACER.assumptions.append((condition, context))
        return
    names = ", ".join(sorted(str(s) for s in condition.free_symbols))
    where = what or context.what
    raise SpecError(Diagnostic(
        f"not a closed form in {names}: {where}", context.loc,
        expected="a value that is the same expression of the named symbols for all of their values",
        found=f"a test that depends on them: {condition}" if what is None else None,
        hint=f"name only parameters that flow into sizes through arithmetic; analyse the others "
             f"point by point with `archdsl sweep --grid {names.split(', ')[0]}=...`"))


def _innermost() -> _Context:
    """Where a test happens: a validity check anywhere up the stack makes it one; else the
    outermost structural position (a `when:` names itself better than its expression), else the
    innermost place."""
    stack = _TRACER.contexts
    for kind in ("validity", "structural"):
        for context in stack:
            if context.kind == kind:
                return context
    return stack[-1] if stack else _Context("value", None, "a value")


def _probe(value: Any) -> Any:
    if isinstance(value, TracedInt):
        return int.__int__(value)
    if isinstance(value, TracedFloat):
        return float.__float__(value)
    return value


def _arith(function: Callable[[Any, Any], Any], symbolic: Callable[[Any, Any], Any]):
    def forward(self: _Traced, other: Any) -> Any:
        if isinstance(other, bool) or not isinstance(other, (int, float)):
            return NotImplemented
        return _traced(function(_probe(self), _probe(other)), symbolic(_sym(self), _sym(other)))

    def backward(self: _Traced, other: Any) -> Any:
        if isinstance(other, bool) or not isinstance(other, (int, float)):
            return NotImplemented
        return _traced(function(_probe(other), _probe(self)), symbolic(_sym(other), _sym(self)))

    return forward, backward


def _floordiv(a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
    return sympy.floor(a / b)


def _truncate(value: _Traced) -> Any:
    """``int()`` of a traced number: ``floor`` where it is non-negative (decided as any test)."""
    if _decide("ge", value, 0):
        return _traced(math.trunc(_probe(value)), sympy.floor(value.sym))
    return _traced(math.trunc(_probe(value)), sympy.ceiling(value.sym))


class _Traced:
    """Arithmetic, comparisons and conversions of a number with a SymPy expression."""

    sym: sympy.Expr

    __add__, __radd__ = _arith(operator.add, operator.add)
    __sub__, __rsub__ = _arith(operator.sub, operator.sub)
    __mul__, __rmul__ = _arith(operator.mul, operator.mul)
    __truediv__, __rtruediv__ = _arith(operator.truediv, operator.truediv)
    __floordiv__, __rfloordiv__ = _arith(operator.floordiv, _floordiv)
    __mod__, __rmod__ = _arith(operator.mod, sympy.Mod)
    __pow__, __rpow__ = _arith(operator.pow, operator.pow)

    def __neg__(self) -> Any:
        return _traced(-_probe(self), -self.sym)

    def __pos__(self) -> Any:
        return self

    def __abs__(self) -> Any:
        return _traced(abs(_probe(self)), sympy.Abs(self.sym))

    def __eq__(self, other: object) -> Any:
        return _decide("eq", self, other)

    def __ne__(self, other: object) -> Any:
        return _decide("ne", self, other)

    def __lt__(self, other: Any) -> Any:
        return _decide("lt", self, other)

    def __le__(self, other: Any) -> Any:
        return _decide("le", self, other)

    def __gt__(self, other: Any) -> Any:
        return _decide("gt", self, other)

    def __ge__(self, other: Any) -> Any:
        return _decide("ge", self, other)

    def __bool__(self) -> bool:
        return bool(_decide("ne", self, 0))

    def __floor__(self) -> Any:
        return _traced(math.floor(_probe(self)), sympy.floor(self.sym))

    def __ceil__(self) -> Any:
        return _traced(math.ceil(_probe(self)), sympy.ceiling(self.sym))

    def __trunc__(self) -> Any:
        return _truncate(self)

    def __int__(self) -> Any:
        return _truncate(self)

    def __float__(self) -> Any:
        return _traced(float(_probe(self)), self.sym)

    def __round__(self, ndigits: Any = None) -> Any:
        if _TRACER.active:
            _undecided(sympy.Eq(self.sym, self.sym, evaluate=False),
                       "`round()` (half to even) has no exact formula here")
        return round(_probe(self), ndigits)

    def __index__(self) -> int:
        if _TRACER.active:
            _undecided(sympy.Eq(self.sym, self.sym, evaluate=False),
                       "a count or an index (it changes the structure)")
        return int(_probe(self))

    def __repr__(self) -> str:
        return repr(_probe(self))

    __str__ = __repr__


class TracedInt(_Traced, int):
    """An int that carries a SymPy expression (its value is the probe)."""

    def __new__(cls, value: int, sym: sympy.Expr) -> Self:
        self = int.__new__(cls, value)
        self.sym = sym
        return self

    def __hash__(self) -> int:
        return int.__hash__(self)


class TracedFloat(_Traced, float):
    """A float that carries a SymPy expression (its value is the probe)."""

    def __new__(cls, value: float, sym: sympy.Expr) -> Self:
        self = float.__new__(cls, value)
        self.sym = sym
        return self

    def __hash__(self) -> int:
        return float.__hash__(self)


# --- the traced expansion ----------------------------------------------------------------------

class _TracingExpander(Expander):
    """The expander, with each place a value is used marked (structure, value, rule, check)."""

    # a body expanded with traced values holds their expressions: never copied to another use
    reuse_blocks = False

    def eval_value(self, value: Value, env: dict[str, Any]) -> Any:
        with _context("value", value.loc, "a test in this expression (min, max, a comparison, "
                                          "make_divisible's rounding...)"):
            return super().eval_value(value, env)

    def truth(self, value: Value, env: dict[str, Any], key: str) -> bool:
        if key == "checks":
            with _context("validity", value.loc, ""):
                return super().truth(value, env, key)
        with _context("structural", value.loc, f"a `{key}:` condition"):
            return super().truth(value, env, key)

    def expand_repeat(self, rep: Repeat, x: str, ctx: Any) -> str | None:
        head = "dense" if rep.dense else "repeat"
        with _context("structural", rep.count.loc, f"a `{head}:` count"):
            count = self.eval_value(rep.count, ctx.env)
            if isinstance(count, _Traced):
                _undecided(sympy.Eq(count.sym, count.sym, evaluate=False), f"a `{head}:` count")
        return super().expand_repeat(rep, x, ctx)

    def template(self, tmpl: Value, env: dict[str, Any]) -> str:
        with _context("structural", tmpl.loc, "a name template"):
            return super().template(tmpl, env)

    def check_shape(self, shape: Any, name: str, loc: Loc | None) -> None:
        with _context("validity", loc, ""):
            super().check_shape(shape, name, loc)

    @staticmethod
    def check_type(value: Any, type_name: str, key: str, loc: Loc, what: str) -> Any:
        """A traced int passed to a float block parameter stays traced."""
        if type_name == "float" and isinstance(value, TracedInt):
            return TracedFloat(float(_probe(value)), value.sym)
        return Expander.check_type(value, type_name, key, loc, what)

    def add_op(self, op_name: str, raw: dict[str, Any], inputs: list[str], ctx: Any, name: str,
               loc: Loc | None, arg_locs: dict[str, Loc] | None = None) -> str:
        with _context("rule", loc, f"the shape rule of `{op_name}`"):
            return super().add_op(op_name, raw, inputs, ctx, name, loc, arg_locs)


@contextmanager
def _tracing() -> Iterator[None]:
    _TRACER.active = True
    _TRACER.assumptions.clear()
    try:
        with warnings.catch_warnings():
            # int()/float() of a traced number return the traced subclass (deprecated, not gone)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        _TRACER.active = False
        _TRACER.contexts.clear()


# --- the result ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Formula:
    """One figure: its formula and its value at the probe (what the concrete analysis gives)."""

    key: str
    doc: str
    expr: sympy.Expr
    probe: int


@dataclass
class SymbolicAnalysis:
    """The formulas of one spec in the named symbols, and the concrete analysis at the probe."""

    name: str
    file: str
    symbols: dict[str, sympy.Symbol]  # in the order named
    probe: dict[str, int | float]  # each symbol's value where the structure was taken
    formulas: dict[str, Formula]
    output_shape: tuple[sympy.Expr, ...]
    assumptions: list[tuple[sympy.Basic, Loc | None]]  # tests of op rules the formulas assume
    dtype: str
    analysis: Analysis

    def evaluate(self, key: str, values: dict[str, Any]) -> Any:
        """A formula at ``values`` (symbol name -> number), exactly."""
        return _at(self.formulas[key].expr, self.symbols, values)

    def evaluate_shape(self, values: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(_at(dim, self.symbols, values) for dim in self.output_shape)


def _at(expr: sympy.Expr, symbols: dict[str, sympy.Symbol], values: dict[str, Any]) -> Any:
    result = expr.xreplace({symbols[k]: _sym(v) for k, v in values.items() if k in symbols})
    if result.is_Integer:
        return int(result)
    return result


# --- the analysis ----------------------------------------------------------------------------

def parse_symbols(text: str, spec: Spec, input_shape: tuple[int, ...]) -> list[str]:
    """``"H,W,num_classes"`` -> the names, each checked (a wrong name is a usage error)."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise UsageError(Diagnostic("--symbolic needs at least one name", None,
                                    expected="e.g. --symbolic H,W or --symbolic num_classes"))
    known = [*SIZE_SYMBOLS, *spec.params]
    for name in names:
        if name not in known:
            raise UsageError(Diagnostic(
                f"--symbolic {name}: neither an input size nor a parameter of the spec", None,
                expected="H, W, batch, or one of the spec's parameters: "
                         + (", ".join(spec.params) or "none"),
                found=f"`{name}`", hint=did_you_mean(name, known)))
        if name in ("H", "W") and len(input_shape) != 3:
            raise UsageError(Diagnostic(f"--symbolic {name}: the input is flat", None,
                                        expected="a C x H x W input",
                                        found=" x ".join(map(str, input_shape))))
    if len(set(names)) != len(names):
        raise UsageError(Diagnostic("--symbolic names a symbol twice", None, found=text))
    return names


def analyze_symbolic(spec: Spec, params: dict[str, Any], names: list[str], *, input: Any = None,
                     batch: int = 1, dtype: str = "float32",
                     max_nodes: int = DEFAULT_MAX_NODES) -> SymbolicAnalysis:
    """The formulas of ``spec`` in ``names`` (from :func:`parse_symbols`), probed at ``params``,
    ``input`` and ``batch``. Raises a located SpecError where a figure is not a closed form."""
    graph = instantiate(spec, params, input=input, max_nodes=max_nodes)
    analysis = analyze(graph, batch=batch, dtype=dtype)
    symbols = {name: _symbol(name, spec) for name in names}
    traced_params = dict(params)
    for name in names:
        if name in spec.params:
            traced_params[name] = _parameter(spec, name, params[name], symbols[name])
    with _tracing():
        shape = list(spec_input(spec, traced_params) if input is None else parse_input(input))
        for axis, name in ((1, "H"), (2, "W")):
            if name in symbols:
                shape[axis] = TracedInt(_probe(shape[axis]), symbols[name])
        traced = _TracingExpander(spec, traced_params, tuple(shape), max_nodes).run()
        formulas = _formulas(graph, traced, analysis, symbols.get("batch"), batch, dtype)
        assumptions = _assumptions()
    probe = {name: (batch if name == "batch" else _probe_size(name, graph, params)) for name in names}
    result = SymbolicAnalysis(
        name=spec.name, file=spec.file, symbols=symbols, probe=probe, formulas=formulas,
        output_shape=tuple(_sym(d) for d in traced.main_output.shape), assumptions=assumptions,
        dtype=dtype, analysis=analysis)
    _check_probe(result)
    _check_elsewhere(result, spec, params, input, max_nodes)
    return result


def _symbol(name: str, spec: Spec) -> sympy.Symbol:
    if name in SIZE_SYMBOLS or spec.params[name].type == "int":
        return sympy.Symbol(name, integer=True, positive=True)
    return sympy.Symbol(name, positive=True)


def _parameter(spec: Spec, name: str, value: Any, symbol: sympy.Symbol) -> Any:
    """The traced value of a named spec parameter; a located error when it cannot be a symbol."""
    decl = spec.params[name]
    if decl.choices:
        raise SpecError(Diagnostic(
            f"not a closed form in {name}: the parameter takes one of a list of choices", decl.loc,
            expected="an int or float parameter without `choices`",
            found="choices: " + ", ".join(map(str, decl.choices)),
            hint=f"compare the choices with `archdsl sweep --grid {name}="
                 + ",".join(map(str, decl.choices)) + "`"))
    if decl.type not in ("int", "float") or isinstance(value, bool) or value <= 0:
        raise SpecError(Diagnostic(
            f"--symbolic {name}: only positive int and float parameters can be symbols", decl.loc,
            expected="an int or float parameter with a positive value", found=f"{decl.type} {value!r}"))
    return (TracedInt if decl.type == "int" else TracedFloat)(value, symbol)


def _probe_size(name: str, graph: Graph, params: dict[str, Any]) -> Any:
    if name == "H":
        return graph.input_shape[1]
    if name == "W":
        return graph.input_shape[2]
    return params[name]


def _formulas(graph: Graph, traced: Graph, analysis: Analysis, batch_symbol: Any, batch: int,
              dtype: str) -> dict[str, Formula]:
    """Each figure as the analysis computes it, from the ops' rules over the traced graph."""
    if list(traced.nodes) != list(graph.nodes):  # the probe's structure, traced again
        raise AssertionError("the traced expansion differs from the concrete one")
    terms: dict[str, list[sympy.Expr]] = {key: [] for key in
                                          ("params", "trainable_params", "buffers", "macs",
                                           "fvcore_flops", "activations")}
    for node in traced.op_nodes():
        op, ins, out = node.opdef, list(node.in_shapes), node.shape
        with _context("rule", node.loc, f"the cost rules of `{node.op}`"):
            params = _sym(op.params(node.attrs, ins, out))
            terms["params"].append(params)
            if not node.freeze:
                terms["trainable_params"].append(params)
            terms["buffers"].append(_sym(op.buffers(node.attrs, ins, out)))
            if analysis.nodes[node.name].runs:
                terms["macs"].append(_sym(op.macs(node.attrs, ins, out)))
                terms["fvcore_flops"].append(_sym(op.fvcore_flops(node.attrs, ins, out)))
                terms["activations"].append(_sym(math.prod(out)))
    scale = batch_symbol if batch_symbol is not None else sympy.Integer(batch)
    exprs = {key: sympy.Add(*values) for key, values in terms.items()}
    for key in ("macs", "fvcore_flops", "activations"):
        exprs[key] = scale * exprs[key]
    exprs["flops"] = 2 * exprs["macs"]
    exprs["input_elements"] = scale * sympy.Mul(*(_sym(d) for d in traced.input_shape))
    exprs["activation_bytes"] = DTYPE_BYTES[dtype] * exprs["activations"]
    m = analysis.memory
    concrete = {"params": analysis.params, "trainable_params": analysis.trainable_params,
                "buffers": analysis.buffers, "macs": analysis.macs, "flops": analysis.flops,
                "fvcore_flops": analysis.fvcore_flops, "input_elements": m.input,
                "activations": m.activations, "activation_bytes": m.bytes(m.activations)}
    return {key: Formula(key, doc, exprs[key], concrete[key]) for key, doc in FORMULAS}


def _assumptions() -> list[tuple[sympy.Basic, Loc | None]]:
    seen: dict[sympy.Basic, Loc | None] = {}
    for condition, context in _TRACER.assumptions:
        seen.setdefault(condition, context.loc)
    return list(seen.items())


def _check_probe(result: SymbolicAnalysis) -> None:
    """Every formula at the probe is the concrete analysis (a mismatch is a bug, not bad input)."""
    for formula in result.formulas.values():
        value = result.evaluate(formula.key, result.probe)
        if value != formula.probe:
            raise AssertionError(f"{result.name}: the {formula.key} formula gives {value} at the "
                                 f"probe, the analysis {formula.probe}")
    shape = result.evaluate_shape(result.probe)
    if shape != _main_shape(result):
        raise AssertionError(f"{result.name}: the output shape formula gives {shape} at the probe")


def _check_elsewhere(result: SymbolicAnalysis, spec: Spec, params: dict[str, Any], input: Any,
                     max_nodes: int) -> None:
    """The formulas at a second point (every symbol doubled, else tripled) against the analysis
    there: a number that lost its formula on the way (a conversion nothing traced) would agree at
    the probe only. A point where the spec is invalid or an assumption fails is not compared."""
    for factor in (2, 3):
        values = {name: value * factor for name, value in result.probe.items()}
        point = {**params, **{k: v for k, v in values.items() if k in spec.params}}
        shape = list(spec_input(spec, point) if input is None else parse_input(input))
        for axis, name in ((1, "H"), (2, "W")):
            shape[axis] = values.get(name, shape[axis]) if len(shape) == 3 else shape[axis]
        if not all(_at(condition, result.symbols, values) for condition, _ in result.assumptions):
            continue
        try:
            graph = instantiate(spec, point, input=tuple(shape), max_nodes=max_nodes,
                                smallest_input_hint=False)
        except SpecError:
            continue
        there = analyze(graph, batch=values.get("batch", result.analysis.batch), dtype=result.dtype)
        m = there.memory
        concrete = {"params": there.params, "macs": there.macs, "buffers": there.buffers,
                    "fvcore_flops": there.fvcore_flops, "activations": m.activations}
        for key, value in concrete.items():
            if result.evaluate(key, values) != value:
                raise AssertionError(f"{result.name}: the {key} formula gives "
                                     f"{result.evaluate(key, values)} at {values}, the analysis "
                                     f"{value}")
        return


# --- machine-readable trees ------------------------------------------------------------------

_TREE_OPS = {sympy.Add: "add", sympy.Mul: "mul", sympy.Pow: "pow", sympy.floor: "floor",
             sympy.ceiling: "ceiling", sympy.Mod: "mod", sympy.Abs: "abs", sympy.Min: "min",
             sympy.Max: "max", sympy.Eq: "eq", sympy.Ne: "ne", sympy.Lt: "lt", sympy.Le: "le",
             sympy.Gt: "gt", sympy.Ge: "ge"}


def expression_tree(expr: sympy.Basic) -> dict[str, Any]:
    """A formula as nested JSON objects (docs/REPORT_JSON.md, "Symbolic report")."""
    if expr.is_Symbol:
        return {"symbol": str(expr)}
    if expr.is_Integer:
        return {"int": int(expr)}
    if expr.is_Rational:
        return {"rational": [int(expr.p), int(expr.q)]}
    name = _TREE_OPS.get(expr.func)
    if name is None:
        raise ValueError(f"no tree form for {expr.func.__name__}")  # pragma: no cover
    return {"op": name, "args": [expression_tree(arg) for arg in expr.args]}


# --- formats -----------------------------------------------------------------------------------

FORMATS = ("text", "md", "json")


def render(result: SymbolicAnalysis, fmt: str = "text") -> str:
    """The formulas in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "json":
        return json.dumps(to_json_data(result), indent=2) + "\n"
    if fmt == "md":
        from .report import template

        definitions, short = named_floors(result)
        shape = tuple(short[f"shape{i}"] for i in range(len(result.output_shape)))
        return template("symbolic.md.j2").render(r=result, title=_title(result),
                                                 probe=_probe_text(result), short=short,
                                                 definitions=definitions,
                                                 shape=_shape_text(shape),
                                                 probe_shape=_probe_shape(result))
    if fmt == "text":
        return _text(result)
    raise ValueError(f"unknown format {fmt!r}")


def _title(result: SymbolicAnalysis) -> str:
    return f"{result.name} ({result.file}): formulas in {', '.join(result.symbols)}"


def _probe_text(result: SymbolicAnalysis) -> str:
    values = ", ".join(f"{name} = {value}" for name, value in result.probe.items())
    return f"structure and checks taken at {values}; each figure below equals the analysis there"


def _shape_text(shape: tuple[sympy.Expr, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _probe_shape(result: SymbolicAnalysis) -> str:
    return " x ".join(map(str, _main_shape(result)))


def named_floors(result: SymbolicAnalysis) -> tuple[list[tuple[sympy.Symbol, sympy.Expr]],
                                                     dict[str, sympy.Expr]]:
    """For people: every ``floor(...)`` of the formulas named ``s1``, ``s2``... (innermost
    first: the sizes a stride makes, the channels a transition halves), and the formulas written
    with those names, multiplied out.

    Returns the definitions (each over earlier names) and each figure's shortened formula (the
    output shape's dimensions under ``shape0``, ``shape1``...). Substituting the definitions
    back gives the full formulas (what json gives)."""
    exprs = {key: f.expr for key, f in result.formulas.items()}
    exprs.update({f"shape{i}": dim for i, dim in enumerate(result.output_shape)})
    exprs.update({f"assumption{i}": c for i, (c, _) in enumerate(result.assumptions)})
    floors: set[sympy.Basic] = set()
    for expr in exprs.values():
        floors |= expr.atoms(sympy.floor)
    ordered = sorted(floors, key=lambda f: (sympy.count_ops(f), sympy.default_sort_key(f)))
    prefix = "s"
    while any(str(s).startswith(prefix) and str(s)[len(prefix):].isdigit()
              for s in result.symbols.values()):
        prefix += "s"
    names = {f: sympy.Symbol(f"{prefix}{i}", integer=True) for i, f in enumerate(ordered, 1)}
    definitions = [(names[f], f.func(*(arg.xreplace(names) for arg in f.args))) for f in ordered]
    return definitions, {key: sympy.expand(expr.xreplace(names)) for key, expr in exprs.items()}


def _text(result: SymbolicAnalysis) -> str:
    lines = [_title(result), f"  ({_probe_text(result)})", ""]
    definitions, short = named_floors(result)
    if definitions:
        lines += ["where (the floor divisions, innermost first):"]
        lines += [f"  {name} = {value}" for name, value in definitions]
        lines += [""]
    for f in result.formulas.values():
        lines += [f"{f.key} = {short[f.key]}", f"    {f.doc}; {f.probe:,} at the probe", ""]
    shape = tuple(short[f"shape{i}"] for i in range(len(result.output_shape)))
    lines += [f"output shape = {_shape_text(shape)}",
              f"    {_probe_shape(result)} at the probe"]
    if result.assumptions:
        lines += ["", "assuming (tests of op rules, as decided at the probe):"]
        lines += [f"  {short[f'assumption{i}']}    ({loc})"
                  for i, (_, loc) in enumerate(result.assumptions)]
    return "\n".join(lines) + "\n"


def to_json_data(result: SymbolicAnalysis) -> dict[str, Any]:
    """The JSON document of ``report --symbolic`` (docs/REPORT_JSON.md, "Symbolic report")."""
    return {
        "name": result.name,
        "file": result.file,
        "symbols": {name: {"domain": "positive integer" if symbol.is_integer else "positive real",
                           "probe": result.probe[name]}
                    for name, symbol in result.symbols.items()},
        "dtype": result.dtype,
        "formulas": {f.key: {"doc": f.doc, "formula": str(f.expr),
                             "tree": expression_tree(f.expr), "probe": f.probe}
                     for f in result.formulas.values()},
        "output_shape": [{"formula": str(d), "tree": expression_tree(d), "probe": p}
                         for d, p in zip(result.output_shape, _main_shape(result), strict=True)],
        "assumptions": [{"condition": str(c), "tree": expression_tree(c),
                         "at": str(loc) if loc else None} for c, loc in result.assumptions],
    }


def _main_shape(result: SymbolicAnalysis) -> tuple[int, ...]:
    return tuple(next(iter(result.analysis.outputs.values())))
