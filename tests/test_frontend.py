"""The spec language: each construct, naming, expressions, overrides and imports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import archdsl
from archdsl.cli import cli
from archdsl.errors import SpecError, UsageError
from tests.conftest import ROOT


def shapes(graph):
    return {n.name: n.shape for n in graph.op_nodes()}


def test_sequence_and_auto_names(write_spec):
    g = archdsl.load(write_spec("""
        name: tiny
        input: [3, 32, 32]
        network: [{conv: {out: 8, k: 3, pad: 1}}, bn, relu, relu, flatten, {linear: {out: 10}}]
    """))
    assert list(shapes(g)) == ["conv", "bn", "relu", "relu_1", "flatten", "linear"]
    assert g.main_output.shape == (10,)
    assert g.nodes["conv"].shape == (8, 32, 32)


def test_named_sequence_is_numbered_like_nn_sequential(write_spec):
    g = archdsl.load(write_spec("""
        name: vggish
        input: [3, 32, 32]
        network:
          - features: [{conv: {out: 8, k: 3, pad: 1}}, relu, {maxpool: {k: 2}}]
          - classifier: [flatten, {linear: {out: 10}}]
    """))
    assert list(shapes(g)) == ["features.0", "features.1", "features.2", "classifier.0", "classifier.1"]
    assert g.nodes["features.2"].shape == (8, 16, 16)


def test_names_spell_pytorch_attribute_paths(write_spec):
    """RegNet's `block1-0` (add_module) and ModuleList children (`convs.1`) are state_dict keys."""
    g = archdsl.load(write_spec("""
        name: paths
        input: [3, 8, 8]
        network:
          - trunk:
              - repeat: 2
                name: "block1-{i}"
                layer: {conv: {out: 3, k: 3, pad: 1}}
          - convs.0: {conv: {out: 4, k: 3, pad: 1}}
          - convs.1: {conv: {out: 4, k: 1}}
    """))
    assert list(shapes(g)) == ["trunk.block1-0", "trunk.block1-1", "convs.0", "convs.1"]
    assert [g.nodes[n].local_name for n in shapes(g)] == ["block1-0", "block1-1", "convs.0",
                                                          "convs.1"]


def test_unnamed_repeat_splices_into_the_enclosing_sequence(write_spec):
    g = archdsl.load(write_spec("""
        name: flat
        input: [3, 8, 8]
        network:
          - features: [{repeat: 2, layer: [{conv: {out: 4, k: 3, pad: 1}}, relu]}, {maxpool: {k: 2}}]
    """))
    assert list(shapes(g)) == [f"features.{i}" for i in range(5)]


def test_named_repeat_with_index_dependent_args(write_spec):
    g = archdsl.load(write_spec("""
        name: stages
        input: [16, 32, 32]
        blocks:
          unit:
            params: {out: int, stride: 1}
            body: [conv: {conv: {out: out, k: 3, stride: stride, pad: 1}}, relu: relu]
        network:
          - layer2: {repeat: 3, block: unit, args: {out: 32, stride: "2 if i == 0 else 1"}}
    """))
    assert g.nodes["layer2.0.conv"].shape == (32, 16, 16)
    assert g.nodes["layer2.2.conv"].shape == (32, 16, 16)
    assert g.scopes["layer2.0"].args == {"out": 32, "stride": 2}
    assert g.scopes["layer2.1"].args == {"out": 32, "stride": 1}
    assert g.scopes["layer2.0"].block == "unit"


def test_residual_with_conditional_projection(write_spec):
    g = archdsl.load(write_spec("""
        name: res
        input: [64, 16, 16]
        blocks:
          basic:
            params: {out: int, stride: 1}
            body:
              residual:
                body: [conv1: {conv: {out: out, k: 3, stride: stride, pad: 1, bias: false}}, bn1: bn]
                shortcut: {downsample: [{conv: {out: out, k: 1, stride: stride, bias: false}}, bn],
                           when: "stride != 1 or in.c != out"}
                after: relu
        network:
          - a: {basic: {out: 64}}
          - b: {basic: {out: 128, stride: 2}}
    """))
    names = set(shapes(g))
    assert "a.downsample.0" not in names          # identity shortcut
    assert "b.downsample.0" in names              # projection
    assert g.nodes["b.add"].inputs == ("b.bn1", "b.downsample.1")
    assert g.nodes["a.add"].inputs == ("a.bn1", "input") or g.nodes["a.add"].inputs[1] == "input"
    assert g.main_output.shape == (128, 8, 8)


def test_residual_connect_false_has_no_add(write_spec):
    g = archdsl.load(write_spec("""
        name: mb
        input: [16, 8, 8]
        blocks:
          ir:
            params: {out: int, stride: 1}
            body:
              residual:
                body: [{conv: {out: out, k: 3, stride: stride, pad: 1}}]
                connect: "stride == 1 and in.c == out"
        network: [x: {ir: {out: 16}}, y: {ir: {out: 24, stride: 2}}]
    """))
    ops = [n.op for n in g.op_nodes()]
    assert ops.count("add") == 1


def test_parallel_concat_and_named_branches(write_spec):
    g = archdsl.load(write_spec("""
        name: incep
        input: [192, 28, 28]
        network:
          - parallel:
              - branch1: {conv: {out: 64, k: 1}}
              - branch2: [{conv: {out: 96, k: 1}}, {conv: {out: 128, k: 3, pad: 1}}]
              - branch4: [{maxpool: {k: 3, stride: 1, pad: 1, ceil: true}}, {conv: {out: 32, k: 1}}]
    """))
    assert g.main_output.shape == (224, 28, 28)
    assert "branch2.1" in g.nodes and "branch4.0" in g.nodes


def test_parallel_mul_broadcasts_squeeze_excitation(write_spec):
    g = archdsl.load(write_spec("""
        name: se
        input: [64, 8, 8]
        network:
          - parallel:
              - identity
              - se: [global_avgpool, fc1: {conv: {out: "in.c // 16", k: 1}}, relu,
                     fc2: {conv: {out: in.c, k: 1}}, sigmoid]
            merge: mul
    """))
    assert g.nodes["se.fc1"].shape == (4, 1, 1)
    assert g.main_output.shape == (64, 8, 8)


def test_dense_block_concatenates_all_earlier_outputs(write_spec):
    g = archdsl.load(write_spec("""
        name: dense
        input: [64, 8, 8]
        blocks:
          dense_layer:
            params: {growth: 32}
            body: [norm1: bn, relu1: relu, conv1: {conv: {out: growth, k: 3, pad: 1}}]
        network:
          - denseblock1: {dense: 4, block: dense_layer, args: {growth: 32}, name: "denselayer{i+1}"}
    """))
    assert g.main_output.shape == (64 + 4 * 32, 8, 8)
    assert g.nodes["denseblock1.denselayer4.norm1"].shape == (64 + 3 * 32, 8, 8)
    assert "denseblock1.denselayer1.conv1" in g.nodes


def test_from_when_output_and_freeze(write_spec):
    g = archdsl.load(write_spec("""
        name: aux
        input: [8, 16, 16]
        params: {aux_logits: true}
        network:
          - stem: {conv: {out: 8, k: 3, pad: 1}, freeze: true}
          - aux1: [global_avgpool, flatten, {linear: {out: 10}}]
            output: aux1
            when: aux_logits
          - body: {conv: {out: 8, k: 3, pad: 1}}
          - skip: {add: {}, from: [stem, body]}
          - head: [global_avgpool, flatten, {linear: {out: 10}}]
    """))
    assert list(g.outputs) == ["out", "aux1"]
    assert g.nodes["body"].inputs == ("stem",)      # the side output does not feed the next layer
    assert g.nodes["skip"].inputs == ("stem", "body")
    assert g.nodes["stem"].freeze and not g.nodes["body"].freeze
    off = archdsl.load(g.file, aux_logits=False)
    assert list(off.outputs) == ["out"]


def test_a_block_with_several_inputs_reads_each_by_name(write_spec):
    """`inputs: [fine, coarse]`: the body reads them with `from:` (`input` and `in` are the
    first), a use gives them in order; two identical uses are each expanded (never copied: they
    read tensors from outside their body)."""
    g = archdsl.load(write_spec("""
        name: fuse
        input: [3, 32, 32]
        blocks:
          top_down:
            inputs: [fine, coarse]
            params: {out: 8}
            body:
              - lateral: {conv: {out: out, k: 1}, from: fine}
              - top: {upsample: {scale: 2}, from: coarse}
              - {add: {}, from: [lateral, top]}
              - smooth: {conv: {out: "in.c // 2", k: 3, pad: 1}}
              - {concat: {}, from: [smooth, input]}
        network:
          - c2: {conv: {out: 16, k: 3, stride: 2, pad: 1}}
          - c3: {conv: {out: 8, k: 3, stride: 2, pad: 1}}
          - p2: {top_down: {}, from: [c2, c3]}
          - p2b: {top_down: {}, from: [c2, c3]}
          - {add: {}, from: [p2, p2b]}
    """))
    assert g.nodes["p2.lateral"].inputs == ("c2",)
    assert g.nodes["p2.top"].inputs == ("c3",) and g.nodes["p2.top"].shape == (8, 16, 16)
    assert g.nodes["p2.smooth"].shape == (8, 16, 16)  # in.c: the first input's 16 channels
    assert g.nodes["p2.concat"].inputs == ("p2.smooth", "c2")
    assert g.scopes["p2"].input == "c2" and g.scopes["p2"].meta["inputs"] == ["c2", "c3"]
    assert g.nodes["p2b.top"].inputs == ("c3",) and g.scopes["p2b"].meta["inputs"] == ["c2", "c3"]
    assert g.spec.blocks["top_down"].input_count == 2
    assert g.main_output.shape == (24, 16, 16)


def test_from_reads_a_member_of_a_named_sequence(write_spec):
    """`from: stage.bn1` reads a direct member of a named sequence from outside it (a member
    that is itself a construct gives its output); reading deeper is a located error."""
    g = archdsl.load(write_spec("""
        name: members
        input: [3, 16, 16]
        network:
          - stage:
              - conv1: {conv: {out: 8, k: 3, pad: 1}}
              - bn1: bn
              - inner: [{conv: {out: 8, k: 1}}, relu]
          - sum: {add: {}, from: [stage, stage.bn1]}
          - {concat: {}, from: [sum, stage.inner]}
    """))
    assert g.nodes["sum"].inputs == ("stage.inner.1", "stage.bn1")
    assert g.nodes["concat"].inputs == ("sum", "stage.inner.1")
    deeper = Path(g.file).read_text().replace("[sum, stage.inner]", "[sum, stage.inner.0]")
    with pytest.raises(SpecError, match="no member of the sequence `stage`"):
        archdsl.load(write_spec(deeper, "deeper.yaml"))


def test_expressions_in_arguments(write_spec):
    g = archdsl.load(write_spec("""
        name: expr
        input: [3, 32, 32]
        params: {width: 0.5}
        network:
          - {conv: {out: "make_divisible(64 * width, 8)", k: [1, 7], pad: [0, 3]}}
          - {conv: {out: "max(in.c, 16) if width < 1 else 8", k: 3, pad: same}}
    """))
    assert g.nodes["conv"].shape == (32, 32, 32)
    assert g.nodes["conv_1"].shape == (16, 32, 32)


def test_let_values_and_overrides(write_spec):
    path = write_spec("""
        name: lets
        input: [3, 16, 16]
        params: {num_classes: 1000, width: 1.0}
        blocks:
          head:
            params: {n: int}
            let: {hidden: "int(64 * width)"}
            body: [flatten, fc1: {linear: {out: hidden}}, fc2: {linear: {out: n}}]
        network: [{global_avgpool: {}}, h: {head: {n: num_classes}}]
    """)
    assert archdsl.load(path).main_output.shape == (1000,)
    g = archdsl.load(path, num_classes="10", width="0.5")
    assert g.main_output.shape == (10,)
    assert g.nodes["h.fc1"].shape == (32,)
    assert archdsl.load(path, input="3x64x64").input_shape == (3, 64, 64)
    with pytest.raises(UsageError, match="no parameter `num_clases`"):
        archdsl.load(path, num_clases=3)
    with pytest.raises(UsageError, match="wrong type"):
        archdsl.load(path, num_classes="ten")


def test_use_imports_a_block_library(write_spec):
    write_spec("""
        blocks:
          cbr:
            params: {out: int}
            body: [conv: {conv: {out: out, k: 3, pad: 1, bias: false}}, bn: bn, relu: relu]
    """, name="lib/blocks.yaml")
    g = archdsl.load(write_spec("""
        name: user
        input: [3, 8, 8]
        use: [lib/blocks.yaml]
        network: [stem: {cbr: {out: 16}}]
    """))
    assert g.nodes["stem.conv"].shape == (16, 8, 8)


def test_every_independent_error_is_reported(write_spec):
    path = write_spec("""
        name: broken
        input: [3, 8, 8]
        network:
          - parallel:
              - {cnov: {out: 8, k: 3}}
              - {conv: {out: 8, k: 3, strid: 2}}
    """)
    with pytest.raises(SpecError) as info:
        archdsl.load(path)
    messages = [d.message for d in info.value.diagnostics]
    assert any("unknown op or block `cnov`" in m for m in messages)
    assert any("no attribute `strid`" in m for m in messages)
    assert len(messages) == 2


def test_block_chain_in_diagnostics(write_spec):
    path = write_spec("""
        name: chain
        input: [3, 8, 8]
        blocks:
          unit:
            params: {out: int}
            body: [{conv: {out: out, k: 3, groups: 2}}]
        network: [layer1: {repeat: 2, block: unit, args: {out: 8}}]
    """)
    with pytest.raises(SpecError) as info:
        archdsl.load(path)
    diag = info.value.first
    assert "layer1.0" in diag.chain[0] and "block `unit`" in diag.chain[0]
    assert diag.loc.line == 6


def test_check_cli_prints_shapes_and_exit_codes(write_spec):
    ok = write_spec("""
        name: ok
        input: [3, 8, 8]
        network: [{conv: {out: 4, k: 3}}]
    """)
    bad = write_spec("""
        name: bad
        input: [3, 8, 8]
        network: [{conv: {out: 4, k: 30}}]
    """, name="bad.yaml")
    runner = CliRunner()
    result = runner.invoke(cli, ["check", str(ok)])
    assert result.exit_code == 0
    assert "ok: input 3x8x8 -> output 4x6x6" in result.output
    result = runner.invoke(cli, ["check", str(ok), str(bad)])
    assert result.exit_code == 1
    assert "bad.yaml:3:" in result.output and "Traceback" not in result.output
    result = runner.invoke(cli, ["check"])
    assert result.exit_code == 2


def test_check_does_not_import_torch(write_spec):
    import subprocess
    import sys

    path = write_spec("""
        name: ok
        input: [3, 8, 8]
        network: [{conv: {out: 4, k: 3}}]
    """)
    code = ("import sys; from archdsl.cli import main; rc = main(['check', %r]); "
            "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)" % str(path))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_console_script_freezes_the_heap_before_exit_and_main_argv_does_not(write_spec):
    """main() without argv (the console script) gc.freeze()s what the command made, even when the
    command fails; main(argv), called by a program that goes on, leaves the collector alone."""
    import subprocess
    import sys

    path = write_spec("""
        name: ok
        input: [3, 8, 8]
        network: [{conv: {out: 4, k: 3}}]
    """)
    code = ("import gc, sys; from archdsl.cli import main; sys.argv = ['archdsl', 'check', sys.argv[1]]; "
            "rc = main(); print(rc, gc.get_freeze_count() > 0)")
    for spec, expected in ((path, "0 True"), (path.parent / "missing.yaml", "1 True")):
        proc = subprocess.run([sys.executable, "-c", code, str(spec)], check=False, capture_output=True,
                              text=True)
        assert proc.stdout.splitlines()[-1].split() == expected.split(), proc.stderr
    code = ("import gc, sys; from archdsl.cli import main; rc = main(['check', sys.argv[1]]); "
            "print(rc, gc.get_freeze_count())")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], check=False, capture_output=True,
                          text=True)
    assert proc.stdout.splitlines()[-1].split() == ["0", "0"], proc.stderr


def test_schema_is_valid_json_schema_and_accepts_the_zoo():
    """The zoo is valid under the published schema, and under the schema that knows its blocks."""
    from jsonschema import Draft202012Validator

    from archdsl.parser import block_signatures
    from archdsl.schema import SPEC_SCHEMA, spec_schema
    from archdsl.yamlsrc import load_yaml
    from tests.conftest import SPECS

    Draft202012Validator.check_schema(SPEC_SCHEMA)
    validator = Draft202012Validator(SPEC_SCHEMA)
    specs = sorted(SPECS.rglob("*.yaml"))
    assert specs
    for path in specs:
        document = load_yaml(path).plain()
        errors = list(validator.iter_errors(document))
        assert not errors, f"{path}: {errors[0].message}"
        # (studies/ use ../lib: allowed as `archdsl check --allow-path specs` would)
        knowing = Draft202012Validator(spec_schema(block_signatures(path, [SPECS])))
        errors = list(knowing.iter_errors(document))
        assert not errors, f"{path} (with its blocks): {errors[0].message}"
    result = CliRunner().invoke(cli, ["schema"])
    assert json.loads(result.output)["title"] == "archdsl spec"


def test_schema_describes_block_inputs():
    from jsonschema import Draft202012Validator

    from archdsl.schema import SPEC_SCHEMA

    validator = Draft202012Validator(SPEC_SCHEMA)
    block = {"inputs": ["fine", "coarse"], "body": [{"add": {}, "from": ["fine", "coarse"]}]}
    spec = {"name": "s", "input": [3, 8, 8], "blocks": {"fuse": block}, "network": ["relu"]}
    assert not list(validator.iter_errors(spec))
    for wrong in ([], "fine", ["fine", 3], ["in put"]):
        spec["blocks"]["fuse"] = {**block, "inputs": wrong}
        assert list(validator.iter_errors(spec)), wrong


# Misspelt ops, attributes and blocks, which `archdsl check` refuses (tests/test_diagnostics.py).
TYPO_CASES = ["unknown_op.yaml", "unknown_op_pool.yaml", "unknown_attr.yaml",
              "unknown_attr_typo.yaml", "unknown_block.yaml", "unknown_block_param.yaml",
              "upsample_pytorch_name.yaml", "library_unknown_op.yaml"]
# Of them, those the schema refuses without knowing the spec's blocks (an attribute of an op).
ATTRIBUTE_TYPOS = {"unknown_attr.yaml", "unknown_attr_typo.yaml", "upsample_pytorch_name.yaml"}


@pytest.mark.parametrize("name", TYPO_CASES)
def test_schema_refuses_the_corpus_typos(name):
    from jsonschema import Draft202012Validator

    from archdsl.parser import block_signatures
    from archdsl.schema import SPEC_SCHEMA, spec_schema
    from archdsl.yamlsrc import load_yaml

    path = ROOT / "tests" / "corpus" / "bad" / name
    document = load_yaml(path).plain()
    knowing = Draft202012Validator(spec_schema(block_signatures(path)))
    assert list(knowing.iter_errors(document)), f"{name} is valid under the schema"
    published = list(Draft202012Validator(SPEC_SCHEMA).iter_errors(document))
    assert bool(published) == (name in ATTRIBUTE_TYPOS)


def test_schema_command_knows_the_blocks_of_its_specs(tmp_path):
    library = str(ROOT / "specs" / "lib" / "resnet.yaml")
    result = CliRunner().invoke(cli, ["schema", library])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    assert set(schema["$defs"]["blocks"]) == {"basic", "bottleneck", "basic_a", "squeeze_excite"}
    basic = schema["$defs"]["blocks"]["basic"]
    assert basic["required"] == ["out"] and set(basic["properties"]) == {"out", "stride"}
    conv = schema["$defs"]["ops"]["conv"]
    assert conv["required"] == ["out", "k"] and conv["additionalProperties"] is False
    assert {"enum": ["same", "valid"]} in conv["properties"]["pad"]["anyOf"]


def test_input_sizes_may_be_expressions_over_spec_params(write_spec):
    path = write_spec("""
        name: inch
        input: [in_channels, 28, 28]
        params: {in_channels: 1}
        network: [{conv: {out: 4, k: 3}}]
    """)
    assert archdsl.load(path).input_shape == (1, 28, 28)
    assert archdsl.load(path, in_channels=3).nodes["conv"].in_shapes == ((3, 28, 28),)
    with pytest.raises(SpecError, match="input size must be a whole number"):
        archdsl.load(path, in_channels=0)


def test_parameter_choices_refuse_other_values(write_spec):
    path = write_spec("""
        name: act
        input: [3, 8, 8]
        params:
          act: {default: relu, choices: [relu, sigmoid], doc: the activation}
        blocks:
          unit:
            params: {mode: {default: a, choices: [a, b]}}
            body: [{relu: {}, when: "mode == 'a'"}]
        network: [{conv: {out: 4, k: 3}}, {relu: {}, when: "act == 'relu'"}, {unit: {mode: c}}]
    """)
    with pytest.raises(UsageError, match="not one of the allowed values"):
        archdsl.load(path, act="tanh")
    with pytest.raises(SpecError, match="parameter `mode` of block `unit` is not one of its allowed"):
        archdsl.load(path)


def test_a_parallel_branch_with_a_false_when_is_dropped(write_spec):
    g = archdsl.load(write_spec("""
        name: drop
        input: [8, 4, 4]
        params: {extra: false}
        network:
          - parallel:
              - a: {conv: {out: 4, k: 1}}
              - b: {conv: {out: 4, k: 1}, when: extra}
    """))
    assert g.main_output.shape == (4, 4, 4)
    assert archdsl.load(g.file, extra=True).main_output.shape == (8, 4, 4)


def test_checks_refuse_parameter_values_with_their_message(write_spec):
    path = write_spec("""
        name: checked
        input: [3, 8, 8]
        params: {depth: 20}
        checks: {"(depth - 2) % 6 == 0": "depth must be 6n + 2"}
        blocks:
          unit:
            params: {out: int}
            checks: {"out % 4 == 0": "out must be a multiple of 4"}
            body: [{conv: {out: out, k: 1}}]
        network: [{unit: {out: 6}}]
    """)
    with pytest.raises(SpecError) as info:
        archdsl.load(path, depth=21)
    diag = info.value.first
    assert diag.message == "the spec: depth must be 6n + 2"
    assert diag.found == "depth = 21" and (diag.loc.line, diag.loc.col) == (4, 10)
    with pytest.raises(SpecError, match="block `unit`: out must be a multiple of 4"):
        archdsl.load(path)


def test_library_modules_import_neither_click_nor_the_command_line():
    """Layers: click lives in archdsl/cli.py and archdsl/commands/ only."""
    import ast

    package = Path(archdsl.__file__).parent
    offenders = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        if rel == "cli.py" or rel.startswith("commands/") or rel == "__main__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            for name in names:
                if name == "click" or name.startswith("click.") or name.lstrip(".") in ("cli", "commands") \
                        or name.endswith((".cli", ".commands")) or ".commands." in name:
                    offenders.append(f"{rel}: {name}")
    assert not offenders


def test_no_import_cycles_inside_the_package():
    """Module-level imports between archdsl's modules form a DAG (lazy imports inside functions and
    ``if TYPE_CHECKING:`` imports are not module-level)."""
    import ast

    import networkx as nx

    package = Path(archdsl.__file__).parent
    modules = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    graph = nx.DiGraph()
    for name, (path, is_package) in modules.items():
        graph.add_node(name)
        here = name.split(".") if is_package else name.split(".")[:-1]
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ImportFrom) and node.level:
                base = here[:len(here) - node.level + 1] + ([node.module] if node.module else [])
                target = ".".join(base)
                for alias in node.names:
                    child = f"{target}.{alias.name}"
                    graph.add_edge(name, child if child in modules else target)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                graph.add_edges_from((name, n) for n in names if n and n.split(".")[0] == "archdsl")
    cycles = [c for c in nx.simple_cycles(graph) if len(c) > 1]
    assert not cycles


def test_block_libraries_check_as_libraries():
    """`archdsl check specs/lib/resnet.yaml` checks the library (it has no `input:`)."""
    libraries = sorted((ROOT / "specs" / "lib").glob("*.yaml"))
    assert libraries
    result = CliRunner().invoke(cli, ["check", *map(str, libraries)])
    assert result.exit_code == 0, result.output
    assert "resnet_blocks: library of 4 blocks (basic, bottleneck, basic_a, squeeze_excite)" \
        in result.output
    assert len(result.output.strip().splitlines()) == len(libraries)


@pytest.mark.parametrize("layer", ["repeat: relu", "dense: [conv, relu]", "seq: {conv: {out: 4, k: 3}}",
                                   "output: {relu: relu}", "freeze: {conv: {out: 4, k: 3}}"])
def test_reserved_words_cannot_name_a_layer(write_spec, layer):
    path = write_spec(f"""
        name: reserved
        input: [3, 8, 8]
        network:
          - {layer}
    """)
    word = layer.split(":")[0]
    with pytest.raises(SpecError, match=rf"`{word}` is reserved \(a (construct|meta key) of the "
                                        r"language\) and cannot name a layer"):
        archdsl.load(path)


def _frame_documents() -> list[tuple[str, object]]:
    """Every zoo spec and block library and every corpus file that reads as YAML, as plain values."""
    from archdsl.errors import ArchError
    from archdsl.yamlsrc import load_yaml
    from tests.conftest import SPECS

    docs = []
    for path in sorted([*SPECS.rglob("*.yaml"), *(ROOT / "tests" / "corpus").rglob("*.yaml")]):
        try:
            docs.append((str(path.relative_to(ROOT)), load_yaml(path).plain()))
        except ArchError:
            continue  # not YAML a frame can be made of (the corpus's hostile files)
    return docs


_MUTANT_VALUES = (0, -1, 1, 3, 3.0, 2.5, -0.5, True, False, None, "", "x", "in_channels * 2", "__x",
                  "int", "pair", "complex", [], [1], [3, 224, 224], [3, 0, 224], [1, 2, 3, 4],
                  ["a", None], [[1]], {}, {"a": 1}, {"default": 1}, {"default": 1, "type": "int"},
                  {"type": "float", "choices": []}, {"type": "complex"}, {"type": "integer", "default": 1},
                  {"choices": [1, 2]}, ["__x"], ["2x", "y"], ["fine", "it-s"], {"body": "relu"},
                  {"body": [], "params": {"k": 3}}, {1: "x"}, {"doc": 3})
_MUTANT_KEYS = ("name", "doc", "input", "params", "use", "blocks", "network", "checks", "body", "let",
                "inputs", "default", "type", "choices", "foo", "Name", 1, None)


def _frame_spots(node, spots: list) -> None:
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        spots.append((node, key))
        if key not in ("network", "body"):  # layers are the parser's: the frame leaves them open
            _frame_spots(child, spots)


def _mutant(rng, document):
    """``document`` with one to three random changes: a value replaced, a key removed or added,
    a value wrapped in a list or a mapping, a list item dropped."""
    import copy

    doc = copy.deepcopy(document)
    for _ in range(rng.randint(1, 3)):
        spots: list = []  # (container, key) of every value of the frame (not inside layers)
        _frame_spots(doc, spots)
        if not spots or not isinstance(doc, dict):
            return doc
        container, key = rng.choice(spots)
        action = rng.randrange(6)
        if action == 0:
            container[key] = copy.deepcopy(rng.choice(_MUTANT_VALUES))
        elif action == 1:
            del container[key]
        elif action == 2 and isinstance(container, dict):
            container[rng.choice(_MUTANT_KEYS)] = copy.deepcopy(rng.choice(_MUTANT_VALUES))
        elif action == 3:
            container[key] = [container[key]]
        elif action == 4:
            container[key] = {rng.choice(_MUTANT_KEYS[:6]): container[key]}
        elif isinstance(container[key], list) and container[key]:
            container[key].pop(rng.randrange(len(container[key])))
        else:
            container[key] = copy.deepcopy(rng.choice(_MUTANT_VALUES))
    return doc


def test_fast_frame_check_never_accepts_what_jsonschema_refuses():
    """schema._conforms decides a valid frame without jsonschema; whatever it accepts, jsonschema
    must find no error in: the zoo, the corpus and 1,500 seeded random mutants of zoo frames, as a
    model's frame and as a library's. It accepts every zoo spec and library (else it saves nothing)."""
    import random

    from archdsl.schema import _conforms, _frame_schema, _frame_validator

    docs = _frame_documents()
    zoo = [(name, doc) for name, doc in docs if name.startswith("specs/")]
    assert len(zoo) > 40 and len(docs) > len(zoo) + 50
    for name, doc in zoo:
        library = "network" not in doc
        assert _conforms(doc, _frame_schema(library)), name
    rng = random.Random(14)
    cases = [(name, doc, library) for name, doc in docs for library in (False, True)]
    cases += [(f"mutant {i} of {name}", _mutant(rng, doc), i % 2 == 1)
              for i, (name, doc) in enumerate(rng.choice(zoo) for _ in range(1500))]
    with_blocks = [(name, doc) for name, doc in zoo if doc.get("blocks")][:5]
    for name, doc in with_blocks:  # block inputs' names (a pattern): rare among random mutants
        for inputs in (["__x"], ["2x"], ["a-b"], ["ok", "x y"], ["ok", "fine_2"]):
            first = next(iter(doc["blocks"]))
            blocks = {**doc["blocks"], first: {**doc["blocks"][first], "inputs": inputs}}
            cases.append((f"{name} with inputs {inputs}", {**doc, "blocks": blocks}, "network" not in doc))
    accepted = refused = 0
    for name, doc, library in cases:
        errors = list(_frame_validator(library).iter_errors(doc))
        if _conforms(doc, _frame_schema(library)):
            assert not errors, f"{name} ({'library' if library else 'model'}): {errors[0].message}"
            accepted += 1
        refused += bool(errors)
    assert accepted > 500 and refused > 500  # the mutants reach both sides


def test_a_valid_frame_never_imports_jsonschema_and_a_bad_one_is_worded_by_it():
    """The fast frame check is what keeps jsonschema out of a cold `report` of a valid spec; a
    frame it does not accept still gets jsonschema's diagnostic."""
    import subprocess
    import sys

    code = ("import sys; from archdsl.cli import main; rc = main(sys.argv[1:]); "
            "print(rc, 'jsonschema' in sys.modules)")
    runs = {("report", str(ROOT / "specs" / "resnet18.yaml"), "--format", "json"): "0 False",
            ("check", str(ROOT / "tests" / "corpus" / "bad" / "bad_input_shape.yaml")): "1 True"}
    for args, expected in runs.items():
        proc = subprocess.run([sys.executable, "-c", code, *args], check=False, capture_output=True,
                              text=True)
        assert proc.stdout.splitlines()[-1] == expected, proc.stderr
    assert "bad_input_shape.yaml:2:12: error: `input.1` must be at least 1" in proc.stderr
