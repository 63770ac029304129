"""Part 5: ``archdsl sweep`` -- 1,000 points of resnet_cifar, and the same points counted per model.

The grid is depth 20..74 (step 6) x width 8..80 (step 8) x num_classes 10..100 (step 10):
10 x 10 x 10 = 1,000 valid points, ResNet-20 to ResNet-74 at 8 to 80 first-stage filters.

* **sweep**: what ``archdsl sweep`` does in-process -- parse the spec once, check the grid, then
  expand and analyse every point (:func:`archdsl.sweep.run_sweep`); the goal reads this one;
* on a **sample** of the grid (every 13th point, all three axes mixed), per point:
  the sweep's own per-point path (``instantiate`` + ``analyze``, block bodies kept from point to
  point as ``run_sweep`` keeps them) and its two halves alone
  (where the time goes: expanding and checking, analysing), ``analyze(load(spec, ...))``
  (re-reading the spec every time), and the fastest peers of part 1 on ``resnet_cifar``
  (ptflops, thop), each building the PyTorch reference (``tests/reference_models.CifarResNet``
  at that depth, width and class count) and counting it;
* the whole command line once, as a user runs it (``archdsl sweep ... --format csv``).

All interleaved (:func:`bench.common.interleaved`), CPU time, medians.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import sys
from typing import Any

from .common import ROOT, SPECS, Stat, cold, cold_env, interleaved, machine
from .peers import count

__all__ = ["GRID", "per_point", "run", "sweep_profile"]

SPEC = SPECS / "resnet_cifar.yaml"
GRID = ("depth=20:74:6", "width=8:80:8", "num_classes=10:100:10")
QUICK_GRID = ("depth=20:32:6", "width=8:16:8", "num_classes=10:20:10")
SAMPLE_STEP = 13
PEERS = ("ptflops", "thop")
SHAPE = (3, 32, 32)


def _grid_points(grid: tuple[str, ...]) -> tuple[Any, list[dict[str, Any]]]:
    """The parsed spec and every point's values, in the sweep's order."""
    import itertools

    from archdsl.pipeline import parse
    from archdsl.sweep import make_axes

    spec = parse(SPEC)
    axes = make_axes(spec, grid, {})
    points = [dict(zip((a.name for a in axes), combo, strict=True))
              for combo in itertools.product(*(a.values for a in axes))]
    return spec, points


def _reference(values: dict[str, Any]) -> Any:
    sys.path.insert(0, str(ROOT))
    try:
        from tests.reference_models import CifarResNet
    finally:
        sys.path.remove(str(ROOT))
    return CifarResNet(values["depth"], num_classes=values["num_classes"], width=values["width"]).eval()


def run(quick: bool = False, log: Any = print) -> dict[str, Any]:
    import torch

    import archdsl
    from archdsl.analysis import analyze
    from archdsl.pipeline import instantiate, parse, resolve_params
    from archdsl.report import summary_record
    from archdsl.sweep import make_axes, run_sweep

    log("part 5: sweep")
    torch.set_num_threads(1)
    grid = QUICK_GRID if quick else GRID
    spec, points = _grid_points(grid)
    sample = points[::SAMPLE_STEP] if not quick else points[:3]

    def sweep() -> Any:
        parsed = parse(SPEC)
        return run_sweep(parsed, make_axes(parsed, grid, {}))

    def sweep_path() -> None:
        bodies: dict = {}
        for values in sample:
            graph = instantiate(spec, resolve_params(spec, values), smallest_input_hint=False,
                                block_cache=bodies)
            summary_record(analyze(graph))

    graphs = [instantiate(spec, resolve_params(spec, values), smallest_input_hint=False)
              for values in sample]

    def expand_only() -> None:
        bodies: dict = {}
        for values in sample:
            instantiate(spec, resolve_params(spec, values), smallest_input_hint=False,
                        block_cache=bodies)

    def analyze_only() -> None:
        for graph in graphs:
            summary_record(analyze(graph))

    def load_each() -> None:
        for values in sample:
            archdsl.analyze(archdsl.load(SPEC, **values))

    def peer(tool: str) -> Any:
        def counted() -> None:
            for values in sample:
                count(tool, _reference(values), SHAPE)
        return counted

    first = sweep()
    valid = len(first.valid)
    cases = {"sweep": sweep, "sample: sweep path": sweep_path,
             "sample: expand + check": expand_only, "sample: analyze": analyze_only,
             "sample: load + analyze": load_each}
    cases.update({f"sample: {tool}": peer(tool) for tool in PEERS})
    stats = interleaved(cases, rounds=1 if quick else 3, warmup=1)
    for name, stat in stats.items():
        n = len(points) if name == "sweep" else len(sample)
        log(f"  {name:<24} {stat.median:8.3f} s  ({stat.median / n * 1e3:6.2f} ms per point, "
            f"{n} points)")
    command = [sys.executable, "-m", "archdsl", "sweep", str(SPEC.relative_to(ROOT)),
               *[arg for g in grid for arg in ("--grid", g)], "--format", "csv"]
    with cold_env() as env:  # bytecode read as installed, as part 1's cold commands
        cli = cold({"archdsl sweep (cold)": command}, 1, env=env, warmup=1)
    log(f"  {'archdsl sweep (cold)':<24} {cli['archdsl sweep (cold)'].median:8.3f} s")
    nodes = [len(archdsl.load(SPEC, **p)) - 1 for p in (points[0], points[-1])]
    return {"machine": machine(), "spec": SPEC.name, "grid": list(grid), "sample_step": SAMPLE_STEP,
            "points": len(points), "valid": valid,
            "sample": len(sample), "nodes": nodes, "command": " ".join(["archdsl", *command[3:]]),
            "cases": stats, "cold": cli["archdsl sweep (cold)"]}


def per_point(res: dict[str, Any], name: str) -> float:
    """Median CPU seconds per point of one case."""
    n = res["points"] if name == "sweep" else res["sample"]
    stat = res["cases"][name]
    return (stat.median if isinstance(stat, Stat) else stat["median"]) / n


def sweep_profile(quick: bool = False, top: int = 15) -> str:
    """Where a sweep spends its time: cProfile of the sample's points, sorted by own time."""
    from archdsl.pipeline import parse
    from archdsl.sweep import make_axes, run_sweep

    spec = parse(SPEC)
    axes = make_axes(spec, ("depth=20:74:18", "width=8:80:24", "num_classes=10,100"), {})
    profile = cProfile.Profile()
    profile.enable()
    result = run_sweep(spec, axes)
    profile.disable()
    out = io.StringIO()
    pstats.Stats(profile, stream=out).strip_dirs().sort_stats("tottime").print_stats(top)
    text = out.getvalue()
    return (f"cProfile of a sweep of {len(result.points)} points of resnet_cifar, by own time:\n\n"
            + text[text.find("   ncalls"):].rstrip())
