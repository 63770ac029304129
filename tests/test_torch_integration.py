"""The generated modules in the PyTorch ecosystem: torch.compile without graph breaks,
TorchScript, ONNX export checked with onnxruntime, and DistributedDataParallel (gloo, 2 processes).
"""

from __future__ import annotations

import socket
import warnings

import pytest
import torch

import archdsl
from tests.conftest import ROOT
from tests.test_codegen import CONSTRUCTS

SPECS = ROOT / "specs"


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _build(name: str, size: int, **overrides):
    torch.manual_seed(0)
    return archdsl.build(SPECS / f"{name}.yaml", input=(3, size, size), **overrides)


def _explain(model, x):
    torch._dynamo.reset()
    try:
        return torch._dynamo.explain(model)(x)
    finally:
        torch._dynamo.reset()


def test_torch_compile_traces_resnet18_without_graph_breaks():
    explained = _explain(_build("resnet18", 64).eval(), torch.randn(2, 3, 64, 64))
    assert explained.graph_break_count == 0, explained.break_reasons
    assert explained.graph_count == 1


def test_torch_compile_traces_every_construct_without_graph_breaks(write_spec):
    """`when:` flags, use_res_connect, `from:`, dense and repeat blocks, nn.Sequential subclasses,
    and the outputs tuple of training mode."""
    model = archdsl.build(write_spec(CONSTRUCTS)).train()
    explained = _explain(model, torch.randn(2, 3, 16, 16))
    assert explained.graph_break_count == 0, explained.break_reasons
    assert explained.graph_count == 1


@pytest.mark.parametrize("name", ["resnet18", "shufflenet_v2_x1_0"])
def test_torchscript_scripts_the_module_and_agrees(name):
    model = _build(name, 64).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.script is deprecated in favour of torch.compile
        scripted = torch.jit.script(model)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), model(x))


def test_onnx_export_runs_in_onnxruntime(tmp_path):
    import onnxruntime as ort
    model = archdsl.build(SPECS / "resnet_cifar.yaml").eval()
    x = torch.randn(2, 3, 32, 32)
    path = tmp_path / "resnet_cifar.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["out"],
                          dynamo=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (ours,) = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        expected = model(x).numpy()
    assert ours.shape == expected.shape == (2, 10)
    assert abs(ours - expected).max() < 1e-4


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    """One DDP process: build, one training step on its own batch, save the updated weights."""
    import os

    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)  # the same initial weights in every process (DDP also broadcasts)
        model = DistributedDataParallel(archdsl.build(SPECS / "lenet.yaml", activation="relu"))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        x = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(rank))
        loss = torch.nn.functional.cross_entropy(model(x), torch.arange(4) % 10)
        loss.backward()
        optimizer.step()
        torch.save(model.module.state_dict(), f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_distributed_data_parallel_with_two_gloo_processes(tmp_path):
    import torch.distributed as dist
    import torch.multiprocessing as mp

    assert dist.is_available() and dist.is_gloo_available()
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    first, second = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert first.keys() == second.keys()
    for key in first:  # gradients were averaged, so both processes took the same step
        torch.testing.assert_close(first[key], second[key])
    torch.manual_seed(0)
    initial = archdsl.build(SPECS / "lenet.yaml", activation="relu").state_dict()
    assert not torch.equal(initial["fc3.weight"], first["fc3.weight"])
