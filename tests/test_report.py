"""``archdsl report`` and its formats: text, md, json, csv, html; comparison; the CLI; no torch."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

import archdsl
from archdsl.cli import cli, main
from archdsl.report import PROFILES, human, plan_report, ratio_text, render, to_json_data

ROOT = Path(__file__).resolve().parent.parent

SMALL = """
    name: small
    input: [3, 16, 16]
    params: {num_classes: 10}
    blocks:
      unit:
        params: {out: int}
        body:
          residual:
            body: [conv1: {conv: {out: out, k: 3, pad: 1, bias: false}}, bn1: bn, relu: relu,
                   conv2: {conv: {out: out, k: 3, pad: 1, bias: false}}, bn2: bn]
            after: relu
    network:
      - stem: {conv: {out: 8, k: 3, stride: 2, pad: 1}}
      - layer1: {repeat: 2, block: unit, args: {out: 8}}
      - head: [global_avgpool, flatten, {linear: {out: num_classes}}]
        output: aux
      - pool: global_avgpool
      - flatten
      - fc: {linear: {out: num_classes}}
"""

TINY = """
    name: tiny
    input: [3, 16, 16]
    network: [c: {conv: {out: 4, k: 3}}]
"""


@pytest.fixture
def small(write_spec) -> Path:
    return write_spec(SMALL, name="small.yaml")


@pytest.fixture
def tiny(write_spec) -> Path:
    return write_spec(TINY, name="tiny.yaml")


def run(*args: str):
    return CliRunner().invoke(cli, ["report", *map(str, args)])


# --- formatting helpers ------------------------------------------------------------------------

def test_human_units_and_ratios():
    assert human(4_089_184_256) == "4.09 G"
    assert human(25_557_032) == "25.6 M"
    assert human(999_999) == "1 M"
    assert human(512) == "512"
    assert ratio_text(61_100_840, 61_706) == "990x"
    assert ratio_text(250, 1) == "250x"
    assert ratio_text(1, 4) == "0.25x"
    assert ratio_text(3, 0) == "n/a" and ratio_text(0, 0) == ""


# --- text ----------------------------------------------------------------------------------------

def test_text_report_table_hierarchy_totals_and_convention(small):
    result = run(small)
    assert result.exit_code == 0, result.output
    out = result.stdout
    a = archdsl.analyze(archdsl.load(small))
    assert f"{a.params:,}" in out and f"{a.macs:,}" in out      # thousands separators
    assert "Total" in out and "Layer" in out and "MACs" in out
    lines = out.splitlines()
    assert any(line.startswith("layer1 ") for line in lines)
    assert any(line.startswith("  0 ") for line in lines)         # a block under its repeat
    assert any(line.startswith("    conv1 ") for line in lines)   # a layer under its block
    assert out.count("FLOPs = 2 x MACs") == 1                     # the convention, stated once
    assert "* not run by an inference pass" in out                # the aux head is flagged
    assert any(line.startswith("head *") for line in lines)
    assert "8x8x8" in out                                         # output shapes


def test_fvcore_profile_never_shows_macs_as_flops(small):
    out = run(small, "--profile", "fvcore").stdout
    a = archdsl.analyze(archdsl.load(small))
    header = out.splitlines()[2]
    assert "fvcore" in header and "MACs" not in header and "FLOPs" not in header
    assert f"{a.fvcore_flops:,}" in out
    assert "FlopCountAnalysis" in out
    tv = run(small).stdout.splitlines()[2]
    assert "MACs" in tv and "FLOPs" not in tv


@pytest.mark.parametrize("per, expected", [
    ("stage", ["stem", "layer1", "head", "pool", "flatten", "fc"]),
    ("block", ["stem", "layer1", "0", "1", "head", "0", "1", "2",
               "pool", "flatten", "fc"]),
])
def test_per_chooses_the_rows(small, per, expected):
    rep = plan_report(archdsl.analyze(archdsl.load(small)), per=per)
    assert [row.cells["name"] for row in rep.table.rows] == expected


def test_per_layer_lists_every_layer_once(small):
    a = archdsl.analyze(archdsl.load(small))
    rep = plan_report(a, per="layer")
    layer_rows = [row.path for row in rep.table.rows if not row.is_scope]
    assert layer_rows == list(a.nodes)


# --- json ----------------------------------------------------------------------------------------

def test_json_shape(small):
    result = run(small, "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    for key in ("name", "input", "output", "params", "macs", "flops", "memory", "receptive_field",
                "depth", "layers", "blocks", "stages", "buffers", "fvcore_flops", "layer_counts"):
        assert key in data, key
    assert data["format"] == "archdsl.report/1"
    assert data["name"] == "small" and data["input"] == [3, 16, 16]
    assert data["output"] == {"out": [10], "aux": [10]}         # several outputs: a mapping
    assert data["flops"] == 2 * data["macs"]
    assert all(type(data[k]) is int for k in ("params", "macs", "flops", "buffers", "depth"))
    layer = data["layers"][0]
    for key in ("name", "op", "path", "output", "params", "macs"):
        assert key in layer, key
    assert layer["path"] == "stem" and layer["op"] == "conv" and layer["output"] == [8, 8, 8]
    assert sum(x["params"] for x in data["layers"]) == data["params"]
    assert sum(x["macs"] for x in data["layers"] if x["runs"]) == data["macs"]
    assert data["memory"]["peak"]["bytes"] == 4 * data["memory"]["peak"]["elements"]
    rf = data["receptive_field"]
    assert set(rf) == {"size", "jump", "start", "global"} and rf["global"] is True
    assert [b["path"] for b in data["blocks"]] == ["layer1.0", "layer1.1"]
    assert [s["path"] for s in data["stages"]] == ["stem", "layer1", "head", "pool", "flatten", "fc"]


def test_json_single_output_is_a_shape_and_several_specs_a_list(small, tiny):
    data = json.loads(run(tiny, "-f", "json").stdout)
    assert data["output"] == [4, 14, 14]
    both = json.loads(run(tiny, small, "-f", "json").stdout)
    assert isinstance(both, list) and [d["name"] for d in both] == ["tiny", "small"]


def test_batch_and_overrides_reach_the_report(small):
    one = json.loads(run(small, "-f", "json").stdout)
    four = json.loads(run(small, "-f", "json", "--batch", "4", "--set", "num_classes=10",
                          "--dtype", "float16").stdout)
    assert four["batch"] == 4 and four["macs"] == 4 * one["macs"]
    assert four["params"] == one["params"]
    assert four["memory"]["dtype"] == "float16"
    assert four["memory"]["activations"]["bytes"] == 2 * 4 * one["memory"]["activations"]["elements"]
    wide = json.loads(run(small, "-f", "json", "--input", "3x32x32").stdout)
    assert wide["input"] == [3, 32, 32] and wide["macs"] > one["macs"]


def test_to_json_data_is_json_serialisable_for_the_zoo():
    for name in ("resnet18", "googlenet", "lenet"):
        data = to_json_data(archdsl.analyze(archdsl.load(ROOT / "specs" / f"{name}.yaml")))
        assert json.loads(json.dumps(data, allow_nan=False)) == data  # plain JSON, nothing lost


# --- csv, md, html -------------------------------------------------------------------------------

def test_csv_parses_with_one_row_per_table_row(small):
    a = archdsl.analyze(archdsl.load(small))
    for per in ("layer", "block", "stage"):
        rows = list(csv.DictReader(io.StringIO(run(small, "-f", "csv", "--per", per).stdout)))
        assert len(rows) == len(plan_report(a, per=per).table.rows)
    rows = list(csv.DictReader(io.StringIO(run(small, "-f", "csv", "--per", "stage").stdout)))
    assert rows[0]["path"] == "stem" and int(rows[0]["params"]) == a.nodes["stem"].params
    assert sum(int(r["params"]) for r in rows) == a.params


def test_comparison_has_ratios_to_the_first(small, tiny):
    result = run(tiny, small)
    assert result.exit_code == 0
    a, b = (archdsl.analyze(archdsl.load(p)) for p in (tiny, small))
    out = result.stdout
    assert "vs tiny" in out
    assert ratio_text(b.params, a.params) in out and ratio_text(b.macs, a.macs) in out
    rows = list(csv.DictReader(io.StringIO(run(tiny, small, "-f", "csv").stdout)))
    assert [r["name"] for r in rows] == ["tiny", "small"]
    assert float(rows[1]["params_ratio"]) == pytest.approx(b.params / a.params)
    assert float(rows[0]["macs_ratio"]) == 1.0
    md = run(tiny, small, "-f", "md").stdout
    assert "| Params |" in md and "vs tiny" in md


def test_course_comparisons():
    """AlexNet against LeNet; an Inception block against single convolutions of its output."""
    groups = [("lenet.yaml", "alexnet.yaml"),
              ("studies/inception_block.yaml", "studies/single_conv3x3.yaml",
               "studies/single_conv5x5.yaml")]
    for names in groups:
        paths = [ROOT / "specs" / name for name in names]
        result = run(*paths)  # (the studies use ../lib: inside the project, no --allow-path)
        assert result.exit_code == 0, result.output
        first, *others = (archdsl.analyze(archdsl.load(p)) for p in paths)
        for other in others:
            assert ratio_text(other.params, first.params) in result.stdout
            assert ratio_text(other.macs, first.macs) in result.stdout


def test_markdown_table(small):
    md = run(small, "-f", "md").stdout
    assert md.startswith("## small")
    assert "| Layer | Type | Output | Params | MACs | Saved | RF |" in md
    assert "| --- | --- | --- | ---: | ---: | ---: |" in md
    assert "`layer1.0.conv1`" in md and "**Total**" in md
    assert "`head.2` \\*" in md                      # not run at inference, escaped


def test_html_is_self_contained_with_the_real_diagram(small):
    assert shutil.which("dot"), "Graphviz's dot is not installed (scripts/setup.sh installs it)"
    html = render([archdsl.analyze(archdsl.load(small))], "html")
    charts = html.count('<svg class="chart"')
    assert charts == 4 and html.count("<svg") == charts + 1 and "<?xml" not in html
    assert 'id="small&#45;stem"' in html  # this network's diagram: ids start with its name
    assert "<script" not in html and "<link" not in html and " src=" not in html


def test_html_without_graphviz_says_so_and_comes_out(small, monkeypatch, tmp_path):
    analysis = archdsl.analyze(archdsl.load(small))
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` here
    warnings: list[str] = []
    html = render([analysis], "html", warn=warnings.append)
    assert len(warnings) == 1 and warnings[0].startswith("warning: the report of small has no diagram")
    assert "apt-get install graphviz" in warnings[0]
    assert html.startswith("<!DOCTYPE html>")
    assert "<table>" in html and "layer1" in html and 'class="diagram"' not in html
    assert "<script" not in html and "http" not in html and "<link" not in html
    assert "-&gt;" in html                                   # escaped text


# --- the command line ----------------------------------------------------------------------------

def test_output_file_is_written_atomically(small, tmp_path, write_spec):
    target = tmp_path / "out" / "report.json"
    target.parent.mkdir()
    target.write_text("old", encoding="utf-8")
    result = run(small, "-o", target)                          # format from the suffix
    assert result.exit_code == 0 and result.stdout == ""
    assert json.loads(target.read_text(encoding="utf-8"))["name"] == "small"
    assert os.listdir(target.parent) == ["report.json"]       # no temporary file left behind
    bad = write_spec("""
        name: bad
        input: [3, 8, 8]
        network: [{conv: {out: 4, k: 30}}]
    """, name="bad.yaml")
    target.write_text("old", encoding="utf-8")
    result = run(small, bad, "-o", target)
    assert result.exit_code == 1
    assert target.read_text(encoding="utf-8") == "old"        # nothing written on error
    assert os.listdir(target.parent) == ["report.json"]


def test_output_file_survives_a_failed_write(small, tmp_path, monkeypatch):
    target = tmp_path / "report.txt"
    target.write_text("old", encoding="utf-8")

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("archdsl.util.os.replace", fail)
    result = run(small, "-o", target)
    assert result.exit_code != 0
    assert target.read_text(encoding="utf-8") == "old"
    assert sorted(os.listdir(tmp_path)) == ["report.txt", "small.yaml"]   # the temporary is gone


def test_exit_codes(small, write_spec, capsys):
    bad = write_spec("""
        name: bad
        input: [3, 8, 8]
        network: [{conv: {out: 4, k: 30}}]
    """, name="bad.yaml")
    result = run(bad)
    assert result.exit_code == 1
    assert "bad.yaml:3:" in result.stderr and "Traceback" not in result.output
    assert run().exit_code == 2                                # no spec
    assert run(small, "--format", "pdf").exit_code == 2
    assert run(small, "--batch", "0").exit_code == 2
    assert main(["report", str(small), "--set", "num_clases=3"]) == 2
    assert "num_classes" in capsys.readouterr().err            # did you mean
    assert main(["report", str(small), "--input", "3xx2"]) == 2


def test_report_is_listed_in_the_cli():
    result = CliRunner().invoke(cli, ["--help"])
    assert "report" in result.output
    result = CliRunner().invoke(cli, ["report", "--help"])
    assert result.exit_code == 0 and "--profile" in result.output and "--per" in result.output


def test_report_runs_without_torch(small, tmp_path, no_torch_env):
    def python(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *args], check=False, capture_output=True,
                              text=True, env=no_torch_env, cwd=tmp_path)

    blocked = python("-c", "import torch")
    assert blocked.returncode != 0 and "blocked by this test" in blocked.stderr
    for fmt in ("text", "json", "csv", "md", "html"):
        proc = python("-m", "archdsl", "report", str(small), "--format", fmt)
        assert proc.returncode == 0, proc.stderr
        assert "stem" in proc.stdout
    proc = python("-m", "archdsl", "report", str(small), "--symbolic", "H,W,num_classes")
    assert proc.returncode == 0, proc.stderr  # the formulas too (SymPy, not torch)
    assert "params = " in proc.stdout and "num_classes" in proc.stdout
    code = textwrap.dedent(f"""
        import sys, archdsl
        a = archdsl.analyze(archdsl.load({str(small)!r}))
        assert a.params > 0 and 'torch' not in sys.modules
        print(a.macs)
    """)
    proc = python("-c", code)
    assert proc.returncode == 0, proc.stderr


def test_profiles_are_documented():
    """Every profile, and no other, is named where users look: the README's command table, the
    JSON reference's `profile` field and `report --help`; the JSON reference names every key."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    listed = re.search(r"\[--profile ([\w\\|]+)\]", readme)
    assert listed is not None, "the README's command table does not show --profile"
    assert set(listed.group(1).split("\\|")) == set(PROFILES)
    doc = (ROOT / "docs" / "REPORT_JSON.md").read_text(encoding="utf-8")
    row = next(line for line in doc.splitlines() if line.startswith("| `profile` |"))
    assert set(re.findall(r"`(\w+)`", row)) - {"profile"} == set(PROFILES)
    help_text = " ".join(run("--help").stdout.split())
    assert "--profile [" + "|".join(PROFILES) + "]" in help_text
    for key in ("`name`", "`input`", "`output`", "`params`", "`macs`", "`flops`", "`fvcore_flops`",
                "`memory`", "`receptive_field`", "`depth`", "`layers`", "`blocks`", "`stages`"):
        assert key in doc, key
