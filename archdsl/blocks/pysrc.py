"""Python source text for generated code: an unparser and a line breaker that agree with ruff.

Expressions are built as ``ast`` nodes and written here, not with :func:`ast.unparse`, so that the
text is what ``ruff format`` would write: double-quoted strings, ``a**2`` for simple powers,
``x[:: self.stride]`` for complex slices. :func:`layout` breaks a statement that is too long at its
outermost brackets, one item per line with a trailing ("magic") comma, so ruff keeps it as it is
under any line length from 88 up.
"""

from __future__ import annotations

import ast
import math
from typing import Any

__all__ = ["LINE_LENGTH", "docstring_lines", "layout", "literal", "parse_expr", "py_str", "unparse"]

LINE_LENGTH = 88

# Python's operator precedence, lowest first (as in ast._Precedence).
_TEST, _OR, _AND, _NOT, _CMP, _BOR, _BXOR, _BAND, _SHIFT, _ARITH, _TERM, _FACTOR, _POWER, _ATOM = \
    range(1, 15)

_BINOPS: dict[type, tuple[str, int]] = {
    ast.Add: ("+", _ARITH), ast.Sub: ("-", _ARITH), ast.Mult: ("*", _TERM), ast.Div: ("/", _TERM),
    ast.FloorDiv: ("//", _TERM), ast.Mod: ("%", _TERM), ast.Pow: ("**", _POWER),
    ast.BitOr: ("|", _BOR), ast.BitXor: ("^", _BXOR), ast.BitAnd: ("&", _BAND),
    ast.LShift: ("<<", _SHIFT), ast.RShift: (">>", _SHIFT), ast.MatMult: ("@", _TERM),
}
_UNARY = {ast.UAdd: "+", ast.USub: "-", ast.Invert: "~", ast.Not: "not "}
_CMPOPS = {
    ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
    ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in",
}


def parse_expr(text: str) -> ast.expr:
    return ast.parse(text, mode="eval").body


def py_str(value: str) -> str:
    """A string literal as ruff writes it: double quotes unless that needs more escapes."""
    quote = "'" if value.count('"') > value.count("'") else '"'
    out = []
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == quote:
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(repr(ch)[1:-1])
    return quote + "".join(out) + quote


def literal(value: Any) -> ast.expr:
    """An AST node for a plain Python value (numbers, strings, bools, None, tuples, lists)."""
    if isinstance(value, tuple):
        return ast.Tuple([literal(v) for v in value], ast.Load())
    if isinstance(value, list):
        return ast.List([literal(v) for v in value], ast.Load())
    if isinstance(value, float) and not math.isfinite(value):  # inf and nan have no literal
        text = "nan" if math.isnan(value) else "inf"
        node = ast.Call(ast.Name("float", ast.Load()), [ast.Constant(text)], [])
        return ast.UnaryOp(ast.USub(), node) if value < 0 else node
    if value is None or isinstance(value, (bool, int, float, str)):
        return ast.Constant(value)
    raise TypeError(f"no literal for {value!r}")


def _precedence(node: ast.expr) -> int:
    if isinstance(node, ast.IfExp):
        return _TEST
    if isinstance(node, ast.BoolOp):
        return _OR if isinstance(node.op, ast.Or) else _AND
    if isinstance(node, ast.UnaryOp):
        return _NOT if isinstance(node.op, ast.Not) else _FACTOR
    if isinstance(node, ast.Compare):
        return _CMP
    if isinstance(node, ast.BinOp):
        return _BINOPS[type(node.op)][1]
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
            and not isinstance(node.value, bool) and node.value < 0:
        return _FACTOR
    if isinstance(node, ast.Tuple):
        return _ATOM  # always written with parentheses
    return _ATOM


def _is_simple(node: ast.expr, *, attributes: bool) -> bool:
    """ruff's "simple" operand: a name, a number, (a dotted name for powers), or -/+ of one."""
    if isinstance(node, ast.Name):
        return True
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (int, float)) and not isinstance(node.value, bool)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return _is_simple(node.operand, attributes=attributes)
    if attributes and isinstance(node, ast.Attribute):
        return _is_simple(node.value, attributes=True)
    return False


def unparse(node: ast.expr) -> str:
    """The source of an expression node, on one line."""
    return _Writer().expr(node)


class _Writer:
    """One method per node kind; the set the code generator produces, nothing more."""

    def expr(self, node: ast.expr) -> str:
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise TypeError(f"cannot write {type(node).__name__}")
        return method(node)

    def wrapped(self, node: ast.expr, minimum: int) -> str:
        text = self.expr(node)
        return f"({text})" if _precedence(node) < minimum else text

    def visit_Constant(self, node: ast.Constant) -> str:
        value = node.value
        if isinstance(value, str):
            return py_str(value)
        if isinstance(value, float):
            return repr(value)
        return repr(value)

    def visit_Name(self, node: ast.Name) -> str:
        return node.id

    def visit_Attribute(self, node: ast.Attribute) -> str:
        value = self.wrapped(node.value, _ATOM)
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, int):
            value = f"({value})"
        return f"{value}.{node.attr}"

    def visit_BinOp(self, node: ast.BinOp) -> str:
        symbol, prec = _BINOPS[type(node.op)]
        if symbol == "**":
            left = self.wrapped(node.left, _POWER + 1)
            right = self.wrapped(node.right, _FACTOR)
            simple = (_is_simple(node.left, attributes=True)
                      and _is_simple(node.right, attributes=True))
            return f"{left}**{right}" if simple else f"{left} ** {right}"
        return f"{self.wrapped(node.left, prec)} {symbol} {self.wrapped(node.right, prec + 1)}"

    def visit_UnaryOp(self, node: ast.UnaryOp) -> str:
        prec = _precedence(node)
        return _UNARY[type(node.op)] + self.wrapped(node.operand, prec)

    def visit_BoolOp(self, node: ast.BoolOp) -> str:
        prec = _precedence(node)
        word = " or " if isinstance(node.op, ast.Or) else " and "
        return word.join(self.wrapped(v, prec + 1) for v in node.values)

    def visit_Compare(self, node: ast.Compare) -> str:
        parts = [self.wrapped(node.left, _CMP + 1)]
        for op, right in zip(node.ops, node.comparators):
            parts.append(f"{_CMPOPS[type(op)]} {self.wrapped(right, _CMP + 1)}")
        return " ".join(parts)

    def visit_IfExp(self, node: ast.IfExp) -> str:
        return (f"{self.wrapped(node.body, _TEST + 1)} if {self.wrapped(node.test, _TEST + 1)} "
                f"else {self.wrapped(node.orelse, _TEST)}")

    def visit_Call(self, node: ast.Call) -> str:
        return f"{self.wrapped(node.func, _ATOM)}({', '.join(self.items(node))})"

    def items(self, node: ast.expr) -> list[str]:
        """The comma-separated items of a call or a display, each fully written."""
        if isinstance(node, ast.Call):
            return [self.expr(a) for a in node.args] + [
                f"{k.arg}={self.expr(k.value)}" if k.arg else f"**{self.expr(k.value)}"
                for k in node.keywords]
        if isinstance(node, ast.Dict):
            return [f"{self.expr(k)}: {self.expr(v)}" for k, v in zip(node.keys, node.values)]
        return [self.expr(e) for e in node.elts]

    def visit_JoinedStr(self, node: ast.JoinedStr) -> str:
        """An f-string of literal text and plain ``{expr}`` fields (no conversions, no formats)."""
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                text = py_str(value.value)[1:-1]
                parts.append(text.replace("{", "{{").replace("}", "}}"))
            elif isinstance(value, ast.FormattedValue) and value.conversion == -1 \
                    and value.format_spec is None:
                parts.append("{" + self.expr(value.value) + "}")
            else:
                raise TypeError("cannot write this f-string field")
        return 'f"' + "".join(parts) + '"'

    def visit_DictComp(self, node: ast.DictComp) -> str:
        return "{" + f"{self.expr(node.key)}: {self.expr(node.value)} {self.generators(node)}" + "}"

    def generators(self, node: ast.DictComp) -> str:
        """``for i in range(n)``: one generator, no conditions."""
        (gen,) = node.generators
        if gen.ifs or gen.is_async:
            raise TypeError("cannot write this comprehension")
        return f"for {self.expr(gen.target)} in {self.expr(gen.iter)}"

    def visit_Starred(self, node: ast.Starred) -> str:
        return "*" + self.wrapped(node.value, _ATOM)

    def visit_keyword(self, node: ast.keyword) -> str:  # pragma: no cover - via items()
        return f"{node.arg}={self.expr(node.value)}"

    def visit_List(self, node: ast.List) -> str:
        return "[" + ", ".join(self.items(node)) + "]"

    def visit_Tuple(self, node: ast.Tuple) -> str:
        items = self.items(node)
        return "(" + items[0] + ",)" if len(items) == 1 else "(" + ", ".join(items) + ")"

    def visit_Dict(self, node: ast.Dict) -> str:
        return "{" + ", ".join(self.items(node)) + "}"

    def visit_Subscript(self, node: ast.Subscript) -> str:
        index = node.slice
        if isinstance(index, ast.Tuple) and index.elts:
            inner = ", ".join(self.index(e) for e in index.elts)
        else:
            inner = self.index(index)
        return f"{self.wrapped(node.value, _ATOM)}[{inner}]"

    def index(self, node: ast.expr) -> str:
        if not isinstance(node, ast.Slice):
            return self.expr(node)
        parts = [node.lower, node.upper, node.step]
        texts = ["" if p is None else self.expr(p) for p in parts]
        if all(p is None or _is_simple(p, attributes=False) for p in parts):
            out = f"{texts[0]}:{texts[1]}"
            return out + (f":{texts[2]}" if node.step is not None else "")
        out = texts[0] + (" " if texts[0] else "") + ":" + (" " + texts[1] if texts[1] else "")
        if node.step is not None:
            out += (" " if texts[1] else "") + ":" + " " + texts[2]
        return out


# --- line breaking -------------------------------------------------------------------------------

_OPENERS = {ast.Call: None, ast.List: ("[", "]"), ast.Tuple: ("(", ")"), ast.Dict: ("{", "}")}


def _explodable(node: ast.expr) -> bool:
    if isinstance(node, ast.DictComp):
        return True
    if isinstance(node, ast.Call):
        return bool(node.args or node.keywords)
    if isinstance(node, (ast.List, ast.Tuple)):
        return bool(node.elts)
    return isinstance(node, ast.Dict) and bool(node.keys)


def _operands(node: ast.expr, writer: _Writer) -> list[str] | None:
    """A too-long operation as ruff splits it: one operand per line, the operator in front."""
    if isinstance(node, ast.BinOp) and _BINOPS[type(node.op)][0] != "**":
        prec = _BINOPS[type(node.op)][1]
        parts: list[str] = []
        while isinstance(node, ast.BinOp) and _BINOPS[type(node.op)][1] == prec:
            parts.append(f"{_BINOPS[type(node.op)][0]} {writer.wrapped(node.right, prec + 1)}")
            node = node.left
        parts.append(writer.wrapped(node, prec))
        return parts[::-1]
    if isinstance(node, ast.BoolOp):
        word = "or" if isinstance(node.op, ast.Or) else "and"
        prec = _precedence(node) + 1
        values = [writer.wrapped(v, prec) for v in node.values]
        return [values[0]] + [f"{word} {v}" for v in values[1:]]
    if isinstance(node, ast.IfExp):
        return [writer.wrapped(node.body, _TEST + 1), f"if {writer.wrapped(node.test, _TEST + 1)}",
                f"else {writer.wrapped(node.orelse, _TEST)}"]
    return None


def layout(node: ast.expr, indent: int, prefix: str = "", suffix: str = "",
           width: int = LINE_LENGTH, in_brackets: bool = False) -> list[str]:
    """``prefix + expr + suffix`` as lines at ``indent``: one line if it fits, else the outermost
    brackets exploded with one item per line and a trailing comma (recursively); a too-long
    operation is split before its operators (in parentheses, unless it is an item already in
    brackets), as ruff does."""
    pad = " " * indent
    writer = _Writer()
    flat = pad + prefix + writer.expr(node) + suffix
    if len(flat) <= width:
        return [flat]
    if not _explodable(node):
        operands = _operands(node, writer)
        if operands is None:
            return [flat]
        if in_brackets and not prefix:
            lines = [pad + part for part in operands]
            lines[-1] += suffix
            return lines
        inner = " " * (indent + 4)
        return [pad + prefix + "("] + [inner + part for part in operands] + [pad + ")" + suffix]
    if isinstance(node, ast.DictComp):  # as ruff: the item, then the `for` clause
        inner = " " * (indent + 4)
        key = writer.expr(node.key) + ": "
        value = node.value
        if isinstance(value, ast.Call) and (value.args or value.keywords):
            # the item's call exploded even if it would fit: its trailing comma keeps ruff from
            # joining the comprehension at 110 columns what it splits at 88
            member = [inner + key + writer.wrapped(value.func, _ATOM) + "("]
            for item_prefix, item in [("", a) for a in value.args] + [
                    (f"{k.arg}=" if k.arg else "**", k.value) for k in value.keywords]:
                member += layout(item, indent + 8, item_prefix, ",", width, in_brackets=True)
            member.append(inner + ")")
        else:
            member = layout(value, indent + 4, key, "", width, in_brackets=True)
        return [pad + prefix + "{", *member, inner + writer.generators(node), pad + "}" + suffix]
    if isinstance(node, ast.Call):
        opener, closer = writer.wrapped(node.func, _ATOM) + "(", ")"
        items: list[tuple[str, ast.expr]] = [("", a) for a in node.args] + [
            (f"{k.arg}=" if k.arg else "**", k.value) for k in node.keywords]
    elif isinstance(node, ast.Dict):
        opener, closer = "{", "}"
        items = [(writer.expr(k) + ": ", v) for k, v in zip(node.keys, node.values)]
    else:
        opener, closer = _OPENERS[type(node)]
        items = [("", e) for e in node.elts]
    lines = [pad + prefix + opener]
    for item_prefix, item in items:
        lines.extend(layout(item, indent + 4, item_prefix, ",", width, in_brackets=True))
    lines.append(pad + closer + suffix)
    return lines


def docstring_lines(text: str) -> list[str]:
    """Docstring text made safe: printable characters only, backslashes and quotes escaped."""
    lines = []
    for raw in text.splitlines():
        line = "".join(ch if ch.isprintable() else " " for ch in raw.replace("\t", "    "))
        line = line.replace("\\", "\\\\").replace('"""', '\\"\\"\\"').rstrip()
        lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    return lines
