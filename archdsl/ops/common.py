"""Helpers shared by the op modules: shape checks, sliding-window geometry, lowering and labels.

Sliding-window geometry (convolution and pooling) follows PyTorch exactly: see
:func:`window_out`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .base import RF, OpError, Shape

__all__ = [
    "Pads",
    "Pair",
    "effective_kernel",
    "fmt_shape",
    "int_or_pair",
    "kernel_text",
    "numel",
    "require_image",
    "stride_text",
    "symmetric",
    "violated",
    "window_out",
    "window_rf",
    "window_shape",
]

Pair = tuple[int, int]
Pads = tuple[Pair, Pair]  # ((top, bottom), (left, right))


def violated(test: Callable[[], object]) -> bool:
    """Is this validity test of a shape rule failed? Write every check of a rule through it:
    ``if violated(lambda: c % groups): raise OpError(...)``.

    The code generator runs the rules over symbolic sizes (a block's parameters); a test it cannot
    decide there (a TypeError) is not failed: the expansion checks every concrete instance.
    """
    VALIDATING[0] += 1
    try:
        return bool(test())
    except TypeError:
        return False
    finally:
        VALIDATING[0] -= 1


# How many :func:`violated` tests are running: a test inside one only validates (the code
# generator's symbolic sizes need not record it as a decision that shapes the code).
VALIDATING = [0]


def fmt_shape(shape: Shape) -> str:
    """``(64, 56, 56)`` -> ``64 x 56 x 56``."""
    return " x ".join(str(d) for d in shape)


def numel(shape: Shape) -> int:
    """Elements per sample."""
    return math.prod(shape)


def require_image(op: str, ins: list[Shape], index: int = 0) -> tuple[int, int, int]:
    """The input as ``(C, H, W)``; an OpError when it is flat."""
    shape = ins[index]
    if len(shape) != 3:
        raise OpError(f"{op} needs a C x H x W input", expected="C x H x W",
                      found=f"{fmt_shape(shape)} (flat)" if len(shape) == 1 else fmt_shape(shape),
                      hint=f"{op} works on images; apply it before `flatten`", input_index=index)
    c, h, w = shape
    return c, h, w


def effective_kernel(kernel: Pair, dilation: Pair = (1, 1)) -> Pair:
    """The span of a dilated kernel per axis: ``d * (k - 1) + 1``."""
    return (dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)


def window_out(size: int, kernel: int, stride: int, pad: tuple[int, int], dilation: int = 1,
               ceil: bool = False) -> int:
    """Output length of a sliding window along one axis, as PyTorch computes it.

    ``floor((size + lo + hi - d*(k-1) - 1 [+ stride - 1 if ceil]) / stride) + 1``; with
    ``ceil`` the last window must start inside the input or the left padding, else it is
    dropped. May return a value < 1 when the window does not fit.
    """
    lo, hi = pad
    span = dilation * (kernel - 1) + 1
    extra = stride - 1 if ceil else 0
    out = (size + lo + hi - span + extra) // stride + 1
    if ceil and (out - 1) * stride >= size + lo:
        out -= 1
    return out


def window_shape(op: str, ins: list[Shape], kernel: Pair, stride: Pair, pads: Pads,
                 dilation: Pair = (1, 1), ceil: bool = False) -> tuple[int, int]:
    """Output ``(H, W)`` of a convolution or pooling window; an OpError when it does not fit."""
    c, h, w = require_image(op, ins)
    out_h = window_out(h, kernel[0], stride[0], pads[0], dilation[0], ceil)
    out_w = window_out(w, kernel[1], stride[1], pads[1], dilation[1], ceil)
    if violated(lambda: out_h < 1 or out_w < 1):
        raise _window_too_large(op, (c, h, w), kernel, pads, dilation)
    return out_h, out_w


def _window_too_large(op: str, shape: Shape, kernel: Pair, pads: Pads, dilation: Pair) -> OpError:
    _, h, w = shape
    padded = (h + sum(pads[0]), w + sum(pads[1]))
    span = effective_kernel(kernel, dilation)
    window = f"{kernel_text(kernel)} kernel"
    if span != kernel:
        window += f" with dilation {int_or_pair(dilation)} (spans {kernel_text(span)})"
    return OpError(
        f"{op} window is larger than its input: {window} on a {h} x {w} input "
        f"({padded[0]} x {padded[1]} with padding)",
        expected=f"a padded input of at least {span[0]} x {span[1]}",
        found=f"input {fmt_shape(shape)}, padded to {padded[0]} x {padded[1]}",
        hint="use a smaller kernel or more padding, or downsample less before this layer",
        input_index=0)


def window_rf(kernel: Pair, stride: Pair, pads: Pads, dilation: Pair = (1, 1)) -> RF:
    """Receptive-field geometry of a sliding window (left/top padding)."""
    return RF(kernel=effective_kernel(kernel, dilation), stride=stride,
              padding=(pads[0][0], pads[1][0]))


def int_or_pair(value: Pair) -> int | Pair:
    """For generated code: ``(3, 3)`` -> ``3``; ``(1, 7)`` stays a tuple."""
    return value[0] if value[0] == value[1] else value


def kernel_text(value: Pair) -> str:
    """``(3, 3)`` -> ``3x3`` (labels and messages)."""
    return f"{value[0]}x{value[1]}"


def stride_text(stride: Pair) -> str:
    """The label suffix for a downsampling stride: ``, /2``, ``, /2x1``, or empty for 1."""
    if stride == (1, 1):
        return ""
    return f", /{stride[0]}" if stride[0] == stride[1] else f", /{kernel_text(stride)}"


def symmetric(padding: Pair) -> Pads:
    """Per-axis ``(lo, hi)`` pads from PyTorch's symmetric ``padding=(ph, pw)``."""
    return ((padding[0], padding[0]), (padding[1], padding[1]))

