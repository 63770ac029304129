"""Block templates (archdsl.blocks.expander): every block used, expanded once over symbolic values.

A template is held to the concrete expansion: at its probes (the first instance's values) each
item has the shape and attributes of the node the expander made for it, and every other instance
gives the same template (or the block is written per use); the blocks the code generator writes
one generic class for are those whose template is generic.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import archdsl
from archdsl.blocks.expander import block_templates, template_signature
from archdsl.blocks.sym import MISSING, probe_of
from archdsl.codegen import generate
from archdsl.codegen.plan import Planner, make_plan
from archdsl.codegen.translate import ClassBuilder
from archdsl.ir import TemplateItem

SPECS = Path(__file__).resolve().parent.parent / "specs"
# what a class walked from its template generates, as the AST walk (retired) wrote it at 7908a11
WALKED = Path(__file__).resolve().parent / "corpus" / "walked"
ZOO = sorted(p.stem for p in SPECS.glob("*.yaml"))


def _probe(value):
    if isinstance(value, (tuple, list)):
        return tuple(_probe(v) for v in value)
    return probe_of(value)


def _instances(graph, block):
    return [s for s in graph.scopes.values() if s.kind == "block" and s.block == block]


def _rekeyed(template, old: str, new: str) -> None:
    """The item or scope of ``template`` keyed ``old``, and what is inside it, keyed ``new``."""
    def key(k):
        return new + k[len(old):] if k == old or k.startswith(old + ".") else k

    for item in template.items.values():
        item.key, item.name, item.inputs = key(item.key), key(item.name), tuple(map(key, item.inputs))
        item.scope = key(item.scope)
    for scope in template.scopes.values():
        scope.path, scope.members = key(scope.path), [key(m) for m in scope.members]
        scope.parent = key(scope.parent) if scope.parent is not None else None
        if "parts" in scope.meta:  # (a construct's: which part made each member)
            scope.meta["parts"] = {key(k): part for k, part in scope.meta["parts"].items()}
    template.items = {item.key: item for item in template.items.values()}
    template.scopes = {scope.path: scope for scope in template.scopes.values()}
    template.members = [key(m) for m in template.members]
    template.output = key(template.output)


def _unit_net(tmp_path, body: str, input="[3, 8, 8]", params=None, let=None, uses=("unit",)):
    """The spec ``net`` (input ``input``) whose one block ``unit`` has ``params`` and ``let`` (if
    given) and the body ``body`` (its list, as the spec's lines), its network ``uses``, loaded."""
    spec = tmp_path / "net.yaml"
    spec.write_text(
        f"name: net\ninput: {input}\n"
        "blocks:\n"
        "  unit:\n"
        + (f"    params: {params}\n" if params else "")
        + (f"    let: {let}\n" if let else "")
        + "    body:\n"
        + body
        + "network:\n"
        + "".join(f"  - {use}\n" for use in uses))
    return archdsl.load(spec)


def _keep_walks(monkeypatch):
    """Each ClassBuilder keeps the steps its template's walk gave its layers (``walked_steps``,
    every one with its item or scope: :meth:`ClassBuilder.template_walk`)."""
    walk = ClassBuilder.template_walk

    def kept(builder):
        builder.walked_steps = walk(builder)
        assert all(step.member is not None for step in builder.walked_steps)
        return builder.walked_steps

    monkeypatch.setattr(ClassBuilder, "template_walk", kept)


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
    assert generic == {block for block, t in templates.items() if block and t.per_use is None}


@pytest.mark.parametrize("spec", [*(SPECS / f"{name}.yaml" for name in ZOO),
                                  *sorted((SPECS.parent / "tests/corpus/compiles").glob("*.yaml"))],
                         ids=lambda p: p.stem)
def test_a_generic_class_names_its_layers_as_its_template_keys_them(spec, monkeypatch):
    """Every op layer, block use and merge of a generic class built from its template's probes
    (or of a class written per use: its use's bound template) has the key (its path in the
    class, `proj#1` for a second `proj`) of an item of that op or block, a named sequence or
    repeat that of its scope: the translator names as the template does (a walked layer: as
    its item or scope is keyed)."""
    keyed = []

    def checked(original):  # a merge's key is the key of an item of its op (ClassBuilder.merge
        # asserts the item its construct's step gives is the one keyed so)
        def merge(builder, item, inputs, ctx, *args, **kwargs):
            if builder.template is not None:
                found = builder.template.items.get(item.key)
                assert found is item and found.kind == "op", (builder.template.name, item.key)
                keyed.append(item.key)
            return original(builder, item, inputs, ctx, *args, **kwargs)
        return merge

    def named(original):  # a walked layer's key (layer_key: its name too) is that of the item
        # its step gives it (an op layer's, a block use's: of its op or block), or of its named
        # construct's scope
        def key_of(builder, step, ctx):
            name, key = original(builder, step, ctx)
            assert builder.template is not None
            member = builder.walked_member(step)
            if isinstance(member, TemplateItem):
                item = builder.template.items.get(key)
                assert item is not None and item is member and member.kind in ("op", "use"), \
                    (builder.template.name, key)
            else:
                assert builder.template.scopes[key] is member, key
            keyed.append(key)
            return name, key
        return key_of

    monkeypatch.setattr(ClassBuilder, "merge", checked(ClassBuilder.merge))
    monkeypatch.setattr(ClassBuilder, "layer_key", named(ClassBuilder.layer_key))
    graph = archdsl.load(spec)
    Planner(graph).plan()
    assert keyed or not any(name and t.per_use is None for name, t in graph.templates.items())


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
    graph = _unit_net(
        tmp_path,
        "      - {maxpool: {k: 2, stride: 2, pad: 1, ceil: true}}\n",
        input="[3, 5, 5]", uses=("{unit: {}}", "{conv: {out: 3, k: 2, pad: 1}}", "{unit: {}}"))
    assert [s.in_shape for s in _instances(graph, "unit")] == [(3, 5, 5), (3, 4, 4)]
    template = block_templates(graph)["unit"]
    assert template.per_use == "block `unit` needs different code for unit and unit_1"
    assert all(s.template is None for s in _instances(graph, "unit"))
    source = generate(graph).source
    assert "class Unit_1(nn.Module)" in source and "class Unit_2(nn.Module)" in source


def test_instances_that_decide_alike_share_the_template(tmp_path):
    graph = _unit_net(
        tmp_path,
        "      - {maxpool: {k: 2, stride: 2, pad: 1, ceil: true}}\n",
        input="[3, 5, 5]", uses=("{unit: {}}", "{unit: {}}"))
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


def test_the_network_has_a_template_of_its_own():
    """`graph.templates[""]`: the network body, with every spec parameter written in (what
    `archdsl check` plans); its items are the layers outside blocks, keyed by their node names."""
    graph = archdsl.load(SPECS / "resnet18.yaml")
    network = block_templates(graph)[""]
    assert network.per_use is None and graph.scopes[""].template == ""
    assert network.params == {} and network.inputs == (3, 224, 224)
    assert network.doc == graph.spec.doc and network.loc == graph.spec.loc
    outside = [n.name for n in graph.op_nodes() if graph.scopes[n.scope].kind != "block"
               and not any(n.name.startswith(s.path + ".") for s in graph.scopes.values()
                           if s.kind == "block")]
    assert [k for k, i in network.items.items() if i.kind == "op"] == outside
    assert network.items["layer2.0"].kind == "use" and network.items["layer2.0"].target == "basic"
    assert network.items["layer2.0"].shape == graph.scopes["layer2.0"].out_shape
    assert network.items["fc"].shape == (1000,)


def test_the_network_template_over_parameters_carries_its_declarations():
    """Over the spec parameters the class takes: their types and the graph's values, the input
    over them, the `checks:` as conditions over them, the side outputs."""
    from archdsl.blocks.expander import network_template

    graph = archdsl.load(SPECS / "resnet_cifar.yaml")
    t = network_template(graph, ("width", "num_classes"))
    assert t.params == {"width": ("int", 16, False), "num_classes": ("int", 10, False)}
    assert [(c if isinstance(c, bool) else c.text, m) for c, m in t.checks] == [
        (True, "depth must be 6n + 2 (20, 32, 44, 56, 110, 1202)"),
        ("width >= 1", "width (the first stage's filters) must be at least 1")]
    googlenet = archdsl.load(SPECS / "googlenet.yaml", aux_logits=True)
    outputs = block_templates(googlenet)[""].outputs
    assert outputs == {"aux1": "aux1", "aux2": "aux2"}
    assert block_templates(archdsl.load(SPECS / "googlenet.yaml"))[""].outputs == {}


def test_items_say_whether_the_spec_named_the_layer():
    graph = archdsl.load(SPECS / "vgg16.yaml")
    network = block_templates(graph)[""]
    features = [i for i in network.items.values() if i.name.startswith("features.")]
    assert features and not any(i.named for i in features)  # numbered by position
    basic = block_templates(archdsl.load(SPECS / "resnet18.yaml"))["basic"]
    assert basic.items["conv1"].named and basic.items["bn2"].named
    assert not basic.items["add"].named  # (the residual's add)
    layer1 = block_templates(archdsl.load(SPECS / "resnet18.yaml"))[""].items["layer1.0"]
    assert layer1.named  # (a named repeat names its members `0`, `1`)


def test_items_and_scopes_record_where_their_names_are_written(tmp_path):
    """A template item or scope records where its name is written (``name_loc``): the spec's
    `name:` for a named layer or construct, a name template's for a repeat's copy, none for an
    automatic name or a numbered copy (a refusal of the name points there, else at ``loc``)."""
    graph = _unit_net(
        tmp_path,
        "      - first: {conv: {out: 4, k: 1}}\n"
        "      - {repeat: 2, layer: {conv: {out: 4, k: 1}}, name: \"conv{i+1}\"}\n"
        "      - stage: [{conv: {out: 4, k: 1}}, relu]\n"
        "      - acts: {repeat: 2, layer: relu}\n"
        "      - relu\n")
    unit = block_templates(graph)["unit"]
    first, conv1, conv2 = unit.items["first"], unit.items["conv1"], unit.items["conv2"]
    assert (first.name_loc.line, first.name_loc.col) == (6, 9) and first.loc.col == 16
    assert conv1.name_loc == conv2.name_loc != conv1.loc  # (the name template's: not the layer's)
    assert (conv1.name_loc.line, conv1.name_loc.col) == (7, 58)
    stage, acts = unit.scopes["stage"], unit.scopes["acts"]
    assert (stage.name_loc.line, stage.name_loc.col) == (8, 9) and stage.loc.col == 16
    assert (acts.name_loc.line, acts.name_loc.col) == (9, 9)
    assert unit.items["acts.0"].name_loc is None  # (a numbered copy's name: its number)
    assert unit.items["stage.0"].name_loc is None and unit.items["relu"].name_loc is None
    uses = block_templates(graph)[""].items["unit"]
    assert uses.name_loc is None  # (an unnamed use)


def test_items_carry_their_freeze(tmp_path):
    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 8, 8]\n"
        "blocks:\n"
        "  unit:\n"
        "    body:\n"
        "      - stem: [{conv: {out: 4, k: 3, pad: 1}}, bn]\n"
        "        freeze: true\n"
        "      - head: {conv: {out: 4, k: 1}}\n"
        "network:\n"
        "  - a: unit\n"
        "  - b: unit\n"
        "    freeze: true\n")
    templates = block_templates(archdsl.load(spec))
    unit = templates["unit"]
    assert {k: i.freeze for k, i in unit.items.items()} == {
        "stem.0": True, "stem.1": True, "head": False}
    assert templates[""].items["b"].freeze and not templates[""].items["a"].freeze


def test_a_layer_under_a_symbolic_when_has_a_scope_of_its_own():
    """MobileNetV3's conv_bn_act: each activation under its own `when:` is in a scope of kind
    `when` holding the condition; the items keep the conjunction."""
    graph = archdsl.load(SPECS / "mobilenet_v3_large.yaml")
    template = block_templates(graph)["conv_bn_act"]
    conditional = [i for i in template.items.values() if i.kind == "op" and i.when is not None]
    scopes = [template.scopes[i.scope] for i in conditional]
    assert [s.kind for s in scopes] == ["when"] * len(conditional)
    assert len({s.path for s in scopes}) == len(conditional)
    assert [s.meta["when"].text for s in scopes] == [i.when.text for i in conditional]
    assert all(s.members == [k] for s, k in zip(scopes, (k for k, i in template.items.items()
                                                        if i in conditional)))


def test_an_unnamed_pass_through_that_reads_or_is_an_output_is_an_item(tmp_path):
    """An unnamed `identity` makes no node where it only passes the previous layer's output
    on; with `from:` or `output:` it is a node (and an item) of its own, as a named one is: the
    value it reads (``inputs``), and the value `output:` names, told apart from the layer
    before it (whose node the output named before, so the class took that layer for the
    output's)."""
    spec = tmp_path / "net.yaml"
    spec.write_text("name: net\ninput: [3, 8, 8]\nnetwork:\n"
                    "  - a: {conv: {out: 4, k: 1}}\n"
                    "  - {identity: {}, output: aux}\n"
                    "  - {conv: {out: 6, k: 1}}\n"
                    "  - {identity: {}, from: a}\n"
                    "  - identity\n")
    graph = archdsl.load(spec)
    assert [(n.name, n.inputs) for n in graph.op_nodes() if n.op == "identity"] == [
        ("identity", ("a",)), ("identity_1", ("a",))]  # (the last one makes none)
    assert graph.outputs == {"out": "identity_1", "aux": "identity"}
    network = block_templates(graph)[""]
    assert network.outputs == {"aux": "identity"} and network.output == "identity_1"
    out, read = network.items["identity"], network.items["identity_1"]
    assert (out.kind, out.target, out.inputs, out.reads) == ("op", "identity", ("a",), False)
    assert (read.inputs, read.reads) == (("a",), True)
    assert network.members == ["a", "identity", "conv", "identity_1"]


def _exclusive_branches(tmp_path, second: str):
    """A block with two sequences named `branch2` under exclusive `when:`s (the second one's
    layer ``second``), used once each way."""
    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 8, 8]\n"
        "blocks:\n"
        "  unit:\n"
        "    params: {wide: bool}\n"
        "    body:\n"
        "      - branch2: [{conv: {out: 8, k: 1}}, relu]\n"
        "        when: wide\n"
        f"      - branch2: [{second}]\n"
        "        when: not wide\n"
        "network:\n"
        "  - a: {unit: {wide: true}}\n"
        "  - b: {unit: {wide: false}}\n")
    return archdsl.load(spec)


def test_constructs_sharing_a_name_under_exclusive_whens_keep_their_own_scopes(tmp_path):
    graph = _exclusive_branches(tmp_path, "{conv: {out: 6, k: 3, pad: 1}}")
    unit = block_templates(graph)["unit"]
    assert unit.per_use is None
    named = {p: s for p, s in unit.scopes.items() if s.kind == "seq"}
    assert set(named) == {"branch2", "branch2#1"}
    assert named["branch2"].members == ["branch2.0", "branch2.1"]
    assert named["branch2#1"].members == ["branch2#1.0"]
    second = unit.items["branch2#1.0"]
    assert second.name == "branch2.0" and second.scope == "branch2#1"
    assert second.attrs["out"] == 6 and unit.items["branch2.0"].attrs["out"] == 8


def test_a_block_template_carries_its_doc_location_and_checks(tmp_path):
    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 8, 8]\n"
        "blocks:\n"
        "  unit:\n"
        "    doc: One unit.\n"
        "    params: {out: int}\n"
        "    checks: {\"out % 2 == 0\": out must be even}\n"
        "    body: {conv: {out: out, k: 1}}\n"
        "network:\n"
        "  - a: {unit: {out: 4}}\n")
    graph = archdsl.load(spec)
    unit = block_templates(graph)["unit"]
    assert unit.doc == "One unit." and unit.loc == graph.spec.blocks["unit"].loc
    assert [(c.text, m) for c, m in unit.checks] == [("out % 2 == 0", "out must be even")]


def test_the_network_class_header_is_its_template(tmp_path):
    """The network class's arguments, defaults, input and checks are the header template's
    (`network_template(..., body=False)` over the arguments the class takes): a `--set` value
    is the default, a check over an argument is raised at construction, one over a parameter
    written in (a repeat count) is decided and left out."""
    from archdsl.blocks.expander import network_template

    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [channels, 8, 8]\n"
        "doc: A small net.\n"
        "params: {channels: 3, width: 4, depth: 2}\n"
        "checks: {\"width >= 2\": width must be at least 2, \"depth >= 1\": no layers}\n"
        "network:\n"
        "  - {repeat: depth, layer: {conv: {out: width, k: 1}}}\n"
        "  - flatten\n"
        "  - fc: {linear: {out: 2}}\n")
    graph = archdsl.load(spec, width=6)
    header = network_template(graph, ("channels", "width"), body=False)
    assert header.params == {"channels": ("int", 3, False), "width": ("int", 6, False)}
    assert header.locals == {"channels": "channels", "width": "width"} and header.items == {}
    assert [probe_of(d) for d in header.inputs] == [3, 8, 8] and header.inputs[0].text == "channels"
    assert [c if isinstance(c, bool) else c.text for c, _ in header.checks] == ["width >= 2", True]
    assert header.doc == "A small net."
    source = generate(graph).source
    assert "def __init__(self, channels: int = 3, width: int = 6) -> None:" in source
    assert 'if not width >= 2:\n            raise ValueError("width must be at least 2")' in source
    assert '"no layers"' not in source and "`depth=2` (" in source  # (written in)
    assert '    """A small net.' in source


def test_a_block_only_the_network_class_reaches_takes_its_declarations(tmp_path):
    """A block used only under a `when:` that a constructor argument decides (false here, so no
    instance and no template): its class's docstring and signature come from its declarations."""
    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 8, 8]\nparams: {extra: false}\n"
        "blocks:\n"
        "  unit:\n"
        "    doc: A unit.\n"
        "    params: {out: 4}\n"
        "    body: [{conv: {out: out, k: 1}}, relu]\n"
        "network:\n"
        "  - {conv: {out: 4, k: 1}}\n"
        "  - u: {unit: {}}\n"
        "    when: extra\n"
        "  - flatten\n"
        "  - fc: {linear: {out: 2}}\n")
    graph = archdsl.load(spec)
    source = generate(graph).source
    assert "unit" not in graph.templates
    assert '    """A unit.\n\n    Block `unit` of net.yaml.\n    """' in source
    assert "def __init__(self, in_channels: int, out: int = 4) -> None:" in source
    assert "if extra:\n            self.u = Unit(4)" in source


def test_shared_names_come_from_the_template():
    """A generic class's layers that share a name are read from its template's keys (`proj#1`):
    two `proj` under exclusive symbolic `when:`s share it; one whose `when:` is false in the
    definition makes no item, so the other is one module, `None` when absent (the AST walk
    counted both and wrote a placeholder and a config flag)."""
    from archdsl.codegen.modules import shared_item_names

    exclusive = archdsl.load(Path(__file__).parent / "corpus/compiles/exclusive_when_same_name.yaml")
    assert shared_item_names(block_templates(exclusive)["unit"]) == {"proj"}
    graph = archdsl.load(Path(__file__).parent / "corpus/compiles/when_false_shares_a_name.yaml")
    assert shared_item_names(block_templates(graph)["unit"]) == frozenset()
    source = generate(graph).source
    assert "        else:\n            self.proj = None" in source
    assert "if self.proj is not None:" in source and "nn.Identity()" not in source
    compile(source, "net.py", "exec")  # (built and run: test_codegen's corpus cases)


def test_the_network_template_reads_the_input_as_the_expansion_does(tmp_path):
    """With every value written in, the network's template evaluates as the expansion (`in.c`
    and `in.h` are the input's sizes) and its items are the graph's nodes."""
    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 8, 8]\n"
        "network:\n"
        "  - {conv: {out: \"in.c * 2\", k: 1}}\n"
        "  - flatten\n"
        "  - fc: {linear: {out: \"in.h\"}}\n")
    graph = archdsl.load(spec)
    network = block_templates(graph)[""]
    assert network.per_use is None
    assert {k: (i.attrs, i.shape) for k, i in network.items.items()} == {
        n.name: (n.attrs.as_dict(), n.shape) for n in graph.op_nodes()}
    assert network.items["conv"].attrs["out"] == 6 and network.items["fc"].shape == (8,)


def test_a_generic_class_reads_its_op_attributes_from_the_template(tmp_path):
    """A generic block class takes its op layers' attributes from its template's items, over
    its own locals: the template names the parameter `net` (its own namespace), the class
    `net_` (the module's factory is `net`). What the item says reaches the code."""
    graph = _unit_net(
        tmp_path,
        "      - conv: {conv: {out: \"net * 2\", k: 3, pad: 1}}\n"
        "      - relu\n",
        params="{net: int}", uses=("unit: {net: 4}", "unit: {net: 8}"))
    template = block_templates(graph)["unit"]
    assert template.locals["net"] == "net" and template.items["conv"].attrs["bias"] is True
    source = generate(graph).source
    assert "def __init__(self, in_channels: int, net_: int)" in source
    assert "nn.Conv2d(in_channels, net_ * 2, kernel_size=3, padding=1)" in source
    assert "bias=False" not in source
    template.items["conv"].attrs["bias"] = False  # (the AST says True)
    assert "bias=False" in generate(graph).source


def test_a_generic_class_reads_its_block_arguments_from_the_template(tmp_path):
    """A block use inside a generic class takes its arguments from the template's `use` item
    (over the class's locals, defaults filled in): what the item says reaches the call."""
    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 8, 8]\n"
        "blocks:\n"
        "  unit:\n"
        "    params: {width: int, p: 0.0}\n"
        "    body:\n"
        "      - conv: {conv: {out: width, k: 1}}\n"
        "      - drop: {dropout: {p: p}}\n"
        "  pair:\n"
        "    params: {width: int}\n"
        "    body:\n"
        "      - a: {unit: {width: \"width * 2\"}}\n"
        "network:\n"
        "  - pair: {width: 4}\n"
        "  - pair: {width: 8}\n")
    graph = archdsl.load(spec)
    template = block_templates(graph)["pair"]
    assert probe_of(template.items["a"].attrs["p"]) == 0.0
    assert "self.a = Unit(in_channels, width * 2)\n" in generate(graph).source
    template.items["a"].attrs["p"] = 0.5  # (the AST gives the default, 0.0)
    assert "self.a = Unit(in_channels, width * 2, p=0.5)\n" in generate(graph).source


def test_a_generic_class_reads_its_symbolic_conditions_from_the_template():
    """A layer's symbolic `when:` is the condition its template scope holds, over the class's
    locals: what the scope says reaches the `if`."""
    from archdsl.blocks.sym import Sym

    graph = archdsl.load(Path(__file__).parent / "corpus/compiles/when_false_shares_a_name.yaml")
    template = block_templates(graph)["unit"]
    (scope,) = [s for s in template.scopes.values()
                if s.kind == "when" and isinstance(s.meta["when"], Sym)]  # (not `when: false`)
    assert scope.meta["when"].text == template.locals["wide"]
    assert "        if wide:\n" in generate(graph).source
    wide, channels = template.locals["wide"], template.locals["in.c"]
    scope.meta["when"] = Sym.parse(f"{wide} and {channels} > 1", True)  # (the AST: `wide`)
    relu = template.items["relu"]  # (after it: the choice the condition makes, as a template
    # made with it holds it; other inputs than its item's are a bug)
    chosen = Sym.parse(f"8 if {wide} and {channels} > 1 else 4", 8)
    relu.in_shapes, relu.shape = ((chosen, *relu.shape[1:]),), (chosen, *relu.shape[1:])
    assert "        if wide and in_channels > 1:\n" in generate(graph).source


def test_a_generic_class_reads_its_lets_from_the_template(tmp_path):
    """A symbolic let is the value its template holds, over the class's locals (the layers read
    the local): what the template says reaches the local's assignment."""
    from archdsl.blocks.sym import Sym

    graph = _unit_net(
        tmp_path,
        "      - conv: {conv: {out: mid, k: 1}}\n",
        params="{expansion: int}", let='{mid: "in.c * expansion"}',
        uses=("unit: {expansion: 2}", "unit: {expansion: 4}"))
    template = block_templates(graph)["unit"]
    local = template.locals["mid"]
    assert template.lets[local].text == "in_channels * expansion"
    assert "        mid = in_channels * expansion\n" in generate(graph).source
    template.lets[local] = Sym.parse("expansion * in_channels", 6)  # (the AST: in.c * expansion)
    assert "        mid = expansion * in_channels\n" in generate(graph).source


def test_a_class_binds_the_lets_its_template_records_in_its_order(tmp_path):
    """The lets a class binds, and their order (the order of its ``__init__``'s locals), are
    the template's (``BlockTemplate.lets``, in the order the expander evaluated them), not the
    block definition's: an order changed on the template reaches the class."""
    graph = _unit_net(
        tmp_path,
        "      - a: {conv: {out: wide, k: 1}}\n"
        "      - b: {conv: {out: mid, k: 1}}\n",
        params="{e: int}", let='{mid: "in.c * e", wide: "in.c + e"}', uses=("unit: {e: 2}", "unit: {e: 4}"))
    template = block_templates(graph)["unit"]
    lets = "        mid = in_channels * e\n        wide = in_channels + e\n"
    assert lets in generate(graph).source
    template.lets = dict(reversed(template.lets.items()))  # (the AST: mid, then wide)
    assert "        wide = in_channels + e\n        mid = in_channels * e\n" in generate(graph).source


def test_a_generic_class_reads_a_named_repeats_count_from_the_template(tmp_path):
    """A named repeat's count is the one its template scope records: what it says is the
    number of members of the class's nn.Sequential (a count past the copies the template
    made: an internal error naming the copy its scope does not record, not layers evaluated
    from the AST)."""
    graph = _unit_net(
        tmp_path,
        "      - convs: {repeat: 2, layer: {conv: {out: width, k: 3, pad: 1}}}\n"
        "      - relu\n",
        params="{width: int}", uses=("unit: {width: 4}", "unit: {width: 8}"))
    (scope,) = [s for s in block_templates(graph)["unit"].scopes.values() if s.kind == "repeat"]
    assert scope.meta["count"] == 2
    member = "nn.Conv2d(width, width, kernel_size=3, padding=1)"
    assert generate(graph).source.count(member) == 1
    scope.meta["count"] = 1  # (the AST: 2)
    source = generate(graph).source
    assert source.count(member) == 0
    assert "self.convs = nn.Sequential(\n            nn.Conv2d(in_channels, width, kernel_size=3, " \
        "padding=1),\n        )\n" in source
    scope.meta["count"] = 3  # (the AST: 2; the template made two copies)
    with pytest.raises(AssertionError, match=r"repeat at .*net\.yaml:7:16: its scope records no "
                                             r"copy 2$"):
        generate(graph)


def test_a_template_value_over_a_spec_parameter_the_class_writes_in_is_its_probe(tmp_path):
    """A generic class that writes a spec parameter in (the network class does not take it)
    reads a template value over that parameter alone as its probe, the graph's value."""
    from archdsl.blocks.sym import Sym

    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 8, 8]\nparams: {width: 8}\n"
        "blocks:\n"
        "  inner:\n"
        "    body: {conv: {out: 4, k: 1, bias: \"width > 4\"}}\n"
        "network:\n"
        "  - inner\n")
    graph = archdsl.load(spec)
    item = block_templates(graph)["inner"].items["conv"]
    assert item.attrs["bias"].text == "width > 4" and item.attrs["bias"].probe is True

    def conv_line():
        (inner,) = [c for c in Planner(graph).plan(()).classes if c.name == "Inner"]
        return next(line.strip() for line in inner.init if "nn.Conv2d" in line)

    assert conv_line() == "self.conv = nn.Conv2d(in_channels, 4, kernel_size=1)"
    item.attrs["bias"] = Sym(item.attrs["bias"].node, False)  # (the graph's width says True)
    assert conv_line() == "self.conv = nn.Conv2d(in_channels, 4, kernel_size=1, bias=False)"


def test_a_generic_class_reads_its_plain_lets_from_the_template(tmp_path, monkeypatch):
    """A plain let is recorded by the template too (a local of it, its value plain), and the
    class binds the value the template holds; the template's items are evaluated with it (`in.c
    * base * width` is `in_channels * 4 * width`), and what the item says reaches the class (the
    class evaluates no attribute from the AST: there is no AST walk)."""
    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 8, 8]\nparams: {width: 2}\n"
        "blocks:\n"
        "  unit:\n"
        "    params: {out: int}\n"
        "    let: {base: 4}\n"
        "    body:\n"
        "      - a: {conv: {out: \"in.c * base * width\", k: 1}}\n"
        "      - {seq: [{conv: {out: out, k: 1}}], from: a}\n"
        "network:\n"
        "  - unit: {out: 8}\n"
        "  - unit: {out: 16}\n")
    graph = archdsl.load(spec)
    template = block_templates(graph)["unit"]
    assert template.per_use is None and template.lets[template.locals["base"]] == 4
    from archdsl.blocks.pysrc import parse_expr
    from archdsl.blocks.sym import Sym, render

    bound = []
    bind = ClassBuilder.bind_lets

    def recorded(builder, env, *args, **kwargs):
        env = bind(builder, env, *args, **kwargs)
        bound.append(env.values.get("base"))
        return env

    monkeypatch.setattr(ClassBuilder, "bind_lets", recorded)

    def conv_line():
        (unit,) = [c for c in Planner(graph).plan(()).classes if c.name == "Unit"]
        return next(line.strip() for line in unit.init if "self.a =" in line)

    assert conv_line() == "self.a = nn.Conv2d(in_channels, in_channels * 4 * 2, kernel_size=1)"
    assert bound == [4]
    template.lets[template.locals["base"]] = 5  # (the AST: 4)
    conv_line()
    assert bound[-1] == 5
    item = template.items["a"]
    assert render(item.attrs["out"]) == "in_channels * 4 * width"
    item.attrs["out"] = Sym(parse_expr("in_channels * 5 * width"), 30)  # (the AST: base 4)
    assert conv_line() == "self.a = nn.Conv2d(in_channels, in_channels * 5 * 2, kernel_size=1)"


def test_an_item_value_the_class_cannot_write_is_an_internal_error(tmp_path):
    """An item's attribute or size is read over the class's locals, a written-in spec parameter
    with its value in its place; one reading a template local the class has no name or value
    for (here a plain let's, which the template's values never read: they hold its value) is an
    internal error at the item, not a value the op's rules compute again."""
    from archdsl.blocks.sym import Sym

    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 8, 8]\nparams: {width: 2}\n"
        "blocks:\n"
        "  unit:\n"
        "    params: {out: int}\n"
        "    let: {base: 4}\n"
        "    body:\n"
        "      - a: {conv: {out: \"in.c * base * width\", k: 1}}\n"
        "      - b: {conv: {out: out, k: 1}}\n"
        "network:\n"
        "  - unit: {out: 8}\n"
        "  - unit: {out: 16}\n")
    graph = archdsl.load(spec)
    template = block_templates(graph)["unit"]
    item, names = template.items["a"], template.locals
    unknown = Sym.parse(f"{names['in.c']} * {names['base']} * {names['width']}", 24)
    attrs, shape = dict(item.attrs), item.shape
    item.attrs["out"] = unknown  # (the template's: the let's value, 4)
    with pytest.raises(AssertionError, match=r"op layer at .*net\.yaml:9:12: its template item a "
                                             r"has attributes the class cannot write"):
        Planner(graph).plan(())
    item.attrs, item.shape = attrs, (unknown, *shape[1:])
    with pytest.raises(AssertionError, match=r"conv a at .*net\.yaml:9:12: its shape "
                                             r"\(in_channels \* base \* width, .*\) reads a name "
                                             r"the class has not"):
        Planner(graph).plan(())


def test_a_generic_class_finds_its_items_by_key(tmp_path):
    """A layer's item is the one keyed by its path in the class: the second of two sequences
    named `branch2` (under exclusive `when:`s) reads `branch2#1.0`, not `branch2.0`, whose
    conv is at the same place in its sequence. What each item says reaches its own layer."""
    graph = _exclusive_branches(tmp_path, "{conv: {out: 6, k: 1}}")
    unit = block_templates(graph)["unit"]
    source = generate(graph).source
    assert "nn.Conv2d(in_channels, 8, kernel_size=1)" in source
    assert "nn.Conv2d(in_channels, 6, kernel_size=1)" in source
    unit.items["branch2#1.0"].attrs["out"] = 5  # (the AST: 6)
    source = generate(graph).source
    assert "nn.Conv2d(in_channels, 5, kernel_size=1)" in source
    assert "nn.Conv2d(in_channels, 8, kernel_size=1)" in source


def test_a_value_that_follows_a_repeats_index_comes_from_its_item(tmp_path):
    """The layers a repeat makes inside a generic class are items of their own (`conv`,
    `conv_1`, ...; `convs.0`, `convs.1` in a named repeat), each with its values at its index:
    the class reads them, not the AST (whose values the index changes at one location)."""
    from archdsl.blocks.sym import Sym

    graph = _unit_net(
        tmp_path,
        "      - repeat: 2\n"
        "        layer: {conv: {out: \"width * (i + 1)\", k: 1, stride: \"2 if i == 0 else 1\"}}\n"
        "      - convs: {repeat: 2, layer: {conv: {out: \"width + i\", k: 1}}}\n",
        params="{width: int}", uses=("unit: {width: 4}", "unit: {width: 8}"))
    unit = block_templates(graph)["unit"]
    assert unit.per_use is None and {"conv", "conv_1", "convs.0", "convs.1"} <= set(unit.items)
    assert (unit.items["conv"].attrs["stride"], unit.items["conv_1"].attrs["stride"]) == \
        ((2, 2), (1, 1))
    width, second = unit.locals["width"], unit.items["conv_1"]
    first, after = unit.items["convs.0"], unit.items["convs.1"]
    second.attrs["out"] = Sym.parse(f"{width} * 3", 12)  # (the AST: width * 2)
    first.attrs["out"] = Sym.parse(f"{width} + 5", 9)  # (the AST: width + 0)
    for item, read in ((second, first), (first, after)):  # (the shapes a template made so holds)
        item.shape = (item.attrs["out"], *item.shape[1:])
        read.in_shapes = (item.shape,)
    source = generate(graph).source
    assert "self.conv = nn.Conv2d(in_channels, width * 1, kernel_size=1, stride=2)" in source
    assert "self.conv_1 = nn.Conv2d(width * 1, width * 3, kernel_size=1)" in source
    assert "nn.Conv2d(width * 3, width + 5, kernel_size=1),\n" in source
    assert "nn.Conv2d(width + 5, width + 1, kernel_size=1),\n" in source


def test_a_generic_class_reads_its_plain_whens_from_the_template(tmp_path):
    """A layer under a plain `when:` is in a scope of its own too (empty when false; a dropped
    parallel branch's as well), and the class builds the layer where the scope says: a scope
    made true where the template made no item builds nothing, its input passing through (what
    the scope records: no member, as an unnamed `identity`'s), not a layer evaluated from the
    AST (a dropped branch made live so is a second branch with no merge: an internal error)."""
    graph = _unit_net(
        tmp_path,
        "      - a: {conv: {out: width, k: 1}}\n"
        "      - b: {conv: {out: width, k: 1}}\n"
        "        when: false\n"
        "      - e: {conv: {out: width, k: 1}}\n"
        "        when: \"2 > 1\"\n"
        "      - parallel:\n"
        "          - c: {conv: {out: width, k: 1}}\n"
        "          - d: {conv: {out: width, k: 1}}\n"
        "            when: \"1 > 2\"\n"
        "        merge: add\n",
        params="{width: int}", uses=("unit: {width: 4}", "unit: {width: 8}"))
    template = block_templates(graph)["unit"]
    scopes = [s for s in template.scopes.values() if s.kind == "when"]
    assert [s.meta["when"] for s in scopes] == [False, True, False]
    assert [bool(s.members) for s in scopes] == [False, True, False]
    made = "nn.Conv2d(width, width, kernel_size=1)"
    source = generate(graph).source
    assert f"self.b = {made}" not in source and f"self.e = {made}" in source
    assert f"self.d = {made}" not in source
    scopes[1].meta["when"] = False  # (the AST: true)
    source = generate(graph).source
    assert f"self.e = {made}" not in source
    scopes[0].meta["when"] = True  # (the AST: false; the template made no item)
    assert generate(graph).source == source
    scopes[2].meta["when"] = True  # (ditto: a dropped branch)
    with pytest.raises(AssertionError, match=r"parallel at .*net\.yaml:\d+:\d+: its template "
                                             r"records no merge"):
        generate(graph)


def test_a_generic_class_reads_an_unnamed_repeats_count_from_the_template(tmp_path):
    """An unnamed repeat has a template scope of its own too (its copies' items are its
    members), recording its count: what it says is the number of layers the class builds (one
    past the copies the template made is an internal error naming the copy)."""
    graph = _unit_net(
        tmp_path,
        "      - repeat: 2\n"
        "        layer: {conv: {out: width, k: 1}}\n"
        "      - relu\n",
        params="{width: int}", uses=("unit: {width: 4}", "unit: {width: 8}"))
    template = block_templates(graph)["unit"]
    (scope,) = [s for s in template.scopes.values() if s.kind == "repeat"]
    assert scope.meta["count"] == 2 and scope.members == ["conv", "conv_1"]
    assert "self.conv_1 = nn.Conv2d(width, width, kernel_size=1)\n" in generate(graph).source
    assert "self.conv_2 =" not in generate(graph).source
    scope.meta["count"] = 1  # (the AST: 2)
    source = generate(graph).source
    assert "self.conv = nn.Conv2d(in_channels, width, kernel_size=1)\n" in source
    assert "self.conv_1" not in source
    scope.meta["count"] = 3  # (the AST: 2; the template made two copies)
    with pytest.raises(AssertionError, match=r"repeat at .*net\.yaml:7:9: its scope records no "
                                             r"copy 2$"):
        generate(graph)


def test_a_scope_value_that_follows_a_repeats_index_comes_from_its_copys_scope(tmp_path):
    """The scopes a repeat's copies make at one location record the copy's index: the class
    reads each copy's `when:` and count from the scope of its own index, not the AST."""
    graph = _unit_net(
        tmp_path,
        "      - repeat: 3\n"
        "        layer: {conv: {out: width, k: 1}, when: \"i > 0\"}\n"
        "      - repeat: 2\n"
        "        layer: {repeat: \"i + 1\", layer: relu}\n",
        params="{width: int}", uses=("unit: {width: 4}", "unit: {width: 8}"))
    template = block_templates(graph)["unit"]
    whens = [s for s in template.scopes.values() if s.kind == "when"]
    assert [(_copy_of(template, s), s.meta["when"]) for s in whens] == \
        [(0, False), (1, True), (2, True)]
    inner = [s for s in template.scopes.values() if s.kind == "repeat" and s.parent]
    assert [(_copy_of(template, s), s.meta["count"]) for s in inner] == [(0, 1), (1, 2)]
    source = generate(graph).source
    assert "self.conv_1 = nn.Conv2d(width, width, kernel_size=1)\n" in source
    assert "self.conv_2 =" not in source and "self.relu_3 =" not in source
    whens[2].meta["when"] = False  # (the AST: true for i == 2, as for i == 1)
    inner[1].meta["count"] = 1  # (the AST: 2 for i == 1)
    source = generate(graph).source
    assert "self.conv = nn.Conv2d(in_channels, width, kernel_size=1)\n" in source
    assert "self.conv_1" not in source
    assert "self.relu_1 = nn.ReLU()\n" in source and "self.relu_2" not in source
    whens[0].meta["when"] = True  # (the AST: false for i == 0; copy 0's scope records no
    # member: nothing is built for it, its input passes through)
    assert generate(graph).source == source


def test_a_generic_class_reads_its_layers_output_shapes_from_the_template(tmp_path):
    """An op layer's (a block use's) output shape is its template item's, over the class's
    locals, where its input is the item's: what the item says reaches the next layer's sizes."""
    from archdsl.blocks.sym import Sym

    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 8, 8]\n"
        "blocks:\n"
        "  unit:\n"
        "    params: {width: int}\n"
        "    body:\n"
        "      - a: {conv: {out: width, k: 1}}\n"
        "      - b: {conv: {out: 4, k: 1}}\n"
        "  pair:\n"
        "    params: {width: int}\n"
        "    body:\n"
        "      - u: {unit: {width: width}}\n"
        "      - c: {conv: {out: 2, k: 1}}\n"
        "network:\n"
        "  - pair: {width: 4}\n"
        "  - pair: {width: 8}\n")
    graph = archdsl.load(spec)
    templates = block_templates(graph)
    unit, pair = templates["unit"], templates["pair"]
    source = generate(graph).source
    assert "self.b = nn.Conv2d(width, 4, kernel_size=1)" in source
    assert "self.c = nn.Conv2d(4, 2, kernel_size=1)" in source
    width, (_, h, w) = unit.locals["width"], unit.items["a"].shape
    unit.items["a"].shape = (Sym.parse(f"{width} * 2", 8), h, w)  # (the op's rule: width)
    pair.items["u"].shape = (5, *pair.items["u"].shape[1:])  # (the callee's body: 4)
    unit.items["b"].in_shapes = (unit.items["a"].shape,)  # (the layers after read them: their
    pair.items["c"].in_shapes = (pair.items["u"].shape,)  # inputs are their items')
    source = generate(graph).source
    assert "self.b = nn.Conv2d(width * 2, 4, kernel_size=1)" in source
    assert "self.c = nn.Conv2d(5, 2, kernel_size=1)" in source


def test_a_generic_class_names_a_repeats_copies_as_its_template_scope_records(tmp_path):
    """The names a repeat's name template gives its copies are recorded on the repeat's
    template scope (`names`) and key the copies' items, and the class names its layers as
    they are keyed."""
    graph = _unit_net(
        tmp_path,
        "      - {repeat: 2, layer: {conv: {out: width, k: 1}}, name: \"conv{i+1}\"}\n"
        "      - relu\n",
        params="{width: int}", uses=("unit: {width: 4}", "unit: {width: 8}"))
    unit = block_templates(graph)["unit"]
    (scope,) = [s for s in unit.scopes.values() if s.kind == "repeat"]
    assert scope.meta["names"] == ("conv1", "conv2") and {"conv1", "conv2"} <= set(unit.items)
    source = generate(graph).source
    assert "self.conv1 = nn.Conv2d(in_channels, width, kernel_size=1)" in source
    scope.meta["names"] = ("first", "second")  # (the name template: conv1, conv2)
    _rekeyed(unit, "conv1", "first")
    _rekeyed(unit, "conv2", "second")
    source = generate(graph).source
    assert "self.first = nn.Conv2d(in_channels, width, kernel_size=1)" in source
    assert "self.second = nn.Conv2d(width, width, kernel_size=1)" in source


def test_a_generic_class_reads_its_merges_output_shapes_from_the_template(tmp_path):
    """A merge's (`concat` of a parallel) output shape is its template item's: what the item
    says reaches the next layer's sizes."""
    graph = _unit_net(
        tmp_path,
        "      - parallel: [{conv: {out: width, k: 1}}, {conv: {out: 2, k: 1}}]\n"
        "        merge: concat\n"
        "      - after: {conv: {out: 4, k: 1}}\n",
        params="{width: int}", uses=("unit: {width: 4}", "unit: {width: 8}"))
    unit = block_templates(graph)["unit"]
    assert "self.after = nn.Conv2d(width + 2, 4, kernel_size=1)" in generate(graph).source
    cat = unit.items["cat"]
    cat.shape = (7, *cat.shape[1:])  # (the op's rule: width + 2)
    unit.items["after"].in_shapes = (cat.shape,)  # (the layer after reads it)
    assert "self.after = nn.Conv2d(7, 4, kernel_size=1)" in generate(graph).source


def test_a_class_written_per_use_reads_the_template_of_its_use(tmp_path, monkeypatch):
    """A block written per use (its repeat count follows its argument) has a class for each use,
    read from that use's template with every value bound (``Planner.bound``, the one its output
    shape came from): op attributes, block arguments, output shapes, `when:`s and repeat counts
    from its items and scopes, its lets from the template's. What the template says reaches the
    class."""
    from archdsl.codegen import plan

    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 8, 8]\n"
        "blocks:\n"
        "  unit:\n"
        "    params: {width: int}\n"
        "    body:\n"
        "      - conv: {conv: {out: width, k: 1}}\n"
        "  stage:\n"
        "    params: {n: int}\n"
        "    let: {width: \"n * 4\"}\n"
        "    body:\n"
        "      - a: {conv: {out: width, k: 1}}\n"
        "      - b: {conv: {out: width, k: 1}}\n"
        "        when: \"n > 1\"\n"
        "      - units: {repeat: n, block: unit, args: {width: width}}\n"
        "      - {repeat: \"width // 4\", layer: relu}\n"
        "network:\n"
        "  - s: {stage: {n: 2}}\n")
    graph = archdsl.load(spec)
    source = generate(graph).source
    assert "self.a = nn.Conv2d(3, 8, kernel_size=1)\n" in source
    assert "self.b = nn.Conv2d(8, 8, kernel_size=1)\n" in source
    assert "self.units = nn.Sequential(Unit(8, 8), Unit(8, 8))\n" in source
    assert "self.relu_1 = nn.ReLU()\n" in source and "self.relu_2" not in source
    made = plan.bound_template
    bound = []
    bind = ClassBuilder.bind_lets

    def binding(builder, env, *args, **kwargs):
        env = bind(builder, env, *args, **kwargs)
        bound.append(env.values.get("width"))
        return env

    monkeypatch.setattr(ClassBuilder, "bind_lets", binding)

    def edited(graph, name, values, *args):
        t = made(graph, name, values, *args)
        if name == "stage":
            assert t.per_use is None and t.lets[t.locals["width"]] == 8
            a, second = t.items["a"], t.items["units.1"]
            a.attrs["out"], a.shape = 7, (7, *a.shape[1:])  # (the AST: width, 8)
            (when,) = [s for s in t.scopes.values() if s.kind == "when"]
            when.meta["when"] = False  # (the AST: n > 1)
            second.attrs["width"], second.shape = 6, (6, *second.shape[1:])  # (the AST: 8)
            (relus,) = [s for s in t.scopes.values() if s.kind == "repeat" and not s.named]
            relus.meta["count"] = 1  # (the AST: width // 4, 2)
            t.lets[t.locals["width"]] = 16  # (the AST: 8)
            first, relu = t.items["units.0"], t.items["relu"]  # (what reads them: the inputs a
            first.in_shapes, relu.in_shapes = (a.shape,), (second.shape,)  # template made so
            relu.shape = second.shape  # holds)
        return t

    monkeypatch.setattr(plan, "bound_template", edited)
    bound.clear()
    source = generate(graph).source
    assert "self.a = nn.Conv2d(3, 7, kernel_size=1)\n" in source and "self.b" not in source
    assert "self.units = nn.Sequential(Unit(7, 8), Unit(8, 6))\n" in source
    assert "self.relu = nn.ReLU()\n" in source and "self.relu_1" not in source
    assert 16 in bound  # (the stage's class binds the let its template holds)


def test_a_block_with_several_inputs_names_them_as_its_template_records(tmp_path, monkeypatch):
    """A block with several inputs is written per use; its class's forward takes them under the
    names its template records (``BlockTemplate.input_names``, the block's ``inputs:``), not the
    block definition's: a name changed on the use's template reaches the class."""
    from archdsl.codegen import plan

    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [4, 8, 8]\n"
        "blocks:\n"
        "  fuse:\n"
        "    inputs: [fine, coarse]\n"
        "    body:\n"
        "      - {mul: {}, from: [fine, coarse]}\n"
        "      - {conv: {out: 4, k: 1}}\n"
        "network:\n"
        "  - a: {conv: {out: 4, k: 1}}\n"
        "  - q: {fuse: {}, from: [a, input]}\n")
    graph = archdsl.load(spec)
    signature = "def forward(self, {}: Tensor, coarse: Tensor) -> Tensor:"
    assert signature.format("fine") in generate(graph).source
    made = plan.bound_template

    def edited(graph, name, *args, **kwargs):
        t = made(graph, name, *args, **kwargs)
        if name == "fuse":
            assert t.input_names == ("fine", "coarse")
            t.input_names = ("low", "coarse")  # (the AST: fine)
        return t

    monkeypatch.setattr(plan, "bound_template", edited)
    assert signature.format("low") in generate(graph).source


def test_a_layer_under_a_when_reads_its_items_shape_as_the_condition_decides_it(tmp_path):
    """Under `if stride > 1` the translator narrows its input's sizes (`8 if stride > 1 else 4`
    is 8 there), and the template expander narrows its items' the same way (a layer under a
    symbolic `when:` is expanded on its input as the condition decides it), so a layer there
    reads its output shape from its item: what the item says reaches the next member."""
    graph = _unit_net(
        tmp_path,
        "      - a: {conv: {out: \"8 if stride > 1 else 4\", k: 1}}\n"
        "      - b: [{conv: {out: 2, k: 1}}, {conv: {out: 5, k: 1}}]\n"
        "        when: \"stride > 1\"\n",
        params="{stride: int}", uses=("unit: {stride: 2}", "unit: {stride: 1}"))
    unit = block_templates(graph)["unit"]
    first = unit.items["b.0"]
    assert unit.items["a"].shape[0].text == "8 if stride > 1 else 4"
    (when,) = [scope for scope in unit.scopes.values() if scope.kind == "when"]
    assert when.in_shape[0].text == "8 if stride > 1 else 4" and first.in_shapes[0][0] == 8
    source = generate(graph).source
    assert "nn.Conv2d(8, 2, kernel_size=1)" in source and "nn.Conv2d(2, 5, kernel_size=1)" in source
    first.shape = (3, *first.shape[1:])  # (the op's rule: 2)
    unit.items["b.1"].in_shapes = (first.shape,)  # (the member after reads it)
    assert "nn.Conv2d(3, 5, kernel_size=1)" in generate(graph).source


def test_the_network_class_reads_its_template(tmp_path, monkeypatch):
    """The network class reads its layers' attributes, its block uses' arguments and its
    conditions from its template: the graph's (every value written in) when it takes no
    argument, else the one over its arguments (its locals the class's own)."""
    from archdsl.blocks.sym import Sym
    from archdsl.codegen import translate

    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 8, 8]\nparams: {width: 8, deep: true}\n"
        "blocks:\n"
        "  unit:\n"
        "    params: {out: int}\n"
        "    body: {conv: {out: out, k: 1}}\n"
        "network:\n"
        "  - a: {conv: {out: width, k: 1}}\n"
        "  - b: {unit: {out: width}}\n"
        "  - c: {conv: {out: width, k: 1}}\n"
        "    when: deep\n"
        "  - d: {conv: {out: width, k: 1}}\n")
    graph = archdsl.load(spec)
    network = block_templates(graph)[""]
    network.items["a"].attrs["out"] = 5  # (the AST: width = 8)
    network.items["b"].attrs["out"] = 7
    (when,) = [s for s in network.scopes.values() if s.kind == "when"]
    when.meta["when"] = False  # (the AST: deep = true)
    (net,) = [c for c in Planner(graph).plan(()).classes if c.name == "Net"]
    init = "\n".join(net.init)
    # (the shapes are the items' too: `a`'s output has the 8 channels its item says)
    assert "self.a = nn.Conv2d(3, 5, kernel_size=1)" in init and "self.b = Unit(8, 7)" in init
    assert "self.c" not in init and "self.d = nn.Conv2d(8, 8, kernel_size=1)" in init

    made = []

    def over_arguments(*args, **kwargs):  # the template over the class's arguments, changed
        template = network_template(*args, **kwargs)
        if template.items:
            width = template.locals["width"]
            template.items["a"].attrs["out"] = Sym.parse(f"{width} + 1", 9)  # (the AST: width)
            made.append(template)
        return template

    network_template = translate.network_template
    monkeypatch.setattr(translate, "network_template", over_arguments)
    (net,) = [c for c in Planner(graph).plan(("width", "deep")).classes if c.name == "Net"]
    assert made and "self.a = nn.Conv2d(3, width + 1, kernel_size=1)" in "\n".join(net.init)


def test_the_network_class_takes_the_names_its_layers_share_from_its_template(tmp_path):
    """As a generic block class does (compiles/when_false_shares_a_name.yaml): a layer sharing
    its name with one under a `when:` false (no item) is one module, None when absent, not an
    nn.Identity placeholder."""
    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 8, 8]\nparams: {wide: true}\n"
        "network:\n"
        "  - conv: {conv: {out: 4, k: 3, pad: 1}}\n"
        "  - proj: {conv: {out: 8, k: 1}}\n"
        "    when: wide\n"
        "  - proj: {conv: {out: 6, k: 1}}\n"
        "    when: false\n"
        "  - relu\n")
    source = generate(archdsl.load(spec)).source
    assert "        if wide:\n            self.proj = nn.Conv2d(4, 8, kernel_size=1)\n" in source
    assert "nn.Identity()" not in source and "self.proj is not None" in source


def test_a_class_no_instance_probes_reads_a_template_probed_by_its_own_use(tmp_path, monkeypatch):
    """A block no instance uses (its use is under a `when:` false in every instance) still has
    a generic class, built from the use that reaches it: it reads a template probed by that
    use's arguments and input (Planner.probed): what that template says reaches the class."""
    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 8, 8]\n"
        "blocks:\n"
        "  squeeze:\n"
        "    params: {c: int}\n"
        "    body: {conv: {out: c, k: 1}}\n"
        "  unit:\n"
        "    params: {use_se: bool}\n"
        "    body:\n"
        "      - conv: {conv: {out: 4, k: 1}}\n"
        "      - se: {squeeze: {c: 4}}\n"
        "        when: use_se\n"
        "network:\n"
        "  - unit: {use_se: false}\n"
        "  - unit: {use_se: false}\n")
    graph = archdsl.load(spec)
    assert not any(s.block == "squeeze" for s in graph.scopes.values())
    probed = []

    def changed(planner, name, args, in_shape):
        t = original(planner, name, args, in_shape)
        probed.append((name, args, in_shape))
        t.items["conv"].attrs["bias"] = False  # (the AST: true)
        return t

    original = Planner.probed
    assert "nn.Conv2d(in_channels, c, kernel_size=1)\n" in generate(graph).source
    monkeypatch.setattr(Planner, "probed", changed)
    assert "nn.Conv2d(in_channels, c, kernel_size=1, bias=False)" in generate(graph).source
    assert probed == [("squeeze", {"c": 4}, (4, 8, 8))]


def test_a_class_walks_its_templates_members(tmp_path, monkeypatch):
    """A class takes its layers from its template's members, in order (items, and the scopes of
    constructs and `when:`s, whose members come from the scope too: an unnamed residual's or
    parallel's by part, a named sequence's (an nn.Sequential's); a `when:`'s `select` is its
    layer's, a construct's merge its own), an item frozen as it is (an unnamed sequence's
    `freeze:` too; an unnamed sequence with `from:` is a scope of its own). What the template
    says reaches the class."""
    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 8, 8]\n"
        "blocks:\n"
        "  unit:\n"
        "    params: {width: int}\n"
        "    body:\n"
        "      - conv: {conv: {out: width, k: 3, pad: 1}}\n"
        "      - [{bn: {}}, relu]\n"
        "      - tail: [{conv: {out: width, k: 1}}, hardswish]\n"
        "  skip:\n"
        "    params: {act: bool}\n"
        "    body:\n"
        "      - c: {conv: {out: in.c, k: 1}}\n"
        "      - residual: {body: [{conv: {out: in.c, k: 3, pad: 1}}, tanh]}\n"
        "      - parallel: [{conv: {out: 2, k: 1}}, [{conv: {out: 3, k: 1}}, mish]]\n"
        "      - {seq: [{gelu: {}}, silu], when: act}\n"
        "  fork:\n"
        "    body:\n"
        "      - a: {conv: {out: 4, k: 1}}\n"
        "      - {seq: [{conv: {out: 4, k: 1}}, sigmoid], from: input}\n"
        "network:\n"
        "  - unit: {width: 4}\n"
        "  - unit: {width: 8}\n"
        "  - skip: {act: true}\n"
        "  - skip: {act: false}\n"
        "  - fork\n")
    graph = archdsl.load(spec)
    walks = {}
    built = ClassBuilder.build_block

    def recorded(builder, name, *args, **kwargs):
        result = built(builder, name, *args, **kwargs)
        walks[name] = bool(builder.walked_steps)  # (its template walk's steps: _keep_walks)
        return result

    monkeypatch.setattr(ClassBuilder, "build_block", recorded)
    _keep_walks(monkeypatch)
    source = generate(graph).source
    assert walks == {"unit": True, "skip": True, "fork": True}
    assert "self.conv = nn.Conv2d(in_channels, width, kernel_size=3, padding=1)\n" in source
    assert "self.relu = nn.ReLU(inplace=True)\n" in source
    assert "self.c = nn.Conv2d(in_channels, in_channels, kernel_size=1)\n        self.conv = " \
        in source
    unit, skip = graph.templates["unit"], graph.templates["skip"]
    unit.items["conv"].own_freeze = True  # (the AST has no `freeze:`)
    unit.members.remove("relu")
    assert "nn.Hardswish()" in source
    unit.scopes["tail"].members.remove("tail.1")  # (a member of the named sequence `tail`)
    skip.members[:2] = reversed(skip.members[:2])  # the residual first
    (when,) = [scope for scope in skip.scopes.values() if scope.kind == "when"]
    assert "self.silu = nn.SiLU()" in source and "nn.Tanh()" in source and "nn.Mish()" in source
    when.members.remove("silu")  # (a member of the unnamed sequence under `when: act`)
    for scope in skip.scopes.values():  # (of the residual's body, of a parallel branch)
        scope.members = [key for key in scope.members if key not in ("tanh", "mish")]
    source = generate(graph).source
    assert "self.conv = frozen(nn.Conv2d(in_channels, width, kernel_size=3, padding=1))\n" in source
    assert "self.relu = nn.ReLU(inplace=True)\n" not in source
    assert "Tanh" not in source and "Mish" not in source and "Hardswish" not in source
    assert "padding=1)\n        self.c = nn.Conv2d(in_channels, in_channels, kernel_size=1)\n" \
        in source
    assert "self.gelu = nn.GELU()" in source and "SiLU" not in source


def test_a_let_over_a_local_and_a_written_in_spec_parameter_comes_from_the_template(tmp_path):
    """A let reading both a local of the class and a spec parameter the class writes in is the
    template's expression with the parameter's value in its place (as the class's own
    evaluation writes it): what the template says reaches the local."""
    from archdsl.blocks.sym import Sym

    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 8, 8]\nparams: {width: 2}\n"
        "blocks:\n"
        "  unit:\n"
        "    params: {out: int}\n"
        "    let: {mid: \"in.c * width\"}\n"
        "    body:\n"
        "      - a: {conv: {out: mid, k: 1}}\n"
        "      - b: {conv: {out: out, k: 1}}\n"
        "network:\n"
        "  - unit: {out: 8}\n"
        "  - unit: {out: 16}\n")
    graph = archdsl.load(spec)
    template = block_templates(graph)["unit"]
    local = template.locals["mid"]
    assert template.lets[local].text == f"{template.locals['in.c']} * {template.locals['width']}"

    def mid_line():
        (unit,) = [c for c in Planner(graph).plan(()).classes if c.name == "Unit"]
        return next(line.strip() for line in unit.init if line.strip().startswith("mid ="))

    assert mid_line() == "mid = in_channels * 2"
    width, channels = template.locals["width"], template.locals["in.c"]
    template.lets[local] = Sym.parse(f"{width} * {channels} + 1", 7)  # (the AST: in.c * width)
    assert mid_line() == "mid = 2 * in_channels + 1"


def test_a_block_argument_over_a_local_and_a_written_in_spec_parameter_comes_from_the_item(
        tmp_path):
    """A block use's argument reading both a local of the class and a spec parameter the class
    writes in is its item's expression with the parameter's value in its place, as a let's is:
    what the item says reaches the call."""
    from archdsl.blocks.sym import Sym

    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 8, 8]\nparams: {width: 2}\n"
        "blocks:\n"
        "  inner:\n"
        "    params: {c: int}\n"
        "    body: {conv: {out: c, k: 1}}\n"
        "  unit:\n"
        "    params: {out: int}\n"
        "    body:\n"
        "      - a: {inner: {c: \"in.c * width\"}}\n"
        "      - b: {conv: {out: out, k: 1}}\n"
        "network:\n"
        "  - unit: {out: 8}\n"
        "  - unit: {out: 16}\n")
    graph = archdsl.load(spec)
    template = block_templates(graph)["unit"]
    item = template.items["a"]
    assert item.kind == "use" and isinstance(item.attrs["c"], Sym)

    def call_line():
        (unit,) = [c for c in Planner(graph).plan(()).classes if c.name == "Unit"]
        return next(line.strip() for line in unit.init if line.strip().startswith("self.a ="))

    assert call_line() == "self.a = Inner(in_channels, in_channels * 2)"
    width, channels = template.locals["width"], template.locals["in.c"]
    item.attrs["c"] = Sym.parse(f"{width} * {channels} + 1", 7)  # (the AST: in.c * width)
    assert call_line() == "self.a = Inner(in_channels, 2 * in_channels + 1)"


def test_a_block_uses_shape_over_a_local_and_a_written_in_spec_parameter_comes_from_the_item(
        tmp_path):
    """A block use's output shape reading both a local of the class and a spec parameter the
    class writes in (`in_channels * width`, as its block's rules composed it) is its item's
    shape with the parameter's value in its place, not the block's template bound again for
    the use: what the item says reaches the layer after it. So is a merge's over such sizes
    (its item's, not the op's rule run again)."""
    from archdsl.blocks.sym import Sym

    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 8, 8]\nparams: {width: 2}\n"
        "blocks:\n"
        "  inner:\n"
        "    params: {c: int}\n"
        "    body: {conv: {out: c, k: 1}}\n"
        "  unit:\n"
        "    params: {out: int}\n"
        "    body:\n"
        "      - a: {inner: {c: \"in.c * width\"}}\n"
        "      - b: {conv: {out: out, k: 1}}\n"
        "      - parallel: [{conv: {out: \"in.c * width\", k: 1}}, {conv: {out: out, k: 1}}]\n"
        "        from: input\n"
        "        merge: concat\n"
        "      - c: {conv: {out: 4, k: 1}}\n"
        "network:\n"
        "  - unit: {out: 8}\n"
        "  - unit: {out: 16}\n")
    graph = archdsl.load(spec)
    template = block_templates(graph)["unit"]
    use, cat = template.items["a"], template.items["cat"]
    width, channels, out = (template.locals[key] for key in ("width", "in.c", "out"))
    assert use.shape[0].text == f"{channels} * {width}"
    assert cat.shape[0].text == f"{channels} * {width} + {out}"

    def lines():
        (unit,) = [c for c in Planner(graph).plan(()).classes if c.name == "Unit"]
        return [line.strip() for line in unit.init if line.strip().startswith(("self.b =",
                                                                               "self.c ="))]

    assert lines() == ["self.b = nn.Conv2d(in_channels * 2, out, kernel_size=1)",
                       "self.c = nn.Conv2d(in_channels * 2 + out, 4, kernel_size=1)"]
    use.shape = (Sym.parse(f"{width} * {channels} + 1", 7), *use.shape[1:])  # (the block's: 6)
    template.items["b"].in_shapes = (use.shape,)  # (the layer after reads it)
    cat.shape = (Sym.parse(f"{width} * {channels} + {out} + 1", 15), *cat.shape[1:])  # (14)
    template.items["c"].in_shapes = (cat.shape,)
    assert lines() == ["self.b = nn.Conv2d(2 * in_channels + 1, out, kernel_size=1)",
                       "self.c = nn.Conv2d(2 * in_channels + out + 1, 4, kernel_size=1)"]


def test_an_op_attribute_over_a_local_and_a_written_in_spec_parameter_comes_from_the_item(
        tmp_path):
    """An op attribute reading both a local of the class and a spec parameter the class writes
    in is its item's finalised attribute (as the op's rules completed it: a pool's stride is its
    kernel, a pair) with the parameter's value in its place: what the item says reaches the
    class, not the op's rules run again over the AST's value."""
    from archdsl.blocks.sym import Sym

    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [4, 16, 16]\nparams: {width: 2}\n"
        "blocks:\n"
        "  unit:\n"
        "    params: {out: int}\n"
        "    let: {base: 4}\n"
        "    body:\n"
        "      - p: {maxpool: {k: \"in.c * width // base\"}}\n"
        "      - a: {conv: {out: \"in.c * base * width\", k: 1}}\n"
        "      - b: {conv: {out: out, k: 1}}\n"
        "network:\n"
        "  - unit: {out: 8}\n"
        "  - unit: {out: 16}\n")
    graph = archdsl.load(spec)
    template = block_templates(graph)["unit"]
    pool, conv = template.items["p"], template.items["a"]
    width, channels = template.locals["width"], template.locals["in.c"]
    assert pool.attrs["stride"] == pool.attrs["k"]
    assert conv.attrs["out"].text == f"{channels} * 4 * {width}"

    def lines():
        (unit,) = [c for c in Planner(graph).plan(()).classes if c.name == "Unit"]
        return [line.strip() for line in unit.init if line.strip().startswith(("self.a =",
                                                                               "self.p ="))]

    assert lines() == ["self.p = nn.MaxPool2d(kernel_size=in_channels * 2 // 4)",
                       "self.a = nn.Conv2d(in_channels, in_channels * 4 * 2, kernel_size=1)"]
    k = Sym.parse(f"{channels} // {width}", 2)  # (the AST: in.c * width // base)
    pool.attrs["k"] = (k, k)  # (its stride stays the item's: the op's rules do not run again)
    conv.attrs["out"] = Sym.parse(f"{width} * {channels} + 1", 9)  # (the AST's: 32)
    assert lines() == [("self.p = nn.MaxPool2d(kernel_size=in_channels // 2, "
                        "stride=in_channels * 2 // 4)"),
                       "self.a = nn.Conv2d(in_channels, 2 * in_channels + 1, kernel_size=1)"]


def test_a_layer_after_a_when_reads_its_items_shape(tmp_path):
    """After a layer under `if stride > 1` the translator's input is the choice between that
    layer's output, over sizes it narrowed, and its input; the template's choice is over the
    same narrowed sizes, so the layer after it reads its output shape from its item too."""
    graph = _unit_net(
        tmp_path,
        "      - a: {conv: {out: \"8 if stride > 1 else 4\", k: 1}}\n"
        "      - b: relu\n"
        "        when: \"stride > 1\"\n"
        "      - c: {conv: {out: 3, k: 1}}\n"
        "      - d: {conv: {out: 2, k: 1}}\n",
        params="{stride: int}", uses=("unit: {stride: 2}", "unit: {stride: 1}"))
    unit = block_templates(graph)["unit"]
    c = unit.items["c"]
    assert "self.d = nn.Conv2d(3, 2, kernel_size=1)" in generate(graph).source
    c.shape = (6, *c.shape[1:])  # (the op's rule: 3)
    unit.items["d"].in_shapes = (c.shape,)  # (the layer after reads it)
    assert "self.d = nn.Conv2d(6, 2, kernel_size=1)" in generate(graph).source


def test_a_class_takes_its_member_reads_from_its_template(tmp_path):
    """The dotted names a body's `from:`s read are the template's (`member_reads`, recorded as
    the expander resolves them): what it says decides whether a named sequence runs member by
    member; a read under a `when:` false (not expanded) splits none."""
    graph = _unit_net(
        tmp_path,
        "      - layer1: [{conv1: {conv: {out: width, k: 1}}}, {bn1: bn}]\n"
        "      - relu\n",
        params="{width: int}",
        uses=("unit: {width: 4}", "unit: {width: 8}",
              "layer2: [{conv1: {conv: {out: 8, k: 1}}}, {bn1: bn}]",
              "{add: {}, from: [layer2, layer2.bn1], when: false}"))
    templates = block_templates(graph)
    assert templates["unit"].member_reads == frozenset() == templates[""].member_reads
    source = generate(graph).source
    assert "x = self.layer1(x)" in source and "x = self.layer2(x)" in source
    templates["unit"].member_reads = frozenset({"layer1.bn1"})  # (no layer reads it)
    assert "bn1 = self.layer1[1](x)" in generate(graph).source


def test_the_template_walk_freezes_as_the_ast_walk(tmp_path):
    """`freeze:` on a named sequence (frozen once, its members not), on its members, on an
    unnamed sequence inside it or not, on a construct: the class is the one the AST walk
    wrote (``WALKED``)."""
    graph = _unit_net(
        tmp_path,
        "      - s: [{conv: {out: 4, k: 1}}, {conv: {out: 4, k: 1}, freeze: true}, [bn, relu]]\n"
        "        freeze: true\n"
        "      - t: [{conv: {out: 4, k: 1}}, {seq: [{conv: {out: 4, k: 1}}, bn], freeze: true}]\n"
        "      - {residual: {body: [{conv: {out: 4, k: 1}}, bn]}, freeze: true}\n"
        "      - {seq: [{conv: {out: 4, k: 1}}, bn], freeze: true}\n")
    walked = generate(graph).source
    assert "frozen(" in walked
    assert walked == (WALKED / "freezes.txt").read_text()


def test_the_translator_evaluates_nothing_the_template_does_not_say(tmp_path):
    """A class reads its `when:`s, repeat counts, block arguments and lets from its template
    only: one the template does not record is an internal error, not a second evaluation of the
    AST (which would hide a template that lost it)."""
    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 8, 8]\n"
        "blocks:\n"
        "  inner:\n"
        "    params: {width: int}\n"
        "    body: {conv: {out: width, k: 1}}\n"
        "  unit:\n"
        "    params: {width: int}\n"
        "    let: {w2: width * 2}\n"
        "    body:\n"
        "      - a: {conv: {out: w2, k: 1}}\n"
        "        when: \"width > 1\"\n"
        "      - repeat: 2\n"
        "        layer: {inner: {width: width}}\n"
        "network:\n"
        "  - unit: {width: 4}\n"
        "  - unit: {width: 8}\n")
    graph = archdsl.load(spec)
    assert "self.a = nn.Conv2d" in generate(graph).source
    template = block_templates(graph)["unit"]

    def refused(edit, message):
        saved = {k: (dict(s.meta)) for k, s in template.scopes.items()}, dict(template.items), \
            dict(template.lets)
        edit()
        with pytest.raises(AssertionError, match=message):
            generate(graph)
        for key, meta in saved[0].items():
            template.scopes[key].meta = meta
        template.items, template.lets = saved[1], saved[2]

    when = next(s for s in template.scopes.values() if s.kind == "when")
    refused(lambda: when.meta.pop("when"), "no template scope records it")
    counted = next(s for s in template.scopes.values() if "count" in s.meta)
    refused(lambda: counted.meta.pop("count"), "no template scope records its count")
    use = next(k for k, item in template.items.items() if item.kind == "use")
    # (a member of the repeat's scope the template does not have: its copies are not walked)
    refused(lambda: template.items.pop(use), "repeat at .*: its template does not walk its copies")
    # (the lets bound are those the template records, in its order: one it holds no value for)
    refused(lambda: template.lets.update({template.locals["w2"]: MISSING}),
            "let `w2`: no value in its template")
    # what the template refuses (a count or a branch's `when:` following the parameters) the
    # class does not refuse again: a template holding one is an internal error too
    refused(lambda: counted.meta.update(count=when.meta["when"]), "a symbolic count")
    assert "self.a = nn.Conv2d" in generate(graph).source  # (all restored)


def test_a_network_class_the_template_refuses_says_the_templates_reason():
    """The network class over a constructor argument its template cannot follow refuses with
    the template's reason (make_plan writes the argument in and names it), without translating
    its body: GoogLeNet's aux_logits (an output under a `when:`), ResNet-CIFAR's depth (a repeat
    count)."""
    from archdsl.blocks.expander import network_template
    from archdsl.blocks.namespace import CodegenError

    for name, param, reason in [
            ("googlenet", "aux_logits", "an auxiliary output under a `when:` on a parameter"),
            ("resnet_cifar", "depth", "a repeat count that depends on block parameters")]:
        graph = archdsl.load(SPECS / f"{name}.yaml")
        block_templates(graph)
        assert network_template(graph, (param,)).per_use == reason
        with pytest.raises(CodegenError, match=reason.replace("`", ".")):
            Planner(graph).plan((param,))
        assert f"`{param}=" in generate(graph).source and reason.split(" on ")[0] in \
            " ".join(generate(graph).source.split())


def test_a_class_walks_a_repeats_copies_from_its_template(tmp_path):
    """A repeat's copies (a named repeat's nn.Sequential, an unnamed repeat's and dense block's
    layers) are walked from the repeat's scope, copy by copy: the class is the AST walk's
    (``WALKED``), and
    what one copy's members say reaches that copy only."""
    graph = _unit_net(
        tmp_path,
        "      - stage: {repeat: 2, layer: [{conv: {out: 4, k: 1}}, relu]}\n"
        "      - {repeat: 2, layer: [{conv: {out: 4, k: 3, pad: 1}}, gelu]}\n"
        "      - {dense: 2, layer: [{conv: {out: 2, k: 1}}, silu]}\n")
    walked = generate(graph).source
    assert walked == (WALKED / "repeat_copies.txt").read_text()
    assert "nn.Sequential(nn.Conv2d(4, 4, kernel_size=1), nn.ReLU(inplace=True))" in walked
    assert "self.conv_1 = nn.Conv2d(4, 4, kernel_size=3, padding=1)\n        self.gelu_1" in walked
    unit = graph.templates["unit"]
    unit.scopes["stage.1"].members.reverse()  # (the second copy's sequence: relu, then conv,
    # numbered so)
    for old, new in [("stage.1.0", "was0"), ("stage.1.1", "stage.1.0"), ("was0", "stage.1.1")]:
        _rekeyed(unit, old, new)
    (repeat,) = [s for s in unit.scopes.values() if s.kind == "repeat" and not s.named]
    repeat.members[2:] = reversed(repeat.members[2:])  # (the second copy: gelu, then conv)
    source = generate(graph).source
    assert "nn.Sequential(nn.ReLU(), nn.Conv2d(4, 4, kernel_size=1))" in source
    assert "self.gelu_1 = nn.GELU()\n        self.conv_1 = nn.Conv2d(4, 4, kernel_size=3" in source
    assert "nn.Conv2d(in_channels, 4, kernel_size=1),\n                nn.ReLU(inplace=True)" \
        in source


def test_the_network_class_walks_its_templates_members(tmp_path, monkeypatch):
    """The network class takes its layers from its template's members as a block class does
    (an nn.Sequential network and a module one, its named sequence's and its constructs' members
    from their scopes): the class is the AST walk's (``WALKED``), and a member reordered or
    removed on the network template reaches the network class."""
    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 8, 8]\n"
        "network:\n"
        "  - {conv: {out: 4, k: 3, pad: 1}}\n"
        "  - bn\n"
        "  - relu\n"
        "  - tail: [{conv: {out: 4, k: 1}}, hardswish]\n"
        "  - mish\n")
    built = ClassBuilder.build_network
    walks = []

    def recorded(builder, *args, **kwargs):
        result = built(builder, *args, **kwargs)
        walks.append(bool(builder.walked_steps))  # (its template walk's steps: _keep_walks)
        return result

    monkeypatch.setattr(ClassBuilder, "build_network", recorded)
    _keep_walks(monkeypatch)
    graph = archdsl.load(spec)
    walked = generate(graph).source
    assert walks == [True]
    assert walked == (WALKED / "network_sequential.txt").read_text()
    assert "nn.ReLU(inplace=True)" in walked and "nn.Hardswish()" in walked
    network = graph.templates[""]
    network.members.remove("relu")
    network.members[-2:] = reversed(network.members[-2:])  # mish before the named sequence
    network.scopes["tail"].members.remove("tail.1")
    source = generate(graph).source
    assert "ReLU" not in source and "Hardswish" not in source
    assert source.index("nn.Mish()") < source.index("nn.Sequential(")

    spec.write_text(
        "name: net\ninput: [3, 8, 8]\n"
        "network:\n"
        "  - stem: {conv: {out: 4, k: 1}}\n"
        "  - residual: {body: [{conv: {out: 4, k: 3, pad: 1}}, tanh]}\n"
        "  - parallel: [{conv: {out: 2, k: 1}}, [{conv: {out: 3, k: 1}}, gelu]]\n"
        "  - silu\n")
    graph = archdsl.load(spec)
    walks.clear()
    walked = generate(graph).source
    assert walks == [True] and "class Net(nn.Module)" in walked
    assert walked == (WALKED / "network_module.txt").read_text()
    assert "nn.Tanh()" in walked and "nn.GELU()" in walked and "nn.SiLU()" in walked
    network = graph.templates[""]
    network.members.remove("silu")
    for scope in network.scopes.values():  # (of the residual's body, of a parallel branch)
        scope.members = [key for key in scope.members if key not in ("tanh", "gelu")]
    source = generate(graph).source
    assert "Tanh" not in source and "GELU" not in source and "SiLU" not in source


def test_a_generic_class_takes_its_op_layers_op_from_their_items(tmp_path):
    """A walked op layer is translated from its template item: its op is the item's target,
    as an attribute of a module class and as a member of a named sequence (an nn.Sequential).
    What the item says reaches the code."""
    graph = _unit_net(
        tmp_path,
        "      - conv: {conv: {out: c, k: 1}}\n"
        "      - relu\n"
        "      - tail: [{conv: {out: c, k: 1}}, relu]\n",
        params="{c: int}", uses=("unit: {c: 4}", "unit: {c: 8}"))
    unit = block_templates(graph)["unit"]
    source = generate(graph).source
    assert "nn.Sigmoid()" not in source
    unit.items["relu"].target = "sigmoid"  # (the AST: relu)
    source = generate(graph).source
    assert source.count("nn.Sigmoid()") == 1
    unit.items["tail.1"].target = "sigmoid"  # (ditto, in the nn.Sequential)
    assert generate(graph).source.count("nn.Sigmoid()") == 2


def test_a_layer_under_a_symbolic_when_is_probed_from_its_item(tmp_path):
    """Whether an op layer under a symbolic `when:` is one module (an attribute None when
    absent) is asked of its step's template item, as the layer is then translated from it: an
    item whose op is no module is run under the `if`, not built as an attribute."""
    graph = _unit_net(
        tmp_path,
        "      - conv: {conv: {out: 4, k: 1}}\n"
        "      - nl: relu\n"
        "        when: act\n",
        params="{act: bool}", uses=("a: {unit: {act: true}}", "b: {unit: {act: false}}"))
    unit = block_templates(graph)["unit"]
    source = generate(graph).source
    assert "self.nl = nn.ReLU()\n" in source and "self.nl = None\n" in source
    unit.items["nl"].target = "identity"  # (the AST: relu, one module)
    source = generate(graph).source
    assert "self.nl" not in source and "Identity" not in source


def test_a_block_use_takes_its_block_from_its_item(tmp_path):
    """A walked block use is translated from its template item: the block it constructs is the
    item's target (its declared parameters the target's template's), not the AST call's. What
    the item says reaches the code."""
    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 8, 8]\n"
        "blocks:\n"
        "  inner_a:\n"
        "    params: {c: int}\n"
        "    body:\n"
        "      - conv: {out: c, k: 1}\n"
        "  inner_b:\n"
        "    params: {c: int}\n"
        "    body:\n"
        "      - conv: {out: c, k: 1}\n"
        "      - relu\n"
        "  unit:\n"
        "    params: {c: int}\n"
        "    body:\n"
        "      - inner_a: {c: c}\n"
        "      - inner_b: {c: c}\n"
        "network:\n"
        "  - unit: {c: 4}\n"
        "  - unit: {c: 8}\n")
    graph = archdsl.load(spec)
    unit = block_templates(graph)["unit"]
    uses = [key for key, item in unit.items.items() if item.kind == "use"]
    assert [unit.items[key].target for key in uses] == ["inner_a", "inner_b"]
    source = generate(graph).source
    assert source.count("= InnerA(") == 1 and source.count("= InnerB(") == 1
    unit.items[uses[0]].target = "inner_b"  # (the AST: inner_a)
    source = generate(graph).source
    assert source.count("= InnerA(") == 0 and source.count("= InnerB(") == 2


def test_a_construct_walks_its_parts_as_its_scope_records_them(tmp_path):
    """An unnamed residual's and parallel's scope records which part made each member
    (``meta["parts"]``: ``body``, ``shortcut``, ``after``, a branch's index, ``merge``), and
    the class walks each part's members as the record says: a member the record moves to
    another part is translated there."""
    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 8, 8]\n"
        "blocks:\n"
        "  skip:\n"
        "    body:\n"
        "      - residual: {body: [{conv: {out: in.c, k: 3, pad: 1}}, tanh], after: gelu}\n"
        "      - parallel: [{conv: {out: 2, k: 1}}, [{conv: {out: 3, k: 1}}, mish]]\n"
        "network:\n"
        "  - skip\n")
    graph = archdsl.load(spec)
    source = generate(graph).source
    assert "out = self.tanh(out)  # N x 3 x 8 x 8\n        out = out + x" in source
    assert "branch2 = self.mish(branch2)" in source
    residual, parallel = graph.templates["skip"].scopes.values()
    assert residual.meta["parts"] == {"conv": "body", "tanh": "body", "add": "merge",
                                      "gelu": "after"}
    assert parallel.meta["parts"] == {"conv_1": "0", "conv_2": "1", "mish": "1", "cat": "merge"}
    residual.meta["parts"]["tanh"] = "after"
    parallel.meta["parts"]["mish"] = "0"
    items = graph.templates["skip"].items  # (mish reads the first branch's conv now: its
    items["mish"].in_shapes = (items["conv_1"].shape,)  # item says so, as a template made so
    items["mish"].shape = items["conv_1"].shape  # would)
    source = generate(graph).source
    assert "out = out + x  # N x 3 x 8 x 8\n        out = self.tanh(out)" in source
    assert "branch1 = self.mish(branch1)" in source


def test_a_construct_has_the_parts_its_scope_names(tmp_path):
    """An unnamed residual's and parallel's scope names its parts in order (``meta["part_names"]``:
    one that makes no member too, a dropped branch too), and the class translates those parts,
    not the AST's: a part the record leaves out is not built."""
    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 8, 8]\n"
        "blocks:\n"
        "  skip:\n"
        "    body:\n"
        "      - residual: {body: [{conv: {out: in.c, k: 3, pad: 1}}, tanh], shortcut: identity,\n"
        "                   after: gelu}\n"
        "      - parallel: [{conv: {out: 3, k: 1}}, {when: false, conv: {out: 5, k: 1}},\n"
        "                   [{conv: {out: 3, k: 1}}, mish]]\n"
        "        merge: add\n"
        "network:\n"
        "  - skip\n")
    graph = archdsl.load(spec)
    source = generate(graph).source
    assert "self.gelu(out)" in source and "branch1 + branch3" in source
    residual, parallel = [s for s in graph.templates["skip"].scopes.values() if s.kind != "when"]
    assert residual.meta["part_names"] == ["body", "shortcut", "after"]
    assert parallel.meta["part_names"] == ["0", "1", "2"]
    residual.meta["part_names"].remove("after")
    parallel.meta["part_names"].remove("2")
    source = generate(graph).source
    assert "gelu" not in source and "mish" not in source and "branch1 +" not in source


def test_a_repeat_walks_its_copies_as_its_scope_records_them(tmp_path):
    """A repeat's scope records which copy made each member (``meta["parts"]``, by the copy's
    index), and the class walks each copy's members as the record says: a member the record
    gives no copy is not built, a copy the record gives no member builds nothing (its input
    passes through, as a repeated unnamed `identity`'s copies do), and a copy the record does
    not have (``meta["part_names"]``) is an internal error naming it, not the repeated layer
    made again from the AST."""
    graph = _unit_net(
        tmp_path,
        "      - {repeat: 2, layer: [{conv: {out: 4, k: 3, pad: 1}}, gelu]}\n"
        "      - stage: {repeat: 2, layer: [{conv: {out: 4, k: 1}}, relu]}\n")
    source = generate(graph).source
    assert "self.conv_1 = nn.Conv2d(4, 4, kernel_size=3, padding=1)\n        self.gelu_1" in source
    unit = graph.templates["unit"]
    (repeat,) = [s for s in unit.scopes.values() if s.kind == "repeat" and not s.named]
    assert repeat.meta["parts"] == {"conv": "0", "gelu": "0", "conv_1": "1", "gelu_1": "1"}
    assert unit.scopes["stage"].meta["parts"] == {"stage.0": "0", "stage.1": "1"}
    del repeat.meta["parts"]["gelu_1"]
    unit.scopes["stage"].meta["parts"]["stage.0"] = "none"
    source = generate(graph).source
    assert "self.conv_1 = nn.Conv2d(4, 4, kernel_size=3, padding=1)\n        self.stage" in source
    assert "gelu_1" not in source
    assert "self.stage = nn.Sequential(\n            OrderedDict(\n                [\n" \
        "                    (\n                        \"1\",\n" in source
    assert source.count("nn.Conv2d(4, 4, kernel_size=1)") == 1
    unit.scopes["stage"].meta["part_names"].remove("1")
    with pytest.raises(AssertionError, match=r"repeat at .*net\.yaml:\d+:\d+: its scope records no "
                                             r"copy 1$"):
        generate(graph)


def test_a_repeats_copies_are_walked_from_their_steps_not_the_repeated_layer(tmp_path,
                                                                             monkeypatch):
    """Each copy of a repeat (unnamed, named, with a name template, dense) the template walks is
    translated from its steps (``Step.parts``, by the copy's index: each with its item or
    scope), never made again from the AST's repeated layer."""
    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 8, 8]\n"
        "blocks:\n"
        "  unit:\n"
        "    body:\n"
        "      - {repeat: 2, layer: [{conv: {out: 4, k: 3, pad: 1}}, gelu]}\n"
        "      - stage: {repeat: 2, layer: [{conv: {out: 4, k: 1}}, relu]}\n"
        "      - {repeat: 2, layer: {conv: {out: 4, k: 1}}, name: \"c{i+1}\"}\n"
        "      - {dense: 2, layer: {conv: {out: 2, k: 1}}}\n"
        "      - grow: {dense: 2, layer: [{conv: {out: 2, k: 1}}, relu]}\n"
        "network:\n"
        "  - unit\n"
        "  - {repeat: 2, layer: relu}\n")
    graph = archdsl.load(spec)
    made = generate(graph).source
    assert "self.c2 = " in made and "self.grow = DenseBlock(" in made

    walk = ClassBuilder.walk

    def checked(builder, steps, *args, **kwargs):
        assert all(step.member is not None for step in steps), "a step without its member"
        return walk(builder, steps, *args, **kwargs)

    monkeypatch.setattr(ClassBuilder, "walk", checked)
    assert generate(archdsl.load(spec)).source == made


def test_a_member_of_an_nn_sequential_is_refused_as_its_record_says(tmp_path):
    """Whether a layer can be a member of an nn.Sequential (no `from:`, no `output:`...) is
    what its item records (``reads``), not the AST's: a member the record says reads a `from:`
    is refused."""
    from archdsl.codegen import CodegenError

    graph = _unit_net(
        tmp_path,
        "      - convs: [{conv: {out: 4, k: 1}}, relu]\n")
    assert "self.convs = nn.Sequential(" in generate(graph).source
    graph.templates["unit"].items["convs.1"].reads = True  # (the AST: no `from:`)
    with pytest.raises(CodegenError, match="cannot be part of an nn.Sequential"):
        generate(graph)


def test_a_generic_class_names_its_layers_as_their_items_and_scopes_key_them(tmp_path):
    """A walked layer's attribute name (and the names inside it) is its template item's key, or
    its named sequence's scope's path, not the AST layer's name: what the template says reaches
    the code."""
    graph = _unit_net(
        tmp_path,
        "      - conv: {conv: {out: c, k: 1}}\n"
        "      - relu\n"
        "      - tail: [{conv: {out: c, k: 1}}, relu]\n",
        params="{c: int}", uses=("unit: {c: 4}", "unit: {c: 8}"))
    unit = block_templates(graph)["unit"]
    source = generate(graph).source
    assert "self.conv = nn.Conv2d(" in source and "self.tail = nn.Sequential(" in source
    _rekeyed(unit, "conv", "stem")  # (the AST: conv)
    source = generate(graph).source
    assert "self.stem = nn.Conv2d(" in source and "self.stem(x)" in source
    assert "self.conv" not in source
    _rekeyed(unit, "relu", "act")  # (the AST: unnamed, relu)
    _rekeyed(unit, "tail", "head")  # (the AST: tail; its members head.0, head.1)
    source = generate(graph).source
    assert "self.act = nn.ReLU(" in source and "self.head = nn.Sequential(" in source
    assert "self.relu" not in source and "self.tail" not in source


def test_a_class_freezes_what_its_template_records_as_frozen(tmp_path, monkeypatch):
    """An item records a `freeze:` of its own layer or of an unnamed sequence around it in its
    scope (``own_freeze``; ``freeze`` is any, a named sequence's too), a scope its own
    (``meta["freeze"]``): an unnamed sequence with `freeze:` around a construct is walked too
    (the class the AST walk wrote: ``WALKED``), and what the record says reaches the class."""
    graph = _unit_net(
        tmp_path,
        "      - seq: [{conv: {out: 4, k: 1}}, {residual: {body: [{conv: {out: 4, k: 1}}, bn]}}]\n"
        "        freeze: true\n"
        "      - s: [{conv: {out: 4, k: 1}, freeze: true}, relu]\n"
        "      - {conv: {out: 4, k: 1}, freeze: true}\n"
        "      - parallel: [{conv: {out: 2, k: 1}}, {conv: {out: 2, k: 1}}]\n")
    walked = generate(graph).source
    assert walked == (WALKED / "frozen_record.txt").read_text()
    unit = graph.templates["unit"]
    assert {k: i.own_freeze for k, i in unit.items.items() if i.own_freeze} == {
        "conv": True, "s.0": True, "conv_2": True}
    residual, s, parallel = unit.scopes.values()
    assert residual.meta["freeze"] and "freeze" not in s.meta and "freeze" not in parallel.meta
    assert "self.bn = frozen(nn.BatchNorm2d(4))" in walked
    assert "self.s = nn.Sequential(\n            frozen(nn.Conv2d(4, 4, kernel_size=1))," in walked
    assert "self.conv_2 = frozen(nn.Conv2d(4, 4, kernel_size=1))" in walked
    del residual.meta["freeze"]
    unit.items["s.0"].own_freeze = unit.items["conv_2"].own_freeze = False
    s.meta["freeze"] = parallel.meta["freeze"] = True
    source = generate(graph).source
    assert "self.conv = frozen(nn.Conv2d(in_channels, 4, kernel_size=1))" in source
    assert "self.conv_1 = nn.Conv2d(4, 4, kernel_size=1)\n        self.bn = nn.BatchNorm2d(4)\n" \
        in source
    assert "self.s = frozen(\n            nn.Sequential(nn.Conv2d(4, 4, kernel_size=1), " \
        "nn.ReLU(inplace=True)),\n" in source
    assert "self.conv_2 = nn.Conv2d(4, 4, kernel_size=1)\n" in source
    assert "self.conv_3 = frozen(nn.Conv2d(4, 2, kernel_size=1))\n" \
           "        self.conv_4 = frozen(nn.Conv2d(4, 2, kernel_size=1))\n" in source


def test_a_from_reads_what_its_items_input_keys_name(tmp_path):
    """A walked layer's `from:` reads the values computed under its template item's input keys
    (its ``inputs``), not the names the AST's `from:` gives: an input edited on the item reaches
    the forward."""
    graph = _unit_net(
        tmp_path,
        "      - a: {conv: {out: c, k: 1}}\n"
        "      - b: relu\n"
        "      - d: {conv: {out: c, k: 1}, from: a}\n"
        "      - {add: {}, from: [b, d]}\n",
        params="{c: int}", uses=("unit: {c: 4}", "unit: {c: 8}"))
    unit = block_templates(graph)["unit"]
    assert unit.items["d"].inputs == ("a",) and unit.items["add"].inputs == ("b", "d")
    source = generate(graph).source
    assert "x_1 = self.b(x)  # N x 4 x 8 x 8\n        x = self.d(x)  # N x 4 x 8 x 8\n" \
           "        x_1 = x_1 + x  #" in source
    unit.items["d"].inputs = ("b",)  # (the AST: from: a)
    unit.items["add"].inputs = ("d", "a")  # (the AST: from: [b, d])
    source = generate(graph).source
    assert "x_1 = self.b(x)  # N x 4 x 8 x 8\n        x_1 = self.d(x_1)  # N x 4 x 8 x 8\n" \
           "        x_1 = x_1 + x  #" in source


def test_a_side_output_is_the_one_its_template_records(tmp_path):
    """A walked layer's auxiliary output (`output:`) is the template's (``outputs``: its name ->
    the key of the item it is), not the AST's: a name edited there reaches the network class."""
    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 8, 8]\n"
        "network:\n"
        "  - conv: {conv: {out: 4, k: 1}}\n"
        "  - {conv: {out: 2, k: 1}, output: aux}\n"
        "  - relu\n")
    graph = archdsl.load(spec)
    net = block_templates(graph)[""]
    assert net.outputs == {"aux": "conv_1"}
    source = generate(graph).source
    assert "    aux: Tensor\n" in source and "aux = self.conv_1(x)" in source
    net.outputs = {"extra": "conv_1"}  # (the AST: aux)
    source = generate(graph).source
    assert "    extra: Tensor\n" in source and "extra = self.conv_1(x)" in source
    assert "aux: Tensor" not in source and "aux = " not in source


def test_a_parallel_names_its_branches_outputs_as_its_scope_records(tmp_path):
    """A parallel's scope records the name the spec gives each branch (``meta["hints"]``: its
    own, or its sequence's last named layer's), and the class names the branch's output so,
    else by position: what the record says reaches the forward."""
    graph = _unit_net(
        tmp_path,
        "      - parallel:\n"
        "          - left: {conv: {out: 2, k: 1}}\n"
        "          - [{conv: {out: 3, k: 1}}, {act: mish}]\n"
        "          - {conv: {out: 1, k: 1}}\n")
    source = generate(graph).source
    assert "x = torch.cat([left, act, branch3], 1)" in source
    (parallel,) = graph.templates["unit"].scopes.values()
    assert parallel.meta["hints"] == {"0": "left", "1": "act"}
    parallel.meta["hints"] = {"0": "stem", "2": "tail"}
    source = generate(graph).source
    assert "stem = self.left(x)" in source and "branch2 = self.act(branch2)" in source
    assert "x = torch.cat([stem, branch2, tail], 1)" in source


def test_a_walked_layers_when_is_its_own_steps_scopes(tmp_path):
    """A walked layer's `when:` is its step's `when:` scope's condition, not the one the scopes
    at its location record for its repeat index: in nested repeats (where copies of both share
    an index) an edit to one copy's scope reaches that copy only."""
    graph = _unit_net(
        tmp_path,
        "      - conv: {conv: {out: width, k: 1}}\n"
        "      - repeat: 2\n"
        "        layer: {repeat: 2, layer: {conv: {out: width, k: 1}, when: \"i > 0\"}}\n",
        params="{width: int}", uses=("unit: {width: 4}", "unit: {width: 8}"))
    unit = block_templates(graph)["unit"]
    whens = [s for s in unit.scopes.values() if s.kind == "when"]
    assert [(_copy_of(unit, s), s.meta["when"]) for s in whens] == \
        [(0, False), (1, True), (0, False), (1, True)]
    assert "self.conv_2 = nn.Conv2d(width, width, kernel_size=1)\n" in generate(graph).source
    whens[3].meta["when"] = False  # (the AST: i > 0, true; the other copy's index 1: true)
    source = generate(graph).source
    assert "self.conv_1 = nn.Conv2d(width, width, kernel_size=1)\n" in source
    assert "self.conv_2" not in source


def test_a_walked_constructs_connect_and_count_are_its_own_scopes(tmp_path):
    """A walked residual's `connect:` and a walked repeat's count are what its own scope (its
    step's) records, not the scopes' at its location for its repeat index: in nested repeats
    (where copies of both share an index) an edit to one copy's scope reaches that copy only."""
    graph = _unit_net(
        tmp_path,
        "      - conv: {conv: {out: width, k: 1}}\n"
        "      - repeat: 2\n"
        "        layer:\n"
        "          repeat: 2\n"
        "          layer:\n"
        "            residual:\n"
        "              body: {conv: {out: width, k: 1}}\n"
        "              connect: \"i > 0\"\n"
        "      - repeat: 2\n"
        "        layer: {repeat: 2, layer: {repeat: \"i + 1\", layer: relu}}\n",
        params="{width: int}", uses=("unit: {width: 4}", "unit: {width: 8}"))
    unit = block_templates(graph)["unit"]
    residuals = [s for s in unit.scopes.values() if s.kind == "residual"]
    assert [(_copy_of(unit, s), s.meta["connect"]) for s in residuals] == \
        [(0, False), (1, True), (0, False), (1, True)]
    source = generate(graph).source
    assert source.count(" + out  #") == 2 and "self.relu_5 = nn.ReLU()" in source
    residuals[3].meta["connect"] = False  # (the AST: i > 0, true; the other copy's index 1: true)
    innermost = [s for s in unit.scopes.values() if s.kind == "repeat"][-1]
    assert (_copy_of(unit, innermost), innermost.meta["count"]) == (1, 2)
    innermost.meta["count"] = 1  # (the AST: i + 1, 2; the other copy's index 1: 2)
    source = generate(graph).source
    assert source.count(" + out  #") == 1
    assert "self.relu_4 = nn.ReLU()" in source and "self.relu_5" not in source
    # one copy's scope without its count: not found at its location for its index (the other
    # copy's scope there records one), but a bug
    del innermost.meta["count"]
    with pytest.raises(AssertionError, match="no template scope records its count"):
        generate(graph)


def test_an_unnamed_dense_blocks_concats_are_the_merges_its_scope_records(tmp_path, monkeypatch):
    """An unnamed dense block's scope records its concats (before each copy after the first, and
    at its end) as its merges (``meta["parts"]``), and the class's concats are those items, in
    order, not ones found by key."""
    graph = _unit_net(
        tmp_path,
        "      - {dense: 3, layer: [{conv: {out: 2, k: 1}}, relu]}\n"
        "      - {conv: {out: 4, k: 1}}\n")
    (dense,) = block_templates(graph)["unit"].scopes.values()
    assert dense.meta["parts"] == {"conv": "0", "relu": "0", "cat": "merge", "conv_1": "1",
                                   "relu_1": "1", "cat_1": "merge", "conv_2": "2",
                                   "relu_2": "2", "cat_2": "merge"}
    given = []
    merge = ClassBuilder.merge

    def recorded(builder, item, *args, **kwargs):
        given.append(item.key)
        return merge(builder, item, *args, **kwargs)

    monkeypatch.setattr(ClassBuilder, "merge", recorded)
    source = generate(graph).source
    assert given == ["cat", "cat_1", "cat_2"]
    assert "x_3 = torch.cat([x, x_1, x_2], 1)  # N x 7 x 8 x 8\n" in source
    del dense.meta["parts"]["cat_2"]  # (its last concat: a record without it is a bug)
    with pytest.raises(AssertionError, match=r"dense at .*net\.yaml:6:9: its scope records no "
                                             r"concat of 4 inputs$"):
        generate(graph)


def test_whether_a_walked_layer_has_a_from_is_its_items(tmp_path):
    """Whether a walked layer reads a `from:` (its item's input keys) or the layer before it is
    what its item records (``reads``; a scope's ``meta["reads"]``), not the AST's: a `from:`
    taken off or put on an item reaches the forward."""
    graph = _unit_net(
        tmp_path,
        "      - a: {conv: {out: c, k: 1}}\n"
        "      - b: relu\n"
        "      - d: {conv: {out: c, k: 1}, from: a}\n"
        "      - e: relu\n"
        "      - {add: {}, from: [b, e]}\n",
        params="{c: int}", uses=("unit: {c: 4}", "unit: {c: 8}"))
    unit = block_templates(graph)["unit"]
    assert [key for key, item in unit.items.items() if item.reads] == ["d", "add"]
    source = generate(graph).source
    assert "x_1 = self.b(x)  # N x 4 x 8 x 8\n        x = self.d(x)  #" in source
    assert "x = self.e(x)  #" in source
    unit.items["d"].reads = False  # (the AST: from: a; its item's input key is still a)
    unit.items["e"].reads, unit.items["e"].inputs = True, ("a",)  # (the AST: no from:)
    source = generate(graph).source
    assert "x_1 = self.b(x)  # N x 4 x 8 x 8\n        x_1_1 = self.d(x_1)  #" in source
    assert "x = self.e(x)  #" in source


def test_a_walked_residual_and_branch_read_their_conditions_from_their_scopes(tmp_path):
    """A walked residual's `connect:` is its scope's record even where the AST writes none (the
    expander records true), and a walked parallel branch's `when:` is its part's `when:`
    scope's, not the scopes' at its location and repeat index: in nested repeats, edits to one
    copy's scopes reach that copy only."""
    graph = _unit_net(
        tmp_path,
        "      - repeat: 2\n"
        "        layer:\n"
        "          repeat: 2\n"
        "          layer:\n"
        "            - {residual: {body: {conv: {out: 3, k: 1}}}}\n"
        "            - parallel: [{conv: {out: 3, k: 1}}, {tanh: {}, when: \"i > 0\"}]\n"
        "              merge: add\n")
    source = generate(graph).source
    assert "out = self.conv_6(branch1)  # N x 3 x 8 x 8\n        out = out + branch1  #" in source
    assert "branch2 = self.tanh_1(out)" in source
    scopes = graph.templates["unit"].scopes.values()
    residuals = [s for s in scopes if s.kind == "residual"]
    whens = [s for s in scopes if s.kind == "when"]
    assert [s.meta["connect"] for s in residuals] == [True] * 4
    template = graph.templates["unit"]
    assert [(s.meta["when"], _copy_of(template, s)) for s in whens] == [(False, 0), (True, 1)] * 2
    residuals[3].meta["connect"] = False  # (the second outer copy's second inner copy)
    whens[3].meta["when"] = False
    source = generate(graph).source
    assert "out = self.conv_6(branch1)  # N x 3 x 8 x 8\n        branch1 = self.conv_7(out)" \
        in source
    assert "out = out + branch1  # N x 3 x 8 x 8\n        branch1 = self.conv_3(out)" in source
    assert "branch2 = self.tanh(out)" in source and "tanh_1" not in source


def test_a_walked_merge_takes_its_op_and_key_from_its_item(tmp_path):
    """A walked construct's merge is its item's op under its item's key, not the AST's (a
    residual's `add`, a parallel's `merge:`) named again: what the item says reaches the
    forward."""
    graph = _unit_net(
        tmp_path,
        "      - conv: {conv: {out: c, k: 1}}\n"
        "      - residual: {body: {conv: {out: c, k: 1}}}\n"
        "      - relu\n",
        params="{c: int}", uses=("unit: {c: 4}", "unit: {c: 8}"))
    unit = block_templates(graph)["unit"]
    assert unit.items["add"].target == "add"
    source = generate(graph).source
    assert "out = out + x  #" in source
    unit.items["add"].target = "mul"  # (the AST: a residual adds)
    _rekeyed(unit, "add", "sum")  # (the AST's automatic name: add)
    source = generate(graph).source
    assert "out = out * x  #" in source and "out + x" not in source


def test_a_walked_layer_is_translated_as_what_its_item_or_scope_is(tmp_path):
    """What a walked layer is (an op, a block use, which construct, named or inline) is its
    item's or scope's record (``kind``, ``named``), not the AST's: a named sequence's scope
    recorded as unnamed has its members inline (attributes of the class, keyed as before)."""
    graph = _unit_net(
        tmp_path,
        "      - conv: {conv: {out: c, k: 1}}\n"
        "      - tail: [{conv: {out: c, k: 1}}, relu]\n",
        params="{c: int}", uses=("unit: {c: 4}", "unit: {c: 8}"))
    unit = block_templates(graph)["unit"]
    assert (unit.scopes["tail"].kind, unit.scopes["tail"].named) == ("seq", True)
    assert "self.tail = nn.Sequential(" in generate(graph).source
    unit.scopes["tail"].named = False  # (the AST: a named sequence)
    source = generate(graph).source
    assert "self.tail = nn.ModuleDict()" in source and "nn.Sequential" not in source
    assert 'self.tail["0"] = nn.Conv2d(c, c, kernel_size=1)' in source
    assert 'x = self.tail["1"](x)' in source


def test_an_unnamed_sequence_with_a_from_or_output_is_walked_from_its_own_scope(tmp_path,
                                                                               monkeypatch):
    """An unnamed sequence with `from:` or `output:` has a template scope of its own (unnamed,
    kind ``seq``: its ``input`` what the `from:` names, with ``meta["reads"]``; its ``output``
    the node the template's ``outputs`` name), so its class walks the template (the class the
    AST walk wrote: ``WALKED``) and what the scope says reaches the code; a member the template
    does not have is a bug the class says (there is no AST walk to fall back on)."""
    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 8, 8]\n"
        "blocks:\n"
        "  fork:\n"
        "    body:\n"
        "      - a: {conv: {out: 3, k: 1}}\n"
        "      - {seq: [{conv: {out: 3, k: 1}}, sigmoid], from: input}\n"
        "      - b: tanh\n"
        "network:\n"
        "  - fork\n"
        "  - {seq: [{conv: {out: 2, k: 1}}, flatten, {linear: {out: 5}}], output: aux}\n")
    graph = archdsl.load(spec)
    walks = {}

    def recording(method):
        built = getattr(ClassBuilder, method)

        def recorded(builder, *args, **kwargs):
            result = built(builder, *args, **kwargs)
            walks[method] = bool(builder.walked_steps)  # (its template walk's steps: _keep_walks)
            return result

        monkeypatch.setattr(ClassBuilder, method, recorded)

    recording("build_block")
    recording("build_network")
    _keep_walks(monkeypatch)
    walked = generate(graph).source
    assert walks == {"build_block": True, "build_network": True}
    assert walked == (WALKED / "unnamed_seq_scope.txt").read_text()
    assert "x_1 = self.a(x)  # N x 3 x 8 x 8\n        x = self.conv(x)  #" in walked
    assert "if self.training:\n            aux = self.conv(x)" in walked
    (seq,) = graph.templates["fork"].scopes.values()
    assert (seq.kind, seq.named, seq.input, seq.members, seq.meta["reads"]) == (
        "seq", False, "input", ["conv", "sigmoid"], True)
    network = graph.templates[""]
    (head,) = network.scopes.values()
    assert (head.kind, head.named, head.output) == ("seq", False, network.outputs["aux"])
    seq.input = "a"  # (the AST: from: input)
    fork = graph.templates["fork"].items  # (its first member reads `a` now, as its item says)
    fork["conv"].in_shapes = (fork["a"].shape,)
    source = generate(graph).source
    assert "x = self.a(x)  # N x 3 x 8 x 8\n        x = self.conv(x)  #" in source
    network.members.append("bogus")
    with pytest.raises(AssertionError, match=r"class Net: the network's template cannot be walked: "
                       r"a member the template does not have \(bogus\)"):
        generate(graph)


def test_a_sequence_member_is_numbered_as_its_item_records(tmp_path):
    """Whether a member of an nn.Sequential is numbered (named by position) or named is its
    item's record (``named``), not the AST layer's name: an item recorded as named makes the
    sequence (built by statements under a `when:`) name its members."""
    graph = _unit_net(
        tmp_path,
        "      - conv: {conv: {out: c, k: 1}}\n"
        "      - tail: [{conv: {out: c, k: 1}}, {relu: {}, when: act}]\n",
        params="{c: int, act: bool}", uses=("unit: {c: 4, act: true}", "unit: {c: 8, act: false}"))
    unit = block_templates(graph)["unit"]
    assert not unit.items["tail.0"].named
    assert "layers.append(nn.Conv2d(c, c, kernel_size=1))" in generate(graph).source
    unit.items["tail.0"].named = True  # (the AST: unnamed)
    source = generate(graph).source
    assert 'layers["0"] = nn.Conv2d(c, c, kernel_size=1)' in source
    assert "layers[str(len(layers))] = nn.ReLU(inplace=True)" in source


def test_a_walked_layers_own_name_is_its_items_or_scopes(tmp_path):
    """The name a walked layer has for what the class asks of names (a named sequence a member
    of which another layer reads, run member by member; names two layers share) is its item's or
    scope's key, not the AST layer's: a sequence rekeyed on the template, and the member read
    with it, is still run member by member, the member read named as its path says."""
    graph = _unit_net(
        tmp_path,
        "      - tail: [{conv: {out: c, k: 1}}, {act: relu}]\n"
        "      - {conv: {out: c, k: 1}, from: tail.act}\n",
        params="{c: int}", uses=("unit: {c: 4}", "unit: {c: 8}"))
    unit = block_templates(graph)["unit"]
    assert unit.member_reads == {"tail.act"} and unit.items["conv"].inputs == ("tail.act",)
    source = generate(graph).source
    assert "act = self.tail[1](x)  #" in source and "act = self.conv(act)  #" in source
    _rekeyed(unit, "tail", "head")  # (the AST: tail)
    unit.member_reads = frozenset({"head.act"})
    source = generate(graph).source
    assert "act = self.head[1](x)  #" in source and "act = self.conv(act)  #" in source


def test_a_from_reads_the_keys_its_item_records_not_a_name_over_the_ast(tmp_path):
    """A layer's `from:` reads the values its class computed under its item's input keys
    (``inputs``), not a name looked up over the AST: a key nothing before it computed is an
    internal error naming the key."""
    graph = _unit_net(
        tmp_path,
        "      - a: {conv: {out: c, k: 1}}\n"
        "      - {conv: {out: c, k: 1}}\n"
        "      - {relu: {}, from: a}\n",
        params="{c: int}", uses=("unit: {c: 4}", "unit: {c: 8}"))
    source = generate(graph).source
    assert "x = self.a(x)  # N x 4 x 8 x 8\n        x_1 = self.conv(x)  # N x 4 x 8 x 8\n" \
        "        x = self.relu(x)  #" in source
    relu = block_templates(graph)["unit"].items["relu"]
    assert relu.reads and relu.inputs == ("a",)
    relu.inputs = ("conv",)  # (the AST: from: a)
    assert "x = self.conv(x)  # N x 4 x 8 x 8\n        x = self.relu(x)  #" \
        in generate(graph).source
    relu.inputs = ("b",)
    with pytest.raises(AssertionError, match=r"layer at .*net\.yaml:9:9: its input b is not "
                                             r"computed before it in its class$"):
        generate(graph)


def test_a_sequence_its_template_does_not_walk_is_a_bug(tmp_path):
    """An unnamed sequence under a `when:` is walked from its `when:` scope's members, inline
    and as members of an nn.Sequential: a scope whose members cannot be walked (one the template
    does not have) gives the layer no member, an internal error naming the layer, not what it is
    and its members taken from the AST."""
    graph = _unit_net(
        tmp_path,
        "      - {conv: {out: 4, k: 1}}\n"
        "      - {seq: [{conv: {out: 4, k: 1}}, relu], when: act}\n"
        "      - t: [{conv: {out: 4, k: 1}}, {seq: [{conv: {out: 4, k: 1}}, gelu], when: act}]\n",
        params="{act: bool}", uses=("unit: {act: true}", "unit: {act: false}"))
    source = generate(graph).source
    assert "if act:\n            self.conv_1 = nn.Conv2d(4, 4, kernel_size=1)" in source
    assert "if act:\n            layers.append(nn.GELU())" in source
    unit = graph.templates["unit"]
    for parent in ("", "t"):
        (when,) = [s for s in unit.scopes.values() if s.kind == "when" and (s.parent or "") == parent]
        when.members.append("bogus")
        with pytest.raises(AssertionError, match=r"layer at .*net\.yaml:\d+:\d+: its step gives "
                                                 r"it no template item or scope \(its template "
                                                 r"lost it, or does not walk its `when:` scope's "
                                                 r"members\)"):
            generate(graph)
        when.members.remove("bogus")
    assert generate(graph).source == source


def _copy_of(template, scope):
    """Which copy of the innermost repeat around it made ``scope``, as the repeat's scope
    records it (``meta["parts"]``: a copy's index as a string, for each member it made)."""
    while template.scopes[scope.parent].kind not in ("repeat", "dense"):
        scope = template.scopes[scope.parent]
    return int(template.scopes[scope.parent].meta["parts"][scope.path])


def test_a_parallel_merges_as_its_scope_records_its_merge(tmp_path):
    """An unnamed parallel's merge is the item its scope records (``meta["parts"]``: ``merge``),
    its op that item's; a parallel whose scope records no merge is an AssertionError, not a
    merge made from the AST's ``merge:``."""
    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 8, 8]\n"
        "blocks:\n"
        "  fork:\n"
        "    body:\n"
        "      - parallel: [{conv: {out: 3, k: 1}}, {conv: {out: 3, k: 3, pad: 1}}]\n"
        "        merge: add\n"
        "network:\n"
        "  - fork\n")
    graph = archdsl.load(spec)
    assert "branch1 + branch2" in generate(graph).source
    (parallel,) = graph.templates["fork"].scopes.values()
    merges = [key for key, part in parallel.meta["parts"].items() if part == "merge"]
    assert len(merges) == 1
    del parallel.meta["parts"][merges[0]]
    with pytest.raises(AssertionError, match="records no merge"):
        generate(graph)


def test_a_merge_its_construct_does_not_record_is_a_bug(tmp_path):
    """A walked residual's add is the merge item its scope records (``meta["parts"]``: ``merge``,
    :attr:`Step.merge`): a record without it is an internal error naming the residual, not an
    add named over the AST."""
    graph = _unit_net(
        tmp_path,
        "      - residual: {body: [{conv: {out: 3, k: 1}}, relu]}\n")
    assert "out = out + x  # N x 3 x 8 x 8" in generate(graph).source
    (residual,) = graph.templates["unit"].scopes.values()
    (add,) = [key for key, part in residual.meta["parts"].items() if part == "merge"]
    del residual.meta["parts"][add]
    with pytest.raises(AssertionError, match=r"residual at .*net\.yaml:6:9: its template "
                                             r"records no merge$"):
        generate(graph)


def test_a_merge_whose_inputs_are_not_its_items_is_a_bug(tmp_path):
    """A merge's shape is its item's, for the inputs its item records (``in_shapes``): inputs
    of other shapes are an internal error, not a shape the op's rule computes again."""
    graph = _unit_net(
        tmp_path,
        "      - residual: {body: [{conv: {out: 3, k: 1}}, relu]}\n")
    assert "out = out + x  # N x 3 x 8 x 8" in generate(graph).source
    (add,) = [item for item in graph.templates["unit"].items.values() if item.target == "add"]
    add.in_shapes = ((3, 4, 4), (3, 4, 4))
    with pytest.raises(AssertionError, match=r"add add at .*net\.yaml:6:9: its inputs \(\(3, "
                                             r"in_height, in_width\), \(in_channels, in_height, "
                                             r"in_width\)\) are not its item's \(\(3, 4, 4\), "
                                             r"\(3, 4, 4\)\)"):
        generate(graph)


def test_an_op_or_use_whose_inputs_are_not_its_items_is_a_bug(tmp_path):
    """An op layer's and a block use's shape is its item's, for the inputs its item records
    (``in_shapes``): inputs of other shapes are an internal error naming the layer, not a shape
    the op's rule (a use's bound template) computes again."""
    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 8, 8]\n"
        "blocks:\n"
        "  unit:\n"
        "    params: {width: int}\n"
        "    body:\n"
        "      - a: {conv: {out: width, k: 1}}\n"
        "      - b: {conv: {out: 4, k: 1}}\n"
        "  pair:\n"
        "    params: {width: int}\n"
        "    body:\n"
        "      - c: {conv: {out: 2, k: 1}}\n"
        "      - u: {unit: {width: width}}\n"
        "network:\n"
        "  - pair: {width: 4}\n"
        "  - pair: {width: 8}\n")
    graph = archdsl.load(spec)
    unit = block_templates(graph)["unit"]
    assert "self.b = nn.Conv2d(width, 4, kernel_size=1)" in generate(graph).source
    unit.items["a"].shape = (5, *unit.items["a"].shape[1:])  # (b's item: width)
    with pytest.raises(AssertionError, match=r"conv b at .*net\.yaml:8:12: its inputs \(\(5, "
                                             r"in_height, in_width\),\) are not its item's "
                                             r"\(\(width, in_height, in_width\),\)"):
        generate(graph)
    graph = archdsl.load(spec)
    pair = block_templates(graph)["pair"]
    pair.items["c"].shape = (3, *pair.items["c"].shape[1:])  # (u's item: 2)
    with pytest.raises(AssertionError, match=r"unit u at .*net\.yaml:13:12: its inputs \(\(3, "
                                             r"in_height, in_width\),\) are not its item's "
                                             r"\(\(2, in_height, in_width\),\)"):
        generate(graph)


def test_a_merge_over_a_local_and_a_written_in_spec_parameter_compiles(tmp_path):
    """Where a merge's sizes read both a local of the class and a spec parameter it writes in
    (`in_channels * width`: every parameter is written in first, what `archdsl check` plans),
    its item's shape is read with the parameter's value written in, as an op's and a block
    use's are (not an internal error: 4ca2889 crashed here)."""
    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 8, 8]\nparams: {width: 2}\n"
        "blocks:\n"
        "  unit:\n"
        "    params: {out: int}\n"
        "    body:\n"
        "      - parallel: [{conv: {out: \"in.c * width\", k: 1}}, {conv: {out: out, k: 1}}]\n"
        "        merge: concat\n"
        "      - {conv: {out: 4, k: 1}}\n"
        "      - residual: {body: [{conv: {out: \"in.c * width\", k: 1}}, {conv: {out: 4, k: 1}}]}\n"
        "network:\n"
        "  - unit: {out: 8}\n"
        "  - unit: {out: 16}\n")
    graph = archdsl.load(spec)
    (fixed,) = [c for c in make_plan(graph, ctor_params=False).classes if c.name == "Unit"]
    assert "self.conv_2 = nn.Conv2d(in_channels * 2 + out, 4, kernel_size=1)" in \
        "\n".join(fixed.init)
    source = generate(graph).source
    assert "self.conv_2 = nn.Conv2d(in_channels * width + out, 4, kernel_size=1)\n" in source
    assert "x = torch.cat([branch1, branch2], 1)  # N x 14 x 8 x 8\n" in source


def test_a_layer_is_what_its_item_records_not_the_asts_type(tmp_path):
    """Whether a walked layer is an op or a block use is its template item's ``kind`` (its
    block the item's ``target``), not the AST layer's type: an item recorded as a use of a
    block is constructed as one where the spec wrote an op."""
    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 8, 8]\n"
        "blocks:\n"
        "  act:\n"
        "    body:\n"
        "      - relu\n"
        "  unit:\n"
        "    params: {c: int}\n"
        "    body:\n"
        "      - conv: {out: c, k: 1}\n"
        "      - gelu\n"
        "network:\n"
        "  - unit: {c: 4}\n"
        "  - unit: {c: 8}\n"
        "  - act\n")
    graph = archdsl.load(spec)
    unit = block_templates(graph)["unit"]
    (gelu,) = [item for item in unit.items.values() if item.target == "gelu"]
    assert gelu.kind == "op"
    source = generate(graph).source
    assert "self.gelu = nn.GELU()" in source and "self.act = Act(8)" in source
    gelu.kind, gelu.target, gelu.attrs = "use", "act", {}  # (the AST: the op gelu)
    source = generate(graph).source
    assert "self.gelu = Act(c)" in source and "nn.GELU" not in source


def test_a_class_is_an_nn_sequential_as_its_template_numbers_its_body(tmp_path):
    """A body whose members the spec numbers (``"0": conv``) is an nn.Sequential subclass, as
    its template records the numbering (its own level's items and scopes, through `when:`s:
    ``named``, a digit key), not as the AST names them: a numbered body keyed otherwise is a
    module class, a named one keyed ``0``, ``1`` an nn.Sequential."""
    numbered = _unit_net(
        tmp_path,
        '      - "0": {conv: {out: c, k: 1}}\n'
        '      - "1": relu\n'
        '        when: c > 4\n',
        params="{c: int}", uses=("unit: {c: 4}", "unit: {c: 8}"))
    unit = block_templates(numbered)["unit"]
    assert "class Unit(nn.Sequential):" in generate(numbered).source
    _rekeyed(unit, "0", "conv")  # (the AST: 0, 1)
    _rekeyed(unit, "1", "act")
    source = generate(numbered).source
    assert "class Unit(nn.Module):" in source and "nn.Sequential" not in source
    assert "self.conv = nn.Conv2d(in_channels, c, kernel_size=1)" in source
    assert "self.act = nn.ReLU(" in source
    named = _unit_net(
        tmp_path,
        "      - conv: {conv: {out: c, k: 1}}\n"
        "      - act: relu\n",
        params="{c: int}", uses=("unit: {c: 4}", "unit: {c: 8}"))
    unit = block_templates(named)["unit"]
    assert "class Unit(nn.Module):" in generate(named).source
    _rekeyed(unit, "conv", "0")  # (the AST: conv, act)
    _rekeyed(unit, "act", "1")
    source = generate(named).source
    assert "class Unit(nn.Sequential):" in source and "self.conv" not in source
    assert "nn.Conv2d(in_channels, c, kernel_size=1)," in source


def test_a_body_whose_only_numbered_layer_is_dropped_is_an_nn_sequential_as_under_a_parameter(
        tmp_path):
    """A numbered layer under a `when:` numbers its body whether the condition is plain (false:
    the layer is dropped, and its empty `when` scope records the names it would give,
    ``meta["dropped"]``) or on a constructor argument (its item, under ``if``): both classes
    are nn.Sequential subclasses, as before the class read its numbering from its template
    (6e61fda); 4c0a5f7 made the plain one an nn.Module."""
    from archdsl.blocks.expander import network_template

    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 8, 8]\n"
        "blocks:\n"
        "  unit:\n"
        "    body:\n"
        "      - conv: {conv: {out: 4, k: 1}}\n"
        '      - "1": relu\n'
        '        when: "in.c > 3"\n'
        "network:\n"
        "  - conv: {conv: {out: 4, k: 1}}\n"
        '  - "1": relu\n'
        '    when: "in.c > 3"\n'
        "  - u: {unit: {}}\n")
    graph = archdsl.load(spec)
    network = network_template(graph)
    dropped = [s for s in network.scopes.values() if s.kind == "when"]
    assert [s.meta.get("dropped") for s in dropped] == [["1"]] and not dropped[0].members
    source = generate(graph).source
    assert "class Net(nn.Sequential):" in source  # (plainly false: 3 channels)
    assert "super().__init__(OrderedDict(conv=nn.Conv2d(3, 4, kernel_size=1), u=Unit(4)))" \
        in source
    assert "class Unit(nn.Sequential):" in source  # (on its argument: `in_channels > 3`)
    assert 'if in_channels > 3:\n            layers["1"] = nn.ReLU(inplace=True)' in source


def test_a_named_sequence_is_refused_as_its_scope_records_a_from(tmp_path):
    """A named sequence with a `from:` cannot be generated yet (the refusal: corpus
    codegen/named_sequence_from), as its scope records the `from:` (``meta["reads"]``), not as
    the AST has it."""
    from archdsl.codegen import CodegenError

    graph = _unit_net(
        tmp_path,
        "      - stem: {conv: {out: c, k: 1}}\n"
        "      - tail: [{conv: {out: c, k: 1}}, relu]\n",
        params="{c: int}", uses=("unit: {c: 4}", "unit: {c: 8}"))
    unit = block_templates(graph)["unit"]
    assert not unit.scopes["tail"].meta.get("reads")
    assert "self.tail = nn.Sequential(" in generate(graph).source
    unit.scopes["tail"].meta["reads"] = True  # (the AST: no `from:`)
    with pytest.raises(CodegenError, match="a named sequence with branches or .from:. cannot"):
        generate(graph)
    reads = _unit_net(
        tmp_path,
        "      - stem: {conv: {out: c, k: 1}}\n"
        "      - tail: [{conv: {out: c, k: 1}}, relu]\n"
        "        from: input\n"
        "      - {add: {}, from: [stem, tail]}\n",
        params="{c: int}", uses=("unit: {c: 4}", "unit: {c: 8}"))
    unit = block_templates(reads)["unit"]
    assert unit.scopes["tail"].meta.get("reads")
    with pytest.raises(CodegenError, match="a named sequence with branches or .from:. cannot"):
        generate(reads)
    del unit.scopes["tail"].meta["reads"]  # (the AST: `from: input`; it reads the stem now,
    unit.items["tail.0"].in_shapes = (unit.items["stem"].shape,)  # as its first item says)
    source = generate(reads).source
    assert "self.tail = nn.Sequential(" in source and "x_1 = self.tail(x)  #" in source
