"""Part 4: compile (code generation) and draw time for every spec of the zoo.

Per spec, in-process: ``load`` (spec to checked graph), ``compile`` (graph to PyTorch source,
:func:`archdsl.codegen.compile_graph`), ``draw`` (graph to Graphviz DOT,
:func:`archdsl.draw.draw_graph`, the analysis whose figures it shows included), medians of
interleaved rounds; and ``render``, Graphviz's own ``dot -Tsvg`` on that DOT (a subprocess:
Graphviz's time, not archdsl's), timed once per round.

Then (not with ``--quick``: the full layout alone takes tens of seconds) Graphviz's time on a valid
network that is hard to lay out, ``tests/corpus/draw/long_skips.yaml`` (300 layers, many long skip
connections): ``archdsl draw``'s full layout against ``--layout fast``, interleaved.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from .common import ROOT, SPECS, interleaved

__all__ = ["run", "zoo_specs"]

QUICK_SPECS = ("resnet18", "googlenet", "mobilenet_v2")
LAYOUT_SPEC = ROOT / "tests" / "corpus" / "draw" / "long_skips.yaml"


def zoo_specs(names: tuple[str, ...] | None = None) -> list[str]:
    return [p.stem for p in sorted(SPECS.glob("*.yaml")) if names is None or p.stem in names]


def run(quick: bool = False, log: Any = print) -> dict[str, Any]:
    import shutil

    import archdsl
    from archdsl.codegen import compile_graph
    from archdsl.draw import draw_graph, render_bytes
    from archdsl.errors import ArchError

    names = zoo_specs(QUICK_SPECS if quick else None)
    rounds = 1 if quick else 3
    log(f"part 4: compile and draw, {len(names)} specs")
    rows: dict[str, Any] = {}
    has_dot = shutil.which("dot") is not None
    for name in names:
        path = SPECS / f"{name}.yaml"
        try:
            graph = archdsl.load(path)
        except ArchError as error:  # a spec being edited: say so, measure the others
            rows[name] = {"error": error.render().splitlines()[0]}
            log(f"  {name:<22} skipped: {rows[name]['error']}")
            continue
        dot = draw_graph(graph)
        cases = {"load": partial(archdsl.load, path),
                 "compile": partial(compile_graph, graph),
                 "draw": partial(draw_graph, graph)}
        if has_dot:
            cases["render"] = partial(render_bytes, dot, "svg")
        stats = interleaved(cases, rounds, min_time=0.0,
                            inner={"render": 1} if has_dot else None)
        source = compile_graph(graph)
        rows[name] = {"nodes": len(graph) - 1, "source_lines": source.count("\n"), **stats}
        log(f"  {name:<22} {rows[name]['nodes']:>5} nodes  load {stats['load'].median * 1e3:6.1f} ms  "
            f"compile {stats['compile'].median * 1e3:6.1f} ms  draw {stats['draw'].median * 1e3:6.1f} ms"
            + (f"  dot -Tsvg {stats['render'].median * 1e3:7.1f} ms" if has_dot else ""))
    out: dict[str, Any] = {"specs": rows, "graphviz": has_dot}
    if has_dot and not quick:
        out["layout"] = layout(log)
    return out


def layout(log: Any = print, rounds: int = 2) -> dict[str, Any]:
    """``dot -Tsvg`` of :data:`LAYOUT_SPEC`'s diagram: full layout and ``--layout fast``."""
    import archdsl
    from archdsl.draw import LAYOUTS, build_view, render_bytes, to_dot

    graph = archdsl.load(LAYOUT_SPEC)
    view = build_view(graph)
    cases = {mode: partial(render_bytes, to_dot(build_view(graph, layout=mode)), "svg", timeout=None)
             for mode in LAYOUTS}
    stats = interleaved(cases, rounds, warmup=0, inner=dict.fromkeys(cases, 1))
    log(f"  layout of {LAYOUT_SPEC.name} ({len(view.boxes())} boxes, {len(view.edges)} edges): "
        + ", ".join(f"{mode} {stats[mode].median:.2f} s" for mode in LAYOUTS))
    return {"spec": LAYOUT_SPEC.relative_to(ROOT).as_posix(), "boxes": len(view.boxes()),
            "edges": len(view.edges), **stats}
