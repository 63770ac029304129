"""``linear``: a fully connected layer (``nn.Linear``) on a flat input."""

from __future__ import annotations

from .base import RF, Attr, Attrs, Lowering, Op, OpError, Shape, register
from .common import fmt_shape

__all__ = ["Linear"]


@register
class Linear(Op):
    """Fully connected layer; the input must be flat ``(F,)``."""

    name = "linear"
    category = "linear"
    pytorch = "nn.Linear"
    counts_in_depth = True
    doc = "fully connected layer (input must be flat)"
    attrs = (
        Attr("out", "int", doc="output features"),
        Attr("bias", "bool", True, "learn an additive bias"),
    )

    def shape(self, a: Attrs, ins: list[Shape]) -> Shape:
        if len(ins[0]) != 1:
            raise OpError("linear needs a flat input", expected="a flat input (F)",
                          found=fmt_shape(ins[0]), hint="add `flatten` before it", input_index=0)
        return (a.out,)

    def params(self, a: Attrs, ins: list[Shape], out: Shape) -> int:
        return ins[0][0] * a.out + (a.out if a.bias else 0)

    def macs(self, a: Attrs, ins: list[Shape], out: Shape) -> int:
        return ins[0][0] * a.out

    def fvcore_flops(self, a: Attrs, ins: list[Shape], out: Shape) -> int:
        return self.macs(a, ins, out)  # fvcore's aten::linear handle: in * out per sample

    def rf(self, a: Attrs, ins: list[Shape], out: Shape) -> RF:
        return RF(global_=True)

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        return Lowering("nn.Linear", args=(ins[0][0], a.out), kwargs=(("bias", a.bias, True),))

    def label(self, a: Attrs, ins: list[Shape], out: Shape) -> str:
        return f"fc {a.out}"
