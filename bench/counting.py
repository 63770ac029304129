"""Part 1: counting parameters and MACs -- archdsl from the spec vs the tools on a built model.

For every zoo spec with a reference model (``tests/reference_models.py``: torchvision, a few timm
and one hand-written PyTorch model):

* **archdsl**: ``archdsl.analyze(archdsl.load(spec))`` -- read, expand and check the spec, then the
  whole analysis (params, MACs, memory, receptive field, depth); and ``analyze(graph)`` alone;
* **peers**: fvcore, ptflops, thop and torchinfo, each on the reference model. Their real cost
  includes building the model (allocating and initialising every weight), so the model is built
  (timed) once per round and each tool counts it (timed); a tool's total is build + count.

Then the same as cold processes: ``archdsl report specs/resnet152.yaml --format json`` against
``python -c "import torch"`` alone and against each peer as a one-shot script
(:mod:`bench.peer_cli`), all interleaved, every process reading its modules' bytecode
(:func:`bench.common.cold_env`); and ``archdsl report`` against ``import torch`` again by the
method used before, with no bytecode written (archdsl compiled from source in every process).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from archdsl.errors import ArchError

from .common import NO_BYTECODE_ENV, ROOT, SPECS, Stat, cold, cold_env, interleaved, quiet, time_both
from .peers import TOOLS, count

__all__ = ["bench_cold", "bench_cold_no_bytecode", "bench_in_process", "reference_models", "run"]

QUICK_MODELS = ("resnet18", "mobilenet_v2", "googlenet")
COLD_MODEL = "resnet152"
SLOW_MODEL = 8.0  # seconds: a model whose first peer round took longer gets no second round


def reference_models(names: tuple[str, ...] | None = None) -> dict[str, tuple[Any, tuple[int, ...], str]]:
    """``{spec name: (builder, input shape, source)}`` for every zoo spec with a reference model."""
    sys.path.insert(0, str(ROOT))
    try:
        with quiet():
            from tests.reference_models import REFERENCES
    finally:
        sys.path.remove(str(ROOT))
    out = {}
    for name, (builder, shape) in sorted(REFERENCES.items()):
        if not (SPECS / f"{name}.yaml").exists() or (names is not None and name not in names):
            continue
        source = ("timm" if name in ("se_resnet50", "inception_v4")
                  else "PyTorch" if name == "resnet_cifar" else "torchvision")
        out[name] = (builder, shape, source)
    return out


def _archdsl_cases(spec: Path, shape: tuple[int, ...]) -> tuple[dict[str, Any], tuple[int, int, int]]:
    import archdsl

    def full() -> Any:
        return archdsl.analyze(archdsl.load(spec, input=shape))

    graph = archdsl.load(spec, input=shape)
    first = full()
    return {"full": full, "count": lambda: archdsl.analyze(graph)}, (first.params, first.macs, len(graph) - 1)


def bench_in_process(models: dict[str, tuple[Any, tuple[int, ...], str]], *, rounds: int,
                     peer_rounds: int, log: Any = print) -> dict[str, Any]:
    """Per model: archdsl's times, each peer's build and count times, and what each counted."""
    import torch

    torch.set_num_threads(1)  # see the notes: steadier on a shared machine, and it favours the peers
    results: dict[str, Any] = {}
    warm = next(iter(models.values()))  # first calls pay one-off costs (jit, lazy imports)
    model = warm[0]()
    for tool in TOOLS:
        count(tool, model, warm[1])
    for name, (builder, shape, source) in models.items():
        started = time.perf_counter()
        try:
            cases, (params, macs, nodes) = _archdsl_cases(SPECS / f"{name}.yaml", shape)
        except ArchError as error:  # a spec being edited: say so, measure the others
            results[name] = {"error": error.render().splitlines()[0]}
            log(f"  {name:<20} skipped: {results[name]['error']}")
            continue
        ours = interleaved(cases, rounds, min_time=0.05)
        build = Stat("build")
        tools = {tool: Stat(tool) for tool in TOOLS}
        counted: dict[str, tuple[int, int]] = {}
        names = list(TOOLS)
        for r in range(peer_rounds):
            if r and time.perf_counter() - started > SLOW_MODEL:
                break  # a second round of a slow model costs minutes and moves nothing at 10-100x
            model = _timed(build, builder)
            shift = r % len(names)
            for tool in names[shift:] + names[:shift]:
                counted[tool] = _timed(tools[tool], count, tool, model, shape)
            del model
        results[name] = {
            "source": source,
            "input": list(shape),
            "archdsl": {"full": ours["full"], "count": ours["count"], "params": params, "macs": macs,
                        "nodes": nodes},
            "build": build,
            "tools": {tool: {"count": tools[tool], "total": build.median + tools[tool].median,
                             "params": counted[tool][0], "macs": counted[tool][1]} for tool in TOOLS},
        }
        best = min(TOOLS, key=lambda t: results[name]["tools"][t]["total"])
        total = results[name]["tools"][best]["total"]
        log(f"  {name:<20} archdsl {ours['full'].median * 1e3:7.1f} ms | build {build.median:5.2f} s "
            f"+ {best} {tools[best].median:5.2f} s | x{total / ours['full'].median:6.0f} "
            f"({time.perf_counter() - started:4.1f} s)")
    return results


def _timed(stat: Stat, fn: Any, *args: Any) -> Any:
    """Call ``fn(*args)`` once (its output silenced), add its CPU and wall time to ``stat``."""
    result: list[Any] = []
    with quiet():
        cpu, wall = time_both(lambda: result.append(fn(*args)))
    stat.times.append(cpu)
    stat.wall.append(wall)
    return result[0]


def _archdsl_command() -> list[str]:
    script = Path(sys.executable).parent / "archdsl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "archdsl"]


COLD_ENV = {"PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}


def _cold_commands(model: str) -> dict[str, list[str]]:
    py = sys.executable
    return {
        "python -c pass": [py, "-c", "pass"],
        "python -c 'import torch'": [py, "-c", "import torch"],
        f"archdsl report {model} --format json": _archdsl_command() + [
            "report", f"specs/{model}.yaml", "--format", "json"],
    }


def bench_cold(rounds: int, *, peer_rounds: int = 1, model: str = COLD_MODEL,
               tools: tuple[str, ...] = tuple(TOOLS), log: Any = print) -> dict[str, Stat]:
    """Whole-process times: archdsl report vs ``import torch`` vs each peer's one-shot run, every
    process reading bytecode (one untimed run of each command writes it first)."""
    commands = _cold_commands(model)
    per = {name: rounds for name in commands}
    for tool in tools:
        name = f"{tool} ({model}, cold)"
        commands[name] = [sys.executable, str(ROOT / "bench" / "peer_cli.py"), tool, model]
        per[name] = peer_rounds  # 10-30 times slower than archdsl: one round says enough
    with cold_env() as env:
        stats = cold(commands, per, env={**COLD_ENV, **env}, warmup=1)
    for name, stat in stats.items():
        log(f"  {name:<40} {stat.median:6.2f} s  (IQR {stat.spread * 100:.0f}%)")
    return stats


def bench_cold_no_bytecode(rounds: int, *, model: str = COLD_MODEL, log: Any = print) -> dict[str, Stat]:
    """The method before :func:`bench_cold` read bytecode: ``PYTHONDONTWRITEBYTECODE=1``, so
    archdsl's checkout is compiled from source in every process (torch reads its installed
    bytecode). Kept beside the new figure so that the report discloses both."""
    commands = {name: cmd for name, cmd in _cold_commands(model).items() if name != "python -c pass"}
    stats = cold(commands, rounds, env={**COLD_ENV, **NO_BYTECODE_ENV})
    for name, stat in stats.items():
        log(f"  {name + ' (no bytecode)':<40} {stat.median:6.2f} s  (IQR {stat.spread * 100:.0f}%)")
    return stats


def run(quick: bool = False, log: Any = print) -> dict[str, Any]:
    models = reference_models(QUICK_MODELS if quick else None)
    log(f"part 1: counting, {len(models)} models, in-process")
    in_process = bench_in_process(models, rounds=3 if quick else 7, peer_rounds=1 if quick else 2, log=log)
    log("part 1: counting, cold processes")
    cold_stats = bench_cold(1 if quick else 5, model="resnet18" if quick else COLD_MODEL,
                            tools=("torchinfo",) if quick else tuple(TOOLS), log=log)
    log("part 1: counting, cold processes without bytecode (the earlier method)")
    no_bytecode = bench_cold_no_bytecode(1 if quick else 5, model="resnet18" if quick else COLD_MODEL,
                                         log=log)
    return {"in_process": in_process, "cold": cold_stats, "cold_no_bytecode": no_bytecode,
            "cold_model": "resnet18" if quick else COLD_MODEL}
