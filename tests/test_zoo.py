"""One parametrised test over the whole zoo, and the zoo against its reference implementations.

The reference numbers (shapes, parameter counts) are computed here from torchvision/timm models
built in the test (tests/reference_models.py), never typed in.
"""

from __future__ import annotations

import pytest
import torch

import archdsl
from tests.conftest import zoo_specs
from tests.reference_models import REFERENCES, module_output_shapes, param_count

ZOO = {path.stem: path for path in zoo_specs()}


def static_shapes(graph) -> dict[str, tuple[int, ...]]:
    """The static output shape of every node and every named scope, by dotted name."""
    shapes = {node.name: node.shape for node in graph.op_nodes()}
    for path, scope in graph.scopes.items():
        if path and scope.named and scope.out_shape:
            shapes[path] = scope.out_shape
    return shapes


def static_params(graph) -> int:
    return sum(n.opdef.params(n.attrs, list(n.in_shapes), n.shape) for n in graph.op_nodes())


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_spec_checks(name):
    graph = archdsl.load(ZOO[name])
    assert graph.main_output.shape[0] == graph.params.get("num_classes", graph.main_output.shape[0])
    assert not graph.warnings, [w.render() for w in graph.warnings]


@pytest.mark.parametrize("name", sorted(set(REFERENCES) & set(ZOO)))
def test_shapes_and_params_equal_the_reference(name):
    builder, input_shape = REFERENCES[name]
    graph = archdsl.load(ZOO[name])
    assert graph.input_shape == input_shape
    with torch.device("meta"):  # real structure and shapes, no weights and no arithmetic
        model = builder()
        x = torch.empty((1, *input_shape))
    ref = module_output_shapes(model, x)
    ours = static_shapes(graph)
    shared = sorted(set(ref) & set(ours))
    assert len(shared) >= 0.5 * len([n for n in ours if n in ref or "." not in n]), "names diverge"
    mismatched = {n: (ours[n], ref[n]) for n in shared if ours[n] != ref[n]}
    assert not mismatched
    out = model(x)
    out = out[0] if isinstance(out, tuple) else out
    assert graph.main_output.shape == tuple(out.shape[1:])
    assert static_params(graph) == param_count(model)



def test_the_zoo_has_every_cnn_classifier_of_torchvision():
    """torchvision's classification builders less the transformers (vit_*, swin_*, maxvit_t):
    each is a zoo spec, with the reference it is checked against."""
    from torchvision import models as tvm

    transformers = ("vit_", "swin_", "maxvit_")
    cnns = {n for n in tvm.list_models(module=tvm) if not n.startswith(transformers)}
    assert cnns <= set(ZOO) & set(REFERENCES)


def test_regnet_references_are_torchvisions_builders():
    """tests/reference_models.py builds RegNets from a copy of torchvision's builder arguments
    (torchvision's own builders cannot run on the meta device): each has torchvision's published
    parameter count, and the smallest two equal the builders' networks key for key."""
    from torchvision import models as tvm

    from tests.reference_models import REGNET_INIT

    assert set(REGNET_INIT) == {n for n in tvm.list_models(module=tvm) if n.startswith("regnet_")}
    for name in REGNET_INIT:
        with torch.device("meta"):
            model = REFERENCES[name][0]()
        assert param_count(model) == tvm.get_model_weights(name).DEFAULT.meta["num_params"], name
    for name in ("regnet_x_400mf", "regnet_y_400mf"):
        ours = {k: v.shape for k, v in REFERENCES[name][0]().state_dict().items()}
        theirs = {k: v.shape for k, v in getattr(tvm, name)(weights=None).state_dict().items()}
        assert ours == theirs, name
