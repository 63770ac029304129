"""``archdsl run``: build on a device, check against the static analysis, time it."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from archdsl.cli import cli, main
from tests.conftest import ROOT

SPEC = str(ROOT / "specs" / "resnet_cifar.yaml")
FAST = ["--device", "cpu", "--batch", "2", "--steps", "2", "--warmup", "1"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_run_checks_and_times_a_forward_pass():
    result = CliRunner().invoke(cli, ["run", SPEC, *FAST])
    assert result.exit_code == 0, result.output
    assert "resnet_cifar on cpu: 269,722 parameters and output out 10 match the static analysis" \
        in result.output
    assert "forward (eval)" in result.output and "samples/s" in result.output
    assert "peak memory" in result.output


def test_run_times_forward_and_backward_with_overrides():
    result = CliRunner().invoke(cli, ["run", SPEC, *FAST, "--train", "--amp", "--set",
                                      "num_classes=3"])
    assert result.exit_code == 0, result.output
    assert "output out 3 match" in result.output
    assert "forward+backward (train) with amp" in result.output


def test_run_train_prints_predicted_against_measured_saved_bytes():
    result = CliRunner().invoke(cli, ["run", SPEC, *FAST, "--train"])
    assert result.exit_code == 0, result.output
    import archdsl
    from archdsl.analysis import analyze

    predicted = analyze(archdsl.load(SPEC), batch=2).training.saved
    assert "saved for backward (float32, batch 2): predicted" in result.output
    assert f"({predicted:,} B), measured" in result.output and ": exact" in result.output


def test_run_reports_training_outputs_of_an_aux_network(write_spec):
    spec = write_spec("""
        name: aux
        input: [3, 16, 16]
        network:
          - {conv: {out: 8, k: 3}}
          - head: [global_avgpool, flatten, {linear: {out: 2}}]
            output: aux1
          - {conv: {out: 4, k: 3}}
          - global_avgpool
          - flatten
    """)
    result = CliRunner().invoke(cli, ["run", str(spec), *FAST, "--train"])
    assert result.exit_code == 0, result.output
    assert "output out 4, aux1 2 match the static analysis" in result.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_missing_device_is_a_clear_error(capsys):
    assert main(["run", SPEC, "--device", "cuda"]) == 1
    err = capsys.readouterr().err
    assert "error: --device cuda: CUDA is not available on this machine" in err
    assert "hint: use --device cpu" in err
    assert "Traceback" not in err


def test_auto_picks_cpu_without_cuda():
    from archdsl.runner import resolve_device

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
