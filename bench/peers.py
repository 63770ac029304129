"""The peer counting tools, each called the way its README shows, on a built PyTorch model.

Every adapter returns ``(params, macs)`` as the tool reports them. Their MAC conventions differ
(ptflops and thop also count batch norm, pooling and activations; torchinfo counts bias adds;
fvcore counts one "flop" per multiply-accumulate of conv/linear/matmul and batch norm): the
benchmark compares *time*, and records the figures to show that every tool answered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .common import quiet

__all__ = ["TOOLS", "count"]


def _input(shape: tuple[int, ...]) -> Any:
    import torch

    return torch.randn((1, *shape))


def _fvcore(model: Any, shape: tuple[int, ...]) -> tuple[int, int]:
    from fvcore.nn import FlopCountAnalysis, parameter_count

    analysis = FlopCountAnalysis(model, _input(shape))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    return int(parameter_count(model)[""]), int(analysis.total())


def _ptflops(model: Any, shape: tuple[int, ...]) -> tuple[int, int]:
    from ptflops import get_model_complexity_info

    macs, params = get_model_complexity_info(model, tuple(shape), as_strings=False,
                                             print_per_layer_stat=False, verbose=False)
    return int(params), int(macs)


def _thop(model: Any, shape: tuple[int, ...]) -> tuple[int, int]:
    import thop

    macs, params = thop.profile(model, inputs=(_input(shape),), verbose=False)
    return int(params), int(macs)


def _torchinfo(model: Any, shape: tuple[int, ...]) -> tuple[int, int]:
    import torchinfo

    summary = torchinfo.summary(model, input_size=(1, *shape), verbose=0)
    return int(summary.total_params), int(summary.total_mult_adds)


TOOLS: dict[str, Callable[[Any, tuple[int, ...]], tuple[int, int]]] = {
    "fvcore": _fvcore,
    "ptflops": _ptflops,
    "thop": _thop,
    "torchinfo": _torchinfo,
}


def count(tool: str, model: Any, shape: tuple[int, ...]) -> tuple[int, int]:
    """``(params, macs)`` of ``model`` on one ``(C, H, W)`` input, by ``tool``, its output silenced."""
    with quiet():
        return TOOLS[tool](model, shape)
