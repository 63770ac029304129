"""Stage 2: the JSON Schema of the spec language, and validation of a located tree against it.

The schema is published (``archdsl schema``) so editors with a YAML language server complete and
check specs. It is generated from the op registry: every op's attributes with their types, ranges,
enums, defaults and required ones (an expression string is accepted wherever a value is). A block
call looks like an op call (``{basic: {out: 64}}``), so a schema that knows no blocks must let an
unknown key be a block call; given the blocks of the specs it serves (``spec_schema(blocks)``,
``archdsl schema SPEC...``), an unknown key is only a layer's name, and a misspelt op or block is
refused. The parser then checks what a schema cannot say well, with located diagnostics.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import Diagnostic, did_you_mean
from .ops import REGISTRY, Attr, Op
from .yamlsrc import Y, describe

__all__ = [
    "LIBRARY_KEYS",
    "MODEL_KEYS",
    "SPEC_SCHEMA",
    "BlockSignature",
    "spec_schema",
    "validate_structure",
]

SCHEMA_ID = "https://archdsl.dev/schema/spec-1.json"

_scalar = {"type": ["string", "number", "boolean", "null"]}
_value: dict[str, Any] = {
    "description": "A literal, an expression string, or a list of them (kernel [1, 7]).",
    "anyOf": [_scalar, {"type": "array", "items": _scalar}],
}
_param = {
    "description": "A default, a type name (required), or {default, type, choices, doc}.",
    "anyOf": [
        _value,
        {"type": "object", "additionalProperties": False,
         "properties": {"default": _value, "type": {"enum": ["int", "float", "bool", "str", "pair"]},
                        "choices": {"type": "array", "items": _scalar, "minItems": 1},
                        "doc": {"type": "string"}}},
    ],
}
_checks = {
    "type": "object", "additionalProperties": {"type": "string"},
    "description": "Conditions that must hold, each with the message shown when it does not: "
                   "{\"(depth - 2) % 6 == 0\": \"depth must be 6n+2\"}.",
}
_inputs = {
    "description": "Explicit inputs: earlier layer names of this or an enclosing scope, or `input`.",
    "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}],
}
_meta_props = {
    "from": _inputs,
    "when": {"description": "Include the layer only when this expression is true.", **_value},
    "output": {"type": "string", "description": "Make this layer a named (auxiliary) output."},
    "freeze": {"type": "boolean", "description": "Freeze this layer's parameters."},
}
_layer_ref = {"$ref": "#/$defs/layer"}
_EXPR = {"type": "string", "description": "An expression over the parameters (`out * 4`)."}


@dataclass(frozen=True)
class BlockSignature:
    """What a schema needs of a block: its parameters as ``(name, type, required)``."""

    params: tuple[tuple[str, str, bool], ...] = ()
    doc: str = ""


def _number(kind: str, attr: Attr) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": kind}
    low = attr.lower_bound
    if low is not None:
        schema["exclusiveMinimum" if attr.exclusive_minimum else "minimum"] = low
    if attr.maximum is not None:
        schema["maximum"] = attr.maximum
    return schema


def _attr_schema(attr: Attr) -> dict[str, Any]:
    """One attribute's values: its type and range, or an expression string."""
    integer = _number("integer", attr)
    pair = {"type": "array", "items": {"anyOf": [integer, _EXPR]}, "minItems": 2, "maxItems": 2}
    by_kind: dict[str, list[dict[str, Any]]] = {
        "int": [integer],
        "float": [_number("number", attr)],
        "optional_float": [_number("number", attr), {"type": "null"}],
        "bool": [{"type": "boolean"}],
        "choice": [{"enum": list(attr.choices)}],
        "pair": [integer, pair],
        "size": [integer, pair],
        "optional_pair": [integer, pair, {"type": "null"}],
        "padding": [integer, pair] + ([{"enum": list(attr.choices)}] if attr.choices else []),
        "int_list": [{"type": "array", "items": {"anyOf": [integer, _EXPR]}}],
    }
    schema: dict[str, Any] = {"description": f"{attr.doc} ({attr.expected()})",
                              "anyOf": [*by_kind[attr.kind], _EXPR]}
    if not attr.required:
        schema["default"] = list(attr.default) if isinstance(attr.default, tuple) else attr.default
    return schema


def _op_args_schema(op: Op) -> dict[str, Any]:
    """``{conv: {out: 8, k: 3}}``: the op's attributes, the required ones, nothing else."""
    required = [attr.name for attr in op.attrs if attr.required]
    return {
        "type": "object" if required else ["object", "null"],
        "description": f"{op.doc} (PyTorch: {op.pytorch})",
        "properties": {attr.name: _attr_schema(attr) for attr in op.attrs},
        "required": required,
        "additionalProperties": False,
    }


def _block_args_schema(name: str, block: BlockSignature) -> dict[str, Any]:
    required = [param for param, _, needed in block.params if needed]
    return {
        "type": "object" if required else ["object", "null"],
        "description": block.doc or f"block `{name}`",
        "properties": {param: {"description": f"{typ} parameter", **_value}
                       for param, typ, _ in block.params},
        "required": required,
        "additionalProperties": False,
    }


def _layer_schema(blocks: Mapping[str, BlockSignature] | None) -> dict[str, Any]:
    """A layer; its one-key mapping form knows every op (and, when given, every block)."""
    callables = {name: {"anyOf": [{"$ref": f"#/$defs/ops/{name}"}, _layer_ref]}
                 for name in sorted(REGISTRY)}
    if blocks is None:
        other: dict[str, Any] = {
            "description": "A layer's name (`{conv1: {conv: ...}}`), or a block call "
                           "(`{basic: {out: 64}}`; the schema knows no blocks).",
            "anyOf": [_layer_ref, {"type": "object", "additionalProperties": _value},
                      {"type": "null"}]}
    else:
        for name in sorted(blocks):
            callables.setdefault(name, {"anyOf": [{"$ref": f"#/$defs/blocks/{name}"}, _layer_ref]})
        other = {"description": "A layer's name: `{conv1: {conv: ...}}`.", **_layer_ref}
    return {
        "description": "A layer: an op or block name, a list (sequence), a one-key mapping "
                       "(`{op: {args}}` or `{name: layer}`), or a construct.",
        "anyOf": [
            {"type": "string", "description": "An op or block used with its defaults."},
            {"type": "array", "items": _layer_ref, "description": "A sequence."},
            {"$ref": "#/$defs/repeat"},
            {"$ref": "#/$defs/dense"},
            {"$ref": "#/$defs/parallel"},
            {"$ref": "#/$defs/residual"},
            {"$ref": "#/$defs/seq"},
            {
                "type": "object",
                "description": "`{op: {args}}` or `{name: layer}`, with optional meta keys.",
                "properties": {**_meta_props, **callables},
                "minProperties": 1,
                "additionalProperties": other,
            },
        ],
    }


def _construct(key: str, key_schema: dict[str, Any], extra: dict[str, Any], required: list[str],
               doc: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": doc,
        "properties": {key: key_schema, **extra, **_meta_props},
        "required": [key, *required],
        "additionalProperties": False,
    }


_count = {"description": "How many times (an int or an expression).",
          "anyOf": [{"type": "integer", "minimum": 0}, {"type": "string"}]}
_repeat_extra = {
    "block": {"type": "string", "description": "The block repeated."},
    "args": {"type": "object", "additionalProperties": _value,
             "description": "Block arguments; expressions may use `i`, the repetition index."},
    "layer": _layer_ref,
    "name": {"type": "string", "description": "Child name template, e.g. `denselayer{i+1}`."},
}

def spec_schema(blocks: Mapping[str, BlockSignature] | None = None) -> dict[str, Any]:
    """The JSON Schema of a spec; with ``blocks``, one that knows those blocks (and refuses an
    unknown op or block)."""
    schema = copy.deepcopy(_BASE_SCHEMA)
    schema["$defs"]["layer"] = _layer_schema(blocks)
    schema["$defs"]["ops"] = {name: _op_args_schema(op) for name, op in sorted(REGISTRY.items())}
    if blocks is not None:
        schema["$defs"]["blocks"] = {name: _block_args_schema(name, block)
                                     for name, block in sorted(blocks.items())}
        for construct in ("repeat", "dense"):
            schema["$defs"][construct]["properties"]["block"] = {
                "enum": sorted(blocks), "description": "The block repeated."}
    return schema


_BASE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "title": "archdsl spec",
    "description": "A convolutional network as a graph of blocks (archdsl).",
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "The model's name."},
        "doc": {"type": "string", "description": "A description (used in generated docstrings)."},
        "input": {"type": "array",
                  "items": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string"}]},
                  "minItems": 1, "maxItems": 3,
                  "description": "[C, H, W]; batch implicit. Items may be expressions over the "
                                 "spec parameters: [in_channels, 224, 224]."},
        "params": {"type": "object", "additionalProperties": _param,
                   "description": "Spec parameters, overridable with --set."},
        "use": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
                "description": "Block libraries, paths relative to this file."},
        "blocks": {"type": "object", "additionalProperties": {"$ref": "#/$defs/block"},
                   "description": "Block definitions."},
        "network": _layer_ref,
        "checks": _checks,
    },
    "required": ["name"],
    "additionalProperties": False,
    "$defs": {
        "block": {
            "type": "object",
            "properties": {
                "doc": {"type": "string"},
                "params": {"type": "object", "additionalProperties": _param,
                           "description": "name: default, or name: int|float|bool|str|pair "
                                          "(required); pair is an int or [h, w]."},
                "let": {"type": "object", "additionalProperties": _value,
                        "description": "Derived values, evaluated in order."},
                "inputs": {"type": "array", "minItems": 1,
                           "items": {"type": "string", "pattern": r"^(?!__)[A-Za-z_][A-Za-z0-9_]*$"},
                           "description": "The names of the block's inputs, in the order a use's "
                                          "`from: [a, b]` gives them (default: one input, "
                                          "`input`)."},
                "body": _layer_ref,
                "checks": _checks,
            },
            "required": ["body"],
            "additionalProperties": False,
        },
        "repeat": _construct("repeat", _count, _repeat_extra, [], "A chain of N copies."),
        "dense": _construct("dense", _count, _repeat_extra, [],
                            "A dense block: each layer sees the concat of all earlier outputs."),
        "parallel": _construct(
            "parallel", {"type": "array", "items": _layer_ref, "minItems": 1},
            {"merge": {"enum": ["concat", "add", "mul"]}, "after": _layer_ref}, [],
            "Branches on the same input, merged."),
        "residual": _construct(
            "residual",
            {"type": "object", "properties": {"body": _layer_ref, "shortcut": _layer_ref,
                                              "after": _layer_ref, "connect": _value},
             "required": ["body"], "additionalProperties": False},
            {}, [], "out = after(body(x) + shortcut(x))."),
        "seq": _construct("seq", {"type": "array", "items": _layer_ref}, {}, [],
                          "An explicit sequence."),
    },
}

SPEC_SCHEMA: dict[str, Any] = spec_schema()

MODEL_KEYS = ("name", "doc", "input", "params", "use", "blocks", "network", "checks")
LIBRARY_KEYS = ("name", "doc", "use", "blocks")


def validate_structure(root: Y, library: bool = False) -> list[Diagnostic]:
    """Validate the top-level structure of a spec (keys and their value types) with jsonschema.

    Layers are checked by the parser, which knows the op and block names and can say more than
    a schema can; here only the document's frame is checked. A frame that :func:`_conforms`
    accepts is valid without importing jsonschema (a large part of a cold `archdsl report`);
    any other goes to jsonschema, which finds its errors and words them.
    """
    plain = root.plain()
    if _conforms(plain, _frame_schema(library)):
        return []
    validator = _frame_validator(library)
    diags = []
    for error in sorted(validator.iter_errors(plain), key=lambda e: list(map(str, e.absolute_path))):
        diags.append(_to_diagnostic(error, root, plain))
    return diags


@functools.lru_cache(maxsize=2)
def _frame_validator(library: bool) -> Any:
    """The validator of a model's (or a library's) frame, built once: building it costs more than
    validating a spec."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(_frame_schema(library))


@functools.lru_cache(maxsize=2)
def _frame_schema(library: bool = False) -> dict[str, Any]:
    """The schema with layers left open (the parser checks layers with better messages); a
    library's has no required keys. Made once; never changed."""
    frame = copy.deepcopy(SPEC_SCHEMA)
    frame["properties"]["network"] = {}
    frame["$defs"]["block"]["properties"]["body"] = {}
    if library:
        frame.pop("required")
    return frame


# --- a fast path for valid frames ----------------------------------------------------------------
# `_conforms` says True only when the value surely conforms; False means "ask jsonschema" (it may
# still be valid: an integer written 3.0, a key that is not a string). So it may be stricter than
# JSON Schema, never more lenient. It knows the keywords the frame schema uses (`_KEYWORDS`); any
# other keyword sends the frame to jsonschema.

_JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: type(v) is dict and all(type(k) is str for k in v),
    "array": lambda v: type(v) is list,
    "string": lambda v: type(v) is str,
    "integer": lambda v: type(v) is int,
    "number": lambda v: type(v) in (int, float),
    "boolean": lambda v: type(v) is bool,
    "null": lambda v: v is None,
}
_ANNOTATIONS = frozenset({"$schema", "$id", "$defs", "title", "description", "default"})

_Check = Callable[[Any, Any, Mapping[str, Any], Mapping[str, Any]], bool]


def _conforms(value: Any, schema: Any, root: Mapping[str, Any] | None = None) -> bool:
    """Whether ``value`` surely conforms to ``schema`` (a JSON Schema using only the keywords of
    ``_KEYWORDS``; a ``$ref`` names one of ``root``'s ``$defs``)."""
    if schema is True:
        return True
    if not isinstance(schema, dict):
        return False
    root = schema if root is None else root
    for keyword, want in schema.items():
        if keyword in _ANNOTATIONS:
            continue
        check = _KEYWORDS.get(keyword)
        if check is None or not check(value, want, schema, root):
            return False
    return True


def _check_type(value: Any, want: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    kinds = want if isinstance(want, list) else [want]
    return any(kind in _JSON_TYPES and _JSON_TYPES[kind](value) for kind in kinds)


def _check_properties(value: Any, want: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    if type(value) is not dict:
        return True  # applies to objects only, as every keyword below to its own type
    return all(_conforms(item, want[key], root) for key, item in value.items() if key in want)


def _check_additional(value: Any, want: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    if type(value) is not dict:
        return True
    if "patternProperties" in schema:
        return False
    known = schema.get("properties", {})
    return all(_conforms(item, want, root) for key, item in value.items() if key not in known)


def _check_required(value: Any, want: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    return type(value) is not dict or all(key in value for key in want)


def _check_any_of(value: Any, want: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    return any(_conforms(value, option, root) for option in want)


def _check_items(value: Any, want: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    if type(value) is not list:
        return True
    return "prefixItems" not in schema and all(_conforms(item, want, root) for item in value)


def _check_enum(value: Any, want: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    return type(value) in (str, int) and any(type(option) is type(value) and option == value
                                             for option in want)


def _check_minimum(value: Any, want: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    if type(value) in (int, float):
        return type(value) is int and value >= want
    return not isinstance(value, (int, float)) or type(value) is bool  # numbers only (not bools)


def _check_min_items(value: Any, want: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    return type(value) is not list or len(value) >= want


def _check_max_items(value: Any, want: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    return type(value) is not list or len(value) <= want


def _check_pattern(value: Any, want: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    return type(value) is not str or re.search(want, value) is not None


def _check_ref(value: Any, want: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    prefix = "#/$defs/"
    if not isinstance(want, str) or not want.startswith(prefix):
        return False
    target = root.get("$defs", {}).get(want[len(prefix):])
    return target is not None and _conforms(value, target, root)


_KEYWORDS: dict[str, _Check] = {
    "type": _check_type,
    "properties": _check_properties,
    "additionalProperties": _check_additional,
    "required": _check_required,
    "anyOf": _check_any_of,
    "items": _check_items,
    "enum": _check_enum,
    "minimum": _check_minimum,
    "minItems": _check_min_items,
    "maxItems": _check_max_items,
    "pattern": _check_pattern,
    "$ref": _check_ref,
}


def _locate(root: Y, path: list[Any]) -> tuple[Y, str | None]:
    node, last_key = root, None
    for part in path:
        if node.is_map and part in node.value:
            last_key = part
            node = node.value[part]
        elif node.is_list and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
    return node, last_key


def _to_diagnostic(error: Any, root: Y, plain: Any) -> Diagnostic:
    path = list(error.absolute_path)
    node, _ = _locate(root, path)
    where = ".".join(str(p) for p in path) or "the spec"
    if error.validator in ("anyOf", "oneOf") and error.context:
        # Say what the alternative of the value's own type wants (`0`: "at least 1"), or list
        # the types when the value has none of them.
        specific = [e for e in error.context if e.validator != "type"]
        if specific:
            return _to_diagnostic(specific[0], root, plain)
        types = [t for e in error.context
                 for t in (e.validator_value if isinstance(e.validator_value, list) else [e.validator_value])]
        expected = " or ".join(dict.fromkeys(_YAML_TYPES.get(t, t) for t in types))
        article = "an" if expected[0] in "aeiou" else "a"
        return Diagnostic(f"`{where}` has the wrong type", node.loc, expected=f"{article} {expected}",
                          found=describe(node))
    if error.validator == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        extra = [k for k in (error.instance or {}) if k not in allowed]
        key = extra[0] if extra else "?"
        loc = node.key_loc(key) if node.is_map else node.loc
        context = "top-level key" if not path else f"key in `{where}`"
        return Diagnostic(f"unknown {context} `{key}`", loc,
                          expected="one of " + ", ".join(f"`{k}`" for k in allowed),
                          found=f"`{key}`", hint=did_you_mean(key, allowed))
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return Diagnostic(f"missing required key `{missing}` in {where}", node.loc,
                          expected=f"a `{missing}:` key")
    if error.validator == "type":
        expected = error.validator_value
        expected = expected if isinstance(expected, list) else [expected]
        expected = " or ".join(_YAML_TYPES.get(t, t) for t in expected)  # YAML's words, not JSON's
        article = "an" if str(expected)[0] in "aeiou" else "a"
        return Diagnostic(f"`{where}` has the wrong type", node.loc,
                          expected=f"{article} {expected}", found=describe(node))
    if error.validator in ("minItems", "maxItems"):
        return Diagnostic(f"`{where}` has the wrong length", node.loc,
                          expected=_length_text(error), found=f"{len(error.instance)} items",
                          hint="input is [C, H, W], e.g. [3, 224, 224]" if where == "input" else None)
    if error.validator == "minimum":
        return Diagnostic(f"`{where}` must be at least {error.validator_value}", node.loc,
                          expected=f">= {error.validator_value}", found=describe(node))
    return Diagnostic(f"`{where}`: {error.message}", node.loc)


_YAML_TYPES = {"object": "mapping", "array": "list", "null": "null (nothing)"}


def _length_text(error: Any) -> str:
    schema = error.schema
    lo, hi = schema.get("minItems"), schema.get("maxItems")
    if lo is not None and hi is not None:
        return f"{lo} to {hi} items"
    return f"at least {lo} items" if lo is not None else f"at most {hi} items"
