"""``archdsl sweep``: every point's figures against ``archdsl.analyze``, invalid points, budgets,
the Pareto front, the plot files, grids and their errors."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

import archdsl
from archdsl.cli import cli
from archdsl.errors import UsageError
from archdsl.sweep import Point, make_axes, pareto_front, parse_budget, split_grid
from tests.conftest import ROOT, SPECS

CIFAR = str(SPECS / "resnet_cifar.yaml")

# A small spec with a width, a depth and a check; its input may be too small for `stride`.
TOY = """
    name: toy
    input: [3, 16, 16]
    params: {width: 8, blocks: 1, stride: 2, act: {default: relu, choices: [relu, gelu]}}
    checks: {"blocks <= 3": "at most 3 blocks"}
    network:
      - stem: {conv: {out: width, k: 3, stride: stride, pad: 1}}
      - body: {repeat: blocks, layer: [{conv: {out: width, k: 3, pad: 1}}, relu]}
      - head: {conv: {out: "2 * width", k: 3, stride: stride}}
      - flatten
      - fc: {linear: {out: 10}}
"""


def sweep(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["sweep", *args])
    assert "Traceback" not in result.output, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), \
        result.exception
    return result.exit_code, result.stdout, result.stderr


def sweep_json(*args: str) -> dict:
    code, out, err = sweep(*args, "--format", "json")
    assert code == 0, err
    return json.loads(out)


# --- every point equals the analysis ---------------------------------------------------------------

def test_every_point_equals_analyze_in_json_csv_and_text():
    grid = ("--grid", "depth=20,32", "--grid", "width=8,16", "--set", "num_classes=100")
    data = sweep_json(CIFAR, *grid)
    points = data["points"]
    assert data["fixed"] == {"num_classes": 100} and data["grid"] == {"depth": [20, 32], "width": [8, 16]}
    assert [p["values"] for p in points] == [
        {"depth": d, "width": w} for d, w in itertools.product((20, 32), (8, 16))]
    _, text, _ = sweep(CIFAR, *grid)
    _, table, _ = sweep(CIFAR, *grid, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(table)))
    assert len(rows) == 4
    for point, row in zip(points, rows, strict=True):
        a = archdsl.analyze(archdsl.load(CIFAR, num_classes=100, **point["values"]))
        m = a.memory
        expected = {"params": a.params, "macs": a.macs, "flops": a.flops, "depth": a.depth,
                    "peak_bytes": m.bytes(m.peak), "activation_bytes": m.bytes(m.activations),
                    "param_bytes": m.bytes(m.params), "buffers": a.buffers,
                    "fvcore_flops": a.fvcore_flops, "output": "100", "input": "3x32x32"}
        assert {k: point[k] for k in expected} == expected
        assert {k: row[k] for k in expected} == {k: str(v) for k, v in expected.items()}
        assert (row["depth"], row["width"]) == (str(point["values"]["depth"]),
                                               str(point["values"]["width"]))
        line = next(line for line in text.splitlines()
                    if line.split()[:2] == [str(point["values"]["depth"]), str(point["values"]["width"])])
        assert f"{a.params:,}" in line and f"{a.macs:,}" in line and line.endswith(" 100")
    assert "resnet_cifar: 4 points over depth (2) x width (2), 4 valid" in text


def test_input_axis_takes_shapes_and_sizes_at_the_spec_channels():
    data = sweep_json(CIFAR, "--grid", "input=32,1x40x40", "--grid", "in_channels=1,3")
    got = [(p["values"]["input"], p["values"]["in_channels"], p["input"], p["macs"])
           for p in data["points"]]
    expected = []
    for size, channels in itertools.product((32, (1, 40, 40)), (1, 3)):
        shape = (channels, size, size) if isinstance(size, int) else size
        a = archdsl.analyze(archdsl.load(CIFAR, input=shape, in_channels=channels))
        expected.append((size if isinstance(size, int) else list(size), channels,
                         "x".join(map(str, shape)), a.macs))
    assert got == expected


def test_markdown_table(write_spec):
    path = str(write_spec(TOY))
    code, out, _ = sweep(path, "--grid", "width=4,8", "--format", "md")
    assert code == 0
    a = archdsl.analyze(archdsl.load(path, width=4))
    assert "| width | Params | MACs | Peak memory | Depth | Output |" in out
    assert f"| 4 | {a.params:,} | {a.macs:,} |" in out


# --- invalid points ----------------------------------------------------------------------------------

def test_invalid_points_are_listed_located_and_skipped(write_spec):
    path = write_spec(TOY)
    code, out, err = sweep(str(path), "--grid", "blocks=1,4", "--grid", "stride=2,8")
    assert code == 0, err
    # blocks=4 fails the spec's check; stride=8 leaves nothing for the head's 3x3 window
    assert "4 points over blocks (2) x stride (2), 1 valid" in out
    assert "Invalid points (skipped): 3" in out
    check_line = f"{path}:4:"
    assert f"blocks=4, stride=2: {check_line}" in out and "error: the spec: at most 3 blocks" in out
    assert f"blocks=1, stride=8: {path}:" in out
    valid = archdsl.analyze(archdsl.load(str(path), blocks=1, stride=2))
    assert f"{valid.params:,}" in out
    data = sweep_json(str(path), "--grid", "blocks=1,4", "--grid", "stride=2,8")
    errors = [p.get("error") for p in data["points"]]
    assert errors[0] is None and all(e and e.startswith(str(path)) for e in errors[1:])
    with pytest.raises(archdsl.SpecError) as info:
        archdsl.load(str(path), blocks=1, stride=8)
    assert info.value.render().splitlines()[0] == errors[1]


def test_no_valid_point_exits_1_and_writes_nothing(write_spec, tmp_path):
    path = write_spec(TOY)
    target = tmp_path / "old.csv"
    target.write_text("previous output\n", encoding="utf-8")
    code, out, err = sweep(str(path), "--grid", "blocks=4,5", "-o", str(target))
    assert code == 1 and out == ""
    assert "blocks=5: " in err and "none of the 2 points is valid" in err
    assert target.read_text(encoding="utf-8") == "previous output\n"


# --- budgets -----------------------------------------------------------------------------------------

def test_budget_keeps_points_within_it_and_names_the_largest():
    grid = ("--grid", "depth=20,32,44", "--grid", "width=8,16,24")
    everything = sweep_json(CIFAR, *grid)["points"]
    limit = sorted(p["macs"] for p in everything)[4]  # five points are within it
    data = sweep_json(CIFAR, *grid, "--max", f"macs={limit}")
    kept = [p for p in data["points"] if p["within_budget"]]
    assert [p["values"] for p in kept] == [p["values"] for p in everything if p["macs"] <= limit]
    assert len(kept) == 5
    best = max(kept, key=lambda p: p["params"])
    assert data["largest_by"] == "params" and data["points"][data["largest"]] == best
    _, text, _ = sweep(CIFAR, *grid, "--max", f"macs={limit}")
    assert "5 of 9 valid points (4 over budget, not shown)" in text
    label = f"depth={best['values']['depth']}, width={best['values']['width']}"
    assert f"Largest by Params: {label} (Params {best['params']:,}, MACs {best['macs']:,})." in text
    assert len([line for line in text.splitlines() if line.endswith(" 10")]) == 5
    # under a parameter budget the largest is named by MACs
    data = sweep_json(CIFAR, *grid, "--max", "params=0.5M")
    kept = [p for p in data["points"] if p["params"] <= 500_000]
    assert data["largest_by"] == "macs"
    assert data["points"][data["largest"]] == max(kept, key=lambda p: p["macs"])


def test_budget_limits_read_units():
    assert parse_budget("macs=600M").limit == 600e6
    assert parse_budget("params=2.5k").limit == 2500
    assert parse_budget("memory=4MB") == parse_budget("memory=4000000")
    assert parse_budget("depth=1_000").limit == 1000


# --- the Pareto front -----------------------------------------------------------------------------

def _point(index: int, macs: int, params: int) -> Point:
    return Point(index, {"i": index}, {"i": str(index)}, {"macs": macs, "params": params})


def test_pareto_front_of_a_hand_checked_set():
    pairs = [(4, 5), (1, 1), (2, 3), (2, 2), (3, 3), (5, 4), (4, 5), (6, 9), (3, 1)]
    points = [_point(i, x, y) for i, (x, y) in enumerate(pairs)]
    front = pareto_front(points, "macs", "params")
    # by hand: (1,1) cheapest; (2,3) beats (2,2), (3,3), (3,1); (4,5) twice beats (5,4); (6,9) most
    assert [p.index for p in front] == [1, 2, 0, 6, 7]

    def dominated(p: Point) -> bool:
        return any(q.record["macs"] <= p.record["macs"] and q.record["params"] >= p.record["params"]
                   and (q.record["macs"], q.record["params"]) != (p.record["macs"], p.record["params"])
                   for q in points)

    assert {p.index for p in front} == {p.index for p in points if not dominated(p)}


def test_plot_writes_valid_svg_and_png_and_marks_the_front(tmp_path):
    grid = ("--grid", "depth=20,32", "--grid", "width=8,16", "--max", "params=0.4M")
    svg = tmp_path / "pareto.svg"
    code, out, err = sweep(CIFAR, *grid, "--plot", "macs:params", "-o", str(svg), "-f", "json")
    assert code == 0, err
    root = ET.fromstring(svg.read_bytes())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    data = json.loads(out)
    kept = [p for p in data["points"] if p["within_budget"]]
    front = [p for p in kept
             if not any(q["macs"] <= p["macs"] and q["params"] >= p["params"]
                        and (q["macs"], q["params"]) != (p["macs"], p["params"]) for q in kept)]
    assert [p for p in data["points"] if p.get("front")] == front
    assert f"({len(front)} points on the Pareto front)" in err
    first = svg.read_bytes()
    assert sweep(CIFAR, *grid, "--plot", "macs:params", "-o", str(svg))[0] == 0
    assert svg.read_bytes() == first  # deterministic: no date, fixed ids
    png = tmp_path / "pareto.png"
    code, out, _ = sweep(CIFAR, *grid, "--plot", "macs:params", "-o", str(png))
    assert code == 0 and out.count(" *\n") == len(front)  # the text table's Front column
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    width, height = struct.unpack(">II", head[16:24])
    assert width > 100 and height > 100


# --- grids -----------------------------------------------------------------------------------------

def test_ranges_are_inclusive_and_exact():
    assert split_grid("depth=20:110:18") == ("depth", ["20", "38", "56", "74", "92", "110"])
    assert split_grid("width=0.5:2:0.5,3") == ("width", ["0.5", "1.0", "1.5", "2.0", "3"])
    assert split_grid("n=1:3") == ("n", ["1", "2", "3"])
    assert split_grid("depth=20:30:6")[1] == ["20", "26"]


def test_values_are_typed_like_set_and_repeats_dropped():
    spec = archdsl.parse(SPECS / "shufflenet_v2_x1_0.yaml")
    (axis,) = make_axes(spec, ["width=0.5,1,1.0,2"], {})
    assert axis.values == (0.5, 1.0, 2.0) and all(isinstance(v, float) for v in axis.values)


@pytest.mark.parametrize("args, message", [
    (["--grid", "dept=20"], "--grid dept: the spec has no parameter `dept`"),
    (["--grid", "depth=20:10"], "--grid depth: `20:10` is not a range"),
    (["--grid", "depth=20:30:0"], "--grid depth: `20:30:0` is not a range"),
    (["--grid", "depth=20,,32"], "--grid depth=20,,32: an empty value"),
    (["--grid", "depth=deep"], "--grid depth: wrong type"),
    (["--grid", "depth"], "--grid depth: expected NAME=VALUES"),
    (["--grid", "depth=20", "--grid", "depth=32"], "--grid depth: given twice"),
    (["--grid", "depth=20", "--set", "depth=32"], "--grid depth: also fixed by --set depth"),
    (["--grid", "input=32", "--input", "3x32x32"], "--grid input: also fixed by --input"),
    (["--grid", "input=3x32"], "--grid input: `3x32` is not an input shape"),
    (["--grid", "depth=20:1000:6", "--grid", "width=1:100", "--max-points", "1000"],
     "--grid: 16,400 points (164 x 100)"),
    ([], "no --grid given"),
    (["--grid", "depth=20", "--max", "mac=5M"], "--max mac=5M: no figure `mac`"),
    (["--grid", "depth=20", "--max", "macs=lots"], "--max macs=lots: `lots` is not a limit"),
    (["--grid", "depth=20", "--plot", "macs:params"], "--plot macs:params: needs -o FILE.svg"),
    (["--grid", "depth=20", "--plot", "macs"], "--plot macs: expected X:Y"),
    (["--grid", "depth=20", "-o", "x.png"], "-o x.png: a plot file, but no --plot X:Y"),
    (["--grid", "depth=20", "-o", "x.html"], "-o x.html: a sweep has no html format"),
])
def test_command_line_errors_exit_2_with_a_message(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be written
    code, out, err = sweep(CIFAR, *args)
    assert code == 2 and out == ""
    assert message in err, err
    if "`dept`" in message:
        assert "did you mean `depth`?" in err and "`input`" in err
    if "mac=" in message:
        assert "did you mean `macs`?" in err
    assert list(tmp_path.iterdir()) == []


def test_choices_are_enforced_with_did_you_mean(write_spec):
    code, _, err = sweep(str(write_spec(TOY)), "--grid", "act=relu,gelu,relu7")
    assert code == 2 and "--grid act=relu7: not one of the allowed values" in err
    with pytest.raises(UsageError):
        make_axes(archdsl.parse(write_spec(TOY)), ["act=selu"], {})


def test_table_goes_to_a_file_atomically_by_its_suffix(tmp_path):
    out = tmp_path / "sweep.csv"
    out.write_text("old", encoding="utf-8")
    code, stdout, _ = sweep(CIFAR, "--grid", "width=8,16", "-o", str(out))
    assert code == 0 and stdout == ""
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [r["width"] for r in rows] == ["8", "16"]


def test_sweep_imports_neither_torch_nor_matplotlib_unless_plotting(tmp_path):
    svg = tmp_path / "p.svg"
    code = (
        "import sys\n"
        "from archdsl.cli import main\n"
        f"assert main(['sweep', {CIFAR!r}, '--grid', 'width=8,16']) == 0\n"
        "assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules\n"
        f"assert main(['sweep', {CIFAR!r}, '--grid', 'width=8,16', '--plot', 'macs:params',"
        f" '-o', {str(svg)!r}]) == 0\n"
        "assert 'torch' not in sys.modules and 'matplotlib' in sys.modules\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert svg.stat().st_size > 0


def test_spec_text_reaches_the_svg_only_escaped(write_spec, tmp_path):
    """A value from the spec (a `str` parameter's choices) labels the front: as escaped text, and
    `$...$` is not read as mathtext."""
    path = write_spec("""
        name: toy
        input: [3, 8, 8]
        params: {act: {default: "a$\\\\frac$", choices: ["a$\\\\frac$", "--><script>x</script>"]}, width: 4}
        network: [{conv: {out: width, k: 3}}, flatten, {linear: {out: 2}}]
    """)
    svg = tmp_path / "p.svg"
    code, _, err = sweep(str(path), "--grid", "act=a$\\frac$,--><script>x</script>", "--grid", "width=2,4",
                         "--plot", "macs:params", "-o", str(svg))
    assert code == 0, err
    text = svg.read_text(encoding="utf-8")
    assert "<script" not in text and "&lt;script&gt;" in text
    assert not [e for e in ET.fromstring(text).iter() if e.tag.endswith("script")]


def test_progress_bar_appears_on_a_terminal_after_the_delay(monkeypatch):
    from archdsl.commands import sweep as command

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    for delay, shown in ((3600.0, False), (0.0, True)):
        terminal = Terminal()
        monkeypatch.setattr(command.sys, "stderr", terminal)
        monkeypatch.setattr(command._Progress, "DELAY", delay)
        progress = command._Progress()
        for done in (1, 2, 3):
            progress.update(done, 4)
        progress.close()
        assert ("sweeping" in terminal.getvalue() and "3/4" in terminal.getvalue()) == shown
    monkeypatch.setattr(command.sys, "stderr", io.StringIO())  # not a terminal: nothing
    progress = command._Progress()
    progress.update(1, 4)
    progress.close()
    assert progress.bar is None
