"""Block templates (archdsl.codegen.blocktemplates): every block used, expanded once over symbolic values.

A template is held to the concrete expansion: at its probes (the first instance's values) each
item has the shape and attributes of the node the expander made for it, and every other instance
gives the same template (or the block is written per use); the blocks the code generator writes
one generic class for are those whose template is generic.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import archdsl
from archdsl.codegen import generate
from archdsl.codegen.blocktemplates import block_templates, template_signature
from archdsl.codegen.plan import Planner
from archdsl.codegen.sym import MISSING, probe_of

SPECS = Path(__file__).resolve().parent.parent / "specs"
ZOO = sorted(p.stem for p in SPECS.glob("*.yaml"))


def _probe(value):
    if isinstance(value, (tuple, list)):
        return tuple(_probe(v) for v in value)
    return probe_of(value)


def _instances(graph, block):
    return [s for s in graph.scopes.values() if s.kind == "block" and s.block == block]


@pytest.mark.parametrize("name", ZOO)
def test_templates_describe_every_block_used(name):
    graph = archdsl.load(SPECS / f"{name}.yaml")
    templates = block_templates(graph)
    used = {s.block for s in graph.scopes.values() if s.kind == "block"}
    assert used <= set(templates)
    checked = 0
    for block in used:
        template = templates[block]
        for scope in _instances(graph, block):
            assert scope.template == (block if template.per_use is None else None)
        if template.per_use is not None:
            continue
        first = _instances(graph, block)[0]
        assert _probe(template.out_shape) == tuple(first.out_shape)
        for item in template.items.values():
            if item.kind != "op" or (item.when is not None and item.when.probe is not True) \
                    or item.name_varies:
                continue  # (a use is checked by its own block; an absent item has no node)
            node = graph.nodes[f"{first.path}.{item.name}"]
            assert node.op == item.target
            assert _probe(item.shape) == tuple(node.shape), item.name
            attrs = node.attrs.as_dict()
            for key, value in item.attrs.items():
                probe = _probe(value)
                if MISSING not in (probe if isinstance(probe, tuple) else (probe,)):
                    assert probe == _probe(attrs[key]), (item.name, key)
            checked += 1
    assert checked or not used


@pytest.mark.parametrize("name", ZOO)
def test_generic_blocks_are_those_code_generation_writes_once(name):
    """The planner writes a block per use when its template is; a generic template whose class
    the translator still refuses would be written per use too, and fail here."""
    graph = archdsl.load(SPECS / f"{name}.yaml")
    templates = block_templates(graph)
    planner = Planner(graph)
    planner.plan()
    generic = {block for block, info in planner.blocks.items() if info is not None}
    assert generic == {block for block, t in templates.items() if t.per_use is None}


def test_a_symbolic_when_is_a_condition_on_its_items():
    """MobileNetV3's conv_bn_act: the activation follows the `act` argument; two layers share the
    name `2` under exclusive conditions, and both are items, each under its own."""
    graph = archdsl.load(SPECS / "mobilenet_v3_large.yaml")
    template = block_templates(graph)["conv_bn_act"]
    assert template.per_use is None
    conditional = [i for i in template.items.values() if i.kind == "op" and i.when is not None]
    assert {i.target for i in conditional} == {"relu", "hardswish", "silu"}
    assert {i.name for i in conditional} == {"2"}
    assert sum(i.when.probe is True for i in conditional) == 1
    assert all("act" in i.when.text for i in conditional)


def test_instances_that_differ_in_a_decided_test_make_the_block_per_use(tmp_path):
    """A ceil-mode pool keeps its last window only if it starts inside the input or the left
    padding: a test on the input size, decided by the first instance's probe (5 wide: dropped).
    The second instance (4 wide) decides it the other way, so the block has no generic class."""
    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 5, 5]\n"
        "blocks:\n"
        "  unit:\n"
        "    body:\n"
        "      - {maxpool: {k: 2, stride: 2, pad: 1, ceil: true}}\n"
        "network:\n"
        "  - {unit: {}}\n"
        "  - {conv: {out: 3, k: 2, pad: 1}}\n"
        "  - {unit: {}}\n")
    graph = archdsl.load(spec)
    assert [s.in_shape for s in _instances(graph, "unit")] == [(3, 5, 5), (3, 4, 4)]
    template = block_templates(graph)["unit"]
    assert template.per_use == "block `unit` needs different code for unit and unit_1"
    assert all(s.template is None for s in _instances(graph, "unit"))
    source = generate(graph).source
    assert "class Unit_1(nn.Module)" in source and "class Unit_2(nn.Module)" in source


def test_instances_that_decide_alike_share_the_template(tmp_path):
    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 5, 5]\n"
        "blocks:\n"
        "  unit:\n"
        "    body:\n"
        "      - {maxpool: {k: 2, stride: 2, pad: 1, ceil: true}}\n"
        "network:\n"
        "  - {unit: {}}\n"
        "  - {unit: {}}\n")
    graph = archdsl.load(spec)
    assert [s.out_shape for s in _instances(graph, "unit")] == [(3, 3, 3), (3, 2, 2)]
    assert block_templates(graph)["unit"].per_use is None
    assert "class Unit(nn.Module)" in generate(graph).source


def test_signature_has_no_probes():
    graph = archdsl.load(SPECS / "resnet18.yaml")
    template = block_templates(graph)["basic"]
    text = "\n".join(template_signature(template))
    assert "conv1 op conv {out: out, k: (3, 3), stride: (stride, stride), pad: (1, 1)" in text
    assert "out relu_1 (out, (in_height - 1) // stride + 1, (in_width - 1) // stride + 1)" in text
    assert "probe" not in text


def test_a_block_parameter_hides_a_spec_parameter_from_its_body_not_from_blocks_it_uses(tmp_path):
    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 8, 8]\nparams: {width: 8}\n"
        "blocks:\n"
        "  inner:\n"
        "    body: {conv: {out: width, k: 1}}\n"
        "  outer:\n"
        "    params: {width: int}\n"
        "    body:\n"
        "      - {conv: {out: width, k: 1}}\n"
        "      - inner\n"
        "network:\n"
        "  - {outer: {width: 4}}\n")
    graph = archdsl.load(spec)
    assert graph.nodes["outer.conv"].shape[0] == 4 and graph.nodes["outer.inner.conv"].shape[0] == 8
    templates = block_templates(graph)
    outer, inner = templates["outer"], templates["inner"]
    assert outer.items["conv"].shape[0].text == "width"
    assert outer.items["inner"].kind == "use" and outer.out_shape[0] == 8
    assert inner.reads == {"width"} and outer.reads == {"width"}  # (passed on to inner)
