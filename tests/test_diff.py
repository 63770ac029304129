"""``archdsl diff`` (archdsl/diff.py, archdsl/commands/diff.py) on the pairs the course compares:
ResNeXt-50, Wide-ResNet-50-2 and SE-ResNet-50 against ResNet-50, DenseNet-169 against 121, a spec
against its own edited copy, one spec under two --set values. Deltas are checked against the two
analyses (the totals) rather than typed in; details against the specs' own parameters."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner

import archdsl
from archdsl.analysis import analyze
from archdsl.cli import cli
from archdsl.diff import ADDED, CHANGED, REMOVED, _walk, diff_analyses, highlights, render_diff
from tests.conftest import SPECS

requires_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is missing")


def _diff(a: str, b: str, sets_a=None, sets_b=None):
    ga = archdsl.load(SPECS / a, **(sets_a or {}))
    gb = archdsl.load(SPECS / b, **(sets_b or {}))
    return diff_analyses(analyze(ga), analyze(gb))


def _find(d, path: str):
    return next(c for c in _walk(d.changes) if c.path == path)


def _sums_add_up(d) -> None:
    """Every parameter and every byte kept for backward is in exactly one top-level change."""
    for key, figure in (("params", "params"), ("saved", "saved")):
        total = {k: y - x for k, x, y in d.totals}[figure]
        assert sum(c.deltas[key] for c in d.changes) == total, key


@pytest.fixture(scope="module")
def resnext():
    return _diff("resnet50.yaml", "resnext50_32x4d.yaml")


def test_resnext_against_resnet_changes_groups_and_width(resnext):
    d = resnext
    assert not d.same and d.counts()[ADDED] == d.counts()[REMOVED] == 0
    conv2 = _find(d, "layer1.0.conv2")
    assert "groups: 1 -> 32" in conv2.details and "out: 64 -> 128" in conv2.details
    a_conv2, b_conv2 = d.a.nodes["layer1.0.conv2"], d.b.nodes["layer1.0.conv2"]
    assert conv2.deltas["params"] == b_conv2.params - a_conv2.params
    assert conv2.deltas["macs"] == b_conv2.macs - a_conv2.macs
    block = _find(d, "layer3.4")
    assert block.kind == "block" and "groups: 1 -> 32" in block.details
    assert "base_width: 64 -> 4" in block.details
    totals = {k: (x, y) for k, x, y in d.totals}
    assert totals["params"] == (d.a.params, d.b.params)
    assert totals["saved"] == (d.a.training.saved, d.b.training.saved)
    _sums_add_up(d)


def test_identical_sibling_changes_fold_into_one_row(resnext):
    text = render_diff(resnext, "text", depth=2)
    assert "1 … 5 (x5)" in text  # layer3.1 to layer3.5 changed alike
    assert "groups: 1 -> 32; base_width: 64 -> 4" in text


def test_wide_resnet_against_resnet_doubles_the_width():
    d = _diff("resnet50.yaml", "wide_resnet50_2.yaml")
    assert "base_width: 64 -> 128" in _find(d, "layer2.1").details
    assert "groups" not in " ".join(_find(d, "layer2.1").details)
    _sums_add_up(d)


def test_se_resnet_adds_a_squeeze_excitation_to_every_block():
    d = _diff("resnet50.yaml", "se_resnet50.yaml")
    added = [c for c in _walk(d.changes) if c.status == ADDED and c.kind == "block"]
    blocks = [s for s in d.a.blocks if s.block == "bottleneck"]
    assert len(added) == len(blocks) == 16
    assert all(c.path.endswith(".se") for c in added)
    assert sum(c.deltas["params"] for c in added) == sum(
        d.b.scopes[c.path].params for c in added)
    _sums_add_up(d)


def test_densenet169_against_121_grows_two_dense_blocks():
    d = _diff("densenet121.yaml", "densenet169.yaml")
    block3, block4 = _find(d, "features.denseblock3"), _find(d, "features.denseblock4")
    assert "x24 -> x32" in block3.details and "x16 -> x32" in block4.details
    assert [c.status for c in block3.children if c.kind == "block"][-8:] == [ADDED] * 8
    assert sum(c.status == ADDED for c in block3.children) == 16  # 8 dense layers, 8 concats
    assert _find(d, "features.denseblock3.denselayer25").status == ADDED
    _sums_add_up(d)


def test_an_edited_copy_shows_the_rename_and_the_insertion_only(tmp_path):
    shutil.copytree(SPECS / "lib", tmp_path / "lib")
    text = (SPECS / "resnet18.yaml").read_text(encoding="utf-8")
    original = tmp_path / "resnet18.yaml"
    original.write_text(text, encoding="utf-8")
    assert "  - fc: {linear: {out: num_classes}}" in text
    edited = tmp_path / "edited.yaml"
    edited.write_text(text.replace("  - fc: {linear: {out: num_classes}}",
                                   "  - drop: {dropout: {p: 0.2}}\n"
                                   "  - head: {linear: {out: num_classes}}"), encoding="utf-8")
    d = diff_analyses(analyze(archdsl.load(original)), analyze(archdsl.load(edited)))
    assert [(c.status, c.path_a, c.path_b) for c in d.changes] == [
        (ADDED, None, "drop"), (CHANGED, "fc", "head")]
    assert d.changes[1].details == ["renamed fc -> head"]
    assert d.changes[0].deltas["params"] == 0 and not d.same


def test_one_spec_under_two_set_values_from_the_command_line():
    result = CliRunner().invoke(cli, ["diff", str(SPECS / "resnet_cifar.yaml"), "--set-a",
                                      "depth=20", "--set-b", "depth=32", "--format", "json"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.output)
    assert data["header"] == [{"what": "--set depth", "a": "20", "b": "32"}]
    layer1 = next(c for c in data["changes"] if c["path_b"] == "layer1")
    assert "x3 -> x5" in layer1["details"]
    assert [c["status"] for c in layer1["changes"]] == [ADDED, ADDED]
    a = analyze(archdsl.load(SPECS / "resnet_cifar.yaml", depth=20))
    b = analyze(archdsl.load(SPECS / "resnet_cifar.yaml", depth=32))
    assert data["totals"]["params"] == {"a": a.params, "b": b.params, "delta": b.params - a.params}


def test_exit_codes_same_differ_and_trouble(write_spec):
    runner = CliRunner()
    same = runner.invoke(cli, ["diff", str(SPECS / "resnet18.yaml"), str(SPECS / "resnet18.yaml")])
    assert same.exit_code == 0 and "The same network" in same.output
    differ = runner.invoke(cli, ["diff", str(SPECS / "resnet18.yaml"), str(SPECS / "resnet34.yaml")])
    assert differ.exit_code == 1
    bad = write_spec("""
        name: bad
        input: [3, 8, 8]
        network: [{conv: {out: 4, k: 3, strid: 2}}]
    """)
    target = bad.parent / "previous.html"
    target.write_text("previous\n", encoding="utf-8")
    broken = runner.invoke(cli, ["diff", str(SPECS / "resnet18.yaml"), str(bad), "-o", str(target)])
    assert broken.exit_code == 2 and "did you mean `stride`" in broken.output
    assert "Traceback" not in broken.output
    assert target.read_text(encoding="utf-8") == "previous\n"
    alone = runner.invoke(cli, ["diff", str(SPECS / "resnet18.yaml")])
    assert alone.exit_code == 2 and "diff needs two networks" in alone.output
    suffix = runner.invoke(cli, ["diff", str(SPECS / "resnet18.yaml"), str(SPECS / "resnet34.yaml"),
                                 "-o", "x.docx"])
    assert suffix.exit_code == 2 and "unknown output format" in suffix.output


def test_markdown_lists_the_changes(resnext):
    md = render_diff(resnext, "md", depth=1)
    assert "| Change | Path | ΔParams | ΔMACs | ΔActivations | ΔSaved | What |" in md
    assert "| changed | `layer1` |" in md


def test_highlights_mark_removed_on_a_and_added_on_b():
    d = _diff("resnet50.yaml", "se_resnet50.yaml")
    marks_a, marks_b = highlights(d)
    assert marks_a["flatten"] == REMOVED and marks_a["avgpool"] == REMOVED
    assert marks_b["layer1.0.se.fc1"] == ADDED
    assert "layer1.0.conv1" not in marks_b  # unchanged inside a changed block


class _Charts(HTMLParser):
    """Collects the bars of the inline SVG charts: (figure, series, stage) -> value."""

    def __init__(self) -> None:
        super().__init__()
        self.figure: str | None = None
        self.bars: dict[tuple[str, str, str], int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "svg" and a.get("class") == "chart":
            self.figure = a["data-figure"]
        if tag == "rect" and a.get("class") == "bar":
            self.bars[(self.figure, a["data-series"], a["data-stage"])] = int(a["data-value"])


def _bars(page: str) -> dict[tuple[str, str, str], int]:
    parser = _Charts()
    parser.feed(page)
    return parser.bars


def test_html_diff_charts_both_networks_per_stage(resnext):
    from archdsl.charts import stage_charts
    from archdsl.diff import stage_rows

    page = render_diff(resnext, "html", charts=lambda d: stage_charts([d.a, d.b], stage_rows(d)))
    bars = _bars(page)
    for analysis in (resnext.a, resnext.b):
        for stage in analysis.stages:
            path = getattr(stage, "path", None) or stage.name
            assert bars[("params", analysis.name, path)] == stage.params
            assert bars[("macs", analysis.name, path)] == stage.macs
            assert bars[("activations", analysis.name, path)] == stage.output_bytes
            assert bars[("saved", analysis.name, path)] == stage.saved_bytes


def test_html_report_has_per_stage_charts_with_the_stage_figures():
    result = CliRunner().invoke(cli, ["report", str(SPECS / "resnet18.yaml"), "--format", "html"])
    assert result.exit_code == 0
    bars = _bars(result.output)
    a = analyze(archdsl.load(SPECS / "resnet18.yaml"))
    assert {figure for figure, _, _ in bars} == {"params", "macs", "activations", "saved"}
    assert bars[("params", "resnet18", "layer4")] == a.scopes["layer4"].params == 8_393_728
    assert bars[("macs", "resnet18", "conv1")] == a.nodes["conv1"].macs
    assert bars[("activations", "resnet18", "layer1")] == a.scopes["layer1"].output_bytes
    assert bars[("saved", "resnet18", "layer2")] == a.scopes["layer2"].saved_bytes
    assert "<script" not in result.output


@requires_dot
def test_diff_svg_colours_the_changed_boxes(tmp_path):
    out = tmp_path / "d.svg"
    result = CliRunner().invoke(cli, ["diff", str(SPECS / "resnet50.yaml"),
                                      str(SPECS / "se_resnet50.yaml"), "-o", str(out)])
    assert result.exit_code == 1, result.output
    root = ET.parse(out).getroot()  # well-formed
    from archdsl.draw import HIGHLIGHTS

    fills = {el.get("fill") for el in root.iter() if el.get("fill")}
    for status in (ADDED, REMOVED, CHANGED):
        assert HIGHLIGHTS[status][0] in fills, status
    titles = [el.text for el in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "resnet50" in titles and "se_resnet50" in titles


def test_draw_diff_colours_what_spec_adds_relative_to_other(tmp_path):
    out = tmp_path / "se.dot"
    result = CliRunner().invoke(cli, ["draw", str(SPECS / "se_resnet50.yaml"), "--diff",
                                      str(SPECS / "resnet50.yaml"), "-o", str(out), "--depth", "2"])
    assert result.exit_code == 0, result.output
    from archdsl.draw import HIGHLIGHTS

    dot = out.read_text(encoding="utf-8")
    assert HIGHLIGHTS[ADDED][0] in dot and HIGHLIGHTS[REMOVED][0] not in dot
    plain = CliRunner().invoke(cli, ["draw", str(SPECS / "se_resnet50.yaml"), "-o",
                                     str(tmp_path / "plain.dot"), "--depth", "2"])
    assert plain.exit_code == 0
    assert HIGHLIGHTS[ADDED][0] not in (tmp_path / "plain.dot").read_text(encoding="utf-8")


def test_diff_does_not_import_torch():
    a, b = str(SPECS / "resnet18.yaml"), str(SPECS / "resnet34.yaml")
    code = (f"import sys; from archdsl.cli import main; rc = main(['diff', {a!r}, {b!r}, '-f', "
            "'html']); assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 1, proc.stderr
