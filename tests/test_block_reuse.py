"""Identical block uses are copied, not expanded again (issue 14, part 3): the copy must be exactly
the graph a full expansion makes -- every node (name, op, attributes, shapes, scope, location, the
chain of block uses, ``freeze``), every scope (unnamed ones numbered alike), the outputs and the
warnings -- within one expansion and across the expansions of a sweep, and a limit must stop at the
same layer with the same message."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

import archdsl
from archdsl import pipeline
from archdsl.errors import SpecError
from archdsl.expand import Expander, block_reads
from archdsl.sweep import make_axes, run_sweep
from tests.conftest import ROOT, SPECS, zoo_specs

CORPUS = ROOT / "tests" / "corpus"
VALID = [*zoo_specs(), *sorted(SPECS.glob("pending/*.yaml")),
         *sorted((CORPUS / "compiles").glob("*.yaml")), *sorted((CORPUS / "codegen").glob("*.yaml")),
         *sorted((CORPUS / "draw").glob("*.yaml"))]


def _record(graph: archdsl.ir.Graph) -> tuple[Any, ...]:
    """Everything a graph holds, comparable with ``==`` (node and scope order included)."""
    return (list(graph.nodes.items()), list(graph.scopes.items()), dict(graph.outputs),
            dict(graph.output_locs), [w.render() for w in graph.warnings],
            {name: list(readers) for name, readers in graph.readers.items()})


def _expand(spec: Any, params: dict[str, Any], *, reuse: bool, cache: dict[Any, Any] | None = None,
            max_nodes: int = 200_000) -> tuple[Expander, archdsl.ir.Graph]:
    expander = Expander(spec, params, pipeline.spec_input(spec, params), max_nodes, cache)
    expander.reuse_blocks = reuse
    return expander, expander.run()


@pytest.mark.parametrize("path", VALID, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_copied_block_is_the_block_expanded_again(path: Path):
    spec = pipeline.parse(path)
    params = pipeline.resolve_params(spec, {})
    plain, expected = _expand(spec, params, reuse=False)
    reused, graph = _expand(spec, params, reuse=True)
    assert _record(graph) == _record(expected)
    assert (reused.work, reused.weights) == (plain.work, plain.weights)


def test_the_zoo_reuses_its_blocks():
    """Not a vacuous pass: the ResNets copy most of their blocks (ResNet-1202: 600 block uses,
    a handful of distinct bodies)."""
    spec = pipeline.parse(SPECS / "resnet_cifar.yaml")
    expander, graph = _expand(spec, pipeline.resolve_params(spec, {"depth": 1202}), reuse=True)
    uses = sum(1 for s in graph.scopes.values() if s.kind == "block")
    bodies = sum(1 for key in expander.block_cache if key[0] == "body")
    assert uses == 600
    assert bodies <= 6


SWEEPS = {
    "resnet_cifar.yaml": {"depth": [20, 32, 56], "width": [8, 16], "num_classes": [10, 100]},
    "densenet121.yaml": {"growth_rate": [12, 32], "bn_size": [2, 4], "num_classes": [10, 1000]},
    "shufflenet_v2_x1_0.yaml": {"width": [0.5, 1.0], "num_classes": [10, 1000]},
}


@pytest.mark.parametrize("name", SWEEPS)
def test_a_body_kept_across_sweep_points_is_the_block_expanded_there(name: str):
    spec = pipeline.parse(SPECS / name)
    grid = SWEEPS[name]
    unknown = set(grid) - set(spec.params)
    assert not unknown, f"{name} has no parameters {unknown}"
    cache: dict[Any, Any] = {}
    for values in itertools.product(*grid.values()):
        params = pipeline.resolve_params(spec, dict(zip(grid, values, strict=True)))
        _, expected = _expand(spec, params, reuse=False)
        _, graph = _expand(spec, params, reuse=True, cache=cache)
        assert _record(graph) == _record(expected), values


def test_a_sweep_gives_what_each_point_analysed_alone_gives():
    spec = pipeline.parse(SPECS / "resnet_cifar.yaml")
    axes = make_axes(spec, ("depth=20,44", "width=8,16", "num_classes=10,100"), {})
    sweep = run_sweep(spec, axes)
    for point in sweep.points:
        alone = archdsl.analyze(archdsl.load(SPECS / "resnet_cifar.yaml", **point.values))
        assert point.record["params"] == alone.params
        assert point.record["macs"] == alone.macs
        assert point.record["depth"] == alone.depth


def test_a_limit_stops_a_copy_where_the_expansion_stops(write_spec):
    """ResNet-1202 under a node limit: the block use that passes it fails with the message and
    location of a full expansion (the copy that would pass it is expanded instead)."""
    spec = pipeline.parse(SPECS / "resnet_cifar.yaml")
    params = pipeline.resolve_params(spec, {"depth": 1202})
    messages = []
    for reuse in (False, True):
        with pytest.raises(SpecError) as error:
            _expand(spec, params, reuse=reuse, max_nodes=3000)
        messages.append([d.render() for d in error.value.diagnostics])
    assert messages[0] == messages[1]
    assert "3,000 nodes" in messages[1][0]


def test_a_block_reading_an_outer_layer_is_expanded_at_each_use(write_spec):
    """`from:` a layer outside the block: each use reads that layer, whatever feeds the use, so
    the body is not copied (the second use has the first's input shape; a copy would read `mid`,
    its own input, where the expansion reads `stem`)."""
    path = write_spec("""
        name: outer
        input: [4, 8, 8]
        blocks:
          mix:
            params: {n: {type: int, default: 4}}
            body:
              - a: {conv: {out: n, k: 1}}
              - {concat: {}, from: [a, stem]}
        network:
          - stem: {conv: {out: 4, k: 1}}
          - one: {mix: {}}
          - mid: {conv: {out: 4, k: 1}}
          - two: {mix: {}}
    """)
    spec = pipeline.parse(path)
    params = pipeline.resolve_params(spec, {})
    _, expected = _expand(spec, params, reuse=False)
    expander, graph = _expand(spec, params, reuse=True)
    assert _record(graph) == _record(expected)
    assert not [key for key in expander.block_cache if key[0] == "body"]
    assert graph.nodes["two.concat"].inputs == ("two.a", "stem")


def test_a_frozen_use_does_not_freeze_the_copies(write_spec):
    path = write_spec("""
        name: frozen
        input: [4, 8, 8]
        blocks:
          unit:
            body: [{conv: {out: 4, k: 3, pad: 1}}, bn, relu]
        network:
          - first: {unit: {}, freeze: true}
          - second: unit
    """)
    spec = pipeline.parse(path)
    params = pipeline.resolve_params(spec, {})
    _, expected = _expand(spec, params, reuse=False)
    _, graph = _expand(spec, params, reuse=True)
    assert _record(graph) == _record(expected)
    assert [n.freeze for n in graph.op_nodes()] == [True] * 3 + [False] * 3


def test_a_block_keys_only_the_spec_parameters_it_reads():
    spec = pipeline.parse(SPECS / "resnet_cifar.yaml")
    assert "num_classes" not in block_reads(spec, "basic_a")
    assert "depth" not in block_reads(spec, "basic_a")


def test_a_copy_renames_only_node_references(write_spec):
    """The block's input is a node named `concat` and its parallel merges by `concat`: the copy
    renames the merge node, not the merge op's name."""
    path = write_spec("""
        name: names
        input: [4, 8, 8]
        blocks:
          split:
            body:
              parallel:
                - {conv: {out: 2, k: 1}}
                - {conv: {out: 2, k: 1}}
              merge: concat
        network:
          - a: {conv: {out: 2, k: 1}}
          - b: {conv: {out: 2, k: 1}, from: input}
          - {concat: {}, from: [a, b]}
          - one: split
          - two: split
    """)
    spec = pipeline.parse(path)
    params = pipeline.resolve_params(spec, {})
    _, expected = _expand(spec, params, reuse=False)
    expander, graph = _expand(spec, params, reuse=True)
    assert _record(graph) == _record(expected)
    assert [key for key in expander.block_cache if key[0] == "body"]
    merges = [s.meta["merge"] for s in graph.scopes.values() if s.kind == "parallel"]
    assert merges == ["concat", "concat"]


@pytest.mark.parametrize("args", [
    ["report", str(SPECS / "resnet18.yaml"), "--format", "json", "-o", "-"],
    ["sweep", str(SPECS / "resnet_cifar.yaml"), "--grid", "depth=20,32", "--format", "csv"],
    ["check", str(SPECS / "densenet121.yaml")],
], ids=lambda a: a[0])
def test_check_report_and_sweep_import_neither_networkx_nor_the_diagram_module(args):
    """networkx is about 90 ms of a cold start: the graph builds its networkx view only when asked
    (``Graph.nx``); report's options take the layout time limit from util, not draw."""
    import subprocess
    import sys

    code = ("import sys; from archdsl.cli import main\n"
            f"try:\n    main({args!r})\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "print(sorted(m for m in ('networkx', 'archdsl.draw', 'graphviz') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
