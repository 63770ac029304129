"""The primitive ops against PyTorch: shapes, counts, fvcore FLOPs, lowering, and every OpError.

Each case names an op, its attributes as written in a spec, its input shapes and a hand-written
PyTorch reference. The op's static answers must match what the reference module really does; the
module built from the op's :class:`Lowering` must compute the same function as the reference.
"""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch

from archdsl.codegen import emit
from archdsl.ops import REGISTRY, RF, Attr, Lowering, OpError, get_op
from archdsl.ops.common import window_out

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
nn = torch.nn
F = torch.nn.functional


# --- the reference cases -----------------------------------------------------------------------

class Fn(nn.Module):
    """A functional reference: ``forward(*xs) = fn(*xs)``."""

    def __init__(self, fn: Callable[..., Any]):
        super().__init__()
        self.fn = fn

    def forward(self, *xs):
        return self.fn(*xs)


def F_module(fn: Callable[..., Any], **kwargs: Any) -> nn.Module:
    """A functional reference with keyword arguments: ``F_module(F.interpolate, scale_factor=2)``."""
    return Fn(lambda x: fn(x, **kwargs))


class LayerScaleRef(nn.Module):
    """torchvision's ConvNeXt ``CNBlock``: ``layer_scale * x``, a bare (C, 1, 1) parameter."""

    def __init__(self, channels: int, init: float):
        super().__init__()
        self.layer_scale = nn.Parameter(torch.ones(channels, 1, 1) * init)

    def forward(self, x):
        return self.layer_scale * x


@dataclass
class Case:
    id: str
    op: str
    attrs: dict[str, Any]
    ins: list[tuple[int, ...]]
    reference: Callable[[], nn.Module]
    label: str | None = None

    def __str__(self) -> str:
        return self.id


IMG = (3, 16, 16)

CASES = [
    # conv
    Case("conv-3x3", "conv", {"out": 8, "k": 3}, [IMG], lambda: nn.Conv2d(3, 8, 3), "3x3 conv 8"),
    Case("conv-s2-nobias", "conv", {"out": 8, "k": 3, "stride": 2, "pad": 1, "bias": False},
         [IMG], lambda: nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), "3x3 conv 8, /2"),
    Case("conv-7x7-stem", "conv", {"out": 16, "k": 7, "stride": 2, "pad": 3, "bias": False},
         [(3, 33, 31)], lambda: nn.Conv2d(3, 16, 7, stride=2, padding=3, bias=False)),
    Case("conv-same-odd", "conv", {"out": 8, "k": 3, "pad": "same"}, [(3, 15, 16)],
         lambda: nn.Conv2d(3, 8, 3, padding="same")),
    Case("conv-same-even", "conv", {"out": 8, "k": 4, "pad": "same"}, [(3, 15, 16)],
         lambda: nn.Conv2d(3, 8, 4, padding="same")),
    Case("conv-same-dilated-even", "conv", {"out": 4, "k": 2, "dilation": 3, "pad": "same"},
         [(3, 9, 10)], lambda: nn.Conv2d(3, 4, 2, dilation=3, padding="same")),
    Case("conv-same-1x7", "conv", {"out": 4, "k": [1, 7], "pad": "same"}, [(3, 9, 10)],
         lambda: nn.Conv2d(3, 4, (1, 7), padding="same")),
    Case("conv-valid", "conv", {"out": 8, "k": 5, "pad": "valid"}, [IMG],
         lambda: nn.Conv2d(3, 8, 5, padding="valid")),
    Case("conv-groups", "conv", {"out": 16, "k": 3, "groups": 4, "pad": 1}, [(8, 10, 10)],
         lambda: nn.Conv2d(8, 16, 3, padding=1, groups=4), "3x3 conv 16, g4"),
    Case("conv-depthwise", "conv",
         {"out": 32, "k": 3, "groups": 32, "pad": 1, "stride": 2, "bias": False},
         [(32, 15, 15)], lambda: nn.Conv2d(32, 32, 3, stride=2, padding=1, groups=32, bias=False),
         "3x3 dwconv 32, /2"),
    Case("conv-depthwise-x2", "conv", {"out": 64, "k": 3, "groups": 32}, [(32, 6, 6)],
         lambda: nn.Conv2d(32, 64, 3, groups=32), "3x3 dwconv 64"),
    Case("conv-dilated", "conv", {"out": 8, "k": 3, "dilation": 2, "pad": 2}, [IMG],
         lambda: nn.Conv2d(3, 8, 3, padding=2, dilation=2), "3x3 conv 8, d2"),
    Case("conv-1x7", "conv", {"out": 12, "k": [1, 7], "pad": [0, 3]}, [(6, 17, 17)],
         lambda: nn.Conv2d(6, 12, (1, 7), padding=(0, 3)), "1x7 conv 12"),
    Case("conv-7x1", "conv", {"out": 12, "k": [7, 1], "pad": [3, 0], "bias": False},
         [(6, 17, 17)], lambda: nn.Conv2d(6, 12, (7, 1), padding=(3, 0), bias=False),
         "7x1 conv 12"),
    Case("conv-even-2x2-s2", "conv", {"out": 8, "k": 2, "stride": 2}, [(3, 9, 9)],
         lambda: nn.Conv2d(3, 8, 2, stride=2)),
    Case("conv-stride-2x1", "conv", {"out": 4, "k": 3, "stride": [2, 1], "pad": 1}, [IMG],
         lambda: nn.Conv2d(3, 4, 3, stride=(2, 1), padding=1), "3x3 conv 4, /2x1"),
    Case("conv-1x1-s2-odd", "conv", {"out": 4, "k": 1, "stride": 2}, [(3, 7, 7)],
         lambda: nn.Conv2d(3, 4, 1, stride=2)),
    Case("conv-kernel-fits-with-pad", "conv", {"out": 4, "k": 5, "pad": 2}, [(3, 3, 3)],
         lambda: nn.Conv2d(3, 4, 5, padding=2)),
    # linear
    Case("linear", "linear", {"out": 10}, [(32,)], lambda: nn.Linear(32, 10), "fc 10"),
    Case("linear-nobias", "linear", {"out": 7, "bias": False}, [(20,)],
         lambda: nn.Linear(20, 7, bias=False)),
    Case("linear-last", "linear", {"out": 12, "over": "last"}, [(5, 4, 6)],
         lambda: nn.Linear(6, 12), "fc 12"),
    Case("linear-last-flat", "linear", {"out": 3, "over": "last", "bias": False}, [(8,)],
         lambda: nn.Linear(8, 3, bias=False)),
    # norms
    Case("bn", "bn", {}, [(8, 5, 5)], lambda: nn.BatchNorm2d(8), "BN"),
    Case("bn-options", "bn", {"eps": 1e-3, "momentum": 0.01}, [(8, 5, 5)],
         lambda: nn.BatchNorm2d(8, eps=1e-3, momentum=0.01)),
    Case("bn-no-affine", "bn", {"affine": False}, [(8, 5, 5)],
         lambda: nn.BatchNorm2d(8, affine=False)),
    Case("bn-flat", "bn", {}, [(12,)], lambda: nn.BatchNorm1d(12)),
    Case("bn-flat-no-affine", "bn", {"affine": False}, [(12,)],
         lambda: nn.BatchNorm1d(12, affine=False)),
    Case("layernorm", "layernorm", {}, [(4, 3, 5)], lambda: nn.LayerNorm([4, 3, 5]), "LN"),
    Case("layernorm-flat", "layernorm", {"eps": 1e-6}, [(16,)],
         lambda: nn.LayerNorm(16, eps=1e-6)),
    Case("layernorm-last", "layernorm", {"over": "last", "eps": 1e-6}, [(5, 4, 8)],
         lambda: nn.LayerNorm(8, eps=1e-6), "LN last"),
    Case("layernorm-channels", "layernorm", {"over": "channels", "eps": 1e-6}, [(8, 5, 4)],
         lambda: __import__("torchvision").models.convnext.LayerNorm2d(8, eps=1e-6), "LN 2d"),
    Case("groupnorm", "groupnorm", {"groups": 4}, [(16, 5, 5)], lambda: nn.GroupNorm(4, 16),
         "GN 4"),
    Case("groupnorm-eps", "groupnorm", {"groups": 2, "eps": 1e-3}, [(8, 3, 3)],
         lambda: nn.GroupNorm(2, 8, eps=1e-3)),
    Case("lrn", "lrn", {}, [(16, 6, 6)], lambda: nn.LocalResponseNorm(5), "LRN"),
    Case("lrn-options", "lrn", {"size": 3, "alpha": 2e-4, "beta": 0.5, "k": 2},
         [(16, 6, 6)], lambda: nn.LocalResponseNorm(3, alpha=2e-4, beta=0.5, k=2.0)),
    # activations
    Case("relu", "relu", {}, [(4, 5, 5)], nn.ReLU, "ReLU"),
    Case("relu6", "relu6", {}, [(4, 5, 5)], nn.ReLU6),
    Case("sigmoid", "sigmoid", {}, [(4, 5, 5)], nn.Sigmoid),
    Case("tanh", "tanh", {}, [(4, 5, 5)], nn.Tanh),
    Case("gelu", "gelu", {}, [(4, 5, 5)], nn.GELU),
    Case("gelu-tanh", "gelu", {"approximate": "tanh"}, [(4, 5, 5)],
         lambda: nn.GELU(approximate="tanh")),
    Case("elu", "elu", {}, [(4, 5, 5)], nn.ELU, "ELU"),
    Case("elu-alpha", "elu", {"alpha": 0.5}, [(6,)], lambda: nn.ELU(alpha=0.5)),
    Case("celu", "celu", {"alpha": 2}, [(4, 5, 5)], lambda: nn.CELU(alpha=2.0), "CELU"),
    Case("selu", "selu", {}, [(4, 5, 5)], nn.SELU),
    Case("mish", "mish", {}, [(4, 5, 5)], nn.Mish),
    Case("hardtanh", "hardtanh", {"min": -2, "max": 3.5}, [(4, 5, 5)],
         lambda: nn.Hardtanh(-2.0, 3.5)),
    Case("softplus", "softplus", {"beta": 2, "threshold": 10}, [(4, 5, 5)],
         lambda: nn.Softplus(beta=2.0, threshold=10.0)),
    Case("logsigmoid", "logsigmoid", {}, [(4, 5, 5)], nn.LogSigmoid),
    Case("tanhshrink", "tanhshrink", {}, [(4, 5, 5)], nn.Tanhshrink),
    Case("prelu", "prelu", {}, [(4, 5, 5)], nn.PReLU, "PReLU"),
    Case("prelu-per-channel", "prelu", {"per_channel": True, "init": 0.1}, [(4, 5, 5)],
         lambda: nn.PReLU(4, init=0.1), "PReLU per channel"),
    Case("silu", "silu", {}, [(4, 5, 5)], nn.SiLU),
    Case("hardswish", "hardswish", {}, [(4, 5, 5)], nn.Hardswish),
    Case("hardsigmoid", "hardsigmoid", {}, [(4, 1, 1)], nn.Hardsigmoid),
    Case("leaky_relu", "leaky_relu", {}, [(4, 5, 5)], nn.LeakyReLU),
    Case("leaky_relu-slope", "leaky_relu", {"slope": 0.2}, [(10,)], lambda: nn.LeakyReLU(0.2)),
    Case("softmax", "softmax", {}, [(10,)], lambda: nn.Softmax(dim=1)),
    Case("softmax-last", "softmax", {"dim": -1}, [(4, 3, 5)], lambda: nn.Softmax(dim=-1)),
    Case("softmax-paths", "softmax", {"dim": 1}, [(2, 6, 1, 1)], lambda: nn.Softmax(dim=1)),
    # windowed pools
    Case("maxpool-resnet", "maxpool", {"k": 3, "stride": 2, "pad": 1}, [(8, 15, 15)],
         lambda: nn.MaxPool2d(3, stride=2, padding=1), "3x3 maxpool, /2"),
    Case("maxpool-default-stride", "maxpool", {"k": 2}, [(8, 9, 9)], lambda: nn.MaxPool2d(2),
         "2x2 maxpool, /2"),
    Case("maxpool-ceil", "maxpool", {"k": 3, "stride": 2, "ceil": True}, [(8, 14, 14)],
         lambda: nn.MaxPool2d(3, stride=2, ceil_mode=True)),
    Case("maxpool-ceil-last-window-dropped", "maxpool",
         {"k": 2, "stride": 2, "pad": 1, "ceil": True}, [(2, 5, 5)],
         lambda: nn.MaxPool2d(2, stride=2, padding=1, ceil_mode=True)),
    Case("maxpool-ceil-s1", "maxpool", {"k": 3, "stride": 1, "ceil": True}, [(2, 5, 6)],
         lambda: nn.MaxPool2d(3, stride=1, ceil_mode=True)),
    Case("maxpool-dilated", "maxpool", {"k": 3, "stride": 1, "pad": 1, "dilation": 2},
         [(2, 9, 9)], lambda: nn.MaxPool2d(3, stride=1, padding=1, dilation=2)),
    Case("maxpool-1x3", "maxpool", {"k": [1, 3], "stride": [1, 2], "pad": [0, 1]},
         [(2, 6, 9)], lambda: nn.MaxPool2d((1, 3), stride=(1, 2), padding=(0, 1))),
    Case("avgpool", "avgpool", {"k": 2}, [(4, 8, 9)], lambda: nn.AvgPool2d(2), "2x2 avgpool, /2"),
    Case("avgpool-s1-no-count-pad", "avgpool",
         {"k": 3, "stride": 1, "pad": 1, "count_include_pad": False}, [(4, 6, 6)],
         lambda: nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False), "3x3 avgpool"),
    Case("avgpool-ceil", "avgpool", {"k": 3, "stride": 2, "ceil": True}, [(4, 8, 8)],
         lambda: nn.AvgPool2d(3, stride=2, ceil_mode=True)),
    Case("avgpool-ceil-pad", "avgpool", {"k": 3, "stride": 2, "pad": 1, "ceil": True},
         [(4, 6, 7)], lambda: nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True)),
    # adaptive and global pools
    Case("adaptive_avgpool-1", "adaptive_avgpool", {"size": 1}, [(8, 7, 7)],
         lambda: nn.AdaptiveAvgPool2d(1), "adaptive avgpool 1x1"),
    Case("adaptive_avgpool-2x3", "adaptive_avgpool", {"size": [2, 3]}, [(8, 7, 7)],
         lambda: nn.AdaptiveAvgPool2d((2, 3))),
    Case("adaptive_avgpool-upsample", "adaptive_avgpool", {"size": 4}, [(8, 2, 2)],
         lambda: nn.AdaptiveAvgPool2d(4)),
    Case("adaptive_maxpool", "adaptive_maxpool", {"size": 2}, [(8, 7, 7)],
         lambda: nn.AdaptiveMaxPool2d(2)),
    Case("adaptive_maxpool-3x1", "adaptive_maxpool", {"size": [3, 1]}, [(8, 7, 5)],
         lambda: nn.AdaptiveMaxPool2d((3, 1))),
    Case("global_avgpool", "global_avgpool", {}, [(16, 7, 7)], lambda: nn.AdaptiveAvgPool2d(1),
         "global avgpool"),
    Case("mean", "mean", {}, [(16, 7, 7)], lambda: Fn(lambda x: x.mean([2, 3])), "global mean"),
    Case("mean-keepdim", "mean", {"keepdim": True}, [(16, 7, 5)],
         lambda: Fn(lambda x: x.mean((2, 3), keepdim=True))),
    # merges
    Case("add", "add", {}, [(4, 5, 5), (4, 5, 5)], lambda: Fn(lambda a, b: a + b), "+"),
    Case("add-3", "add", {}, [(4, 5, 5)] * 3, lambda: Fn(lambda a, b, c: a + b + c)),
    Case("add-flat", "add", {}, [(6,), (6,)], lambda: Fn(lambda a, b: a + b)),
    Case("mul", "mul", {}, [(4, 5, 5), (4, 5, 5)], lambda: Fn(lambda a, b: a * b), "x"),
    Case("mul-gate", "mul", {}, [(4, 5, 5), (4, 1, 1)], lambda: Fn(lambda a, b: a * b)),
    Case("mul-gate-first", "mul", {}, [(4, 1, 1), (4, 5, 5)], lambda: Fn(lambda a, b: a * b)),
    Case("concat", "concat", {}, [(4, 5, 5), (6, 5, 5)], lambda: Fn(lambda a, b: torch.cat([a, b], 1)),
         "concat"),
    Case("concat-3", "concat", {}, [(4, 3, 3), (2, 3, 3), (1, 3, 3)],
         lambda: Fn(lambda *xs: torch.cat(xs, 1))),
    Case("concat-flat", "concat", {}, [(4,), (6,)], lambda: Fn(lambda *xs: torch.cat(xs, 1))),
    # reshape, routing, regularisation
    Case("flatten", "flatten", {}, [(8, 3, 3)], nn.Flatten, "flatten"),
    Case("flatten-flat", "flatten", {}, [(10,)], nn.Flatten),
    Case("identity", "identity", {}, [(4, 5, 5)], nn.Identity, "identity"),
    Case("channel_shuffle", "channel_shuffle", {"groups": 2}, [(8, 4, 4)],
         lambda: nn.ChannelShuffle(2), "shuffle g2"),
    Case("channel_shuffle-4", "channel_shuffle", {"groups": 4}, [(12, 3, 3)],
         lambda: nn.ChannelShuffle(4)),
    Case("channel_split", "channel_split", {"index": 0}, [(8, 4, 4)],
         lambda: Fn(lambda x: x.chunk(2, 1)[0]), "split 0/2"),
    Case("channel_split-last", "channel_split", {"parts": 4, "index": 3}, [(8, 4, 4)],
         lambda: Fn(lambda x: x.chunk(4, 1)[3])),
    Case("pad_channels", "pad_channels", {"out": 16, "stride": 2}, [(8, 7, 7)],
         lambda: Fn(lambda x: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 4, 4))),
         "pad channels 16, /2"),
    Case("pad_channels-s1", "pad_channels", {"out": 8}, [(4, 6, 6)],
         lambda: Fn(lambda x: F.pad(x, (0, 0, 0, 0, 2, 2)))),
    Case("dropout", "dropout", {}, [(4, 5, 5)], nn.Dropout, "dropout 0.5"),
    Case("dropout-p", "dropout", {"p": 0.2}, [(10,)], lambda: nn.Dropout(0.2), "dropout 0.2"),
    Case("split-sizes", "channel_split", {"sizes": [6, 2], "index": 0}, [(8, 3, 3)],
         lambda: Fn(lambda x: x[:, :6]), "split 0/6+2"),
    Case("split-sizes-last", "channel_split", {"sizes": [3, 4, 1], "index": 2}, [(8, 3, 3)],
         lambda: Fn(lambda x: x[:, 7:])),
    Case("stochastic_depth", "stochastic_depth", {"p": 0.2}, [(4, 5, 5)],
         lambda: __import__("torchvision").ops.StochasticDepth(0.2, "row"),
         "stochastic depth 0.2"),
    Case("stochastic_depth-batch", "stochastic_depth", {"p": 0.5, "mode": "batch"}, [(6,)],
         lambda: __import__("torchvision").ops.StochasticDepth(0.5, "batch"),
         "stochastic depth 0.5, batch"),
    Case("permute-nhwc", "permute", {"dims": [0, 2, 3, 1]}, [(8, 5, 4)],
         lambda: Fn(lambda x: x.permute(0, 2, 3, 1)), "permute 0231"),
    Case("permute-nchw", "permute", {"dims": [0, 3, 1, 2]}, [(5, 4, 8)],
         lambda: Fn(lambda x: x.permute(0, 3, 1, 2))),
    Case("reshape-paths", "reshape", {"shape": [2, -1, 1, 1]}, [(12, 1, 1)],
         lambda: Fn(lambda x: x.view(x.shape[0], 2, 6, 1, 1)), "reshape 2 x 6 x 1 x 1"),
    Case("reshape-back", "reshape", {"shape": [12, 1, 1]}, [(2, 6, 1, 1)],
         lambda: Fn(lambda x: x.reshape(x.shape[0], 12, 1, 1))),
    Case("reshape-flat", "reshape", {"shape": [-1]}, [(3, 2, 2)],
         lambda: Fn(lambda x: x.reshape(x.shape[0], -1))),
    # scales
    Case("scale", "scale", {"value": 0.17}, [(4, 5, 5)], lambda: Fn(lambda x: 0.17 * x),
         "x 0.17"),
    Case("layer_scale", "layer_scale", {}, [(6, 3, 3)], lambda: LayerScaleRef(6, 1e-6),
         "layer scale"),
    # resampling
    Case("upsample-nearest", "upsample", {"scale": 2}, [(4, 5, 3)],
         lambda: nn.Upsample(scale_factor=2.0), "upsample x2"),
    Case("upsample-bilinear-size", "upsample", {"size": [7, 9], "mode": "bilinear"},
         [(4, 5, 3)], lambda: nn.Upsample(size=(7, 9), mode="bilinear"),
         "upsample to 7x9, bilinear"),
    Case("upsample-bilinear-align", "upsample",
         {"scale": 1.5, "mode": "bilinear", "align_corners": True}, [(2, 5, 3)],
         lambda: nn.Upsample(scale_factor=1.5, mode="bilinear", align_corners=True)),
    Case("upsample-fraction", "upsample", {"scale": 0.5}, [(2, 5, 7)],
         lambda: F_module(F.interpolate, scale_factor=0.5)),
]


def test_every_op_has_a_case():
    assert set(REGISTRY) == {case.op for case in CASES}


# --- helpers -----------------------------------------------------------------------------------

def analyse(case: Case):
    """The op, its attributes and its output shape, through the path the expander uses."""
    op = get_op(case.op)
    attrs = op.bind(case.attrs, case.ins)
    return op, attrs, op.shape(attrs, case.ins)


def inputs(case: Case, batch: int) -> tuple:
    return tuple(torch.randn(batch, *shape) for shape in case.ins)


def randomised(module: nn.Module) -> nn.Module:
    """Random parameters and running statistics, so weight-loading checks mean something."""
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-1, 1)
        for name, b in module.named_buffers():
            if b.is_floating_point():
                b.uniform_(0.5, 1.5)
    return module.eval()


def reference_macs(module: nn.Module, xs: tuple) -> int:
    """Per-sample multiply-accumulates of the conv and linear layers, counted with hooks."""
    total = 0

    def hook(m, args, out):
        nonlocal total
        if isinstance(m, nn.Conv2d):
            total += out[0].numel() * m.weight[0].numel()
        elif isinstance(m, nn.Linear):
            total += out[0].numel() * m.in_features

    handles = [m.register_forward_hook(hook) for m in module.modules()]
    module.eval()
    with torch.no_grad():
        module(*(x[:1] for x in xs))
    for h in handles:
        h.remove()
    return total


class Lowered(nn.Module):
    """A module built only from an op's Lowering, the way the code generator would write it."""

    def __init__(self, low: Lowering, n_inputs: int):
        super().__init__()
        names = {f"x{i}": f"xs[{i}]" for i in range(n_inputs)}
        self.expr = low.forward.format(m="self.m", x="xs[0]", xs=", ".join(names.values()),
                                       **names)
        # the imports the generated module would write for the names this code uses
        used = emit._used_names(f"{low.module or 'None'}\n{self.expr}")
        self.namespace: dict[str, Any] = {}
        for line in (line for group in emit.import_lines(used) for line in group):
            exec(line, self.namespace)  # noqa: S102 - the code generator's own import lines
        self.m = None
        if low.parameter is not None:  # a bare parameter: nn.Parameter(torch.ones(*shape) * fill)
            shape, fill = low.parameter
            self.m = nn.Parameter(torch.ones(*shape) * fill)
        elif low.module is not None:
            kwargs = {name: value for name, value, default in low.kwargs if value != default}
            self.m = eval(low.module, self.namespace)(*low.args, **kwargs)

    def forward(self, *xs):
        return eval(self.expr, self.namespace, {"self": self, "xs": xs})


# --- the parametrised checks against PyTorch ---------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=str)
def test_shape_matches_forward(case: Case):
    _, _, out = analyse(case)
    module = randomised(case.reference())
    with torch.no_grad():
        y = module(*inputs(case, batch=2))
    assert tuple(y.shape[1:]) == out


@pytest.mark.parametrize("case", CASES, ids=str)
def test_params_buffers_macs(case: Case):
    op, a, out = analyse(case)
    module = case.reference()
    assert op.params(a, case.ins, out) == sum(p.numel() for p in module.parameters())
    assert op.buffers(a, case.ins, out) == sum(b.numel() for b in module.buffers())
    assert op.macs(a, case.ins, out) == reference_macs(module, inputs(case, batch=2))


def test_fvcore_counts_string_padding_as_zero():
    """fvcore has no handle for aten::_convolution_mode (a conv with padding='same')."""
    import fvcore.nn as fvcore_nn
    analysis = fvcore_nn.FlopCountAnalysis(nn.Conv2d(3, 4, 3, padding="same"),
                                           (torch.randn(1, 3, 8, 8),))
    analysis.unsupported_ops_warnings(False)
    assert analysis.total() == 0


@pytest.mark.parametrize("case", CASES, ids=str)
def test_fvcore_flops(case: Case):
    import fvcore.nn as fvcore_nn
    op, a, out = analyse(case)
    module = Lowered(op.lower(a, case.ins, out), len(case.ins)).eval()  # the generated code
    analysis = fvcore_nn.FlopCountAnalysis(module, inputs(case, batch=1))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    assert op.fvcore_flops(a, case.ins, out) == analysis.total()


def test_layer_scale_lowers_to_a_bare_parameter():
    """torchvision's key is ``<block>.layer_scale``: a bare (C, 1, 1) parameter, no submodule."""
    op = get_op("layer_scale")
    a = op.bind({"init": 0.5}, [(4, 2, 2)])
    low = op.lower(a, [(4, 2, 2)], (4, 2, 2))
    assert low.module is None and low.parameter == ((4, 1, 1), 0.5) and low.has_attribute
    lowered = Lowered(low, 1)
    assert [(name, tuple(p.shape)) for name, p in lowered.named_parameters()] == [("m", (4, 1, 1))]
    assert torch.equal(lowered.m, torch.full((4, 1, 1), 0.5))


@pytest.mark.parametrize("mode", ["row", "batch"])
def test_stochastic_depth_trains_like_torchvision(mode: str):
    """In training, the lowered module drops what torchvision's drops (same random stream)."""
    import torchvision

    op = get_op("stochastic_depth")
    ins = [(3, 2, 2)]
    a = op.bind({"p": 0.5, "mode": mode}, ins)
    lowered = Lowered(op.lower(a, ins, op.shape(a, ins)), 1).train()
    reference = torchvision.ops.StochasticDepth(0.5, mode).train()
    x = torch.rand(16, 3, 2, 2) + 1  # no zeros of its own
    outputs = []
    for module in (lowered, reference):
        torch.manual_seed(0)
        outputs.append(torch.stack([module(x) for _ in range(4)]))
    torch.testing.assert_close(outputs[0], outputs[1])
    dropped = outputs[0].flatten(2).eq(0).all(dim=2)  # per (draw, sample)
    assert dropped.any() and not dropped.all()
    survivors = outputs[0].ne(0)
    scaled = (x / (1 - 0.5)).expand_as(outputs[0])  # what survives is scaled by 1 / (1 - p)
    torch.testing.assert_close(outputs[0][survivors], scaled[survivors])


@pytest.mark.parametrize("case", CASES, ids=str)
def test_lowering_computes_the_reference(case: Case):
    op, a, out = analyse(case)
    reference = randomised(case.reference())
    lowered = Lowered(op.lower(a, case.ins, out), len(case.ins)).eval()
    if isinstance(lowered.m, nn.Parameter):
        (value,) = reference.state_dict().values()
        lowered.load_state_dict({"m": value}, strict=True)
    elif lowered.m is not None:
        lowered.m.load_state_dict(reference.state_dict(), strict=True)
    else:
        assert not reference.state_dict()
    xs = inputs(case, batch=2)
    with torch.no_grad():
        torch.testing.assert_close(lowered(*xs), reference(*xs))


@pytest.mark.parametrize("case", [c for c in CASES if c.label], ids=str)
def test_label(case: Case):
    op, a, out = analyse(case)
    assert op.label(a, case.ins, out) == case.label


WINDOW_CASES = [c for c in CASES if c.op in ("conv", "avgpool")]


@pytest.mark.parametrize("case", WINDOW_CASES, ids=str)
def test_rf_geometry_matches_gradient(case: Case):
    """Output pixel (i, j) sees input rows i*s - p .. i*s - p + k_eff - 1 (clipped)."""
    op, a, out = analyse(case)
    rf = op.rf(a, case.ins, out)
    module = randomised(case.reference())
    with torch.no_grad():
        for p in module.parameters():
            p.abs_().add_(0.1)  # no accidental zero weights
    x = torch.rand(1, *case.ins[0], requires_grad=True)
    i, j = out[1] // 2, out[2] // 2
    module(x)[0, :, i, j].sum().backward()
    rows = x.grad[0].abs().sum(dim=(0, 2)).nonzero().flatten()
    cols = x.grad[0].abs().sum(dim=(0, 1)).nonzero().flatten()
    for axis, seen, centre, size in ((0, rows, i, case.ins[0][1]), (1, cols, j, case.ins[0][2])):
        first = centre * rf.stride[axis] - rf.padding[axis]
        last = first + rf.kernel[axis] - 1
        assert (seen.min().item(), seen.max().item()) == (max(first, 0), min(last, size - 1))


def torch_window_out(size: int, k: int, s: int, p: int, d: int, ceil: bool, pool: bool) -> int:
    """PyTorch's own answer along H (0 when it refuses because the window does not fit)."""
    x = torch.zeros(1, 1, size, 1)
    try:
        if pool:
            y = F.max_pool2d(x, (k, 1), (s, 1), (p, 0), (d, 1), ceil_mode=ceil)
        else:
            y = F.conv2d(x, torch.zeros(1, 1, k, 1), stride=(s, 1), padding=(p, 0), dilation=(d, 1))
    except RuntimeError:
        return 0
    return y.shape[2]


def test_window_rule_matches_pytorch_exhaustively():
    for size, k, s, d in itertools.product(range(1, 10), range(1, 5), range(1, 4), range(1, 3)):
        for p, ceil in itertools.product(range(k // 2 + 1), (False, True)):
            ours = max(window_out(size, k, s, (p, p), d, ceil), 0)
            assert ours == torch_window_out(size, k, s, p, d, ceil, pool=True), (size, k, s, p, d, ceil)
        for p in range(3):
            ours = max(window_out(size, k, s, (p, p), d), 0)
            assert ours == torch_window_out(size, k, s, p, d, False, pool=False), (size, k, s, p, d)


# --- receptive field, depth and categories -----------------------------------------------------

def test_rf_of_global_and_pointwise_ops():
    for name, attrs, ins in [("linear", {"out": 3}, [(8,)]), ("flatten", {}, [(2, 3, 3)]),
                             ("global_avgpool", {}, [(2, 3, 3)]),
                             ("adaptive_maxpool", {"size": 2}, [(2, 5, 5)])]:
        op = get_op(name)
        a = op.bind(attrs, ins)
        assert op.rf(a, ins, op.shape(a, ins)) == RF(global_=True), name
    for name in ("relu", "bn", "add", "dropout"):
        op = get_op(name)
        assert op.rf(op.bind({}, [(2, 3, 3)] * 2), [(2, 3, 3)] * 2, (2, 3, 3)) == RF(), name


def test_rf_of_conv_same_and_dilation():
    op = get_op("conv")
    ins = [(3, 9, 9)]
    a = op.bind({"out": 4, "k": [2, 3], "dilation": [3, 1], "pad": "same"}, ins)
    rf = op.rf(a, ins, op.shape(a, ins))
    assert (rf.kernel, rf.stride, rf.padding) == ((4, 3), (1, 1), (1, 1))


def test_depth_and_categories():
    assert {name for name, op in REGISTRY.items() if op.counts_in_depth} == {"conv", "linear"}
    allowed = {"conv", "linear", "norm", "act", "pool", "merge", "reshape", "regularize"}
    assert {op.category for op in REGISTRY.values()} <= allowed
    assert get_op("dropout").category == "regularize"
    for op in REGISTRY.values():
        assert op.doc and op.pytorch, op.name
        assert all(attr.doc for attr in op.attrs), op.name


def test_merge_arity_and_inplace_hints():
    for name in ("add", "mul", "concat"):
        assert get_op(name).min_inputs == 2 and get_op(name).max_inputs is None
    assert get_op("conv").max_inputs == 1
    relu = get_op("relu")
    assert relu.lower(relu.bind({}, [(2,)]), [(2,)], (2,)).inplace_ok
    sigmoid = get_op("sigmoid")
    assert not sigmoid.lower(sigmoid.bind({}, [(2,)]), [(2,)], (2,)).inplace_ok


def test_conv_lowering_omits_defaults_and_keeps_same():
    op = get_op("conv")
    ins = [(3, 8, 8)]
    a = op.bind({"out": 4, "k": [1, 7], "pad": "same", "bias": False}, ins)
    low = op.lower(a, ins, op.shape(a, ins))
    assert low.module == "nn.Conv2d" and low.args == (3, 4)
    written = {name: value for name, value, default in low.kwargs if value != default}
    assert written == {"kernel_size": (1, 7), "padding": "same", "bias": False}


def test_global_avgpool_lowers_like_torchvision():
    op = get_op("global_avgpool")
    assert op.lower(op.bind({}, [(8, 7, 7)]), [(8, 7, 7)], (8, 1, 1)) == Lowering(
        "nn.AdaptiveAvgPool2d", args=(1,))


def test_concat_and_channel_split_templates():
    concat = get_op("concat")
    low = concat.lower(concat.bind({}, [(1, 2, 2)] * 2), [(1, 2, 2)] * 2, (2, 2, 2))
    assert (low.module, low.forward) == (None, "torch.cat([{xs}], 1)")
    add = get_op("add")
    assert add.lower(add.bind({}, []), [(1,)] * 3, (1,)).forward == "{x0} + {x1} + {x2}"
    split = get_op("channel_split")
    ins = [(8, 2, 2)]
    a = split.bind({"parts": 4, "index": 1}, ins)
    assert split.lower(a, ins, split.shape(a, ins)).forward == "{x}.chunk(4, 1)[1]"


# --- attributes: coercion and resolution ----------------------------------------------------------

def test_coerce_normalises():
    assert Attr("k", "pair").coerce(3) == (3, 3)
    assert Attr("k", "pair").coerce([1, 7]) == (1, 7)
    assert Attr("pad", "padding", choices=("same", "valid")).coerce(0) == (0, 0)
    assert Attr("pad", "padding", choices=("same", "valid")).coerce("same") == "same"
    assert Attr("eps", "float").coerce(1) == 1.0 and isinstance(Attr("eps", "float").coerce(1),
                                                                float)
    assert Attr("stride", "optional_pair", None).coerce(None) is None
    assert Attr("index", "int", minimum=0).coerce(0) == 0
    assert Attr("mode", "choice", choices=("a", "b")).coerce("b") == "b"


def test_attr_rejects_unknown_kind():
    with pytest.raises(ValueError, match="unknown kind"):
        Attr("x", "integer")


def test_resolve_fills_defaults_in_order():
    a = get_op("conv").resolve({"k": 3, "out": 8})
    assert a == {"out": 8, "k": (3, 3), "stride": (1, 1), "pad": (0, 0), "dilation": (1, 1),
                 "groups": 1, "bias": True}
    assert list(a) == ["out", "k", "stride", "pad", "dilation", "groups", "bias"]
    assert get_op("relu").resolve(None) == {}


def test_pool_stride_defaults_to_kernel():
    op = get_op("maxpool")
    assert op.resolve({"k": 3})["stride"] is None
    a = op.finalize(op.resolve({"k": [2, 3]}), [(1, 8, 8)])
    assert a["stride"] == (2, 3)
    assert op.finalize(a, [(1, 8, 8)]) == a  # idempotent
    assert op.bind({"k": 3, "stride": 1}, [(1, 8, 8)]).stride == (1, 1)


# --- every OpError path ---------------------------------------------------------------------------

@dataclass
class Err:
    """An expected OpError: ``message`` is a regex for the message; the rest are pinned too."""

    id: str
    op: str
    attrs: dict[str, Any]
    message: str
    ins: list[tuple[int, ...]] = field(default_factory=list)
    attr: str | None = None
    input_index: int | None = None
    found: str | None = None  # regex
    hint: str | None = None  # regex

    def __str__(self) -> str:
        return self.id


def check_error(error: OpError, case: Err) -> None:
    assert error.attr == case.attr
    assert error.input_index == case.input_index
    if case.found is not None:
        assert re.search(case.found, error.found), error.found
    if case.hint is not None:
        assert re.search(case.hint, error.hint), error.hint


ATTR_ERRORS = [
    Err("bool-for-int", "conv", {"out": True, "k": 3}, r"^`out` must be an integer >= 1$",
        attr="out", found=r"^true \(a boolean\)$"),
    Err("bool-for-pair", "conv", {"out": 8, "k": True},
        r"^`k` must be an integer >= 1 or a list \[h, w\] of them$", attr="k", found="boolean"),
    Err("bool-in-pair", "conv", {"out": 8, "k": [3, True]}, r"^`k` must be", attr="k",
        found=r"^\[3, true\] \(a list of 2\)$"),
    Err("float-for-int", "conv", {"out": 8.0, "k": 3}, r"^`out` must be an integer >= 1$",
        attr="out", found=r"^8\.0 \(a float\)$", hint=r"^write 8, or wrap an expression in int"),
    Err("string-for-int", "conv", {"out": "8", "k": 3}, r"^`out` must be an integer",
        attr="out", found=r"^'8' \(a string\)$"),
    Err("null", "conv", {"out": None, "k": 3}, r"^`out` must be", attr="out",
        found=r"^nothing \(null\)$"),
    Err("zero-out", "conv", {"out": 0, "k": 3}, r"^`out` must be an integer >= 1$", attr="out",
        found="^0$"),
    Err("zero-kernel", "conv", {"out": 8, "k": 0}, r"^`k` must be an integer >= 1", attr="k",
        found="^0$"),
    Err("negative-kernel", "conv", {"out": 8, "k": -3}, r"^`k` must be an integer >= 1",
        attr="k", found="^-3$"),
    Err("zero-in-pair", "conv", {"out": 8, "k": [3, 0]}, r"^`k` must be", attr="k",
        found=r"^\[3, 0\] \(a list of 2\)$"),
    Err("short-pair", "conv", {"out": 8, "k": [3]}, r"^`k` must be", attr="k",
        found=r"^\[3\] \(a list of 1\)$", hint=r"give one integer for both axes, or \[h, w\]"),
    Err("long-pair", "conv", {"out": 8, "k": [3, 3, 3]}, r"^`k` must be", attr="k",
        found="a list of 3"),
    Err("negative-pad", "conv", {"out": 8, "k": 3, "pad": -1},
        r"^`pad` must be an integer >= 0 or a list \[h, w\] of them, or one of: same, valid$",
        attr="pad", found="^-1$"),
    Err("pad-word", "conv", {"out": 8, "k": 3, "pad": "sme"}, r"^`pad` must be", attr="pad",
        found=r"^'sme' \(a string\)$", hint=r"^did you mean `same`\?$"),
    Err("string-for-bool", "conv", {"out": 8, "k": 3, "bias": "yes"},
        r"^`bias` must be true or false$", attr="bias", found="'yes'"),
    Err("int-for-bool", "conv", {"out": 8, "k": 3, "bias": 1}, r"^`bias` must be true or false$",
        attr="bias", found="^1$"),
    Err("zero-groups", "conv", {"out": 8, "k": 3, "groups": 0}, r"^`groups` must be an integer >= 1$",
        attr="groups", found="^0$"),
    Err("same-with-stride", "conv", {"out": 8, "k": 3, "stride": 2, "pad": "same"},
        r"^`pad: same` needs stride 1 \(as in PyTorch\)$", attr="pad", found="^stride 2x2$",
        hint="give the padding explicitly, e.g. pad: 1$"),
    Err("missing-required", "conv", {"k": 3}, r"^`conv` needs `out`$", attr="out",
        found="^no value$", hint="output channels"),
    Err("unknown-attr", "conv", {"out": 8, "k": 3, "strides": 2},
        r"^`conv` has no attribute `strides`$", attr="strides", found="^`strides`$",
        hint=r"^did you mean `stride`\?$"),
    Err("attr-of-attrless-op", "relu", {"inplace": True}, r"^`relu` has no attribute `inplace`$",
        attr="inplace"),
    Err("p-above-1", "dropout", {"p": 1.5}, r"^`p` must be a number from 0 to 1$", attr="p",
        found=r"^1\.5 \(a float\)$"),
    Err("p-negative", "dropout", {"p": -0.1}, r"^`p` must be a number from 0 to 1$", attr="p"),
    Err("p-nan", "dropout", {"p": float("nan")}, r"^`p` must be a number", attr="p",
        found="nan"),
    Err("bool-for-float", "bn", {"eps": False}, r"^`eps` must be a number >= 0$", attr="eps",
        found=r"^false \(a boolean\)$"),
    Err("maxpool-pad-over-half", "maxpool", {"k": 3, "pad": 2},
        r"^maxpool `pad` must be at most half the kernel \(PyTorch's rule\)$", attr="pad",
        found="^pad 2x2$"),
    Err("avgpool-pad-over-half", "avgpool", {"k": [3, 1], "pad": [1, 1]},
        r"^avgpool `pad` must be at most half the kernel", attr="pad", found="^pad 1x1$"),
    Err("zero-stride", "maxpool", {"k": 3, "stride": 0}, r"^`stride` must be an integer >= 1",
        attr="stride"),
    Err("zero-size", "adaptive_avgpool", {"size": 0}, r"^`size` must be an integer >= 1",
        attr="size"),
    Err("split-index", "channel_split", {"parts": 2, "index": 2},
        r"^channel_split `index` must be below `parts` \(2\)$", attr="index", found="^index 2$"),
    Err("negative-index", "channel_split", {"index": -1}, r"^`index` must be an integer >= 0$",
        attr="index"),
    Err("gelu-approximate", "gelu", {"approximate": "tahn"}, r"^`approximate` must be one of: "
        r"none, tanh$", attr="approximate", hint=r"^did you mean `tanh`\?$"),
    Err("celu-alpha-zero", "celu", {"alpha": 0}, r"^`alpha` must be a number > 0$", attr="alpha"),
    Err("hardtanh-order", "hardtanh", {"min": 1, "max": 0},
        r"^hardtanh `max` must be above `min`$", attr="max", found="^min 1, max 0$"),
    Err("prelu-per-channel", "prelu", {"per_channel": "yes"}, r"^`per_channel` must be true",
        attr="per_channel"),
    Err("split-sizes-and-parts", "channel_split", {"sizes": [2, 6], "parts": 2, "index": 0},
        r"^channel_split takes `parts` or `sizes`, not both$", attr="parts", found="^both$"),
    Err("split-sizes-one", "channel_split", {"sizes": [8], "index": 0},
        r"^channel_split `sizes` needs two or more chunks$", attr="sizes"),
    Err("split-sizes-index", "channel_split", {"sizes": [2, 6], "index": 2},
        r"^channel_split `index` must be below the number of `sizes` \(2\)$", attr="index"),
    Err("split-sizes-type", "channel_split", {"sizes": 8, "index": 0},
        r"^`sizes` must be a list of integers \(each >= 1\)$", attr="sizes", found="^8$",
        hint=r"^write the integers as a list"),
    Err("split-sizes-zero", "channel_split", {"sizes": [8, 0], "index": 0},
        r"^`sizes` must be a list of integers \(each >= 1\)$", attr="sizes"),
    Err("stochastic-depth-p", "stochastic_depth", {"p": 1.2}, r"^`p` must be a number from 0 "
        r"to 1$", attr="p"),
    Err("stochastic-depth-needs-p", "stochastic_depth", {}, r"^`stochastic_depth` needs `p`$",
        attr="p", found="^no value$"),
    Err("stochastic-depth-mode", "stochastic_depth", {"p": 0.1, "mode": "rows"},
        r"^`mode` must be one of: row, batch$", attr="mode", hint=r"^did you mean `row`\?$"),
    Err("permute-not-permutation", "permute", {"dims": [0, 1, 1, 3]},
        r"^permute `dims` is not a permutation$", attr="dims", found=r"^dims \[0, 1, 1, 3\]$",
        hint=r"e\.g\. \[0, 2, 3, 1\]"),
    Err("permute-batch", "permute", {"dims": [1, 0, 2, 3]},
        r"^permute must keep the batch axis first$", attr="dims"),
    Err("permute-negative", "permute", {"dims": [0, -1, 1, 2]}, r"^`dims` must be a list of "
        r"integers \(each >= 0\)$", attr="dims"),
    Err("reshape-two-inferred", "reshape", {"shape": [-1, 2, -1]},
        r"^reshape `shape` takes sizes >= 1 and at most one -1$", attr="shape"),
    Err("reshape-empty", "reshape", {"shape": []}, r"^reshape `shape` is empty$", attr="shape"),
    Err("scale-value", "scale", {"value": "0.17"}, r"^`value` must be a number$", attr="value",
        found=r"^'0\.17' \(a string\)$"),
    Err("layer-scale-init", "layer_scale", {"initial": 1e-6},
        r"^`layer_scale` has no attribute `initial`$", attr="initial",
        hint=r"^did you mean `init`\?$"),
    Err("upsample-neither", "upsample", {}, r"^upsample takes `scale` or `size`, exactly one",
        found="^neither$"),
    Err("upsample-both", "upsample", {"scale": 2, "size": 8},
        r"^upsample takes `scale` or `size`, exactly one", attr="scale", found="^both$"),
    Err("upsample-scale-zero", "upsample", {"scale": 0}, r"^`scale` must be a number > 0 and "
        r"<= 65536, or null$", attr="scale"),
    Err("upsample-scale-huge", "upsample", {"scale": 1e308}, r"^`scale` must be a number > 0",
        attr="scale"),
    Err("upsample-align-nearest", "upsample", {"scale": 2, "align_corners": True},
        r"^upsample `align_corners` applies only to `mode: bilinear`$", attr="align_corners"),
    Err("upsample-mode", "upsample", {"scale": 2, "mode": "bilinaer"}, r"^`mode` must be one of",
        attr="mode", hint=r"^did you mean `bilinear`\?$"),
    Err("layernorm-over", "layernorm", {"over": "channel"}, r"^`over` must be one of: all, last, "
        r"channels$", attr="over", hint=r"^did you mean `channels`\?$"),
    Err("linear-over", "linear", {"out": 4, "over": "channels"}, r"^`over` must be one of: flat, "
        r"last$", attr="over"),
    Err("softmax-dim-range", "softmax", {"dim": 5}, r"^`dim` must be an integer from -5 to 4$",
        attr="dim"),
]


@pytest.mark.parametrize("case", ATTR_ERRORS, ids=str)
def test_attribute_errors(case: Err):
    with pytest.raises(OpError, match=case.message) as info:
        get_op(case.op).resolve(case.attrs)
    assert info.value.expected
    check_error(info.value, case)


def test_unknown_attribute_lists_the_known_ones():
    with pytest.raises(OpError) as info:
        get_op("conv").resolve({"out": 8, "k": 3, "kernel": 2})
    assert info.value.expected == "one of: out, k, stride, pad, dilation, groups, bias"
    with pytest.raises(OpError) as info:
        get_op("relu").resolve({"inplace": True})
    assert info.value.expected == "no attributes"


SHAPE_ERRORS = [
    Err("conv-groups", "conv", {"out": 128, "k": 3, "groups": 3},
        r"^conv groups \(3\) must divide both the input channels \(64\) and the output channels "
        r"\(128\)$", ins=[(64, 8, 8)], attr="groups", found=r"^groups 3: 64 % 3 = 1, 128 % 3 = 2$",
        hint=r"^the largest valid groups is 64; a depthwise conv has groups: in.c"),
    Err("conv-groups-out", "conv", {"out": 10, "k": 3, "groups": 4},
        r"^conv groups \(4\) must divide", ins=[(8, 8, 8)], attr="groups", found="10 % 4 = 2",
        hint="largest valid groups is 2"),
    Err("conv-on-flat", "conv", {"out": 8, "k": 3}, r"^conv needs a C x H x W input$",
        ins=[(64,)], input_index=0, found=r"^64 \(flat\)$", hint="before `flatten`"),
    Err("conv-kernel-too-large", "conv", {"out": 8, "k": 7},
        r"^conv window is larger than its input: 7x7 kernel on a 5 x 6 input \(5 x 6 with "
        r"padding\)$", ins=[(3, 5, 6)], input_index=0,
        found=r"^input 3 x 5 x 6, padded to 5 x 6$", hint="smaller kernel"),
    Err("conv-dilated-too-large", "conv", {"out": 8, "k": 3, "dilation": 3, "pad": 1},
        r"3x3 kernel with dilation 3 \(spans 7x7\) on a 4 x 4 input \(6 x 6 with padding\)$",
        ins=[(3, 4, 4)], input_index=0, found="padded to 6 x 6"),
    Err("conv-1x7-too-wide", "conv", {"out": 8, "k": [1, 7]},
        r"1x7 kernel on a 9 x 5 input", ins=[(3, 9, 5)], input_index=0),
    Err("maxpool-too-large", "maxpool", {"k": 3},
        r"^maxpool window is larger than its input: 3x3 kernel on a 2 x 2 input", ins=[(3, 2, 2)],
        input_index=0, found="padded to 2 x 2"),
    Err("global-pool-on-flat", "global_avgpool", {}, r"^global_avgpool needs a C x H x W input$",
        ins=[(64,)], input_index=0, found="flat"),
    Err("linear-on-image", "linear", {"out": 10}, r"^linear needs a flat input$",
        ins=[(64, 7, 7)], input_index=0, found=r"^64 x 7 x 7$", hint=r"^add `flatten` before it, or give `over: last`"),
    Err("add-shapes", "add", {}, r"^add needs inputs of one shape; input 1 differs from input 0$",
        ins=[(64, 56, 56), (128, 28, 28)], input_index=1,
        found=r"^input 0: 64 x 56 x 56, input 1: 128 x 28 x 28$",
        hint=r"^use a projection shortcut \(1x1 conv with stride\) to match$"),
    Err("add-third", "add", {}, r"input 2 differs from input 0$",
        ins=[(4, 5, 5), (4, 5, 5), (4, 5, 4)], input_index=2, found="input 2: 4 x 5 x 4$"),
    Err("add-one-input", "add", {}, r"^add needs two or more inputs$", ins=[(4, 5, 5)],
        found="^1 input$"),
    Err("add-ranks", "add", {}, r"^add needs inputs of one rank", ins=[(4, 5, 5), (100,)],
        input_index=1, found="input 1: 100$"),
    Err("mul-gate-channels", "mul", {},
        r"^mul needs inputs of one shape \(or a C x 1 x 1 gate\); input 1 differs from input 0$",
        ins=[(4, 5, 5), (8, 1, 1)], input_index=1, found="input 1: 8 x 1 x 1$",
        hint="C x 1 x 1 gate"),
    Err("mul-partial-broadcast", "mul", {}, r"input 1 differs from input 0",
        ins=[(4, 5, 5), (4, 5, 1)], input_index=1),
    Err("concat-spatial", "concat", {},
        r"^concat needs inputs with the same H x W; input 2 differs from input 0$",
        ins=[(4, 8, 8), (4, 8, 8), (4, 4, 4)], input_index=2,
        found=r"^input 0: 4 x 8 x 8, input 2: 4 x 4 x 4$", hint="downsample the larger input"),
    Err("concat-ranks", "concat", {}, r"^concat needs inputs of one rank",
        ins=[(4, 8, 8), (16,)], input_index=1),
    Err("groupnorm-groups", "groupnorm", {"groups": 3},
        r"^groupnorm groups \(3\) must divide the channels \(16\)$", ins=[(16, 4, 4)],
        attr="groups", input_index=0, found="16 % 3 = 1$"),
    Err("shuffle-groups", "channel_shuffle", {"groups": 3},
        r"^channel_shuffle `groups` \(3\) must divide the channels \(8\)$", ins=[(8, 4, 4)],
        attr="groups", input_index=0, found="8 % 3 = 2$"),
    Err("split-parts", "channel_split", {"parts": 3, "index": 0},
        r"^channel_split `parts` \(3\) must divide the channels \(8\)$", ins=[(8, 4, 4)],
        attr="parts", input_index=0),
    Err("pad-channels-odd", "pad_channels", {"out": 9},
        r"^pad_channels `out` \(9\) must be at least the input channels \(4\) and differ from "
        r"them by an even number$", ins=[(4, 4, 4)], attr="out", input_index=0,
        found="^out 9 for input 4 x 4 x 4$"),
    Err("pad-channels-fewer", "pad_channels", {"out": 2}, r"^pad_channels `out` \(2\) must be",
        ins=[(4, 4, 4)], attr="out", input_index=0),
    Err("softmax-dim", "softmax", {"dim": 2},
        r"^softmax dim 2 is out of range for a 2-d batched input$", ins=[(10,)], attr="dim",
        input_index=0, found="^dim 2$"),
    Err("split-sizes-sum", "channel_split", {"sizes": [64, 16], "index": 0},
        r"^channel_split `sizes` must sum to the channels \(96\)$", ins=[(96, 4, 4)],
        attr="sizes", input_index=0, found=r"^64 \+ 16 = 80$"),
    Err("permute-rank", "permute", {"dims": [0, 2, 1]},
        r"^permute `dims` must list the 4 axes of its batched input$", ins=[(8, 4, 4)],
        attr="dims", input_index=0, found=r"^3 in \[0, 2, 1\] for input N x 8 x 4 x 4$"),
    Err("reshape-size", "reshape", {"shape": [5, -1]},
        r"^reshape to \[5, -1\] does not keep the 12 elements of 12 x 1 x 1$",
        ins=[(12, 1, 1)], attr="shape", input_index=0, found=r"^\[5, -1\]: 5 elements$"),
    Err("reshape-size-exact", "reshape", {"shape": [2, 5, 1, 1]}, r"^reshape to ",
        ins=[(12, 1, 1)], attr="shape", input_index=0),
    Err("layer-scale-flat", "layer_scale", {},
        r"^layer_scale needs a C x H x W input \(its scale is C x 1 x 1\)$", ins=[(10,)],
        input_index=0, found="^10$"),
    Err("layernorm-channels-flat", "layernorm", {"over": "channels"},
        r"^layernorm needs a C x H x W input$", ins=[(10,)], input_index=0),
    Err("upsample-empty", "upsample", {"scale": 0.2}, r"^upsample by 0\.2 makes an empty output "
        r"from 4 x 4$", ins=[(3, 4, 4)], attr="scale", input_index=0, found="^0 x 0$"),
    Err("upsample-flat", "upsample", {"scale": 2}, r"^upsample needs a C x H x W input$",
        ins=[(10,)], input_index=0),
    Err("bn-rank", "bn", {}, r"^bn needs a C x H x W or flat input$", ins=[(3, 4)],
        input_index=0, found="^3 x 4$"),
]


@pytest.mark.parametrize("case", SHAPE_ERRORS, ids=str)
def test_shape_errors(case: Err):
    op = get_op(case.op)
    with pytest.raises(OpError, match=case.message) as info:
        op.shape(op.bind(case.attrs, case.ins), case.ins)
    check_error(info.value, case)


# --- no torch at analysis time ------------------------------------------------------------------

def test_ops_package_does_not_import_torch():
    code = ("import sys, archdsl.ops\n"
            "assert len(archdsl.ops.REGISTRY) == 46\n"
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"
