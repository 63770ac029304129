"""The static analysis against the reference implementations (torchvision, timm, fvcore):
parameters, buffers and MACs from the reference model itself (forward hooks on the meta device),
fvcore's FlopCountAnalysis total. Reference numbers are computed here, never typed in.

The hand-made cases are in tests/test_analysis.py, which must not need torch: the first test here
runs it with torch blocked.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import warnings

import pytest
import torch

import archdsl
from archdsl.analysis import Analysis, analyze
from tests.conftest import ROOT, SPECS
from tests.test_analysis import RESNET18, analyse

# fvcore runs the references' forward on the CPU: one thread (two spin on a busy 2-core machine).
pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_the_hand_made_analysis_tests_run_without_torch(no_torch_env):
    blocked = subprocess.run([sys.executable, "-c", "import torch"], env=no_torch_env,
                             capture_output=True, text=True, check=False)
    assert blocked.returncode != 0 and "blocked by this test" in blocked.stderr
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest"]
    run = subprocess.run([*pytest, "tests/test_analysis.py"], env=no_torch_env, cwd=ROOT,
                         capture_output=True, text=True, check=False, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = run.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ passed in .*", summary), summary  # nothing skipped, failed or errored


def _references():
    from tests.reference_models import CLASSIC_VARIANTS, REFERENCES, RESIDUAL_VARIANTS

    cases = {name: (name, {}, builder, shape) for name, (builder, shape) in REFERENCES.items()}
    cases.update(CLASSIC_VARIANTS)
    cases.update(RESIDUAL_VARIANTS)
    return cases


REFERENCE_CASES = _references()
FVCORE_CASES = sorted(n for n, case in REFERENCE_CASES.items() if not case[1])

def _spec_path(name: str):
    for path in (SPECS / f"{name}.yaml", SPECS / "studies" / f"{name}.yaml"):
        if path.exists():
            return path
    raise AssertionError(f"no spec {name}.yaml in the zoo")


def _analysis_of(spec: str, overrides: dict, shape: tuple[int, ...]) -> Analysis:
    return analyze(archdsl.load(_spec_path(spec), input=shape, **overrides))


def _meta_model(builder):
    """The reference on the meta device: real structure and shapes, no weights, no compute."""
    with torch.device("meta"):
        return builder()


@pytest.mark.parametrize("case", sorted(REFERENCE_CASES))
def test_params_buffers_macs_equal_the_reference(case):
    from tests.reference_models import conv_linear_macs, param_count

    spec, overrides, builder, shape = REFERENCE_CASES[case]
    a = _analysis_of(spec, overrides, shape)
    model = _meta_model(builder)
    x = torch.empty((1, *shape), device="meta")
    assert a.params == param_count(model)
    assert a.buffers == sum(b.numel() for b in model.buffers())
    assert a.macs == conv_linear_macs(model, x)


def _torchvision_ops() -> dict[str, dict[int, float]]:
    """{zoo spec: {input size: torchvision's `_ops` (GMACs, 3 decimals)}} over its published weights.

    torchvision's weight tables give each checkpoint's `_ops` at the size of its evaluation crop
    (e.g. inception_v3's at 299); every spec named after a torchvision
    builder is compared at its own input size.
    """
    from torchvision import models as tvm

    from tests.reference_models import REFERENCES

    table: dict[str, dict[int, float]] = {}
    for name in sorted(set(REFERENCES) & set(tvm.list_models(module=tvm))):
        for weights in tvm.get_model_weights(name):
            crop = weights.transforms().crop_size[0]
            table.setdefault(name, {})[crop] = weights.meta["_ops"]
    return table


TORCHVISION_OPS = _torchvision_ops()


@pytest.mark.parametrize("name", sorted(TORCHVISION_OPS))
def test_macs_equal_torchvision_ops_metadata(name):
    """torchvision's `_ops` is GMACs of conv and linear layers (its docs call them GFLOPS)."""
    graph = archdsl.load(_spec_path(name))
    size = graph.input_shape[1]
    assert size in TORCHVISION_OPS[name], f"no torchvision weights evaluated at {size}x{size}"
    assert round(analyze(graph).macs / 1e9, 3) == TORCHVISION_OPS[name][size]


def test_resnet18_local_spec_equals_torchvision(write_spec):
    """Independent of the zoo: the hand-written spec above against torchvision's resnet18."""
    from torchvision.models import resnet18

    from tests.reference_models import conv_linear_macs, param_count

    a = analyse(write_spec, RESNET18)
    model = _meta_model(lambda: resnet18(weights=None))
    x = torch.empty((1, 3, 224, 224), device="meta")
    assert a.params == param_count(model)
    assert a.macs == conv_linear_macs(model, x)
    assert a.buffers == sum(b.numel() for b in model.buffers())


@pytest.mark.parametrize("case", FVCORE_CASES)
def test_fvcore_profile_equals_fvcore_total(case):
    import fvcore.nn as fvcore_nn

    from tests.reference_models import REDUCED_INPUTS

    spec, overrides, builder, shape = REFERENCE_CASES[case]
    shape = REDUCED_INPUTS.get(case, shape)
    a = _analysis_of(spec, overrides, shape)
    model = _meta_model(builder).to_empty(device="cpu").eval()  # fvcore traces a real forward
    counter = fvcore_nn.FlopCountAnalysis(model, torch.zeros((1, *shape)))
    counter.unsupported_ops_warnings(False)
    counter.uncalled_modules_warnings(False)
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        total = counter.total()
    assert a.fvcore_flops == total
