"""``archdsl report --symbolic``: every formula equals the concrete analysis on a grid of points.

The ground truth is :func:`archdsl.sweep.run_sweep` (one expansion and analysis per point); input
sizes run from the smallest one the network accepts up to 1024.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import sympy
from click.testing import CliRunner

from archdsl.cli import cli
from archdsl.errors import SpecError
from archdsl.pipeline import instantiate, parse, resolve_params
from archdsl.report import shape_text
from archdsl.sweep import Axis, run_sweep
from archdsl.symbolic import analyze_symbolic, named_floors, render, to_json_data

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"

# The figures a sweep records, each of which has a formula.
FIGURES = ("params", "buffers", "macs", "flops", "fvcore_flops", "activation_bytes")


def symbolic(name: str, names: str, **sets: Any):
    spec = parse(SPECS / f"{name}.yaml")
    return spec, analyze_symbolic(spec, resolve_params(spec, sets), names.split(","))


def smallest_side(spec) -> int:
    """The smallest square input the network accepts (found by expanding, not assumed)."""
    params = resolve_params(spec, {})

    def works(side: int) -> bool:
        try:
            instantiate(spec, params, input=(3, side, side), smallest_input_hint=False)
        except SpecError:
            return False
        return True

    low, high = 0, 1024  # works(high); not works(low) (a size of 0 is no input)
    assert works(high)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if works(middle) else (middle, high)
    assert high == 1 or not works(high - 1)
    return high


def sides_from(smallest: int) -> tuple[list[int], list[int]]:
    """Heights and widths from the smallest legal size up to 1024, odd and even, H != W."""
    heights = sorted({smallest, smallest + 1, smallest + 6, 225, 1024})
    widths = sorted({smallest, smallest + 3, 97, 1023})
    return heights, widths


def input_axis(heights: list[int], widths: list[int]) -> Axis:
    shapes = tuple((3, h, w) for h in heights for w in widths)
    return Axis("input", shapes, tuple(shape_text(s) for s in shapes))


def param_axis(name: str, values: list[Any]) -> Axis:
    return Axis(name, tuple(values), tuple(map(str, values)))


def assert_equal_on_grid(result, spec, axes: list[Axis], batch: int = 1) -> int:
    """Every formula (and the output shape, and each assumption) at every point of the grid."""
    sweep = run_sweep(spec, axes, batch=batch)
    for point in sweep.points:
        assert point.error is None, (point.label, point.error)
        values = {"batch": batch}
        for name, value in point.values.items():
            if name == "input":
                values.update(H=value[1], W=value[2])
            else:
                values[name] = value
        for figure in FIGURES:
            assert result.evaluate(figure, values) == point.record[figure], (point.label, figure)
        shape = result.evaluate_shape(values)
        assert point.record["output"].split(", ")[0].split(" ")[-1] == shape_text(shape)
        for condition, _ in result.assumptions:
            assert bool(condition.subs({result.symbols[k]: v for k, v in values.items()
                                        if k in result.symbols})), (point.label, condition)
    return len(sweep.points)


def test_resnet50_macs_in_H_and_W_equal_the_analysis_from_the_smallest_input_to_1024():
    spec, result = symbolic("resnet50", "H,W")
    assert result.formulas["macs"].expr.free_symbols == {result.symbols["H"], result.symbols["W"]}
    assert "floor" in str(result.formulas["macs"].expr)  # the strides' floor divisions
    assert not result.formulas["params"].expr.free_symbols  # parameters do not depend on H, W
    heights, widths = sides_from(smallest_side(spec))
    assert assert_equal_on_grid(result, spec, [input_axis(heights, widths)]) == 20


def test_resnet50_parameters_in_num_classes_and_compute_in_batch():
    spec, result = symbolic("resnet50", "num_classes,batch")
    k = result.symbols["num_classes"]
    assert sympy.Poly(result.formulas["params"].expr, k).degree() == 1
    assert result.output_shape == (k,)
    for batch in (1, 3):
        assert_equal_on_grid(result, spec, [param_axis("num_classes", [1, 10, 1000, 21843])],
                             batch=batch)


def test_resnet_cifar_in_width_and_input_size():
    spec, result = symbolic("resnet_cifar", "H,W,width")
    width = result.symbols["width"]
    assert sympy.Poly(result.formulas["params"].expr, width).degree() == 2  # conv weights: w^2
    heights, widths = sides_from(smallest_side(spec))
    axes = [param_axis("width", [2, 6, 16, 38]), input_axis(heights[:3] + [1024], widths[1:3])]
    assert_equal_on_grid(result, spec, axes)


def test_densenet_in_growth_rate():
    spec, result = symbolic("densenet121", "growth_rate")
    # the transitions halve the channels: floor(c / 2) of a count that grows with the rate
    assert "floor(15*growth_rate/2)" in str(result.formulas["params"].expr)
    assert_equal_on_grid(result, spec, [param_axis("growth_rate", [1, 7, 48])])


def test_ceil_mode_pooling_gives_exact_formulas_and_states_what_it_assumes():
    spec, result = symbolic("squeezenet1_0", "H,W")
    assert result.assumptions  # the last window of each ceil-mode pooling, decided at the probe
    assert all(loc is not None and loc.file.endswith("squeezenet1_0.yaml")
               for _, loc in result.assumptions)
    heights, widths = sides_from(smallest_side(spec))
    assert_equal_on_grid(result, spec, [input_axis(heights, widths)])


INT_WIDTH = """
    name: widths
    input: [3, 32, 32]
    params: {width: 1.0, n: 10}
    network:
      - {conv: {out: "int(24 * width)", k: 3, stride: 2}}
      - {conv: {out: "n * 2 + 1", k: 3, pad: 1, groups: 1}}
      - {avgpool: {k: 2}}
      - flatten
      - {linear: {out: "n // 3 + max(n, 2)"}}
"""


def test_int_and_floor_of_spec_parameters_stay_exact(write_spec):
    path = write_spec(INT_WIDTH)
    spec = parse(path)
    result = analyze_symbolic(spec, resolve_params(spec, {"n": 10}), ["width", "H"])
    assert "floor(24*width)" in str(result.formulas["params"].expr)
    axes = [param_axis("width", [0.25, 0.5, 0.7, 1.0, 1.3, 2.75]),
            input_axis([5, 6, 31, 64], [32])]
    assert_equal_on_grid(result, spec, axes)


def refusal(path: Path, names: list[str]) -> str:
    """The rendered error of a symbolic analysis that must fail."""
    spec = parse(path)
    with pytest.raises(SpecError) as caught:
        analyze_symbolic(spec, resolve_params(spec, {}), names)
    return caught.value.render()


def test_min_or_max_of_a_parameter_is_not_a_closed_form_and_says_where(write_spec):
    path = write_spec(INT_WIDTH)
    text = refusal(path, ["n"])
    line = INT_WIDTH.splitlines().index('      - {linear: {out: "n // 3 + max(n, 2)"}}')
    assert f"{path}:{line}:" in text and "not a closed form in n" in text


def test_make_divisible_that_cannot_be_expressed_is_refused_located(write_spec):
    path = write_spec("""
        name: mb
        input: [3, 32, 32]
        params: {width: 1.0}
        network:
          - {conv: {out: "make_divisible(32 * width)", k: 3}}
    """)
    text = refusal(path, ["width"])
    assert f"{path}:5:" in text and "not a closed form in width" in text


def test_a_repeat_count_is_not_a_closed_form_and_the_cli_says_where():
    text = (SPECS / "resnet_cifar.yaml").read_text(encoding="utf-8").splitlines()
    line = next(i for i, row in enumerate(text, 1) if 'repeat: "(depth - 2) // 6"' in row)
    column = text[line - 1].index("(depth") + 1
    result = CliRunner().invoke(cli, ["report", str(SPECS / "resnet_cifar.yaml"),
                                      "--symbolic", "depth"])
    assert result.exit_code == 1
    assert f"resnet_cifar.yaml:{line}:{column}: error: not a closed form in depth: a `repeat:` " \
           "count" in result.output


def test_a_when_condition_on_a_parameter_is_not_a_closed_form(write_spec):
    path = write_spec("""
        name: cond
        input: [3, 8, 8]
        params: {n: 4}
        network:
          - {conv: {out: n, k: 3}}
          - {relu: {}, when: "n > 3"}
    """)
    text = refusal(path, ["n"])
    assert f"{path}:6:" in text and "not a closed form in n: a `when:` condition" in text


def test_command_line_errors():
    runner = CliRunner()
    wrong = runner.invoke(cli, ["report", str(SPECS / "resnet_cifar.yaml"), "--symbolic", "widht"])
    assert wrong.exit_code == 2 and "did you mean `width`" in wrong.output
    csv = runner.invoke(cli, ["report", str(SPECS / "lenet.yaml"), "--symbolic", "H", "-f", "csv"])
    assert csv.exit_code == 2 and "--symbolic writes text, md, json" in csv.output
    two = runner.invoke(cli, ["report", str(SPECS / "lenet.yaml"), str(SPECS / "lenet.yaml"),
                              "--symbolic", "H"])
    assert two.exit_code == 2 and "one spec" in two.output
    choices = runner.invoke(cli, ["report", str(SPECS / "shufflenet_v2_x1_0.yaml"),
                                  "--symbolic", "width"])
    assert choices.exit_code == 1
    assert "shufflenet_v2_x1_0.yaml:" in choices.output and "list of choices" in choices.output


def _from_tree(tree: dict[str, Any], values: dict[str, Any]) -> Any:
    """docs/REPORT_JSON.md's expression tree, evaluated with Python numbers (not SymPy)."""
    if "symbol" in tree:
        return values[tree["symbol"]]
    if "int" in tree:
        return tree["int"]
    if "rational" in tree:
        return Fraction(*tree["rational"])
    args = [_from_tree(arg, values) for arg in tree["args"]]
    if tree["op"] == "add":
        return sum(args)
    if tree["op"] == "mul":
        product = 1
        for arg in args:
            product *= arg
        return product
    if tree["op"] == "pow":
        return Fraction(args[0]) ** args[1]
    if tree["op"] == "floor":
        return Fraction(args[0]).__floor__()
    raise AssertionError(f"unexpected op {tree['op']}")


def test_json_gives_parsable_formulas_and_expression_trees():
    _, result = symbolic("resnet_cifar", "H,W,width,batch")
    data = json.loads(render(result, "json"))
    assert data == to_json_data(result)
    assert data["symbols"]["width"] == {"domain": "positive integer", "probe": 16}
    names = {name: sympy.Symbol(name, integer=True, positive=True) for name in data["symbols"]}
    point = {"H": 29, "W": 40, "width": 5, "batch": 3}
    for key, entry in data["formulas"].items():
        parsed = sympy.sympify(entry["formula"], locals=names)
        assert parsed == result.formulas[key].expr
        assert _from_tree(entry["tree"], point) == result.evaluate(key, point)
        assert entry["probe"] == result.formulas[key].probe
    assert data["output_shape"] == [{"formula": "10", "tree": {"int": 10}, "probe": 10}]
    assert data["assumptions"] == []


def test_text_and_markdown_show_each_formula_and_its_value_at_the_probe():
    runner = CliRunner()
    spec = str(SPECS / "resnet_cifar.yaml")
    text = runner.invoke(cli, ["report", spec, "--symbolic", "width"])
    assert text.exit_code == 0, text.output
    assert "params = 1044*width**2 + 153*width + 10" in text.output
    assert "269,722 at the probe" in text.output
    md = runner.invoke(cli, ["report", spec, "--symbolic", "width", "-f", "md"])
    assert md.exit_code == 0
    assert "| params | `1044*width**2 + 153*width + 10` | 269,722 |" in md.output


def test_a_number_that_loses_its_formula_is_caught_at_a_second_point(write_spec, monkeypatch):
    """Python's int() copies a traced number to a plain int: the formula would then be right at
    the probe only. The analysis checks every formula at a second point and fails loudly."""
    from archdsl import expr

    monkeypatch.setitem(expr.FUNCTIONS, "int", int)
    path = write_spec(INT_WIDTH)
    spec = parse(path)
    with pytest.raises(AssertionError, match="the params formula gives"):
        analyze_symbolic(spec, resolve_params(spec, {}), ["width"])


def test_text_names_the_sizes_the_strides_make_and_they_substitute_back():
    _, result = symbolic("squeezenet1_0", "H,W,num_classes")
    definitions, short = named_floors(result)
    assert [str(name) for name, _ in definitions][:2] == ["s1", "s2"]
    back = {}
    for name, value in definitions:  # each definition reads only earlier names
        back[name] = value.xreplace(back)
    for key, formula in result.formulas.items():
        assert sympy.expand(short[key].xreplace(back) - formula.expr) == 0, key
    for i, (condition, _) in enumerate(result.assumptions):
        assert short[f"assumption{i}"].xreplace(back) == sympy.expand(condition)
    text = render(result, "text")
    assert f"  s1 = {definitions[0][1]}\n" in text
    assert f"macs = {short['macs']}\n" in text
