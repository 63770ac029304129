"""Code generation: names, determinism, lint/format, atomic writes, docstrings, freeze, outputs,
the constructs a generic block class must express, and the staleness of ``generated/``."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import archdsl
from archdsl.blocks.namespace import Namespace
from archdsl.blocks.pysrc import layout, parse_expr, unparse
from archdsl.cli import main
from archdsl.codegen import CodegenError, compile_graph, generate
from archdsl.codegen.names import camel_case, check_attribute
from archdsl.codegen.regen import stale_files
from tests.conftest import ROOT, zoo_specs

RUFF = shutil.which("ruff")


def compile_text(write_spec, text: str, **overrides) -> str:
    return compile_graph(archdsl.load(write_spec(text), **overrides))


def run_ruff(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([RUFF, *args], cwd=cwd, capture_output=True, text=True, check=False)


# --- the namespace ------------------------------------------------------------------------------

def test_namespace_avoids_keywords_builtins_and_generated_names():
    ns = Namespace()
    assert ns.create("max") == "max_"
    assert ns.create("class") == "class_"
    assert ns.create("torch") == "torch_"
    assert ns.create("l") == "l_"  # ruff E741
    assert ns.create("x") == "x"
    assert ns.create("x") == "x_1"
    assert ns.create("3d-net.v2") == "v_3d_net_v2"
    assert ns.create("__dunder__") == "dunder__"
    assert ns.create("") == "v"


def test_namespace_returns_the_same_name_for_the_same_object():
    ns = Namespace(["stride"])
    key = object()
    assert ns.create("stride", key) == "stride_"
    assert ns.create("stride", key) == "stride_"
    assert ns.create("stride") == "stride_1"


@pytest.mark.parametrize(("name", "expected"), [
    ("resnet18", "Resnet18"), ("conv_bn_relu6", "ConvBnRelu6"), ("resnext50_32x4d", "Resnext50_32x4d"),
    ("edge-net.v2", "EdgeNetV2"), ("3d", "Net3d"), ("---", "Net"),
])
def test_camel_case(name, expected):
    assert camel_case(name) == expected


@pytest.mark.parametrize("name", ["forward", "training", "state_dict", "_modules", "to"])
def test_attribute_names_that_would_hide_module_methods_are_refused(name):
    with pytest.raises(CodegenError, match=f"would hide nn.Module.{name}"):
        check_attribute(name, None, numbered_ok=False)


def test_numbered_attribute_names_need_a_sequential():
    assert check_attribute("3", None, numbered_ok=True) == "3"
    with pytest.raises(CodegenError, match="only an nn.Sequential can hold"):
        check_attribute("3", None, numbered_ok=False)


def test_a_layer_named_forward_is_a_located_error(write_spec):
    path = write_spec("""
        name: bad
        input: [3, 8, 8]
        network: [forward: {conv: {out: 4, k: 3}}]
    """)
    with pytest.raises(CodegenError) as info:
        compile_graph(archdsl.load(path))
    assert info.value.first.loc.line == 3
    assert "forward" in info.value.render()


# --- Python source --------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "x[:, :, ::2, ::2]", "x[:, :, :: self.stride]", "a**2", "(a + 1) ** 2", "a ** -b",
    "-(a + b)", "(a if b else c) * 2", "not (a and b)", "a - (b - c)", "(a, )", '"it\'s"',
    "f(*layers)", "{'a': 1}",
])
def test_unparse_round_trips(text):
    node = parse_expr(text)
    assert ast.dump(parse_expr(unparse(node))) == ast.dump(node)


def test_strings_are_double_quoted():
    assert unparse(parse_expr("'same'")) == '"same"'
    assert unparse(parse_expr("'say \"hi\"'")) == "'say \"hi\"'"


def test_layout_explodes_with_magic_trailing_commas():
    node = parse_expr("nn.Conv2d(in_channels, out, kernel_size=3, stride=stride, padding=1, bias=False)")
    lines = layout(node, 8, "self.conv1 = ")
    assert lines[0] == "        self.conv1 = nn.Conv2d("
    assert lines[-1] == "        )"
    assert all(line.endswith(",") for line in lines[1:-1])
    assert all(len(line) <= 88 for line in lines)


# --- generated code as a whole --------------------------------------------------------------------

HOSTILE = """
    name: 3d-net.v2
    doc: 'A "hostile" spec: backslash \\\\ triple quotes \"\"\" and tabs\t.'
    input: [3, 16, 16]
    params: {num_classes: 5}
    blocks:
      torch:
        params: {max: int, lambda_: 1, l: 2, in_channels: 3, self_: 1, x: 1}
        body:
          - nn: {conv: {out: max, k: 3, pad: 1}}
          - F: bn
          - self: relu
          - x: {conv: {out: "max + l - 2", k: 1}}
      Tensor:
        body: [OrderedDict: relu]
    network:
      - make_divisible: {torch: {max: 8}}
      - math: Tensor
      - frozen: {torch: {max: 8, l: 4}}
      - NamedTuple: global_avgpool
      - flatten
      - super: {linear: {out: num_classes}}
"""


def test_hostile_names_give_safe_working_code(write_spec):
    import torch

    path = write_spec(HOSTILE)
    graph = archdsl.load(path)
    generated = generate(graph)
    tree = ast.parse(generated.source)
    classes = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
    assert len(set(classes)) == len(classes)
    assert "torch" not in classes and "Tensor" not in classes
    model = archdsl.build(path)
    names = {name.split(".")[0] for name, _ in model.named_parameters()}
    assert names == {"make_divisible", "frozen", "super"}
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 5)


def test_hostile_output_passes_ruff(write_spec, tmp_path):
    target = tmp_path / "out" / "net.py"
    target.parent.mkdir()
    target.write_text(compile_text(write_spec, HOSTILE), encoding="utf-8")
    for args in (["check", "--isolated", "."], ["format", "--isolated", "--check", "."]):
        result = run_ruff(*args, cwd=target.parent)
        assert result.returncode == 0, result.stdout + result.stderr


def test_generated_zoo_passes_ruff_with_the_project_and_default_settings():
    for args in (["check", "generated"], ["format", "--check", "generated"],
                 ["check", "--isolated", "generated"], ["format", "--isolated", "--check", "generated"]):
        result = run_ruff(*args, cwd=ROOT)
        assert result.returncode == 0, " ".join(args) + "\n" + result.stdout + result.stderr


def test_compiling_is_deterministic_across_processes():
    spec = ROOT / "specs" / "googlenet.yaml"
    code = ("import sys, archdsl; from archdsl.codegen import compile_graph; "
            "sys.stdout.write(compile_graph(archdsl.load(sys.argv[1], aux_logits=True)))")
    outputs = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run([sys.executable, "-c", code, str(spec)], env=env, cwd=ROOT,
                                capture_output=True, text=True, check=True)
        outputs.add(result.stdout)
    assert len(outputs) == 1
    assert next(iter(outputs)) == compile_graph(archdsl.load(spec, aux_logits=True))


def test_docstring_names_the_spec_and_gives_params_and_macs():
    graph = archdsl.load(ROOT / "specs" / "resnet18.yaml")
    source = compile_graph(graph)
    doc = ast.get_docstring(ast.parse(source))
    stats = archdsl.analyze(graph)
    assert doc.startswith(graph.spec.doc.split(";")[0])
    assert "resnet18.yaml" in doc and "`resnet18`" in doc
    assert f"parameters: {stats.params:,}" in doc
    assert f"MACs: {stats.macs:,}" in doc
    assert "num_classes=1000" in doc


def test_resnet18_reads_like_torchvision():
    source = compile_graph(archdsl.load(ROOT / "specs" / "resnet18.yaml"))
    assert "class Basic(nn.Module):" in source
    assert "def __init__(self, in_channels: int, out: int, stride: int = 1) -> None:" in source
    assert "if self.downsample is not None:" in source
    assert "out = out + identity" in source
    assert "self.layer2 = nn.Sequential(Basic(64, 128, stride=2), Basic(128, 128))" in source
    assert "x = self.layer4(x)  # N x 512 x 7 x 7" in source
    assert "def resnet18(num_classes: int = 1000, in_channels: int = 3) -> Resnet18:" in source
    assert "self.fc = nn.Linear(512, num_classes)" in source


# --- the compile command --------------------------------------------------------------------------

def test_compile_writes_to_stdout_and_to_a_file(tmp_path, capsys):
    spec = str(ROOT / "specs" / "lenet.yaml")
    assert main(["compile", spec]) == 0
    printed = capsys.readouterr().out
    target = tmp_path / "lenet.py"
    assert main(["compile", spec, "-o", str(target), "--set", "num_classes=3"]) == 0
    written = target.read_text(encoding="utf-8")
    assert printed.startswith('"""LeNet-5') and "nn.Linear(84, num_classes)" in printed
    assert re.search(r"def lenet\(\s*num_classes: int = 10,", printed)
    assert re.search(r"def lenet\(\s*num_classes: int = 3,", written)  # --set gives the default


def test_a_failed_compile_leaves_the_output_file_alone(write_spec, tmp_path, capsys):
    bad = write_spec("""
        name: bad
        input: [3, 8, 8]
        network: [{conv: {out: 4, k: 9}}]
    """)
    target = tmp_path / "out.py"
    target.write_text("previous\n", encoding="utf-8")
    assert main(["compile", str(bad), "-o", str(target)]) == 1
    assert "error" in capsys.readouterr().err
    assert target.read_text(encoding="utf-8") == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.py", "spec.yaml"]


def test_compile_verify_checks_against_the_static_analysis(tmp_path, capsys):
    spec = str(ROOT / "specs" / "resnet_cifar.yaml")
    assert main(["compile", spec, "--verify", "-o", str(tmp_path / "r.py")]) == 0
    assert "verified resnet_cifar: 269,722 parameters" in capsys.readouterr().err


# --- generic classes: the constructs --------------------------------------------------------------

CONSTRUCTS = """
    name: constructs
    input: [3, 16, 16]
    params: {num_classes: 4, aux: true}
    blocks:
      cbr:
        params: {out: int, k: pair, act: true}
        body:
          - "0": {conv: {out: out, k: k, pad: 0, bias: false}}
          - "1": bn
          - {"2": relu, when: act}
      mixer:
        params: {out: int, stride: 1, split: false}
        let: {mid: "max(out // 2, 1)"}
        body:
          - stem: {conv: {out: mid, k: 1}}
          - a: relu
          - b: {conv: {out: mid, k: 3, pad: 1}, from: stem}
          - {concat: {}, from: [a, b]}
          - {channel_split: {parts: 2, index: 0}, when: split}
          - proj: {conv: {out: out, k: 1, stride: stride}}
          - residual:
              body: [{conv: {out: out, k: 3, pad: 1}}, bn]
              connect: "stride == 1"
          - seqs: [{conv: {out: out, k: 1}, when: "stride == 1"}, named: bn, relu]
          - {dense: 2, block: cbr, args: {out: 4, k: 1}}
          - {repeat: 2, layer: {conv: {out: out, k: 1}}}
      head:
        params: {out: int}
        body: [flatten, fc: {linear: {out: out}}]
      aux_head:
        body: [global_avgpool, flatten, fc: {linear: {out: 2}}]
    network:
      - stem: {cbr: {out: 8, k: [3, 1]}}
      - m1: {mixer: {out: 16, stride: 2}}
      - m2: {mixer: {out: 16, split: true}}
      - side: aux_head
        when: aux
        output: aux1
      - stage: {repeat: 2, block: mixer, args: {out: 12, stride: "2 if i == 0 else 1"}}
      - head: {head: {out: num_classes}}
"""


def test_constructs_compile_to_code_that_matches_the_static_analysis(write_spec):
    import torch

    path = write_spec(CONSTRUCTS)
    graph = archdsl.load(path)
    source = compile_graph(graph)
    assert "class Cbr(nn.Sequential):" in source  # numbered members: an nn.Sequential subclass
    assert "k: int | tuple[int, int]" in source
    assert "in_height: int" in source  # `head` flattens: its linear layer needs H and W
    assert "if self.use_res_connect:" in source
    model = archdsl.build(path).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 16, 16))
    assert out.shape == (2, *graph.main_output.shape)
    from archdsl.builder import check_model

    assert check_model(graph, model, out) == []
    assert set(model.state_dict()) == _static_state_keys(graph)


COMPILES_DIR = ROOT / "tests" / "corpus" / "compiles"
COMPILES = sorted(COMPILES_DIR.glob("*.yaml"))


@pytest.mark.parametrize("path", COMPILES, ids=lambda p: p.stem)
def test_specs_that_check_compile_build_and_match_the_analysis(path, capsys):
    """Specs that once passed `check` and then crashed `compile` (a `pair` parameter given an int,
    an infinite default, layers under a false `when:` that would not fit), and constructs other
    tests share (a block with several inputs), compile, import, and agree with the static
    analysis."""
    import torch

    from archdsl.builder import check_model, load_generated

    assert main(["check", str(path)]) == 0, capsys.readouterr().err
    graph = archdsl.load(path)
    generated = generate(graph)
    model = getattr(load_generated(generated), generated.factory)().eval()
    with torch.no_grad():
        out = model(torch.randn(1, *graph.input_shape))
    assert check_model(graph, model, out) == []


def test_an_unnamed_identity_with_output_or_from_flows_as_the_graph_says():
    """`{identity: {}, output: aux}` after `a`: in training mode `aux` is `a`'s output and the
    main output the conv over it (the class once took `a` for the output's layer: `a` ran in
    training mode only and the conv read the network's input); `{identity: {}, from: a}` is
    `a`'s output (the class once skipped it: `relu` read the conv before it)."""
    import torch

    from archdsl.builder import build_graph

    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8)
    model = build_graph(archdsl.load(COMPILES_DIR / "identity_with_an_output.yaml")).train()
    out, aux = model(x)
    assert torch.equal(aux, model.a(x))
    assert torch.equal(out, model.conv(model.a(x)))
    model = build_graph(archdsl.load(COMPILES_DIR / "identity_reads_an_earlier_layer.yaml"))
    assert torch.equal(model.eval()(x), torch.relu(model.a(x)))


def test_a_side_output_that_reads_an_earlier_layer_does_not_feed_the_next_one():
    """`{conv: ..., from: a, output: aux}` after a conv: `aux` is the conv over `a`, and the
    next layer reads the conv before it, not `a` (the class once went on from the side
    output's input); an `identity` with both is `a`'s output."""
    import torch

    from archdsl.builder import build_graph

    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8)
    path = COMPILES_DIR / "side_outputs_that_read_an_earlier_layer.yaml"
    model = build_graph(archdsl.load(path)).train()
    out, aux, skip = model(x)
    a = model.a(x)
    assert torch.equal(aux, model.conv_1(a)) and torch.equal(skip, a)
    assert torch.equal(out, torch.relu(model.conv(a)))


IDENTITY_SPECS = sorted(COMPILES_DIR.glob("identity_*.yaml")) + [
    COMPILES_DIR / "side_outputs_that_read_an_earlier_layer.yaml"]


def _forward_renames(source: str) -> list[str]:
    """The statements of every forward that compute nothing: ``a = b`` (``x = x`` included),
    and an ``if`` that runs nothing (``pass``)."""
    found = []
    for cls in ast.parse(source).body:
        for func in getattr(cls, "body", []):
            if not isinstance(func, ast.FunctionDef) or func.name != "forward":
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Name) \
                        or isinstance(node, ast.If) and all(isinstance(s, ast.Pass)
                                                             for s in node.body):
                    found.append(f"{cls.name}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize("path", IDENTITY_SPECS, ids=lambda p: p.stem)
def test_an_op_lowering_to_its_input_writes_no_statement(path):
    """An `identity` item (named, or unnamed with `from:` or `output:`) lowers to its input
    unchanged: the value it reads goes on under its own variable, with no ``x = x``, ``out = a``
    or empty ``if`` in forward (as torchvision's code reads)."""
    source = compile_graph(archdsl.load(path))
    assert _forward_renames(source) == []


def test_a_flag_only_an_unwritten_if_reads_is_not_kept():
    """identity_under_a_symbolic_when.yaml: the block's `if self.flag:` ran nothing and is not
    written, so neither is ``self.flag = flag`` (the constructor keeps its argument)."""
    source = compile_graph(archdsl.load(COMPILES_DIR / "identity_under_a_symbolic_when.yaml"))
    assert "flag: bool = False" in source and "self.flag" not in source


def test_an_op_lowering_to_its_input_still_computes_the_same(write_spec):
    """Without their identity statements, the block, the repeat and the `when:` of
    identity_reads_in_a_block_a_repeat_and_under_a_when.yaml compute what the spec says, and a
    named identity under a `when:` on a block parameter is no `if` (its value is its input)."""
    import torch

    from archdsl.builder import build_graph

    torch.manual_seed(0)
    x = torch.randn(2, 4, 8, 8)
    path = COMPILES_DIR / "identity_reads_in_a_block_a_repeat_and_under_a_when.yaml"
    model = build_graph(archdsl.load(path)).eval()
    with torch.no_grad():
        assert torch.equal(model.u1(x), torch.cat([torch.relu(x), model.u1.b(x)], 1))
        b = model.g1.b(x)
        assert torch.equal(model.g1(x), torch.relu(b) + b)  # (f false: `r` reads `b`)
        assert torch.equal(model.g2(x), torch.relu(x) + model.g2.b(x))  # (f: the input)
        image = torch.randn(2, 3, 8, 8)  # (the repeat's copies read `p` and feed nothing)
        p = model.p(model.u2(model.u1(model.a(image))))
        assert torch.equal(model(image), model.g2(model.g1(p)))
    spec = write_spec("""
        name: net
        input: [3, 8, 8]
        blocks:
          gate:
            params: {f: false}
            body:
              - b: {conv: {out: 4, k: 1}}
              - s: {identity: {}, when: f}
              - r: relu
              - {add: {}, from: [r, b]}
        network:
          - a: {conv: {out: 4, k: 1}}
          - g1: {gate: {}}
          - g2: {gate: {f: true}}
        """)
    source = compile_graph(archdsl.load(spec))
    assert _forward_renames(source) == [] and "self.f" not in source  # (nor its flag)
    model = build_graph(archdsl.load(spec)).eval()
    with torch.no_grad():
        for gate in (model.g1, model.g2):
            b = gate.b(x)
            assert torch.equal(gate(x), torch.relu(b) + b)


def _static_state_keys(graph) -> set[str]:
    """Parameter and buffer names the static graph implies (conv/linear/bn)."""
    keys = set()
    for node in graph.op_nodes():
        if node.op == "conv":
            keys |= {f"{node.name}.weight"} | ({f"{node.name}.bias"} if node.attrs.bias else set())
        elif node.op == "linear":
            keys |= {f"{node.name}.weight", f"{node.name}.bias"}
        elif node.op == "bn":
            keys |= {f"{node.name}.{k}" for k in ("weight", "bias", "running_mean", "running_var",
                                                 "num_batches_tracked")}
    return keys


def test_multiple_outputs_are_a_named_tuple_in_training_only(write_spec):
    import torch

    path = write_spec(CONSTRUCTS)
    model = archdsl.build(path)
    x = torch.randn(2, 3, 16, 16)
    model.train()
    outputs = model(x)
    assert type(outputs).__name__ == "ConstructsOutputs"
    assert outputs._fields == ("out", "aux1")
    assert outputs.out.shape == (2, 4) and outputs.aux1.shape == (2, 2)
    model.eval()
    assert isinstance(model(x), torch.Tensor)
    no_aux = archdsl.build(path, aux=False).train()
    assert isinstance(no_aux(x), torch.Tensor)


def test_freeze_marks_are_honoured(write_spec):
    import torch

    path = write_spec("""
        name: finetune
        input: [3, 16, 16]
        params: {num_classes: 3}
        blocks:
          unit:
            params: {out: int}
            body: [conv: {conv: {out: out, k: 3, pad: 1}}, bn: bn, relu: relu]
        network:
          - trunk:
              - {unit: {out: 8}}
              - {unit: {out: 16}}
            freeze: true
          - {conv: {out: 8, k: 1}, freeze: true}
          - pool: global_avgpool
          - flatten
          - fc: {linear: {out: num_classes}}
    """)
    graph = archdsl.load(path)
    model = archdsl.build(path)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"fc.weight", "fc.bias"}
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == \
        archdsl.analyze(graph).trainable_params
    model(torch.randn(2, 3, 16, 16)).sum().backward()
    assert model.trunk[0].conv.weight.grad is None and model.fc.weight.grad is not None


def test_unsupported_constructs_are_clear_errors(write_spec):
    path = write_spec("""
        name: named_parallel
        input: [3, 8, 8]
        network:
          - split: {parallel: [{conv: {out: 2, k: 1}}, {conv: {out: 2, k: 1}}]}
    """)
    with pytest.raises(CodegenError, match="named parallel"):
        compile_graph(archdsl.load(path))


# --- generated/ -------------------------------------------------------------------------------------

def test_generated_zoo_is_up_to_date():
    problems = stale_files()
    assert not problems, ("generated/ is stale; run `python -m archdsl.codegen.regen`:\n"
                          + "\n".join(problems))


def test_every_zoo_block_has_one_generic_class():
    """A class "written for one use" means the generator could not express a size or count
    symbolically: a new op's shape rule must run on symbolic sizes (arithmetic, with its checks
    written through ``ops.common.violated``)."""
    for path in sorted((ROOT / "generated").glob("*.py")):
        assert "Written for one use" not in path.read_text(encoding="utf-8"), path.name


def test_every_zoo_spec_has_a_generated_module():
    assert {p.stem for p in zoo_specs()} == {p.stem for p in (ROOT / "generated").glob("*.py")}


def test_a_block_on_images_and_on_flat_features_needing_different_code_is_an_error(write_spec):
    path = write_spec("""
        name: ranks
        input: [3, 8, 8]
        blocks:
          norm_act:
            body: [bn, relu]
        network:
          - a: norm_act
          - flatten
          - b: norm_act
    """)
    with pytest.raises(CodegenError, match="inputs of different ranks"):
        compile_graph(archdsl.load(path))


def test_a_rank_agnostic_block_is_shared_by_images_and_flat_features():
    source = compile_graph(archdsl.load(ROOT / "specs" / "lenet.yaml"))
    assert source.count("class Act(nn.Module):") == 1
    assert "self.act3 = Act(120, activation=activation)" in source


def test_a_block_that_cannot_be_generic_gets_one_class_per_use(write_spec):
    import torch

    path = write_spec("""
        name: special
        input: [3, 16, 16]
        blocks:
          stack:
            params: {n: int, k: pair}
            body:
              - {repeat: n, layer: {conv: {out: 4, k: 1}}}
              - c: {conv: {out: 4, k: k}}
              - flatten
              - fc: {linear: {out: 3}}
        network:
          - a: {stack: {n: 2, k: [3, 1]}}
          - b: {linear: {out: 3}}
    """)
    source = compile_text(write_spec, path.read_text())
    assert "class Stack_1(nn.Module):" in source and "Written for one use" in source
    assert "self.a = Stack_1()" in source
    graph = archdsl.load(path)
    model = archdsl.build(path)
    from archdsl.builder import check_model

    assert check_model(graph, model, model(torch.randn(2, 3, 16, 16))) == []


def _inplace_flags(source: str) -> dict[str, bool]:
    """``{attribute: inplace}`` for every ``self.<name> = nn.ReLU(...)`` of a source."""
    flags = {}
    for line in source.splitlines():
        line = line.strip()
        if line.startswith("self.") and "= nn.ReLU(" in line:
            flags[line.split("=")[0].strip()[5:]] = "inplace=True" in line
    return flags


def test_relu_works_in_place_only_on_a_fresh_tensor_nothing_else_reads(write_spec):
    source = compile_text(write_spec, """
        name: inplace
        input: [3, 8, 8]
        blocks:
          unit:
            body:
              - first: relu                     # the block's input: the caller may need it
              - conv: {conv: {out: 4, k: 1}}
              - after_conv: relu                # a conv's fresh output: in place
              - again: relu                     # a ReLU's output is saved for its backward
              - flat: flatten
              - after_view: relu                # a view of an earlier tensor
        network:
          - c: {conv: {out: 4, k: 1}}
          - shared: relu                        # its input also feeds `side`
          - side: {conv: {out: 4, k: 1}, from: c}
          - {add: {}, from: [shared, side]}
          - u: unit
    """)
    flags = _inplace_flags(source)
    assert flags == {"first": False, "after_conv": True, "again": False, "after_view": False,
                     "shared": False}


def test_members_under_when_are_added_by_statements(write_spec):
    source = compile_graph(archdsl.load(ROOT / "specs" / "mobilenet_v2.yaml"))
    assert "        layers = []\n        if t != 1:\n            layers.append(" in source
    assert "self.conv = nn.Sequential(*layers)" in source
    assert "class ConvBnRelu6(nn.Sequential):" in source


def test_conditions_simplify_what_they_decide():
    source = compile_graph(archdsl.load(ROOT / "specs" / "shufflenet_v2_x1_0.yaml"))
    block = source[source.index("class InvertedResidual"):source.index("class ShufflenetV2X1_0")]
    assert "if stride > 1:" in block
    assert " else in_channels" not in block  # inside `if stride > 1` the first branch did not run
    assert "if self.stride == 1:" in block and "if self.stride > 1:" in block


EXCLUSIVE_NAMES = """
    name: exclusive_names
    input: [3, 8, 8]
    blocks:
      unit:
        params: {wide: bool}
        body:
          - conv: {out: 4, k: 3, pad: 1}
          - proj: {conv: {out: 4, k: 1}}
            when: "wide"
          - proj: {conv: {out: 4, k: 3, pad: 1}}
            when: "not wide"
          - relu
    network:
      - a: {unit: {wide: true}}
      - b: {unit: {wide: false}}
      - flatten
      - fc: {linear: {out: 2}}
"""


def test_layers_sharing_a_name_under_exclusive_whens_each_run_under_their_own_condition(write_spec):
    """Two `proj` layers under exclusive `when:`s in one generic class: each instance keeps its
    own (the second `if` used to reset the first to None) and runs it once, at its place."""
    import torch

    from archdsl.builder import check_model

    path = write_spec(EXCLUSIVE_NAMES)
    graph = archdsl.load(path)
    source = compile_graph(graph)
    block = source[source.index("class Unit"):source.index("class ExclusiveNames")]
    assert "= None" not in block and "is not None" not in block
    assert "if self.wide:" in block and "if not self.wide:" in block
    model = archdsl.build(path).eval()
    assert model.a.proj.kernel_size == (1, 1) and model.b.proj.kernel_size == (3, 3)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        for unit, inputs in ((model.a, x), (model.b, model.a(x))):
            torch.testing.assert_close(unit(inputs), unit.relu(unit.proj(unit.conv(inputs))))
        assert check_model(graph, model, model(x)) == []


def test_names_with_a_dash_are_keys_of_an_nn_sequential(write_spec):
    """RegNet's `block1-0`: registered by its key (like torchvision's add_module), never an
    attribute; at the level of a class the error says where such a name can go."""
    import torch

    path = write_spec("""
        name: dashed
        input: [3, 8, 8]
        network:
          - block1: {repeat: 2, layer: {conv: {out: 4, k: 3, pad: 1}}, name: "block1-{i}"}
          - flatten
          - fc: {linear: {out: 2}}
    """)
    source = compile_graph(archdsl.load(path))
    assert '("block1-0", nn.Conv2d(3, 4, kernel_size=3, padding=1))' in " ".join(source.split())
    model = archdsl.build(path)
    assert {"block1.block1-0.weight", "block1.block1-1.weight"} <= set(model.state_dict())
    assert model(torch.randn(1, 3, 8, 8)).shape == (1, 2)
    bad = write_spec("""
        name: dashed_attribute
        input: [3, 8, 8]
        network:
          - conv-1: {conv: {out: 4, k: 3}}
          - flatten
    """, "bad.yaml")
    with pytest.raises(CodegenError, match="cannot be a PyTorch attribute name") as info:
        compile_graph(archdsl.load(bad))
    assert "can be a member of a named sequence or repeat" in info.value.render()


def test_dotted_names_are_members_of_a_module_dict_with_module_list_keys(write_spec):
    """`paths.0`, `paths.1` (selective kernel's paths, an nn.ModuleList in timm): the class holds an
    nn.ModuleDict `paths` whose state_dict keys are the ModuleList's, so its weights load."""
    import torch
    from torch import nn

    path = write_spec("""
        name: two_paths
        input: [4, 8, 8]
        blocks:
          sk:
            params: {}
            body:
              parallel:
                - paths.0: {conv: {out: 4, k: 3, pad: 1}}
                - paths.1: {conv: {out: 4, k: 3, pad: 2, dilation: 2}}
              merge: add
        network:
          - sk
    """)
    source = compile_graph(archdsl.load(path))
    assert 'self.paths = nn.ModuleDict()\n        self.paths["0"] = nn.Conv2d(' in source
    assert 'paths_0 = self.paths["0"](x)' in source

    class Reference(nn.Module):
        def __init__(self):
            super().__init__()
            self.paths = nn.ModuleList([nn.Conv2d(4, 4, 3, padding=1),
                                        nn.Conv2d(4, 4, 3, padding=2, dilation=2)])

        def forward(self, x):
            return self.paths[0](x) + self.paths[1](x)

    model, reference = archdsl.build(path).eval(), Reference().eval()
    model.sk.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))
    nested = write_spec("""
        name: nested
        input: [4, 8, 8]
        network: [paths.0.conv: {conv: {out: 4, k: 3}}]
    """, "nested.yaml")
    with pytest.raises(CodegenError, match="a container inside a container"):
        compile_graph(archdsl.load(nested))


CN_BLOCK = """
    name: one_cn_block
    input: [8, 6, 6]
    blocks:
      cn_block:
        params: {p: 0.0, layer_scale: 0.000001}
        body:
          residual:
            body:
              - block:
                  - {conv: {out: in.c, k: 7, pad: 3, groups: in.c}}
                  - {permute: {dims: [0, 2, 3, 1]}}
                  - {layernorm: {eps: 0.000001, over: last}}
                  - {linear: {out: "4 * in.c", over: last}}
                  - gelu
                  - {linear: {out: in.c, over: last}}
                  - {permute: {dims: [0, 3, 1, 2]}}
              - layer_scale: {layer_scale: {init: layer_scale}}
              - stochastic_depth: {stochastic_depth: {p: p, mode: row}}
    network:
      - cn: {cn_block: {p: 0.1, layer_scale: 0.5}}
"""


def test_permute_joins_a_sequential_and_layer_scale_is_a_bare_parameter(write_spec):
    """torchvision's ConvNeXt block: `torchvision.ops.Permute` inside its nn.Sequential (module-ness
    follows the op's lowering), `layer_scale` a bare nn.Parameter of the block, and the
    generated module imports torchvision; the block loads CNBlock's state_dict and computes it."""
    import torch
    from torchvision.models.convnext import CNBlock

    path = write_spec(CN_BLOCK)
    source = compile_graph(archdsl.load(path))
    assert "\nimport torchvision\n" in source
    assert "torchvision.ops.Permute([0, 2, 3, 1])," in source
    assert "self.layer_scale = nn.Parameter(torch.ones(in_channels, 1, 1) * layer_scale)" in source
    model = archdsl.build(path).eval()
    torch.manual_seed(0)
    reference = CNBlock(8, 0.5, 0.1).eval()
    with torch.no_grad():
        reference.layer_scale.uniform_(0.5, 1.5)
    model.cn.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))


def test_a_condition_decides_itself_and_its_negation_inside_it():
    """Inside ``if hidden == in_channels`` a size ``out if hidden != in_channels else in_channels``
    is ``in_channels`` (EfficientNetV2's FusedMBConv: its third conv is built only then)."""
    from archdsl.blocks.sym import Sym, refine, select

    size = select(Sym(parse_expr("hidden != in_channels"), False), Sym.name("out", 4),
                  Sym.name("in_channels", 8))
    assert unparse(size.node) == "out if hidden != in_channels else in_channels"
    for assumption, expected in (("hidden == in_channels", "in_channels"),
                                 ("hidden != in_channels", "out"),
                                 ("not hidden != in_channels", "in_channels"),
                                 ("stride == 1 and hidden == in_channels", "in_channels"),
                                 ("hidden > in_channels", None)):
        refined = refine(size, Sym(parse_expr(assumption), True))
        assert unparse(refined.node) == (expected or unparse(size.node)), assumption
    source = (ROOT / "generated" / "efficientnet_v2_s.py").read_text(encoding="utf-8")
    block = source[source.index("class FusedMbconv"):source.index("class EfficientnetV2S")]
    assert "if hidden == in_channels:\n            layers.append(\n                ConvBnAct(\n" \
           "                    in_channels,\n" in block


# --- one op, one place ----------------------------------------------------------------------------

def _op_name_tests(path: Path) -> list[str]:
    """Where a module compares something with an op's name, or keys a table by op names."""
    from archdsl.ops import REGISTRY

    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for operand in operands:
                elements = operand.elts if isinstance(operand, (ast.Set, ast.Tuple, ast.List)) \
                    else [operand]
                if any(isinstance(e, ast.Constant) and e.value in REGISTRY for e in elements):
                    found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Dict) and any(isinstance(k, ast.Constant) and k.value in REGISTRY
                                                for k in node.keys):
            found.append(f"{path.name}:{node.lineno}: a table keyed by op names")
        elif isinstance(node, ast.Call) and ast.unparse(node.func) == "frozenset" and any(
                isinstance(e, ast.Constant) and e.value in REGISTRY
                for a in node.args for e in getattr(a, "elts", [])):
            found.append(f"{path.name}:{node.lineno}: a set of op names")
    return found


def test_the_compiler_asks_the_ops_and_never_tests_their_names():
    """Code generation, expansion and the passes read op attributes (``passthrough``,
    ``fresh_output``, ``module_form``, ``foldable_norm``...), never op names."""
    package = ROOT / "archdsl"
    modules = [*sorted((package / "codegen").glob("*.py")), *sorted((package / "blocks").glob("*.py")),
               *(package / name for name in ("expand.py", "ir.py", "passes.py", "fold.py"))]
    found = [hit for module in modules for hit in _op_name_tests(module)]
    assert found == []


# --- spec parameters as constructor arguments -------------------------------------------------------

PARAMETERS = """
    name: paramnet
    input: [in_channels, 16, 16]
    params: {num_classes: 10, in_channels: 3, depth: 2, p: 0.1}
    checks: {"num_classes >= 2": "a classifier needs two classes"}
    blocks:
      unit:
        params: {out: int}
        body: [{conv: {out: out, k: 3, pad: 1}}, relu]
    network:
      - stem: {conv: {out: 8, k: 3, pad: 1}}
      - layers: {repeat: depth, block: unit, args: {out: 8}}
      - pool: {adaptive_avgpool: {size: 1}}
      - flatten
      - drop: {dropout: {p: p}}
      - fc: {linear: {out: num_classes}}
"""


def test_spec_parameters_are_constructor_and_factory_arguments(write_spec):
    """As torchvision's builders (``resnet50(num_classes=10)``): the parameters that pass through
    to a layer are arguments with the spec's values as defaults, checked by the spec's checks;
    one that counts repeats is written in, and the docstring says so."""
    import torch

    from archdsl.builder import load_generated

    graph = archdsl.load(write_spec(PARAMETERS))
    generated = generate(graph)
    source = generated.source
    init = "        num_classes: int = 10,\n        in_channels: int = 3,\n        p: float = 0.1,\n"
    assert f"def __init__(\n        self,\n{init}    ) -> None:" in source
    assert "def paramnet(num_classes: int = 10, in_channels: int = 3, p: float = 0.1)" in source
    # the parameter written in, with the code generator's reason (a repeat count)
    assert re.search(r"Fixed when compiled: `depth=2` \(a repeat count that depends on\s+block\s+"
                     r"parameters\)\.", source)
    assert "nn.Linear(8, num_classes)" in source and "nn.Conv2d(in_channels, 8" in source
    module = load_generated(generated)
    model = module.paramnet(num_classes=4, in_channels=1).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 16, 16)).shape == (2, 4)
    assert module.paramnet().fc.out_features == 10
    with pytest.raises(ValueError, match="a classifier needs two classes"):
        module.paramnet(num_classes=1)


def _generated_module(name: str):
    from archdsl.builder import load_generated

    return load_generated(generate(archdsl.load(ROOT / "specs" / f"{name}.yaml")))


def _same_network(model, reference, shape: tuple[int, ...]) -> None:
    """``model`` takes ``reference``'s weights with strict=True and computes what it computes."""
    import torch

    model.load_state_dict(reference.state_dict(), strict=True)
    model.eval(), reference.eval()
    x = torch.randn(1, *shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))


@pytest.mark.parametrize("name,kwargs,reference", [
    # growth_rate sizes every dense layer and transition through arithmetic
    ("densenet121", {"growth_rate": 48}, lambda tv: tv.DenseNet(48, (6, 12, 24, 16), 64)),
    # alpha sizes every layer through make_divisible: the 0.5 class built with 1.0 is mnasnet1_0
    ("mnasnet0_5", {"alpha": 1.0}, lambda tv: tv.mnasnet1_0()),
    # width picks the stage widths: the 1.0x class built with 0.5 is shufflenet_v2_x0_5
    ("shufflenet_v2_x1_0", {"width": 0.5}, lambda tv: tv.shufflenet_v2_x0_5()),
    # width_mult is read inside the inverted residual block too: its class takes it
    ("mobilenet_v2", {"width_mult": 0.5}, lambda tv: tv.mobilenet_v2(width_mult=0.5)),
], ids=["densenet121-growth48", "mnasnet-alpha1", "shufflenet-width0.5", "mobilenet-width0.5"])
def test_parameters_that_feed_arithmetic_are_constructor_arguments(name, kwargs, reference):
    """``densenet121(growth_rate=48)`` is torchvision's DenseNet with growth rate 48: the network
    class computes its widths from its arguments (a test on a size decided by the compiled value
    would have kept the parameter written in)."""
    import torch
    import torchvision

    module = _generated_module(name)
    torch.manual_seed(0)
    _same_network(getattr(module, name)(**kwargs), reference(torchvision.models), (3, 64, 64))


def test_sizes_computed_from_arguments_are_locals_of_init():
    source = compile_graph(archdsl.load(ROOT / "specs" / "densenet121.yaml"))
    assert "        channels = (64 + 6 * growth_rate) // 2\n" in source
    assert "        channels_1 = (channels + 12 * growth_rate) // 2\n" in source
    assert "transition2=Transition(channels + 12 * growth_rate)" in source
    # a dense block whose layers' widths follow the index is a loop, as torchvision's _DenseBlock
    assert ('f"denselayer{i + 1}": DenseLayer(\n                            channels_1 + i * '
            'growth_rate,') in source and "for i in range(24)" in source
    source = compile_graph(archdsl.load(ROOT / "specs" / "mnasnet1_0.yaml"))
    assert "        channels = make_divisible(32 * alpha, 8)\n" in source


def test_a_block_that_reads_a_constructor_argument_takes_it_too():
    """Blocks see the spec's parameters: a block class that reads one the network takes (or uses
    a block that does) takes it too, and the network passes it on. Inception-v3's auxiliary head
    reads num_classes (before, InceptionV3(num_classes=10) had a 1000-way auxiliary classifier)."""
    import torchvision

    source = compile_graph(archdsl.load(ROOT / "specs" / "inception_v3.yaml"))
    assert "def __init__(self, in_channels: int, num_classes: int = 1000) -> None:" in source
    assert "self.AuxLogits = InceptionAux(768, num_classes=num_classes)" in source
    model = _generated_module("inception_v3").inception_v3(num_classes=10)
    reference = torchvision.models.Inception3(num_classes=10, aux_logits=True, init_weights=False)
    assert {k: v.shape for k, v in model.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()}
    source = compile_graph(archdsl.load(ROOT / "specs" / "mobilenet_v2.yaml"))
    assert "        out = make_divisible(c * width_mult, 8)\n" in source


def test_known_numbers_in_an_argument_expression_are_computed(write_spec):
    """``p * (i + 1) / 3`` in a repeat, ``p`` an argument: the index's arithmetic is done."""
    source = compile_text(write_spec, """
        name: drops
        input: [3, 8, 8]
        params: {p: 0.3}
        network:
          - conv: {conv: {out: 4, k: 1}}
          - drops: {repeat: 3, layer: {dropout: {p: "p * (i + 1) / 3"}}}
    """)
    assert "nn.Dropout(p=p * 2 / 3)" in source and "(1 + 1)" not in source


# --- blocks with several inputs ---------------------------------------------------------------------

FPN_SPEC = """
    name: fpn_two_levels
    input: [3, 32, 32]
    blocks:
      top_down:
        doc: One top-down step of torchvision's FeaturePyramidNetwork.
        inputs: [fine, coarse]
        params: {out: int}
        body:
          - lateral: {conv: {out: out, k: 1}, from: fine}
          - top: {upsample: {scale: 2, mode: nearest}, from: coarse}
          - {add: {}, from: [lateral, top]}
          - smooth: {conv: {out: out, k: 3, pad: 1}}
    network:
      - c2: {conv: {out: 16, k: 3, stride: 2, pad: 1}}
      - c3: {conv: {out: 32, k: 3, stride: 2, pad: 1}}
      - inner3: {conv: {out: 8, k: 1}}
      - p2: {top_down: {out: 8}, from: [c2, inner3]}
"""


def test_a_block_with_two_inputs_computes_torchvisions_feature_pyramid(write_spec):
    """FPN's top-down fusion of two levels (a 1x1 lateral conv on the fine map plus the coarse
    map upsampled, then a 3x3 conv), as a block with two inputs: the compiled module, with
    torchvision.ops.FeaturePyramidNetwork's weights copied in, gives its finer output."""
    import torch
    from torchvision.ops import FeaturePyramidNetwork

    from archdsl.builder import check_model

    path = write_spec(FPN_SPEC)
    source = compile_graph(archdsl.load(path))
    assert "def forward(self, fine: Tensor, coarse: Tensor) -> Tensor:" in source
    assert re.search(r"x\w* = self\.p2\(x\w*, x\w*\)", source), source
    graph = archdsl.load(path)
    model = archdsl.build(path).eval()
    torch.manual_seed(0)
    fpn = FeaturePyramidNetwork([16, 32], 8).eval()
    with torch.no_grad():
        for mine, theirs in ((model.p2.lateral, fpn.inner_blocks[0][0]),
                             (model.inner3, fpn.inner_blocks[1][0]),
                             (model.p2.smooth, fpn.layer_blocks[0][0])):
            mine.weight.copy_(theirs.weight)
            mine.bias.copy_(theirs.bias)
        x = torch.randn(2, 3, 32, 32)
        c2 = model.c2(x)
        expected = fpn({"0": c2, "1": model.c3(c2)})["0"]
        out = model(x)
    assert torch.allclose(out, expected, atol=1e-6)
    assert check_model(graph, model, out) == []
    fused = sum(p.numel() for m in (fpn.inner_blocks, fpn.layer_blocks[0]) for p in m.parameters())
    assert sum(p.numel() for m in (model.p2, model.inner3) for p in m.parameters()) == fused


def test_a_block_with_two_inputs_inside_a_block_and_used_twice(write_spec):
    """A use inside another block makes that block one class per use too; two uses with the
    same shapes share one class; inside a named sequence the use is refused, located."""
    import torch

    from archdsl.builder import check_model

    path = write_spec((COMPILES_DIR / "several_inputs.yaml").read_text(encoding="utf-8"))
    source = compile_graph(archdsl.load(path))
    assert source.count("class Fuse_") == 1, source
    assert "self.f2(f1, right)" in source or re.search(r"self\.f2\(\w+, \w+\)", source)
    graph = archdsl.load(path)
    model = archdsl.build(path).eval()
    with torch.no_grad():
        assert check_model(graph, model, model(torch.randn(1, 4, 8, 8))) == []
    path.write_text(path.read_text().replace("  - p: pair\n", "  - p: [pair]\n").replace(
        "- q: {fuse: {}, from: [p, input]}", "- s: [relu, {fuse: {}, from: [p, input]}]"))
    with pytest.raises(CodegenError, match="cannot be part of an nn.Sequential"):
        compile_graph(archdsl.load(path))


# --- `from:` a member of a named sequence -------------------------------------------------------------

def test_a_member_of_a_named_sequence_read_from_outside_runs_member_by_member(write_spec):
    """`from: layer1.bn1`: layer1 stays one nn.Sequential (its state_dict keys), run member by
    member in forward; the ReLU after the member read is not in place. Equal to the same
    nn.Sequential written by hand with the tap taken between its members."""
    import collections

    import torch
    from torch import nn

    from archdsl.builder import check_model

    path = write_spec("""
        name: member_read
        input: [3, 16, 16]
        network:
          - layer1:
              - conv1: {conv: {out: 8, k: 3, pad: 1}}
              - bn1: bn
              - relu
              - {conv: {out: 8, k: 3, pad: 1}}
          - {add: {}, from: [layer1, layer1.bn1]}
          - tap: {conv: {out: 4, k: 1}}
    """)
    source = compile_graph(archdsl.load(path))
    assert "bn1 = self.layer1[1](x)" in source and '("2", nn.ReLU()),' in source, source
    graph = archdsl.load(path)
    model = archdsl.build(path).eval()
    torch.manual_seed(0)
    layer1 = nn.Sequential(collections.OrderedDict([
        ("conv1", nn.Conv2d(3, 8, 3, padding=1)), ("bn1", nn.BatchNorm2d(8)), ("2", nn.ReLU()),
        ("3", nn.Conv2d(8, 8, 3, padding=1))]))
    reference = nn.ModuleDict({"layer1": layer1, "tap": nn.Conv2d(8, 4, 1)}).eval()
    with torch.no_grad():
        reference["layer1"][1].running_mean.uniform_(-1, 1)
        model.load_state_dict(reference.state_dict(), strict=True)
        x = torch.randn(2, 3, 16, 16)
        bn1 = layer1[1](layer1[0](x))
        expected = reference["tap"](layer1[3](layer1[2](bn1)) + bn1)
        out = model(x)
    assert torch.allclose(out, expected, atol=1e-6)
    assert check_model(graph, model, out) == []


def test_a_block_reading_a_member_of_its_own_sequence_stays_generic(write_spec):
    import torch

    from archdsl.builder import check_model

    path = write_spec("""
        name: member_block
        input: [3, 16, 16]
        blocks:
          tapped:
            params: {out: int}
            body:
              - features:
                  - conv1: {conv: {out: out, k: 3, pad: 1, bias: false}}
                  - bn1: bn
                  - relu
              - {concat: {}, from: [features, features.conv1]}
        network:
          - a: {tapped: {out: 4}}
          - b: {tapped: {out: 6}}
    """)
    source = compile_graph(archdsl.load(path))
    assert source.count("class Tapped(nn.Module):") == 1 and "self.b = Tapped(8, 6)" in source
    assert "conv1 = self.features[0](x)" in source and "torch.cat([x, conv1], 1)" in source
    graph = archdsl.load(path)
    model = archdsl.build(path).eval()
    with torch.no_grad():
        assert check_model(graph, model, model(torch.randn(1, 3, 16, 16))) == []
