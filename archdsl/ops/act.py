"""Activations: element-wise ops without parameters, and ``softmax``.

Each lowers to its ``nn`` module. ``inplace_ok`` marks the modules that take ``inplace=``; the
code generator decides whether in-place is safe where the op is used. fvcore has no handle for
any of them (0 FLOPs).
"""

from __future__ import annotations

from typing import ClassVar

from .base import Attr, Attrs, Lowering, Op, OpError, Shape, register

__all__ = [
    "GELU",
    "Activation",
    "Hardsigmoid",
    "Hardswish",
    "LeakyReLU",
    "ReLU",
    "ReLU6",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
]


class Activation(Op):
    """An element-wise activation; subclasses set ``name`` and ``pytorch`` (its module)."""

    category = "act"
    inplace_ok: ClassVar[bool] = False

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        return Lowering(self.pytorch, kwargs=self.kwargs(a), inplace_ok=self.inplace_ok)

    def kwargs(self, a: Attrs) -> tuple[tuple[str, object, object], ...]:
        """Constructor keywords as ``(name, value, default)``."""
        return ()

    def label(self, a: Attrs, ins: list[Shape], out: Shape) -> str:
        return self.pytorch.removeprefix("nn.")


@register
class ReLU(Activation):
    name = "relu"
    pytorch = "nn.ReLU"
    doc = "max(x, 0)"
    inplace_ok = True


@register
class ReLU6(Activation):
    name = "relu6"
    pytorch = "nn.ReLU6"
    doc = "min(max(x, 0), 6)"
    inplace_ok = True


@register
class Sigmoid(Activation):
    name = "sigmoid"
    pytorch = "nn.Sigmoid"
    doc = "logistic sigmoid"


@register
class Tanh(Activation):
    name = "tanh"
    pytorch = "nn.Tanh"
    doc = "hyperbolic tangent"


@register
class GELU(Activation):
    name = "gelu"
    pytorch = "nn.GELU"
    doc = "Gaussian error linear unit"


@register
class SiLU(Activation):
    name = "silu"
    pytorch = "nn.SiLU"
    doc = "x * sigmoid(x) (swish)"
    inplace_ok = True


@register
class Hardswish(Activation):
    name = "hardswish"
    pytorch = "nn.Hardswish"
    doc = "x * relu6(x + 3) / 6 (MobileNet-v3)"
    inplace_ok = True


@register
class Hardsigmoid(Activation):
    name = "hardsigmoid"
    pytorch = "nn.Hardsigmoid"
    doc = "relu6(x + 3) / 6 (MobileNet-v3 squeeze-and-excitation)"
    inplace_ok = True


@register
class LeakyReLU(Activation):
    name = "leaky_relu"
    pytorch = "nn.LeakyReLU"
    doc = "x if x > 0 else slope * x"
    inplace_ok = True
    attrs = (Attr("slope", "float", 0.01, "slope for negative inputs"),)

    def kwargs(self, a: Attrs) -> tuple[tuple[str, object, object], ...]:
        return (("negative_slope", a.slope, 0.01),)


@register
class Softmax(Activation):
    """Softmax along ``dim`` of the batched tensor (dim 1 is the channels)."""

    name = "softmax"
    pytorch = "nn.Softmax"
    doc = "softmax along dim (of the batched tensor; 1 = channels)"
    attrs = (Attr("dim", "int", 1, "dimension of the batched tensor (N, C, H, W)", minimum=-4,
                  maximum=3),)

    def shape(self, a: Attrs, ins: list[Shape]) -> Shape:
        rank = len(ins[0]) + 1  # with the batch dimension
        if not -rank <= a.dim < rank:
            raise OpError(f"softmax dim {a.dim} is out of range for a {rank}-d batched input",
                          attr="dim", expected=f"a dim from {-rank} to {rank - 1}",
                          found=f"dim {a.dim}", input_index=0)
        return ins[0]

    def kwargs(self, a: Attrs) -> tuple[tuple[str, object, object], ...]:
        return (("dim", a.dim, None),)
