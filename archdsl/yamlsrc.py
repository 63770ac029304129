"""Stage 1: read a spec file into a tree of located values.

PyYAML's *safe* composer builds the node tree (nothing is constructed from tags); this module
refuses what a spec never needs and an attacker would use — explicit tags, aliases (billion laughs),
deep nesting, duplicate keys, huge files — and turns every node into a :class:`Y` that remembers
its file:line:column.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.events import (AliasEvent, MappingEndEvent, MappingStartEvent, ScalarEvent, SequenceEndEvent,
                         SequenceStartEvent, StreamEndEvent)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import Diagnostic, Loc, SpecError, register_source

__all__ = ["Y", "load_yaml", "parse_yaml_text", "MAX_FILE_BYTES", "MAX_DEPTH"]

MAX_FILE_BYTES = 1_000_000
MAX_DEPTH = 64

_STANDARD_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:timestamp",  # an unquoted date; later rejected as a value of the wrong type
}


@dataclass(frozen=True)
class Y:
    """A located YAML value: ``value`` is a scalar, a ``dict[str, Y]`` or a ``list[Y]``.

    ``key_locs`` gives, for a mapping, the location of each key. ``quoted`` says whether a string
    scalar was written in quotes (an expression inside starts one column later).
    """

    value: Any
    loc: Loc
    key_locs: dict[str, Loc] | None = None
    quoted: bool = False

    @property
    def is_map(self) -> bool:
        return isinstance(self.value, dict)

    @property
    def is_list(self) -> bool:
        return isinstance(self.value, list)

    @property
    def is_str(self) -> bool:
        return isinstance(self.value, str)

    def key_loc(self, key: str) -> Loc:
        return (self.key_locs or {}).get(key, self.loc)

    def expr_loc(self) -> Loc:
        """Where the text of a string scalar starts (inside the quotes)."""
        return self.loc.shifted(1) if self.quoted else self.loc

    def plain(self) -> Any:
        """The value without locations (for JSON-Schema validation and reports)."""
        if isinstance(self.value, dict):
            return {k: v.plain() for k, v in self.value.items()}
        if isinstance(self.value, list):
            return [v.plain() for v in self.value]
        return self.value


def describe(value: Any) -> str:
    """A short description of a found value for diagnostics: `'abc'` (a string), `[...]` (a list)."""
    if isinstance(value, Y):
        value = value.plain()
    if isinstance(value, bool):
        return f"`{str(value).lower()}` (a boolean)"
    if isinstance(value, int):
        return f"`{value}` (an integer)"
    if isinstance(value, float):
        return f"`{value}` (a number)"
    if isinstance(value, str):
        if len(value) > 60:
            return f"`{value[:60]}...` (a string of {len(value):,} characters)"
        return f"`{value}` (a string)"
    if value is None:
        return "nothing (null)"
    if isinstance(value, list):
        if value and len(value) <= 8 and all(isinstance(v, (int, float, str)) for v in value):
            return "[" + ", ".join(str(v)[:20] for v in value) + f"] (a list of {len(value)})"
        return "a list"
    if isinstance(value, dict):
        return "a mapping with keys " + ", ".join(f"`{k}`" for k in list(value)[:6])
    return type(value).__name__


class _GuardedLoader(yaml.SafeLoader):
    """SafeLoader's composer with aliases and deep nesting refused."""

    def __init__(self, stream: str, filename: str):
        super().__init__(stream)
        self._filename = filename
        self._depth = 0

    def _loc(self, mark: Any) -> Loc:
        return Loc(self._filename, mark.line + 1, mark.column + 1)

    def compose_node(self, parent: Node | None, index: Any) -> Node:  # noqa: D102
        if self.check_event(AliasEvent):
            event = self.peek_event()
            raise SpecError(Diagnostic(
                "YAML aliases are not allowed in a spec",
                self._loc(event.start_mark),
                expected="plain values", found=f"alias `*{event.anchor}`",
                hint="write the value out, or define a block and use it by name",
            ))
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                event = self.peek_event()
                raise SpecError(Diagnostic(
                    f"the document is nested more than {MAX_DEPTH} levels deep",
                    self._loc(event.start_mark),
                    hint="flatten the spec with named blocks",
                ))
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


try:
    from yaml.cyaml import CParser as _CParser
except ImportError:  # PyYAML without libyaml: only the pure-Python path
    _CParser = None


class _FastLoader(_CParser or yaml.parser.Parser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
    """The located tree straight from libyaml's events, about ten times faster than composing.

    Only for the happy path: on an alias, an anchor, a tag, deep nesting, a key that is not a
    string, a duplicate key or any other surprise it gives up, and :func:`parse_yaml_text`
    composes the text again with :class:`_GuardedLoader`, which reports the problem.
    """

    def __init__(self, stream: str):
        _CParser.__init__(self, stream)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)

    def tree(self, name: str) -> Y | None:
        """The single document as a located tree; None when the stream has no document."""
        self.get_event()  # stream start
        if self.check_event(StreamEndEvent):
            return None
        self.get_event()  # document start
        root = self._value(name, 1)
        self.get_event()  # document end
        if not self.check_event(StreamEndEvent):
            raise _SlowPath  # more than one document
        return root

    def _value(self, name: str, depth: int) -> Y:
        event = self.get_event()
        if depth > MAX_DEPTH or event.anchor is not None or getattr(event, "tag", None) is not None:
            raise _SlowPath
        mark = event.start_mark
        if isinstance(event, ScalarEvent):
            tag = self.resolve(ScalarNode, event.value, event.implicit)
            if tag not in _STANDARD_TAGS:
                raise _SlowPath
            node = ScalarNode(tag, event.value, mark, event.end_mark, style=event.style)
            value = self.yaml_constructors[tag](self, node)
            length = max(1, len(event.value)) if mark.line == event.end_mark.line else 1
            return Y(value, Loc(name, mark.line + 1, mark.column + 1, length), None,
                     event.style in ("'", '"'))
        loc = Loc(name, mark.line + 1, mark.column + 1)
        if isinstance(event, SequenceStartEvent):
            items = []
            while not self.check_event(SequenceEndEvent):
                items.append(self._value(name, depth + 1))
            self.get_event()
            return Y(items, loc)
        if not isinstance(event, MappingStartEvent):
            raise _SlowPath  # an alias
        values: dict[str, Y] = {}
        key_locs: dict[str, Loc] = {}
        while not self.check_event(MappingEndEvent):
            key = self._value(name, depth + 1)
            if not isinstance(key.value, str) or key.value in values:
                raise _SlowPath
            values[key.value] = self._value(name, depth + 1)
            key_locs[key.value] = key.loc
        self.get_event()
        return Y(values, loc, key_locs)


class _SlowPath(Exception):
    """The fast reader declines; the pure-Python one will report the problem."""


def _compose_fast(text: str, name: str) -> Y | None:
    """The located tree through libyaml, or None (no libyaml, or any problem with the text)."""
    if _CParser is None or "\t" in text or yaml.reader.Reader.NON_PRINTABLE.search(text):
        # (libyaml accepts some tabs PyYAML refuses; those texts take the pure-Python path)
        return None
    loader = _FastLoader(text)
    try:
        return loader.tree(name)
    except Exception:  # noqa: BLE001 - every problem is reported by the pure-Python path
        return None
    finally:
        loader.dispose()


def load_yaml(path: str | Path, display_name: str | None = None) -> Y:
    """Read and compose one spec file; every problem is a located SpecError."""
    path = Path(path)
    name = display_name or str(path)
    file_loc = Loc(name, 1, 1)
    try:
        path.stat()
    except FileNotFoundError:
        raise SpecError(Diagnostic(f"no such file: {name}", None,
                                   hint="check the path (relative paths start at the current directory)")) \
            from None
    except (OSError, ValueError) as exc:  # a NUL byte, a name too long, a symlink loop
        reason = getattr(exc, "strerror", None) or str(exc)
        raise SpecError(Diagnostic(f"cannot read {_printable_name(name)}: {reason}", None,
                                   hint="check the path and the symlinks along it")) from None
    if path.is_dir():
        raise SpecError(Diagnostic(f"{name} is a directory, not a spec file", None,
                                   hint="name a .yaml file inside it"))
    if not path.is_file():
        raise SpecError(Diagnostic(f"{name} is not a regular file", None,
                                   hint="a spec is a .yaml file (not a device, pipe or socket)"))
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)  # never more, whatever the file claims to be
    except OSError as exc:
        raise SpecError(Diagnostic(f"cannot read {name}: {exc.strerror}", None)) from None
    if len(data) > MAX_FILE_BYTES:
        raise SpecError(Diagnostic(f"{name} is too large for a spec (over {MAX_FILE_BYTES:,} bytes)",
                                   file_loc,
                                   expected=f"at most {MAX_FILE_BYTES:,} bytes"))
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SpecError(Diagnostic(f"{name} is UTF-16 or UTF-32, not UTF-8", file_loc,
                                   found="a UTF-16/32 byte-order mark", expected="UTF-8 text",
                                   hint="save the file as UTF-8"))
    if b"\x00" in data:
        raise SpecError(Diagnostic(f"{name} is a binary file, not a YAML spec", file_loc,
                                   found="NUL bytes", expected="UTF-8 text"))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError(Diagnostic(f"{name} is not valid UTF-8", Loc(name, line, col),
                                   found=f"byte 0x{data[exc.start]:02x}", expected="UTF-8 text",
                                   hint="save the file as UTF-8")) from None
    return parse_yaml_text(text, name)


def _printable_name(name: str) -> str:
    """A file name as a diagnostic shows it: escaped, and at most 200 characters."""
    shown = name.encode("unicode_escape").decode("ascii")
    return shown if len(shown) <= 200 else shown[:100] + "..." + shown[-97:]


def parse_yaml_text(text: str, name: str) -> Y:
    """Compose YAML text (already decoded) into a located tree."""
    register_source(name, text)
    if text.startswith("\ufeff"):
        text = text[1:]
    fast = _compose_fast(text, name)
    if fast is not None:
        return fast
    try:
        loader = _GuardedLoader(text, name)  # the reader checks every character here
    except yaml.reader.ReaderError as exc:
        raise SpecError(_reader_diagnostic(exc, text, name)) from None
    try:
        node = loader.get_single_node()
    except SpecError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Loc(name, mark.line + 1, mark.column + 1) if mark else Loc(name, 1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError(Diagnostic(f"invalid YAML: {problem}", loc,
                                   hint="check indentation, colons and brackets near here")) from None
    except yaml.YAMLError as exc:
        raise SpecError(Diagnostic(f"invalid YAML: {exc}", Loc(name, 1, 1))) from None
    finally:
        loader.dispose()
    if node is None:
        raise SpecError(Diagnostic(f"{name} is empty", Loc(name, 1, 1),
                                   expected="a mapping with `name`, `input` and `network`",
                                   hint="see `archdsl --help` and the language reference in README.md"))
    return _convert(node, name, loader)


def _reader_diagnostic(exc: yaml.reader.ReaderError, text: str, name: str) -> Diagnostic:
    """A control character YAML refuses (PyYAML reports its offset in the text)."""
    before = text[: exc.position]
    loc = Loc(name, before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1)
    return Diagnostic(f"{name} contains a character YAML does not allow", loc,
                      found=f"U+{exc.character:04X} (a control character)",
                      expected="printable text", hint="remove the character")


def _tag_text(tag: str) -> str:
    """``tag:yaml.org,2002:python/object`` -> ``!!python/object``, as it was written."""
    prefix = "tag:yaml.org,2002:"
    return "!!" + tag[len(prefix):] if tag.startswith(prefix) else tag


def _convert(node: Node, name: str, loader: yaml.SafeLoader) -> Y:
    loc = Loc(name, node.start_mark.line + 1, node.start_mark.column + 1)
    if node.tag == "tag:yaml.org,2002:merge":
        raise SpecError(Diagnostic("YAML merge keys (`<<`) are not allowed in a spec", loc,
                                   expected="plain keys", found="`<<`",
                                   hint="write the keys out, or define a block and use it by name"))
    if node.tag not in _STANDARD_TAGS:
        raise SpecError(Diagnostic(
            "YAML tags are not allowed in a spec", loc,
            expected="plain values", found=f"tag `{_tag_text(node.tag)}`",
            hint="a spec is data: remove the tag",
        ))
    if isinstance(node, MappingNode):
        values: dict[str, Y] = {}
        key_locs: dict[str, Loc] = {}
        for key_node, value_node in node.value:
            key = _convert(key_node, name, loader)
            if not isinstance(key.value, str):
                if isinstance(key.value, (int, float, bool)) and not isinstance(key.value, bool):
                    key = Y(str(key.value), key.loc)
                else:
                    raise SpecError(Diagnostic("a mapping key must be a name", key.loc,
                                               expected="a name", found=describe(key.value)))
            if key.value in values:
                raise SpecError(Diagnostic(
                    f"duplicate key `{key.value}`", key.loc,
                    notes=((f"`{key.value}` was first given here", key_locs[key.value]),),
                    hint="each key may appear once in a mapping; rename or merge them",
                ))
            values[key.value] = _convert(value_node, name, loader)
            key_locs[key.value] = key.loc
        return Y(values, loc, key_locs)
    if isinstance(node, SequenceNode):
        return Y([_convert(item, name, loader) for item in node.value], loc)
    assert isinstance(node, ScalarNode)
    try:
        value = loader.construct_object(node, deep=True)
    except (ValueError, KeyError, AttributeError, TypeError, OverflowError):
        # PyYAML's scalar constructors fail on a 5000-digit int, `2024-13-45`, `!!bool maybe`.
        shown = node.value if len(node.value) <= 40 else node.value[:40] + "..."
        raise SpecError(Diagnostic(f"cannot read the {_tag_text(node.tag)[2:]} value `{shown}`", loc,
                                   found=f"{len(node.value)} characters" if len(node.value) > 40
                                   else f"`{shown}`",
                                   expected="a number of at most 4300 digits, a valid date, "
                                            "or a quoted string")) from None
    length = max(1, len(node.value)) if node.start_mark.line == node.end_mark.line else 1
    return Y(value, Loc(name, loc.line, loc.col, length), None, node.style in ("'", '"'))
