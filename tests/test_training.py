"""Training memory (archdsl/analysis.py ``TrainingMemory`` and each op's ``saved_for_backward``)
against what autograd really keeps: ``torch.autograd.graph.saved_tensors_hooks`` on the built
module (:func:`archdsl.runner.measure_saved_bytes`), every storage once, weights excluded.

The predicted figure is exact at any input size, so each zoo model is measured at the smallest
square input it accepts (its layers' own limits), at batch 2 and 3 (at the smallest input a batch
norm may see a 1 x 1 map, which training needs two samples for), and must agree to the byte.
The table at the spec's own input, batch 1 and 32, is bench/training_memory.py's.
"""

from __future__ import annotations

import pytest

import archdsl
from archdsl.analysis import OPTIMIZERS, analyze
from archdsl.errors import SpecError
from archdsl.ops import REGISTRY, Op
from tests.conftest import zoo_specs

torch = pytest.importorskip("torch")

from archdsl.runner import measure_saved_bytes, zeroed_model

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

SIDES = (16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 299)

BATCHES = (2, 3)

# inception_v3's auxiliary head needs 299 x 299: the two batches run without it (at 75 x 75), and
# test_auxiliary_head_saved_bytes_match_autograd measures it once, at batch 2.
OVERRIDES = {"inception_v3": {"aux_logits": False}}

# The larger sizes of the newer families are made of the same blocks (specs/lib/efficientnet.yaml,
# regnet.yaml, convnext.yaml) as the smallest, which are measured; generating and running 25 more
# modules would add minutes to the suite and measure no other op or block.
LARGER_SIZES = frozenset(
    [f"efficientnet_b{k}" for k in range(1, 8)] + ["efficientnet_v2_m", "efficientnet_v2_l"]
    + [f"regnet_{xy}_{size}" for xy in "xy" for size in ("800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf")]
    + ["regnet_y_128gf", "convnext_small", "convnext_base", "convnext_large"])
MEASURED_ZOO = [path for path in zoo_specs() if path.stem not in LARGER_SIZES]

# Every op not in the zoo, in one small network, so each op's rule is measured somewhere.
EVERY_OTHER_OP = """
    name: every_op
    input: [8, 12, 12]
    network:
      - {conv: {out: 16, k: 3, pad: 1}}
      - {groupnorm: {groups: 4}}
      - gelu
      - {lrn: {size: 3}}
      - {avgpool: {k: 3, stride: 1, pad: 1}}
      - silu
      - {channel_shuffle: {groups: 4}}
      - {parallel: [[{channel_split: {index: 0}}, hardswish], [{channel_split: {index: 1}}, tanh]]}
      - {pad_channels: {out: 20, stride: 2}}
      - {leaky_relu: {slope: 0.2}}
      - {dropout: {p: 0.3}}
      - {residual: {body: [{adaptive_avgpool: {size: 2}}, {conv: {out: 20, k: 2}}, hardsigmoid],
                    connect: false}}
      - layernorm
      - {parallel: [identity, [{adaptive_maxpool: {size: 1}}, sigmoid]], merge: mul}
      - {conv: {out: 12, k: 1, groups: 4, bias: false}}
      - relu6
      - {mean: {keepdim: true}}
      - {softmax: {dim: 1}}
      - flatten
      - {bn: {affine: false}}
      - {dropout: {p: 0.0}}
      - {linear: {out: 5}}
"""


# The ops added since, in a second small network.
NEWER_OPS = """
    name: newer_ops
    input: [8, 6, 6]
    network:
      - {conv: {out: 8, k: 1}}
      - keep: identity
      - {elu: {alpha: 0.5}}
      - {upsample: {scale: 2}}
      - {layer_scale: {init: 0.5}}
      - celu
      - selu
      - {upsample: {scale: 2, mode: bilinear}}
      - mish
      - {hardtanh: {min: -2.0, max: 2.0}}
      - layernorm
      - softplus
      - {scale: {value: 0.17}}
      - logsigmoid
      - tanhshrink
      - {prelu: {per_channel: true}}
      - flatten
      - {reshape: {shape: [8, 576]}}
      - {layernorm: {over: last}}
      - {linear: {out: 6, over: last}}
      - flatten
      - {reshape: {shape: [3, 4, 4]}}
      - {conv: {out: 4, k: 1}}
"""

# Ops that lower to torchvision modules: each is measured after a conv in a hand-written module
# with torchvision's own class, against the same layers as a spec.
TORCHVISION_LOWERED = {
    "stochastic_depth_row": ("{stochastic_depth: {p: 0.2}}",
                             lambda tv: tv.ops.StochasticDepth(0.2, "row")),
    "stochastic_depth_batch": ("{stochastic_depth: {p: 0.2, mode: batch}}",
                               lambda tv: tv.ops.StochasticDepth(0.2, "batch")),
    "stochastic_depth_0": ("{stochastic_depth: {p: 0.0}}",
                           lambda tv: tv.ops.StochasticDepth(0.0, "row")),
    "permute": ("{permute: {dims: [0, 2, 3, 1]}}", lambda tv: tv.ops.Permute([0, 2, 3, 1])),
    "layernorm_channels": ("{layernorm: {over: channels}}",
                           lambda tv: tv.models.convnext.LayerNorm2d(8)),
}


def _smallest_input(path, **overrides) -> tuple[archdsl.ir.Graph, int]:
    """The graph at the smallest square input its layers accept (the spec's own if none does)."""
    own = archdsl.load(path, **overrides)
    if len(own.input_shape) != 3 or own.input_shape[1] != own.input_shape[2]:
        return own, own.input_shape[1]
    for side in SIDES:
        if side >= own.input_shape[1]:
            break
        try:
            shape = f"{own.input_shape[0]}x{side}x{side}"
            return archdsl.load(path, input=shape, **overrides), side
        except SpecError:
            continue
    return own, own.input_shape[1]


def _measured(graph, batch: int, model=None) -> int:
    """Measured on the built module with zero weights (what autograd keeps does not depend on
    their values, and initialising VGG's 100 M-weight classifier is most of the cost); ``model``:
    that module, built once for several batches (generating EfficientNet-B7's code takes seconds)."""
    torch.manual_seed(0)
    model = zeroed_model(graph) if model is None else model
    return measure_saved_bytes(model, torch.randn(batch, *graph.input_shape))


def test_every_op_states_what_it_saves():
    """A new op must say what autograd keeps for it; there is no default to fall back on."""
    missing = [name for name, op in REGISTRY.items()
               if type(op).saved_for_backward is Op.saved_for_backward]
    assert missing == []


def test_every_op_is_measured_somewhere(write_spec):
    """Each op's rule is checked against autograd by a zoo model, EVERY_OTHER_OP or NEWER_OPS."""
    used = {node.op for path in MEASURED_ZOO for node in archdsl.load(path).op_nodes()}
    for spec in (EVERY_OTHER_OP, NEWER_OPS):
        used |= {node.op for node in archdsl.load(write_spec(spec)).op_nodes()}
    for layer, _ in TORCHVISION_LOWERED.values():
        used |= {node.op for node in archdsl.load(write_spec(_after_conv(layer))).op_nodes()}
    assert sorted(set(REGISTRY) - used) == []


def test_the_larger_sizes_use_only_blocks_of_a_measured_size():
    measured = {(scope.block, len(scope.in_shape)) for path in MEASURED_ZOO
                for scope in archdsl.load(path).scopes.values() if scope.kind == "block"}
    for name in sorted(LARGER_SIZES):
        graph = archdsl.load(zoo_specs()[0].parent / f"{name}.yaml")
        blocks = {(s.block, len(s.in_shape)) for s in graph.scopes.values() if s.kind == "block"}
        assert blocks and blocks <= measured, name


@pytest.mark.parametrize("path", MEASURED_ZOO, ids=lambda p: p.stem)
def test_zoo_saved_bytes_match_autograd(path):
    graph, _ = _smallest_input(path, **OVERRIDES.get(path.stem, {}))
    model = zeroed_model(graph)
    for batch in BATCHES:
        predicted = analyze(graph, batch=batch).training.saved
        assert predicted == _measured(graph, batch, model), (path.stem, graph.input_shape, batch)


def _after_conv(layer: str) -> str:
    return f"""
        name: one_op
        input: [8, 6, 6]
        network:
          - {{conv: {{out: 8, k: 1}}}}
          - {layer}
    """


@pytest.mark.parametrize("case", sorted(TORCHVISION_LOWERED))
def test_torchvision_lowered_ops_saved_bytes_match_autograd(write_spec, case):
    torchvision = pytest.importorskip("torchvision")
    layer, module = TORCHVISION_LOWERED[case]
    graph = archdsl.load(write_spec(_after_conv(layer)))
    model = torch.nn.Sequential(torch.nn.Conv2d(8, 8, 1), module(torchvision)).train()
    for batch in BATCHES:
        measured = measure_saved_bytes(model, torch.randn(batch, 8, 6, 6))
        assert analyze(graph, batch=batch).training.saved == measured


def test_auxiliary_head_saved_bytes_match_autograd():
    """A second output (inception_v3's AuxLogits) runs in training and keeps its tensors too."""
    graph = archdsl.load(zoo_specs()[0].parent / "inception_v3.yaml")
    assert len(graph.outputs) == 2
    assert analyze(graph, batch=2).training.saved == _measured(graph, 2)


@pytest.mark.parametrize("spec", [EVERY_OTHER_OP, NEWER_OPS], ids=["every_other_op", "newer_ops"])
def test_every_other_op_saved_bytes_match_autograd(write_spec, spec):
    graph = archdsl.load(write_spec(spec))
    for batch in BATCHES:
        assert analyze(graph, batch=batch).training.saved == _measured(graph, batch)


def test_the_meta_device_keeps_what_the_cpu_keeps():
    """bench/training_memory.py measures batch 32 on the meta device: the same saved tensors."""
    from archdsl.builder import build_graph

    graph = archdsl.load(zoo_specs()[0].parent / "resnet_cifar.yaml")
    with torch.device("meta"):
        model = build_graph(graph).train()
        on_meta = measure_saved_bytes(model, torch.randn(3, *graph.input_shape))
    assert on_meta == _measured(graph, 3) == analyze(graph, batch=3).training.saved


def test_frozen_stem_keeps_nothing_until_a_gradient_is_needed(write_spec):
    """Ops before the first trainable parameter build no autograd node and keep nothing."""
    graph = archdsl.load(write_spec("""
        name: frozen
        input: [3, 16, 16]
        network:
          - stem: {conv: {out: 8, k: 3}, freeze: true}
          - relu
          - {maxpool: {k: 2}}
          - {conv: {out: 8, k: 3}}
          - relu
    """))
    a = analyze(graph, batch=2)
    assert a.nodes["stem"].saved_bytes == 0 and a.nodes["relu"].saved_bytes == 0
    assert a.training.saved == _measured(graph, 2)


def test_per_layer_saved_bytes_add_up_and_state_grows_with_the_optimizer():
    graph = archdsl.load(zoo_specs()[0].parent / "resnet18.yaml")
    totals = {name: analyze(graph, optimizer=name).training for name in OPTIMIZERS}
    a = analyze(graph)
    assert sum(s.saved_bytes for s in a.nodes.values()) == a.training.saved
    assert sum(s.saved_bytes for s in a.stages) == a.training.saved
    # conv1 keeps the network's input; bn1 keeps conv1's output and 2 x 64 statistics
    assert a.nodes["conv1"].saved_bytes == 3 * 224 * 224 * 4
    assert a.nodes["bn1"].saved_bytes == (64 * 112 * 112 + 2 * 64) * 4
    grads = a.trainable_params * 4
    assert totals["sgd"].optimizer_state == 0
    assert totals["sgd-momentum"].optimizer_state == grads
    assert totals["adam"].optimizer_state == totals["adamw"].optimizer_state == 2 * grads
    for t in totals.values():
        assert t.gradients == grads
        assert t.peak >= t.weights + t.optimizer_state + t.saved
