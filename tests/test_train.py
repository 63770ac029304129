"""``archdsl train``: real data formats, accuracy, resume, torchrun, fine-tuning and bad input.

The datasets are written by the tests in their real on-disk formats (tests/datasets.py) and read
by torchvision's own dataset classes; nothing is downloaded.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import archdsl
from archdsl.cli import cli, main
from tests.conftest import ROOT
from tests.datasets import write_cifar10, write_fashion_mnist, write_image_folder

LENET = str(ROOT / "specs" / "lenet.yaml")
QUICK = ["--workers", "0", "--batch", "32"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def fashion(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_fashion_mnist(root, train=384, test=160)
    return root


def train(*args: str) -> str:
    result = CliRunner().invoke(cli, ["train", *args])
    assert result.exit_code == 0, result.output
    return result.output


def history(out: Path) -> list[dict]:
    return json.loads((out / "history.json").read_text())["epochs"]


def weights(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "model.pt", weights_only=True)


def test_lenet_with_batch_norm_learns_fashion_mnist_and_resume_continues_exactly(fashion, tmp_path):
    common = [LENET, "--data", "fashion-mnist", "--root", str(fashion), "--set", "batch_norm=true",
              "--lr", "0.1", *QUICK]
    straight, split = tmp_path / "straight", tmp_path / "split"
    output = train(*common, "--epochs", "3", "--out", str(straight))
    # the static analysis first, checked against the module; then one line per epoch
    params = sum(p.numel() for p in archdsl.build(LENET, batch_norm=True).parameters())
    assert f"lenet: {params:,} parameters ({params:,} trained)" in output
    assert "predicted memory of a training step, batch 32 per process (float32): estimated peak" in output
    assert "the module matches the static analysis; Fashion-MNIST from" in output
    assert "384 training and 160 test images, 10 classes" in output
    assert len(re.findall(r"^epoch \d/3: train loss", output, re.MULTILINE)) == 3
    records = history(straight)
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert records[-1]["test_acc"] >= 0.9  # the stated accuracy: 90% after 3 epochs
    assert records[-1]["train_loss"] < records[0]["train_loss"]
    csv_lines = (straight / "history.csv").read_text().splitlines()
    assert csv_lines[0].startswith("epoch,train_loss,train_acc,test_loss,test_acc,lr")
    assert len(csv_lines) == 4
    assert (straight / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (straight / "curves.svg").read_bytes()

    train(*common, "--epochs", "2", "--out", str(split))
    resumed = train(*common, "--epochs", "3", "--out", str(split), "--resume")
    assert f"resumed from {split}/checkpoint.pt after epoch 2" in resumed
    assert "epoch 3/3: train loss" in resumed and "epoch 1/3" not in resumed
    assert [r["epoch"] for r in history(split)] == [1, 2, 3]
    one, other = weights(straight), weights(split)
    assert all(torch.equal(one[k], other[k]) for k in one)  # the same run, interrupted or not


def test_torchrun_with_two_processes_reaches_the_weights_of_one(fashion, tmp_path):
    common = [LENET, "--data", "fashion-mnist", "--root", str(fashion), "--set", "activation=relu",
              "--lr", "0.05", "--epochs", "2", "--batch", "32", "--workers", "0"]
    single = tmp_path / "one"
    train(*common, "--out", str(single))
    double = tmp_path / "two"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "archdsl", "train", *common, "--out", str(double)],
        check=False, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 processes (gloo), 16 samples each per step of 32" in proc.stdout
    assert len(re.findall(r"^epoch 2/2: train loss", proc.stdout, re.MULTILINE)) == 1  # rank 0 logs alone
    one, two = weights(single), weights(double)
    assert one.keys() == two.keys()
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=1e-5)
    assert history(double)[-1]["test_acc"] == pytest.approx(history(single)[-1]["test_acc"])


def test_cifar10_batches_and_an_image_folder_train_through_torchvision(tmp_path):
    write_cifar10(tmp_path, train=100, test=50)
    output = train(LENET, "--data", "cifar10", "--root", str(tmp_path), "--set", "in_channels=3",
                   "--input", "3x32x32", "--epochs", "1", *QUICK, "--out", str(tmp_path / "c"))
    assert "CIFAR-10 from" in output and "100 training and 50 test images, 10 classes" in output
    folder = write_image_folder(tmp_path / "pets", per_class=6)
    output = train(LENET, "--data", f"imagefolder:{folder}", "--set", "num_classes=3", "--epochs", "1",
                   "--augment", "flip", "--augment", "crop", "--augment", "jitter",
                   "--normalize", "imagenet", *QUICK, "--out", str(tmp_path / "f"))
    assert "18 training and 18 test images, 3 classes" in output  # 40x40 RGB -> 1x28x28
    assert len(history(tmp_path / "f")) == 1


def test_fine_tuning_a_torchvision_state_dict_changes_only_the_unfrozen_head(tmp_path):
    from torchvision.models import resnet18

    folder = write_image_folder(tmp_path / "pets", per_class=4, size=32)
    torch.manual_seed(1)
    reference = resnet18(num_classes=3).state_dict()
    torch.save(reference, tmp_path / "resnet18.pth")
    output = train(str(ROOT / "specs" / "resnet18.yaml"), "--set", "num_classes=3", "--input", "3x32x32",
                   "--data", f"imagefolder:{folder}", "--weights", str(tmp_path / "resnet18.pth"),
                   "--train-only", "fc", "--lr", "0.1", "--epochs", "1", "--workers", "0", "--batch", "6",
                   "--out", str(tmp_path / "ft"))
    assert f"loaded {len(reference)} of {len(reference)} tensors" in output
    assert "(1,539 trained)" in output  # fc: 512 x 3 + 3
    tuned = weights(tmp_path / "ft")
    changed = sorted(k for k in reference if not torch.equal(reference[k], tuned[k]))
    assert changed == ["fc.bias", "fc.weight"]  # batch norm statistics of the frozen body included


def test_a_new_head_keeps_its_initial_values_and_another_architecture_is_refused(tmp_path):
    from torchvision.models import resnet18

    from archdsl.builder import build_graph
    from archdsl.training import TrainError, load_weights

    torch.save(resnet18().state_dict(), tmp_path / "imagenet.pth")  # 1000 classes
    graph = archdsl.load(ROOT / "specs" / "resnet18.yaml", num_classes=10)
    model = build_graph(graph)
    head = model.fc.weight.detach().clone()
    lines = load_weights(model, graph, str(tmp_path / "imagenet.pth"))
    assert lines[0].startswith("loaded 120 of 122 tensors")
    assert "fc.weight: 1000x512 in the file, 10x512 in the model: the head is replaced" in lines[1]
    assert torch.equal(model.fc.weight, head)
    lenet = archdsl.build(LENET)
    with pytest.raises(TrainError, match=r"are not lenet's weights") as error:
        load_weights(lenet, archdsl.load(LENET), str(tmp_path / "imagenet.pth"))
    message = error.value.render()
    assert "9 missing from the file: conv1.bias, conv2.weight, conv2.bias, fc1.weight" in message
    assert "121 not in the model: bn1.weight, bn1.bias" in message
    assert "1 of other shapes: conv1.weight (64x3x7x7 vs 6x1x5x5)" in message


def run_main(args: list[str], capsys) -> tuple[int, str]:
    code = main(["train", *args])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def test_missing_and_malformed_datasets_are_clear_errors(tmp_path, capsys):
    out = tmp_path / "run"
    code, err = run_main([LENET, "--data", "fashion-mnist", "--root", str(tmp_path), "--out", str(out)],
                         capsys)
    assert code == 1
    assert f"error: Fashion-MNIST is not in {tmp_path}/FashionMNIST/raw" in err
    assert "expected: train-images-idx3-ubyte[.gz]" in err and "hint: pass --download" in err
    assert not out.exists()
    raw = write_fashion_mnist(tmp_path, train=32, test=32)
    (raw / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    code, err = run_main([LENET, "--data", "fashion-mnist", "--root", str(tmp_path), "--out", str(out)],
                         capsys)
    assert code == 1 and "is malformed" in err and "cannot be extracted" in err
    code, err = run_main([LENET, "--data", "imagefolder:" + str(tmp_path / "none"), "--out", str(out)],
                         capsys)
    assert code == 1 and "is not an ImageFolder dataset" in err and "found: no such directory" in err
    code, err = run_main([LENET, "--data", "fashion-mnst", "--out", str(out)], capsys)
    assert code == 2 and "did you mean `fashion-mnist`?" in err
    assert not out.exists()


def test_bad_weights_input_and_output_are_clear_errors(fashion, tmp_path, capsys):
    data = ["--data", "fashion-mnist", "--root", str(fashion), *QUICK]
    other = tmp_path / "rgb.pt"
    torch.save(archdsl.build(LENET, in_channels=3).state_dict(), other)
    out = tmp_path / "run"
    code, err = run_main([LENET, *data, "--weights", str(other), "--out", str(out)], capsys)
    assert code == 1 and "error: --weights" in err
    assert "1 of other shapes: conv1.weight (6x3x5x5 vs 6x1x5x5)" in err
    code, err = run_main([LENET, *data, "--input", "2x28x28", "--set", "in_channels=2", "--out", str(out)],
                         capsys)
    assert code == 1 and "is not an image the data can be resized to" in err
    code, err = run_main([LENET, *data, "--set", "num_classes=5", "--out", str(out)], capsys)
    assert code == 1 and "the data has 10 classes" in err and "hint: --set num_classes=10" in err
    code, err = run_main([LENET, *data, "--train-only", "fc9", "--out", str(out)], capsys)
    assert code == 2 and "hint: did you mean `fc3` or `fc2` or `fc1`?" in err
    assert not out.exists()  # nothing was written by any failed run
    if not torch.cuda.is_available():
        code, err = run_main([LENET, *data, "--device", "cuda"], capsys)
        assert code == 1 and "CUDA is not available on this machine" in err


def test_a_failed_write_leaves_the_last_checkpoint_whole(fashion, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    common = [LENET, "--data", "fashion-mnist", "--root", str(fashion), *QUICK, "--out", str(out)]
    train(*common, "--epochs", "1")
    before = (out / "checkpoint.pt").read_bytes()
    code, err = run_main([*common, "--epochs", "1"], capsys)
    assert code == 2 and "already holds a training run" in err and "--resume" in err

    def disk_full(_fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    code, err = run_main([*common, "--epochs", "2", "--resume"], capsys)
    assert code == 1 and f"cannot write the run to {out}" in err and "No space left" in err
    assert (out / "checkpoint.pt").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["checkpoint.pt", "model.pt", "history.json", "history.csv", "curves.png", "curves.svg"])


def course_commands() -> list[list[str]]:
    """The README's course commands (``archdsl train SPEC ...``), as argument lists."""
    import shlex

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- course-commands")[1].split("<!-- end course-commands")[0]
    commands = [shlex.split(line[2:].split("#")[0]) for line in block.splitlines() if line.startswith("$ ")]
    assert all(c[:2] == ["archdsl", "train"] for c in commands)
    return [c[2:] for c in commands]


def test_every_course_command_builds_a_one_channel_ten_class_network_at_the_course_size():
    from archdsl.cli import load_from_options
    from archdsl.commands.train import train as command

    commands = course_commands()
    specs = {Path(args[0]).stem for args in commands}
    assert {"lenet", "alexnet", "vgg11", "nin", "googlenet", "resnet18", "densenet121"} <= specs
    for args in commands:
        params = command.make_context("train", [str(ROOT / args[0]), *args[1:]]).params
        assert params["data"] == "fashion-mnist" and params["lr"] is not None
        graph = load_from_options(params["spec"], params["sets"], params["input_shape"], (), 10**6)
        assert graph.input_shape[0] == 1 and graph.main_output.shape == (10,), args
        size = {"lenet": 28, "alexnet": 224, "vgg11": 224, "nin": 224}.get(graph.name, 96)
        assert graph.input_shape[1:] == (size, size), args


@pytest.mark.parametrize("name", ["nin", "resnet18"])
def test_course_commands_take_training_steps_at_the_course_size(name, tmp_path):
    args = next(a for a in course_commands() if Path(a[0]).stem == name)
    write_fashion_mnist(tmp_path, train=4, test=2)
    train(str(ROOT / args[0]), *args[1:], "--root", str(tmp_path), "--epochs", "1", "--batch", "2",
          "--workers", "0", "--out", str(tmp_path / "run"))
    record = history(tmp_path / "run")[0]
    assert record["epoch"] == 1 and math.isfinite(record["train_loss"])
    torch.manual_seed(0)  # the command's --seed: the weights training started from
    before = archdsl.build(ROOT / args[0], in_channels=1, num_classes=10, input=args[args.index("--input") + 1])
    after = weights(tmp_path / "run")
    assert any(not torch.equal(t, after[k]) for k, t in before.state_dict().items())
