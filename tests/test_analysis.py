"""The static analysis (archdsl/analysis.py) on hand-made specs, with figures computed by hand.

Nothing here imports torch, so these tests run where torch is not installed
(tests/test_analysis_reference.py proves it, and compares the zoo with its reference models).
"""

from __future__ import annotations

import pytest

import archdsl
from archdsl.analysis import Analysis, NodeStats, ReceptiveField, ScopeStats, analyze
from tests.conftest import SPECS

# ResNet-18 written out in full (torchvision naming), so these tests do not depend on the zoo.
RESNET18 = """
    name: resnet18_local
    input: [3, 224, 224]
    params: {num_classes: 1000}
    blocks:
      basic:
        params: {out: int, stride: 1}
        body:
          residual:
            body:
              - conv1: {conv: {out: out, k: 3, stride: stride, pad: 1, bias: false}}
              - bn1: bn
              - relu: relu
              - conv2: {conv: {out: out, k: 3, pad: 1, bias: false}}
              - bn2: bn
            shortcut:
              downsample: [{conv: {out: out, k: 1, stride: stride, bias: false}}, bn]
              when: "stride != 1 or in.c != out"
            after: relu
    network:
      - conv1: {conv: {out: 64, k: 7, stride: 2, pad: 3, bias: false}}
      - bn1: bn
      - relu: relu
      - maxpool: {maxpool: {k: 3, stride: 2, pad: 1}}
      - layer1: {repeat: 2, block: basic, args: {out: 64}}
      - layer2: {repeat: 2, block: basic, args: {out: 128, stride: "2 if i == 0 else 1"}}
      - layer3: {repeat: 2, block: basic, args: {out: 256, stride: "2 if i == 0 else 1"}}
      - layer4: {repeat: 2, block: basic, args: {out: 512, stride: "2 if i == 0 else 1"}}
      - avgpool: {adaptive_avgpool: {size: 1}}
      - flatten
      - fc: {linear: {out: num_classes}}
"""


def analyse(write_spec, text: str, **kwargs) -> Analysis:
    batch = kwargs.pop("batch", 1)
    dtype = kwargs.pop("dtype", "float32")
    return analyze(archdsl.load(write_spec(text), **kwargs), batch=batch, dtype=dtype)


# --- counts by hand ----------------------------------------------------------------------------

def test_conv_params_macs_flops_by_hand(write_spec):
    a = analyse(write_spec, """
        name: one
        input: [3, 8, 8]
        network:
          - c: {conv: {out: 8, k: 3, pad: 1}}
          - g: {conv: {out: 8, k: 3, pad: 1, groups: 4, bias: false}}
          - flatten
          - fc: {linear: {out: 10}}
    """)
    conv = 8 * 3 * 3 * 3 + 8                      # weights + bias
    grouped = 8 * (8 // 4) * 3 * 3                 # groups divide the input channels
    fc = 512 * 10 + 10
    assert (a.nodes["c"].params, a.nodes["g"].params, a.nodes["fc"].params) == (conv, grouped, fc)
    assert a.params == conv + grouped + fc
    assert a.nodes["c"].macs == 8 * 8 * 8 * (3 * 3 * 3)   # output elements x weights per output
    assert a.nodes["g"].macs == 8 * 8 * 8 * (2 * 3 * 3)
    assert a.nodes["fc"].macs == 512 * 10               # bias excluded
    assert a.macs == 13824 + 9216 + 5120
    assert a.flops == 2 * a.macs
    assert isinstance(a.macs, int) and isinstance(a.params, int)
    assert a.depth == 3
    assert a.layer_counts == {"conv": 2, "flatten": 1, "linear": 1}


def test_batch_scales_compute_and_activations_not_params(write_spec):
    text = """
        name: one
        input: [3, 8, 8]
        network: [{conv: {out: 8, k: 3, pad: 1}}, bn, relu]
    """
    one = analyse(write_spec, text)
    four = analyse(write_spec, text, batch=4)
    assert four.params == one.params and four.buffers == one.buffers
    assert four.macs == 4 * one.macs and four.fvcore_flops == 4 * one.fvcore_flops
    assert four.memory.activations == 4 * one.memory.activations
    assert four.memory.peak == 4 * one.memory.peak
    assert four.memory.input == 4 * 3 * 8 * 8
    assert one.buffers == 2 * 8 + 1           # running mean, var, num_batches_tracked
    half = analyse(write_spec, text, dtype="float16")
    assert half.memory.bytes(half.memory.params) == 2 * one.params
    assert one.memory.bytes(one.memory.activations) == 4 * one.memory.activations


def test_frozen_layers_are_not_trainable(write_spec):
    a = analyse(write_spec, """
        name: frozen
        input: [3, 8, 8]
        network:
          - stem: {conv: {out: 4, k: 3}}
            freeze: true
          - head: {conv: {out: 2, k: 1}}
    """)
    assert a.params == (4 * 27 + 4) + (2 * 4 + 2)
    assert a.trainable_params == 2 * 4 + 2
    assert a.nodes["stem"].trainable_params == 0


def test_aux_head_params_counted_compute_not(write_spec):
    a = analyse(write_spec, """
        name: aux
        input: [3, 8, 8]
        network:
          - conv1: {conv: {out: 4, k: 3, pad: 1}}
          - head: [global_avgpool, flatten, {linear: {out: 2}}]
            output: aux
          - conv2: {conv: {out: 4, k: 3, pad: 1}}
    """)
    head = [s for s in a.nodes.values() if s.name.startswith("head")]
    assert head and not any(s.runs for s in head)
    assert a.params == (4 * 27 + 4) + (4 * 36 + 4) + (4 * 2 + 2)   # conv1, conv2, the head's fc
    assert a.macs == 8 * 8 * 4 * 27 + 8 * 8 * 4 * 36     # the head's 8 MACs are not run
    assert a.scopes["head"].macs == 4 * 2 and not a.scopes["head"].runs
    assert set(a.outputs) == {"out", "aux"}


# --- receptive field -----------------------------------------------------------------------------

def _rf(write_spec, layers: str, input_shape: str = "[3, 32, 32]") -> ReceptiveField:
    a = analyse(write_spec, f"""
        name: rf
        input: {input_shape}
        network: {layers}
    """)
    return a.receptive_field


def test_two_stacked_3x3_see_5x5_like_one_5x5(write_spec):
    two = _rf(write_spec, "[{conv: {out: 4, k: 3}}, {conv: {out: 4, k: 3}}]")
    one = _rf(write_spec, "[{conv: {out: 4, k: 5}}]")
    assert two.size == one.size == (5, 5)
    assert two.jump == one.jump == (1, 1)
    assert two.start == one.start == (2.0, 2.0)   # unpadded: the first window is centred on pixel 2
    assert not two.global_


def test_receptive_field_stride_dilation_padding(write_spec):
    # 3x3 / 2 (pad 1): size 3, jump 2, start 0; then 3x3: size 3 + 2 * 2 = 7, jump 2.
    rf = _rf(write_spec, "[{conv: {out: 4, k: 3, stride: 2, pad: 1}}, {conv: {out: 4, k: 3}}]")
    assert rf.size == (7, 7) and rf.jump == (2, 2) and rf.start == (2.0, 2.0)
    assert _rf(write_spec, "[{conv: {out: 4, k: 3, dilation: 2}}]").size == (5, 5)
    assert _rf(write_spec, "[{conv: {out: 4, k: [1, 7], pad: [0, 3]}}]").size == (1, 7)
    pooled = _rf(write_spec, "[{maxpool: {k: 2}}, {conv: {out: 4, k: 3}}]")
    assert pooled.size == (6, 6) and pooled.jump == (2, 2) and pooled.start == (2.5, 2.5)


def test_receptive_field_takes_the_widest_input_and_global_ops(write_spec):
    rf = _rf(write_spec, """
        - parallel: [{conv: {out: 4, k: 1}}, {conv: {out: 4, k: 5, pad: 2}}]
        - {conv: {out: 4, k: 3, pad: 1}}
    """)
    assert rf.size == (7, 7)
    glob = _rf(write_spec, "[{conv: {out: 4, k: 3}}, global_avgpool, flatten, {linear: {out: 2}}]")
    assert glob.global_ and glob.size == (3, 3)
    assert _rf(write_spec, "[{linear: {out: 2}}]", "[16]") is None   # not an image


def test_resnet18_receptive_field_and_depth(write_spec):
    a = analyse(write_spec, RESNET18)
    assert a.depth == 18
    assert a.receptive_field.size == (435, 435) and a.receptive_field.jump == (32, 32)
    assert a.receptive_field.global_
    assert a.scopes["layer1.0"].depth == 2


@pytest.mark.parametrize("name, depth", [("resnet18", 18), ("resnet34", 34), ("resnet50", 50),
                                         ("resnet101", 101), ("resnet152", 152), ("vgg16", 16),
                                         ("googlenet", 22), ("densenet121", 121)])
def test_zoo_depth_follows_the_papers(name, depth):
    path = SPECS / f"{name}.yaml"
    assert path.exists(), f"{path} is missing from the zoo"
    assert analyze(archdsl.load(path)).depth == depth


# --- memory --------------------------------------------------------------------------------------

def test_peak_memory_of_a_residual_block_by_hand(write_spec):
    a = analyse(write_spec, """
        name: res
        input: [4, 8, 8]
        network:
          - residual:
              body: [c1: {conv: {out: 8, k: 3, pad: 1}}, r1: relu, c2: {conv: {out: 4, k: 3, pad: 1}}]
              after: relu
    """)
    # Elements: input 256, c1 512, r1 512, c2 256, add 256, relu 256. In topological order:
    #   input         live 256
    #   c1  +512  ->  768              (input stays: the skip connection reads it at add)
    #   r1  +512  -> 1280  <- peak     then c1 is freed -> 768
    #   c2  +256  -> 1024              then r1 is freed -> 512
    #   add +256  ->  768              then c2 and the input are freed -> 256
    #   relu +256 ->  512              then add is freed -> 256 (relu is the output, kept)
    assert (a.memory.peak, a.memory.peak_at) == (1280, "r1")
    assert a.memory.activations == 512 + 512 + 256 + 256 + 256
    assert a.memory.input == 256
    assert a.nodes["c1"].output_bytes == 512 * 4


# --- scopes, stages, blocks --------------------------------------------------------------------

def test_scopes_stages_and_blocks_add_up(write_spec):
    a = analyse(write_spec, RESNET18)
    assert [s.local_name for s in a.stages] == ["conv1", "bn1", "relu", "maxpool", "layer1",
                                                 "layer2", "layer3", "layer4", "avgpool",
                                                 "flatten", "fc"]
    assert sum(s.params for s in a.stages) == a.params
    assert sum(s.macs for s in a.stages) == a.macs
    assert isinstance(a.stat("layer2"), ScopeStats) and isinstance(a.stat("fc"), NodeStats)
    blocks = a.blocks
    assert [b.path for b in blocks][:2] == ["layer1.0", "layer1.1"] and len(blocks) == 8
    assert all(b.block == "basic" for b in blocks)
    assert sum(b.params for b in blocks) == sum(a.scopes[f"layer{i}"].params for i in (1, 2, 3, 4))
    conv = a.nodes["layer2.0.conv1"]
    assert (conv.block, conv.block_path, conv.stage) == ("basic", "layer2.0", "layer2")
    # anonymous scopes (the residual) are inlined in the visible tree
    assert "layer2.0.downsample" in a.children("layer2.0")
    assert "layer2.0.conv1" in a.children("layer2.0")


def test_analyze_is_public_and_pure(write_spec):
    graph = archdsl.load(write_spec(RESNET18))
    before = {n.name: dict(n.meta) for n in graph}
    a = archdsl.analyze(graph)
    assert a.params == 11_689_512            # torchvision's resnet18 meta num_params
    assert {n.name: dict(n.meta) for n in graph} == before
    with pytest.raises(ValueError, match="batch"):
        analyze(graph, batch=0)
    with pytest.raises(ValueError, match="dtype"):
        analyze(graph, dtype="float12")
