"""The weights for a batch-norm-folded graph (:func:`archdsl.passes.fold_batchnorm`).

    >>> import archdsl, torchvision
    >>> from archdsl.passes import fold_batchnorm
    >>> from archdsl.fold import fold_state_dict
    >>> graph = archdsl.load("specs/resnet18.yaml")
    >>> model = archdsl.build_graph(fold_batchnorm(graph)).eval()
    >>> model.load_state_dict(fold_state_dict(torchvision.models.resnet18().state_dict(), graph))

Every surviving layer keeps its name, so the folded state_dict is the unfolded one with each
absorbed batch norm's entries removed and its conv's weight and bias replaced:

    s  = gamma / sqrt(running_var + eps)        (gamma = 1 without affine)
    w' = w * s                                  (per output channel)
    b' = beta + (b - running_mean) * s          (b = 0 when the conv had no bias, beta = 0 without affine)

computed in float64 and stored in the conv weight's dtype. The result equals the unfolded model
in eval mode (batch norm using its running statistics); it is an inference model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .ir import Graph
from .passes import fold_batchnorm, folded_convs

__all__ = ["BN_KEYS", "fold_state_dict"]

BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _absorbed(graph: Graph) -> dict[str, dict[str, Any]]:
    """``{conv: {name, eps, affine} of its batch norm}``, from a folded graph or by folding one."""
    return folded_convs(graph) or folded_convs(fold_batchnorm(graph))


def fold_state_dict(state_dict: Mapping[str, torch.Tensor], graph: Graph) -> dict[str, torch.Tensor]:
    """The state_dict of the folded model, from the unfolded model's state_dict.

    ``graph`` is the unfolded graph (it is folded here, to know which batch norms go) or the result
    of ``fold_batchnorm`` on it (whose convs record what they absorbed in ``meta["folded_bn"]``). Keys are the graph's node names (the generated
    modules' attribute paths, e.g. torchvision's). Raises KeyError naming a missing entry.
    """
    out = dict(state_dict)
    for conv, bn in _absorbed(graph).items():
        weight = _take(state_dict, f"{conv}.weight")
        dtype = weight.dtype
        w = weight.detach().to(torch.float64)
        mean = _take(state_dict, f"{bn['name']}.running_mean").detach().to(torch.float64)
        var = _take(state_dict, f"{bn['name']}.running_var").detach().to(torch.float64)
        scale = torch.rsqrt(var + bn["eps"])
        shift = torch.zeros_like(mean)
        if bn["affine"]:
            scale = scale * _take(state_dict, f"{bn['name']}.weight").detach().to(torch.float64)
            shift = _take(state_dict, f"{bn['name']}.bias").detach().to(torch.float64)
        bias = state_dict.get(f"{conv}.bias")
        b = torch.zeros_like(mean) if bias is None else bias.detach().to(torch.float64)
        out[f"{conv}.weight"] = (w * scale.reshape(-1, *([1] * (w.dim() - 1)))).to(dtype)
        out[f"{conv}.bias"] = (shift + (b - mean) * scale).to(dtype)
        for key in BN_KEYS:
            out.pop(f"{bn['name']}.{key}", None)
    return out


def _take(state_dict: Mapping[str, torch.Tensor], key: str) -> torch.Tensor:
    try:
        return state_dict[key]
    except KeyError:
        raise KeyError(f"fold_state_dict: the state_dict has no entry {key!r} (is it the unfolded "
                       f"model of the same spec?)") from None
