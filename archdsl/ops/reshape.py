"""Shape and routing ops: ``flatten``, ``identity``, ``channel_shuffle``, ``channel_split``,
``pad_channels``; and ``dropout``. None has parameters or fvcore FLOPs.
"""

from __future__ import annotations

from typing import Any

from .base import RF, Attr, Attrs, Lowering, Op, OpError, Shape, register
from .common import fmt_shape, numel, require_image

__all__ = ["ChannelShuffle", "ChannelSplit", "Dropout", "Flatten", "Identity", "PadChannels"]


@register
class Flatten(Op):
    """C x H x W -> C*H*W (``torch.flatten(x, 1)``); a flat input passes through."""

    name = "flatten"
    category = "reshape"
    pytorch = "torch.flatten(x, 1)"
    doc = "C x H x W -> C*H*W"

    def shape(self, a: Attrs, ins: list[Shape]) -> Shape:
        return (numel(ins[0]),)

    def rf(self, a: Attrs, ins: list[Shape], out: Shape) -> RF:
        return RF(global_=True)

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        return Lowering(None, forward="torch.flatten({x}, 1)", imports=("import torch",))


@register
class Identity(Op):
    """Pass-through (a shortcut or an empty branch)."""

    name = "identity"
    category = "reshape"
    pytorch = "x"
    doc = "pass-through"

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        return Lowering(None, forward="{x}")


def _require_divisible(op: str, attr: str, channels: int, parts: int) -> None:
    if channels % parts:
        raise OpError(f"{op} `{attr}` ({parts}) must divide the channels ({channels})", attr=attr,
                      expected=f"a divisor of {channels}",
                      found=f"{attr} {parts}: {channels} % {parts} = {channels % parts}",
                      input_index=0)


@register
class ChannelShuffle(Op):
    """ShuffleNet's channel shuffle: (g, C/g) -> (C/g, g) channel order."""

    name = "channel_shuffle"
    category = "reshape"
    pytorch = "nn.ChannelShuffle"
    doc = "shuffle channels across groups (ShuffleNet)"
    attrs = (Attr("groups", "int", doc="channel groups (must divide the channels)"),)

    def shape(self, a: Attrs, ins: list[Shape]) -> Shape:
        c, _, _ = require_image(self.name, ins)
        _require_divisible(self.name, "groups", c, a.groups)
        return ins[0]

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        return Lowering("nn.ChannelShuffle", args=(a.groups,))

    def label(self, a: Attrs, ins: list[Shape], out: Shape) -> str:
        return f"shuffle g{a.groups}"


@register
class ChannelSplit(Op):
    """One of ``parts`` equal channel chunks: ``x.chunk(parts, 1)[index]`` (ShuffleNet-v2)."""

    name = "channel_split"
    category = "reshape"
    pytorch = "x.chunk(parts, 1)[index]"
    doc = "one of `parts` equal channel chunks"
    attrs = (
        Attr("parts", "int", 2, "number of equal chunks (must divide the channels)"),
        Attr("index", "int", doc="which chunk, from 0", minimum=0),
    )

    def check(self, a: dict[str, Any]) -> None:
        if a["index"] >= a["parts"]:
            raise OpError(f"channel_split `index` must be below `parts` ({a['parts']})",
                          attr="index", expected=f"an index from 0 to {a['parts'] - 1}",
                          found=f"index {a['index']}")

    def shape(self, a: Attrs, ins: list[Shape]) -> Shape:
        _require_divisible(self.name, "parts", ins[0][0], a.parts)
        return (ins[0][0] // a.parts,) + ins[0][1:]

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        return Lowering(None, forward=f"{{x}}.chunk({a.parts}, 1)[{a.index}]")

    def label(self, a: Attrs, ins: list[Shape], out: Shape) -> str:
        return f"split {a.index}/{a.parts}"


@register
class PadChannels(Op):
    """Zero-pad channels equally on both sides and subsample by ``stride`` (CIFAR ResNet option A)."""

    name = "pad_channels"
    category = "reshape"
    pytorch = "F.pad(x[:, :, ::s, ::s], ...)"
    doc = "zero-pad channels to `out`, subsample by `stride` (CIFAR ResNet option A)"
    attrs = (
        Attr("out", "int", doc="output channels (>= input channels, difference even)"),
        Attr("stride", "int", 1, "spatial subsampling step"),
    )

    def shape(self, a: Attrs, ins: list[Shape]) -> Shape:
        c, h, w = require_image(self.name, ins)
        extra = a.out - c
        if extra < 0 or extra % 2:
            raise OpError(f"pad_channels `out` ({a.out}) must be at least the input channels "
                          f"({c}) and differ from them by an even number", attr="out",
                          expected=f"{c}, {c + 2}, {c + 4}, ...", found=f"out {a.out} for "
                          f"input {fmt_shape(ins[0])}", input_index=0)
        return (a.out, _ceil_div(h, a.stride), _ceil_div(w, a.stride))

    def rf(self, a: Attrs, ins: list[Shape], out: Shape) -> RF:
        return RF(stride=(a.stride, a.stride))

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        side = (a.out - ins[0][0]) // 2
        x = "{x}" if a.stride == 1 else f"{{x}}[:, :, ::{a.stride}, ::{a.stride}]"
        return Lowering(None, forward=f"torch.nn.functional.pad({x}, (0, 0, 0, 0, {side}, {side}))",
                        imports=("import torch",))

    def label(self, a: Attrs, ins: list[Shape], out: Shape) -> str:
        return f"pad channels {a.out}" + (f", /{a.stride}" if a.stride > 1 else "")


def _ceil_div(size: int, step: int) -> int:
    """Length of ``range(0, size, step)``: what ``x[::step]`` keeps."""
    return (size + step - 1) // step


@register
class Dropout(Op):
    """Dropout (``nn.Dropout``); an identity at inference."""

    name = "dropout"
    category = "regularize"
    pytorch = "nn.Dropout"
    doc = "dropout with probability p"
    attrs = (Attr("p", "float", 0.5, "probability of zeroing an element", minimum=0, maximum=1),)

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        return Lowering("nn.Dropout", kwargs=(("p", a.p, 0.5),))

    def label(self, a: Attrs, ins: list[Shape], out: Shape) -> str:
        return f"dropout {a.p:g}"
