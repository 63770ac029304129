"""Tests for archdsl.expr: values, refusals (message and column), codegen, and properties."""

from __future__ import annotations

import ast
import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archdsl.errors import Loc, SpecError
from archdsl.expr import (
    FUNCTIONS,
    Expr,
    InputShape,
    compile_expr,
    evaluate,
    is_expression,
    to_python,
)

LOC = Loc("net.yaml", 7, 12)
ENV = {"out": 64, "i": 0, "x": 3, "width": 0.75, "pad": "same", "zero": 0,
       "in": InputShape.of((32, 56, 28))}


def ev(text: str, **env) -> object:
    return evaluate(compile_expr(text, LOC), {**ENV, **env})


def refusal(text: str, match: str, **env) -> Loc:
    """Compile and evaluate ``text``; it must fail with ``match``. Returns the diagnostic's loc."""
    with pytest.raises(SpecError, match=match) as info:
        ev(text, **env)
    loc = info.value.first.loc
    assert loc is not None and (loc.file, loc.line) == (LOC.file, LOC.line)
    return loc


def column(text: str, match: str, **env) -> int:
    """The 0-based column, within ``text``, that the refusal points at."""
    return refusal(text, match, **env).col - LOC.col


# --- values ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, value", [
    ("1 + 2 * 3", 7),
    ("(1 + 2) * 3", 9),
    ("10 - 2 - 3", 5),
    ("7 / 2", 3.5),
    ("8 / 2", 4.0),
    ("7 // 2", 3),
    ("-7 // 2", -4),
    ("7 % 3", 1),
    ("-7 % 3", 2),
    ("2 ** 10", 1024),
    ("2 ** 3 ** 2", 512),
    ("-2 ** 2", -4),
    ("2 ** -1", 0.5),
    ("+x - -x", 6),
    ("1.5 * 2", 3.0),
    ("'ab' + 'cd'", "abcd"),
    ("[1, 7]", [1, 7]),
    ("(1, 7)", (1, 7)),
    ("[x, x * 2]", [3, 6]),
])
def test_arithmetic_and_precedence(text, value):
    result = ev(text)
    assert result == value and type(result) is type(value)


@pytest.mark.parametrize("text, value", [
    ("out // 4", 16),
    ("int(out * width)", 48),
    ("1 < 2 < 3", True),
    ("1 < 3 < 2", False),
    ("x == 3", True),
    ("x != 3", False),
    ("x >= 3 and x <= 3", True),
    ("'a' < 'b'", True),
    ("pad == 'same'", True),
    ("x == 'same'", False),  # == and != compare anything, like Python
    ("0 or 5", 5),
    ("2 and 0", 0),
    ("not x", False),
    ("true and not false", True),
    ("null == None", True),
    ("True or False", True),
    ("1 if true else 2", 1),
])
def test_names_comparisons_and_logic(text, value):
    assert ev(text) == value


@pytest.mark.parametrize("i, stride", [(0, 2), (1, 1), (5, 1)])
def test_ternary(i, stride):
    assert ev("2 if i == 0 else 1", i=i) == stride


def test_ternary_and_boolean_operators_short_circuit():
    assert ev("out / zero if zero != 0 else 0") == 0
    assert ev("zero != 0 and out / zero > 1") is False
    assert ev("zero == 0 or out / zero > 1") is True


@pytest.mark.parametrize("text, value", [
    ("min(3, 1, 2)", 1),
    ("max(3, 1, 2)", 3),
    ("max([1, 7])", 7),
    ("min(in.shape)", 28),
    ("abs(-3)", 3),
    ("int(7.9)", 7),
    ("int(-7.9)", -7),
    ("float(3)", 3.0),
    ("round(2.5)", 2),
    ("round(3.5)", 4),
    ("round(2.675, 2)", round(2.675, 2)),
    ("ceil(7 / 2)", 4),
    ("floor(-0.5)", -1),
    ("ceil(out / 3)", 22),
    ("make_divisible(32 * width)", 24),
    ("make_divisible(out * width, 8)", 48),
    ("make_divisible(3, 8, 16)", 16),
    ("make_divisible(3, 8, min_value=16)", 16),
])
def test_functions(text, value):
    result = ev(text)
    assert result == value and type(result) is type(value)


def test_ceil_and_floor_return_ints():
    assert type(ev("ceil(2.1)")) is int and type(ev("floor(2.9)")) is int


def test_make_divisible_matches_torchvision():
    from torchvision.models._utils import _make_divisible

    make_divisible = FUNCTIONS["make_divisible"]
    widths = [0.25, 0.35, 0.5, 0.75, 1.0, 1.3, 1.4, 2.0]
    channels = [1, 3, 8, 16, 24, 32, 40, 48, 64, 80, 96, 112, 160, 320, 960, 1280]
    for divisor in (1, 2, 4, 8, 16):
        for c in channels:
            for w in widths:
                v = c * w
                assert make_divisible(v, divisor) == _make_divisible(v, divisor)
                assert ev(f"make_divisible({v!r}, {divisor})") == _make_divisible(v, divisor)
                floor = 3 * divisor
                assert make_divisible(v, divisor, floor) == _make_divisible(v, divisor, floor)
    assert make_divisible(37.5) == _make_divisible(37.5, 8)


# --- the block input ---------------------------------------------------------------------------


def test_input_shape():
    assert ev("in.c") == 32 and ev("in.h") == 56 and ev("in.w") == 28
    assert ev("in.shape") == [32, 56, 28]
    assert ev("in.shape[0] * in.shape[-1]") == 32 * 28
    assert ev("in.c // 4 if in.h > 7 else in.c") == 8
    assert ev("in . c") == 32
    assert ev("  in.c") == 32


def test_input_shape_of():
    image = InputShape.of((3, 224, 224))
    flat = InputShape.of([512])
    assert (image.c, image.h, image.w, image.shape) == (3, 224, 224, [3, 224, 224])
    assert (flat.c, flat.h, flat.w, flat.shape) == (512, None, None, [512])
    with pytest.raises(ValueError):
        InputShape.of((3, 4))
    with pytest.raises(dataclasses.FrozenInstanceError):
        image.c = 4  # type: ignore[misc]


def test_flat_input():
    flat = InputShape.of((512,))
    assert ev("in.c // 2", **{"in": flat}) == 256
    assert ev("in.shape", **{"in": flat}) == [512]
    assert column("1 + in.h", r"`in.h` is not defined: the input is flat", **{"in": flat}) == 4
    assert column("in.shape[1]", r"index out of range", **{"in": flat}) == 9


def test_in_is_only_rewritten_before_a_dot():
    assert ev("'in.c' + 'x'") == "in.cx"  # inside a string it is text
    assert ev("'x in.c'") == "x in.c"
    assert ev("in_c + 1", in_c=4) == 5
    assert column("IN.c", r"attribute access is allowed only on `in`", IN=1) == 0


def test_in_missing_from_env():
    with pytest.raises(SpecError, match=r"unknown name `in` in expression") as info:
        evaluate(compile_expr("in.c", LOC), {"out": 1})
    assert "enclosing block" in info.value.first.hint


# --- Expr and helpers --------------------------------------------------------------------------


def test_expr_fields():
    expr = compile_expr("make_divisible(in.c * width, 8) + min(out, k)", LOC)
    assert isinstance(expr, Expr)
    assert expr.source == "make_divisible(in.c * width, 8) + min(out, k)"
    assert expr.loc == LOC
    assert isinstance(expr.tree, ast.Expression)
    assert expr.names == frozenset({"in", "width", "out", "k"})
    assert compile_expr("true or null").names == frozenset()
    with pytest.raises(dataclasses.FrozenInstanceError):
        expr.source = "1"  # type: ignore[misc]
    assert compile_expr("1 + 1").loc is None


def test_is_expression():
    assert is_expression("in.c // 2") and is_expression("out")
    for value in ("", "   ", 3, 2.5, True, None, [1, 7]):
        assert not is_expression(value)


def test_functions_table():
    assert list(FUNCTIONS) == ["min", "max", "abs", "int", "float", "round", "ceil", "floor",
                               "make_divisible"]


# --- refusals at compile time ------------------------------------------------------------------


CALLS = "calls are limited to min, max, abs, int, float, round, ceil, floor, make_divisible"


@pytest.mark.parametrize("text, match, col", [
    ("x.__class__", r"`__class__` is not allowed in an expression", 0),
    ("1 + __class__", r"`__class__` is not allowed in an expression", 4),
    ("(1).__class__.__bases__", r"`__bases__` is not allowed in an expression", 0),
    ("__import__('os').system('ls')", r"`__import__` is not allowed", 0),
    ("in.__dict__", r"`__dict__` is not allowed", 0),
    ("print(1)", CALLS, 0),
    ("1 + open('x')", CALLS, 4),
    ("x.bit_length()", CALLS, 0),
    ("(lambda: 1)()", CALLS, 1),
    ("x.real", r"attribute access is allowed only on `in`", 0),
    ("in.c.real", r"attribute access is allowed only on `in`", 0),
    ("in.chanels", r"`in` has no attribute `chanels`", 0),
    ("2 * x[0]", r"indexing is allowed only on `in.shape`", 4),
    ("in.shape[1:]", r"a slice is not allowed in an expression", 9),
    ("lambda: 1", r"a lambda is not allowed in an expression", 0),
    ("[y for y in [1]]", r"a comprehension is not allowed", 0),
    ("1 + f'{x}'", r"an f-string is not allowed", 4),
    ("(y := 1)", r"`:=` is not allowed", 1),
    ("max(*[1, 2])", r"`\*` unpacking is not allowed", 4),
    ("max(**{})", r"`max` does not take `\*\*`", 4),
    ("{1: 2}", r"a dict is not allowed", 0),
    ("{1}", r"a set is not allowed", 0),
    ("x in [1, 2]", r"`x in y` is not supported", 0),
    ("x not in [1, 2]", r"`x in y` is not supported", 0),
    ("x is None", r"`is` is not supported", 0),
    ("1 << 62", r"operator `<<` is not allowed", 0),
    ("1 + (2 & 3)", r"operator `&` is not allowed", 5),
    ("~x", r"operator `~` is not allowed", 0),
    ("1j", r"complex literals are not allowed", 0),
    ("b'x'", r"bytes literals are not allowed", 0),
    ("...", r"ellipsis literals are not allowed", 0),
    ("abs(1, 2)", r"`abs` takes 1 argument", 0),
    ("max()", r"`max` takes at least 1 argument", 0),
    ("make_divisible(1, 2, 3, 4)", r"`make_divisible` takes 1 to 3 arguments", 0),
    ("make_divisible(1, 2, 3, min_value=4)", r"`make_divisible` takes 1 to 3 arguments", 0),
    ("make_divisible(10, div=8)", r"`make_divisible` does not take `div=`", 19),
    ("round(x, ndigits=1)", r"`round` does not take `ndigits=`", 9),
    ("1 + 9223372036854775808", r"value overflows", 4),
    ("1e999", r"value overflows", 0),
    ("1 + * 2", r"invalid expression syntax", 4),
    ("x = 1", r"invalid expression syntax", 2),
    ("import os", r"invalid expression syntax", 0),
    ("in + 1", r"invalid expression syntax", 0),
    ("", r"empty expression", 0),
])
def test_compile_time_refusals(text, match, col):
    with pytest.raises(SpecError, match=match) as info:
        compile_expr(text, LOC)
    diag = info.value.first
    assert diag.loc is not None and diag.loc.col == LOC.col + col
    assert diag.expected or diag.found or diag.hint


def test_refusal_spans_the_node_and_says_what_is_allowed():
    with pytest.raises(SpecError) as info:
        compile_expr("1 + x.__class__", LOC)
    diag = info.value.first
    assert (diag.loc.col, diag.loc.length) == (LOC.col + 4, len("x.__class__"))
    assert diag.found == "`x.__class__`"
    assert "make_divisible" in diag.expected and "in.c" in diag.expected


def test_calls_error_suggests_a_function():
    with pytest.raises(SpecError, match=CALLS) as info:
        compile_expr("mx(1, 2)", LOC)
    assert info.value.first.hint == "did you mean `max`?"


def test_too_long():
    with pytest.raises(SpecError, match=r"expression is too long") as info:
        compile_expr("1 + " * 250 + "1", LOC)
    assert info.value.first.loc.col == LOC.col
    assert ev("'" + "a" * 998 + "'") == "a" * 998  # 1000 characters is fine


def test_nesting_limit():
    deep = "-" * 60 + "1"
    with pytest.raises(SpecError, match=r"expression is nested too deeply") as info:
        compile_expr(deep, LOC)
    assert info.value.first.loc.col == LOC.col + 50  # the 51st level
    assert ev("-" * 49 + "1") == -1
    for text in ("-" * 999 + "1", "(" * 300 + "1" + ")" * 300, "[" * 400 + "]" * 400,
                 "not " * 240 + "1"):
        with pytest.raises(SpecError):
            compile_expr(text, LOC)


def test_null_byte_is_a_spec_error():
    with pytest.raises(SpecError, match=r"invalid expression syntax"):
        compile_expr("1\x00", LOC)


def test_compile_without_loc():
    with pytest.raises(SpecError, match=r"`__class__` is not allowed") as info:
        compile_expr("x.__class__")
    assert info.value.first.loc is None


# --- refusals at evaluation time ---------------------------------------------------------------


def test_unknown_name():
    with pytest.raises(SpecError, match=r"unknown name `outt` in expression") as info:
        ev("in.c + outt")
    diag = info.value.first
    assert diag.hint == "did you mean `out`?"
    assert (diag.loc.col, diag.loc.length) == (LOC.col + 7, 4)
    assert column("mni(1)", CALLS) == 0
    assert column("1 + min", r"`min` is a function") == 4


@pytest.mark.parametrize("text, col", [
    ("out / 0", 6),
    ("out // zero", 7),
    ("out % (x - 3)", 7),
    ("0 ** -1", 5),
    ("1.5 / 0.0", 6),
])
def test_division_by_zero(text, col):
    assert column(text, r"division by zero in expression") == col


def test_division_by_zero_in_make_divisible():
    assert column("make_divisible(10, 0)", r"division by zero in expression") == 0


@pytest.mark.parametrize("text, match, col", [
    ("'a' + 1", r"wrong types for `\+` in expression", 0),
    ("1 + (pad < 3)", r"wrong types for `<` in expression", 5),
    ("pad * 3", r"wrong types for `\*` in expression", 0),  # no string repetition
    ("[1] * 10", r"wrong types for `\*` in expression", 0),  # no list repetition
    ("[1] + [2]", r"wrong types for `\+` in expression", 0),
    ("-pad", r"wrong types for `-` in expression", 0),
    ("abs(pad)", r"wrong type of argument to `abs`", 4),
    ("max(1, [2])", r"wrong type of argument to `max`", 7),
    ("max(3)", r"`max` of one argument needs a list", 0),
    ("min([])", r"`min` of an empty list", 0),
    ("in.shape[1.0]", r"an index of `in.shape` must be an int", 9),
    ("make_divisible(10, 8, min_value='a')", r"wrong type of argument to `make_divisible`", 0),
])
def test_type_errors(text, match, col):
    assert column(text, match) == col


def test_type_error_says_what_was_found():
    with pytest.raises(SpecError) as info:
        ev("'a' + 1")
    assert info.value.first.found == "`'a'` is str, `1` is int"
    assert info.value.first.expected == "two numbers or two strings"


@pytest.mark.parametrize("text, match, col", [
    ("2 ** 65", r"exponent too large", 5),
    ("2 ** -65", r"exponent too large", 5),
    ("x ** (out * 2)", r"exponent too large", 6),
    ("(2 ** 40) ** 2", r"base of `\*\*` too large", 1),
    ("(-8) ** 0.5", r"result is not a real number", 0),
    ("2 ** 62 * 2", r"value overflows", 0),
    ("10 ** 19", r"value overflows", 0),
    ("1 + 2 ** 63", r"value overflows", 4),
    ("1e300 * 1e300", r"value overflows", 0),
    ("2.0 ** 64 ** 1.0 * 1e300", r"value overflows", 0),
    ("int(1e300)", r"value overflows", 0),
    ("round(1e300)", r"value overflows", 0),
    ("ceil(1e30)", r"value overflows", 0),
    ("floor(-1e300)", r"value overflows", 0),
    ("round(5, -100)", r"`round` takes a number of digits from -64 to 64", 9),
    ("big + 1", r"value overflows", 0),
])
def test_limits(text, match, col):
    assert column(text, match, big=2**70) == col


def test_flat_input_h_is_refused_with_hint():
    with pytest.raises(SpecError) as info:
        ev("in.w", **{"in": InputShape.of((10,))})
    assert "in.c" in info.value.first.hint


def test_columns_count_characters_and_skip_leading_blanks():
    assert column("'é' + outt", r"unknown name `outt`") == 6
    assert column("  outt", r"unknown name `outt`") == 2
    assert column("('ü'\n + outt)", r"unknown name `outt`") == 8


# --- to_python ---------------------------------------------------------------------------------

RENAME = {"out": "out_channels", "i": "index", "x": "x_", "width": "self.width", "pad": "padding",
          "zero": "zero", "in.c": "c_in", "in.h": "h_in", "in.w": "w_in", "in.shape": "shape_in"}


class _Self:
    width = ENV["width"]


NAMESPACE = {
    "__builtins__": {}, "math": math, "make_divisible": FUNCTIONS["make_divisible"],
    **{name: FUNCTIONS[name] for name in ("min", "max", "abs", "int", "float", "round")},
    "out_channels": ENV["out"], "index": ENV["i"], "x_": ENV["x"], "self": _Self(),
    "padding": ENV["pad"], "zero": ENV["zero"],
    "c_in": 32, "h_in": 56, "w_in": 28, "shape_in": [32, 56, 28],
}


@pytest.mark.parametrize("text", [
    "1 + 2 * 3",
    "-2 ** 2",
    "(1 + 2) * (x - 4) // 3 % 5",
    "2 if i == 0 else 1",
    "out // 4 if in.h > 7 else in.c",
    "make_divisible(in.c * width, 8)",
    "make_divisible(3, 8, min_value=16)",
    "ceil(out / 3) + floor(x / 2)",
    "min(in.shape) + max([in.h, in.w]) + in.shape[-1]",
    "round(width * 10) + int(2.5) + abs(-x) + float(x)",
    "true and not false or null",
    "1 < x <= 3 < out",
    "pad == 'same'",
    "pad + 'it\\'s \"quoted\"\\n'",
    "[in.c, in.c * 2]",
    "x ** -1 - zero",
])
def test_to_python_round_trip(text):
    expr = compile_expr(text, LOC)
    source = to_python(expr, RENAME)
    tree = ast.parse(source, mode="eval")
    expected = evaluate(expr, ENV)
    result = eval(compile(tree, "<generated>", "eval"), dict(NAMESPACE))
    assert result == expected and type(result) is type(expected)
    allowed = {*RENAME.values(), "self", "math", "make_divisible", "min", "max", "abs", "int",
               "float", "round"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            assert node.id in allowed, source
        if isinstance(node, ast.Attribute):
            assert ast.unparse(node) in {"math.ceil", "math.floor", "self.width"}, source
        if isinstance(node, ast.Subscript):
            assert ast.unparse(node.value) == "shape_in", source
        assert not isinstance(node, (ast.Lambda, ast.NamedExpr, ast.JoinedStr)), source


def test_to_python_text():
    expr = compile_expr("ceil(in.c / 2) + make_divisible(out * 0.5)")
    assert to_python(expr, {"in.c": "c", "out": "out"}) == (
        "math.ceil(c / 2) + make_divisible(out * 0.5)")
    assert to_python(compile_expr("out * 2"), {"out": "a + b"}) == "(a + b) * 2"
    assert to_python(compile_expr("true"), {}) == "True"


def test_to_python_needs_every_name():
    with pytest.raises(KeyError, match="out"):
        to_python(compile_expr("out + 1"), {})


# --- properties --------------------------------------------------------------------------------

_LEAVES = st.integers(0, 30).map(str)
_OPERATORS = st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "<", "==", "!=", ">=",
                              "and", "or"])


def _extend(children):
    return st.one_of(
        st.tuples(children, _OPERATORS, children).map(" ".join),
        children.map(lambda text: f"({text})"),
        children.map(lambda text: f"-{text}"),
        st.tuples(children, children, children).map(lambda t: f"{t[0]} if {t[1]} else {t[2]}"),
    )


_ARITHMETIC = st.recursive(_LEAVES, _extend, max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(_ARITHMETIC)
def test_agrees_with_python(text):
    try:
        result = evaluate(compile_expr(text, LOC), {})
    except SpecError:
        return  # refusing (division by zero, overflow, limits) is always allowed
    # Only reached when every intermediate value was small, so Python's own run is cheap too.
    expected = eval(text, {"__builtins__": {}})
    assert result == expected and type(result) is type(expected), text


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="0123456789+-*/%().,[]{} abcinx_'\"=<>!:~@&|^\\#é\n", max_size=40))
def test_arbitrary_text_only_raises_spec_error(text):
    try:
        evaluate(compile_expr(text, LOC), ENV)
    except SpecError as error:
        loc = error.first.loc
        assert loc is not None and loc.col >= LOC.col and loc.length >= 1
