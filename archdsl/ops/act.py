"""Activations: element-wise ops, and ``softmax``.

Each lowers to its ``nn`` module. ``inplace_ok`` marks the modules that take ``inplace=``; the
code generator decides whether in-place is safe where the op is used. fvcore has no handle for
any of them (0 FLOPs). Only ``prelu`` has parameters (its learnable slopes).
"""

from __future__ import annotations

from typing import Any, ClassVar

from .base import Attr, Attrs, Extra, Lowering, Op, OpError, Saved, Shape, Style, register
from .common import numel

__all__ = [
    "CELU",
    "ELU",
    "GELU",
    "SELU",
    "Activation",
    "Hardsigmoid",
    "Hardswish",
    "Hardtanh",
    "LeakyReLU",
    "LogSigmoid",
    "Mish",
    "PReLU",
    "ReLU",
    "ReLU6",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Tanh",
    "Tanhshrink",
]


class Activation(Op):
    """An element-wise activation; subclasses set ``name`` and ``pytorch`` (its module).

    ``keeps`` says what its backward needs: ``"input"`` (GELU, SiLU, ...) or ``"output"`` (ReLU,
    sigmoid, tanh, softmax: the derivative is a function of the result).
    """

    category = "act"
    style = Style("activation", "#fbdedb", "#b9534d", chain="attached")
    inplace_ok: ClassVar[bool] = False
    keeps: ClassVar[str] = "input"
    runs_in_place: ClassVar[bool] = False  # the generated code uses inplace=True where safe

    def saved_for_backward(self, a: Attrs, ins: list[Shape], out: Shape) -> Saved:
        if self.keeps == "output":
            return Saved(output=True, inplace=self.runs_in_place)
        return Saved(inputs=(0,), inplace=self.runs_in_place)

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
    keeps = "output"
    runs_in_place = True
    inplace_in_code = True


@register
class ReLU6(Activation):
    name = "relu6"
    pytorch = "nn.ReLU6"
    doc = "min(max(x, 0), 6)"
    inplace_ok = True
    # Even in place (``hardtanh_``), autograd keeps a copy of the input it overwrites (measured:
    # conv - bn - ReLU6(inplace=True) - conv keeps four activation-sized storages, as out of place).
    inplace_in_code = True


@register
class Sigmoid(Activation):
    name = "sigmoid"
    pytorch = "nn.Sigmoid"
    doc = "logistic sigmoid"
    keeps = "output"


@register
class Tanh(Activation):
    name = "tanh"
    pytorch = "nn.Tanh"
    doc = "hyperbolic tangent"
    keeps = "output"


@register
class GELU(Activation):
    name = "gelu"
    pytorch = "nn.GELU"
    doc = "Gaussian error linear unit (exact, or its tanh approximation)"
    attrs = (Attr("approximate", "choice", "none", "`none` (the exact erf form) or `tanh`",
                  choices=("none", "tanh")),)

    def kwargs(self, a: Attrs) -> tuple[tuple[str, object, object], ...]:
        return (("approximate", a.approximate, "none"),)


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
    keeps = "output"
    attrs = (Attr("dim", "int", 1, "dimension of the batched tensor (N, C, H, W; N, P, C, H, W "
                  "after a reshape into paths)", minimum=-5, maximum=4),)

    def shape(self, a: Attrs, ins: list[Shape]) -> Shape:
        rank = len(ins[0]) + 1  # with the batch dimension
        if not -rank <= a.dim < rank:
            raise OpError(f"softmax dim {a.dim} is out of range for a {rank}-d batched input",
                          attr="dim", expected=f"a dim from {-rank} to {rank - 1}",
                          found=f"dim {a.dim}", input_index=0)
        return ins[0]

    def kwargs(self, a: Attrs) -> tuple[tuple[str, object, object], ...]:
        return (("dim", a.dim, None),)


_ALPHA = Attr("alpha", "float", 1.0, "the negative saturation value", minimum=0)


@register
class ELU(Activation):
    name = "elu"
    pytorch = "nn.ELU"
    doc = "x if x > 0 else alpha * (exp(x) - 1)"
    inplace_ok = True
    attrs = (_ALPHA,)

    def kwargs(self, a: Attrs) -> tuple[tuple[str, object, object], ...]:
        return (("alpha", a.alpha, 1.0),)


@register
class CELU(Activation):
    name = "celu"
    pytorch = "nn.CELU"
    doc = "max(0, x) + min(0, alpha * (exp(x / alpha) - 1))"
    inplace_ok = True
    attrs = (Attr("alpha", "float", 1.0, "the negative saturation value", minimum=0,
                  exclusive_minimum=True),)

    def kwargs(self, a: Attrs) -> tuple[tuple[str, object, object], ...]:
        return (("alpha", a.alpha, 1.0),)


@register
class SELU(Activation):
    name = "selu"
    pytorch = "nn.SELU"
    doc = "scaled ELU with the self-normalising constants"
    inplace_ok = True


@register
class Mish(Activation):
    name = "mish"
    pytorch = "nn.Mish"
    doc = "x * tanh(softplus(x))"
    inplace_ok = True


@register
class Hardtanh(Activation):
    name = "hardtanh"
    pytorch = "nn.Hardtanh"
    doc = "x clamped to [min, max]"
    inplace_ok = True
    attrs = (
        Attr("min", "float", -1.0, "the lower clamp"),
        Attr("max", "float", 1.0, "the upper clamp (above `min`)"),
    )

    def check(self, a: dict[str, Any]) -> None:
        if a["max"] <= a["min"]:
            raise OpError("hardtanh `max` must be above `min`", attr="max",
                          expected=f"a number > {a['min']:g}",
                          found=f"min {a['min']:g}, max {a['max']:g}")

    def kwargs(self, a: Attrs) -> tuple[tuple[str, object, object], ...]:
        return (("min_val", a.min, -1.0), ("max_val", a.max, 1.0))


@register
class Softplus(Activation):
    name = "softplus"
    pytorch = "nn.Softplus"
    doc = "log(1 + exp(beta * x)) / beta (linear above `threshold`)"
    attrs = (
        Attr("beta", "float", 1.0, "sharpness", minimum=0, exclusive_minimum=True),
        Attr("threshold", "float", 20.0, "beta * x above which the function is linear"),
    )

    def kwargs(self, a: Attrs) -> tuple[tuple[str, object, object], ...]:
        return (("beta", a.beta, 1.0), ("threshold", a.threshold, 20.0))


@register
class LogSigmoid(Activation):
    name = "logsigmoid"
    pytorch = "nn.LogSigmoid"
    doc = "log(sigmoid(x))"

    def saved_for_backward(self, a: Attrs, ins: list[Shape], out: Shape) -> Saved:
        """The input and ``log_sigmoid_forward``'s buffer, of the input's size."""
        return Saved(inputs=(0,), extra=(Extra("buffer", per_sample=numel(ins[0])),))


@register
class Tanhshrink(Activation):
    name = "tanhshrink"
    pytorch = "nn.Tanhshrink"
    doc = "x - tanh(x)"

    def saved_for_backward(self, a: Attrs, ins: list[Shape], out: Shape) -> Saved:
        """``x - tanh(x)``: the tanh keeps its own result, a new tensor of the input's size."""
        return Saved(extra=(Extra("tanh of the input", per_sample=numel(ins[0])),))


@register
class PReLU(Activation):
    """Parametric ReLU: a learnable negative slope, one for all channels or one per channel."""

    name = "prelu"
    pytorch = "nn.PReLU"
    doc = "x if x > 0 else a * x, with a learnable slope a (shared or per channel)"
    attrs = (
        Attr("per_channel", "bool", False, "one slope per channel instead of one shared slope"),
        Attr("init", "float", 0.25, "initial slope"),
    )

    def slopes(self, a: Attrs, ins: list[Shape]) -> int:
        return ins[0][0] if a.per_channel else 1

    def params(self, a: Attrs, ins: list[Shape], out: Shape) -> int:
        return self.slopes(a, ins)

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        return Lowering(self.pytorch, kwargs=(("num_parameters", self.slopes(a, ins), 1),
                                              ("init", a.init, 0.25)))

    def label(self, a: Attrs, ins: list[Shape], out: Shape) -> str:
        return "PReLU" + (" per channel" if a.per_channel else "")
