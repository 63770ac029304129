"""The compiler pipeline in one place.

    read YAML (yamlsrc) -> validate structure (schema) -> parse to AST (parser)
      -> expand blocks/repeats/expressions into the graph IR with shapes (expand) -> lint (ir)
      -> analyse (analysis) -> emit: report / PyTorch code / diagram

Every stage's result can be asked for: :func:`parse` gives the AST, :func:`load` the checked graph.
Nothing here imports torch.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from .errors import Diagnostic, SpecError, UsageError, did_you_mean
from .expr import evaluate
from .expand import DEFAULT_MAX_NODES, MAX_DIM, MAX_ELEMENTS, ResourceError, expand
from .ir import Graph
from .parser import is_library, parse_library, parse_spec
from .spec import PARAM_TYPES, Library, Spec, fits_type
from .util import gc_paused
from .yamlsrc import describe, parse_yaml_text

__all__ = ["check_library", "check_lowering", "instantiate", "is_library", "load", "parse",
           "parse_input", "parse_sets", "resolve_params"]

# The smallest-input search re-expands the network up to ~26 times: only for networks this small.
MAX_PROBE_NODES = 5_000


def parse(path: str | Path, allow_paths: Iterable[str | Path] = ()) -> Spec:
    """Stages 1-3: the spec's AST (with its libraries), or a SpecError."""
    return parse_spec(path, allow_paths)


def check_library(path: str | Path, allow_paths: Iterable[str | Path] = ()) -> Library:
    """A block library checked on its own: its blocks parsed, their op, block and attribute
    names resolved, block-use cycles, and constant attributes checked; or a SpecError. (Shapes
    need an input: they are checked where a model uses the blocks.)"""
    return parse_library(path, allow_paths)


@gc_paused()
def load(path: str | Path, *, input: Any = None, allow_paths: Iterable[str | Path] = (),
         max_nodes: int = DEFAULT_MAX_NODES, **overrides: Any) -> Graph:
    """Parse, expand and check a spec: the graph IR with every node's shape.

    ``input`` overrides the input shape (``(3, 299, 299)`` or ``"3x299x299"``); keyword arguments
    override spec parameters (``num_classes=10``). Raises :class:`archdsl.errors.SpecError` with
    every diagnostic when the spec is wrong.
    """
    spec = parse(path, allow_paths)
    return instantiate(spec, resolve_params(spec, overrides), input=input, max_nodes=max_nodes)


@gc_paused()
def instantiate(spec: Spec, params: dict[str, Any], *, input: Any = None,
                max_nodes: int = DEFAULT_MAX_NODES, smallest_input_hint: bool = True,
                block_cache: dict[Any, Any] | None = None) -> Graph:
    """Stages 4-5 for a parsed spec: expand it with resolved parameters (:func:`resolve_params`)
    and check it. Parse once, instantiate many times (``archdsl sweep``).

    ``smallest_input_hint`` searches for the smallest input that works when the input is too
    small (a few more expansions; a sweep that shows only each error's first line skips it).
    ``block_cache`` (an empty dict, then passed again with every instantiation of this ``spec``)
    keeps the expansion of each distinct block use from one instantiation to the next.
    """
    shape = spec_input(spec, params) if input is None else parse_input(input)
    try:
        graph = expand(spec, params, shape, max_nodes, block_cache)
    except SpecError as error:
        if not smallest_input_hint:
            raise
        raise _with_smallest_input(error, spec, params, shape, max_nodes) from None
    graph.lint()
    return graph


def check_lowering(graph: Graph) -> None:
    """Raise the code generator's refusals (a :class:`SpecError`, located) for a checked graph.

    ``archdsl check`` runs it, so a spec that checks compiles. Plans the PyTorch module without
    rendering it (torch-free, about as fast as the expansion).
    """
    from .codegen import make_plan

    make_plan(graph, ctor_params=False)


def resolve_params(spec: Spec, overrides: Mapping[str, Any], *, option: str = "--set") -> dict[str, Any]:
    """Spec parameters with overrides applied and type-checked (strings are read as YAML scalars).

    ``option`` names the command-line option the overrides came from, in the errors.
    """
    params = {name: decl.default for name, decl in spec.params.items()}
    for name, value in overrides.items():
        if name not in spec.params:
            known = ", ".join(f"`{p}`" for p in spec.params) or "none"
            raise UsageError(Diagnostic(f"{option} {name}: the spec has no parameter `{name}`", None,
                                        expected=f"one of {known}",
                                        hint=did_you_mean(name, spec.params)))
        decl = spec.params[name]
        if isinstance(value, str) and decl.type != "str":
            value = _set_value(option, name, value)
        typ = PARAM_TYPES[decl.type]
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not fits_type(value, decl.type):
            raise UsageError(Diagnostic(f"{option} {name}: wrong type", None,
                                        expected=f"{decl.type} (the default is {decl.default!r})",
                                        found=describe(value)))
        if decl.choices and value not in decl.choices:
            raise UsageError(Diagnostic(f"{option} {name}={_short(value)}: not one of the allowed values",
                                        None, expected=" or ".join(str(c) for c in decl.choices),
                                        found=describe(value),
                                        hint=did_you_mean(str(value), [str(c) for c in decl.choices])))
        params[name] = value
    return params


def _set_value(option: str, name: str, text: str) -> Any:
    """A ``--set`` value read as one YAML scalar or flow list, as safely as a spec (no aliases,
    tags, 5,000-digit numbers or impossible dates); a problem is a command-line error."""
    try:
        return parse_yaml_text(text, f"{option} {name}").plain()
    except SpecError as error:
        first = error.first
        raise UsageError(Diagnostic(f"{option} {name}: {first.message}", None, expected=first.expected,
                                    found=first.found or f"`{_short(text)}`",
                                    hint=first.hint)) from None


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:60] + "..."


def spec_input(spec: Spec, params: dict[str, Any]) -> tuple[int, ...]:
    """The spec's declared input shape, its expressions evaluated with the parameters."""
    dims = []
    for value in spec.input:
        dim = evaluate(value.expr, params) if value.expr is not None else value.literal
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise SpecError(Diagnostic("an input size must be a whole number >= 1", value.loc,
                                       expected="e.g. [in_channels, 224, 224]", found=describe(dim)))
        dims.append(dim)
    return tuple(dims)


def parse_input(value: Any) -> tuple[int, ...]:
    """``"3x299x299"`` or ``(3, 299, 299)`` -> ``(3, 299, 299)``."""
    original = value
    if isinstance(value, str):
        if not re.fullmatch(r"\d+(x\d+){0,2}", value.strip()):
            raise UsageError(Diagnostic(f"--input {_short(value)}: not a shape", None,
                                        expected="CxHxW, e.g. 3x224x224", found=repr(_short(value))))
        # (a size of more than 18 digits is too large anyway, and int() refuses 4,300 digits)
        value = [int(v) if len(v) <= 18 else MAX_ELEMENTS + 1 for v in value.strip().split("x")]
    dims = tuple(value)
    if len(dims) not in (1, 3) or any(not isinstance(d, int) or isinstance(d, bool) or d < 1
                                      for d in dims):
        raise UsageError(Diagnostic("the input shape must be 3 positive sizes (or 1 for flat "
                                    "features)", None, expected="CxHxW, e.g. 3x224x224, or F",
                                    found=_short(value)))
    shown = _short(original if isinstance(original, str) else "x".join(str(d) for d in dims))
    if any(d > MAX_DIM for d in dims) or math.prod(dims) > MAX_ELEMENTS:
        raise UsageError(Diagnostic(f"--input {shown}: the input is too large", None,
                                    expected=f"each size at most {MAX_DIM:,}, and at most 2**48 = "
                                             f"{MAX_ELEMENTS:,} elements per sample",
                                    found=f"{shown} (a command-line value, not the spec's "
                                          "`input:`)",
                                    hint="give a smaller --input, e.g. 3x224x224"))
    return dims


def parse_sets(items: Iterable[str]) -> dict[str, str]:
    """``["num_classes=10", "width=0.5"]`` -> ``{"num_classes": "10", "width": "0.5"}``."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(Diagnostic(f"--set {item}: expected NAME=VALUE", None,
                                        expected="e.g. --set num_classes=10", found=repr(item)))
        out[key.strip()] = value.strip()
    return out


def _with_smallest_input(error: SpecError, spec: Spec, params: dict[str, Any],
                         shape: tuple[int, ...], max_nodes: int) -> SpecError:
    """When the input is too small for the network, say which input size is the smallest that works."""
    shape_errors = [d for d in error.diagnostics if d.severity == "error"]
    if len(shape) != 3 or not shape_errors or any(d.code != "shape" for d in shape_errors):
        return error

    probe_nodes = min(max_nodes, MAX_PROBE_NODES)

    def works(h: int) -> bool:
        w = max(1, round(shape[2] * h / shape[1]))
        try:
            expand(spec, params, (shape[0], h, w), probe_nodes)
        except ResourceError:
            raise _TooBig from None
        except SpecError:
            return False
        return True

    try:
        high = _smallest_height(works, shape[1])
    except _TooBig:  # each probe would re-expand a big network: say nothing rather than wait
        return error
    if high is None:
        return error
    width = max(1, round(shape[2] * high / shape[1]))
    first = shape_errors[0]
    hint = (f"the input {shape[0]}x{shape[1]}x{shape[2]} is too small for this network; "
            f"the smallest that works is {shape[0]}x{high}x{width} (--input {shape[0]}x{high}x{width})")
    diags = [d.with_hint(hint) if d is first else d for d in error.diagnostics]
    return SpecError(diags)


class _TooBig(Exception):
    """A probe of the smallest-input search hit a resource limit."""


def _smallest_height(works: Any, start: int) -> int | None:
    """The smallest height above ``start`` (up to 8192) for which ``works``: doubling, then
    bisection (at most about 26 probes)."""

    low, high = start, None
    size = start
    while size < 8192:
        size *= 2
        if works(size):
            high = size
            break
        low = size
    if high is None:
        return None
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if not works(mid) else (low, mid)
    return high
