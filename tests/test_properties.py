"""A spec that checks compiles (hypothesis): check, compile and the static analysis agree.

Specs are drawn from a small grammar of the language (blocks with typed parameters, `let`,
expressions over ``in.c``, `when:` on layers and branches, parallel with every merge, residual with
and without a shortcut, repeat, dense, pair parameters, a block with two inputs, a classifier
head). Every drawn spec that
``archdsl check`` accepts must compile to Python, build, run, and have the parameter count and
output shapes of the static analysis. Specs that check refuses are counted; enough of the drawn
specs must check for the property to mean something. The network's widths may follow the spec
parameter `width`: a class that takes it, built with another value, must match the analysis of
the spec loaded with that value (88 of 100 check, 45 of them are built again).

Derandomised and bounded like tests/test_fuzz.py (``ARCHDSL_PROPERTY_EXAMPLES``, 100 by default):
channels are at most 8 and inputs 8 x 8, so each example builds a tiny model.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archdsl
from archdsl.cli import main
from archdsl.codegen import generate

EXAMPLES = int(os.environ.get("ARCHDSL_PROPERTY_EXAMPLES", "100"))
WIDTHS = st.sampled_from([2, 4, 6, 8])
# Widths of the network's layers may follow the spec parameter `width` (4; built again with 6).
NETWORK_WIDTHS = st.sampled_from([2, 4, 6, 8, "width", "width * 2", "width + 2"])

# Expressions a block may use for a width (its parameter `out`, the input's channels, a `let`).
WIDTH_EXPRS = st.sampled_from(["out", "in.c", "wide", "out * 2", "max(out // 2, 1)", "in.c + out"])


@st.composite
def op_layer(draw: st.DrawFn, in_block: bool) -> Any:
    """One primitive layer, possibly under a `when:`."""
    width: Any = draw(WIDTH_EXPRS) if in_block and draw(st.booleans()) else draw(WIDTHS)
    kind = draw(st.sampled_from(["conv", "conv3", "conv13", "bn", "relu", "pool", "avgpool",
                                 "identity", "dropout"]))
    if kind == "conv13":  # an asymmetric kernel: the `pad` pair parameter keeps the size
        layer: Any = {"conv": {"out": width, "k": [1, 3], "pad": [0, 1] if not in_block else
                               draw(st.sampled_from([[0, 1], "pad"]))}}
    elif kind == "avgpool":
        layer = {"avgpool": {"k": 2, "stride": 1, "ceil": draw(st.booleans())}}
    elif kind == "conv":
        layer = {"conv": {"out": width, "k": 1, "bias": draw(st.booleans())}}
    elif kind == "conv3":
        pad = "pad" if in_block and draw(st.booleans()) else 1
        stride = "stride" if in_block and draw(st.booleans()) else 1
        layer = {"conv": {"out": width, "k": 3, "pad": pad, "stride": stride}}
    elif kind == "pool":
        layer = {"maxpool": {"k": 3, "stride": 1, "pad": 1}}
    elif kind == "dropout":
        layer = {"dropout": {"p": 0.25}}
    else:
        layer = kind if kind != "bn" else {"bn": {}}
    if in_block and draw(st.integers(0, 3)) == 0:
        if isinstance(layer, str):
            layer = {layer: {}}
        layer = {**layer, "when": draw(st.sampled_from(["flag", "not flag", "stride > 1"]))}
    return layer


@st.composite
def chain(draw: st.DrawFn, in_block: bool, names: str) -> list[Any]:
    """A short sequence of primitive layers, some named."""
    items = []
    for k in range(draw(st.integers(1, 3))):
        layer = draw(op_layer(in_block))
        items.append({f"{names}{k + 1}": layer} if draw(st.booleans()) else layer)
    return items


@st.composite
def block_body(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["chain", "named", "parallel", "residual"]))
    if kind == "chain":
        return draw(chain(True, "conv"))
    if kind == "named":  # a named sequence (an nn.Sequential), maybe frozen
        return [{"features": draw(chain(True, "conv")), "freeze": draw(st.booleans())}]
    if kind == "parallel":
        branches = []
        for k in range(draw(st.integers(1, 3))):
            branch: Any = draw(chain(True, f"b{k + 1}_"))
            if draw(st.integers(0, 3)) == 0:
                branch = {"seq": branch, "when": "flag"}
            branches.append({f"branch{k + 1}": branch} if draw(st.booleans()) else branch)
        return {"parallel": branches, "merge": draw(st.sampled_from(["concat", "concat", "add"]))}
    residual: dict[str, Any] = {"body": draw(chain(True, "conv"))}
    if draw(st.booleans()):
        residual["shortcut"] = {"downsample": [{"conv": {"out": "out", "k": 1, "stride": "stride"}}],
                                "when": "stride != 1 or in.c != out"}
    if draw(st.booleans()):
        residual["connect"] = "in.c == out"
    return {"residual": residual}


@st.composite
def specs(draw: st.DrawFn, fused: bool = False) -> dict[str, Any]:
    block = {
        "params": {"out": "int", "stride": 1, "flag": False, "pad": [1, 1]},
        "let": {"wide": "out * 2"},
        "body": draw(block_body()),
    }
    outer = {  # a block that repeats the first, its arguments following the index
        "params": {"out": "int", "n": 1},
        "body": {"repeat": "n", "block": "unit",
                 "args": {"out": "out", "stride": "2 if i == 0 else 1", "flag": "i > 0"}},
    }
    network: list[Any] = [{"stem": {"conv": {"out": draw(NETWORK_WIDTHS), "k": 3, "pad": 1}}}]
    for k in range(draw(st.integers(1, 3))):
        args: dict[str, Any] = {"out": draw(NETWORK_WIDTHS)}
        if draw(st.booleans()):
            args["flag"] = draw(st.booleans())
        if draw(st.booleans()):
            args["stride"] = draw(st.sampled_from([1, 2, "2 if i == 0 else 1"]))
        if draw(st.booleans()):
            args["pad"] = draw(st.sampled_from([1, [1, 0]]))
        form = draw(st.sampled_from(["call", "repeat", "dense", "outer"]))
        if form == "outer":
            network.append({f"layer{k + 1}": {"outer": {"out": args["out"], "n": draw(st.integers(1, 2))}}})
        elif form == "call":
            if args.get("stride") == "2 if i == 0 else 1":
                args["stride"] = 2  # `i` exists only in a repeat
            network.append({f"layer{k + 1}": {"unit": args}})
        else:
            count = draw(st.integers(1, 2))
            network.append({f"layer{k + 1}": {form: count, "block": "unit", "args": args}})
    if fused:  # a block with two inputs: the stem and the last stage
        network.append({"fused": {"fuse": {"out": draw(NETWORK_WIDTHS)}},
                        "from": ["stem", f"layer{len(network) - 1}"]})
    if draw(st.booleans()):
        network += [{"avgpool": {"adaptive_avgpool": {"size": 1}}}, "flatten",
                    {"fc": {"linear": {"out": "num_classes"}}}]
    return {"name": "drawn", "input": [3, 8, 8], "params": {"num_classes": 5, "width": 4},
            "blocks": {"unit": block, "outer": outer, **({"fuse": FUSE} if fused else {})},
            "network": network}


@st.composite
def specs_with_reads(draw: st.DrawFn) -> dict[str, Any]:
    """A drawn spec whose network also has layers with `from:` (reading the stem) or `output:`
    (a side output), or both, some unnamed pass-throughs (`identity`), some under a `when:`,
    inserted after the stem or a stage (h6: such layers once miscompiled)."""
    spec = draw(specs())
    network = spec["network"]
    stages = [k for k, layer in enumerate(network) if isinstance(layer, dict)
              and any(str(key).startswith(("stem", "layer")) for key in layer)]
    for n in range(draw(st.integers(1, 2))):
        op = draw(st.sampled_from(["identity", "identity", "conv", "relu"]))
        layer: dict[str, Any] = {op: {"out": draw(WIDTHS), "k": 1} if op == "conv" else {}}
        reads, output = draw(st.sampled_from([(True, False), (False, True), (True, True)]))
        if reads:
            layer["from"] = "stem"
        if output:
            layer["output"] = f"aux{n + 1}"
        if draw(st.integers(0, 3)) == 0:
            layer["when"] = draw(st.sampled_from(["true", "false", "width > 2"]))
        network.insert(draw(st.sampled_from(stages)) + 1, layer)
    return spec


# A block with two inputs (`inputs:`): the first gated by the second, pooled to 1 x 1 (any sizes).
FUSE = {"inputs": ["low", "high"], "params": {"out": "int"},
        "body": [{"a": {"conv": {"out": "out", "k": 1}, "from": "low"}},
                 {"conv": {"out": "out", "k": 1}, "from": "high"},
                 {"gate": {"adaptive_avgpool": {"size": 1}}},
                 {"mul": {}, "from": ["a", "gate"]}]}


def _build_and_compare(path: Path) -> bool:
    """Build the compiled class and hold it to the analysis; when it takes `width` and the spec
    also checks with `width: 6`, build it with 6 too and hold that to the analysis at 6. Returns
    whether the second build was made."""
    import torch

    from archdsl.builder import check_model, load_generated

    graph = archdsl.load(path)
    generated = generate(graph)
    compile(generated.source, str(path), "exec")
    factory = getattr(load_generated(generated), generated.factory)
    model = factory().eval()
    with torch.no_grad():
        out = model(torch.randn(1, *graph.input_shape))
    assert check_model(graph, model, out) == [], generated.source
    if "width" not in inspect.signature(factory).parameters:
        return False
    try:
        other = archdsl.load(path, width=6)
    except archdsl.SpecError:  # (the spec is refused at 6: the class need not build there)
        return False
    model = factory(width=6).eval()
    with torch.no_grad():
        out = model(torch.randn(1, *other.input_shape))
    assert check_model(other, model, out) == [], generated.source
    return True


def test_every_spec_that_checks_compiles_builds_and_matches_the_analysis(tmp_path, capsys):
    outcomes = {"checked": 0, "refused": 0, "rebuilt": 0}
    path = tmp_path / "drawn.yaml"

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(spec=specs())
    def run(spec: dict[str, Any]) -> None:
        path.write_text(yaml.safe_dump(spec, sort_keys=False, default_flow_style=None), encoding="utf-8")
        code = main(["check", "--quiet", str(path)])
        err = capsys.readouterr().err
        assert code in (0, 1) and "Traceback" not in err, err
        if code == 1:
            outcomes["refused"] += 1
            return
        outcomes["checked"] += 1
        outcomes["rebuilt"] += _build_and_compare(path)

    run()
    assert outcomes["checked"] + outcomes["refused"] == EXAMPLES
    assert outcomes["checked"] >= EXAMPLES // 3, outcomes  # the property is tested, not skipped
    assert outcomes["rebuilt"] >= EXAMPLES // 4, outcomes  # and the constructor argument too


def test_with_a_block_with_two_inputs_every_spec_that_checks_compiles(tmp_path, capsys):
    """The same grammar with a block with two inputs (`inputs:`) fusing the stem and the last
    stage. Such a block is written per use (every size written in), so the network class keeps
    `width` written in whenever the sizes the use sees follow it (none is built again here)."""
    outcomes = {"checked": 0, "refused": 0}
    path = tmp_path / "fused.yaml"

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(spec=specs(fused=True))
    def run(spec: dict[str, Any]) -> None:
        path.write_text(yaml.safe_dump(spec, sort_keys=False, default_flow_style=None), encoding="utf-8")
        code = main(["check", "--quiet", str(path)])
        err = capsys.readouterr().err
        assert code in (0, 1) and "Traceback" not in err, err
        outcomes["checked" if code == 0 else "refused"] += 1
        if code == 0:
            _build_and_compare(path)

    run()
    assert outcomes["checked"] >= EXAMPLES // 3, outcomes  # the property is tested, not skipped


@pytest.mark.parametrize("flag", [False, True])
def test_the_grammar_reaches_when_and_dense(flag, tmp_path):
    """A hand-made member of the grammar: a branch under `when:` inside a dense block."""
    spec = {"name": "drawn", "input": [3, 8, 8], "params": {"num_classes": 5},
            "blocks": {"unit": {"params": {"out": "int", "stride": 1, "flag": False, "pad": [1, 1]},
                                "let": {"wide": "out * 2"},
                                "body": {"parallel": [[{"conv": {"out": "out", "k": 1}}],
                                                      {"seq": [{"conv": {"out": "wide", "k": 3,
                                                                         "pad": "pad"}}],
                                                       "when": "flag"}]}}},
            "network": [{"stem": {"conv": {"out": 4, "k": 1}}},
                        {"layer1": {"dense": 2, "block": "unit", "args": {"out": 2, "flag": flag}}}]}
    path = tmp_path / "drawn.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False, default_flow_style=None), encoding="utf-8")
    assert main(["check", "--quiet", str(path)]) == 0
    _build_and_compare(path)


def test_with_layers_that_read_or_are_outputs_every_spec_that_checks_compiles(tmp_path, capsys):
    """The same grammar with network layers that have `from:`, `output:` or both (unnamed
    pass-throughs among them, some under a `when:`): every spec that checks compiles, builds
    and matches the analysis (half as many examples: 38 of 50 check)."""
    outcomes = {"checked": 0, "refused": 0}
    path = tmp_path / "reads.yaml"

    @settings(max_examples=max(EXAMPLES // 2, 1), deadline=None, derandomize=True,
              database=None, suppress_health_check=list(HealthCheck))
    @given(spec=specs_with_reads())
    def run(spec: dict[str, Any]) -> None:
        path.write_text(yaml.safe_dump(spec, sort_keys=False, default_flow_style=None), encoding="utf-8")
        code = main(["check", "--quiet", str(path)])
        err = capsys.readouterr().err
        assert code in (0, 1) and "Traceback" not in err, err
        outcomes["checked" if code == 0 else "refused"] += 1
        if code == 0:
            _build_and_compare(path)

    run()
    assert outcomes["checked"] >= max(EXAMPLES // 2, 1) // 3, outcomes  # tested, not skipped
