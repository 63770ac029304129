"""Stage 3: the located YAML tree -> the spec AST (:mod:`archdsl.spec`).

One ``parse_<construct>`` method per construct; every failure goes through :meth:`Parser.fail`.
Independent mistakes (in different blocks, or different items of a sequence) are collected and
reported together. Block libraries (``use:``) are read here, confined to the spec's project
(:func:`project_root`) unless the caller allows more directories.
"""

from __future__ import annotations

import graphlib
import keyword
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable, NoReturn

from . import expr as expr_mod
from .errors import Collector, Diagnostic, Loc, SpecError, did_you_mean
from .ops import REGISTRY, OpError
from .schema import LIBRARY_KEYS, BlockSignature, validate_structure
from .spec import (
    PARAM_TYPES,
    BlockDef,
    Call,
    Layer,
    Library,
    Meta,
    Parallel,
    ParamDecl,
    Repeat,
    Residual,
    Seq,
    Spec,
    Value,
    fits_type,
    is_pair,
)
from .yamlsrc import Y, describe, load_yaml

__all__ = ["CONSTRUCTS", "LAYER_NAME_RE", "META_KEYS", "NAME_RE", "Parser", "block_signatures", "is_library",
           "parse_library", "parse_spec", "project_root"]

META_KEYS = ("from", "when", "output", "freeze")
CONSTRUCTS = ("repeat", "dense", "parallel", "residual", "seq")
_CONSTRUCT_KEYS = {
    "repeat": ("block", "args", "layer", "name"),
    "dense": ("block", "args", "layer", "name"),
    "parallel": ("merge", "after"),
    "residual": (),
    "seq": (),
}
RESERVED = set(META_KEYS) | set(CONSTRUCTS) | {"block", "args", "layer", "name", "merge", "after",
                                               "body", "shortcut", "connect", "input", "in", "i"}
# Names become Python identifiers in generated code: no `__x` (mangled, or a dunder attribute).
# (`\Z`, not `$`: `$` also matches before a final newline, and "conv1\n" is not a name.)
NAME_RE = re.compile(r"^(?:(?!__)[A-Za-z_][A-Za-z0-9_]*|[0-9]+)\Z")
# A layer's name is an attribute path as PyTorch models spell them (it becomes the state_dict key):
# `conv1`, `block1-0` (RegNet, via add_module), `paths.0` (a child of an nn.ModuleList); each
# dot-separated part is a name as above, a `-` allowed after its first character.
_LAYER_PART = r"(?:(?!__)[A-Za-z_][A-Za-z0-9_\-]*|[0-9]+)"
LAYER_NAME_RE = re.compile(rf"^{_LAYER_PART}(?:\.{_LAYER_PART})*\Z")
LAYER_NAME_RULE = ("letters, digits, `_` and `-` (not starting with a digit, `-` or `__`), or a "
                   "number; parts joined by `.` for a child of a container (`paths.0`)")
# Words that start a construct or a meta key when they are a layer mapping's key.
RESERVED_KEYS = (*CONSTRUCTS, *META_KEYS)
MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}\Z")
MERGES = ("concat", "add", "mul")
# What marks the root of a project: `use:` may reach any file under it (and nothing outside).
PROJECT_MARKERS = (".git", "pyproject.toml", ".archdsl")
MAX_USE_DEPTH = 32  # libraries using libraries (each level is a few Python frames)
MAX_LIBRARIES = 256  # files one spec may read through `use:`


class Parser:
    """Parses one model spec and the libraries it uses."""

    def __init__(self, root_dir: Path, allow_paths: Iterable[Path] = ()):
        self.root_dir = root_dir.resolve()
        self.allow_paths = [Path(p).resolve() for p in allow_paths]
        self.errors = Collector()
        self.block_names: set[str] = set()
        self.blocks: dict[str, BlockDef] = {}
        self._block_files: dict[str, Loc] = {}
        self._loaded: set[Path] = set()

    # --- failure --------------------------------------------------------------------------
    def fail(self, message: str, loc: Loc | None, **kwargs: Any) -> NoReturn:
        raise SpecError(Diagnostic(message, loc, **kwargs))

    def collect(self, fn: Any, *args: Any) -> Any:
        """Run a parse step; on failure record its diagnostics and return None."""
        try:
            return fn(*args)
        except SpecError as error:
            self.errors.extend(error)
            return None

    # --- documents --------------------------------------------------------------------------
    def parse_model(self, path: Path, display: str) -> Spec:
        root = load_yaml(path, display)
        if not root.is_map:
            self.fail("a spec must be a mapping of keys", root.loc,
                      expected="`name:`, `input:`, `network:` ...", found=describe(root))
        for diag in validate_structure(root):
            self.errors.add(diag)
        doc = root.value
        for key in ("input", "network"):
            if key not in doc:
                self.errors.add(Diagnostic(f"missing required key `{key}`", root.loc,
                                           expected=f"a `{key}:` key in a model spec",
                                           hint="a file with only `blocks:` is a library: "
                                                "use it from a model spec with `use:` "
                                                "(`archdsl check` checks it on its own)"))
        name = doc.get("name")
        if name is not None and name.is_str and not MODEL_NAME_RE.match(name.value):
            self.errors.add(Diagnostic(f"`{_shown(name.value)}` cannot name a model", name.loc,
                                       expected="letters, digits, `_`, `-` and `.` (at most 100)",
                                       found=f"`{_shown(name.value)}`",
                                       hint="the name becomes the generated class's name; "
                                            "put prose in `doc:`"))
        shape = doc.get("input")
        if shape is not None and shape.is_list and len(shape.value) == 2:
            self.errors.add(Diagnostic("`input` has the wrong length", shape.loc,
                                       expected="[C, H, W] for images, or [F] for flat features",
                                       found="2 items", hint="add the channels: [3, H, W]"))
        self.errors.raise_if_errors()
        self.parse_uses(root, path, [path.resolve()])
        self.errors.raise_if_errors()  # without its libraries, every use of their blocks would fail too
        self.collect_block_names(root)
        self.parse_blocks(root)
        params = self.collect(self.parse_spec_params, doc.get("params")) or {}
        network = self.collect(self.parse_layer, doc["network"])
        self.check_block_cycles()
        self.errors.raise_if_errors()
        input_shape = tuple(self.parse_value(v) for v in doc["input"].value)
        return Spec(
            name=str(doc["name"].value), file=display, loc=root.loc,
            input=input_shape, input_loc=doc["input"].loc, params=params,
            blocks=dict(self.blocks), network=network,
            doc=str(doc["doc"].value) if "doc" in doc else "",
            uses=tuple(sorted(str(p) for p in self._loaded)),
            checks=self.collect(self.parse_checks, doc.get("checks")) or (),
        )

    def parse_uses(self, root: Y, path: Path, stack: list[Path]) -> None:
        """Read the libraries a document uses (recursively), collecting their block names."""
        uses = root.value.get("use")
        if uses is None:
            return
        items = uses.value if uses.is_list else [uses]
        for item in items:
            self.collect(self.parse_use, item, path, stack)

    def parse_use(self, item: Y, path: Path, stack: list[Path]) -> None:
        if not item.is_str:
            self.fail("`use:` takes file paths", item.loc, expected="a path", found=describe(item))
        if len(stack) > MAX_USE_DEPTH:
            self.fail(f"libraries use each other more than {MAX_USE_DEPTH} deep", item.loc,
                      found=f"{len(stack)} files, each using the next: {stack[0].name} -> "
                            f"{stack[1].name} -> ... -> {stack[-1].name}",
                      expected=f"at most {MAX_USE_DEPTH} levels of `use:`",
                      hint="use the libraries from one file instead of chaining them")
        target = self.resolve_use(item, path)
        if target in stack:
            cycle = " -> ".join(p.name for p in [*stack, target])
            self.fail("import cycle", item.loc, found=cycle,
                      hint="move the shared blocks into a library that both files use")
        if target in self._loaded:
            return
        if len(self._loaded) >= MAX_LIBRARIES:
            self.fail(f"the spec uses more than {MAX_LIBRARIES} library files", item.loc,
                      expected=f"at most {MAX_LIBRARIES} files through `use:`",
                      hint="merge small libraries into larger ones")
        self._loaded.add(target)
        display = os.path.relpath(target) if not os.path.isabs(item.value) else str(target)
        if display.startswith(".."):  # outside the working directory: the absolute path reads better
            display = str(target)
        root = load_yaml(target, display)
        self.parse_library_root(root, target, [*stack, target])

    def parse_library_root(self, root: Y, path: Path, stack: list[Path]) -> None:
        """A library's keys, frame, the libraries it uses, and its blocks."""
        if not root.is_map:
            self.fail("a block library must be a mapping", root.loc, found=describe(root))
        for key in root.value:
            if key not in LIBRARY_KEYS:
                self.fail(f"unknown key `{key}` in a block library", root.key_loc(key),
                          expected="one of " + ", ".join(f"`{k}`" for k in LIBRARY_KEYS),
                          hint=did_you_mean(key, LIBRARY_KEYS))
        frame_errors = validate_structure(root, library=True)
        for diag in frame_errors:
            self.errors.add(diag)
        if frame_errors:
            return  # its blocks are malformed (`params: 0`); the frame errors say how
        self.parse_uses(root, path, stack)
        self.collect_block_names(root)
        self.parse_blocks(root)

    def parse_library(self, path: Path, display: str) -> Library:
        """Check a block library on its own: its blocks parsed (names of ops, blocks and
        attributes resolved), block-use cycles, and every attribute written as a constant checked
        against its op (what can be known without an input shape)."""
        root = load_yaml(path, display)
        self._loaded.add(path.resolve())
        self.parse_library_root(root, path, [path.resolve()])
        self.errors.raise_if_errors()
        self.check_block_cycles()
        blocks = root.value.get("blocks")
        own = tuple(blocks.value) if blocks is not None and blocks.is_map else ()
        for name in own:
            if name in self.blocks:
                self.check_constant_attrs(self.blocks[name])
        self.errors.raise_if_errors()
        doc = root.value
        name = doc["name"].value if "name" in doc else path.stem
        return Library(name=str(name), file=display, loc=root.loc, blocks=dict(self.blocks),
                       own=own, doc=str(doc["doc"].value) if "doc" in doc else "",
                       uses=tuple(sorted(str(p) for p in self._loaded - {path.resolve()})))

    def check_constant_attrs(self, block: BlockDef) -> None:
        """Attributes of the block's op calls that are constants (no expression): their type and
        range; and required attributes that are missing."""
        for call in _calls(block.body):
            if call.is_block or call.target not in REGISTRY:
                continue
            op = REGISTRY[call.target]
            for attr in op.attrs:
                value = call.args.get(attr.name)
                if value is None:
                    if attr.required:
                        self.errors.add(Diagnostic(
                            f"`{op.name}` needs `{attr.name}`", call.loc,
                            expected=f"`{attr.name}`: {attr.expected()}", found="no value",
                            hint=attr.doc or None, chain=(f"block `{block.name}`",)))
                    continue
                constant = _constant(value)
                if constant is _NOT_CONSTANT:
                    continue
                try:
                    attr.coerce(constant)
                except OpError as err:
                    self.errors.add(Diagnostic(
                        f"`{op.name}`: {err.message}", call.arg_locs.get(attr.name, call.loc),
                        expected=err.expected, found=err.found, hint=err.hint,
                        chain=(f"block `{block.name}`",)))

    def resolve_use(self, item: Y, path: Path) -> Path:
        """The library a `use:` item names, or a located refusal: a path that cannot name a file
        (a NUL byte, a name too long, a symlink loop), one that leaves the project, or no file."""
        text = item.value
        if "\0" in text:
            self.fail("a `use:` path cannot contain a NUL byte", item.loc,
                      found=f"`{_shown(text)}`", expected="a file path")
        try:
            target = (path.parent / text).resolve()
            is_file = target.is_file()  # (a name too long for the system raises here)
        except RuntimeError:  # Python < 3.13: resolve() raises RuntimeError on a loop
            self.fail_unreadable(item, "a symlink loop")
        except OSError as exc:  # ELOOP, ENAMETOOLONG
            self.fail_unreadable(item, exc.strerror or str(exc))
        allowed = [self.root_dir, *self.allow_paths]
        if not any(target == base or base in target.parents for base in allowed):
            self.fail("`use:` may not leave the project", item.loc,
                      found=f"`{_shown(text)}` -> {target}",
                      expected=f"a file under {self.root_dir}",
                      hint="copy the library into the project, or pass --allow-path DIR "
                           "(the project is the nearest directory above the spec holding `.git`, "
                           "`pyproject.toml` or `.archdsl`)")
        if not is_file:
            self.fail(f"library not found: `{_shown(text)}`", item.loc,
                      expected=f"a file at {target}", hint="paths in `use:` are relative to the spec")
        return target

    def fail_unreadable(self, item: Y, reason: str) -> NoReturn:
        self.fail(f"`use:` path cannot be read: {reason}", item.loc, found=f"`{_shown(item.value)}`",
                  expected="a library file (a name of at most 255 bytes, no symlink loop)",
                  hint="check the path and the symlinks along it")

    # --- blocks --------------------------------------------------------------------------------
    def collect_block_names(self, root: Y) -> None:
        blocks = root.value.get("blocks")
        if blocks is None or not blocks.is_map:
            return
        for name in blocks.value:
            loc = blocks.key_loc(name)
            if name in REGISTRY:
                self.errors.add(Diagnostic(f"block `{name}` has the name of an op", loc,
                                           hint=f"rename the block (e.g. `{name}_block`)"))
            elif (name in RESERVED or not NAME_RE.match(name) or name.isdigit()
                  or keyword.iskeyword(name)):
                self.errors.add(Diagnostic(f"`{_shown(name)}` cannot name a block", loc,
                                           expected="an identifier (not starting with `__`) that is "
                                                    "not a keyword of the language or of Python"))
            elif name in self._block_files:
                self.errors.add(Diagnostic(f"block `{name}` is defined twice", loc,
                                           notes=(("first defined here", self._block_files[name]),)))
            else:
                self._block_files[name] = loc
                self.block_names.add(name)

    def parse_blocks(self, root: Y) -> None:
        blocks = root.value.get("blocks")
        if blocks is None or not blocks.is_map:
            return
        for name, body in blocks.value.items():
            if name in self.block_names and name not in self.blocks:
                block = self.collect(self.parse_block, name, body, blocks.key_loc(name))
                if block is not None:
                    self.blocks[name] = block

    def parse_block(self, name: str, y: Y, loc: Loc) -> BlockDef:
        if not y.is_map:
            self.fail(f"block `{name}` must be a mapping", y.loc,
                      expected="`params:`, `let:` and `body:`", found=describe(y))
        params = self.parse_block_params(y.value.get("params"))
        lets = []
        let = y.value.get("let")
        if let is not None:
            for key, value in let.value.items():
                self.check_name(key, let.key_loc(key), "a `let` value")
                if key in params:
                    self.fail(f"`let` value `{key}` hides the parameter of the same name",
                              let.key_loc(key), hint="rename one of them")
                lets.append((key, self.parse_value(value)))
        if "body" not in y.value:
            self.fail(f"block `{name}` has no `body:`", loc, expected="a `body:` layer")
        body = self.parse_layer(y.value["body"])
        doc = y.value["doc"].value if "doc" in y.value else ""
        inputs = self.parse_block_inputs(y.value.get("inputs"), body)
        return BlockDef(name, params, tuple(lets), body, loc, str(doc),
                        checks=self.parse_checks(y.value.get("checks")), inputs=inputs)

    def parse_block_inputs(self, y: Y | None, body: Layer) -> tuple[tuple[str, Loc], ...]:
        """``inputs: [low, high]``: the names the body reads with ``from:`` (``input`` is the
        first); none may be reserved, given twice, or name a layer of the body."""
        if y is None:
            return ()
        if not y.is_list or not y.value:
            self.fail("`inputs:` takes a list of input names", y.loc,
                      expected="e.g. `inputs: [low, high]`", found=describe(y))
        inputs: list[tuple[str, Loc]] = []
        for item in y.value:
            if not item.is_str:
                self.fail("`inputs:` takes input names", item.loc, expected="an identifier",
                          found=describe(item))
            name = item.value
            self.check_name(name, item.loc, "a block input")
            if name in RESERVED:
                self.fail(f"`{name}` is reserved and cannot name a block input", item.loc,
                          found=f"`{name}`", expected="a name that is not a word of the language",
                          hint=f"use another name, e.g. `{name}_`")
            for other, other_loc in inputs:
                if other == name:
                    self.fail(f"block input `{name}` is declared twice", item.loc,
                              notes=(("first declared here", other_loc),))
            inputs.append((name, item.loc))
        declared = dict(inputs)
        for layer in _layers(body):
            if layer.name in declared:
                self.fail(f"layer `{layer.name}` has the name of a block input",
                          layer.name_loc or layer.loc, found=f"`{layer.name}`",
                          notes=((f"input `{layer.name}` is declared here", declared[layer.name]),),
                          hint="`from:` reads a block input by its name: rename the layer")
        return tuple(inputs)

    def parse_checks(self, y: Y | None) -> tuple[tuple[Value, str], ...]:
        """``checks: {"(depth - 2) % 6 == 0": "depth must be 6n+2"}``: conditions and messages."""
        if y is None:
            return ()
        checks = []
        for key, message in y.value.items():
            key_loc = y.key_loc(key)
            expr = expr_mod.compile_expr(key, key_loc)
            checks.append((Value(loc=Loc(key_loc.file, key_loc.line, key_loc.col, len(key)),
                                 literal=key, expr=expr), str(message.value)))
        return tuple(checks)

    def parse_block_params(self, y: Y | None) -> dict[str, ParamDecl]:
        params: dict[str, ParamDecl] = {}
        if y is None:
            return params
        for key, value in y.value.items():
            loc = y.key_loc(key)
            self.check_name(key, loc, "a parameter")
            raw = value.plain()
            if isinstance(raw, str) and raw in PARAM_TYPES:
                params[key] = ParamDecl(key, raw, None, loc, required=True)
            elif isinstance(raw, (bool, int, float, str)) or is_pair(raw):
                params[key] = ParamDecl(key, _type_name(raw), raw, loc)
            elif value.is_map:
                params[key] = self.parse_param_long(key, value, loc)
            else:
                self.fail(f"parameter `{key}` needs a default or a type", value.loc,
                          expected="a default value (a number, a boolean, a word or a pair [h, w] "
                                   "of whole numbers), or one of " + ", ".join(PARAM_TYPES),
                          found=describe(value))
        return params

    def parse_param_long(self, key: str, y: Y, loc: Loc) -> ParamDecl:
        """``act: {default: relu, choices: [relu, sigmoid], doc: ...}``."""
        allowed = ("default", "type", "choices", "doc")
        for k in y.value:
            if k not in allowed:
                self.fail(f"unknown key `{k}` in parameter `{key}`", y.key_loc(k),
                          expected="one of " + ", ".join(f"`{a}`" for a in allowed),
                          hint=did_you_mean(k, allowed))
        v = y.value
        choices = tuple(c.plain() for c in v["choices"].value) if "choices" in v and v["choices"].is_list else ()
        if "choices" in v and not choices:
            self.fail("`choices:` takes a non-empty list", v["choices"].loc, found=describe(v["choices"]))
        if "default" in v:
            default = v["default"].plain()
            if not isinstance(default, (bool, int, float, str)) and not is_pair(default):
                self.fail(f"the default of `{key}` is not a value a parameter takes", v["default"].loc,
                          expected="a number, a boolean, a word or a pair [h, w] of whole numbers",
                          found=describe(default))
            type_name = v["type"].value if "type" in v else _type_name(default)
        elif "type" in v:
            default, type_name = None, v["type"].value
        else:
            self.fail(f"parameter `{key}` needs `default:` or `type:`", y.loc)
        if type_name not in PARAM_TYPES:
            self.fail(f"unknown type `{type_name}` for parameter `{key}`", (v.get("type") or y).loc,
                      expected=", ".join(PARAM_TYPES), hint=did_you_mean(str(type_name), PARAM_TYPES))
        if "default" in v and "type" in v and not fits_type(default, type_name):
            self.fail(f"the default of `{key}` is not of its type `{type_name}`", v["default"].loc,
                      expected={"pair": "an int or [h, w]", "int": "an int"}.get(type_name,
                                                                                 f"a {type_name}"),
                      found=describe(default))
        if "default" in v and choices and default not in choices:
            self.fail(f"the default of `{key}` is not one of its choices", v["default"].loc,
                      expected=" or ".join(repr(c) for c in choices), found=describe(default))
        doc = str(v["doc"].value) if "doc" in v else ""
        return ParamDecl(key, type_name, default, loc, required="default" not in v,
                         choices=choices, doc=doc)

    def parse_spec_params(self, y: Y | None) -> dict[str, ParamDecl]:
        params = {}
        for key, decl in self.parse_block_params(y).items():
            if decl.required:
                self.fail(f"spec parameter `{key}` needs a default", decl.loc,
                          hint="spec parameters are overridden with --set, so each needs a default")
            params[key] = decl
        return params

    def check_block_cycles(self) -> None:
        uses: dict[str, dict[str, None]] = {}
        sites: dict[tuple[str, str], Loc] = {}
        for name, block in self.blocks.items():
            uses[name] = {}
            for call in _calls(block.body):
                if call.is_block:
                    uses[name][call.target] = None
                    sites.setdefault((name, call.target), call.loc)
        try:  # (the standard library's check is cheap to import; networkx names the cycle)
            graphlib.TopologicalSorter(uses).prepare()
        except graphlib.CycleError:
            import networkx as nx

            graph = nx.DiGraph()
            for name, targets in uses.items():
                graph.add_node(name)
                graph.add_edges_from((name, target) for target in targets)
            cycle = nx.find_cycle(graph)
        else:
            return
        path = " -> ".join([cycle[0][0], *(v for _, v in cycle)])
        first = cycle[0]
        what = "uses itself" if len(cycle) == 1 else "uses itself through other blocks"
        self.errors.add(Diagnostic(f"block `{first[0]}` {what}", sites[first], found=path,
                                   hint="a block cannot contain itself; use `repeat:` to chain copies"))

    # --- layers -------------------------------------------------------------------------------
    def parse_layer(self, y: Y) -> Layer:
        if y.is_str:
            return self.parse_call(y.value, None, y.loc, y.loc)
        if y.is_list:
            return self.parse_seq(y.value, y.loc)
        if not y.is_map:
            self.fail("expected a layer", y.loc,
                      expected="an op or block name, a list, or a mapping", found=describe(y))
        self.refuse_reserved_name(y)
        meta = self.parse_meta(y)
        keys = [k for k in y.value if k not in META_KEYS]
        heads = [k for k in keys if k in CONSTRUCTS]
        if heads:
            return self.parse_construct(heads[0], y, keys, meta)
        if len(keys) != 1:
            self.fail("a layer mapping needs exactly one key besides "
                      + ", ".join(f"`{k}`" for k in META_KEYS), y.loc,
                      expected="`{op: {args}}` or `{name: layer}`",
                      found=", ".join(f"`{k}`" for k in keys) or "only meta keys",
                      hint="put each layer in its own list item")
        key = keys[0]
        value = y.value[key]
        key_loc = y.key_loc(key)
        if self.is_callable(key) and not self.looks_like_layer(value):
            if value.value is not None and not value.is_map:
                self.fail(f"the arguments of `{key}` must be a mapping", value.loc,
                          expected="`{" + key + ": {name: value, ...}}`", found=describe(value),
                          hint=f"to name a layer `{key}`, give it a layer: `{key}: {{op: {{...}}}}`")
            layer = self.parse_call(key, value, key_loc, y.loc)
            return replace(layer, meta=meta)
        if value.value is None or (value.is_map and not self.looks_like_layer(value)
                                   and not _looks_like_call(value)):
            # `{cnov: {out: 8}}`: arguments given to something that is neither op nor block.
            # (`conv1: {cnov: {out: 8}}` names a call: the inner key is reported, below.)
            self.parse_call(key, None, key_loc, y.loc)
        self.check_name(key, key_loc, "a layer", layer=True)
        inner = self.parse_layer(value)
        return replace(inner, name=key, name_loc=key_loc, meta=_merge_meta(meta, inner.meta, key_loc))

    def refuse_reserved_name(self, y: Y) -> None:
        """``{repeat: {conv: ...}}``: a reserved word used as a layer's name, said so plainly
        (rather than the construct's own complaint about its value)."""
        if len(y.value) != 1:
            return
        key, value = next(iter(y.value.items()))
        if key not in RESERVED_KEYS:
            return
        # `{repeat: relu}`, `{dense: [conv, relu]}`: a count cannot be a layer.
        counted = key in ("repeat", "dense") and (
            value.is_list or (value.is_str and self.is_callable(value.value)))
        if not counted and not (value.is_map and (self.looks_like_layer(value)
                                                  or _looks_like_call(value))):
            return
        if key == "residual" and set(value.value) <= set(_RESIDUAL_KEYS):
            return  # `{residual: {body: ...}}` is the construct
        what = "a construct" if key in CONSTRUCTS else "a meta key"
        self.fail(f"`{key}` is reserved ({what} of the language) and cannot name a layer",
                  y.key_loc(key), expected="a layer name that is not one of: "
                  + ", ".join(f"`{k}`" for k in RESERVED_KEYS),
                  found=f"`{key}:` with a layer as its value",
                  hint=f"name the layer `{key}_` (or another name); the README's language "
                       f"reference shows how `{key}:` is written")

    def is_callable(self, name: str) -> bool:
        return name in REGISTRY or name in self.block_names

    def looks_like_layer(self, y: Y) -> bool:
        """Is the value of `{op: value}` itself a layer (so the key is a name)?"""
        if y.is_str or y.is_list:
            return True
        if not y.is_map:
            return False
        keys = [k for k in y.value if k not in META_KEYS]
        if any(k in CONSTRUCTS for k in keys):
            return True
        return len(keys) == 1 and self.is_callable(keys[0]) and (
            y.value[keys[0]].value is None or y.value[keys[0]].is_map or self.looks_like_layer(y.value[keys[0]]))

    def parse_call(self, target: str, args: Y | None, target_loc: Loc, loc: Loc) -> Call:
        if not self.is_callable(target):
            if target in CONSTRUCTS:
                self.fail(f"`{target}` needs a configuration", target_loc,
                          hint=f"write it as a mapping, e.g. `{{{target}: ...}}`")
            self.fail(f"unknown op or block `{target}`", target_loc,
                      expected="an op (see `archdsl ops`) or a block defined in `blocks:`",
                      found=f"`{target}`",
                      hint=did_you_mean(target, [*REGISTRY, *self.block_names]))
        values: dict[str, Value] = {}
        locs: dict[str, Loc] = {}
        if args is not None and args.is_map:
            for key, value in args.value.items():
                values[key] = self.parse_value(value)
                locs[key] = args.key_loc(key)
        if target in REGISTRY and target not in self.block_names:
            self.check_attr_names(REGISTRY[target], locs)
        return Call(loc=loc, target=target, is_block=target in self.block_names, args=values,
                    arg_locs=locs)

    def check_attr_names(self, op: Any, locs: dict[str, Loc]) -> None:
        """Unknown attribute names are found here, so they are reported with the parse errors."""
        declared = {attr.name for attr in op.attrs}
        for key, loc in locs.items():
            if key not in declared:
                err = op.unknown_attr(key)
                alias = _PYTORCH_NAMES.get(key)
                hint = err.hint or (f"archdsl calls it `{alias}`" if alias in declared else None)
                self.errors.add(Diagnostic(f"`{op.name}` has no attribute `{key}`", loc,
                                           expected=err.expected, found=err.found, hint=hint))

    def parse_seq(self, items: list[Y], loc: Loc) -> Seq:
        parsed = [self.collect(self.parse_layer, item) for item in items]
        return Seq(loc=loc, items=tuple(p for p in parsed if p is not None))

    def parse_construct(self, head: str, y: Y, keys: list[str], meta: Meta) -> Layer:
        allowed = (head, *_CONSTRUCT_KEYS[head])
        for key in keys:
            if key not in allowed:
                self.fail(f"unknown key `{key}` in `{head}`", y.key_loc(key),
                          expected="one of " + ", ".join(f"`{k}`" for k in (*allowed, *META_KEYS)),
                          hint=did_you_mean(key, allowed))
        parse = {"repeat": self.parse_repeat, "dense": self.parse_dense,
                 "parallel": self.parse_parallel, "residual": self.parse_residual,
                 "seq": self.parse_seq_construct}[head]
        return replace(parse(y), meta=meta)

    def parse_repeat(self, y: Y, dense: bool = False) -> Repeat:
        head = "dense" if dense else "repeat"
        v = y.value
        count = self.parse_value(v[head])
        has_block, has_layer = "block" in v, "layer" in v
        if has_block == has_layer:
            self.fail(f"`{head}` needs either `block:` (with `args:`) or `layer:`", y.key_loc(head),
                      expected=f"`{{{head}: N, block: NAME, args: {{...}}}}` or `{{{head}: N, layer: ...}}`")
        if has_block:
            block = v["block"]
            if not block.is_str:
                self.fail("`block:` takes a block name", block.loc, found=describe(block))
            if block.value not in self.block_names:
                self.fail(f"unknown block `{block.value}`", block.loc,
                          expected="a block defined in `blocks:` or a used library",
                          hint=did_you_mean(block.value, self.block_names))
            layer: Layer = self.parse_call(block.value, v.get("args"), block.loc, block.loc)
        else:
            if "args" in v:
                self.fail("`args:` goes with `block:`", y.key_loc("args"),
                          hint="give the layer's arguments inside `layer:`")
            layer = self.parse_layer(v["layer"])
        template = self.parse_template(v["name"]) if "name" in v else None
        return Repeat(loc=y.loc, count=count, layer=layer, name_template=template, dense=dense)

    def parse_dense(self, y: Y) -> Repeat:
        return self.parse_repeat(y, dense=True)

    def parse_parallel(self, y: Y) -> Parallel:
        v = y.value
        branches = v["parallel"]
        if not branches.is_list or not branches.value:
            self.fail("`parallel:` takes a list of branches", branches.loc, found=describe(branches))
        parsed = [self.collect(self.parse_layer, b) for b in branches.value]
        merge, merge_loc = "concat", None
        if "merge" in v:
            merge, merge_loc = v["merge"].value, v["merge"].loc
            if merge not in MERGES:
                self.fail("unknown merge", merge_loc, expected=" or ".join(MERGES),
                          found=describe(v["merge"]), hint=did_you_mean(str(merge), MERGES))
        after = self.parse_layer(v["after"]) if "after" in v else None
        return Parallel(loc=y.loc, branches=tuple(p for p in parsed if p is not None), merge=merge,
                        merge_loc=merge_loc, after=after)

    def parse_residual(self, y: Y) -> Residual:
        cfg = y.value["residual"]
        if not cfg.is_map:
            self.fail("`residual:` takes a mapping", cfg.loc,
                      expected="`{body: ..., shortcut: ..., after: ...}`", found=describe(cfg))
        allowed = _RESIDUAL_KEYS
        for key in cfg.value:
            if key not in allowed:
                hint = did_you_mean(key, allowed)
                if key in REGISTRY:  # `scale: 0.17` (Inception-ResNet's x + 0.17 * branch)
                    hint = (f"`{key}` is an op: make it the last layer of `body:`, "
                            f"e.g. `body: [..., {{{key}: {{...}}}}]`")
                self.fail(f"unknown key `{key}` in `residual`", cfg.key_loc(key),
                          expected="one of " + ", ".join(f"`{k}`" for k in allowed), hint=hint)
        if "body" not in cfg.value:
            self.fail("`residual:` needs a `body:`", cfg.loc, expected="a `body:` layer")
        c = cfg.value
        return Residual(
            loc=y.loc,
            body=self.parse_layer(c["body"]),
            shortcut=self.parse_layer(c["shortcut"]) if "shortcut" in c and c["shortcut"].value is not None else None,
            after=self.parse_layer(c["after"]) if "after" in c else None,
            connect=self.parse_value(c["connect"]) if "connect" in c else None,
        )

    def parse_seq_construct(self, y: Y) -> Seq:
        items = y.value["seq"]
        if not items.is_list:
            self.fail("`seq:` takes a list of layers", items.loc, found=describe(items))
        return self.parse_seq(items.value, y.loc)

    # --- meta and values ------------------------------------------------------------------------
    def parse_meta(self, y: Y) -> Meta:
        v = y.value
        inputs = when = output = None
        freeze = False
        if "from" in v:
            src = v["from"]
            names = src.value if src.is_list else [src]
            inputs = []
            for item in names:
                if not item.is_str:
                    self.fail("`from:` takes layer names", item.loc, found=describe(item))
                inputs.append((item.value, item.loc))
            inputs = tuple(inputs)
        if "when" in v:
            when = self.parse_value(v["when"])
        if "output" in v:
            out = v["output"]
            if not out.is_str or not NAME_RE.match(out.value):
                self.fail("`output:` takes an output name", out.loc, expected="an identifier",
                          found=describe(out))
            output = (out.value, out.loc)
        if "freeze" in v:
            if not isinstance(v["freeze"].value, bool):
                self.fail("`freeze:` takes true or false", v["freeze"].loc, found=describe(v["freeze"]))
            freeze = v["freeze"].value
        return Meta(inputs=inputs, when=when, output=output, freeze=freeze)

    def parse_value(self, y: Y) -> Value:
        raw = y.value
        if isinstance(raw, str):
            loc = y.expr_loc()
            return Value(loc=Loc(loc.file, loc.line, loc.col, max(1, len(raw))), literal=raw,
                         expr=expr_mod.compile_expr(raw, loc))
        if isinstance(raw, list):
            return Value(loc=y.loc, items=tuple(self.parse_value(item) for item in raw))
        if raw is None or isinstance(raw, (bool, int, float)):
            return Value(loc=y.loc, literal=raw)
        self.fail("expected a value", y.loc, expected="a number, a boolean, an expression or a list",
                  found=describe(y))

    def parse_template(self, y: Y) -> Value:
        """``"denselayer{i+1}"`` -> a Value whose items are text and expression parts."""
        if not y.is_str:
            self.fail("`name:` takes a template string", y.loc, expected='e.g. "denselayer{i+1}"',
                      found=describe(y))
        text, base = y.value, y.expr_loc()
        parts: list[Value] = []
        pos = 0
        for match in re.finditer(r"\{([^{}]*)\}", text):
            if match.start() > pos:
                parts.append(Value(loc=base.shifted(pos), literal=text[pos:match.start()]))
            inner_loc = base.shifted(match.start(1), len(match.group(1)))
            parts.append(Value(loc=inner_loc, expr=expr_mod.compile_expr(match.group(1), inner_loc)))
            pos = match.end()
        if pos < len(text):
            parts.append(Value(loc=base.shifted(pos), literal=text[pos:]))
        return Value(loc=y.loc, literal=text, items=tuple(parts))

    def check_name(self, name: str, loc: Loc, what: str, layer: bool = False) -> None:
        """A name for an expression (``let``, parameters): an identifier; for a layer: an
        attribute path (:data:`LAYER_NAME_RE`)."""
        if not (LAYER_NAME_RE if layer else NAME_RE).match(name):
            rule = LAYER_NAME_RULE if layer else ("letters, digits and `_` (not starting with a "
                                                  "digit or `__`), or a number")
            self.fail(f"`{_shown(name)}` cannot name {what}", loc, expected=rule,
                      found=f"`{_shown(name)}`")
        if keyword.iskeyword(name) or name in ("input", "in", "i"):
            self.fail(f"`{name}` is reserved and cannot name {what}", loc,
                      hint=f"use another name, e.g. `{name}_`")


# PyTorch's keyword names -> archdsl's attribute names, for did-you-mean hints.
_PYTORCH_NAMES = {
    "kernel": "k", "kernel_size": "k", "padding": "pad", "out_channels": "out",
    "out_features": "out", "channels": "out", "filters": "out", "ceil_mode": "ceil",
    "output_size": "size", "negative_slope": "slope", "num_groups": "groups",
    "scale_factor": "scale", "min_val": "min", "max_val": "max", "num_parameters": "per_channel",
    "split_size_or_sections": "sizes", "split_sizes": "sizes", "layer_scale": "init",
    "normalized_shape": "over", "dim": "over",
}


_RESIDUAL_KEYS = ("body", "shortcut", "after", "connect")


def _looks_like_call(y: Y) -> bool:
    """``{op: {args}}`` or ``{op: }`` (one key besides meta keys) whatever ``op`` is."""
    keys = [k for k in y.value if k not in META_KEYS]
    return len(keys) == 1 and (y.value[keys[0]].value is None or y.value[keys[0]].is_map)


def _shown(name: str) -> str:
    return name.encode("unicode_escape").decode("ascii")[:60]


def _type_name(value: Any) -> str:
    """The type a default gives its parameter: a `[h, w]` list of whole numbers makes a `pair`."""
    if is_pair(value):
        return "pair"
    for name, typ in (("bool", bool), ("int", int), ("float", float), ("str", str)):
        if isinstance(value, typ):
            return name
    return "str"



def _merge_meta(outer: Meta, inner: Meta, loc: Loc) -> Meta:
    if outer.inputs and inner.inputs or outer.when and inner.when or outer.output and inner.output:
        raise SpecError(Diagnostic("a meta key is given both beside the name and inside the layer",
                                   loc, hint="give `from`/`when`/`output` once"))
    return Meta(inputs=outer.inputs or inner.inputs, when=outer.when or inner.when,
                output=outer.output or inner.output, freeze=outer.freeze or inner.freeze)


_NOT_CONSTANT = object()


def _constant(value: Value) -> Any:
    """The value of an argument written as a constant (a number, a boolean, null or a list of
    them), or ``_NOT_CONSTANT`` (an expression or a word, which needs the block's arguments)."""
    if value.items is not None:
        items = [_constant(item) for item in value.items]
        return _NOT_CONSTANT if any(item is _NOT_CONSTANT for item in items) else items
    if value.expr is not None:
        return _NOT_CONSTANT
    return value.literal


def _layers(layer: Layer | None) -> Iterable[Layer]:
    """A layer and every layer inside it."""
    if layer is None:
        return
    yield layer
    if isinstance(layer, Seq):
        for item in layer.items:
            yield from _layers(item)
    elif isinstance(layer, Parallel):
        for item in (*layer.branches, layer.after):
            yield from _layers(item)
    elif isinstance(layer, Residual):
        for item in (layer.body, layer.shortcut, layer.after):
            yield from _layers(item)
    elif isinstance(layer, Repeat):
        yield from _layers(layer.layer)


def _calls(layer: Layer | None) -> Iterable[Call]:
    """Every Call inside a layer (for the block-use graph)."""
    return (item for item in _layers(layer) if isinstance(item, Call))


def parse_library(path: str | Path, allow_paths: Iterable[str | Path] = (),
                  display: str | None = None) -> Library:
    """Parse and check a block library on its own (:meth:`Parser.parse_library`)."""
    path = Path(path)
    parser = _parser(path, allow_paths)
    return parser.parse_library(path, display or str(path))


def is_library(path: str | Path) -> bool:
    """Is the file a block library: a mapping with ``blocks:`` or ``use:``, and neither
    ``input:`` nor ``network:``? (False for anything that does not read: the caller reports it.)"""
    try:
        root = load_yaml(Path(path), str(path))
    except SpecError:
        return False
    if not root.is_map:
        return False
    keys = set(root.value)
    return bool(keys & {"blocks", "use"}) and not keys & {"input", "network"}


def block_signatures(path: str | Path, allow_paths: Iterable[str | Path] = ()
                     ) -> dict[str, BlockSignature]:
    """The blocks a spec or library can call (its own and those of the libraries it uses), with
    their parameters, for the JSON Schema. Errors are ignored, as far as they can be: a spec being
    edited still gets the names of its blocks."""
    path = Path(path)
    parser = _parser(path, allow_paths)
    root = load_yaml(path, str(path))
    if not root.is_map:
        return {}
    parser.parse_uses(root, path, [path.resolve()])
    signatures = {name: _signature(block.params, block.doc)
                  for name, block in parser.blocks.items()}
    blocks = root.value.get("blocks")
    if blocks is not None and blocks.is_map:
        for name, body in blocks.value.items():
            params = body.value.get("params") if body.is_map else None
            declared = parser.collect(parser.parse_block_params, params) or {}
            doc = body.value["doc"].value if body.is_map and "doc" in body.value else ""
            signatures[name] = _signature(declared, str(doc))
    return signatures


def _signature(params: dict[str, ParamDecl], doc: str) -> BlockSignature:
    return BlockSignature(tuple((p.name, p.type, p.required) for p in params.values()), doc)


def project_root(spec: Path) -> Path:
    """The directory tree a spec's `use:` may reach: the nearest directory at or above the spec's
    holding `.git`, `pyproject.toml` or `.archdsl`; else the working directory when it contains the
    spec; else the spec's own directory."""
    directory = spec.resolve().parent
    for candidate in (directory, *directory.parents):
        if any((candidate / marker).exists() for marker in PROJECT_MARKERS):
            return candidate
    cwd = Path.cwd().resolve()
    return cwd if cwd == directory or cwd in directory.parents else directory


def parse_spec(path: str | Path, allow_paths: Iterable[str | Path] = (),
               display: str | None = None) -> Spec:
    """Parse a model spec (and the libraries it uses) into a :class:`Spec`."""
    path = Path(path)
    return _parser(path, allow_paths).parse_model(path, display or str(path))


def _parser(path: Path, allow_paths: Iterable[str | Path]) -> Parser:
    """A parser whose `use:` may reach the file's project and the allowed directories."""
    try:
        root = project_root(path)
    except (OSError, RuntimeError, ValueError):  # a path that names no file: load_yaml says so
        root = Path(".")
    return Parser(root, [Path(p) for p in allow_paths])
