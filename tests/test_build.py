"""The generated modules against torchvision/timm and against the static analysis.

For every zoo spec with a reference model: torchvision's (or timm's) ``state_dict`` loads with
``strict=True`` and the eval-mode outputs agree. For every zoo spec: the module runs forward and
backward on CPU, and its parameter count, output shapes and every block instance (built by the
one generic class of its block) agree with the static analysis. Inputs are the smallest of a few
sizes the spec accepts, to keep the suite fast.
"""

from __future__ import annotations

import re
from functools import cache

import pytest

import torch  # noqa: E402

import archdsl
from archdsl.builder import check_model, load_generated
from archdsl.codegen import generate
from archdsl.errors import SpecError
from tests.conftest import ROOT, zoo_specs
from tests.reference_models import REFERENCES

ZOO = {path.stem: path for path in zoo_specs()}
SMALL = 64


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@cache
def small_graph(name: str):
    """The spec at a 64 x 64 input, or the smallest input it accepts (never above its own)."""
    graph = archdsl.load(ZOO[name])
    channels, height, _ = graph.input_shape
    if height <= SMALL:
        return graph
    try:
        return archdsl.load(ZOO[name], input=(channels, SMALL, SMALL))
    except SpecError as error:  # its hint names the smallest input that works
        found = re.search(r"the smallest that works is (\d+)x(\d+)x(\d+)", error.render())
        if found is None or int(found.group(2)) >= height:
            return graph
        return archdsl.load(ZOO[name], input=tuple(int(g) for g in found.groups()))


@cache
def small_module(name: str):
    """The generated module of :func:`small_graph` (generated once for the tests that use it)."""
    generated = generate(small_graph(name))
    return getattr(load_generated(generated), generated.factory)


def _randomize_batch_norm(model) -> None:
    """Non-trivial BN statistics and affine parameters, so that loading them matters."""
    gen = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            shape = module.running_mean.shape
            module.running_mean.copy_(torch.rand(shape, generator=gen) - 0.5)
            module.running_var.copy_(torch.rand(shape, generator=gen) + 0.5)
            if module.affine:
                module.weight.data.copy_(torch.rand(shape, generator=gen) + 0.5)
                module.bias.data.copy_(torch.rand(shape, generator=gen) - 0.5)


def _main(outputs):
    return outputs[0] if isinstance(outputs, tuple) else outputs


@pytest.mark.parametrize("name", sorted(set(REFERENCES) & set(ZOO)))
@torch.no_grad()
def test_reference_weights_load_strictly_and_outputs_match(name):
    builder, _ = REFERENCES[name]
    graph = small_graph(name)
    torch.manual_seed(0)
    reference = builder().eval()
    _randomize_batch_norm(reference)
    with torch.device("meta"):
        model = small_module(name)()
    model.load_state_dict(reference.state_dict(), strict=True, assign=True)
    model.eval()
    x = torch.randn(2, *graph.input_shape, generator=torch.Generator().manual_seed(2))
    ours, theirs = model(x), _main(reference(x))
    relative = ((ours - theirs).abs().max() / theirs.abs().max()).item()
    assert relative < 1e-5
    assert check_model(graph, model, ours) == []


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_module_runs_forward_and_backward_as_analysed(name):
    graph = small_graph(name)
    torch.manual_seed(0)
    model = small_module(name)().train()
    blocks = [s for s in graph.scopes.values() if s.kind == "block"]
    seen: dict[str, tuple[int, ...]] = {}

    def record(path: str):
        def hook(_module, _inputs, output) -> None:
            seen[path] = tuple(output.shape[1:])
        return hook

    handles = [model.get_submodule(s.path).register_forward_hook(record(s.path)) for s in blocks]
    outputs = model(torch.randn(2, *graph.input_shape))
    for handle in handles:
        handle.remove()
    every = outputs if isinstance(outputs, tuple) else (outputs,)
    sum(o.float().square().mean() for o in every).backward()
    assert check_model(graph, model, outputs) == []
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    for scope in blocks:  # every instance of a block, built by the block's one generic class
        module = model.get_submodule(scope.path)
        static = sum(n.opdef.params(n.attrs, list(n.in_shapes), n.shape)
                     for n in graph.scope_nodes(scope.path))
        assert sum(p.numel() for p in module.parameters()) == static, scope.path
        assert seen[scope.path] == tuple(scope.out_shape), scope.path


def test_build_api_takes_overrides():
    model = archdsl.build(ROOT / "specs" / "resnet_cifar.yaml", depth=32, num_classes=100)
    assert sum(p.numel() for p in model.parameters()) == 464_154 + 64 * 90 + 90
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 100)


def test_importing_archdsl_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, archdsl, archdsl.codegen; archdsl.load('specs/resnet18.yaml'); " \
           "print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip() == "False"
