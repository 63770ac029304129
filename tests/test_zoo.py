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




PENDING = sorted((next(iter(ZOO.values())).parent / "pending").glob("*.yaml"))


@pytest.mark.parametrize("path", PENDING, ids=[p.stem for p in PENDING])
def test_pending_specs_match_torchvision_metadata(path):
    """specs/pending/ (specs the code generator cannot compile yet): parameters and MACs equal
    torchvision's published metadata: `num_params`, and `_ops` (GMACs) of the weights published
    for the spec's input size (regnet_y_128gf has SWAG weights at 384 and at 224)."""
    from torchvision.models import get_model_weights

    analysis = archdsl.analyze(archdsl.load(path))
    published = list(get_model_weights(path.stem))
    assert {w.meta["num_params"] for w in published} == {analysis.params}
    gmacs = [w.meta["_ops"] for w in published]
    assert any(abs(analysis.macs / 1e9 - ops) < 0.0011 for ops in gmacs), (analysis.macs, gmacs)
