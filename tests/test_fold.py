"""Batch-norm folding: the IR pass (archdsl.passes) and the weights (archdsl.fold).

The folded model, built from the folded graph and loaded with ``fold_state_dict`` of the unfolded
model's weights, computes what the unfolded model computes in eval mode.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import archdsl
from archdsl.passes import fold_batchnorm, foldable_batchnorms, folded_convs

import torch  # noqa: E402

from archdsl.builder import build_graph
from archdsl.fold import fold_state_dict

SPECS = Path(__file__).resolve().parent.parent / "specs"

# (spec, input): small inputs keep the test fast; every family with batch norm is here.
CASES = [
    ("resnet18", (3, 64, 64)),
    ("resnet50", (3, 64, 64)),
    ("mobilenet_v2", (3, 64, 64)),
    ("googlenet", (3, 64, 64)),  # bn eps 0.001
    ("densenet121", (3, 64, 64)),  # norm1 (after the concat) cannot fold, norm2 can
    ("vgg16_bn", (3, 64, 64)),  # numbered nn.Sequential: later layers keep their numbers
    ("shufflenet_v2_x1_0", (3, 64, 64)),
    ("resnet_cifar", (3, 32, 32)),
    ("inception_bn", None),  # `when:` on the bn (true in every use): folded
]


def _randomize(model: torch.nn.Module, seed: int = 0) -> None:
    """Random weights and random batch-norm statistics, so that folding is really exercised."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=gen) * 0.2)
                module.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
                if module.affine:
                    module.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                    module.bias.copy_(torch.randn(n, generator=gen) * 0.2)


def _assert_folded_computes_the_same(graph, folded) -> None:
    """``folded``'s module, given the state_dict of ``graph``'s (random weights and batch-norm
    statistics) mapped by ``fold_state_dict``, computes what ``graph``'s does."""
    torch.manual_seed(0)
    unfolded = build_graph(graph)
    _randomize(unfolded)
    unfolded.eval()
    model = build_graph(folded).eval()
    model.load_state_dict(fold_state_dict(unfolded.state_dict(), graph), strict=True)
    x = torch.randn(2, *graph.input_shape)
    with torch.no_grad():
        torch.testing.assert_close(model(x), unfolded(x), rtol=1e-5, atol=1e-5)


def _bn_affine_params(graph, names) -> int:
    return sum(2 * graph.nodes[bn].in_shapes[0][0] for bn in names if graph.nodes[bn].attrs.affine)


@pytest.mark.parametrize("name,shape", CASES, ids=[c[0] for c in CASES])
def test_folded_model_matches_unfolded(name, shape):
    torch.manual_seed(0)
    graph = archdsl.load(SPECS / f"{name}.yaml", input=shape)
    unfolded = build_graph(graph)
    _randomize(unfolded)
    unfolded.eval()

    folded_graph = fold_batchnorm(graph)
    folded = build_graph(folded_graph).eval()
    folded.load_state_dict(fold_state_dict(unfolded.state_dict(), graph), strict=True)

    x = torch.randn(2, *graph.input_shape)
    with torch.no_grad():
        want, got = unfolded(x), folded(x)
    rel = ((want - got).norm() / want.norm()).item()
    assert rel < 1e-5, f"{name}: relative error {rel:.2e}"

    # parameters shrink by exactly the batch norms' affine parameters minus the biases added
    absorbed = folded_convs(folded_graph)
    added_biases = sum(graph.nodes[conv].shape[0] for conv in absorbed if not graph.nodes[conv].attrs.bias)
    removed = _bn_affine_params(graph, [bn["name"] for bn in absorbed.values()])
    before, after = archdsl.analyze(graph).params, archdsl.analyze(folded_graph).params
    assert after == before - removed + added_biases
    assert sum(p.numel() for p in folded.parameters()) == after


def test_fold_removes_every_bn_that_follows_a_conv():
    graph = archdsl.load(SPECS / "resnet18.yaml")
    folded = fold_batchnorm(graph)
    assert not [n for n in folded if n.op == "bn"]
    assert sum(n.op == "bn" for n in graph) == 20  # the input graph is unchanged
    assert folded.nodes["layer2.0.downsample.0"].attrs.bias is True
    assert "layer2.0.downsample.1" not in folded.nodes
    assert folded_convs(folded)["conv1"] == {"name": "bn1", "eps": 1e-5, "affine": True}
    # the add of the block reads the conv that absorbed bn2
    add = next(n for n in folded if n.op == "add" and n.scope.startswith("layer1.0"))
    assert "layer1.0.conv2" in add.inputs


def test_densenet_keeps_the_bn_after_the_concat():
    graph = archdsl.load(SPECS / "densenet121.yaml")
    folded = fold_batchnorm(graph)
    kept = {n.local_name for n in folded if n.op == "bn"}
    assert kept == {"norm1", "norm", "norm5"}  # each after a concat (or the block input)
    assert "features.denseblock1.denselayer1.norm1" in folded.nodes
    assert "features.denseblock1.denselayer1.norm2" not in folded.nodes


def test_a_bn_under_when_folds_where_every_use_has_it():
    graph = archdsl.load(SPECS / "inception_bn.yaml")
    assert not [n for n in fold_batchnorm(graph) if n.op == "bn"]
    assert sum(n.op == "bn" for n in graph) == 57


def test_fold_state_dict_accepts_the_folded_graph_too():
    graph = archdsl.load(SPECS / "resnet18.yaml", input=(3, 32, 32))
    model = build_graph(graph)
    _randomize(model)
    state = model.state_dict()
    by_unfolded = fold_state_dict(state, graph)
    by_folded = fold_state_dict(state, fold_batchnorm(graph))
    assert by_unfolded.keys() == by_folded.keys()
    assert all(torch.equal(by_unfolded[k], by_folded[k]) for k in by_unfolded)
    assert not any(k.startswith("bn1.") for k in by_unfolded)


def test_fold_state_dict_names_a_missing_entry():
    graph = archdsl.load(SPECS / "resnet18.yaml")
    with pytest.raises(KeyError, match="no entry 'conv1.weight'"):
        fold_state_dict({}, graph)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "net.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_conv_read_elsewhere_is_not_folded(tmp_path):
    spec = _write(tmp_path, """\
name: twoway
input: [3, 16, 16]
network:
  - conv: {conv: {out: 8, k: 3, pad: 1, bias: false}}
  - bn: bn
  - skip: {conv: {out: 8, k: 1}, from: conv}
  - {add: {}, from: [bn, skip]}
  - conv2: {conv: {out: 4, k: 3, pad: 1}}
  - bn2: bn
  - relu
""")
    graph = archdsl.load(spec)
    assert foldable_batchnorms(graph) == [("conv2", "bn2")]
    folded = fold_batchnorm(graph)
    assert "bn" in folded.nodes and "bn2" not in folded.nodes
    assert folded.nodes["conv2"].attrs.bias is True


def test_numbered_sequence_keeps_its_numbers(tmp_path):
    spec = _write(tmp_path, """\
name: numbered
input: [3, 16, 16]
network:
  - features: [{conv: {out: 8, k: 3, pad: 1}}, bn, relu, {conv: {out: 8, k: 3, pad: 1}}, bn, relu]
  - {adaptive_avgpool: {size: 1}}
  - flatten
  - fc: {linear: {out: 10}}
""")
    graph = archdsl.load(spec)
    folded = fold_batchnorm(graph)
    assert [n.name for n in folded if n.name.startswith("features.")] == [
        "features.0", "features.2", "features.3", "features.5"]


def test_a_layer_folds_in_every_use_or_in_none(tmp_path):
    """One generated class per block: a batch norm whose conv absorbs it in one use but not in
    another (there the block has no batch norm) stays, and the folded module still computes."""
    spec = _write(tmp_path, """\
name: someuses
input: [3, 16, 16]
blocks:
  cb:
    params: {out: int, norm: true}
    body:
      - conv: {conv: {out: out, k: 3, pad: 1, bias: false}}
      - {bn: bn, when: norm}
      - relu
  cbn:
    params: {out: int}
    body: [{conv: {out: out, k: 3, pad: 1, bias: false}}, bn]
network:
  - a: {cb: {out: 8}}
  - b: {cb: {out: 8, norm: false}}
  - c: {cbn: {out: 4}}
""")
    graph = archdsl.load(spec)
    assert foldable_batchnorms(graph) == [("a.conv", "a.bn"), ("c.conv", "c.bn")]
    folded = fold_batchnorm(graph)
    assert "a.bn" in folded.nodes and "c.bn" not in folded.nodes
    assert folded.nodes["c.conv"].attrs.bias is True and folded.nodes["a.conv"].attrs.bias is False
    _assert_folded_computes_the_same(graph, folded)


def test_a_graph_without_its_spec_folds_on_the_graph_alone():
    graph = archdsl.load(SPECS / "resnet18.yaml")
    graph.spec = None
    folded = fold_batchnorm(graph)
    assert not [n for n in folded if n.op == "bn"]
    # 4,800 batch-norm channels: 9,600 affine parameters go, 4,800 conv biases come
    assert archdsl.analyze(folded).params == 11_689_512 - 9_600 + 4_800


def test_compile_inference_writes_the_folded_module(tmp_path):
    from click.testing import CliRunner

    from archdsl.cli import cli

    out = tmp_path / "resnet18_folded.py"
    result = CliRunner().invoke(cli, ["compile", str(SPECS / "resnet18.yaml"), "--inference", "-o", str(out)])
    assert result.exit_code == 0, result.output
    source = out.read_text()
    assert "BatchNorm2d" not in source
    assert "20 batch norms folded into their convolutions" in source
    compile(source, str(out), "exec")


def test_batch_norms_of_a_block_written_per_use_stay(tmp_path):
    """The fold marks template items, and a block written per use (here its repeat count follows
    its parameter) has none: its batch norms stay, in every use, while a layer of the network's
    own template folds. The folded module still computes what the unfolded one does."""
    spec = _write(tmp_path, """\
name: peruse
input: [3, 8, 8]
blocks:
  stack:
    params: {n: int}
    body:
      - {repeat: n, layer: [{conv: {out: 4, k: 3, pad: 1, bias: false}}, bn, relu]}
network:
  - a: {stack: {n: 1}}
  - b: {stack: {n: 2}}
  - c: {conv: {out: 4, k: 1, bias: false}}
  - d: bn
""")
    graph = archdsl.load(spec)
    assert len(foldable_batchnorms(graph)) == 4  # the graph alone would fold all of them
    folded = fold_batchnorm(graph)
    assert graph.templates["stack"].per_use is not None
    assert sorted(n.name for n in folded if n.op == "bn") == ["a.bn", "b.bn", "b.bn_1"]
    assert "d" not in folded.nodes and folded.nodes["c"].attrs.bias is True
    network = folded.templates[""]
    assert network.items["d"].folded and network.items["c"].absorbs
    assert not graph.templates[""].items["d"].folded  # (the input graph's are left unmarked)
    _assert_folded_computes_the_same(graph, folded)


def test_fold_marks_the_items_of_the_layers_it_folds():
    """ResNet-18: every bn item of the basic block and of the network is `folded`, every conv
    item before one `absorbs`; nothing else is marked."""
    folded = fold_batchnorm(archdsl.load(SPECS / "resnet18.yaml"))
    for t in (folded.templates["basic"], folded.templates[""]):
        ops = [i for i in t.items.values() if i.kind == "op"]
        assert {i.name for i in ops if i.folded} == {i.name for i in ops if i.target == "bn"}
        assert {i.name for i in ops if i.absorbs} == {i.name for i in ops if i.target == "conv"}
    assert {"bn1", "bn2", "downsample.1"} <= {i.name for i in folded.templates["basic"].items.values()
                                              if i.folded}


def test_every_template_made_from_a_folded_graph_is_marked():
    """The folded graph records the folded layers' locations (`folded_locs`, `absorbing_locs`),
    and every template built from it, not only its own, marks its items by them: one use's
    (`bound_template`), other probes' (`probed_template`), the network's over constructor
    arguments (`network_template`); those of the unfolded graph stay unmarked. A graph folded
    again keeps them."""
    from archdsl.blocks.expander import bound_template, network_template, probed_template

    graph = archdsl.load(SPECS / "resnet18.yaml")
    folded = fold_batchnorm(graph)
    basic = folded.templates["basic"].items.values()
    assert folded.folded_locs == {i.loc for t in folded.templates.values()
                                  for i in t.items.values() if i.folded}
    assert {i.loc for i in basic if i.target == "bn"} <= folded.folded_locs
    assert {i.loc for i in basic if i.target == "conv"} <= folded.absorbing_locs
    assert not graph.folded_locs and not graph.absorbing_locs

    def marks(t):
        ops = [i for i in t.items.values() if i.kind == "op"]
        assert ops and any(i.target == "bn" for i in ops)
        return ({i.name for i in ops if i.folded} == {i.name for i in ops if i.target == "bn"}
                and {i.name for i in ops if i.absorbs} == {i.name for i in ops if i.target == "conv"})

    for g, marked in ((folded, True), (graph, False)):
        made = [bound_template(g, "basic", {**g.params, "out": 128, "stride": 2}, (64, 56, 56)),
                probed_template(g, "basic", {"out": 128, "stride": 2}, (64, 56, 56)),
                network_template(g, ("in_channels",))]
        assert [marks(t) for t in made] == [marked] * 3
        assert not any(i.folded or i.absorbs for t in made for i in t.items.values()) or marked
    again = fold_batchnorm(folded)
    assert again.folded_locs == folded.folded_locs and again.absorbing_locs == folded.absorbing_locs


def test_a_class_reads_the_fold_marks_from_its_items():
    """A class folds a batch norm, and gives its conv a bias, by the marks on the items its
    template's walk gives them (not by the layers' locations, by which the folded graph marks
    the templates made from it): ResNet-18's `basic` template with `bn1`'s `folded`
    and `conv1`'s `absorbs` taken off (the graph's location sets kept) gets its batch norm
    back and a conv without bias; a class the planner writes per use from a bound template
    reads marks too."""
    from dataclasses import replace

    from archdsl.codegen.emit import render_module
    from archdsl.codegen.plan import Planner

    folded = fold_batchnorm(archdsl.load(SPECS / "resnet18.yaml"))

    def basic_class(planner) -> str:
        source = render_module(folded, planner.plan())
        return source.split("class Basic(")[1].split("\nclass ")[0]

    plain = basic_class(Planner(folded))
    assert "self.bn1" not in plain and "self.bn2" not in plain and "bias=False" not in plain
    planner = Planner(folded)
    basic = planner.templates["basic"]
    items = dict(basic.items)
    for key, item in items.items():
        if item.name == "bn1":
            items[key] = replace(item, folded=False)
        if item.name == "conv1":
            items[key] = replace(item, absorbs=False)
    planner.templates = {**planner.templates, "basic": replace(basic, items=items)}
    assert folded.folded_locs and folded.absorbing_locs  # (the locations still say folded)
    edited = basic_class(planner)
    assert "self.bn1 = nn.BatchNorm2d" in edited and "self.bn2" not in edited
    conv1 = edited.split("self.conv1 = ")[1].split("self.")[0]
    assert "bias=False" in conv1
    bound = Planner(folded).bound("basic", {"out": 64, "stride": 1}, (64, 56, 56))
    ops = [i for i in bound.items.values() if i.kind == "op"]
    assert {i.name for i in ops if i.folded} == {i.name for i in ops if i.target == "bn"}
    assert {i.name for i in ops if i.absorbs} == {i.name for i in ops if i.target == "conv"}
