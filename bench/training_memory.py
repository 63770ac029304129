"""What a training step keeps for backward: archdsl's prediction against autograd, for the zoo.

    python bench/training_memory.py                 # every zoo model, batch 1 and 32
    python bench/training_memory.py resnet50 vgg16  # some models
    python bench/training_memory.py --cpu           # batch 32 on CPU too (hours on 2 cores)

For every spec at its own input: ``analyze(graph, batch=N).training.saved`` (static, no torch)
against :func:`archdsl.runner.measure_saved_bytes` on the built module in training mode
(``torch.autograd.graph.saved_tensors_hooks``, every storage once, weights and buffers excluded),
on CPU at batch 1; at batch 32 on PyTorch's ``meta`` device by default (the same modules and
autograd graph, the same saved tensors, without the arithmetic: the zoo at batch 32 keeps about
70 GB of tensors between its models and takes hours on a shared 2-core machine), or on CPU with
``--cpu``; and the "training activations" figure of ``report`` before this change (the sum of every
layer output) for comparison. The module is built with zero weights
(:func:`archdsl.runner.zeroed_model`): what autograd keeps does not depend on their values. Writes
docs/TRAINING_MEMORY.md and bench/results/training_memory.json. A measurement, not a test: the
byte-exact check at small inputs is tests/test_training.py.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and `archdsl` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, SPECS, machine

__all__ = ["main", "measure"]

BATCHES = (1, 32)
DEVICES = {1: "cpu", 32: "meta"}  # where each batch is measured by default (--cpu: all on CPU)
OUT_MD = ROOT / "docs" / "TRAINING_MEMORY.md"
OUT_JSON = ROOT / "bench" / "results" / "training_memory.json"


def measure(name: str, batch: int, device: str = "cpu") -> dict:
    """Predicted and measured saved bytes of one zoo model at one batch size, on ``device``."""
    import torch

    import archdsl
    from archdsl.runner import measure_saved_bytes, zeroed_model

    graph = archdsl.load(SPECS / f"{name}.yaml")
    analysis = archdsl.analyze(graph, batch=batch)
    row = {"name": name, "batch": batch, "device": device, "input": list(graph.input_shape),
           "predicted": analysis.training.saved,
           "sum_of_outputs": analysis.memory.bytes(analysis.memory.training_activations),
           "measured": None, "error": None}
    if device == "meta":
        from archdsl.builder import build_graph

        with torch.device("meta"):
            model = build_graph(graph).train()
    else:
        model = zeroed_model(graph)
    x = torch.randn(batch, *graph.input_shape, device=device)
    started = time.perf_counter()
    try:
        row["measured"] = measure_saved_bytes(model, x)
    except (ValueError, RuntimeError) as error:  # PyTorch refuses (batch norm of one value)
        row["error"] = str(error).splitlines()[0]
    row["seconds"] = round(time.perf_counter() - started, 2)
    del model, x
    gc.collect()
    return row


def _mb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 1e6:,.2f}"


def render(rows: list[dict], info: dict) -> str:
    lines = [
        "# Training memory: predicted against measured",
        "",
        ("What autograd keeps for the backward pass of one training step (weights and buffers "
        "excluded, each storage once), at each spec's own input, on CPU (float32): archdsl's "
        "static prediction (`archdsl report`'s *Saved* figure, `analyze(...).training.saved`; "
        "no torch) against `torch.autograd.graph.saved_tensors_hooks` on the module archdsl "
        "generates (`archdsl.runner.measure_saved_bytes`). The last column is what `report` "
        "called training activations before: the sum of every layer's output. Batch 1 is measured "
         "on CPU; batch 32 on PyTorch's meta device (the same modules, autograd graph and saved "
         "tensors, without the arithmetic; storages told apart by their storage objects), which "
         "a CPU run of the whole zoo at batch 32 (about 70 GB of saved tensors between the models, "
         "hours on this shared 2-core machine) would take too long for; `--cpu` measures it there. "
         "tests/test_training.py checks every model on CPU at two batch sizes, byte for byte."),
        "",
        (f"Made by `python bench/training_memory.py` ({info['when']}, torch {info['torch']}, "
        f"{info['cpu']})."),
        "",
        ("| model | input | batch | measured on | predicted (MB) | measured (MB) | predicted - "
         "measured (bytes) | sum of outputs (MB) |"),
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        shape = "x".join(map(str, r["input"]))
        if r["measured"] is None:
            delta = f"n/a: {r['error']}"
        else:
            delta = f"{r['predicted'] - r['measured']:,}"
        lines.append(f"| {r['name']} | {shape} | {r['batch']} | {r['device']} | {_mb(r['predicted'])} | "
                     f"{_mb(r['measured'])} | {delta} | {_mb(r['sum_of_outputs'])} |")
    exact = sum(1 for r in rows if r["measured"] == r["predicted"])
    measured = sum(1 for r in rows if r["measured"] is not None)
    lines += ["", f"{exact} of {measured} measured cases agree to the byte."]
    if measured < len(rows):
        lines.append("A case PyTorch itself refuses (batch norm over a single value per channel in "
                     "training) has no measurement.")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import torch

    argv = list(argv or [])
    on_cpu = "--cpu" in argv
    argv = [a for a in argv if a != "--cpu"]
    names = argv or [p.stem for p in sorted(SPECS.glob("*.yaml"))]
    rows = []
    for name in names:
        for batch in BATCHES:
            row = measure(name, batch, "cpu" if on_cpu else DEVICES[batch])
            rows.append(row)
            print(f"{name:22s} batch {batch:3d}: predicted {row['predicted']:>14,} measured "
                  f"{row['measured'] if row['measured'] is not None else row['error']!s:>14} "
                  f"({row['seconds']} s)", flush=True)
    info = {"when": time.strftime("%Y-%m-%d"), "torch": torch.__version__,
            "cpu": machine().get("cpu", "")}
    OUT_JSON.parent.mkdir(parents=True, exist_ok=True)
    OUT_JSON.write_text(json.dumps({"info": info, "rows": rows}, indent=2) + "\n", encoding="utf-8")
    if argv:  # a partial run does not overwrite the table of the whole zoo
        print(render(rows, info))
    else:
        OUT_MD.write_text(render(rows, info), encoding="utf-8")
        print(f"wrote {OUT_MD.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
