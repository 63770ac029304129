"""Fuzzing the front end with mutants of the zoo specs (hypothesis).

Each example takes a zoo spec (or the library it uses), applies a few random mutations to its YAML
— delete, duplicate, retype and perturb keys and values, and line-level edits that YAML itself may
refuse (duplicate keys, broken indentation) — and loads the result. Every outcome must be a checked
graph or an :class:`~archdsl.errors.ArchError` with well-formed diagnostics, never another
exception. For every valid mutant the graph must be consistent, analysable and compile to parseable
Python, and the built torch module's parameter count and output shapes must equal the static
analysis.

The runs are derandomised and bounded (``ARCHDSL_FUZZ_EXAMPLES`` per family, 60 by default) so CI
is deterministic; raise the number locally to search longer (``ARCHDSL_FUZZ_BUILD=0`` leaves out
the torch half, which is most of the time).
"""

from __future__ import annotations

import ast
import copy
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archdsl
from archdsl.codegen import compile_graph
from archdsl.errors import ArchError, SpecError, UsageError
from archdsl.expand import MAX_DIM
from archdsl.ir import Graph
from archdsl.ops import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
EXAMPLES = int(os.environ.get("ARCHDSL_FUZZ_EXAMPLES", "60"))
MAX_NODES = 5_000  # mutants may multiply repeat counts; keep each example fast

# (id, spec file, file to mutate), relative to the specs directory: a residual network, its block
# library, and an Inception network (parallel branches, auxiliary heads).
FAMILIES = [
    ("resnet18", "resnet18.yaml", "resnet18.yaml"),
    ("resnet18-blocks", "resnet18.yaml", "lib/resnet.yaml"),
    ("googlenet", "googlenet.yaml", "googlenet.yaml"),
]


# --- the vocabulary of mutations -------------------------------------------------------------------

WORDS = sorted(REGISTRY) + [
    "repeat", "dense", "parallel", "residual", "seq", "block", "args", "layer", "name", "merge",
    "after", "body", "shortcut", "connect", "from", "when", "output", "freeze", "params", "let",
    "use", "blocks", "network", "input", "doc", "out", "k", "stride", "pad", "groups", "bias",
    "size", "p", "eps", "basic", "bottleneck", "inception", "basic_conv", "num_classes", "same",
    "valid", "concat", "add", "int", "float", "str", "bool", "pair", "i", "in", "conv1", "layer1",
]
EXPRESSIONS = [
    "in.c", "in.c // 2", "in.h", "in.shape[0]", "i", "2 if i == 0 else 1", "out * 2", "num_classes",
    "max(1, in.c // 16)", "make_divisible(in.c * 0.75, 8)", "1 / 0", "in.c // 0", "out ** 99",
    "9 ** 9 ** 9", "unknown_name", "__import__('os')", "in.__class__", "open('x')", "(", "in.c +",
    "[1, 2]", "'text' * 3", "true", "null", "in.x", "stride != 1 or in.c != out", "x in y",
]
ODD_STRINGS = ["", " ", "a\nb", "x" * 200, "&anchor", "*alias", "!!python/object:os.system", "{", "'",
               "\\x00", "名前", "relu relu", "-", "1e999", "0x10", "2024-01-01"]
SCALARS = st.one_of(
    st.integers(-3, 8),
    st.sampled_from([0, 1, 2, 3, 7, 11, 64, 1000, 10**6, 2**40, 10**30]),
    st.sampled_from([0.0, 0.5, 1.5, -2.5, 1e300, 3.0]),
    st.booleans(),
    st.none(),
    st.sampled_from(WORDS),
    st.sampled_from(EXPRESSIONS),
    st.sampled_from(ODD_STRINGS),
)
VALUES = st.one_of(
    SCALARS,
    st.lists(st.integers(-1, 9), max_size=4),
    st.dictionaries(st.sampled_from(WORDS), SCALARS, max_size=3),
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=3),
)


def _locations(tree: Any, path: tuple = ()) -> list[tuple]:
    """Every path to a value inside the tree (dict keys and list indices), in document order."""
    out = [path] if path else []
    if isinstance(tree, dict):
        for key, value in tree.items():
            out.extend(_locations(value, (*path, key)))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            out.extend(_locations(value, (*path, index)))
    return out


def _parent(tree: Any, path: tuple) -> tuple[Any, Any]:
    node = tree
    for part in path[:-1]:
        node = node[part]
    return node, path[-1]


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _perturb(data: st.DataObject, value: Any) -> Any:
    """A nearby value of the same kind (an off-by-one, a sibling op name, a shuffled list)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return data.draw(st.sampled_from([value + 1, value - 1, value * 2, value // 2, -value, 0,
                                          value * 1000]))
    if isinstance(value, float):
        return data.draw(st.sampled_from([value * 2, -value, 0.0, value + 1]))
    if isinstance(value, str):
        choice = data.draw(st.integers(0, 3))
        if choice == 0 and value:
            cut = data.draw(st.integers(0, len(value) - 1))
            return value[:cut] + value[cut + 1:]  # a typo: one character dropped
        if choice == 1:
            return value + data.draw(st.sampled_from(["s", "_", "1", " ", ":", "\n"]))
        if choice == 2:
            return data.draw(st.sampled_from(EXPRESSIONS))
        return data.draw(st.sampled_from(WORDS))
    if isinstance(value, list) and value:
        items = list(value)
        order = data.draw(st.permutations(range(len(items))))
        return [items[i] for i in order][: data.draw(st.integers(0, len(items)))]
    if isinstance(value, dict) and value:
        keys = list(value)
        old = data.draw(st.sampled_from(keys))
        new = data.draw(st.sampled_from(WORDS))
        return {(new if k == old else k): v for k, v in value.items()}
    return data.draw(VALUES)


def mutate_tree(data: st.DataObject, tree: Any) -> Any:
    """One structural mutation: delete, duplicate, retype or perturb a key or value."""
    tree = copy.deepcopy(tree)
    locations = _locations(tree)
    if not locations:
        return data.draw(VALUES)
    path = data.draw(st.sampled_from(locations))
    parent, key = _parent(tree, path)
    action = data.draw(st.sampled_from(["delete", "duplicate", "retype", "perturb", "rename", "tweak",
                                        "tweak"]))
    numbers = [p for p in locations if _is_count(_parent(tree, p)[0][p[-1]])]
    if action == "tweak" and numbers:  # a plausible edit that often keeps the spec valid
        parent, key = _parent(tree, data.draw(st.sampled_from(numbers)))
        value = parent[key]
        parent[key] = data.draw(st.sampled_from([value + 1, max(1, value - 1), value * 2,
                                                 max(1, value // 2)]))
    elif action == "delete":
        del parent[key]
    elif action == "duplicate":
        if isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
        else:
            parent[data.draw(st.sampled_from(WORDS))] = copy.deepcopy(parent[key])
    elif action == "retype":
        parent[key] = data.draw(VALUES)
    elif action == "perturb":
        parent[key] = _perturb(data, parent[key])
    elif isinstance(parent, dict):  # rename a key (a typo or another known word)
        new = _perturb(data, key) if data.draw(st.booleans()) else data.draw(st.sampled_from(WORDS))
        if isinstance(new, str) and new not in parent:
            items = [(new if k == key else k, v) for k, v in parent.items()]
            parent.clear()
            parent.update(items)
    return tree


def mutate_text(data: st.DataObject, text: str) -> str:
    """One line-level edit that may break YAML itself: duplicate, delete, swap or indent a line."""
    lines = text.splitlines()
    if not lines:
        return text
    i = data.draw(st.integers(0, len(lines) - 1))
    action = data.draw(st.sampled_from(["duplicate", "delete", "swap", "indent", "dedent", "truncate"]))
    if action == "duplicate":
        lines.insert(i, lines[i])
    elif action == "delete":
        del lines[i]
    elif action == "swap":
        j = data.draw(st.integers(0, len(lines) - 1))
        lines[i], lines[j] = lines[j], lines[i]
    elif action == "indent":
        lines[i] = "  " + lines[i]
    elif action == "dedent":
        lines[i] = lines[i].lstrip()
    else:
        lines[i] = lines[i][: data.draw(st.integers(0, len(lines[i])))]
    return "\n".join(lines) + "\n"


def dump(tree: Any) -> str:
    return yaml.safe_dump(tree, sort_keys=False, allow_unicode=True, default_flow_style=None, width=100)


# --- checking one outcome ---------------------------------------------------------------------------


def check_diagnostics(error: ArchError, text: str, mutated: Path) -> None:
    """A refusal is well formed: typed, rendered, located inside the file it names."""
    assert isinstance(error, (SpecError, UsageError)), type(error)
    assert error.diagnostics, "an ArchError without diagnostics"
    assert any(d.severity == "error" for d in error.diagnostics)
    rendered = error.render()
    assert "Traceback" not in rendered
    line_count = max(1, len(text.splitlines()))
    for diag in error.diagnostics:
        assert diag.message.strip()
        if diag.loc is not None:
            assert diag.loc.line >= 1 and diag.loc.col >= 1, diag
            if Path(diag.loc.file).name == mutated.name:
                assert diag.loc.line <= line_count + 1, diag


def check_graph(graph: Graph) -> bool:
    """A valid mutant: consistent shapes, an analysis, and code that parses; True when the
    torch module was built and compared too."""
    assert isinstance(graph, Graph)
    for node in graph.nodes.values():
        assert node.shape and all(isinstance(d, int) and 1 <= d <= MAX_DIM for d in node.shape), node
        assert tuple(graph.nodes[i].shape for i in node.inputs) == node.in_shapes, node.name
    assert graph.outputs and all(o in graph.nodes for o in graph.outputs.values())
    analysis = archdsl.analyze(graph)
    assert analysis.params >= 0 and analysis.macs >= 0
    check_codegen(graph)
    return check_build(graph, analysis)


def check_codegen(graph: Graph) -> None:
    try:
        source = compile_graph(graph)
    except ArchError as error:  # e.g. a name PyTorch cannot hold: a diagnostic, not a crash
        assert error.diagnostics
        return
    ast.parse(source)


BUILD = os.environ.get("ARCHDSL_FUZZ_BUILD", "1") != "0"
BUILD_LIMITS = {"params": 30_000_000, "macs": 3_000_000_000}


def check_build(graph: Graph, analysis: Any) -> bool:
    """The built module has the static parameter count and output shapes: in eval mode the main
    output alone, in training mode every output in order (the generated ``...Outputs`` tuple)."""
    if not BUILD or analysis.params > BUILD_LIMITS["params"] or analysis.macs > BUILD_LIMITS["macs"]:
        return False
    import torch

    from archdsl.builder import build_graph

    try:
        module = build_graph(graph)
    except ArchError as error:  # the code generator refused (a diagnostic)
        assert error.diagnostics
        return False
    assert sum(p.numel() for p in module.parameters()) == analysis.params
    module.eval()
    with torch.no_grad():
        result = module(torch.zeros(1, *graph.input_shape))
    assert isinstance(result, torch.Tensor), type(result)
    assert tuple(result.shape) == (1, *graph.main_output.shape)
    shapes = list(graph.output_shapes().values())
    if len(shapes) > 1:
        module.train()
        with torch.no_grad():
            outputs = module(torch.zeros(2, *graph.input_shape))  # batch norm needs two in training
        assert [tuple(t.shape) for t in outputs] == [(2, *shape) for shape in shapes]
    return True


# --- the fuzz tests ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workdir():
    """A copy of the zoo (specs and libraries) to write mutants into."""
    with tempfile.TemporaryDirectory(prefix="archdsl-fuzz-") as tmp:
        work = Path(tmp) / "specs"
        shutil.copytree(SPECS, work)
        yield work


@pytest.mark.parametrize("family, spec_file, target", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_mutants_compile_or_give_diagnostics(family, spec_file, target, workdir):
    original = (workdir / target).read_text(encoding="utf-8")
    tree = yaml.safe_load(original)
    spec_path, target_path = workdir / spec_file, workdir / target
    archdsl.load(spec_path, max_nodes=MAX_NODES)  # the unmutated family is valid
    outcomes: Counter[str] = Counter()

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        mutant = tree
        for _ in range(data.draw(st.integers(1, 3), label="mutations")):
            mutant = mutate_tree(data, mutant)
        text = dump(mutant)
        if data.draw(st.integers(0, 3), label="line edit") == 0:
            text = mutate_text(data, text)
        target_path.write_text(text, encoding="utf-8")
        try:
            try:
                graph = archdsl.load(spec_path, max_nodes=MAX_NODES)
            except ArchError as error:
                check_diagnostics(error, text, target_path)
                outcomes["diagnostic"] += 1
                return
            outcomes["built" if check_graph(graph) else "valid"] += 1
        finally:
            target_path.write_text(original, encoding="utf-8")

    run()
    # The mutations must exercise both sides: some mutants stay valid, many are refused.
    print(f"{family}: {dict(outcomes)}")  # shown with -s: how many mutants were refused / built
    assert outcomes["diagnostic"] > 0, outcomes
    assert outcomes["valid"] + outcomes["built"] > 0 or EXAMPLES < 20, outcomes
    if BUILD and EXAMPLES >= 20:
        assert outcomes["built"] > 0, outcomes  # the torch half really ran


def test_mutations_are_deterministic():
    """The same draws give the same mutant (CI failures reproduce)."""
    tree = yaml.safe_load((SPECS / "resnet18.yaml").read_text(encoding="utf-8"))

    def mutants() -> list[str]:
        seen: list[str] = []

        @settings(max_examples=5, deadline=None, derandomize=True, database=None)
        @given(data=st.data())
        def collect(data: st.DataObject) -> None:
            seen.append(dump(mutate_tree(data, tree)))

        collect()
        return seen

    assert mutants() == mutants()
