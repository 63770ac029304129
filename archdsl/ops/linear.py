"""``linear``: a fully connected layer (``nn.Linear``) on a flat input, or on the last axis.

fvcore's ``aten::linear`` handle counts the input's elements times the output features: the MACs.
"""

from __future__ import annotations

from .base import RF, Attr, Attrs, Lowering, Op, OpError, Saved, Shape, Style, register
from .common import fmt_shape, numel

__all__ = ["Linear"]


@register
class Linear(Op):
    """Fully connected layer on a flat ``(F,)`` input, or (``over: last``) on the last axis of any
    input, as ``nn.Linear`` does: ConvNeXt's pointwise layers on an H x W x C tensor."""

    name = "linear"
    category = "linear"
    style = Style("fully connected", "#e8def3", "#7a5ba6", chain="anchor", token="channels")
    fresh_output = True
    pytorch = "nn.Linear"
    counts_in_depth = True
    doc = "fully connected layer (on a flat input, or on the last axis with `over: last`)"
    attrs = (
        Attr("out", "int", doc="output features"),
        Attr("bias", "bool", True, "learn an additive bias"),
        Attr("over", "choice", "flat", "`flat` (the input must be flat) or `last` (the last axis "
                                       "of any input, e.g. channels last after `permute`)",
             choices=("flat", "last")),
    )

    def shape(self, a: Attrs, ins: list[Shape]) -> Shape:
        if a.over == "flat" and len(ins[0]) != 1:
            raise OpError("linear needs a flat input", expected="a flat input (F)",
                          found=fmt_shape(ins[0]),
                          hint="add `flatten` before it, or give `over: last` to apply it to the "
                               "last axis", input_index=0)
        return ins[0][:-1] + (a.out,)

    def params(self, a: Attrs, ins: list[Shape], out: Shape) -> int:
        return ins[0][-1] * a.out + (a.out if a.bias else 0)

    def macs(self, a: Attrs, ins: list[Shape], out: Shape) -> int:
        return numel(ins[0]) * a.out

    def fvcore_flops(self, a: Attrs, ins: list[Shape], out: Shape) -> int:
        return self.macs(a, ins, out)  # fvcore's aten::linear handle: input elements * out

    def rf(self, a: Attrs, ins: list[Shape], out: Shape) -> RF:
        return RF(global_=True) if len(ins[0]) == 1 else RF()

    def saved_for_backward(self, a: Attrs, ins: list[Shape], out: Shape) -> Saved:
        """The input (``addmm`` keeps ``mat1``; after ``flatten`` it is a view of the pooled map)."""
        return Saved(inputs=(0,), overwritable=True)

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        return Lowering("nn.Linear", args=(ins[0][-1], a.out), kwargs=(("bias", a.bias, True),))

    def label(self, a: Attrs, ins: list[Shape], out: Shape) -> str:
        return f"fc {a.out}"
