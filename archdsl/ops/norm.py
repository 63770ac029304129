"""Normalisation ops: ``bn``, ``layernorm``, ``groupnorm``, ``lrn``.

fvcore counts normalisation by the input's elements: ``aten::batch_norm`` in eval mode 2 per
element with an affine transform (1 without); ``aten::group_norm`` and ``aten::layer_norm`` 5 per
element with their (default) affine weights (also when ``layernorm`` runs over the channels of an
N x C x H x W tensor: torchvision's ``LayerNorm2d`` permutes and calls ``F.layer_norm``). Local
response norm has no fvcore handle.
"""

from __future__ import annotations

from .base import Attr, Attrs, Extra, Lowering, Op, OpError, Saved, Shape, Style, register
from .common import fmt_shape, numel, require_image, violated

__all__ = ["BatchNorm", "GroupNorm", "LayerNorm", "LocalResponseNorm"]

NORM_STYLE = Style("normalization", "#fdf0c8", "#b8902a", chain="attached")

_EPS = Attr("eps", "float", 1e-5, "added to the variance for numerical stability", minimum=0)


def _channels(op: str, shape: Shape) -> int:
    """Channels of a C x H x W input, or features of a flat one."""
    if len(shape) not in (1, 3):
        raise OpError(f"{op} needs a C x H x W or flat input", expected="C x H x W or F",
                      found=fmt_shape(shape), input_index=0)
    return shape[0]


@register
class BatchNorm(Op):
    """Batch normalisation: ``nn.BatchNorm2d`` on images, ``nn.BatchNorm1d`` on flat features."""

    name = "bn"
    category = "norm"
    style = NORM_STYLE
    fresh_output = True
    foldable_norm = True
    pytorch = "nn.BatchNorm2d"
    doc = "batch normalisation (BatchNorm1d on flat input)"
    attrs = (
        _EPS,
        Attr("momentum", "float", 0.1, "running statistics update rate", minimum=0, maximum=1),
        Attr("affine", "bool", True, "learn a per-channel scale and shift"),
    )

    def shape(self, a: Attrs, ins: list[Shape]) -> Shape:
        _channels(self.name, ins[0])
        return ins[0]

    def params(self, a: Attrs, ins: list[Shape], out: Shape) -> int:
        return 2 * ins[0][0] if a.affine else 0

    def buffers(self, a: Attrs, ins: list[Shape], out: Shape) -> int:
        return 2 * ins[0][0] + 1  # running_mean, running_var, num_batches_tracked

    def fvcore_flops(self, a: Attrs, ins: list[Shape], out: Shape) -> int:
        return numel(ins[0]) * (2 if a.affine else 1)

    def saved_for_backward(self, a: Attrs, ins: list[Shape], out: Shape) -> Saved:
        """The input and the batch statistics (``save_mean``, ``save_invstd``: one per channel)."""
        stats = Extra("batch mean and inverse std", fixed=2 * ins[0][0])
        return Saved(inputs=(0,), extra=(stats,), overwritable=True)

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        module = "nn.BatchNorm2d" if len(ins[0]) == 3 else "nn.BatchNorm1d"
        return Lowering(module, args=(ins[0][0],), kwargs=(
            ("eps", a.eps, 1e-5), ("momentum", a.momentum, 0.1), ("affine", a.affine, True)))

    def label(self, a: Attrs, ins: list[Shape], out: Shape) -> str:
        return "BN"


@register
class LayerNorm(Op):
    """Layer normalisation over the whole per-sample shape, its last axis, or the channels.

    ``over: all`` is ``nn.LayerNorm(list(shape))``; ``over: last`` is ``nn.LayerNorm(shape[-1])``
    (ConvNeXt's blocks, after a ``permute`` to channels last); ``over: channels`` normalises the C
    of each pixel of a C x H x W tensor: torchvision's ``LayerNorm2d`` (ConvNeXt's stem and
    downsampling layers).
    """

    name = "layernorm"
    category = "norm"
    style = NORM_STYLE
    fresh_output = True
    pytorch = "nn.LayerNorm"
    doc = "layer normalisation over the whole per-sample shape, its last axis, or the channels"
    attrs = (
        _EPS,
        Attr("over", "choice", "all", "`all` (the whole sample), `last` (the last axis) or "
                                      "`channels` (C of a C x H x W tensor, LayerNorm2d)",
             choices=("all", "last", "channels")),
    )

    def shape(self, a: Attrs, ins: list[Shape]) -> Shape:
        if a.over == "channels":
            require_image(self.name, ins)
        return ins[0]

    def normalized(self, a: Attrs, shape: Shape) -> Shape:
        """The trailing axes normalised together (their elements have a weight and a bias each)."""
        if a.over == "all":
            return shape
        return shape[-1:] if a.over == "last" else shape[:1]

    def params(self, a: Attrs, ins: list[Shape], out: Shape) -> int:
        return 2 * numel(self.normalized(a, ins[0]))

    def fvcore_flops(self, a: Attrs, ins: list[Shape], out: Shape) -> int:
        return 5 * numel(ins[0])

    def saved_for_backward(self, a: Attrs, ins: list[Shape], out: Shape) -> Saved:
        """The input and a mean and reciprocal std per normalised group: one per sample
        (``all``), per position of the other axes (``last``), per pixel (``channels``)."""
        groups = numel(ins[0]) // numel(self.normalized(a, ins[0]))
        return Saved(inputs=(0,), extra=(Extra("mean and rstd", per_sample=2 * groups),),
                     overwritable=True)

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        shape = self.normalized(a, ins[0])
        eps = ("eps", a.eps, 1e-5)
        if a.over == "channels":
            return Lowering("torchvision.models.convnext.LayerNorm2d", args=(shape[0],),
                            kwargs=(eps,))
        normalized = shape[0] if len(shape) == 1 else list(shape)
        return Lowering("nn.LayerNorm", args=(normalized,), kwargs=(eps,))

    def label(self, a: Attrs, ins: list[Shape], out: Shape) -> str:
        return "LN" + {"all": "", "last": " last", "channels": " 2d"}[a.over]


@register
class GroupNorm(Op):
    """Group normalisation (``nn.GroupNorm``); ``groups`` must divide the channels."""

    name = "groupnorm"
    category = "norm"
    style = NORM_STYLE
    fresh_output = True
    pytorch = "nn.GroupNorm"
    doc = "group normalisation"
    attrs = (
        Attr("groups", "int", doc="channel groups (must divide the channels)"),
        _EPS,
    )

    def shape(self, a: Attrs, ins: list[Shape]) -> Shape:
        c = _channels(self.name, ins[0])
        if violated(lambda: c % a.groups):
            raise OpError(f"groupnorm groups ({a.groups}) must divide the channels ({c})",
                          attr="groups", expected=f"a divisor of {c}",
                          found=f"groups {a.groups}: {c} % {a.groups} = {c % a.groups}",
                          input_index=0)
        return ins[0]

    def params(self, a: Attrs, ins: list[Shape], out: Shape) -> int:
        return 2 * ins[0][0]

    def fvcore_flops(self, a: Attrs, ins: list[Shape], out: Shape) -> int:
        return 5 * numel(ins[0])

    def saved_for_backward(self, a: Attrs, ins: list[Shape], out: Shape) -> Saved:
        """The input and a mean and reciprocal std per sample and group."""
        stats = Extra("mean and rstd", per_sample=2 * a.groups)
        return Saved(inputs=(0,), extra=(stats,), overwritable=True)

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        return Lowering("nn.GroupNorm", args=(a.groups, ins[0][0]), kwargs=(("eps", a.eps, 1e-5),))

    def label(self, a: Attrs, ins: list[Shape], out: Shape) -> str:
        return f"GN {a.groups}"


@register
class LocalResponseNorm(Op):
    """Local response normalisation across channels (AlexNet, GoogLeNet)."""

    name = "lrn"
    category = "norm"
    style = NORM_STYLE
    pytorch = "nn.LocalResponseNorm"
    doc = "local response normalisation across channels"
    attrs = (
        Attr("size", "int", 5, "neighbouring channels to normalise over"),
        Attr("alpha", "float", 1e-4, "scale"),
        Attr("beta", "float", 0.75, "exponent"),
        Attr("k", "float", 1.0, "additive constant"),
    )

    def shape(self, a: Attrs, ins: list[Shape]) -> Shape:
        require_image(self.name, ins)
        return ins[0]

    def saved_for_backward(self, a: Attrs, ins: list[Shape], out: Shape) -> Saved:
        """PyTorch composes it of element-wise ops: ``input / (k + alpha * avg(x^2)) ** beta``
        keeps the input, the channel-padded squares that ``avg_pool3d`` reads (C + size - 1
        channels), and the base and result of the power."""
        c, h, w = ins[0]
        padded = Extra("padded squares", per_sample=(c + a.size - 1) * h * w)
        power = Extra("base and result of the power", per_sample=2 * numel(out))
        return Saved(inputs=(0,), extra=(padded, power))

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        return Lowering("nn.LocalResponseNorm", args=(a.size,), kwargs=(
            ("alpha", a.alpha, 1e-4), ("beta", a.beta, 0.75), ("k", a.k, 1.0)))

    def label(self, a: Attrs, ins: list[Shape], out: Shape) -> str:
        return "LRN"
