"""Epoch time of ``archdsl train`` with one process and with two (torchrun, gloo) on this CPU.

    python bench/train_epochs.py            # prints the table
    python bench/train_epochs.py --write    # also puts it in BENCHMARKS.md (its own section)

Two cases: LeNet on Fashion-MNIST (1x28x28) and ResNet-18 on CIFAR-10 (3x32x32,
``--set num_classes=10``). The data are written in the real formats by ``tests/datasets.py`` (no
network here) with ``--samples`` training images, a part of the real 60,000 / 50,000, and the
epoch time is scaled to the full set from the measured throughput. Each run trains ``--epochs``
epochs with the real command (``python -m archdsl train``, data loaded in the training process:
``--workers 0``) and the figure is the median of the epochs after the first (the first warms up).
Three layouts: one process with one thread, then the two cores used by one process with two
threads or by two processes (torchrun) with one thread each; the same global batch throughout. The machine is shared: the load average is printed with
the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.datasets import write_cifar10, write_fashion_mnist  # after the path is set

CASES = {
    "LeNet": {"spec": "specs/lenet.yaml", "data": "fashion-mnist", "full": 60_000, "samples": 3000,
              "args": ["--lr", "0.1", "--momentum", "0"]},
    "ResNet-18": {"spec": "specs/resnet18.yaml", "data": "cifar10", "full": 50_000, "samples": 1000,
                  "args": ["--set", "num_classes=10", "--input", "3x32x32", "--lr", "0.01"]},
}
MARK_START, MARK_END = "<!-- kept: train-epochs -->", "<!-- end kept: train-epochs -->"


LAYOUTS = ((1, 1), (1, 2), (2, 1))  # (processes, threads per process)


def run_case(name: str, root: Path, processes: int, threads: int, epochs: int, batch: int) -> dict:
    case = CASES[name]
    out = root / f"{name}-{processes}x{threads}"
    launcher = [sys.executable, "-m", "archdsl"] if processes == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes),
        "-m", "archdsl"]
    command = [*launcher, "train", case["spec"], "--data", case["data"], "--root", str(root), *case["args"],
               "--epochs", str(epochs), "--batch", str(batch), "--workers", "0", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads)}
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    epochs_run = json.loads((out / "history.json").read_text())["epochs"]
    rate = statistics.median(r["samples_per_second"] for r in epochs_run[1:])
    return {"processes": processes, "threads": threads, "samples_per_second": rate,
            "epoch_seconds": case["full"] / rate, "test_acc": epochs_run[-1]["test_acc"]}


def table(results: dict, samples: dict, batch: int) -> str:
    lines = ["| network | input | images | processes x threads | samples/s | epoch (full set) | vs 1 x 1 |",
             "| :--- | :--- | ---: | :--- | ---: | ---: | ---: |"]
    for name, rows in results.items():
        base = rows[0]["samples_per_second"]
        size = "1x28x28" if name == "LeNet" else "3x32x32"
        for row in rows:
            lines.append(f"| {name} | {size} | {samples[name]:,} | {row['processes']} x {row['threads']} | "
                         f"{row['samples_per_second']:,.0f} | {row['epoch_seconds']:,.0f} s | "
                         f"{row['samples_per_second'] / base:.2f}x |")
    return "\n".join(lines)


def section(results: dict, samples: dict, batch: int, epochs: int, load: tuple) -> str:
    import torch

    return "\n".join([
        MARK_START, "## Training epochs: one process and two (torchrun)", "",
        (f"`python bench/train_epochs.py --batch {batch} --epochs {epochs} --write` "
         f"(torch {torch.__version__}, gloo on CPU; load average {load[0]:.1f} at the start, "
         f"{os.getloadavg()[0]:.1f} at the end: the machine is shared). "
         "Training throughput of `archdsl train` on the training images of the table in the real formats, "
         "the median of the epochs after the first; the epoch time is that throughput over the full "
         "set (60,000 Fashion-MNIST, 50,000 CIFAR-10 images). One process with one thread, then the two "
         "cores used by one process with two threads or by two processes (torchrun) with one each; "
         "the same global batch throughout."), "",
        table(results, samples, batch), "",
        ("When the load average is above the two cores (other jobs share the machine), two processes "
         "also get two shares of the scheduler, so the gain of 2 x 1 over 1 x 1 is then an upper bound "
         "of what torchrun gives on an idle machine, and one process with two OpenMP threads loses to "
         "the threads' spin-waiting: `OMP_NUM_THREADS=1` per process is the layout to use here."),
        "", MARK_END])


def write(text: str) -> None:
    from archdsl.util import write_atomic

    path = ROOT / "BENCHMARKS.md"
    current = path.read_text(encoding="utf-8")
    if MARK_START in current:
        head, rest = current.split(MARK_START, 1)
        current = head + text + rest.split(MARK_END, 1)[1]
    else:
        current = current.rstrip() + "\n\n" + text + "\n"
    write_atomic(path, current)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=None,
                        help="training images per dataset [default: 3000 for LeNet, 1000 for ResNet-18]")
    parser.add_argument("--batch", type=int, default=128, help="global batch")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (the first is warm-up)")
    parser.add_argument("--cases", default="LeNet,ResNet-18")
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args(argv)
    load = os.getloadavg()
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        samples = {name: args.samples or case["samples"] for name, case in CASES.items()}
        write_fashion_mnist(root, train=samples["LeNet"], test=500)
        write_cifar10(root, train=samples["ResNet-18"], test=500)
        for name in args.cases.split(","):
            results[name] = [run_case(name, root, n, t, args.epochs, args.batch) for n, t in LAYOUTS]
            print(table({name: results[name]}, samples, args.batch), flush=True)
    text = section(results, samples, args.batch, args.epochs, load)
    print(text)
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "train_epochs.json").write_text(json.dumps(results, indent=2) + "\n")
    if args.write:
        write(text)


if __name__ == "__main__":
    main()
