"""Pooling: ``maxpool``, ``avgpool``, ``adaptive_avgpool``, ``adaptive_maxpool``, ``global_avgpool``.

Windowed pools share the convolution's output-size rule, with PyTorch's ``ceil_mode`` and its
limit on padding (at most half the kernel). fvcore counts only ``aten::adaptive_avg_pool2d`` (one
FLOP per input element); max and average pooling windows count 0.
"""

from __future__ import annotations

from typing import Any

from .base import RF, Attr, Attrs, Extra, Lowering, Op, OpError, Saved, Shape, Style, register
from .common import (
    int_or_pair,
    kernel_text,
    numel,
    require_image,
    stride_text,
    symmetric,
    window_rf,
    window_shape,
)

__all__ = [
    "AdaptiveAvgPool",
    "AdaptiveMaxPool",
    "AdaptivePool",
    "AvgPool",
    "GlobalAvgPool",
    "MaxPool",
    "WindowPool",
]

POOL_STYLE = Style("pooling", "#dcefd9", "#4d8f4a", token="pool")


class WindowPool(Op):
    """A pooling window sliding over H and W; ``stride`` defaults to the kernel."""

    category = "pool"
    style = POOL_STYLE
    fresh_output = True

    def finalize(self, a: dict[str, Any], ins: list[Shape]) -> dict[str, Any]:
        if a["stride"] is None:
            return {**a, "stride": a["k"]}
        return a

    def check(self, a: dict[str, Any]) -> None:
        k, pad = a["k"], a["pad"]
        if pad[0] * 2 > k[0] or pad[1] * 2 > k[1]:
            raise OpError(f"{self.name} `pad` must be at most half the kernel (PyTorch's rule)",
                          attr="pad", expected=f"pad <= {k[0] // 2}x{k[1] // 2} for a "
                                               f"{kernel_text(k)} kernel",
                          found=f"pad {kernel_text(pad)}",
                          hint="use a larger kernel or less padding")

    def dilation(self, a: Attrs) -> tuple[int, int]:
        return (1, 1)

    def shape(self, a: Attrs, ins: list[Shape]) -> Shape:
        c, _, _ = require_image(self.name, ins)
        h, w = window_shape(self.name, ins, a.k, a.stride, symmetric(a.pad), self.dilation(a),
                            a.ceil)
        return (c, h, w)

    def rf(self, a: Attrs, ins: list[Shape], out: Shape) -> RF:
        return window_rf(a.k, a.stride, symmetric(a.pad), self.dilation(a))

    def window_kwargs(self, a: Attrs) -> tuple[tuple[str, Any, Any], ...]:
        """The constructor keywords every windowed pool shares."""
        kernel = int_or_pair(a.k)
        return (
            ("kernel_size", kernel, None),
            ("stride", int_or_pair(a.stride), kernel),
            ("padding", int_or_pair(a.pad), 0),
        )

    def label(self, a: Attrs, ins: list[Shape], out: Shape) -> str:
        return f"{kernel_text(a.k)} {self.name}{stride_text(a.stride)}"


_KERNEL = Attr("k", "pair", doc="window size: int or [h, w]")
_STRIDE = Attr("stride", "optional_pair", None, "stride: int or [h, w] (defaults to k)")
_PAD = Attr("pad", "pair", 0, "implicit padding per side (at most k / 2)", minimum=0)
_CEIL = Attr("ceil", "bool", False, "round the output size up (PyTorch's ceil_mode)")


@register
class MaxPool(WindowPool):
    """Max pooling (``nn.MaxPool2d``); padding is -inf."""

    name = "maxpool"
    pytorch = "nn.MaxPool2d"
    doc = "max pooling"
    attrs = (_KERNEL, _STRIDE, _PAD, Attr("dilation", "pair", 1, "window dilation"), _CEIL)

    def dilation(self, a: Attrs) -> tuple[int, int]:
        return a.dilation

    def saved_for_backward(self, a: Attrs, ins: list[Shape], out: Shape) -> Saved:
        """The input and the int64 index of each output's maximum."""
        return Saved(inputs=(0,), extra=(_indices(out),), overwritable=True)

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        return Lowering("nn.MaxPool2d", kwargs=self.window_kwargs(a) + (
            ("dilation", int_or_pair(a.dilation), 1),
            ("ceil_mode", a.ceil, False),
        ))


@register
class AvgPool(WindowPool):
    """Average pooling (``nn.AvgPool2d``)."""

    name = "avgpool"
    pytorch = "nn.AvgPool2d"
    doc = "average pooling"
    attrs = (_KERNEL, _STRIDE, _PAD, _CEIL,
             Attr("count_include_pad", "bool", True, "average over padded zeros too"))

    def saved_for_backward(self, a: Attrs, ins: list[Shape], out: Shape) -> Saved:
        """The input (``avg_pool2d_backward`` reads its geometry from it)."""
        return Saved(inputs=(0,), overwritable=True)

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        return Lowering("nn.AvgPool2d", kwargs=self.window_kwargs(a) + (
            ("ceil_mode", a.ceil, False),
            ("count_include_pad", a.count_include_pad, True),
        ))


class AdaptivePool(Op):
    """Pools any H x W to a fixed output ``size``."""

    category = "pool"
    style = POOL_STYLE
    fresh_output = True
    attrs = (Attr("size", "size", doc="output size: int or [h, w]"),)

    def shape(self, a: Attrs, ins: list[Shape]) -> Shape:
        c, _, _ = require_image(self.name, ins)
        return (c, a.size[0], a.size[1])

    def rf(self, a: Attrs, ins: list[Shape], out: Shape) -> RF:
        return RF(global_=True)

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        return Lowering(self.pytorch, args=(int_or_pair(a.size),))

    def label(self, a: Attrs, ins: list[Shape], out: Shape) -> str:
        return f"{self.name.replace('_', ' ')} {kernel_text(a.size)}"


@register
class AdaptiveAvgPool(AdaptivePool):
    name = "adaptive_avgpool"
    pytorch = "nn.AdaptiveAvgPool2d"
    doc = "average pooling to a fixed output size"

    def saved_for_backward(self, a: Attrs, ins: list[Shape], out: Shape) -> Saved:
        """The input; but to 1 x 1 PyTorch takes the mean, which keeps nothing."""
        return Saved(inputs=() if a.size == (1, 1) else (0,), overwritable=True)

    def fvcore_flops(self, a: Attrs, ins: list[Shape], out: Shape) -> int:
        return numel(ins[0])


@register
class AdaptiveMaxPool(AdaptivePool):
    name = "adaptive_maxpool"
    pytorch = "nn.AdaptiveMaxPool2d"
    doc = "max pooling to a fixed output size"

    def saved_for_backward(self, a: Attrs, ins: list[Shape], out: Shape) -> Saved:
        """The input and the int64 index of each output's maximum."""
        return Saved(inputs=(0,), extra=(_indices(out),), overwritable=True)


@register
class GlobalAvgPool(Op):
    """Average over H x W to C x 1 x 1 (torchvision's ``avgpool``)."""

    name = "global_avgpool"
    category = "pool"
    style = POOL_STYLE
    fresh_output = True
    pytorch = "nn.AdaptiveAvgPool2d(1)"
    doc = "global average pooling to C x 1 x 1"

    def shape(self, a: Attrs, ins: list[Shape]) -> Shape:
        c, _, _ = require_image(self.name, ins)
        return (c, 1, 1)

    def fvcore_flops(self, a: Attrs, ins: list[Shape], out: Shape) -> int:
        return numel(ins[0])

    def rf(self, a: Attrs, ins: list[Shape], out: Shape) -> RF:
        return RF(global_=True)

    def saved_for_backward(self, a: Attrs, ins: list[Shape], out: Shape) -> Saved:
        """Nothing: PyTorch pools to 1 x 1 with a mean, whose backward needs only the shape."""
        return Saved(overwritable=True)

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        return Lowering("nn.AdaptiveAvgPool2d", args=(1,))

    def label(self, a: Attrs, ins: list[Shape], out: Shape) -> str:
        return "global avgpool"


@register
class Mean(Op):
    """The spatial mean ``x.mean([2, 3])`` as a functional op (torchvision's ShuffleNet-v2 head,
    timm's squeeze-and-excitation). Same numbers as global average pooling, but no module and,
    like PyTorch's ``aten::mean``, no FLOPs in fvcore's count."""

    name = "mean"
    category = "pool"
    style = POOL_STYLE
    pytorch = "x.mean([2, 3])"
    doc = "spatial mean: C x H x W -> C (or C x 1 x 1 with keepdim)"
    attrs = (Attr("keepdim", "bool", False, "keep H and W as 1 x 1"),)

    def shape(self, a: Attrs, ins: list[Shape]) -> Shape:
        c, _, _ = require_image(self.name, ins)
        return (c, 1, 1) if a.keepdim else (c,)

    def rf(self, a: Attrs, ins: list[Shape], out: Shape) -> RF:
        return RF(global_=True)

    def saved_for_backward(self, a: Attrs, ins: list[Shape], out: Shape) -> Saved:
        """Nothing: the mean's backward needs only the shape."""
        return Saved()

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        keep = ", keepdim=True" if a.keepdim else ""
        return Lowering(None, forward="{x}.mean((2, 3)" + keep + ")")

    def label(self, a: Attrs, ins: list[Shape], out: Shape) -> str:
        return "global mean"


def _indices(out: Shape) -> Extra:
    """The int64 argmax a max pool keeps: one per output element."""
    return Extra("int64 indices of the maxima", per_sample=numel(out), bytes=8)
