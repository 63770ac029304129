"""Output shapes when sizes are symbolic (inside a generic block class).

When every attribute and input size is known, the op's own shape rule answers. Otherwise the rules
here say the same thing with :class:`~archdsl.codegen.sym.Sym` arithmetic: a conv's channels are
its ``out``, a concat's the sum of its inputs', and so on. A size these rules cannot express is
:data:`~archdsl.codegen.sym.UNKNOWN`; it is an error only if generated code needs it. The probe
values are checked against the op's own rule, so a rule here that disagrees with the op is found
at once.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from ..ops import Attrs, Op, OpError
from .sym import MISSING, UNKNOWN, Sym, all_plain, binop, compare, probe_of, select

__all__ = ["out_shape"]

Shape = tuple[Any, ...]


def out_shape(op: Op, attrs: dict[str, Any], ins: list[Shape]) -> Shape:
    """The output shape of ``op`` with these (possibly symbolic) attributes and input shapes."""
    if all_plain(attrs) and all_plain(ins):
        return tuple(op.shape(Attrs(attrs), list(ins)))
    rule = _RULES.get(op.name)
    if rule is None:
        return _same(attrs, ins) if op.category in _ELEMENTWISE else _unknown(ins)
    shape = tuple(rule(attrs, ins))
    _check_probe(op, attrs, ins, shape)
    return shape


_ELEMENTWISE = frozenset({"act", "norm", "regularize"})


def _check_probe(op: Op, attrs: dict[str, Any], ins: list[Shape], shape: Shape) -> None:
    """The symbolic rule must agree with the op's rule on the probed instance."""
    probe_attrs = {k: probe_of(v) for k, v in attrs.items()}
    probe_ins = [tuple(probe_of(d) for d in s) for s in ins]
    if any(v is MISSING for v in probe_attrs.values()) or any(
            d is MISSING for s in probe_ins for d in s):
        return
    try:
        expected = tuple(op.shape(Attrs(probe_attrs), probe_ins))
    except OpError:  # a layer the probed instance skips (a false `when:`) need not fit it
        return
    found = tuple(probe_of(d) for d in shape)
    if any(f is not MISSING and f != e for f, e in zip(found, expected)):
        raise AssertionError(f"codegen shape rule for {op.name} gives {found}, the op {expected}")


def _same(a: dict[str, Any], ins: list[Shape]) -> Shape:
    return ins[0]


def _unknown(ins: list[Shape]) -> Shape:
    return tuple(UNKNOWN for _ in ins[0])


def _pair(value: Any) -> tuple[Any, Any]:
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return value[0], value[1]
    if isinstance(value, Sym) and isinstance(value.probe, (tuple, list)):
        return UNKNOWN, UNKNOWN  # a pair parameter: int or [h, w], not known here
    return value, value


def _window(size: Any, kernel: Any, stride: Any, pads: tuple[Any, Any], dilation: Any = 1,
            ceil: bool = False) -> Any:
    """PyTorch's sliding-window output length (see archdsl.ops.common.window_out)."""
    lo, hi = pads
    span = binop(binop(dilation, ast.Mult(), binop(kernel, ast.Sub(), 1)), ast.Add(), 1)
    total = binop(binop(binop(size, ast.Add(), lo), ast.Add(), hi), ast.Sub(), span)
    if ceil:
        total = binop(total, ast.Add(), binop(stride, ast.Sub(), 1))
    out = binop(binop(total, ast.FloorDiv(), stride), ast.Add(), 1)
    if ceil:
        starts_outside = compare(binop(binop(out, ast.Sub(), 1), ast.Mult(), stride), ast.GtE(),
                                 binop(size, ast.Add(), lo))
        out = select(starts_outside, binop(out, ast.Sub(), 1), out)
    return out


def _spatial(ins: list[Shape], kernel: Any, stride: Any, pad: Any, dilation: Any = 1,
             ceil: bool = False, same: bool = False) -> tuple[Any, Any]:
    _, h, w = ins[0]
    if same:
        return h, w
    kh, kw = _pair(kernel)
    sh, sw = _pair(stride)
    dh, dw = _pair(dilation)
    ph, pw = _pair(0 if pad == "valid" else pad)
    return (_window(h, kh, sh, (ph, ph), dh, ceil), _window(w, kw, sw, (pw, pw), dw, ceil))


def _conv(a: dict[str, Any], ins: list[Shape]) -> Shape:
    h, w = _spatial(ins, a["k"], a["stride"], a["pad"], a["dilation"], same=a["pad"] == "same")
    return (a["out"], h, w)


def _pool(a: dict[str, Any], ins: list[Shape]) -> Shape:
    h, w = _spatial(ins, a["k"], a["stride"], a["pad"], a.get("dilation", 1), a["ceil"])
    return (ins[0][0], h, w)


def _adaptive(a: dict[str, Any], ins: list[Shape]) -> Shape:
    sh, sw = _pair(a["size"])
    return (ins[0][0], sh, sw)


def _flatten(a: dict[str, Any], ins: list[Shape]) -> Shape:
    shape = ins[0]
    if len(shape) == 1:
        return shape
    return (binop(binop(shape[0], ast.Mult(), shape[1]), ast.Mult(), shape[2]),)


def _concat(a: dict[str, Any], ins: list[Shape]) -> Shape:
    channels: Any = 0
    for shape in ins:
        channels = binop(channels, ast.Add(), shape[0])
    return (channels, *ins[0][1:])


def _mul(a: dict[str, Any], ins: list[Shape]) -> Shape:
    for shape in ins:
        if len(shape) != 3 or shape[1] != 1 or shape[2] != 1:
            return shape
    return ins[0]


def _mean(a: dict[str, Any], ins: list[Shape]) -> Shape:
    keep = a["keepdim"]
    if isinstance(keep, Sym):
        return (ins[0][0], UNKNOWN, UNKNOWN)
    return (ins[0][0], 1, 1) if keep else (ins[0][0],)


def _split(a: dict[str, Any], ins: list[Shape]) -> Shape:
    c = ins[0][0]
    return (binop(c, ast.FloorDiv(), a["parts"]), *ins[0][1:])


def _ceil_div(size: Any, step: Any) -> Any:
    return binop(binop(size, ast.Add(), binop(step, ast.Sub(), 1)), ast.FloorDiv(), step)


def _pad_channels(a: dict[str, Any], ins: list[Shape]) -> Shape:
    _, h, w = ins[0]
    return (a["out"], _ceil_div(h, a["stride"]), _ceil_div(w, a["stride"]))


_RULES: dict[str, Callable[[dict[str, Any], list[Shape]], Shape]] = {
    "conv": _conv,
    "linear": lambda a, ins: (a["out"],),
    "maxpool": _pool,
    "avgpool": _pool,
    "adaptive_avgpool": _adaptive,
    "adaptive_maxpool": _adaptive,
    "global_avgpool": lambda a, ins: (ins[0][0], 1, 1),
    "mean": _mean,
    "flatten": _flatten,
    "identity": _same,
    "channel_shuffle": _same,
    "channel_split": _split,
    "pad_channels": _pad_channels,
    "add": _same,
    "mul": _mul,
    "concat": _concat,
}
