"""``upsample``: nearest or bilinear interpolation to a size or by a scale (``nn.Upsample``).

Multi-resolution networks (HRNet-style fusion, FPN-like necks) bring a coarse map up to a finer
one. PyTorch's output size is ``floor(size * scale)`` per axis. fvcore counts
``aten::upsample_nearest2d`` as 1 FLOP and ``aten::upsample_bilinear2d`` as 4 per output element.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from .base import RF, Attr, Attrs, Lowering, Op, OpError, Saved, Shape, register
from .common import int_or_pair, kernel_text, numel, require_image
from .pool import POOL_STYLE

__all__ = ["Upsample"]

_FVCORE_PER_OUTPUT = {"nearest": 1, "bilinear": 4}


@register
class Upsample(Op):
    """Resize H x W by ``scale`` or to ``size`` (one of them), nearest or bilinear."""

    name = "upsample"
    category = "pool"
    style = replace(POOL_STYLE, token="upsample")  # coloured as a change of resolution
    pytorch = "nn.Upsample"
    doc = "nearest or bilinear interpolation, by `scale` or to `size`"
    attrs = (
        Attr("scale", "optional_float", None, "factor for H and W (output floor(size * scale))",
             minimum=0, maximum=2.0**16, exclusive_minimum=True),
        Attr("size", "optional_pair", None, "output size: int or [h, w] (instead of `scale`)"),
        Attr("mode", "choice", "nearest", "`nearest` or `bilinear`",
             choices=("nearest", "bilinear")),
        Attr("align_corners", "bool", False, "bilinear only: align the corner pixels "
                                             "(PyTorch's align_corners)"),
    )

    def check(self, a: dict[str, Any]) -> None:
        if (a["scale"] is None) == (a["size"] is None):
            raise OpError("upsample takes `scale` or `size`, exactly one of them",
                          attr="scale" if a["scale"] is not None else None,
                          expected="`scale: 2` or `size: [h, w]`",
                          found="both" if a["scale"] is not None else "neither")
        if a["align_corners"] and a["mode"] == "nearest":
            raise OpError("upsample `align_corners` applies only to `mode: bilinear`",
                          attr="align_corners", expected="mode: bilinear, or no align_corners",
                          found="mode: nearest", hint="PyTorch refuses align_corners for nearest")

    def shape(self, a: Attrs, ins: list[Shape]) -> Shape:
        c, h, w = require_image(self.name, ins)
        if a.size is not None:
            return (c, a.size[0], a.size[1])
        out_h, out_w = math.floor(h * a.scale), math.floor(w * a.scale)
        if out_h < 1 or out_w < 1:
            raise OpError(f"upsample by {a.scale:g} makes an empty output from {h} x {w}",
                          attr="scale", expected="a scale giving at least 1 x 1",
                          found=f"{out_h} x {out_w}", input_index=0)
        return (c, out_h, out_w)

    def fvcore_flops(self, a: Attrs, ins: list[Shape], out: Shape) -> int:
        return _FVCORE_PER_OUTPUT[a.mode] * numel(out)

    def rf(self, a: Attrs, ins: list[Shape], out: Shape) -> RF:
        """A pointwise window: the finer output grid is not modelled (the jump stays the input's)."""
        return RF()

    def saved_for_backward(self, a: Attrs, ins: list[Shape], out: Shape) -> Saved:
        """Nothing: nearest and bilinear interpolation's backward needs only the sizes."""
        return Saved(overwritable=True)

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        return Lowering("nn.Upsample", kwargs=(
            ("size", None if a.size is None else int_or_pair(a.size), None),
            ("scale_factor", a.scale, None),
            ("mode", a.mode, "nearest"),
            ("align_corners", a.align_corners if a.mode == "bilinear" else None, None),
        ))

    def label(self, a: Attrs, ins: list[Shape], out: Shape) -> str:
        how = f"x{a.scale:g}" if a.size is None else f"to {kernel_text(a.size)}"
        return f"upsample {how}" + (", bilinear" if a.mode == "bilinear" else "")
