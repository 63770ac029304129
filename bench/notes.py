"""The notes of BENCHMARKS.md: how it was measured and, for every goal not met, by how much and why.

The "why" is data from the same run: :mod:`bench.profiles` output collected by ``bench/run.py``
(``results["profiles"]``) for the goals it found unmet.
"""

from __future__ import annotations

from typing import Any

from .common import fmt_ratio, fmt_time

__all__ = ["METHOD", "text"]

METHOD = [
    ("**Method.** Every comparison is interleaved: each round times every case once, the order "
    "rotating from round to round, and the report gives the median (IQR in `latest.json`). A case "
    "too fast to time alone is repeated inside one timing (at least 50 ms) and reported per call."),
    ("**CPU time.** The figures are CPU time: `time.process_time()` in-process, user + system time "
    "(`getrusage`) for a child process. The machine is shared (see the load average above), so "
    "wall-clock time mostly measures the waits for a core; CPU time is what each piece of work "
    "costs, and it is what it would take on an idle core, since everything runs on one thread. "
    "Wall-clock medians of the same rounds are in `latest.json` (`wall_median`)."),
    ("**Threads.** PyTorch runs with one thread everywhere (the peers in part 1 too, and "
    "`OMP_NUM_THREADS=1` in their cold processes): on this shared 2-core machine a second "
    "OpenMP thread waiting for a descheduled core made a ResNet-50 forward 5-8 times slower and "
    "far noisier. One thread favours the peers (their forward passes get faster); archdsl's "
    "analysis never runs torch."),
    ("**Peers.** fvcore (`FlopCountAnalysis(model, x).total()` + `parameter_count`), ptflops "
    "(`get_model_complexity_info`), thop (`profile`) and torchinfo (`summary`), each as its README "
    "shows, output silenced. All run a forward pass on a 1 x C x H x W input; all report the same "
    "parameter count as archdsl; their MAC conventions differ (they also count batch norm, pooling "
    "or bias adds), which does not matter here: this compares time. They are warmed up once "
    "(first-call costs such as fvcore's JIT trace are not counted); so is archdsl."),
    ("**archdsl in-process** is `archdsl.analyze(archdsl.load(spec))` from the YAML file each time: "
     "read the spec and its libraries and compose the YAML (libyaml), validate the structure, "
     "parse, expand to the graph with every shape checked, lint, analyse. Nothing about a spec "
     "is kept between calls; only compiled expression trees are memoised by their text (as "
     "Python's `re` keeps compiled patterns) and the JSON-Schema validator is built once."),
    ("**Made faster for this issue** (each kept behaviour: the whole test suite passes): the "
     "YAML is read from libyaml's event stream straight into located values, with the "
     "pure-Python composer kept for every text that has a problem to report (YAML 10x faster; "
     "a tab or any surprise takes the old path); the JSON-Schema validator is built once instead "
     "of per file (it deep-copied the schema each time); compiled expressions are memoised by "
     "text; the cyclic garbage collector is paused while `load` and `analyze` build their "
     "objects (it rescanned the growing heap); pointwise layers "
     "skip the receptive-field arithmetic. Together 1.2x (densenet121, ResNet-1202) to 2.6x "
     "(resnet18: its block library is read whole) in CPU time."),
    ("**Per distinct block (issue 14, part 3).** The first use of a block with given arguments, "
     "input shape and the spec parameters it reads is expanded and checked; identical uses copy "
     "its nodes and scopes under their own names (a sweep keeps the bodies from point to point); "
     "the analysis asks each op's rules once per distinct (op, attributes, shapes) and sums scope "
     "totals bottom-up; the graph keeps its edges as each node's inputs and a readers table and "
     "builds its networkx view only when asked (no networkx import: about 90 ms of a cold start); "
     "`report` no longer imports the diagram module. A quadratic walk had crept into the training "
     "memory (the training nodes found again for every node: ResNet-1202's analysis took 8.6 s "
     "before this part, resnet152's 90 ms); it is linear again. Every figure is unchanged (the "
     "analysis of every zoo spec compared before and after, and tests/test_block_reuse.py "
     "compares each copy with a full expansion)."),
    ("**Records made when read (issue 14, part 3).** `analyze` computes every total, peak, "
     "receptive field, depth and the training memory, but makes the per-layer and per-scope records "
     "(`Analysis.nodes`, `scopes`, `tree`) only when a consumer first reads them (a per-layer "
     "report, JSON, draw, diff); the totals come from the op figures in one walk with the fields "
     "and depths, the live nodes in one reverse sweep, block arguments are memoised by their values, "
     "and a copied block's nodes are made without the dataclass `__init__`. ResNet-1202's "
     "`analyze` went from about 60 ms to 16 ms and its load from about 36 ms to 29 ms (in-process "
     "medians on this machine, same rounds as before); reading every record as well costs about "
     "what the whole analysis cost before. Every figure is unchanged (the analysis of every zoo "
     "and corpus spec, records included, compared before and after)."),
    ("**Cold start (issue 14).** The cold processes now read bytecode as an installed package "
     "does (a method change, disclosed in part 1 with the earlier method's figure beside it). "
     "Then three changes to a cold `archdsl report`: the console script `gc.freeze()`s the heap "
     "after the command, so the shutdown's collections skip it (about 11% of the process); the "
     "frame of a spec is checked by a walk of the frame schema that accepts a valid frame without "
     "importing jsonschema (anything it does not accept goes to jsonschema as before, so every "
     "diagnostic is unchanged; about 19%); the JSON report is charged to its byte budget every "
     "4,096 pieces instead of every piece (6% of `render_json`). Each figure is a paired ratio of "
     "interleaved rounds on this shared machine, from the commit that made the change."),
]


def _gap(measured: float, target: float) -> str:
    return f"{fmt_ratio(measured)} against {fmt_ratio(target)}: {fmt_ratio(target / measured)} short"


def text(res: dict[str, Any]) -> list[str]:
    from .markdown import GOAL_RUNTIME, GOAL_SPEEDUP, counting_rows, goals

    lines = [f"- {m}" for m in METHOD] + [""]
    profiles = res.get("profiles", {})
    for goal in goals(res):
        if goal["met"]:
            continue
        lines.append(f"### Not met: {goal['goal']}")
        lines.append("")
        if goal["goal"].startswith("in-process analysis") and "counting" in res:
            rows = sorted((r for r in counting_rows(res) if r["source"] == "torchvision"),
                          key=lambda r: r["speedup"])
            short = [r for r in rows if r["speedup"] < GOAL_SPEEDUP]
            lines.append(f"{len(short)} of {len(rows)} models are under {GOAL_SPEEDUP:.0f}x; "
                         + "; ".join(f"`{r['name']}` {_gap(r['speedup'], GOAL_SPEEDUP)} "
                                     f"({fmt_time(r['ours'])} vs {fmt_time(r['best_total'])})" for r in short[:8])
                         + ("; ..." if len(short) > 8 else "") + ".")
            lines.append("")
        if goal["goal"].startswith("generated code") and "runtime" in res:
            lines.append(f"The worst ratio is {goal['measured']} against a target of {GOAL_RUNTIME}.")
            lines.append("")
        for key, value in profiles.get(goal["goal"], {}).items():
            if key == "stages":
                parts = ", ".join(f"{k} {fmt_time(v)}" for k, v in value["times"].items())
                lines.append(f"Stage by stage (`{value['spec']}`, medians): {parts}.")
                lines.append("")
            elif key == "why":
                lines.append(value)
                lines.append("")
            else:
                lines += [f"<details><summary>{key}</summary>", "", "```", value, "```", "", "</details>", ""]
    return lines
