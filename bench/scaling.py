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

Per distinct block (issue 14, part 3): each row also counts the block uses and the distinct ones
(block, arguments, input shape: what the expander expands once and copies after), and for the
ResNets and the DenseNets up to ``PEER_MAX_MACS`` the fastest of the peers ``PEERS`` is timed in
the same rounds on the PyTorch reference (``tests/reference_models.CifarResNet`` at that depth;
torchvision's ``DenseNet`` with the lengthened blocks), model construction included.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from .common import ROOT, SPECS, Stat, interleaved, peak_allocated
from .peers import count

__all__ = ["cases", "chain_spec", "densenet_spec", "distinct_blocks", "fit_loglog", "run"]

PEERS = ("ptflops", "thop")  # the fastest on these families in part 1
PEER_MAX_MACS = 10e9  # larger references take seconds per forward pass: not timed


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
                    "spec": SPECS / "resnet_cifar.yaml", "overrides": {"depth": depth},
                    "reference": ("resnet_cifar", depth), "shape": (3, 32, 32)})
    for layers in ((100, 1000) if quick else (100, 1000, 3000, 10_000)):
        path = workdir / f"chain{layers}.yaml"
        path.write_text(chain_spec(layers), encoding="utf-8")
        out.append({"family": "chain", "label": f"chain of {layers:,}", "size": layers, "spec": path,
                     "overrides": {}})
    for mult in ((1, 2) if quick else (1, 2, 4, 8)):
        path = workdir / f"densenet_x{mult}.yaml"
        path.write_text(densenet_spec(mult), encoding="utf-8")
        out.append({"family": "densenet", "label": f"DenseNet blocks x{mult}", "size": mult,
                    "spec": path, "overrides": {}, "reference": ("densenet", mult),
                    "shape": (3, 224, 224)})
    return out


def _lib(workdir: Path) -> None:
    """The DenseNet spec's ``use: [lib/densenet.yaml]`` resolves next to it: copy the library."""
    (workdir / "lib").mkdir(exist_ok=True)
    (workdir / "lib" / "densenet.yaml").write_text((SPECS / "lib" / "densenet.yaml").read_text("utf-8"),
                                                   encoding="utf-8")


def distinct_blocks(graph: Any) -> tuple[int, int]:
    """(block uses, distinct ones): uses of one block with equal arguments and input shape are
    expanded once and copied (the parameters and enclosing repeats are the same in one graph)."""
    uses = [s for s in graph.scopes.values() if s.kind == "block"]
    return len(uses), len({(s.block, repr(sorted(s.args.items())), s.in_shape) for s in uses})


def _reference(kind: str, size: int) -> Any:
    """The PyTorch model a peer counts: built inside the timing (construction included)."""
    if kind == "resnet_cifar":
        sys.path.insert(0, str(ROOT))
        try:
            from tests.reference_models import CifarResNet
        finally:
            sys.path.remove(str(ROOT))
        return CifarResNet(size).eval()
    from torchvision.models import DenseNet

    return DenseNet(growth_rate=32, block_config=(6 * size, 12 * size, 24 * size, 16 * size),
                    num_init_features=64).eval()


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
            timed = {"load": load, "analyze": lambda g=graph: archdsl.analyze(g)}
            peers = ()
            if "reference" in case and archdsl.analyze(graph).macs <= PEER_MAX_MACS:
                import torch

                torch.set_num_threads(1)
                peers = PEERS
                for tool in peers:
                    def counted(tool: str = tool, ref: tuple = case["reference"],
                                shape: tuple = case["shape"]) -> Any:
                        return count(tool, _reference(*ref), shape)
                    timed[tool] = counted
            stats = interleaved(timed, rounds=3 if quick or big else 5,
                                min_time=0.0 if big else 0.02, inner={tool: 1 for tool in peers})
            stats["total"] = Stat("total", [a + b for a, b in zip(stats["load"].times,
                                                                  stats["analyze"].times)])
            memory, _ = peak_allocated(lambda: archdsl.analyze(load()))
            edges = graph.nx.number_of_edges()
            uses, distinct = distinct_blocks(graph)
            row = {"family": case["family"], "label": case["label"], "size": case["size"],
                   "nodes": len(graph) - 1, "edges": edges, "block_uses": uses,
                   "distinct_blocks": distinct,
                   "load": stats["load"], "analyze": stats["analyze"], "total": stats["total"],
                   "peak_bytes": memory, "peers": {tool: stats[tool] for tool in peers}}
            rows.append(row)
            log(f"  {case['label']:<24} {row['nodes']:>6} nodes {edges:>7} edges  "
                f"load {stats['load'].median * 1e3:8.1f} ms  analyze {stats['analyze'].median * 1e3:8.1f} ms  "
                f"peak {memory / 2**20:6.1f} MiB  "
                f"({stats['total'].median / row['nodes'] * 1e6:5.1f} us/node)  "
                f"blocks {uses}/{distinct} distinct"
                + "".join(f"  {tool} {stats[tool].median * 1e3:.1f} ms" for tool in peers))
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
