"""Scales of a tensor: ``scale`` (a constant factor) and ``layer_scale`` (a learnable per-channel one).

Inception-ResNet scales its residual branches by a constant (``x + 0.17 * branch``); ConvNeXt
multiplies its block's branch by a learnable per-channel vector initialised small
(``layer_scale * block(x)``, a parameter of shape C x 1 x 1). fvcore counts neither
(``aten::mul`` has no default handle).
"""

from __future__ import annotations

from .base import Attr, Attrs, Lowering, Op, OpError, Saved, Shape, register
from .common import fmt_shape
from .norm import NORM_STYLE

__all__ = ["LayerScale", "Scale"]


@register
class Scale(Op):
    """Multiply by a constant: ``x * value``."""

    name = "scale"
    category = "norm"
    style = NORM_STYLE
    pytorch = "x * value"
    doc = "multiply by a constant (Inception-ResNet's 0.17 * branch)"
    attrs = (Attr("value", "float", doc="the constant factor"),)

    def saved_for_backward(self, a: Attrs, ins: list[Shape], out: Shape) -> Saved:
        """Nothing: multiplying by a constant needs only the constant."""
        return Saved(overwritable=True)

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        return Lowering(None, forward=f"{{x}} * {a.value!r}")

    def label(self, a: Attrs, ins: list[Shape], out: Shape) -> str:
        return f"x {a.value:g}"


@register
class LayerScale(Op):
    """A learnable per-channel scale of a C x H x W tensor (ConvNeXt's ``layer_scale``).

    Its one parameter has shape C x 1 x 1, initialised to ``init``. torchvision keeps it as a bare
    ``nn.Parameter`` on the block (the state_dict key is ``<block>.layer_scale``, with no
    submodule), and so does the lowering (:attr:`Lowering.parameter`).
    """

    name = "layer_scale"
    category = "norm"
    style = NORM_STYLE
    pytorch = "nn.Parameter(torch.ones(C, 1, 1) * init) * x"
    doc = "learnable per-channel scale, a C x 1 x 1 parameter (ConvNeXt)"
    attrs = (Attr("init", "float", 1e-6, "initial value of every channel's scale"),)

    def shape(self, a: Attrs, ins: list[Shape]) -> Shape:
        if len(ins[0]) != 3:
            raise OpError("layer_scale needs a C x H x W input (its scale is C x 1 x 1)",
                          expected="C x H x W", found=fmt_shape(ins[0]),
                          hint="scale flat features with a `linear` layer instead",
                          input_index=0)
        return ins[0]

    def params(self, a: Attrs, ins: list[Shape], out: Shape) -> int:
        return ins[0][0]

    def saved_for_backward(self, a: Attrs, ins: list[Shape], out: Shape) -> Saved:
        """``gamma * x`` keeps the input (for gamma's gradient; gamma is a weight)."""
        return Saved(inputs=(0,), overwritable=True)

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        return Lowering(None, parameter=((ins[0][0], 1, 1), a.init), forward="{m} * {x}")

    def label(self, a: Attrs, ins: list[Shape], out: Shape) -> str:
        return "layer scale"
