"""Run archdsl's benchmarks and write BENCHMARKS.md: ``python bench/run.py``.

    python bench/run.py                  # everything (about 10-15 minutes on 2 cores), BENCHMARKS.md
    python bench/run.py --quick          # a smoke run (about a minute), to bench/results/quick/
    python bench/run.py --parts 1,2      # only some parts (the others are left out of the report)
    python bench/run.py --render         # no measuring: the report again from bench/results/latest.json
    python bench/run.py --parts 5 --update   # measure part 5 again, keep the others' last results

Parts: 1 counting vs fvcore/ptflops/thop/torchinfo (in-process and cold processes), 2 scaling,
3 generated code vs torchvision (eager, training, folded, torch.compile), 4 compile and draw time
of the zoo, 5 `archdsl sweep` (1,000 points of resnet_cifar) against loading each point and the
peers. Raw results go to ``bench/results/latest.json`` (all timings of every round), plots
to ``bench/results/*.png``. Timings are measurements, never pass/fail.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and `archdsl` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

__all__ = ["main", "run_parts"]

PARTS = ("1", "2", "3", "4", "5")
RESULT_KEYS = {"1": "counting", "2": "scaling", "3": "runtime", "4": "zoo", "5": "sweep"}


def run_parts(parts: tuple[str, ...], *, quick: bool, threads: int, compile_budget: float,
              log=print) -> dict:
    """Run the chosen parts; the results as one dict (Stats included, not yet JSON)."""
    results: dict = {"machine": common.machine(), "quick": quick, "parts": list(parts)}
    started = time.perf_counter()
    if "1" in parts:
        from bench import counting

        results["counting"] = counting.run(quick, log=log)
    if "2" in parts:
        from bench import scaling

        results["scaling"] = scaling.run(quick, log=log)
    if "3" in parts:
        from bench import runtime

        results["runtime"] = runtime.run(quick, threads=threads, compile_budget=compile_budget, log=log)
    if "4" in parts:
        from bench import zoo

        results["zoo"] = zoo.run(quick, log=log)
    if "5" in parts:
        from bench import sweep

        results["sweep"] = sweep.run(quick, log=log)
    results["machine"]["load_average_end"] = common.load_average()
    results["wall_seconds"] = time.perf_counter() - started
    return results


def profile_unmet(res: dict, *, threads: int, quick: bool, log=print) -> dict:
    """For each goal the run did not meet: the profiles that say where the time goes."""
    from bench import markdown, profiles

    out: dict = {}
    for goal in markdown.goals(res):
        if goal["met"]:
            continue
        name = goal["goal"]
        log(f"profiling: {name}")
        if name.startswith("in-process analysis"):
            spec = common.SPECS / f"{goal['worst']}.yaml"
            row = res["counting"]["in_process"][goal["worst"]]
            best = min(row["tools"], key=lambda t: row["tools"][t]["total"])
            times = profiles.stages(spec)
            out[name] = {
                "stages": {"spec": spec.name, "times": times},
                "why": _why_counting(res, goal["worst"], times, row, best),
                "cProfile of archdsl": profiles.analysis_profile(spec, repeat=5 if quick else 20),
            }
        elif name.startswith("ResNet-1202"):
            spec = common.SPECS / "resnet_cifar.yaml"
            times = profiles.stages(spec, rounds=3, depth=1202)
            out[name] = {"stages": {"spec": "resnet_cifar.yaml --set depth=1202", "times": times},
                         "why": _why_1202(res, times),
                         "cProfile of archdsl": profiles.analysis_profile(spec, repeat=2, depth=1202)}
        elif name.startswith("a sweep of"):
            from bench import sweep

            out[name] = {"cProfile of archdsl": sweep.sweep_profile(quick)}
        elif name.startswith("generated code"):
            model = goal["worst"][0]
            rt = res["runtime"]
            out[name] = {"torch.profiler": profiles.runtime_profile(model, rt["batch"], rt["size"],
                                                                    rt["threads"])}
    return out


def _why_1202(res: dict, times: dict) -> str:
    """Why ResNet-1202 still takes more than 50 ms, from the run's own numbers."""
    row = next(r for r in res["scaling"]["rows"] if r["family"] == "resnet_cifar" and r["size"] == 1202)
    total = row["total"]["median"]
    return (
        f"ResNet-1202 has {row['nodes']:,} nodes in {row['block_uses']:,} block uses, "
        f"{row['distinct_blocks']:,} of them distinct: the expander expands and checks those and "
        "copies the others, the analysis asks each op's rules once per distinct node and makes the "
        "per-layer records only when they are read. But every node is still made (its `Node`, a "
        "copy of the first use's) and walked by each pass of the analysis (figures, fields and "
        "totals; the training storages; the inference and training peaks): "
        f"{common.fmt_time(total / row['nodes'])} per node, "
        + ", ".join(f"{k} {v / sum(times.values()):.0%}" for k, v in times.items())
        + ". Going further needs the totals, peaks and fields composed per distinct block (a copy's "
        "figures from its first use's, shifted by its input's depth and field) and the copies' "
        "nodes made only when a consumer walks them: the next step of issue 14's design notes.")


def _why_counting(res: dict, worst: str, times: dict, row: dict, best: str) -> str:
    """Why archdsl is not 100 times faster everywhere, from the run's own numbers."""
    total = sum(times.values())
    rows = [(name, r) for name, r in res["counting"]["in_process"].items()
            if "error" not in r and r["source"] == "torchvision"]

    def per_node(r: dict) -> float:
        return r["archdsl"]["full"]["median"] / r["archdsl"]["nodes"]

    def speedup(r: dict) -> float:
        return min(t["total"] for t in r["tools"].values()) / r["archdsl"]["full"]["median"]

    by_weight = sorted(rows, key=lambda nr: nr[1]["archdsl"]["params"] / nr[1]["archdsl"]["nodes"])
    light, heavy = by_weight[0], by_weight[-1]
    costs = sorted(per_node(r) for _, r in rows)
    mid = costs[len(costs) // 2]
    return (
        f"On `{worst}` archdsl needs {common.fmt_time(total)}: "
        + ", ".join(f"{k} {v / total:.0%}" for k, v in times.items())
        + f". The fastest peer needs {common.fmt_time(row['build']['median'])} to build the model and "
        f"{common.fmt_time(row['tools'][best]['count']['median'])} to count it ({best}). archdsl's cost "
        f"is per node of the graph (a median of {common.fmt_time(mid)} per node over these models, "
        "spent in pure Python across every stage: no single hot spot, see the profile), while the "
        "peers' cost is per parameter and per multiply-accumulate: building the "
        "weights and running one forward pass. So the speed-up follows the weight per node: "
        f"`{heavy[0]}` ({heavy[1]['archdsl']['params'] / heavy[1]['archdsl']['nodes'] / 1e6:.1f}M "
        f"parameters per node) {common.fmt_ratio(speedup(heavy[1]))}, `{light[0]}` "
        f"({light[1]['archdsl']['params'] / light[1]['archdsl']['nodes'] / 1e3:.0f}k per node) "
        f"{common.fmt_ratio(speedup(light[1]))}. 100x on a light network would need a few "
        "microseconds per node, about a tenth of what parsing, shape checking and the analysis "
        "cost in Python today.")


def _merged(path: Path, new: dict, parts: tuple[str, ...]) -> dict:
    """The last run's results with the parts just measured replaced (``--update``)."""
    if not path.exists():
        return new
    old = json.loads(path.read_text(encoding="utf-8"))
    merged = {**old, **{RESULT_KEYS[p]: new[RESULT_KEYS[p]] for p in parts}}
    merged["parts"] = sorted(set(old.get("parts", [])) | set(parts))
    merged["updated"] = {**old.get("updated", {}),
                         **{RESULT_KEYS[p]: new["machine"]["date"] for p in parts}}
    m = new["machine"]
    run = {"date": m["date"], "git": m["git"], "load_average_start": m["load_average_start"],
           "load_average_end": m.get("load_average_end"), "wall_seconds": new.get("wall_seconds"),
           "command": f"python bench/run.py --parts {','.join(parts)} --update"}
    merged["updated_runs"] = {**old.get("updated_runs", {}), **{RESULT_KEYS[p]: run for p in parts}}
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/run.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: few models, one round each")
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated parts to run (1-5)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for part 3 (default 1: steady on a shared machine)")
    parser.add_argument("--compile-budget", type=float, default=240.0, metavar="SECONDS",
                        help="wall time allowed for the torch.compile section of part 3")
    parser.add_argument("--out", type=Path, default=None,
                        help="the report to write (default BENCHMARKS.md; with --quick, "
                             "bench/results/quick/BENCHMARKS.md)")
    parser.add_argument("--render", action="store_true",
                        help="measure nothing: write the report again from the results of the last "
                             "run (latest.json next to it), e.g. after changing its wording")
    parser.add_argument("--update", action="store_true",
                        help="with --parts: keep the other parts' results from the last run "
                             "(latest.json) in the report; each part records when it was measured")
    args = parser.parse_args(argv)
    parts = tuple(p.strip() for p in args.parts.split(",") if p.strip())
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    out = args.out or (common.ROOT / "bench" / "results" / "quick" / "BENCHMARKS.md" if args.quick
                       else common.ROOT / "BENCHMARKS.md")
    results_dir = out.parent / "bench" / "results" if out.parent == common.ROOT else out.parent
    results_dir.mkdir(parents=True, exist_ok=True)

    from archdsl.util import write_atomic
    from bench import markdown

    if args.render:
        plain = json.loads((results_dir / "latest.json").read_text(encoding="utf-8"))
    else:
        results = run_parts(parts, quick=args.quick, threads=args.threads,
                            compile_budget=args.compile_budget)
        plain = common.as_plain(results)
        profiles = profile_unmet(plain, threads=args.threads, quick=args.quick)
        if args.update:  # the goals of the parts kept from the last run keep their profiles
            plain = _merged(results_dir / "latest.json", plain, parts)
            profiles = {**plain.get("profiles", {}), **profiles}
        plain["profiles"] = profiles
        write_atomic(results_dir / "latest.json", json.dumps(plain, indent=1) + "\n")
    text = markdown.render(plain, out=out, results_dir=results_dir)
    write_atomic(out, text)
    print(f"\nwrote {out} ({results_dir / 'latest.json'}: a run of {plain['wall_seconds'] / 60:.1f} min)")
    print(markdown.summary_text(plain))
    return 0


if __name__ == "__main__":
    sys.exit(main())
