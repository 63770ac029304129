"""README.md's language reference agrees with the tool.

Every ``yaml`` example of the README is a whole spec, checked as written (with the zoo's block
libraries beside it, as in ``specs/``); together they use every op of the registry and every
construct and meta key. The op table lists every op with every attribute it has, and the console
examples of ``archdsl check`` print what the tool prints.
"""

from __future__ import annotations

import re
import shutil

import pytest
from click.testing import CliRunner

import archdsl
from archdsl.cli import cli
from archdsl.ops import REGISTRY
from tests.conftest import ROOT, SPECS

README = (ROOT / "README.md").read_text(encoding="utf-8")
EXAMPLES = re.findall(r"^```yaml\n(.*?)^```", README, re.DOTALL | re.MULTILINE)
LANGUAGE = README[README.index("## The language"):]


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    """Every README example, loaded from a directory that has the zoo's `lib/` beside it."""
    folder = tmp_path_factory.mktemp("readme")
    shutil.copytree(SPECS / "lib", folder / "lib")
    loaded = []
    for i, text in enumerate(EXAMPLES):
        path = folder / f"example{i}.yaml"
        path.write_text(text, encoding="utf-8")
        loaded.append(archdsl.load(path))
    return loaded


def test_every_example_checks_without_warnings(graphs):
    assert len(graphs) == len(EXAMPLES) >= 4
    for graph in graphs:
        assert not graph.warnings, [w.message for w in graph.warnings]


def test_the_examples_use_every_op(graphs):
    used = {node.op for graph in graphs for node in graph.op_nodes()}
    assert set(REGISTRY) - used == set()


def test_the_examples_use_every_construct_and_meta_key(graphs):
    kinds = {scope.kind for graph in graphs for scope in graph.scopes.values()}
    assert {"block", "seq", "repeat", "dense", "parallel", "residual"} <= kinds
    text = "\n".join(EXAMPLES)
    for key in ("from", "when", "output", "freeze", "use", "params", "let", "checks"):
        assert re.search(rf"\b{key}:", text), key


def op_table() -> dict[str, str]:
    """op name -> its row of the language reference's op table."""
    table = LANGUAGE[LANGUAGE.index("### Ops"):]
    rows = {}
    for line in table.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        for name in re.findall(r"`([a-z_0-9]+)`", cells[0]):
            rows[name] = cells[1]
    return rows


def test_the_op_table_lists_every_op_and_attribute():
    rows = op_table()
    assert set(rows) == set(REGISTRY)
    for name, op in REGISTRY.items():
        written = set(re.findall(r"`([a-z_]+)`", rows[name]))
        missing = {attr.name for attr in op.attrs} - written
        assert not missing, f"{name}: {sorted(missing)} not in the README's op table"
        for attr in op.attrs:
            for choice in attr.choices:
                assert f"`{choice}`" in rows[name], (name, choice)


def test_the_library_check_example_prints_what_the_tool_prints():
    shown = re.search(r"^\$ archdsl check (specs/lib/\S+)\n(.*)$", README, re.MULTILINE)
    assert shown
    result = CliRunner().invoke(cli, ["check", str(ROOT / shown.group(1))])
    assert result.exit_code == 0, result.output
    assert result.output.strip().replace(str(ROOT) + "/", "") == shown.group(2)


def test_the_pair_parameter_forms_of_the_readme_make_pairs(tmp_path):
    """README: a `[h, w]` default makes a pair, in the short and the long form, and
    `{type: pair, default: 1}` declares one with an int default. Each form it names is tried."""
    from archdsl.pipeline import parse

    sentence = LANGUAGE[LANGUAGE.index("A default of\n`[1, 7]` makes the parameter a `pair`"):]
    sentence = sentence[:sentence.index("A long form's default")]
    forms = re.findall(r"`(k: [^`]+)`", sentence)
    assert len(forms) == 3, forms
    for form in forms:
        path = tmp_path / "pair.yaml"
        path.write_text(f"name: p\ninput: [3, 16, 16]\nblocks:\n  b:\n    params: {{{form}}}\n"
                        "    body: {conv: {out: 4, k: k}}\nnetwork: [{b: {}}, {b: {k: [3, 1]}}]\n")
        assert parse(path).blocks["b"].params["k"].type == "pair", form
        graph = archdsl.load(path)
        shapes = [n.shape for n in graph.op_nodes()]
        assert shapes[-1] == (4, shapes[0][1] - 2, shapes[0][2]), (form, shapes)
