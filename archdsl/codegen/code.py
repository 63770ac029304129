"""The statements and expressions a plan holds, and how they become lines of Python.

Expressions are small objects that produce an ``ast`` node when the plan is rendered, so that a
decision taken late (whether a ReLU may work in place) still reaches the text. Statements are
``Assign``, ``If``, ``ExprStmt``, ``Return`` and ``Comment``; :func:`render_block` lays them out with
:func:`archdsl.blocks.pysrc.layout`.
"""

from __future__ import annotations

import ast
import keyword
from dataclasses import dataclass, field
from typing import Any

from ..blocks.pysrc import LINE_LENGTH, layout, parse_expr
from ..blocks.sym import node_of

__all__ = [
    "Assign",
    "CallExpr",
    "Code",
    "Comment",
    "Ctor",
    "DictExpr",
    "Expr",
    "ExprStmt",
    "Frozen",
    "If",
    "Inplace",
    "Return",
    "SequentialExpr",
    "Stmt",
    "render_block",
    "to_node",
]


class Expr:
    """An expression rendered late."""

    def node(self) -> ast.expr:  # pragma: no cover - abstract
        raise NotImplementedError


def to_node(value: Any) -> ast.expr:
    if isinstance(value, Expr):
        return value.node()
    if isinstance(value, ast.expr):
        return value
    return node_of(value)


@dataclass
class Code(Expr):
    """Fixed source text."""

    text: str

    def node(self) -> ast.expr:
        return parse_expr(self.text)


@dataclass
class CallExpr(Expr):
    """``func(arg, ...)``."""

    func: str
    args: list[Any]

    def node(self) -> ast.expr:
        return ast.Call(parse_expr(self.func), [to_node(a) for a in self.args], [])


@dataclass
class Inplace:
    """Whether an activation may work in place; decided once its uses are known."""

    safe: bool = False


@dataclass
class Ctor(Expr):
    """A constructor call ``func(*args, **kwargs)``; ``inplace`` adds ``inplace=True`` when safe."""

    func: str
    args: list[Any] = field(default_factory=list)
    kwargs: list[tuple[str, Any]] = field(default_factory=list)
    inplace: Inplace | None = None

    def node(self) -> ast.expr:
        keywords = [ast.keyword(k, to_node(v)) for k, v in self.kwargs]
        if self.inplace is not None and self.inplace.safe:
            keywords.append(ast.keyword("inplace", ast.Constant(True)))
        return ast.Call(parse_expr(self.func), [to_node(a) for a in self.args], keywords)


@dataclass
class ParameterExpr(Expr):
    """``nn.Parameter(torch.ones(*shape) * fill)``: a bare learnable tensor (ConvNeXt's layer
    scale, as torchvision writes it)."""

    shape: tuple[Any, ...]
    fill: Any

    def node(self) -> ast.expr:
        ones = ast.Call(parse_expr("torch.ones"), [to_node(d) for d in self.shape], [])
        return ast.Call(parse_expr("nn.Parameter"), [ast.BinOp(ones, ast.Mult(), to_node(self.fill))],
                        [])


@dataclass
class Frozen(Expr):
    """``frozen(module)``: the module's parameters do not train (``freeze: true``)."""

    inner: Any

    def node(self) -> ast.expr:
        return ast.Call(ast.Name("frozen", ast.Load()), [to_node(self.inner)], [])


@dataclass
class SequentialExpr(Expr):
    """``nn.Sequential(a, b)`` or, with names, ``nn.Sequential(OrderedDict([("n", a), ...]))``."""

    items: list[tuple[str, Any]]
    func: str = "nn.Sequential"

    @property
    def positional(self) -> bool:
        return all(name == str(i) for i, (name, _) in enumerate(self.items))

    def node(self) -> ast.expr:
        if self.positional:
            return ast.Call(parse_expr(self.func), [to_node(m) for _, m in self.items], [])
        return ast.Call(parse_expr(self.func), [_ordered_dict(self.items)], [])


def _keyword_name(name: str) -> bool:
    """Can ``name`` be a keyword argument (``OrderedDict(conv0=...)``)?"""
    return name.isidentifier() and not keyword.iskeyword(name)


def _ordered_dict(items: list[tuple[str, Any]]) -> ast.expr:
    """``OrderedDict(conv0=a, norm0=b)``, or with pairs when a name is a number."""
    if all(_keyword_name(name) for name, _ in items):
        return ast.Call(ast.Name("OrderedDict", ast.Load()), [],
                        [ast.keyword(n, to_node(m)) for n, m in items])
    pairs = ast.List([ast.Tuple([ast.Constant(n), to_node(m)], ast.Load()) for n, m in items],
                     ast.Load())
    return ast.Call(ast.Name("OrderedDict", ast.Load()), [pairs], [])


@dataclass
class DenseLoop(Expr):
    """``func(**{f"layer{i + 1}": member for i in range(count)})``: the members of a dense block
    written once, their arguments following the index ``i``."""

    func: str
    key: ast.JoinedStr
    member: Any
    count: int

    def node(self) -> ast.expr:
        loop = ast.comprehension(ast.Name("i", ast.Store()),
                                 ast.Call(ast.Name("range", ast.Load()), [ast.Constant(self.count)], []),
                                 [], 0)
        members = ast.DictComp(self.key, to_node(self.member), [loop])
        return ast.Call(parse_expr(self.func), [], [ast.keyword(None, members)])


@dataclass
class DictExpr(Expr):
    """``func(name=module, ...)``: a ModuleDict subclass taking its members as keywords."""

    func: str
    items: list[tuple[str, Any]]

    def node(self) -> ast.expr:
        if all(_keyword_name(name) for name, _ in self.items):
            return ast.Call(parse_expr(self.func), [],
                            [ast.keyword(n, to_node(m)) for n, m in self.items])
        mapping = ast.Dict([ast.Constant(n) for n, _ in self.items],
                           [to_node(m) for _, m in self.items])
        return ast.Call(parse_expr(self.func), [], [ast.keyword(None, mapping)])


# --- statements ----------------------------------------------------------------------------------

@dataclass
class Assign:
    target: str
    value: Any
    comment: str | None = None


@dataclass
class If:
    test: Any
    body: list[Stmt]
    orelse: list[Stmt] = field(default_factory=list)


@dataclass
class ExprStmt:
    value: Any


@dataclass
class Return:
    value: Any


@dataclass
class Comment:
    text: str


@dataclass
class Raise:
    value: Any


Stmt = Assign | If | ExprStmt | Return | Comment | Raise


def render_block(stmts: list[Stmt], indent: int) -> list[str]:
    """Lines of Python for statements at ``indent`` spaces."""
    lines: list[str] = []
    for stmt in stmts:
        lines.extend(_render(stmt, indent))
    return lines


def _render(stmt: Stmt, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(stmt, Comment):
        return [f"{pad}# {stmt.text}"]
    if isinstance(stmt, If):
        lines = layout(to_node(stmt.test), indent, "if ", ":")
        lines.extend(render_block(stmt.body, indent + 4) or [pad + "    pass"])
        if stmt.orelse:
            lines.append(pad + "else:")
            lines.extend(render_block(stmt.orelse, indent + 4))
        return lines
    if isinstance(stmt, Return):
        return layout(to_node(stmt.value), indent, "return ")
    if isinstance(stmt, Raise):
        return layout(to_node(stmt.value), indent, "raise ")
    if isinstance(stmt, ExprStmt):
        return layout(to_node(stmt.value), indent)
    return _render_assign(stmt, indent)


def _render_assign(stmt: Assign, indent: int) -> list[str]:
    """``target = value  # comment``; the comment moves above when the line would be too long."""
    node = to_node(stmt.value)
    prefix = f"{stmt.target} = "
    if stmt.comment is None:
        return layout(node, indent, prefix)
    suffix = f"  # {stmt.comment}"
    lines = layout(node, indent, prefix, suffix)
    if len(lines) == 1 and len(lines[0]) <= LINE_LENGTH:
        return lines
    return [" " * indent + f"# {stmt.comment}"] + layout(node, indent, prefix)
