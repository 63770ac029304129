"""Identical inputs give byte-identical outputs, whatever the hash seed.

One subprocess per ``PYTHONHASHSEED`` runs every output-producing command (``check``, ``schema``,
``ops``, ``report``, ``compile``, ``draw``) in-process and writes what each printed
and wrote into its own directory; the directories must be equal byte for byte. Set iteration order,
dict order built from sets, and anything else that depends on hashing would show up here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
CORPUS = Path(__file__).resolve().parent / "corpus"
SEEDS = ("0", "1", "2")


def _spec(name: str) -> str:
    path = SPECS / name
    assert path.exists(), f"the zoo has no {name}"
    return str(path)


def commands() -> list[tuple[str, list[str]]]:
    """(name, argv) of every run; output files are relative to the run's directory."""
    googlenet, resnet18 = _spec("googlenet.yaml"), _spec("resnet18.yaml")
    return [
        ("check", ["check", resnet18, googlenet]),
        ("check-aux", ["check", googlenet, "--set", "aux_logits=true"]),
        ("check-errors", ["check", str(CORPUS / "bad" / "unknown_top_key.yaml"),
                          str(CORPUS / "bad" / "dead_branch.yaml"),
                          str(CORPUS / "bad" / "add_mismatch.yaml")]),
        ("schema", ["schema"]),
        ("schema-file", ["schema", "-o", "schema.json"]),
        ("ops", ["ops"]),
        ("report-json", ["report", googlenet, "--format", "json"]),
        ("report-md", ["report", resnet18, googlenet, "--format", "md"]),
        ("report-file", ["report", googlenet, "--per", "block", "-o", "report.html"]),
        ("compile", ["compile", googlenet, "-o", "googlenet.py", "--set", "aux_logits=true"]),
        ("compile-resnet", ["compile", resnet18, "-o", "resnet18.py"]),
        ("draw", ["draw", googlenet, "-o", "googlenet.dot", "--depth", "all"]),
        ("draw-folded", ["draw", resnet18, "-o", "resnet18.dot", "--costs"]),
    ]



# Runs each command through archdsl.cli.main, capturing what it prints, in the current directory.
DRIVER = textwrap.dedent("""
    import contextlib, io, json, sys
    from archdsl.cli import main

    for name, argv in json.loads(sys.argv[1]):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        with open(name + ".stdout", "w", encoding="utf-8") as fh:
            fh.write(out.getvalue())
        with open(name + ".stderr", "w", encoding="utf-8") as fh:
            fh.write(f"exit {code}\\n" + err.getvalue())
""")


def _run_all(seed: str, workdir: Path, runs: list[tuple[str, list[str]]]) -> dict[str, bytes]:
    import json

    workdir.mkdir()
    env = {**os.environ, "PYTHONHASHSEED": seed,
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    subprocess.run([sys.executable, "-c", DRIVER, json.dumps(runs)], cwd=workdir, env=env,
                   check=True, timeout=300)
    return {p.name: p.read_bytes() for p in sorted(workdir.iterdir())}


def test_outputs_are_identical_across_hash_seeds(tmp_path):
    runs = commands()
    results = {seed: _run_all(seed, tmp_path / f"seed{seed}", runs) for seed in SEEDS}
    first = results[SEEDS[0]]
    # Every command ran and produced something (a crash in the driver fails check=True above).
    for name, _ in runs:
        assert f"{name}.stderr" in first
    assert first["check.stderr"] == b"exit 0\n"
    assert first["check-errors.stderr"].startswith(b"exit 1\n")
    for seed in SEEDS[1:]:
        assert sorted(results[seed]) == sorted(first)
        for name, data in first.items():
            assert results[seed][name] == data, f"{name} differs between PYTHONHASHSEED=0 and {seed}"


def test_outputs_name_no_temporary_paths(tmp_path):
    """What a command writes does not depend on where it runs (no absolute temporary paths)."""
    runs = [(name, argv) for name, argv in commands() if name in ("compile", "report-file", "draw")]
    assert {name for name, _ in runs} == {"compile", "report-file", "draw"}
    result = _run_all("0", tmp_path / "run", runs)
    for name, data in result.items():
        assert str(tmp_path).encode() not in data, name
