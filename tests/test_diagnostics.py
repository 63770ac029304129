"""Broken and hostile specs: every one gets a precise diagnostic, none runs code or hangs.

The corpus lives in ``tests/corpus``: ``bad/`` holds mistakes (syntax, names, types, shapes,
graph, expressions), ``hostile/`` holds attacks (YAML tags and alias bombs, expressions reaching
for Python, names that would inject code, resource exhaustion) and ``use/`` holds library
imports that escape the spec's directory or form a cycle. Each case is one table row pinning the
exit code, the wording of the first diagnostic (a regex), its ``file:line:col``, more lines that
must appear (expected/found/hint/notes), and that no traceback is printed. The command line runs
in-process through :func:`archdsl.cli.main`; a few cases also run as real subprocesses to prove
the same end to end, in bounded time.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from archdsl.cli import LAZY_COMMANDS, main

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "corpus"

# The first line of a located diagnostic: FILE:LINE:COL: SEVERITY: MESSAGE
HEADLINE = re.compile(r"^(?P<file>[^\n]*?):(?P<line>\d+):(?P<col>\d+): (?P<severity>error|warning): "
                      r"(?P<message>.*)$", re.MULTILINE)


@dataclass(frozen=True)
class Case:
    """One spec and what ``archdsl check`` must say about it.

    ``where`` is ``"LINE:COL"`` of the first diagnostic, or None for problems without a position
    (a missing file, a directory). ``message`` must match (``re.search``) the first diagnostic's
    message; each pattern of ``also`` must be found in stderr.
    """

    id: str
    path: str  # relative to tests/corpus (the working directory of the run)
    where: str | None
    message: str
    also: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    exit_code: int = 1
    severity: str = "error"
    file: str | None = None  # the file the diagnostic is in, when not `path` (a library)


def case(id: str, path: str, where: str | None, message: str, *also: str, **kw) -> Case:
    return Case(id, path, where, message, tuple(also), **kw)


# --- bad input: mistakes --------------------------------------------------------------------

FILE_CASES = [
    case("not_yaml", "bad/not_yaml.yaml", "3:8",
         r"^invalid YAML: expected ',' or '\]', but got ':'$",
         r"hint: check indentation, colons and brackets near here"),
    case("empty_file", "bad/empty.yaml", "1:1", r"^bad/empty\.yaml is empty$",
         r"expected: a mapping with `name`, `input` and `network`"),
    case("binary_garbage", "bad/binary.yaml", "1:1",
         r"^bad/binary\.yaml is a binary file, not a YAML spec$", r"found: NUL bytes"),
    case("directory", "bad", None, r"^bad is a directory, not a spec file$",
         r"hint: name a \.yaml file inside it"),
    case("missing_file", "bad/does_not_exist.yaml", None, r"^no such file: bad/does_not_exist\.yaml$",
         r"hint: check the path"),
    case("latin1_encoding", "bad/latin1.yaml", "1:10", r"^bad/latin1\.yaml is not valid UTF-8$",
         r"found: byte 0xe9", r"hint: save the file as UTF-8"),
    case("utf16_encoding", "bad/utf16.yaml", "1:1", r"^bad/utf16\.yaml is UTF-16 or UTF-32, not UTF-8$",
         r"found: a UTF-16/32 byte-order mark", r"hint: save the file as UTF-8"),
    case("control_character", "bad/control_char.yaml", "1:11",
         r"^bad/control_char\.yaml contains a character YAML does not allow$",
         r"found: U\+0007 \(a control character\)"),
    case("huge_integer_literal", "bad/huge_int.yaml", "4:25", r"^cannot read the int value `1000+\.\.\.`$",
         r"found: 5001 characters"),
    case("invalid_date", "bad/bad_date.yaml", "2:8", r"^cannot read the timestamp value `2024-13-45`$"),
    case("duplicate_key", "bad/duplicate_key.yaml", "4:34", r"^duplicate key `out`$",
         r"note: `out` was first given here \(bad/duplicate_key\.yaml:4:20\)",
         r"hint: each key may appear once in a mapping"),
    case("top_level_list", "bad/top_level_list.yaml", "1:1", r"^a spec must be a mapping of keys$",
         r"found: a list"),
    case("unknown_top_level_key", "bad/unknown_top_key.yaml", "3:1", r"^unknown top-level key `netwrok`$",
         r"hint: did you mean `network`\?"),
    case("missing_network", "bad/missing_network.yaml", "1:1", r"^missing required key `network`$",
         r"hint: a file with only `blocks:` is a library"),
    case("input_size_zero", "bad/bad_input_shape.yaml", "2:12", r"^`input\.1` must be at least 1$",
         r"found: `0` \(an integer\)"),
    case("input_two_dims", "bad/input_two_dims.yaml", "2:8", r"^`input` has the wrong length$",
         r"expected: \[C, H, W\] for images, or \[F\] for flat features"),
]

NAME_CASES = [
    case("unknown_op", "bad/unknown_op.yaml", "4:13", r"^unknown op or block `cnov`$",
         r"hint: did you mean `conv`\?"),
    case("unknown_op_pool", "bad/unknown_op_pool.yaml", "5:6", r"^unknown op or block `maxpol`$",
         r"hint: did you mean `maxpool`"),
    case("unknown_block", "bad/unknown_block.yaml", "8:32", r"^unknown block `basci`$",
         r"hint: did you mean `basic`\?"),
    case("unknown_attribute", "bad/unknown_attr.yaml", "4:28", r"^`conv` has no attribute `kernel`$",
         r"expected: one of: out, k, stride, pad, dilation, groups, bias", r"hint: archdsl calls it `k`"),
    case("unknown_attribute_typo", "bad/unknown_attr_typo.yaml", "4:34", r"^`conv` has no attribute `strid`$",
         r"hint: did you mean `stride`\?"),
    case("unknown_block_parameter", "bad/unknown_block_param.yaml", "8:30",
         r"^block `basic` has no parameter `strde`$", r"hint: did you mean `stride`\?"),
    case("missing_attribute", "bad/missing_attr.yaml", "4:12", r"^`conv1` \(conv\): `conv` needs `out`$",
         r"expected: `out`: an integer >= 1", r"found: no value"),
    case("missing_block_parameter", "bad/missing_block_param.yaml", "8:13",
         r"^block `basic` needs the parameter `out`$", r"expected: `out: <int>` in the arguments",
         r"hint: declared at bad/missing_block_param\.yaml:5:14"),
]

VALUE_CASES = [
    case("wrong_type_bool", "bad/wrong_type.yaml", "4:34",
         r"^`conv1` \(conv\): `bias` must be true or false$",
         r"found: 0"),
    case("wrong_type_float_for_int", "bad/wrong_type_float.yaml", "4:20",
         r"^`conv1` \(conv\): `out` must be an integer >= 1$", r"found: 8\.0 \(a float\)",
         r"hint: write 8, or wrap an expression in int\(\.\.\.\)"),
    case("wrong_type_block_parameter", "bad/wrong_type_block_param.yaml", "8:27",
         r"^parameter `out` of block `basic` has the wrong type$", r"expected: an int",
         r"found: `2\.5` \(a number\)"),
    case("negative_kernel", "bad/negative_kernel.yaml", "4:28",
         r"^`conv1` \(conv\): `k` must be an integer >= 1 or a list \[h, w\] of them$", r"found: -3"),
    case("zero_stride", "bad/zero_stride.yaml", "4:34",
         r"^`conv1` \(conv\): `stride` must be an integer >= 1 or a list \[h, w\] of them$", r"found: 0"),
    case("zero_channels", "bad/zero_channels.yaml", "4:20",
         r"^`conv1` \(conv\): `out` must be an integer >= 1$",
         r"found: 0"),
    case("zero_groups", "bad/zero_groups.yaml", "4:34",
         r"^`conv1` \(conv\): `groups` must be an integer >= 1$", r"found: 0"),
    case("groups_not_dividing_channels", "bad/groups_not_dividing.yaml", "5:35",
         r"^`conv2` \(conv\): conv groups \(6\) must divide both the input channels \(16\) and the "
         r"output channels \(24\)$",
         r"found: groups 6: 16 % 6 = 4, 24 % 6 = 0", r"hint: the largest valid groups is 8"),
]

SHAPE_CASES = [
    case("kernel_larger_than_padded_input", "bad/kernel_too_large.yaml", "4:12",
         r"^`conv1` \(conv\): conv window is larger than its input: 11x11 kernel on a 8 x 8 input "
         r"\(10 x 10 with padding\)$",
         r"expected: a padded input of at least 11 x 11",
         r"the smallest that works is 3x9x9 \(--input 3x9x9\)"),
    case("output_shrinks_below_1x1", "bad/shrinks_below_1x1.yaml", "8:12",
         r"^`conv3` \(conv\): conv window is larger than its input: 3x3 kernel on a 2 x 2 input",
         r"note: input 0 \(32 x 2 x 2\) comes from `pool2` \(bad/shrinks_below_1x1\.yaml:7:12\)",
         r"the input 3x32x32 is too small for this network; the smallest that works is 3x43x43"),
    case("add_of_different_shapes", "bad/add_mismatch.yaml", "7:10",
         r"^`sum` \(add\): add needs inputs of one shape; input 1 differs from input 0$",
         r"found: input 0: 32 x 32 x 32, input 1: 16 x 32 x 32",
         r"note: input 0 \(32 x 32 x 32\) comes from `left` \(bad/add_mismatch\.yaml:5:11\)",
         r"note: input 1 \(16 x 32 x 32\) comes from `right` \(bad/add_mismatch\.yaml:6:12\)"),
    case("concat_of_different_spatial_sizes", "bad/concat_spatial.yaml", "7:12",
         r"^`cat` \(concat\): concat needs inputs with the same H x W; input 1 differs from input 0$",
         r"note: input 0 \(8 x 32 x 32\) comes from `a` \(bad/concat_spatial\.yaml:5:12\)",
         r"note: input 1 \(8 x 16 x 16\) comes from `b` \(bad/concat_spatial\.yaml:6:12\)"),
    case("flatten_feeding_conv", "bad/flatten_into_conv.yaml", "6:12",
         r"^`conv2` \(conv\): conv needs a C x H x W input$", r"found: 7200 \(flat\)",
         r"note: input 0 \(7200\) comes from `flatten` \(bad/flatten_into_conv\.yaml:5:5\)",
         r"hint: conv works on images; apply it before `flatten`"),
    case("linear_on_unflattened_input", "bad/linear_not_flat.yaml", "5:9",
         r"^`fc` \(linear\): linear needs a flat input$", r"found: 8 x 30 x 30",
         r"note: input 0 \(8 x 30 x 30\) comes from `conv1` \(bad/linear_not_flat\.yaml:4:12\)",
         r"hint: add `flatten` before it"),
]

# The language of issue 12: new ops' attributes and shapes, and layer names.
LANGUAGE_CASES = [
    case("split_sizes_not_summing", "bad/split_sizes_sum.yaml", "4:28",
         r"^`part` \(channel_split\): channel_split `sizes` must sum to the channels \(96\)$",
         r"expected: sizes summing to 96", r"found: 64 \+ 16 = 80"),
    case("permute_not_a_permutation", "bad/permute_not_permutation.yaml", "4:22",
         r"^`nhwc` \(permute\): permute `dims` is not a permutation$",
         r"expected: each of 0\.\.3 exactly once", r"found: dims \[0, 2, 2, 1\]"),
    case("permute_wrong_type", "bad/permute_wrong_type.yaml", "4:22",
         r"^`nhwc` \(permute\): `dims` must be a list of integers \(each >= 0\)$", r"found: 1",
         r"hint: write the integers as a list"),
    case("layer_scale_on_flat_input", "bad/layer_scale_flat.yaml", "5:12",
         r"^`gamma` \(layer_scale\): layer_scale needs a C x H x W input \(its scale is C x 1 x 1\)$",
         r"found: 128", r"note: input 0 \(128\) comes from `flatten`"),
    case("upsample_scale_and_size", "bad/upsample_scale_and_size.yaml", "4:21",
         r"^`up` \(upsample\): upsample takes `scale` or `size`, exactly one of them$", r"found: both"),
    case("upsample_pytorch_name", "bad/upsample_pytorch_name.yaml", "4:21",
         r"^`upsample` has no attribute `scale_factor`$", r"hint: archdsl calls it `scale`"),
    case("stochastic_depth_mode_typo", "bad/stochastic_depth_mode_typo.yaml", "4:39",
         r"^`drop` \(stochastic_depth\): `mode` must be one of: row, batch$",
         r"found: 'rows' \(a string\)", r"hint: did you mean `row`\?"),
    case("layernorm_over_typo", "bad/layernorm_over_typo.yaml", "4:24",
         r"^`norm` \(layernorm\): `over` must be one of: all, last, channels$",
         r"hint: did you mean `channels`\?"),
    case("reshape_changes_the_size", "bad/reshape_size.yaml", "4:23",
         r"^`paths` \(reshape\): reshape to \[5, -1\] does not keep the 12 elements of 12 x 1 x 1$",
         r"found: \[5, -1\]: 5 elements"),
    case("reserved_word_as_name", "bad/reserved_name.yaml", "4:5",
         r"^`repeat` is reserved \(a construct of the language\) and cannot name a layer$",
         r"hint: name the layer `repeat_`"),
    case("name_and_its_container", "bad/name_container_clash.yaml", "5:5",
         r"^`paths` names a layer and also the container of `paths\.0`$",
         r"found: `paths\.0` beside `paths` in one scope"),
    case("hardtanh_max_below_min", "bad/hardtanh_order.yaml", "4:32",
         r"^`clamp` \(hardtanh\): hardtanh `max` must be above `min`$", r"found: min 1, max -1"),
    case("scale_value_bool", "bad/scale_value_bool.yaml", "4:28",
         r"^`branch_scale` \(scale\): `value` must be a number$", r"found: true \(a boolean\)"),
    case("gelu_approximate_typo", "bad/gelu_approximate_typo.yaml", "4:18",
         r"^`act` \(gelu\): `approximate` must be one of: none, tanh$",
         r"hint: did you mean `tanh`\?"),
    case("upsample_align_corners_nearest", "bad/upsample_align_nearest.yaml", "4:31",
         r"^`up` \(upsample\): upsample `align_corners` applies only to `mode: bilinear`$",
         r"found: mode: nearest"),
    case("linear_over_channels", "bad/linear_over_channels.yaml", "4:27",
         r"^`fc` \(linear\): `over` must be one of: flat, last$", r"found: 'channels'"),
    case("param_typo_in_choice_attr", "bad/param_typo_in_choice_attr.yaml", "5:32",
         r"^unknown name `paddng` in expression$", r"hint: did you mean `padding`\?"),
    case("residual_scale_key", "bad/residual_scale_key.yaml", "7:9",
         r"^unknown key `scale` in `residual`$",
         r"hint: `scale` is an op: make it the last layer of `body:`"),
    case("library_constant_attribute", "bad/library_bad_attr.yaml", "6:33",
         r"^`conv`: `k` must be an integer >= 1 or a list \[h, w\] of them$", r"found: 0",
         r"in block `unit`", r"`layernorm`: `eps` must be a number >= 0", r"^2 errors$"),
    case("library_unknown_op", "bad/library_unknown_op.yaml", "5:39",
         r"^unknown op or block `premute`$", r"hint: did you mean `permute`"),
    case("library_missing_attribute", "bad/library_missing_attr.yaml", "4:12",
         r"^`conv` needs `out`$", r"found: no value", r"in block `unit`"),
    case("name_leading_dash", "bad/name_leading_dash.yaml", "4:5", r"^`-block` cannot name a layer$",
         r"expected: letters, digits, `_` and `-`"),
    case("block_input_reserved", "bad/block_input_reserved.yaml", "5:20",
         r"^`repeat` is reserved and cannot name a block input$", r"hint: use another name, e.g. `repeat_`"),
    case("block_input_twice", "bad/block_input_twice.yaml", "5:20",
         r"^block input `fine` is declared twice$",
         r"note: first declared here \(bad/block_input_twice\.yaml:5:14\)"),
    case("block_input_layer_clash", "bad/block_input_layer_clash.yaml", "7:9",
         r"^layer `fine` has the name of a block input$",
         r"note: input `fine` is declared here \(bad/block_input_layer_clash\.yaml:5:14\)"),
]

GRAPH_CASES = [
    case("undefined_reference", "bad/undefined_ref.yaml", "5:49",
         r"^`from:` names an undefined layer `cnov1`$",
         r"hint: did you mean `conv1`\?"),
    case("forward_reference_cycle", "bad/forward_ref_cycle.yaml", "4:45",
         r"^`from:` names `b`, which comes later \(a cycle\)$",
         r"note: `b` is defined here \(bad/forward_ref_cycle\.yaml:5:5\)"),
    case("self_reference_cycle", "bad/self_ref.yaml", "5:45",
         r"^`b` takes its own output as input \(a cycle\)$"),
    case("block_uses_itself", "bad/block_uses_itself.yaml", "8:9", r"^block `stage` uses itself$",
         r"found: stage -> stage", r"hint: a block cannot contain itself"),
    case("block_cycle_through_another", "bad/block_cycle.yaml", "5:18",
         r"^block `ping` uses itself through other blocks$", r"found: ping -> pong -> ping"),
    case("dead_branch_warning", "bad/dead_branch.yaml", "5:11", r"^`side` is computed but never used$",
         r"hint: feed it to a later layer with `from:`", exit_code=0, severity="warning"),
    case("block_inputs_count", "bad/block_inputs_count.yaml", "11:26",
         r"^block `fuse` takes 2 inputs \(fine, coarse\)$",
         r"expected: 2 layer names in `from:`, in the order fine, coarse", r"found: 1 \(in `from:`\)"),
    case("block_inputs_without_from", "bad/block_inputs_missing_from.yaml", "10:5",
         r"^block `fuse` takes 2 inputs \(fine, coarse\)$",
         r"found: 1 \(the previous layer's output\)", r"hint: give them as `from: \[fine, coarse\]`"),
    case("block_input_typo", "bad/block_input_typo.yaml", "8:35",
         r"^`from:` names an undefined layer `corse`$", r"hint: did you mean `coarse`\?",
         r"in block `fuse`"),
    case("block_one_input_given_two", "bad/block_one_input_given_two.yaml", "9:26",
         r"^block `unit` takes one input$", r"found: 2 inputs in `from:`",
         r"hint: merge them first .*or declare the block's inputs by name"),
    case("member_typo", "bad/member_typo.yaml", "8:30",
         r"^`from:` names `layer1\.bn2`, which is no member of the sequence `layer1`$",
         r"expected: one of `layer1\.conv1`, `layer1\.bn1`, `layer1\.2`",
         r"hint: did you mean `layer1\.bn1`"),
    case("member_of_repeat", "bad/member_of_repeat.yaml", "5:30",
         r"^`from: layer1\.0` reads inside `layer1`, which is a repeat$",
         r"expected: a member of a named sequence", r"hint: read `layer1` itself"),
    case("duplicate_name_in_scope", "bad/duplicate_name.yaml", "6:5",
         r"^two layers are named `conv1` in one scope$",
         r"hint: give each layer of a scope its own name"),
]

EXPRESSION_CASES = [
    case("expr_division_by_zero", "bad/expr_div_zero.yaml", "5:34", r"^division by zero in expression$",
         r"found: `reduction` is 0"),
    case("expr_unknown_name", "bad/expr_unknown_name.yaml", "5:31", r"^unknown name `widht` in expression$",
         r"hint: did you mean `width`\?"),
    case("expr_type_error", "bad/expr_type_error.yaml", "5:26", r"^wrong types for `\*` in expression$",
         r"found: `mode` is str, `2` is int"),
    case("expr_syntax_error", "bad/expr_syntax.yaml", "4:26", r"^invalid expression syntax$"),
]

# --- hostile input ------------------------------------------------------------------------------

YAML_ATTACKS = [
    case("python_object_tag", "hostile/python_tag.yaml", "3:10", r"^YAML tags are not allowed in a spec$",
         r"found: tag `!!python/object/apply:os\.system`"),
    case("custom_tag", "hostile/custom_tag.yaml", "2:8", r"^YAML tags are not allowed in a spec$",
         r"found: tag `!shape`"),
    case("merge_key", "hostile/merge_key.yaml", "4:20",
         r"^YAML merge keys \(`<<`\) are not allowed in a spec$"),
    case("billion_laughs", "hostile/billion_laughs.yaml", "5:12", r"^YAML aliases are not allowed in a spec$",
         r"found: alias `\*a0`"),
    case("deep_flow_nesting", "hostile/deep_nesting.yaml", "3:73",
         r"^the document is nested more than 64 levels deep$"),
    case("deep_block_nesting", "hostile/deep_nesting_block.yaml", "67:129",
         r"^the document is nested more than 64 levels deep$"),
]

EXPRESSION_ATTACKS = [
    case("expr_attribute", "hostile/expr_attribute.yaml", "5:26",
         r"^attribute access is allowed only on `in`$",
         r"found: `width\.real`"),
    case("expr_dunder_walk", "hostile/expr_dunder.yaml", "4:26",
         r"^`__\w+__` is not allowed in an expression$",
         r"hint: names starting with `__` are never reachable"),
    case("expr_import", "hostile/expr_import.yaml", "4:26",
         r"^`__import__` is not allowed in an expression$"),
    case("expr_import_statement", "hostile/expr_import_statement.yaml", "4:26",
         r"^invalid expression syntax$", r"found: invalid syntax"),
    case("expr_call_outside_whitelist", "hostile/expr_call.yaml", "4:26",
         r"^calls are limited to min, max, abs, int, float, round, ceil, floor, make_divisible$",
         r"found: `len`"),
    case("expr_lambda", "hostile/expr_lambda.yaml", "4:27", r"^calls are limited to "),
    case("expr_deep_parentheses", "hostile/expr_deep_parens.yaml", "4:219", r"^invalid expression syntax$",
         r"found: too many nested parentheses"),
    case("expr_deep_unary", "hostile/expr_deep_unary.yaml", "4:69", r"^expression is nested too deeply$",
         r"expected: at most 50 levels of nesting"),
    case("expr_huge_exponent", "hostile/expr_huge_power.yaml", "4:31", r"^exponent too large$",
         r"expected: at most 64", r"found: `9 \*\* 9` is 387420489"),
]

NAME_ATTACKS = [
    case("name_with_newline", "hostile/name_newline.yaml", "4:5",
         r"^`conv1\\nimport os` cannot name a layer$"),
    case("name_with_quotes", "hostile/name_quote.yaml", "4:5",
         r"^`x'\); import os; \('` cannot name a layer$"),
    case("name_trailing_newline", "hostile/name_trailing_newline.yaml", "4:5",
         r"^`conv1\\n` cannot name a layer$"),
    case("model_name_trailing_newline", "hostile/model_name_trailing_newline.yaml", "1:7",
         r"^`resnet\\n` cannot name a model$"),
    case("name_dunder", "hostile/name_dunder.yaml", "4:5", r"^`__import__` cannot name a layer$",
         r"not starting with a digit, `-` or `__`"),
    case("name_python_keyword", "hostile/name_keyword.yaml", "4:5",
         r"^`class` is reserved and cannot name a layer$",
         r"hint: use another name, e.g. `class_`"),
    case("name_terminal_escape", "hostile/name_escape_sequence.yaml", "4:5",
         r"^`\\x1b\[2J\\x1b\[31mrelu` cannot name a layer$"),
    case("block_name_injection", "hostile/block_name_injection.yaml", "4:3",
         r"^`Net\(nn\.Module\):\\n    pass\\nimport os\\nclass X` cannot name a block$"),
    case("model_name_injection", "hostile/model_name_injection.yaml", "1:7", r"cannot name a model$",
         r"hint: the name becomes the generated class's name"),
    case("parameter_name_injection", "hostile/param_name_injection.yaml", "4:3",
         r"^`width=1; import os` cannot name a parameter$"),
    case("name_template_injection", "hostile/name_template_injection.yaml", "5:43",
         r"^the name template makes `a'\); import os #0`, which cannot name a layer$"),
]

USE_ATTACKS = [
    case("use_dotdot_escape", "use/escape/dotdot.yaml", "3:7", r"^`use:` may not leave the project$",
         r"found: `\.\./outside\.yaml` -> .*/tests/corpus/use/outside\.yaml",
         r"hint: copy the library into the project, or pass --allow-path DIR \(the project is the "
         r"nearest directory above the spec holding `\.git`, `pyproject\.toml` or `\.archdsl`\)"),
    case("use_absolute_path", "use/escape/absolute.yaml", "3:7",
         r"^`use:` may not leave the project$",
         r"found: `/etc/passwd` -> /etc/passwd"),
    case("use_missing_library", "use/escape/missing_lib.yaml", "3:7",
         r"^library not found: `no_such_lib\.yaml`$"),
    case("use_malformed_library", "use/bad_library/model.yaml", "4:13",
         r"^`blocks\.unit\.params` has the wrong type$", r"expected: a mapping", r"found: `0` \(an integer\)",
         file="use/bad_library/lib.yaml"),
    case("use_import_cycle", "use/cycle/model.yaml", "1:7", r"^import cycle$",
         r"found: model\.yaml -> a\.yaml -> b\.yaml -> a\.yaml", file="use/cycle/b.yaml"),
]

RESOURCE_ATTACKS = [
    case("repeat_one_billion", "hostile/repeat_billion.yaml", "4:22",
         r"^`repeat: 1,000,000,000` exceeds the node limit$", r"expected: at most 200,000 nodes in all"),
    case("nested_repeats", "hostile/repeat_nested.yaml", "4:44",
         r"^`repeat: 1,000` inside repeats of 1,000 copies exceeds the node limit$",
         r"found: 1,000,000 copies"),
    case("repeats_of_skipped_layers", "hostile/identity_loop.yaml", "4:38",
         r"^`repeat: 150,000` inside repeats of 150,000 copies exceeds the node limit$"),
    case("dense_block_quadratic", "hostile/dense_huge.yaml", "4:13",
         r"^`dense: 150,000` makes too many connections$"),
    case("blocks_using_blocks_exponentially", "hostile/block_exponential.yaml", "4:14",
         r"^expanding the network takes more than 18,000 steps$", args=("--max-nodes", "2000")),
    case("node_limit", "hostile/node_limit.yaml", "5:28", r"^the network expands to more than 50 nodes$",
         r"hint: check repeat counts, or raise the limit with --max-nodes", args=("--max-nodes", "50")),
    case("blocks_nested_hundreds_deep", "hostile/block_chain_deep.yaml", "254:16",
         r"^layers are nested more than 100 deep$", r"found: 50 blocks inside each other here"),
    case("shape_size_overflow", "hostile/shape_overflow.yaml", "5:11", r"^`flat`: the shape overflows$",
         r"expected: each size at most 2,147,483,647", r"found: 4294967296"),
    case("attribute_too_large", "hostile/attr_too_large.yaml", "4:20",
         r"^`conv1` \(conv\): `out` is too large$", r"expected: at most 2\*\*31 - 1 = 2,147,483,647",
         r"found: 4611686018427387904"),
    case("shape_elements_overflow", "hostile/shape_overflow_elements.yaml", "4:12",
         r"^`conv1`: the shape overflows$", r"found: 100000 x 65536 x 65536 = 429,496,729,600,000 elements"),
    case("input_shape_overflow", "hostile/input_overflow.yaml", "2:8", r"^`input`: the shape overflows$"),
]

USAGE_CASES = [
    case("set_unknown_parameter", "bad/expr_unknown_name.yaml", None,
         r"^--set nope: the spec has no parameter `nope`$", r"expected: one of `width`",
         args=("--set", "nope=1"), exit_code=2),
    case("set_wrong_type", "bad/expr_unknown_name.yaml", None, r"^--set width: wrong type$",
         r"found: `wide` \(a string\)", args=("--set", "width=wide"), exit_code=2),
    case("set_without_value", "bad/expr_unknown_name.yaml", None, r"^--set novalue: expected NAME=VALUE$",
         args=("--set", "novalue"), exit_code=2),
    case("input_not_a_shape", "bad/dead_branch.yaml", None, r"^--input 3xfoo: not a shape$",
         args=("--input", "3xfoo"), exit_code=2),
    case("input_zero_size", "bad/dead_branch.yaml", None,
         r"^the input shape must be 3 positive sizes \(or 1 for flat features\)$",
         args=("--input", "0x0x0"), exit_code=2),
    case("input_two_sizes", "bad/dead_branch.yaml", None,
         r"^the input shape must be 3 positive sizes \(or 1 for flat features\)$",
         r"expected: CxHxW, e.g. 3x224x224, or F", args=("--input", "224x224"), exit_code=2),
]

# What the PyTorch code generator cannot express: `check` refuses it with compile's own message,
# so a spec that checks compiles (the specs under compiles/ once crashed compile; test_codegen.py).
CODEGEN_CASES = [
    case("parallel_numbered_branches", "codegen/parallel_numbered_branches.yaml", "5:9",
         r"^the layer name `0` is a number, which only an nn\.Sequential can hold$",
         r"hint: numbered names need a sequence of single-input layers"),
    case("sequential_method_name", "codegen/sequential_method_name.yaml", "6:9",
         r"^the layer name `append` is a method of the nn\.Sequential that holds it",
         r"expected: a name that is not one of `append`", r"hint: rename the layer, e\.g\. `append_`"),
    case("dense_method_name", "codegen/dense_method_name.yaml", "8:45",
         r"^the layer name `values` is a method of the nn\.ModuleDict that holds it",
         r"hint: rename the layer, e\.g\. `values_`"),
    case("named_sequence_from", "codegen/named_sequence_from.yaml", "5:12",
         r"^a named sequence with branches or `from:` cannot be generated yet$",
         r"hint: use an unnamed sequence, or a block"),
    case("identity_output_in_a_named_sequence", "codegen/identity_output_in_a_named_sequence.yaml",
         "9:9", r"^this layer cannot be part of an nn\.Sequential$",
         r"hint: `from:`, `output:`, merges and unnamed branches need a block"),
]

# --- hostile input, round two (issue 15): each class with its variants ---------------------------

USE_PATH_ATTACKS = [
    case("use_nul_byte", "use/hostile/nul_byte.yaml", "3:7", r"^a `use:` path cannot contain a NUL byte$",
         r"found: `lib\\x00\.yaml`"),
    case("use_name_too_long", "use/hostile/name_too_long.yaml", "3:7",
         r"^`use:` path cannot be read: File name too long$",
         r"expected: a library file \(a name of at most 255 bytes, no symlink loop\)",
         r"found: `a{60}`$"),
]

SET_VALUE_ATTACKS = [
    case("set_huge_integer", "bad/expr_unknown_name.yaml", None,
         r"^--set width: cannot read the int value `9{40}\.\.\.`$", r"found: 5000 characters",
         args=("--set", "width=" + "9" * 5000), exit_code=2),
    case("set_impossible_date", "bad/expr_unknown_name.yaml", None,
         r"^--set width: cannot read the timestamp value `2024-13-45`$",
         r"expected: a number of at most 4300 digits, a valid date, or a quoted string",
         args=("--set", "width=2024-13-45"), exit_code=2),
    case("set_alias_bomb", "bad/expr_unknown_name.yaml", None,
         r"^--set width: YAML aliases are not allowed in a spec$", r"found: alias `\*a`",
         args=("--set", "width=[&a [1, 1, 1, 1, 1, 1, 1, 1], *a, *a, *a, *a, *a, *a, *a, *a]"),
         exit_code=2),
    case("set_python_tag", "bad/expr_unknown_name.yaml", None,
         r"^--set width: YAML tags are not allowed in a spec$",
         r"found: tag `!!python/object/apply:os\.system`",
         args=("--set", "width=!!python/object/apply:os.system [true]"), exit_code=2),
]

NUMBER_ATTACKS = [  # (and attribute_too_large among the resource attacks)
    case("parameters_too_many", "hostile/params_too_many.yaml", "4:9",
         r"^`fc`: the network has too many parameters$",
         r"expected: at most 2\*\*40 = 1,099,511,627,776 parameters and buffers in all",
         r"found: 4,611,686,016,279,904,256 in this layer"),
    case("input_option_too_large", "bad/dead_branch.yaml", None,
         r"^--input 1x99999999x99999999: the input is too large$",
         r"found: 1x99999999x99999999 \(a command-line value, not the spec's `input:`\)",
         args=("--input", "1x99999999x99999999"), exit_code=2),
    case("input_option_5000_digits", "bad/dead_branch.yaml", None,
         r"^--input 1x9{58}\.\.\.: the input is too large$",
         args=("--input", "1x" + "9" * 5000 + "x1"), exit_code=2),
]

PARAM_DEFAULT_CASES = [
    case("pair_default_of_the_wrong_type", "bad/pair_default_wrong_type.yaml", "5:38",
         r"^the default of `k` is not of its type `int`$", r"expected: an int",
         r"found: \[1, 7\] \(a list of 2\)"),
    case("list_default_not_a_pair", "bad/list_default_not_pair.yaml", "5:17",
         r"^parameter `k` needs a default or a type$",
         r"expected: a default value \(a number, a boolean, a word or a pair \[h, w\] of whole numbers\)",
         r"found: \[1, 7, 7\] \(a list of 3\)"),
]

BUDGET_ATTACKS = [
    case("let_string_doubling", "hostile/let_string_doubling.yaml", "8:17", r"^value too large$",
         r"expected: a string or list of at most 10,000 characters or items",
         r"found: `a11 \+ a11` is larger"),
    case("let_list_doubling", "hostile/let_list_doubling.yaml", "8:36", r"^value too large$",
         r"found: `\[a12, a12\]` is larger"),
]

CASES = (FILE_CASES + NAME_CASES + VALUE_CASES + SHAPE_CASES + LANGUAGE_CASES + GRAPH_CASES
         + EXPRESSION_CASES
         + YAML_ATTACKS + EXPRESSION_ATTACKS + NAME_ATTACKS + USE_ATTACKS + RESOURCE_ATTACKS
         + USAGE_CASES + USE_PATH_ATTACKS + SET_VALUE_ATTACKS + NUMBER_ATTACKS + PARAM_DEFAULT_CASES
         + BUDGET_ATTACKS + CODEGEN_CASES)


@pytest.fixture
def in_corpus(monkeypatch):
    """Run from tests/corpus, so diagnostics name files as the table does (``bad/x.yaml``)."""
    monkeypatch.chdir(CORPUS)


def run_check(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["check", *args])
    out, err = capsys.readouterr()
    return code, out, err


def first_headline(err: str) -> re.Match | None:
    return HEADLINE.search(err)


def assert_diagnostic(c: Case, code: int, err: str) -> None:
    assert code == c.exit_code, err
    assert "Traceback" not in err
    first_line = err.splitlines()[0] if err else ""
    if c.where is None:
        assert first_line.startswith("error: "), err
        message = first_line[len("error: "):]
    else:
        match = first_headline(err)
        assert match is not None, err
        assert match.start() == 0, f"the first diagnostic is not located:\n{err}"
        assert (match["file"], f"{match['line']}:{match['col']}") == (c.file or c.path, c.where), err
        assert match["severity"] == c.severity, err
        message = match["message"]
    assert re.search(c.message, message), f"{message!r} does not match {c.message!r}"
    for pattern in c.also:
        assert re.search(pattern, err, re.MULTILINE), f"{pattern!r} not in:\n{err}"


def test_the_table_covers_every_corpus_file():
    """Every file of the corpus is a case of the table (or a library a case uses)."""
    libraries = {"use/outside.yaml", "use/cycle/a.yaml", "use/cycle/b.yaml", "use/bad_library/lib.yaml",
                 "codegen/evil_text.yaml", "codegen/pair_default.yaml",  # (valid specs, tested below)
                 "draw/long_layer_name.yaml"}
    compiles = {p.relative_to(CORPUS).as_posix() for p in (CORPUS / "compiles").glob("*.yaml")}
    tested = ({c.path for c in CASES} | {c.path for c in DRAW_CASES} | libraries
              | compiles)  # (compiles/: valid specs, in test_codegen.py)
    files = {p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*.yaml")}
    assert files - tested == set()
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("c", CASES, ids=lambda c: c.id)
def test_check_reports(c: Case, capsys, in_corpus):
    if c.id == "python_object_tag":
        marker = Path("/tmp/archdsl_pwned")
        marker.unlink(missing_ok=True)
    code, out, err = run_check(capsys, *c.args, c.path)
    assert_diagnostic(c, code, err)
    # Not only what is wrong: what was expected or found, or how to fix it.
    first = err.split("\n\n")[0]
    assert re.search(r"^  (expected|found|hint|note): ", first, re.MULTILINE), first
    if c.exit_code == 0:
        assert out.strip(), "a spec with only warnings still compiles"
    else:
        assert out == ""
    if c.id == "python_object_tag":
        assert not Path("/tmp/archdsl_pwned").exists()


def test_diagnostics_quote_the_source_line_with_a_caret(capsys, in_corpus):
    code, _, err = run_check(capsys, "bad/unknown_op.yaml")
    assert code == 1
    assert "    4 |   - conv1: {cnov: {out: 8, k: 3}}\n      |             ^^^^\n" in err


def test_long_lines_are_quoted_in_a_window(capsys, in_corpus):
    """A hostile one-line spec does not come back as a megabyte of diagnostics."""
    code, _, err = run_check(capsys, "bad/huge_int.yaml")
    assert code == 1
    assert max(len(line) for line in err.splitlines()) < 250


def test_independent_errors_are_all_reported(write_spec, capsys):
    path = write_spec("""
        name: many
        input: [3, 32, 32]
        network:
          - a: {cnov: {out: 8}}
          - b: {conv: {out: 8, k: 3, strid: 2}}
          - c: {conv: {out: 8, k: 3}, from: nowhere}
    """)
    code, _, err = run_check(capsys, str(path))
    assert code == 1
    assert "unknown op or block `cnov`" in err and "has no attribute `strid`" in err
    assert re.search(r"^\d+ errors$", err, re.MULTILINE)


# --- files the table cannot hold ----------------------------------------------------------------


def test_file_too_large(tmp_path, capsys):
    path = tmp_path / "big.yaml"
    path.write_text("name: big\n" + "# padding\n" * 110_000)
    code, _, err = run_check(capsys, str(path))
    assert code == 1 and "Traceback" not in err
    assert err.startswith(f"{path}:1:1: error: {path} is too large for a spec (over 1,000,000 bytes)")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_device_file_is_not_read(capsys):
    start = time.monotonic()
    code, _, err = run_check(capsys, "/dev/zero")
    assert code == 1
    assert err.startswith("error: /dev/zero is not a regular file")
    assert time.monotonic() - start < 10


def test_fifo_is_not_read(tmp_path, capsys):
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    code, _, err = run_check(capsys, str(fifo))  # would block forever if opened
    assert code == 1
    assert err.startswith(f"error: {fifo} is not a regular file")


def test_allow_path_admits_a_library_outside_the_spec_directory(capsys, in_corpus):
    code, out, err = run_check(capsys, "--allow-path", "use", "use/escape/dotdot.yaml")
    assert (code, err) == (0, "")
    assert out.startswith("dotdot: input 3x32x32 -> output 8x32x32")


def _symlinked_library(tmp_path: Path) -> tuple[Path, Path]:
    """spec/net.yaml uses spec/lib.yaml, a symlink to outside/lib.yaml."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "spec").mkdir()
    (tmp_path / "outside" / "lib.yaml").write_text((CORPUS / "use" / "outside.yaml").read_text())
    (tmp_path / "spec" / "lib.yaml").symlink_to(Path("..") / "outside" / "lib.yaml")
    net = tmp_path / "spec" / "net.yaml"
    net.write_text("name: net\ninput: [3, 8, 8]\nuse: [lib.yaml]\nnetwork: [{conv_relu: {out: 4}}]\n")
    return net, tmp_path / "outside"


def test_use_through_a_symlink_is_refused(tmp_path, capsys):
    net, _ = _symlinked_library(tmp_path)
    code, out, err = run_check(capsys, str(net))
    assert code == 1 and out == "" and "Traceback" not in err
    assert err.startswith(f"{net}:3:7: error: `use:` may not leave the project\n")
    assert f"found: `lib.yaml` -> {(tmp_path / 'outside' / 'lib.yaml').resolve()}" in err
    assert "1 errors" not in err and "unknown op or block" not in err  # no follow-on errors


def test_use_through_a_symlink_with_allow_path(tmp_path, capsys):
    net, outside = _symlinked_library(tmp_path)
    code, out, err = run_check(capsys, "--allow-path", str(outside), str(net))
    assert (code, err) == (0, "")
    assert out.startswith("net: input 3x8x8 -> output 4x8x8")


@pytest.mark.parametrize("args, message", [
    (["check", "--bogus", "x.yaml"], "No such option: --bogus|No such option '--bogus'"),
    (["check"], "Missing argument 'SPECS...'"),
    (["check", "--max-nodes", "0", "x.yaml"], "Invalid value for '--max-nodes'"),
    (["nonsense"], "No such command 'nonsense'"),
], ids=["unknown_option", "missing_argument", "max_nodes_zero", "unknown_command"])
def test_click_usage_errors_exit_2(args, message, capsys):
    code = main(args)
    _, err = capsys.readouterr()
    assert code == 2
    assert re.search(message, err) and "Traceback" not in err


# --- real subprocesses: no traceback end to end, bounded time -----------------------------------


def _subprocess_check(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "archdsl", "check", *args], cwd=CORPUS, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.parametrize("c", [c for c in CASES if c.id in {
    "python_object_tag", "billion_laughs", "deep_flow_nesting", "repeat_one_billion", "nested_repeats",
    "repeats_of_skipped_layers", "dense_block_quadratic", "huge_integer_literal", "control_character",
    "expr_import", "set_unknown_parameter", "blocks_nested_hundreds_deep", "use_nul_byte",
    "set_alias_bomb", "set_huge_integer", "let_string_doubling", "let_list_doubling",
    "parameters_too_many", "input_option_too_large",
}], ids=lambda c: c.id)
def test_subprocess_no_traceback_in_bounded_time(c: Case):
    start = time.monotonic()
    run = _subprocess_check(*c.args, c.path, timeout=60)
    elapsed = time.monotonic() - start
    assert_diagnostic(c, run.returncode, run.stderr)
    assert run.stdout == ""
    assert elapsed < 30, f"{c.id} took {elapsed:.1f}s"


# --- generated code carries no spec text outside names, numbers and string literals ----------------

EVIL = "pwned_marker"


def _compile_source(path: Path) -> str:
    from archdsl.codegen import compile_spec

    return compile_spec(str(path))


def test_generated_code_escapes_spec_text(capsys):
    """Docs and string values full of quotes and newlines end up only inside string literals or
    comments, and names that shadow builtins or the generated module's own names stay attributes."""
    import ast
    import io
    import tokenize

    path = CORPUS / "codegen" / "evil_text.yaml"
    code, _, err = run_check(capsys, str(path))
    assert (code, err) == (0, "")  # a valid spec: the text is free, the names are identifiers
    source = _compile_source(path)
    tree = ast.parse(source)
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if EVIL in token.string:
            assert token.type in (tokenize.STRING, tokenize.COMMENT), token
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = {a.name for a in node.names} | {getattr(node, "module", None) or ""}
            assert "os" not in names
        assert not (isinstance(node, ast.Name) and node.id in ("os", "__import__"))


# --- nothing lost: outputs are written atomically --------------------------------------------------


def test_write_atomic_keeps_the_old_file_on_error(tmp_path, monkeypatch):
    from archdsl import util

    target = tmp_path / "out.py"
    target.write_text("old\n")

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(util.os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        util.write_atomic(target, "new\n" * 1000)
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.py"]


def test_schema_output_is_written_atomically(tmp_path, capsys):
    target = tmp_path / "schema.json"
    assert main(["schema", "-o", str(target)]) == 0
    first = target.read_bytes()
    assert main(["schema", "-o", str(target)]) == 0
    assert target.read_bytes() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["schema.json"]


# Commands that write a file with -o, and the output's suffix; each runs once it exists.
WRITERS = {"compile": ".py", "draw": ".dot", "report": ".md"}


@pytest.mark.parametrize("command", sorted(WRITERS))
def test_bad_spec_leaves_previous_output_intact(command, tmp_path, capsys):
    assert command in LAZY_COMMANDS, f"`archdsl {command}` does not exist"
    target = tmp_path / f"out{WRITERS[command]}"
    target.write_bytes(b"previous output\n")
    code = main([command, str(CORPUS / "bad" / "add_mismatch.yaml"), "-o", str(target)])
    _, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in err
    assert "add needs inputs of one shape" in err
    assert target.read_bytes() == b"previous output\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


# --- diagrams Graphviz cannot lay out (in time) ------------------------------------------------------
# Valid specs: `check` accepts them. `draw` must either draw them or say what failed and what helps
# (exit 1, no traceback, no file written); the HTML report comes out without the picture. The
# timeouts are low so that the cases stay cheap: Graphviz's full layout of long_skips takes tens of
# seconds (bench/zoo.py times it), many_layers unfolded several.

DRAW_CASES = [
    case("draw_layout_timeout", "draw/long_skips.yaml", None,
         r"^Graphviz did not lay out the diagram of long_skips \(290 boxes, 419 edges\) within "
         r"0\.5 s; it was stopped$",
         r"hint: draw less or differently: `--layout fast`", r"a longer `--timeout`",
         r"`-o FILE\.dot`", args=("--timeout", "0.5")),
    case("draw_unfolded_thousands", "draw/many_layers.yaml", None,
         r"^Graphviz did not lay out the diagram of many_layers \(3,003 boxes, 3,002 edges\) within "
         r"0\.5 s",
         r"`--fold` \(repeats and chains as one box\)", r"a lower `--depth`",
         args=("--no-fold", "--depth", "all", "--timeout", "0.5")),
]


@pytest.mark.parametrize("c", DRAW_CASES, ids=lambda c: c.id)
def test_draw_that_cannot_be_laid_out_says_what_helps(c: Case, tmp_path, capsys, in_corpus):
    assert main(["check", c.path]) == 0  # a valid spec
    capsys.readouterr()
    # Everything but the layout (reading, expanding, the DOT text) is the baseline: with the
    # layout stopped at --timeout, the draw costs about that, however long Graphviz would run
    # (minutes for these specs). Relative, so that a loaded machine does not fail it.
    start = time.monotonic()
    assert main(["draw", c.path, "-o", str(tmp_path / "diagram.dot"), *c.args]) == 0
    baseline = time.monotonic() - start
    capsys.readouterr()
    target = tmp_path / "diagram.svg"
    target.write_bytes(b"previous diagram\n")
    start = time.monotonic()
    code = main(["draw", c.path, "-o", str(target), *c.args])
    elapsed = time.monotonic() - start
    _, err = capsys.readouterr()
    assert_diagnostic(c, code, err)
    assert target.read_bytes() == b"previous diagram\n"
    assert elapsed < 3 * baseline + 10, f"draw took {elapsed:.1f}s ({baseline:.1f}s without layout)"


def test_html_report_comes_out_without_a_diagram_that_timed_out(tmp_path, capsys, in_corpus):
    page = tmp_path / "report.html"
    code = main(["report", "draw/long_skips.yaml", "--timeout", "0.5", "-o", str(page)])
    _, err = capsys.readouterr()
    assert code == 0 and "Traceback" not in err, err
    assert err.startswith("warning: the report of long_skips has no diagram: Graphviz did not lay "
                          "out the diagram of long_skips"), err
    assert "hint: give Graphviz longer with `--timeout SECONDS`" in err
    html = page.read_text(encoding="utf-8")
    # the tables and the charts, without the diagram
    assert '<div class="diagram">' not in html and 'class="node"' not in html and "l299" in html


def test_fast_layout_draws_what_the_full_layout_cannot_in_time(tmp_path, capsys, in_corpus):
    """The hint's first remedy works: `--layout fast` lays out long_skips (bench/zoo.py times it
    against the full layout)."""
    target = tmp_path / "skips.svg"
    assert main(["draw", "draw/long_skips.yaml", "--layout", "fast", "-o", str(target)]) == 0
    svg = target.read_text(encoding="utf-8")
    assert ET.fromstring(svg).tag.endswith("svg")
    assert svg.count('class="node"') == 290 + 1  # every box, and the legend


def test_a_name_longer_than_graphviz_allows_is_clipped(tmp_path, capsys, in_corpus):
    """A 17,000-character layer name made dot fail (its tokens stop at 16,384 characters) with a
    RuntimeError traceback; ids, labels and tooltips are now clipped, and the diagram is drawn."""
    target = tmp_path / "long.svg"
    for depth in ("1", "all"):
        assert main(["draw", "draw/long_layer_name.yaml", "--depth", depth, "-o", str(target)]) == 0
        svg = target.read_text(encoding="utf-8")
        ET.fromstring(svg)
        assert "a" * 100 + "\u2026" in svg and "a" * 200 not in svg


def test_dot_failing_is_a_diagnostic_not_a_traceback():
    """Whatever dot refuses is reported with dot's own words and what helps (exit 1)."""
    from archdsl.draw import LayoutError, render_bytes

    with pytest.raises(LayoutError) as info:
        render_bytes("digraph { a -> }", "svg")
    text = info.value.render()
    assert text.startswith("error: Graphviz could not lay out the diagram: dot -Tsvg failed (exit code 1)")
    assert re.search(r"found: .*syntax error", text) and "shorter layer names" in text
    assert info.value.exit_code == 1


# --- round two (issue 15): what the table cannot hold ------------------------------------------------


def test_use_symlink_loop_is_located(tmp_path, capsys):
    (tmp_path / "a.yaml").symlink_to(tmp_path / "b.yaml")
    (tmp_path / "b.yaml").symlink_to(tmp_path / "a.yaml")
    net = tmp_path / "net.yaml"
    net.write_text("name: net\ninput: [3, 8, 8]\nuse: [a.yaml]\nnetwork: [relu]\n")
    code, out, err = run_check(capsys, str(net))
    assert (code, out) == (1, "") and "Traceback" not in err
    assert err.startswith(f"{net}:3:7: error: `use:` path cannot be read: ")
    assert re.search(r"symlink loop|Too many levels of symbolic links", err)


def test_a_chain_of_400_libraries_is_refused_where_it_gets_too_deep(tmp_path, capsys):
    for i in range(400):
        (tmp_path / f"lib{i}.yaml").write_text(f"use: [lib{i + 1}.yaml]\nblocks: {{}}\n")
    (tmp_path / "lib400.yaml").write_text("blocks: {}\n")
    net = tmp_path / "net.yaml"
    net.write_text("name: net\ninput: [3, 8, 8]\nuse: [lib0.yaml]\nnetwork: [relu]\n")
    code, _, err = run_check(capsys, str(net))
    assert code == 1 and "Traceback" not in err
    assert err.startswith(f"{tmp_path / 'lib31.yaml'}:1:7: error: libraries use each other more "
                          "than 32 deep\n"), err
    assert "found: 33 files, each using the next: net.yaml -> lib0.yaml -> ... -> lib31.yaml" in err


def test_use_reaches_the_whole_project_but_not_past_it(tmp_path, capsys, monkeypatch):
    """The project is the nearest directory above the spec holding a marker; `../lib` inside it
    is fine (specs/studies -> specs/lib), a file beside the project is not."""
    from archdsl.parser import project_root

    (tmp_path / "project" / "specs" / "lib").mkdir(parents=True)
    (tmp_path / "project" / "specs" / "studies").mkdir()
    (tmp_path / "project" / "pyproject.toml").write_text("")
    library = (CORPUS / "use" / "outside.yaml").read_text()
    (tmp_path / "project" / "specs" / "lib" / "lib.yaml").write_text(library)
    (tmp_path / "beside.yaml").write_text(library)
    study = tmp_path / "project" / "specs" / "studies" / "study.yaml"
    study.write_text("name: study\ninput: [3, 8, 8]\nuse: [../lib/lib.yaml]\nnetwork: [{conv_relu: {out: 4}}]\n")
    monkeypatch.chdir(tmp_path)
    assert project_root(study) == (tmp_path / "project").resolve()
    code, out, err = run_check(capsys, str(study))
    assert (code, err) == (0, "") and out.startswith("study: input 3x8x8 -> output 4x8x8")
    study.write_text(study.read_text().replace("../lib/lib.yaml", "../../../beside.yaml"))
    code, _, err = run_check(capsys, str(study))
    assert code == 1 and "error: `use:` may not leave the project" in err
    # Without a marker: the working directory when it holds the spec, else the spec's directory.
    (tmp_path / "project" / "pyproject.toml").unlink()
    assert project_root(study) == tmp_path.resolve()
    monkeypatch.chdir(study.parent)
    assert project_root(study) == study.parent.resolve()


def test_the_inception_study_needs_no_allow_path(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, out, err = run_check(capsys, "specs/studies/inception_block.yaml")
    assert (code, err) == (0, "")
    assert out.startswith("inception_block: input 192x28x28 -> output 256x28x28")


def test_set_alias_bomb_answers_in_a_few_lines(capsys, in_corpus):
    bomb = "[&a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]" + "".join(
        f", &a{i} [*{'a' if i == 0 else f'a{i - 1}'}, *{'a' if i == 0 else f'a{i - 1}'}]" for i in range(30)) + "]"
    code, _, err = run_check(capsys, "--set", f"width={bomb}", "bad/expr_unknown_name.yaml")
    assert code == 2 and len(err) < 1000, len(err)


RF_SPEC = "name: far\ninput: [1, 8, 8]\nnetwork:\n" + "  - {conv: {out: 1, k: 1, stride: 1000000000}}\n" * 40


def test_a_receptive_field_past_a_float_is_reported_as_global(tmp_path, capsys):
    import json

    spec = tmp_path / "far.yaml"
    spec.write_text(RF_SPEC)
    for command in (["report"], ["report", "--format", "json"], ["compile"]):
        code = main([*command, str(spec)])
        _, err = capsys.readouterr()
        assert code == 0 and "Traceback" not in err, (command, err)
    assert main(["report", "--format", "json", str(spec)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["receptive_field"]["global"] is True
    assert data["layers"][0]["receptive_field"]["global"] is False


def test_pair_defaults_report_as_json_and_compile_to_a_working_module(tmp_path, capsys):
    import importlib.util
    import json

    torch = pytest.importorskip("torch")
    spec = CORPUS / "codegen" / "pair_default.yaml"
    assert main(["report", "--format", "json", str(spec)]) == 0
    data = json.loads(capsys.readouterr().out)
    kernels = {layer["path"]: layer["label"] for layer in data["layers"] if layer["op"] == "conv"}
    assert kernels == {"a.conv": "1x7 conv 8", "b.conv": "7x1 conv 8", "c.conv": "3x3 conv 8"}
    target = tmp_path / "pair_default.py"
    assert main(["compile", str(spec), "-o", str(target)]) == 0
    source = target.read_text()
    assert "Y(" not in source and "Loc(" not in source
    module_spec = importlib.util.spec_from_file_location("pair_default_module", target)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    model = module.pair_default()
    assert sum(p.numel() for p in model.parameters()) == data["params"]
    assert tuple(model(torch.zeros(1, 3, 32, 32)).shape) == (1, *data["output"])


def test_json_report_of_nan_and_inf_parameters_is_json(tmp_path, capsys):
    import json

    spec = tmp_path / "odd.yaml"
    spec.write_text("name: odd\ninput: [3, 8, 8]\nparams: {a: .nan, b: .inf, c: -.inf}\nnetwork: [relu]\n")
    assert main(["report", "--format", "json", str(spec)]) == 0
    out = capsys.readouterr().out

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    data = json.loads(out, parse_constant=refuse)
    assert data["spec_params"] == {"a": "nan", "b": "inf", "c": "-inf"}


def test_json_report_is_charged_to_a_byte_budget():
    import archdsl
    from archdsl.errors import SpecError
    from archdsl.report import render_json

    analysis = archdsl.analyze(archdsl.load(ROOT / "specs" / "lenet.yaml"))
    whole = render_json([analysis])
    assert render_json([analysis], max_bytes=len(whole)) == whole
    with pytest.raises(SpecError, match=r"the JSON report is larger than 0 MB") as error:
        render_json([analysis], max_bytes=len(whole) // 2)
    assert error.value.first.loc is not None and error.value.first.found == f"{len(analysis.nodes)} layers"


def test_json_report_is_refused_soon_after_it_passes_the_budget(monkeypatch):
    """The budget is charged every JSON_CHARGE_EVERY pieces: a graph whose report is far over it
    is refused after a few layer records, not after making them all."""
    import archdsl
    from archdsl import report
    from archdsl.errors import SpecError

    analysis = archdsl.analyze(archdsl.load(ROOT / "specs" / "resnet152.yaml"))
    made = []
    node_json = report._node_json
    monkeypatch.setattr(report, "_node_json", lambda node: made.append(node) or node_json(node))
    whole = report.render_json([analysis])
    assert len(made) >= len(analysis.nodes) > 500
    made.clear()
    head = whole.index('"layers": [')
    with pytest.raises(SpecError, match=r"the JSON report is larger than"):
        report.render_json([analysis], max_bytes=head + 2_000)
    pieces_per_record = 2 * len(report._LAYER_KEYS) + 4  # key, value (or more), separators
    assert 0 < len(made) <= report.JSON_CHARGE_EVERY // pieces_per_record + 2


def test_json_layer_records_are_never_shorter_than_the_estimate():
    """check_json_size refuses from json_layer_bytes, so it must be a lower bound of every record
    as render_json writes it (indented inside the "layers" list)."""
    import json

    import archdsl
    from archdsl.report import _LAYER_KEYS, json_layer_bytes, render_json

    analysis = archdsl.analyze(archdsl.load(ROOT / "specs" / "squeezenet1_1.yaml"))
    data = json.loads(render_json([analysis]))
    assert all(tuple(layer) == _LAYER_KEYS for layer in data["layers"])
    text = render_json([analysis])
    records = text[text.index('"layers": [') + len('"layers": ['):text.index('"blocks": [')]
    sizes = [len(r) for r in re.split(r"(?<=\n    }),", records)]
    assert len(sizes) == len(data["layers"])
    assert min(sizes) >= json_layer_bytes()


def test_json_report_too_large_is_refused_before_the_analysis(tmp_path, monkeypatch, capsys):
    """A 100-byte spec of 190,000 layers: the JSON report cannot fit its budget, so it is refused
    from the layer count before any layer is analysed (it took minutes to refuse after)."""
    import archdsl.commands.report as report_command

    spec = tmp_path / "big.yaml"
    spec.write_text("name: big\ninput: [1, 8, 8]\nnetwork:\n"
                    "  - {repeat: 190, layer: {repeat: 1000, layer: relu}}\n")

    def no_analysis(*args, **kwargs):
        raise AssertionError("analysed a report that was already known to be too large")

    monkeypatch.setattr(report_command, "analyze", no_analysis)
    code = main(["report", str(spec), "--format", "json", "-o", str(tmp_path / "out.json")])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert re.search(r"big\.yaml:1:1: error: the JSON report is larger than 64 MB", err)
    assert "found: 190,000 layers" in err and "--per stage" in err
    assert not (tmp_path / "out.json").exists()


def test_unnamed_layers_are_named_in_linear_time():
    """auto_name resumes at the last suffix: naming n relus tests about 2n names, not n**2 / 2."""
    from archdsl.expand import Ctx, NameSet, auto_name
    from archdsl.ir import Scope

    class CountingNames(NameSet):
        lookups = 0

        def __contains__(self, name: object) -> bool:
            CountingNames.lookups += 1
            return super().__contains__(name)

    ctx = Ctx(Scope("", "network", None), "", {}, used=CountingNames())
    names = [auto_name("relu", ctx) for _ in range(2000)]
    assert names[:3] == ["relu", "relu_1", "relu_2"] and names[-1] == "relu_1999"
    ctx.used.add("conv_1")  # a name taken by hand is skipped
    assert [auto_name("conv", ctx) for _ in range(2)] == ["conv", "conv_2"]
    assert CountingNames.lookups < 3 * 2002


def test_the_smallest_input_search_skips_big_networks(tmp_path, capsys, monkeypatch):
    from archdsl import pipeline

    calls = []
    real_expand = pipeline.expand
    monkeypatch.setattr(pipeline, "expand", lambda *a, **k: calls.append(a[3]) or real_expand(*a, **k))
    spec = tmp_path / "big.yaml"
    spec.write_text("name: big\ninput: [3, 8, 8]\nnetwork:\n  - {repeat: 6000, layer: relu}\n"
                    "  - {conv: {out: 1, k: 100}}\n")
    code, _, err = run_check(capsys, str(spec))
    assert code == 1 and "conv window is larger than its input" in err
    assert "the smallest that works" not in err
    assert calls == [200_000, pipeline.MAX_PROBE_NODES]  # the spec, then one probe that gave up


# --- outputs: every writer, never replacing what is not a regular file --------------------------

OUTPUT_COMMANDS = {"compile": ["compile", "SPEC"], "report": ["report", "SPEC"], "draw": ["draw", "SPEC"],
                   "schema": ["schema"]}


@pytest.mark.parametrize("command", sorted(OUTPUT_COMMANDS))
def test_output_into_a_missing_directory_is_a_command_line_error(command, tmp_path, capsys):
    args = [str(ROOT / "specs" / "lenet.yaml") if a == "SPEC" else a for a in OUTPUT_COMMANDS[command]]
    target = tmp_path / "missing" / f"out{WRITERS.get(command, '.json')}"
    code = main([*args, "-o", str(target)])
    _, err = capsys.readouterr()
    assert code == 2 and "Traceback" not in err
    assert err.startswith(f"error: -o {target}: the directory {target.parent} does not exist\n")
    assert f"hint: create the directory first (mkdir -p {target.parent})" in err


def test_output_to_a_device_is_written_through_not_replaced(capsys):
    before = os.stat("/dev/null")
    assert main(["report", str(ROOT / "specs" / "lenet.yaml"), "-o", "/dev/null"]) == 0
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)


def test_output_to_a_fifo_is_written_through(tmp_path, capsys):
    import threading

    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    assert main(["schema", "-o", str(fifo)]) == 0
    reader.join(timeout=30)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert received and received[0].startswith(b"{")


def test_output_through_a_symlink_replaces_its_target_and_keeps_the_link(tmp_path, capsys):
    real = tmp_path / "real.md"
    real.write_text("old\n")
    link = tmp_path / "link.md"
    link.symlink_to(real.name)
    assert main(["report", str(ROOT / "specs" / "lenet.yaml"), "-o", str(link)]) == 0
    assert link.is_symlink() and real.read_text().startswith("## lenet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.md", "real.md"]


def test_output_dash_is_stdout(capsys):
    assert main(["report", str(ROOT / "specs" / "lenet.yaml"), "--format", "csv", "-o", "-"]) == 0
    out, _ = capsys.readouterr()
    assert out.startswith("level,kind,path") and not os.path.exists("-")


def test_verify_refuses_a_model_larger_than_the_machine(tmp_path, capsys, monkeypatch):
    """compile --verify builds the model: past half the machine's memory it says so instead."""
    pytest.importorskip("torch")
    from archdsl import builder

    pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 100}  # a 400 KB machine; LeNet needs ~500 KB
    monkeypatch.setattr(builder.os, "sysconf", lambda name: pages[name])
    code = main(["compile", str(ROOT / "specs" / "lenet.yaml"), "--verify", "-o", str(tmp_path / "x.py")])
    _, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in err
    assert re.search(r"lenet\.yaml:\d+:1: error: `lenet` is too large to build here for --verify\n", err)
    assert "expected: at most half of this machine's 0.0 GB" in err
    assert not (tmp_path / "x.py").exists()
