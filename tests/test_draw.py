"""Diagrams (archdsl.draw): the view (what is one box, what opens, what folds), the DOT text, the
rendered SVG/PNG/PDF, and the `draw` command.

Structural tests use small specs written here, so they do not move when the zoo changes; one
parametrised test draws every zoo spec at its default depth and fully expanded.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

import archdsl
from archdsl import draw as dr
from archdsl.analysis import analyze
from archdsl.cli import cli, main
from archdsl.errors import UsageError
from tests.conftest import ROOT, zoo_specs

SVG = "{http://www.w3.org/2000/svg}"

# A ResNet-152-like network: stages of 3, 8, 36 and 3 bottlenecks, the first of each stage
# changing the shape (the stride sits on the 3x3 conv, torchvision's v1.5).
RESNET_LIKE = """
name: resnet_like
input: [3, 64, 64]
blocks:
  bottleneck:
    params: {planes: int, stride: 1}
    let: {out: "planes * 4"}
    body:
      residual:
        body:
          - conv1: {conv: {out: planes, k: 1, bias: false}}
          - bn1: bn
          - relu: relu
          - conv2: {conv: {out: planes, k: 3, stride: stride, pad: 1, bias: false}}
          - bn2: bn
          - relu
          - conv3: {conv: {out: out, k: 1, bias: false}}
          - bn3: bn
        shortcut:
          downsample: [{conv: {out: out, k: 1, stride: stride, bias: false}}, bn]
          when: "stride != 1 or in.c != out"
        after: relu
network:
  - conv1: {conv: {out: 16, k: 7, stride: 2, pad: 3, bias: false}}
  - bn1: bn
  - relu: relu
  - maxpool: {maxpool: {k: 3, stride: 2, pad: 1}}
  - layer1: {repeat: 3, block: bottleneck, args: {planes: 16}}
  - layer2: {repeat: 8, block: bottleneck, args: {planes: 32, stride: "2 if i == 0 else 1"}}
  - layer3: {repeat: 36, block: bottleneck, args: {planes: 64, stride: "2 if i == 0 else 1"}}
  - layer4: {repeat: 3, block: bottleneck, args: {planes: 128, stride: "2 if i == 0 else 1"}}
  - avgpool: {adaptive_avgpool: {size: 1}}
  - flatten
  - fc: {linear: {out: 10}}
"""

# A DenseNet-like network: pre-activation dense layers (BN-ReLU-1x1, BN-ReLU-3x3), a transition.
DENSE_LIKE = """
name: dense_like
input: [3, 32, 32]
blocks:
  dense_layer:
    params: {growth: int}
    body:
      - norm1: bn
      - relu1: relu
      - conv1: {conv: {out: "4 * growth", k: 1, bias: false}}
      - norm2: bn
      - relu2: relu
      - conv2: {conv: {out: growth, k: 3, pad: 1, bias: false}}
  transition:
    body:
      - norm: bn
      - relu: relu
      - conv: {conv: {out: "in.c // 2", k: 1, bias: false}}
      - pool: {avgpool: {k: 2, stride: 2}}
network:
  - features:
      - conv0: {conv: {out: 16, k: 3, pad: 1, bias: false}}
      - denseblock1: {dense: 6, block: dense_layer, args: {growth: 8}, name: "denselayer{i+1}"}
      - transition1: transition
      - denseblock2: {dense: 4, block: dense_layer, args: {growth: 8}, name: "denselayer{i+1}"}
  - {global_avgpool: {}}
  - flatten
  - classifier: {linear: {out: 10}}
"""

# GoogLeNet's Inception 3a on its own, with torchvision's branch names.
INCEPTION_LIKE = """
name: inception_like
input: [192, 28, 28]
blocks:
  basic_conv:
    params: {out: int, k: 1, pad: 0}
    body:
      - conv: {conv: {out: out, k: k, pad: pad, bias: false}}
      - bn: bn
      - relu
  inception:
    params: {c1: int, c2r: int, c2: int, c3r: int, c3: int, c4: int}
    body:
      parallel:
        - branch1: {basic_conv: {out: c1}}
        - branch2: [{basic_conv: {out: c2r}}, {basic_conv: {out: c2, k: 3, pad: 1}}]
        - branch3: [{basic_conv: {out: c3r}}, {basic_conv: {out: c3, k: 3, pad: 1}}]
        - branch4: [{maxpool: {k: 3, stride: 1, pad: 1}}, {basic_conv: {out: c4}}]
      merge: concat
network:
  - inception3a: {inception: {c1: 64, c2r: 96, c2: 128, c3r: 16, c3: 32, c4: 32}}
"""


@pytest.fixture
def load_spec(write_spec):
    def load(text: str, **kwargs):
        return archdsl.load(write_spec(text), **kwargs)

    return load


def by_label(view: dr.View) -> dict[str, dr.Box]:
    return {box.label: box for box in view.boxes()}


def svg_nodes(svg: str) -> dict[str, str]:
    """SVG node id -> the text of its label (its <text> pieces, whitespace normalised)."""
    root = ET.fromstring(svg)
    out = {}
    for group in root.iter(f"{SVG}g"):
        if group.get("class") == "node":
            texts = " ".join(t.text or "" for t in group.iter(f"{SVG}text"))
            out[group.get("id")] = re.sub(r"\s+", " ", texts).strip()
    return out


def check_svg(view: dr.View, svg: str) -> None:
    """Every box is one SVG node showing its label; the legend is the one extra node."""
    nodes = svg_nodes(svg)
    assert len(nodes) == len(view.boxes()) + view.options.legend
    for box in view.boxes():
        text = nodes[f"{view.name}-{box.id}"]
        assert box.title in text and box.text in text, (box.label, text)
        assert box.count == 1 or f"\u00d7 {box.count}" in text


# --- chains --------------------------------------------------------------------------------------

def test_chains_fold_post_and_pre_activation(load_spec):
    graph = load_spec(DENSE_LIKE)
    layer = [n for n in graph.op_nodes() if n.scope == "features.denseblock1.denselayer1"]
    groups = dr.chain_groups(layer)
    assert [[n.op for n in g] for g in groups] == [["bn", "relu", "conv"], ["bn", "relu", "conv"]]
    resnet = load_spec(RESNET_LIKE)
    body = [n for n in resnet.op_nodes() if n.name.startswith("layer1.1.")][:8]
    assert [[n.op for n in g] for g in dr.chain_groups(body)] == [
        ["conv", "bn", "relu"], ["conv", "bn", "relu"], ["conv", "bn"]]


def test_stem_chain_is_one_box_and_pools_stand_alone(load_spec):
    view = dr.build_view(load_spec(RESNET_LIKE))
    labels = by_label(view)
    assert "7x7 conv 16, /2 \u00b7 BN \u00b7 ReLU" in labels
    assert labels["7x7 conv 16, /2 \u00b7 BN \u00b7 ReLU"].nodes == ("conv1", "bn1", "relu")
    assert "3x3 maxpool, /2" in labels


# --- depth, folding and labels ---------------------------------------------------------------------

def test_resnet_like_default_depth_folds_repeats(load_spec):
    view = dr.build_view(load_spec(RESNET_LIKE))
    folds = [b for b in view.boxes() if b.count > 1]
    assert [b.count for b in folds] == [2, 7, 35, 2]
    labels = by_label(view)
    assert "Bottleneck 256 \u00d7 35" in labels
    assert "Bottleneck 128 \u2192 256, /2" in labels
    assert labels["Bottleneck 256 \u00d7 35"].kind == "fold"
    assert len(labels["Bottleneck 256 \u00d7 35"].nodes) == 35 * 10  # every instance is in the box
    assert [c.title for c in view.clusters()] == ["layer1", "layer2", "layer3", "layer4"]
    assert len(view.boxes()) == 15  # fits on a screen
    assert len(view.edges) == 14  # a single path: input ... output


def test_depth_0_shows_stages(load_spec):
    view = dr.build_view(load_spec(RESNET_LIKE), depth=0)
    labels = by_label(view)
    assert "Layer 3: 36 \u00d7 Bottleneck, 128 \u2192 256, /2" in labels
    assert "Layer 1: 3 \u00d7 Bottleneck, 16 \u2192 64" in labels
    assert not view.clusters()


def test_depth_2_opens_blocks_into_layers(load_spec):
    view = dr.build_view(load_spec(RESNET_LIKE), depth=2)
    labels = [b.label for b in view.boxes()]
    assert "1x1 conv 64 \u00b7 BN \u00b7 ReLU" in labels
    assert "3x3 conv 64, /2 \u00b7 BN \u00b7 ReLU" in labels
    assert "1x1 conv 256, /2 \u00b7 BN" in labels  # the downsample shortcut
    folded = [c for c in view.clusters() if c.count > 1]
    assert [c.count for c in folded] == [2, 7, 35, 2]
    assert folded[2].title == "layer3.1 \u2026 layer3.35"
    adds = [b for b in view.boxes() if b.symbol]
    assert len(adds) == 8 and all(b.text == "+" for b in adds)
    # shortcuts are drawn beside the spine: one skip edge into every +, one into each downsample
    skips = [e for e in view.edges if e.skip]
    assert sum(view.box(e.dst).symbol for e in skips) == 8
    assert sum("downsample" in view.box(e.dst).path for e in skips) == 4
    assert len(skips) == 12
    downsample = [b.id for b in view.boxes() if "downsample" in b.path]
    assert "maxpool" in view.spine and not set(downsample) & view.spine


def test_no_fold_shows_every_block_and_layer(load_spec):
    graph = load_spec(RESNET_LIKE)
    view = dr.build_view(graph, depth=1, fold=False)
    assert sum(b.kind == "block" for b in view.boxes()) == 3 + 8 + 36 + 3
    full = dr.build_view(graph, depth=None, fold=False)
    assert len(full.boxes()) == len(graph) + 1  # every op, the input, the output
    assert not any(b.count > 1 for b in full.boxes())


def test_expand_opens_chosen_blocks(load_spec):
    graph = load_spec(RESNET_LIKE)
    view = dr.build_view(graph, depth=1, expand=("layer3.0",))
    assert [c.title for c in view.clusters()] == ["layer1", "layer2", "layer3", "layer3.0", "layer4"]
    view = dr.build_view(graph, depth=0, expand=("layer2",))
    assert [c.title for c in view.clusters()] == ["layer2"]
    by_block = dr.build_view(graph, depth=1, expand=("bottleneck",))
    assert len(by_block.clusters()) == 4 + 8  # each stage, its first block and its folded rest
    glob = dr.build_view(graph, depth=0, expand=("layer[12]",))
    assert [c.title for c in glob.clusters()] == ["layer1", "layer2"]
    # an expanded instance breaks its fold: 1..4 fold, 5 opens, 6..35 fold
    broken = dr.build_view(graph, expand=("layer3.5",))
    assert [b.count for b in broken.boxes() if b.count > 1] == [2, 7, 4, 30, 2]


def test_expand_unknown_name_suggests(load_spec):
    graph = load_spec(RESNET_LIKE)
    with pytest.raises(UsageError, match="--expand layer9") as info:
        dr.build_view(graph, expand=("layer9",))
    assert "did you mean" in info.value.render()


def test_expand_a_chain_node_unfolds_it(load_spec):
    view = dr.build_view(load_spec(RESNET_LIKE), expand=("bn1",))
    labels = [b.label for b in view.boxes()]
    assert "7x7 conv 16, /2" in labels and "BN" in labels and "ReLU" in labels


def test_inception_label_and_branch_order(load_spec):
    graph = load_spec(INCEPTION_LIKE)
    view = dr.build_view(graph)
    assert "Inception 3a: 64 | 96\u2192128 | 16\u219232 | pool\u219232 = 256" in by_label(view)
    opened = dr.build_view(graph, depth=2)
    labels = [b.label for b in opened.boxes()]
    assert "concat 64 + 128 + 32 + 32 = 256" in labels
    assert "1x1 conv 96 \u00b7 BN \u00b7 ReLU" in labels
    heads = opened.same_rank[0]
    assert [opened.box(b).path for b in heads] == [
        "inception3a.branch1", "inception3a.branch2.0", "inception3a.branch3.0", "inception3a.branch4.0"]


def test_inception_branches_left_to_right_in_the_svg(load_spec):
    graph = load_spec(INCEPTION_LIKE)
    svg = dr.render_svg(graph, depth=2, id_prefix="")
    root = ET.fromstring(svg)
    xs = {}
    for group in root.iter(f"{SVG}g"):
        texts = list(group.iter(f"{SVG}text"))
        if group.get("class") == "node" and texts:
            xs[group.get("id")] = float(texts[0].get("x"))
    order = ["inception3a_branch1", "inception3a_branch2_0", "inception3a_branch3_0",
             "inception3a_branch4_0"]
    assert [xs[i] for i in order] == sorted(xs[i] for i in order)


def test_dense_block_collapsed_label(load_spec):
    view = dr.build_view(load_spec(DENSE_LIKE))
    labels = by_label(view)
    assert "Dense block 1: 6 \u00d7 [BN-ReLU-1x1 32, BN-ReLU-3x3 8], 16 \u2192 64" in labels
    assert "Transition 1 64 \u2192 32, /2" in labels


def test_expanded_dense_block_is_a_running_concatenation(load_spec):
    graph = load_spec(DENSE_LIKE)
    view = dr.build_view(graph, expand=("denseblock1",))
    concats = [b for b in view.boxes() if b.text.startswith("concat")]
    assert [b.text for b in concats] == [f"concat {16 + 8 * k} + 8 = {24 + 8 * k}" for k in range(6)]
    into = {b.id: [e for e in view.edges if e.dst == b.id] for b in concats}
    assert all(len(edges) == 2 for edges in into.values())  # previous concat + newest layer
    graph_edges = sum(len(graph.nodes[n].inputs) for b in concats for n in b.nodes)
    assert graph_edges == sum(range(2, 8))  # the IR itself is all-to-all


# --- options ---------------------------------------------------------------------------------------

def test_dot_is_deterministic(load_spec):
    graph = load_spec(RESNET_LIKE)
    first = dr.draw_graph(graph, depth=2, costs=True)
    assert first == dr.draw_graph(graph, depth=2, costs=True)
    again = load_spec(RESNET_LIKE)
    assert first == dr.draw_graph(again, depth=2, costs=True)


def test_dot_is_stable_across_hash_seeds(write_spec, tmp_path):
    spec = write_spec(DENSE_LIKE)
    outputs = []
    for seed in ("0", "1", "4242"):
        out = tmp_path / f"seed{seed}.dot"
        env = dict(os.environ, PYTHONHASHSEED=seed)
        subprocess.run([sys.executable, "-m", "archdsl", "draw", str(spec), "-o", str(out),
                        "--depth", "2"], check=True, env=env, cwd=ROOT, capture_output=True)
        outputs.append(out.read_text(encoding="utf-8"))
    assert outputs[0] == outputs[1] == outputs[2]
    assert outputs[0].startswith("digraph dense_like {")


def test_rankdir_shapes_and_costs_in_the_dot(load_spec):
    graph = load_spec(RESNET_LIKE)
    assert "rankdir=LR" in dr.draw_graph(graph, rankdir="lr")
    edge = dr.draw_graph(graph, shapes="edge")
    assert 'label=" 256\u00d74\u00d74"' in edge  # on the edge where the shape changes
    out = dr.draw_graph(graph, shapes="out")
    assert "256\u00d74\u00d74</FONT>" in out and "label=\" " not in out
    none = dr.draw_graph(graph, shapes="none")
    assert "\u00d74\u00d74" not in none
    costs = dr.draw_graph(graph, costs=True)
    view = dr.build_view(graph)
    params, macs = view.totals
    assert f"{dr.fmt_count(params)} params, {dr.fmt_count(macs)} MACs" in costs
    assert params == sum(p for p, _ in view.costs.values())  # every op is in exactly one box
    with pytest.raises(UsageError, match="--rankdir"):
        dr.DrawOptions(rankdir="up")
    with pytest.raises(UsageError, match="--shapes"):
        dr.DrawOptions(shapes="all")
    with pytest.raises(UsageError, match="--layout"):
        dr.DrawOptions(layout="quick")
    fast = dr.draw_graph(graph, layout="fast")
    assert all(f"{k}={v}" in fast for k, v in dr.FAST_LAYOUT.items())
    assert "nslimit" not in dr.draw_graph(graph)


def test_costs_are_the_reports_figures(tmp_path, capsys):
    """`draw --costs` prints what `archdsl report` says (issue 11: draw recomputed its own totals
    and counted GoogLeNet's auxiliary heads, 1,506,748,416 MACs against report's 1,498,376,192)."""
    spec = str(ZOO["googlenet"])
    assert main(["report", spec, "--set", "aux_logits=true", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    dot = tmp_path / "g.dot"
    assert main(["draw", spec, "--set", "aux_logits=true", "--costs", "-o", str(dot)]) == 0
    title = f"{dr.fmt_count(report['params'])} params, {dr.fmt_count(report['macs'])} MACs"
    assert title in dot.read_text(encoding="utf-8")

    graph = archdsl.load(spec, aux_logits=True)
    a = analyze(graph)
    aux = [s for s in a.nodes.values() if not s.runs]
    assert sum(s.macs for s in aux) > 0  # the heads have MACs of their own, outside the total
    layers = {layer["path"]: layer for layer in report["layers"]}
    blocks = {block["path"]: block for block in report["blocks"]}
    for options in ({"depth": 1}, {"depth": 2, "fold": False}):  # collapsed blocks; open layers
        view = dr.build_view(graph, costs=True, **options)
        assert view.totals == (report["params"], report["macs"])
        for box in view.boxes():
            if box.kind == "io":
                continue
            expected = (sum(layers[n]["params"] for n in box.nodes),
                        sum(layers[n]["macs"] for n in box.nodes))
            assert view.costs[box.id] == expected, box.label
            if box.kind == "block" and box.path in blocks:  # a collapsed block: report's block row
                assert expected == (blocks[box.path]["params"], blocks[box.path]["macs"])
        assert sum(p for p, _ in view.costs.values()) == report["params"]  # every layer once
    assert view.totals == dr.build_view(a).totals  # an analysis is drawn as it is


def test_folded_boxes_carry_every_instance(load_spec):
    """A fold `x N` stands for N blocks: its figures are the sum of the N blocks in the analysis."""
    graph = load_spec(RESNET_LIKE)
    a = analyze(graph)
    view = dr.build_view(a)
    folds = [b for b in view.boxes() if b.count > 1]
    assert [b.count for b in folds] == [2, 7, 35, 2]
    for box in folds:
        scopes = [s for s in a.scopes.values() if s.kind == "block"
                  and {n.name for n in graph.scope_nodes(s.path)} <= set(box.nodes)]
        assert len(scopes) == box.count
        assert view.costs[box.id] == (sum(s.params for s in scopes), sum(s.macs for s in scopes))


def test_draw_and_report_test_no_op_names():
    """How an op is drawn is the op's (Op.style, label, compact_label): neither module names an op
    or compares a node's op (issue 11's rule: one op, one place)."""
    from archdsl import report
    from archdsl.ops import REGISTRY

    for module in (dr, report):
        tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
        strings = {n.value for n in ast.walk(tree)
                   if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        assert strings & set(REGISTRY) == set(), module.__name__
        compared = [ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.Compare)
                    and any(isinstance(x, ast.Attribute) and x.attr in ("op", "category")
                            for x in (n.left, *n.comparators))]
        assert compared == [], module.__name__


def test_one_colour_per_legend_entry():
    """Every op says how it is drawn; ops that share a legend entry share its colours, and no two
    entries look alike."""
    from archdsl.ops import REGISTRY, Style

    unstyled = sorted(name for name, op in REGISTRY.items() if op.style == Style())
    assert unstyled == [], "give these ops a `style` (archdsl/ops/base.py Style), e.g. their family's"

    colours: dict[str, set[tuple[str, str]]] = {}
    for op in REGISTRY.values():
        colours.setdefault(op.style.legend, set()).add((op.style.fill, op.style.border))
    colours.setdefault(dr.BLOCK_STYLE.legend, set()).add((dr.BLOCK_STYLE.fill, dr.BLOCK_STYLE.border))
    assert all(len(pairs) == 1 for pairs in colours.values()), colours
    assert len({next(iter(pairs)) for pairs in colours.values()}) == len(colours)


def test_fmt_count():
    assert [dr.fmt_count(n) for n in (999, 1_500, 11_689_512, 1_814_083_944, 138_357_544)] == \
        ["999", "1.5K", "11.7M", "1.81G", "138M"]


# --- rendering ---------------------------------------------------------------------------------------

def test_svg_parses_and_has_the_expected_nodes(load_spec):
    graph = load_spec(RESNET_LIKE)
    view = dr.build_view(graph)
    svg = dr.render_bytes(dr.to_dot(view), "svg").decode()
    check_svg(view, svg)
    nodes = svg_nodes(svg)
    assert sum("\u00d7 35" in t for t in nodes.values()) == 1
    assert nodes["resnet_like-layer3_1"] == "Bottleneck 256 \u00d7 35"
    assert nodes["resnet_like-layer3_0"] == "Bottleneck 128 \u2192 256, /2"
    inline = dr.render_svg(graph, inline=True)
    assert inline.startswith("<svg")


@pytest.mark.parametrize("ext, magic", [(".svg", b"<?xml"), (".png", b"\x89PNG"), (".pdf", b"%PDF"),
                                        (".dot", b"digraph")])
def test_formats_follow_the_extension(load_spec, tmp_path, ext, magic):
    path = tmp_path / f"diagram{ext}"
    dr.render(load_spec(INCEPTION_LIKE), path, depth=2)
    assert path.read_bytes().startswith(magic)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files


def test_unknown_extension_is_a_usage_error(load_spec, tmp_path):
    with pytest.raises(UsageError, match="unknown diagram format"):
        dr.render(load_spec(INCEPTION_LIKE), tmp_path / "x.jpeg")


def test_missing_dot_says_how_to_install_it(load_spec, tmp_path, monkeypatch):
    graph = load_spec(INCEPTION_LIKE)
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` here
    with pytest.raises(dr.GraphvizMissing) as info:
        dr.render(graph, tmp_path / "x.svg")
    text = info.value.render()
    assert "apt-get install graphviz" in text and "brew install graphviz" in text and "conda" in text
    assert not (tmp_path / "x.svg").exists()
    dr.render(graph, tmp_path / "x.dot")  # DOT source still works
    assert (tmp_path / "x.dot").read_text(encoding="utf-8").startswith("digraph")


# --- the command line --------------------------------------------------------------------------------

def test_cli_draw(write_spec, tmp_path):
    spec = write_spec(RESNET_LIKE)
    out = tmp_path / "r.svg"
    result = CliRunner().invoke(cli, ["draw", str(spec), "-o", str(out), "--depth", "2",
                                      "--expand", "layer1.0,layer2.0", "--rankdir", "LR",
                                      "--shapes", "out", "--costs"])
    assert result.exit_code == 0, result.output
    svg = out.read_text(encoding="utf-8")
    assert "params" in svg and "\u00d7 35" in svg
    ET.fromstring(svg)
    result = CliRunner().invoke(cli, ["draw", str(spec), "-o", str(tmp_path / "r.png"),
                                      "--depth", "all", "--no-fold", "--set", "dummy=1"])
    assert result.exit_code == 2 and "no parameter `dummy`" in result.output
    result = CliRunner().invoke(cli, ["draw", str(spec), "-o", str(tmp_path / "r.png"),
                                      "--depth", "all", "--no-fold", "--input", "3x32x32"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r.png").read_bytes().startswith(b"\x89PNG")


def test_cli_errors_and_exit_codes(write_spec, tmp_path, capsys, monkeypatch):
    spec = write_spec(RESNET_LIKE)
    result = CliRunner().invoke(cli, ["draw", str(spec), "-o", str(tmp_path / "x.svg"), "--depth", "-1"])
    assert result.exit_code == 2 and "--depth" in result.output
    assert main(["draw", str(spec), "-o", str(tmp_path / "x.gif")]) == 2
    assert "unknown diagram format" in capsys.readouterr().err
    assert main(["draw", str(spec), "-o", str(tmp_path / "x.svg"), "--expand", "nothing"]) == 2
    assert "--expand nothing" in capsys.readouterr().err
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["draw", str(spec), "-o", str(tmp_path / "x.svg")]) == 1
    assert "apt-get install graphviz" in capsys.readouterr().err
    assert main(["draw", str(spec), "-o", str(tmp_path / "x.dot")]) == 0


def test_cli_missing_dot_in_a_subprocess(write_spec, tmp_path):
    spec = write_spec(INCEPTION_LIKE)
    env = dict(os.environ, PATH=str(tmp_path))
    run = subprocess.run([sys.executable, "-m", "archdsl", "draw", str(spec), "-o",
                          str(tmp_path / "x.png")], env=env, cwd=ROOT, capture_output=True, text=True,
                         check=False)
    assert run.returncode == 1 and "brew install graphviz" in run.stderr
    assert "Traceback" not in run.stderr


# --- the zoo -------------------------------------------------------------------------------------------

ZOO = {path.stem: path for path in zoo_specs()}


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_draws_at_default_depth_and_fully_expanded(name, tmp_path):
    graph = archdsl.load(ZOO[name])
    for options in ({}, {"depth": None, "fold": False}):
        view = dr.build_view(graph, **options)
        check_svg(view, dr.render_bytes(dr.to_dot(view), "svg").decode())
        drawn = [n for box in view.boxes() if box.kind != "io" for n in box.nodes]
        assert len(drawn) == len(set(drawn)), "a node is drawn twice"
        assert len(drawn) == len(graph) - 1  # every op is in exactly one box
        png = tmp_path / f"{name}.png"
        dr.render(graph, png, **options)
        assert png.read_bytes().startswith(b"\x89PNG")
    default = dr.build_view(graph)
    assert len(default.boxes()) <= 30, "the default diagram should fit on one screen"


def test_zoo_labels():
    assert {"googlenet", "densenet201", "resnet152"} <= set(ZOO)
    googlenet = by_label(dr.build_view(archdsl.load(ZOO["googlenet"])))
    assert "Inception 3a: 64 | 96\u2192128 | 16\u219232 | pool\u219232 = 256" in googlenet
    densenet = by_label(dr.build_view(archdsl.load(ZOO["densenet201"])))
    assert "Dense block 3: 48 \u00d7 [BN-ReLU-1x1 128, BN-ReLU-3x3 32], 256 \u2192 1792" in densenet
    resnet = dr.build_view(archdsl.load(ZOO["resnet152"]))
    assert [b.count for b in resnet.boxes() if b.count > 1] == [2, 7, 35, 2]
    assert "Bottleneck 256 \u2192 512, /2" in by_label(resnet)


def test_a_regularizers_rate_does_not_stop_a_fold(load_spec):
    """Blocks that differ only in a dropout or stochastic-depth rate fold into one box (as
    EfficientNet's do); blocks whose conv differs do not."""
    graph = load_spec("""
        name: rates
        input: [8, 16, 16]
        blocks:
          unit:
            params: {p: 0.0, k: 3}
            body:
              - residual:
                  body:
                    - {conv: {out: 8, k: k, pad: "k // 2"}}
                    - relu
                    - {dropout: {p: p}}
                    - {stochastic_depth: {p: p}}
        network:
          - same: {repeat: 4, block: unit, args: {p: "0.1 * i"}}
          - differ: {repeat: 2, block: unit, args: {k: "1 + 2 * i"}}
    """)
    view = dr.build_view(graph)
    assert [b.count for b in view.boxes() if b.count > 1] == [4]
    assert len([b for b in view.boxes() if b.path.startswith("differ")]) == 2


# --- blocks with several inputs -------------------------------------------------------------------

SEVERAL_INPUTS = ROOT / "tests" / "corpus" / "compiles" / "several_inputs.yaml"


def test_a_block_with_several_inputs_has_an_edge_from_each():
    """Collapsed or open, a use of a block with several inputs is entered by one edge per input;
    two identical uses in a row are not folded (the second's other input would be hidden)."""
    graph = archdsl.load(SEVERAL_INPUTS)
    assert graph.scopes["q"].meta["inputs"] == ["p.f2.conv", "input"]
    view = dr.build_view(graph)
    assert {(e.src, e.dst) for e in view.edges} == {
        ("input", "p"), ("p", "q"), ("input", "q"), ("q", "output_out")}
    opened = dr.build_view(graph, depth=2)
    into = {box.path: sorted(e.src for e in opened.edges if e.dst == box.id) for box in opened.boxes()}
    assert into["p.f1"] == ["p_left", "p_right"] and into["p.f2"] == ["p_f1", "p_right"]
    assert not any(box.count > 1 for box in opened.boxes())
    assert "\tp_right -> p_f2 [" in dr.to_dot(opened)
