"""Part 2: how analysis time and memory grow with the network.

Size is nodes + edges (every node input is an edge): a graph cannot be read in less. Growth is
reported as log-log slopes, over the whole family and between its two largest networks (the
marginal exponent, free of the fixed cost of reading the spec file).

Three families, each analysed from the spec (``archdsl.analyze(archdsl.load(...))``):

* ``resnet_cifar`` (the zoo spec) at depth 20, 56, 110 and 1202;
* a synthetic plain chain of conv/relu layers, up to 10,000 layers;
* a DenseNet-BC whose four dense blocks grow (``densenet121``'s 6/12/24/16 layers times m): nodes
  grow linearly in m, but every dense layer reads all earlier ones, so the concatenation inputs
  (edges) grow quadratically -- the case that shows whether any stage is worse than linear.

Time is the median of interleaved rounds; memory is the peak of what Python allocates while one
load + analysis runs (tracemalloc, on a separate untimed run).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from .common import SPECS, Stat, interleaved, peak_allocated

__all__ = ["cases", "chain_spec", "densenet_spec", "fit_loglog", "run"]


def chain_spec(layers: int) -> str:
    """A plain chain of ``layers`` layers: (conv 3x3, relu) repeated, on a 16x32x32 input."""
    return f"""\
name: chain{layers}
doc: a synthetic plain chain of {layers} layers (conv 3x3 + relu, repeated) for the scaling benchmark
input: [16, 32, 32]
network:
  - body: {{repeat: {layers // 2}, layer: [{{conv: {{out: 16, k: 3, pad: 1, bias: false}}}}, relu]}}
  - {{adaptive_avgpool: {{size: 1}}}}
  - flatten
  - fc: {{linear: {{out: 10}}}}
"""


def densenet_spec(mult: int) -> str:
    """densenet121 with every dense block ``mult`` times as long (the zoo's block library)."""
    blocks = [6 * mult, 12 * mult, 24 * mult, 16 * mult]
    lines = [f"name: densenet_x{mult}",
             f"doc: DenseNet-BC with dense blocks of {blocks} layers (scaling benchmark)",
             "input: [3, 224, 224]",
             "use: [lib/densenet.yaml]",
             "network:",
             "  - features:",
             "      - conv0: {conv: {out: 64, k: 7, stride: 2, pad: 3, bias: false}}",
             "      - norm0: bn",
             "      - relu0: relu",
             "      - pool0: {maxpool: {k: 3, stride: 2, pad: 1}}"]
    for i, n in enumerate(blocks, 1):
        lines.append(f"      - denseblock{i}: {{dense: {n}, block: dense_layer, args: {{growth: 32}}, "
                     f"name: \"denselayer{{i+1}}\"}}")
        if i < len(blocks):
            lines.append(f"      - transition{i}: transition")
    lines += ["      - norm5: bn", "  - relu", "  - {adaptive_avgpool: {size: 1}}", "  - flatten",
              "  - classifier: {linear: {out: 1000}}"]
    return "\n".join(lines) + "\n"


def cases(quick: bool, workdir: Path) -> list[dict[str, Any]]:
    """The networks to analyse: ``{family, label, size, spec, overrides, allow}``."""
    out: list[dict[str, Any]] = []
    for depth in ((20, 56, 110) if quick else (20, 56, 110, 1202)):
        out.append({"family": "resnet_cifar", "label": f"ResNet-{depth} (CIFAR)", "size": depth,
                    "spec": SPECS / "resnet_cifar.yaml", "overrides": {"depth": depth}})
    for layers in ((100, 1000) if quick else (100, 1000, 3000, 10_000)):
        path = workdir / f"chain{layers}.yaml"
        path.write_text(chain_spec(layers), encoding="utf-8")
        out.append({"family": "chain", "label": f"chain of {layers:,}", "size": layers, "spec": path,
                     "overrides": {}})
    for mult in ((1, 2) if quick else (1, 2, 4, 8)):
        path = workdir / f"densenet_x{mult}.yaml"
        path.write_text(densenet_spec(mult), encoding="utf-8")
        out.append({"family": "densenet", "label": f"DenseNet blocks x{mult}", "size": mult,
                    "spec": path, "overrides": {}})
    return out


def _lib(workdir: Path) -> None:
    """The DenseNet spec's ``use: [lib/densenet.yaml]`` resolves next to it: copy the library."""
    (workdir / "lib").mkdir(exist_ok=True)
    (workdir / "lib" / "densenet.yaml").write_text((SPECS / "lib" / "densenet.yaml").read_text("utf-8"),
                                                   encoding="utf-8")


def fit_loglog(xs: list[float], ys: list[float]) -> float | None:
    """The least-squares slope of log y against log x (1.0 = linear, 2.0 = quadratic)."""
    import math

    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x > 0 and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx else None


def run(quick: bool = False, log: Any = print) -> dict[str, Any]:
    import archdsl
    from archdsl.errors import ArchError

    log("part 2: scaling")
    rows = []
    with tempfile.TemporaryDirectory(prefix="archdsl-bench-") as tmp:
        workdir = Path(tmp)
        _lib(workdir)
        for case in cases(quick, workdir):
            spec, overrides = case["spec"], case["overrides"]

            def load(spec: Path = spec, overrides: dict = overrides) -> Any:
                return archdsl.load(spec, **overrides)

            try:
                graph = load()
            except ArchError as error:  # a spec being edited: say so, measure the others
                log(f"  {case['label']:<24} skipped: {error.render().splitlines()[0]}")
                continue
            big = len(graph) > 2000  # a second or more per round under load: fewer rounds
            stats = interleaved({"load": load, "analyze": lambda g=graph: archdsl.analyze(g)},
                                rounds=3 if quick or big else 5, min_time=0.0 if big else 0.02)
            stats["total"] = Stat("total", [a + b for a, b in zip(stats["load"].times,
                                                                  stats["analyze"].times)])
            memory, _ = peak_allocated(lambda: archdsl.analyze(load()))
            edges = graph.nx.number_of_edges()
            row = {"family": case["family"], "label": case["label"], "size": case["size"],
                   "nodes": len(graph) - 1, "edges": edges,
                   "load": stats["load"], "analyze": stats["analyze"], "total": stats["total"],
                   "peak_bytes": memory}
            rows.append(row)
            log(f"  {case['label']:<24} {row['nodes']:>6} nodes {edges:>7} edges  "
                f"load {stats['load'].median * 1e3:8.1f} ms  analyze {stats['analyze'].median * 1e3:8.1f} ms  "
                f"peak {memory / 2**20:6.1f} MiB  "
                f"({stats['total'].median / row['nodes'] * 1e6:5.1f} us/node)")
    slopes = {}
    for family in ("resnet_cifar", "chain", "densenet"):
        fam = sorted((r for r in rows if r["family"] == family), key=lambda r: r["nodes"])
        size = [r["nodes"] + r["edges"] for r in fam]
        slopes[family] = {
            "time_vs_nodes": fit_loglog([r["nodes"] for r in fam], [r["total"].median for r in fam]),
            "time_vs_size": fit_loglog(size, [r["total"].median for r in fam]),
            "memory_vs_size": fit_loglog(size, [r["peak_bytes"] for r in fam]),
            # the exponent between the two largest networks: what the growth tends to
            "marginal_time_vs_size": fit_loglog(size[-2:], [r["total"].median for r in fam[-2:]]),
        }
    return {"rows": rows, "slopes": slopes}
