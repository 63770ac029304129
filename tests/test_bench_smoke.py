"""The benchmark harness runs (tiny cases, no timing assertions: timings are never tests).

The real run is ``python bench/run.py`` (BENCHMARKS.md); ``--quick`` is its smoke mode.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common, markdown, scaling
from bench.run import main, run_parts


def test_interleaved_times_every_case_every_round():
    calls = {"a": 0, "b": 0}

    def case(name):
        def fn():
            calls[name] += 1
        return fn

    stats = common.interleaved({"a": case("a"), "b": case("b")}, rounds=3, inner={"a": 2, "b": 1})
    assert [len(s.times) for s in stats.values()] == [3, 3]
    assert calls == {"a": 1 + 3 * 2, "b": 1 + 3}  # one warm-up call each, then the rounds
    s = common.Stat("x", [3.0, 1.0, 2.0, 10.0])
    assert s.median == 2.5 and s.min == 1.0 and s.q1 <= s.median <= s.q3


def test_cold_processes_read_bytecode_written_by_an_untimed_run(tmp_path):
    """cold_env: the module's .pyc lands in the prefix directory (the untimed run writes it), not
    beside the source; the earlier method (NO_BYTECODE_ENV) writes none."""
    (tmp_path / "tinymod.py").write_text("X = 1\n", encoding="utf-8")
    check = ("import os, sys, tinymod; sys.exit(int('PYTHONDONTWRITEBYTECODE' in os.environ) "
             "+ 2 * int(sys.pycache_prefix is None))")
    command = {"import tinymod": [sys.executable, "-c", check]}
    with common.cold_env() as env:
        stats = common.cold(command, 2, cwd=tmp_path, env=env, warmup=1)
        written = [p.name for p in Path(env["PYTHONPYCACHEPREFIX"]).rglob("tinymod*.pyc")]
    assert len(stats["import tinymod"].times) == 2  # the warm-up run is not timed
    assert len(written) == 1 and written[0].startswith("tinymod.")
    assert not (tmp_path / "__pycache__").exists()
    (tmp_path / "old.py").write_text("Y = 2\n", encoding="utf-8")
    common.cold({"import old": [sys.executable, "-c", "import old"]}, 1, cwd=tmp_path,
                env=common.NO_BYTECODE_ENV)
    assert not (tmp_path / "__pycache__").exists()
    with pytest.raises(RuntimeError, match="exited 3"):  # the variable set again, no prefix
        common.cold(command, 1, cwd=tmp_path, env=common.NO_BYTECODE_ENV)


def test_fit_loglog_reads_the_exponent():
    assert scaling.fit_loglog([10, 100, 1000], [1, 10, 100]) == pytest.approx(1.0)
    assert scaling.fit_loglog([10, 100], [1, 100]) == pytest.approx(2.0)


def test_synthetic_specs_load(tmp_path):
    import archdsl

    path = tmp_path / "chain.yaml"
    path.write_text(scaling.chain_spec(20), encoding="utf-8")
    assert len(archdsl.load(path)) - 1 == 20 + 3
    scaling._lib(tmp_path)
    path = tmp_path / "dense.yaml"
    path.write_text(scaling.densenet_spec(1), encoding="utf-8")
    assert archdsl.analyze(archdsl.load(path)).params == 7_978_856  # densenet121


def test_peer_tools_count_a_tiny_model():
    import torch
    from bench.peers import TOOLS, count

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 6 * 6, 10)).eval()
    for tool in TOOLS:
        params, macs = count(tool, model, (3, 8, 8))
        assert params == 112 + 1450, tool
        assert macs > 0, tool


def test_quick_parts_run_and_render(tmp_path):
    results = run_parts(("2", "4"), quick=True, threads=1, compile_budget=0, log=lambda *a: None)
    plain = common.as_plain(results)
    json.dumps(plain)
    text = markdown.render(plain, out=tmp_path / "BENCHMARKS.md", results_dir=tmp_path)
    assert "## 2. Scaling" in text and "## 4. Compile and draw the zoo" in text
    assert "| goal |" in text


def _stat(*times):
    return common.Stat("s", list(times)).as_dict()


def test_report_renders_every_part_from_results(tmp_path):
    """Parts 1 and 3 need torch and minutes: render them from made-up results instead."""
    tools = {t: {"count": _stat(0.2, 0.3), "total": 0.5, "params": 10, "macs": 20}
             for t in ("fvcore", "ptflops", "thop", "torchinfo")}
    pair = {"torchvision": _stat(0.2, 0.21), "archdsl": _stat(0.2, 0.2), "archdsl folded": _stat(0.18, 0.19)}
    res = {
        "machine": common.machine(), "quick": True, "wall_seconds": 1.0,
        "counting": {"in_process": {"resnet18": {
            "source": "torchvision", "input": [3, 224, 224],
            "archdsl": {"full": _stat(0.04, 0.05), "count": _stat(0.01), "params": 10, "macs": 20},
            "build": _stat(0.1), "tools": tools}},
            "cold": {"python -c pass": _stat(0.05), "python -c 'import torch'": _stat(1.5),
                     "archdsl report resnet18 --format json": _stat(0.3), "torchinfo (resnet18, cold)": _stat(3.0)},
            "cold_no_bytecode": {"python -c 'import torch'": _stat(1.4),
                                 "archdsl report resnet18 --format json": _stat(0.42)},
            "cold_model": "resnet18"},
        "runtime": {"batch": 2, "size": 64, "threads": 1, "models": {"mobilenet_v2": {
            "bn_total": 52, "bn_folded": 52, "max_abs_diff": 0.0, "rel_err_folded": 1e-7,
            "forward": pair, "train": {k: v for k, v in pair.items() if k != "archdsl folded"},
            "compiled": {"skipped": "time budget (--compile-budget)"}}}},
        "profiles": {},
    }
    text = markdown.render(res, out=tmp_path / "BENCHMARKS.md", results_dir=tmp_path)
    assert "## 1. Parameters and MACs" in text and "## 3. Generated code vs torchvision" in text
    goals = {g["goal"]: g["met"] for g in markdown.goals(res)}
    assert any(k.startswith("in-process analysis") for k in goals)
    assert "Not met: in-process analysis" in text  # 100x is not met by these made-up numbers
    # both cold methods are disclosed: 0.3 / 1.5 with bytecode, 0.42 / 1.4 without
    cold = next(g for g in markdown.goals(res) if g["goal"].startswith("cold"))
    assert "(0.200x;" in cold["measured"] and "(the earlier method) 420 ms vs 1.40 s (0.300x)" in cold["measured"]
    assert "Without bytecode `archdsl report` takes 0.300x of `import torch`." in text


def test_sweep_part_renders_and_update_keeps_the_other_parts(tmp_path):
    from bench.run import _merged

    sweep = {"machine": {**common.machine(), "date": "2026-12-01 05:00 UTC"}, "spec": "resnet_cifar.yaml",
             "grid": ["depth=20:74:6"], "sample_step": 13, "points": 1000, "valid": 1000, "sample": 77,
             "nodes": [71, 233], "command": "archdsl sweep specs/resnet_cifar.yaml --grid depth=20:74:6",
             "cases": {"sweep": _stat(12.0, 12.5), "sample: sweep path": _stat(0.5, 0.6),
                       "sample: load + analyze": _stat(1.0, 1.2), "sample: ptflops": _stat(2.0, 1.8)},
             "cold": _stat(13.0)}
    old = {"machine": common.machine(), "quick": False, "wall_seconds": 60.0, "parts": ["4"],
           "zoo": {"specs": {}, "graphviz": False}, "profiles": {"some goal": {"why": "kept"}}}
    (tmp_path / "latest.json").write_text(json.dumps(old), encoding="utf-8")
    res = _merged(tmp_path / "latest.json", {"machine": sweep["machine"], "sweep": sweep}, ("5",))
    assert res["zoo"] == old["zoo"] and res["sweep"] == sweep and res["parts"] == ["4", "5"]
    assert res["updated"] == {"sweep": "2026-12-01 05:00 UTC"} and res["profiles"] == old["profiles"]
    text = markdown.render(res, out=tmp_path / "BENCHMARKS.md", results_dir=tmp_path)
    assert "## 5. Sweeps" in text and "## 4. Compile and draw the zoo" in text
    # per round: 2.0 / 0.5 and 1.8 / 0.6, median 3.5
    assert "| `sample: ptflops` | 77 | 1.90 s | 24.7 ms | 3.50x |" in text
    assert "Measured separately (2026-12-01 05:00 UTC" in text
    # the header says which sections a later run measured, at which commit and under which load
    assert ("The `sweep` section was measured again later: 2026-12-01 05:00 UTC, commit "
            f"{sweep['machine']['git'] or 'n/a'}, load average") in text
    assert "(`python bench/run.py --parts 5 --update`)." in text
    goal = next(g for g in markdown.goals(res) if g["goal"].startswith("a sweep of 1,000 points"))
    assert not goal["met"] and "12.25 s" in goal["measured"]  # 12.25 s is over the 10 s goal


def test_run_rejects_unknown_parts():
    with pytest.raises(SystemExit):
        main(["--parts", "9"])
