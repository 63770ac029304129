"""End to end, any document the language's grammar can build: success or a located error.

Hypothesis builds spec documents from the grammar of the schema (ops with their attributes,
named layers, sequences, `parallel`, `residual`, `repeat`, `when:`, `from:`, blocks with plain,
pair and long-form parameters, `let:` values) with values drawn from plausible and hostile ranges,
and runs each through every command and format: ``check``; ``report`` as text, md, json, csv
and html; ``draw`` to .dot; ``compile``, whose module is imported, built and run once on zeros.
Every run must exit 0, or 1 with a located diagnostic (``file:line:col: error: ...``) as its
first line; never a traceback (any other exception fails the test with its own) and never past
a time bound. What ``compile`` writes must import, build, and give the static output shapes.

The runs are derandomised and bounded (``ARCHDSL_PROPERTY_EXAMPLES``, 20 by default).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archdsl.cli import main

EXAMPLES = int(os.environ.get("ARCHDSL_PROPERTY_EXAMPLES", "20"))
TIME_BOUND = 20.0  # seconds per command: a hang bound on a shared machine, not a speed claim
LOCATED = re.compile(r"^[^\n]*?:\d+:\d+: error: .+$", re.MULTILINE)

# --- the grammar ----------------------------------------------------------------------------------

SIZES = st.one_of(st.integers(1, 16), st.sampled_from([0, -1, 2**31, 10**40]))
KERNELS = st.one_of(st.integers(1, 5), st.lists(st.integers(1, 5), min_size=2, max_size=2),
                    st.sampled_from([0, 99, [1, 7], "in.h", "k"]))
SMALL = st.integers(0, 3)


def op_call(draw: Any) -> dict[str, Any]:
    """One op with attributes from the op table (sometimes wrong)."""
    kind = draw(st.sampled_from(["conv", "conv", "relu", "bn", "maxpool", "avgpool", "dropout",
                                 "identity", "sigmoid", "adaptive_avgpool", "flatten", "linear"]))
    if kind == "conv":
        args = {"out": draw(SIZES), "k": draw(KERNELS)}
        if draw(st.booleans()):
            args["pad"] = draw(st.one_of(SMALL, st.sampled_from(["same", [0, 3]])))
        if draw(st.booleans()):
            args["stride"] = draw(st.sampled_from([1, 2, "2 if i == 0 else 1"]))
        return {"conv": args}
    if kind in ("maxpool", "avgpool"):
        return {kind: {"k": draw(st.integers(1, 3)), "stride": draw(st.integers(1, 2))}}
    if kind == "dropout":
        return {"dropout": {"p": draw(st.sampled_from([0.0, 0.5, 1.0, 2.0]))}}
    if kind == "adaptive_avgpool":
        return {"adaptive_avgpool": {"size": draw(st.sampled_from([1, [2, 1]]))}}
    if kind == "linear":
        return {"linear": {"out": draw(SIZES)}}
    return kind


@st.composite
def layers(draw: Any, depth: int = 0, names: tuple[str, ...] = ()) -> Any:
    """A layer of the grammar: an op, a named layer, a sequence or a construct."""
    choices = ["op", "op", "named"] + (["seq", "parallel", "residual", "repeat"] if depth < 2 else [])
    if names:
        choices.append("block")
    form = draw(st.sampled_from(choices))
    if form == "op":
        layer = op_call(draw)
    elif form == "block":
        layer = {draw(st.sampled_from(names)): {"out": draw(SIZES)} if draw(st.booleans()) else {}}
    elif form == "named":
        name = draw(st.sampled_from(["conv1", "bn1", "act", "head", "x_1", "layer", "branch"]))
        layer = {name: draw(layers(depth + 1, names))}
    elif form == "seq":
        layer = draw(st.lists(layers(depth + 1, names), min_size=1, max_size=3))
    elif form == "parallel":
        layer = {"parallel": draw(st.lists(layers(depth + 1, names), min_size=1, max_size=3)),
                 "merge": draw(st.sampled_from(["concat", "add"]))}
    elif form == "residual":
        layer = {"residual": {"body": draw(layers(depth + 1, names))}}
        if draw(st.booleans()):
            layer["residual"]["after"] = "relu"
    else:
        layer = {"repeat": draw(st.sampled_from([0, 1, 2, 3])), "layer": draw(layers(depth + 1, names))}
    if isinstance(layer, dict) and draw(st.integers(0, 5)) == 0:
        layer["when"] = draw(st.sampled_from(["true", "false", "in.c > 4", "width > 1"]))
    return layer


@st.composite
def blocks(draw: Any) -> dict[str, Any]:
    """Block definitions with plain, pair and long-form parameters and `let:` values."""
    defs: dict[str, Any] = {}
    for name in draw(st.lists(st.sampled_from(["unit", "stem", "mixer"]), unique=True, max_size=2)):
        params: dict[str, Any] = {"out": draw(st.sampled_from([8, "int", {"type": "int", "default": 4}]))}
        if draw(st.booleans()):
            params["k"] = draw(st.sampled_from([[1, 3], 3, {"default": [3, 1]},
                                                {"type": "pair", "default": 1}, [1, 2, 3]]))
        body: list[Any] = [{"conv": {"out": "out", "k": "k" if "k" in params else 1,
                                     "pad": "same" if draw(st.booleans()) else 0}}]
        body.append(draw(layers(1)))
        block: dict[str, Any] = {"params": params, "body": body}
        if draw(st.booleans()):
            block["let"] = {"half": draw(st.sampled_from(["max(1, out // 2)", "out / 0", "'w' + 'x'",
                                                           "[out, out]", "in.c * 2"]))}
        defs[name] = block
    return defs


@st.composite
def documents(draw: Any) -> dict[str, Any]:
    spec_blocks = draw(blocks())
    names = tuple(spec_blocks)
    doc: dict[str, Any] = {
        "name": "prop",
        "input": [draw(st.integers(1, 8)), draw(st.sampled_from([8, 16, 32])), draw(st.sampled_from([8, 16]))],
        "params": {"width": draw(st.sampled_from([1, 2, 0.5]))},
    }
    if spec_blocks:
        doc["blocks"] = spec_blocks
    network = draw(st.lists(layers(0, names), min_size=1, max_size=4))
    if draw(st.booleans()):
        network.append({"pooled": {"adaptive_avgpool": {"size": 1}}})
        network.append("flatten")
        network.append({"fc": {"linear": {"out": draw(st.sampled_from([10, 1]))}}})
    doc["network"] = network
    return doc


# --- running one document through everything ------------------------------------------------------


def run(capsys: Any, *args: str) -> tuple[int, str, str]:
    start = time.monotonic()
    code = main(list(args))
    elapsed = time.monotonic() - start
    out, err = capsys.readouterr()
    assert elapsed < TIME_BOUND, f"{args[0]} took {elapsed:.1f}s"
    assert "Traceback" not in err, err
    assert code in (0, 1), (args, code, err)
    if code == 1:
        first = err.splitlines()[0] if err else ""
        assert LOCATED.match(first), f"{args}: the first diagnostic is not located:\n{err}"
    return code, out, err


def check_module(path: Path, factory: str, report: dict[str, Any]) -> None:
    """The compiled module imports, builds, has the static parameter count and output shape."""
    torch = pytest.importorskip("torch")
    spec = importlib.util.spec_from_file_location(f"prop_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = getattr(module, factory)()
    assert sum(p.numel() for p in model.parameters()) == report["params"]
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(1, *report["input"]))
    if isinstance(out, torch.Tensor):
        assert list(out.shape[1:]) == report["output"]


def exercise(spec: Path, capsys: Any, outcomes: dict[str, int]) -> None:
    code, _, _ = run(capsys, "check", str(spec))
    outcomes["located error" if code else "valid"] += 1
    for fmt in ("text", "md", "csv", "html"):
        assert run(capsys, "report", "--format", fmt, str(spec))[0] == code
    code_json, out, _ = run(capsys, "report", "--format", "json", str(spec))
    assert code_json == code
    report = json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} in JSON")) if code == 0 else None
    assert run(capsys, "draw", str(spec), "-o", str(spec.with_suffix(".dot")))[0] == code
    module = spec.with_name(f"module_{spec.stem}.py")
    code_compile, _, err = run(capsys, "compile", str(spec), "-o", str(module))
    if code == 0 and code_compile == 0:
        factory = re.search(r"factory (\w+)\(\)", err)
        assert factory is not None, err
        check_module(module, factory[1], report)
        outcomes["compiled and built"] += 1


def test_any_document_of_the_grammar_succeeds_or_fails_located(tmp_path, capsys):
    outcomes: dict[str, int] = {"valid": 0, "located error": 0, "compiled and built": 0}
    counter = iter(range(10**6))

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(doc=documents())
    def property_holds(doc: dict[str, Any]) -> None:
        spec = tmp_path / f"spec{next(counter)}.yaml"
        spec.write_text(yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=100))
        exercise(spec, capsys, outcomes)

    property_holds()
    print(outcomes)
    assert outcomes["located error"] > 0 and outcomes["compiled and built"] > 0, outcomes
