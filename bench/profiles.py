"""Profiles for the goals a run does not meet, so that the report says where the time goes.

* :func:`stages` -- archdsl's pipeline stage by stage (parse, expand, lint, analyze) for one spec;
* :func:`analysis_profile` -- cProfile of ``analyze(load(spec))``, the functions that cost most;
* :func:`runtime_profile` -- torch.profiler's operator table for torchvision's and archdsl's module.
"""

from __future__ import annotations

import cProfile
import io
import pstats
from pathlib import Path
from typing import Any

from .common import SPECS, interleaved

__all__ = ["analysis_profile", "runtime_profile", "stages"]


def stages(spec: Path, rounds: int = 5, **overrides: Any) -> dict[str, float]:
    """Median seconds of each front-end stage and of the analysis, for one spec."""
    import archdsl
    from archdsl import pipeline
    from archdsl.expand import DEFAULT_MAX_NODES, expand

    parsed = pipeline.parse(spec)
    params = pipeline.resolve_params(parsed, overrides)
    shape = archdsl.load(spec, **overrides).input_shape
    graph = expand(parsed, params, shape, DEFAULT_MAX_NODES)
    stats = interleaved({"parse": lambda: pipeline.parse(spec),
                         "expand": lambda: expand(parsed, params, shape, DEFAULT_MAX_NODES),
                         "lint": graph.lint,
                         "analyze": lambda: archdsl.analyze(graph)}, rounds, min_time=0.02)
    return {k: v.median for k, v in stats.items()}


def analysis_profile(spec: Path, *, repeat: int = 20, top: int = 15, **overrides: Any) -> str:
    """The functions where ``analyze(load(spec))`` spends its time (cProfile, cumulative and own)."""
    import archdsl

    archdsl.analyze(archdsl.load(spec, **overrides))
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(repeat):
        archdsl.analyze(archdsl.load(spec, **overrides))
    profile.disable()
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    text = out.getvalue()
    start = text.find("   ncalls")
    return f"cProfile, {repeat} x analyze(load({spec.name})), sorted by own time:\n\n" + text[start:].rstrip()


def runtime_profile(name: str, batch: int, size: int, threads: int, top: int = 12) -> str:
    """torch.profiler's top operators (self CPU time) of one forward, torchvision vs archdsl."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from .runtime import prepare

    torch.set_num_threads(threads)
    models = prepare(name)
    x = torch.randn(batch, 3, size, size)
    parts = []
    with torch.no_grad():
        for which in ("torchvision", "archdsl"):
            model = models[which]
            model(x)
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for _ in range(3):
                    model(x)
            table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top)
            parts.append(f"{which} ({name}, 3 forwards, batch {batch} x 3 x {size} x {size}):\n\n{table}")
    return "\n\n".join(parts)


def _spec(name: str) -> Path:
    return SPECS / f"{name}.yaml"
