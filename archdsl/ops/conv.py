"""``conv``: 2-D convolution (``nn.Conv2d``)."""

from __future__ import annotations

import math
from typing import Any

from .base import RF, Attr, Attrs, Lowering, Op, OpError, Saved, Shape, Style, register
from .common import (
    Pads,
    int_or_pair,
    kernel_text,
    numel,
    require_image,
    stride_text,
    symmetric,
    violated,
    window_rf,
    window_shape,
)

__all__ = ["Conv"]


@register
class Conv(Op):
    """2-D convolution, exactly as ``nn.Conv2d`` computes it."""

    name = "conv"
    category = "conv"
    style = Style("convolution", "#dae8f7", "#4a78a8", chain="anchor", token="channels")
    fresh_output = True
    absorbs_norm = True
    pytorch = "nn.Conv2d"
    counts_in_depth = True
    doc = "2-D convolution"
    attrs = (
        Attr("out", "int", doc="output channels"),
        Attr("k", "pair", doc="kernel size: int or [h, w]"),
        Attr("stride", "pair", 1, "stride: int or [h, w]"),
        Attr("pad", "padding", 0, "zero padding per side: int, [h, w], same or valid",
             choices=("same", "valid")),
        Attr("dilation", "pair", 1, "kernel dilation: int or [h, w]"),
        Attr("groups", "int", 1, "channel groups (groups = in.c makes a depthwise conv)"),
        Attr("bias", "bool", True, "learn an additive bias"),
    )

    def check(self, a: dict[str, Any]) -> None:
        if a["pad"] == "same" and a["stride"] != (1, 1):
            raise OpError("`pad: same` needs stride 1 (as in PyTorch)", attr="pad",
                          expected="stride 1 with pad: same",
                          found=f"stride {kernel_text(a['stride'])}",
                          hint=f"give the padding explicitly, e.g. pad: "
                               f"{_padding_example(a['k'], a['dilation'])}")

    def absorb_norm(self, a: dict[str, Any]) -> dict[str, Any]:
        """A folded batch norm's shift becomes the conv's bias."""
        return {**a, "bias": True}

    def shape(self, a: Attrs, ins: list[Shape]) -> Shape:
        c, _, _ = require_image(self.name, ins)
        self._check_groups(a, c)
        h, w = window_shape(self.name, ins, a.k, a.stride, _pads(a), a.dilation)
        return (a.out, h, w)

    def _check_groups(self, a: Attrs, in_c: int) -> None:
        g = a.groups
        if not violated(lambda: in_c % g or a.out % g):
            return
        raise OpError(
            f"conv groups ({g}) must divide both the input channels ({in_c}) and the output "
            f"channels ({a.out})",
            attr="groups", expected=f"a common divisor of {in_c} and {a.out}",
            found=f"groups {g}: {in_c} % {g} = {in_c % g}, {a.out} % {g} = {a.out % g}",
            hint=f"the largest valid groups is {math.gcd(in_c, a.out)}; a depthwise conv has "
                 f"groups: in.c and out a multiple of in.c")

    # --- costs ----------------------------------------------------------------------------
    def params(self, a: Attrs, ins: list[Shape], out: Shape) -> int:
        weight = a.out * self._weights_per_output(a, ins)
        return weight + (a.out if a.bias else 0)

    def macs(self, a: Attrs, ins: list[Shape], out: Shape) -> int:
        return numel(out) * self._weights_per_output(a, ins)

    def fvcore_flops(self, a: Attrs, ins: list[Shape], out: Shape) -> int:
        """The MACs; but a string ``padding=`` traces to ``aten::_convolution_mode``, which
        fvcore 0.1.5 has no handle for, so a lowered ``pad: same`` conv counts 0 there."""
        if isinstance(_padding_arg(a), str):
            return 0
        return self.macs(a, ins, out)

    def _weights_per_output(self, a: Attrs, ins: list[Shape]) -> int:
        """Weights behind one output element: (in / groups) * kh * kw."""
        return ins[0][0] // a.groups * a.k[0] * a.k[1]

    def rf(self, a: Attrs, ins: list[Shape], out: Shape) -> RF:
        return window_rf(a.k, a.stride, _pads(a), a.dilation)

    def saved_for_backward(self, a: Attrs, ins: list[Shape], out: Shape) -> Saved:
        """The input (for the weights' gradient); the weights themselves are not activations."""
        return Saved(inputs=(0,), overwritable=True)

    # --- lowering and drawing -------------------------------------------------------------
    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        return Lowering(
            "nn.Conv2d",
            args=(ins[0][0], a.out),
            kwargs=(
                ("kernel_size", int_or_pair(a.k), None),
                ("stride", int_or_pair(a.stride), 1),
                ("padding", _padding_arg(a), 0),
                ("dilation", int_or_pair(a.dilation), 1),
                ("groups", a.groups, 1),
                ("bias", a.bias, True),
            ),
        )

    def label(self, a: Attrs, ins: list[Shape], out: Shape) -> str:
        in_c = ins[0][0] if ins else 0
        depthwise = a.groups > 1 and a.groups == in_c
        text = f"{kernel_text(a.k)} {'dwconv' if depthwise else 'conv'} {a.out}"
        text += stride_text(a.stride)
        if a.groups > 1 and not depthwise:
            text += f", g{a.groups}"
        if a.dilation != (1, 1):
            text += f", d{int_or_pair(a.dilation)}"
        return text

    def compact_label(self, a: Attrs, ins: list[Shape], out: Shape) -> str:
        """``1x1 128`` for ``1x1 conv 128`` (a depthwise conv keeps its ``dwconv``)."""
        return self.label(a, ins, out).replace(" conv ", " ", 1)


def _pads(a: Attrs) -> Pads:
    """Per-axis (lo, hi) zero padding; ``same`` puts the odd extra pixel at the end (PyTorch)."""
    if a.pad == "valid":
        return ((0, 0), (0, 0))
    if a.pad == "same":
        total_h = a.dilation[0] * (a.k[0] - 1)
        total_w = a.dilation[1] * (a.k[1] - 1)
        return ((total_h // 2, total_h - total_h // 2), (total_w // 2, total_w - total_w // 2))
    return symmetric(a.pad)


def _padding_arg(a: Attrs) -> int | str | tuple[int, int]:
    """``padding=`` of nn.Conv2d: ``'same'`` stays a string, ``valid`` is 0."""
    if a.pad == "same":
        return "same"
    if a.pad == "valid":
        return 0
    return int_or_pair(a.pad)


def _padding_example(k: tuple[int, int], dilation: tuple[int, int]) -> str:
    pad = (dilation[0] * (k[0] - 1) // 2, dilation[1] * (k[1] - 1) // 2)
    return str(pad[0]) if pad[0] == pad[1] else f"[{pad[0]}, {pad[1]}]"

