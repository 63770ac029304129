"""Shape and routing ops: ``flatten``, ``identity``, ``channel_shuffle``, ``channel_split``,
``pad_channels``, ``permute``, ``reshape``; and the regularisers ``dropout`` and
``stochastic_depth``. None has parameters or fvcore FLOPs.
"""

from __future__ import annotations

from typing import Any

from .base import RF, Attr, Attrs, Extra, Lowering, Op, OpError, Regularizer, Saved, Shape, Style, register
from .common import fmt_shape, numel, require_image, violated

__all__ = ["ChannelShuffle", "ChannelSplit", "Dropout", "Flatten", "Identity", "PadChannels",
           "Permute", "Reshape", "StochasticDepth"]

RESHAPE_STYLE = Style("reshape", "#ececec", "#808080", token="label")
DROPOUT_STYLE = Style("dropout", "#f3f3f3", "#9a9a9a", chain="attached")


@register
class Flatten(Op):
    """C x H x W -> C*H*W (``torch.flatten(x, 1)``); a flat input passes through."""

    name = "flatten"
    category = "reshape"
    style = RESHAPE_STYLE
    pytorch = "torch.flatten(x, 1)"
    doc = "C x H x W -> C*H*W"
    module_form = "nn.Flatten()"

    def shape(self, a: Attrs, ins: list[Shape]) -> Shape:
        return (numel(ins[0]),)

    def rf(self, a: Attrs, ins: list[Shape], out: Shape) -> RF:
        return RF(global_=True)

    def saved_for_backward(self, a: Attrs, ins: list[Shape], out: Shape) -> Saved:
        """Nothing; the result is a view of the (contiguous) input."""
        return Saved(alias=True)

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        return Lowering(None, forward="torch.flatten({x}, 1)")


@register
class Identity(Op):
    """Pass-through (a shortcut or an empty branch)."""

    name = "identity"
    category = "reshape"
    style = RESHAPE_STYLE
    pytorch = "x"
    doc = "pass-through"
    module_form = "nn.Identity()"
    passthrough = True

    def saved_for_backward(self, a: Attrs, ins: list[Shape], out: Shape) -> Saved:
        """Nothing; the result is the input itself."""
        return Saved(alias=True)

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        return Lowering(None, forward="{x}")


def _require_divisible(op: str, attr: str, channels: int, parts: int) -> None:
    if violated(lambda: channels % parts):
        raise OpError(f"{op} `{attr}` ({parts}) must divide the channels ({channels})", attr=attr,
                      expected=f"a divisor of {channels}",
                      found=f"{attr} {parts}: {channels} % {parts} = {channels % parts}",
                      input_index=0)


@register
class ChannelShuffle(Op):
    """ShuffleNet's channel shuffle: (g, C/g) -> (C/g, g) channel order."""

    name = "channel_shuffle"
    category = "reshape"
    style = RESHAPE_STYLE
    pytorch = "nn.ChannelShuffle"
    doc = "shuffle channels across groups (ShuffleNet)"
    attrs = (Attr("groups", "int", doc="channel groups (must divide the channels)"),)

    def shape(self, a: Attrs, ins: list[Shape]) -> Shape:
        c, _, _ = require_image(self.name, ins)
        _require_divisible(self.name, "groups", c, a.groups)
        return ins[0]

    def saved_for_backward(self, a: Attrs, ins: list[Shape], out: Shape) -> Saved:
        """Nothing: a permutation's backward is the inverse permutation."""
        return Saved()

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        return Lowering("nn.ChannelShuffle", args=(a.groups,))

    def label(self, a: Attrs, ins: list[Shape], out: Shape) -> str:
        return f"shuffle g{a.groups}"


@register
class ChannelSplit(Op):
    """One chunk of the channels: of ``parts`` equal chunks (``x.chunk(parts, 1)[index]``,
    ShuffleNet-v2), or of chunks of the given ``sizes`` (``x.split(sizes, 1)[index]``, dual-path
    networks)."""

    name = "channel_split"
    category = "reshape"
    style = RESHAPE_STYLE
    pytorch = "x.chunk(parts, 1)[index]"
    doc = "one channel chunk: of `parts` equal ones, or of the given `sizes`"
    attrs = (
        Attr("parts", "int", 2, "number of equal chunks (must divide the channels)"),
        Attr("index", "int", doc="which chunk, from 0", minimum=0),
        Attr("sizes", "int_list", (), "uneven chunk sizes, summing to the channels "
                                      "(instead of `parts`)", minimum=1),
    )

    def resolve(self, raw: dict[str, Any] | None) -> dict[str, Any]:
        if raw and "sizes" in raw and "parts" in raw:
            raise OpError("channel_split takes `parts` or `sizes`, not both", attr="parts",
                          expected="`parts: N` (equal chunks) or `sizes: [a, b, ...]`",
                          found="both", hint="the number of `sizes` is the number of parts")
        values = super().resolve(raw)
        if values["sizes"]:
            values["parts"] = len(values["sizes"])
        return values

    def check(self, a: dict[str, Any]) -> None:
        parts = len(a["sizes"]) if a["sizes"] else a["parts"]
        if a["sizes"] and parts < 2:
            raise OpError("channel_split `sizes` needs two or more chunks", attr="sizes",
                          expected="a list [a, b, ...] of two or more sizes",
                          found=f"{parts} size")
        if a["index"] >= parts:
            what = "the number of `sizes`" if a["sizes"] else "`parts`"
            raise OpError(f"channel_split `index` must be below {what} ({parts})",
                          attr="index", expected=f"an index from 0 to {parts - 1}",
                          found=f"index {a['index']}")

    def shape(self, a: Attrs, ins: list[Shape]) -> Shape:
        if not a.sizes:
            _require_divisible(self.name, "parts", ins[0][0], a.parts)
            return (ins[0][0] // a.parts,) + ins[0][1:]
        total = sum(a.sizes)
        if total != ins[0][0]:
            sizes = " + ".join(str(size) for size in a.sizes)
            raise OpError(f"channel_split `sizes` must sum to the channels ({ins[0][0]})",
                          attr="sizes", expected=f"sizes summing to {ins[0][0]}",
                          found=f"{sizes} = {total}", input_index=0)
        return (a.sizes[a.index],) + ins[0][1:]

    def saved_for_backward(self, a: Attrs, ins: list[Shape], out: Shape) -> Saved:
        """Nothing; the chunk is a view of the input."""
        return Saved(alias=True)

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        if a.sizes:
            return Lowering(None, forward=f"{{x}}.split({list(a.sizes)}, 1)[{a.index}]")
        return Lowering(None, forward=f"{{x}}.chunk({a.parts}, 1)[{a.index}]")

    def label(self, a: Attrs, ins: list[Shape], out: Shape) -> str:
        if a.sizes:
            return f"split {a.index}/{'+'.join(str(size) for size in a.sizes)}"
        return f"split {a.index}/{a.parts}"


@register
class PadChannels(Op):
    """Zero-pad channels equally on both sides and subsample by ``stride`` (CIFAR ResNet option A)."""

    name = "pad_channels"
    category = "reshape"
    style = RESHAPE_STYLE
    fresh_output = True
    pytorch = "F.pad(x[:, :, ::s, ::s], ...)"
    doc = "zero-pad channels to `out`, subsample by `stride` (CIFAR ResNet option A)"
    attrs = (
        Attr("out", "int", doc="output channels (>= input channels, difference even)"),
        Attr("stride", "int", 1, "spatial subsampling step"),
    )

    def shape(self, a: Attrs, ins: list[Shape]) -> Shape:
        c, h, w = require_image(self.name, ins)
        extra = a.out - c
        if violated(lambda: extra < 0 or extra % 2):
            raise OpError(f"pad_channels `out` ({a.out}) must be at least the input channels "
                          f"({c}) and differ from them by an even number", attr="out",
                          expected=f"{c}, {c + 2}, {c + 4}, ...", found=f"out {a.out} for "
                          f"input {fmt_shape(ins[0])}", input_index=0)
        return (a.out, _ceil_div(h, a.stride), _ceil_div(w, a.stride))

    def rf(self, a: Attrs, ins: list[Shape], out: Shape) -> RF:
        return RF(stride=(a.stride, a.stride))

    def saved_for_backward(self, a: Attrs, ins: list[Shape], out: Shape) -> Saved:
        """Nothing: slicing and zero padding need only the shapes."""
        return Saved(overwritable=True)

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        side = (a.out - ins[0][0]) // 2
        x = "{x}" if a.stride == 1 else f"{{x}}[:, :, ::{a.stride}, ::{a.stride}]"
        return Lowering(None, forward=f"torch.nn.functional.pad({x}, (0, 0, 0, 0, {side}, {side}))")

    def label(self, a: Attrs, ins: list[Shape], out: Shape) -> str:
        return f"pad channels {a.out}" + (f", /{a.stride}" if a.stride > 1 else "")


def _ceil_div(size: int, step: int) -> int:
    """Length of ``range(0, size, step)``: what ``x[::step]`` keeps."""
    return (size + step - 1) // step


@register
class Dropout(Regularizer):
    """Dropout (``nn.Dropout``); an identity at inference."""

    name = "dropout"
    style = DROPOUT_STYLE
    pytorch = "nn.Dropout"
    doc = "dropout with probability p"
    attrs = (Attr("p", "float", 0.5, "probability of zeroing an element", minimum=0, maximum=1),)

    def saved_for_backward(self, a: Attrs, ins: list[Shape], out: Shape) -> Saved:
        """The mask, one element per output element. On CPU, dropout multiplies by a mask of the
        activations' dtype (CUDA's fused kernel keeps one byte per element instead); with
        ``p: 0`` PyTorch returns the input itself, and with ``p: 1`` it multiplies by one zero."""
        if a.p == 0:
            return Saved(alias=True)
        if a.p == 1:
            return Saved(extra=(Extra("zero", fixed=1),))
        return Saved(extra=(Extra("mask", per_sample=numel(out)),))

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        return Lowering("nn.Dropout", kwargs=(("p", a.p, 0.5),))

    def label(self, a: Attrs, ins: list[Shape], out: Shape) -> str:
        return f"dropout {a.p:g}"


@register
class StochasticDepth(Regularizer):
    """Stochastic depth (``torchvision.ops.StochasticDepth``): in training, drops the whole branch
    of a sample (``mode: row``) or of the batch (``mode: batch``) with probability ``p`` and scales
    what survives by ``1 / (1 - p)``; an identity at inference."""

    name = "stochastic_depth"
    style = DROPOUT_STYLE
    pytorch = "torchvision.ops.StochasticDepth"
    doc = "drop a residual branch per sample (`row`) or per batch with probability p"
    attrs = (
        Attr("p", "float", doc="probability of dropping the branch", minimum=0, maximum=1),
        Attr("mode", "choice", "row", "`row`: per sample; `batch`: the whole batch",
             choices=("row", "batch")),
    )

    def saved_for_backward(self, a: Attrs, ins: list[Shape], out: Shape) -> Saved:
        """The noise the input is multiplied by: one value per sample (``row``) or one for the
        batch; with ``p: 0`` torchvision returns the input itself."""
        if a.p == 0:
            return Saved(alias=True)
        noise = Extra("noise", per_sample=1) if a.mode == "row" else Extra("noise", fixed=1)
        return Saved(extra=(noise,))

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        return Lowering("torchvision.ops.StochasticDepth", args=(a.p, a.mode))

    def label(self, a: Attrs, ins: list[Shape], out: Shape) -> str:
        return f"stochastic depth {a.p:g}" + (", batch" if a.mode == "batch" else "")


@register
class Permute(Op):
    """Reorder the axes of the batched tensor (``torchvision.ops.Permute``); the batch stays first.

    ``dims: [0, 2, 3, 1]`` makes an N x C x H x W tensor N x H x W x C (channels last, for a
    ``layernorm``/``linear`` with ``over: last``); ``[0, 3, 1, 2]`` turns it back.
    """

    name = "permute"
    category = "reshape"
    style = RESHAPE_STYLE
    pytorch = "torchvision.ops.Permute"
    doc = "reorder the axes of the batched tensor (batch stays first): [0, 2, 3, 1] is NCHW -> NHWC"
    attrs = (Attr("dims", "int_list", doc="a permutation of the batched tensor's axes, 0 first",
                  minimum=0),)

    def check(self, a: dict[str, Any]) -> None:
        dims = a["dims"]
        if sorted(dims) != list(range(len(dims))):
            raise OpError("permute `dims` is not a permutation", attr="dims",
                          expected=f"each of 0..{max(len(dims) - 1, 0)} exactly once",
                          found=f"dims {list(dims)}",
                          hint="list every axis of the batched tensor once, e.g. [0, 2, 3, 1]")
        if dims[0] != 0:
            raise OpError("permute must keep the batch axis first", attr="dims",
                          expected="dims starting with 0", found=f"dims {list(dims)}",
                          hint="axis 0 is the batch; reorder only the axes after it")

    def shape(self, a: Attrs, ins: list[Shape]) -> Shape:
        rank = len(ins[0]) + 1
        if len(a.dims) != rank:
            raise OpError(f"permute `dims` must list the {rank} axes of its batched input",
                          attr="dims", expected=f"{rank} axes (0..{rank - 1})",
                          found=f"{len(a.dims)} in {list(a.dims)} for input "
                                f"N x {fmt_shape(ins[0])}", input_index=0)
        return tuple(ins[0][d - 1] for d in a.dims[1:])

    def saved_for_backward(self, a: Attrs, ins: list[Shape], out: Shape) -> Saved:
        """Nothing; the result is a view of the input (a permutation of its strides)."""
        return Saved(alias=True)

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        return Lowering("torchvision.ops.Permute", args=(list(a.dims),))

    def label(self, a: Attrs, ins: list[Shape], out: Shape) -> str:
        return "permute " + "".join(str(d) for d in a.dims)


@register
class Reshape(Op):
    """View the per-sample tensor with another shape of the same size (``-1`` once: inferred)."""

    name = "reshape"
    category = "reshape"
    style = RESHAPE_STYLE
    pytorch = "x.unflatten(1, shape)"
    doc = "view each sample with another shape of the same size (one -1 is inferred)"
    attrs = (Attr("shape", "int_list", doc="the per-sample shape (without the batch); one -1 "
                                           "is inferred", minimum=-1),)

    def check(self, a: dict[str, Any]) -> None:
        shape = a["shape"]
        if not shape:
            raise OpError("reshape `shape` is empty", attr="shape",
                          expected="one or more sizes", found="[]")
        if 0 in shape or shape.count(-1) > 1:
            raise OpError("reshape `shape` takes sizes >= 1 and at most one -1", attr="shape",
                          expected="sizes >= 1, one of them may be -1", found=f"{list(shape)}")

    def shape(self, a: Attrs, ins: list[Shape]) -> Shape:
        total = numel(ins[0])
        known = numel(tuple(d for d in a.shape if d != -1))
        fits = total % known == 0 if -1 in a.shape else total == known
        if not fits:
            raise OpError(f"reshape to {list(a.shape)} does not keep the {total} elements of "
                          f"{fmt_shape(ins[0])}", attr="shape",
                          expected=f"sizes whose product is {total}" + (
                              " (or divides it, with -1)" if -1 in a.shape else ""),
                          found=f"{list(a.shape)}: {known} elements", input_index=0)
        return tuple(total // known if d == -1 else d for d in a.shape)

    def rf(self, a: Attrs, ins: list[Shape], out: Shape) -> RF:
        keeps_hw = len(ins[0]) == 3 and len(out) >= 3 and out[-2:] == ins[0][-2:]
        return RF() if keeps_hw else RF(global_=True)

    def saved_for_backward(self, a: Attrs, ins: list[Shape], out: Shape) -> Saved:
        """Nothing; the result is a view of the (contiguous) input."""
        return Saved(alias=True)

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        return Lowering(None, forward=f"torch.flatten({{x}}, 1).unflatten(1, {tuple(out)!r})")

    def label(self, a: Attrs, ins: list[Shape], out: Shape) -> str:
        return "reshape " + fmt_shape(out)
