"""User-facing errors: locations, diagnostics and the one exception class the CLI catches.

Every mistake in a spec becomes a :class:`Diagnostic` with a :class:`Loc` (file:line:column), what
was expected, what was found, a hint, and the chain of block uses that led there. Independent
diagnostics are collected and raised together as one :class:`SpecError`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

__all__ = [
    "Loc",
    "Diagnostic",
    "ArchError",
    "SpecError",
    "UsageError",
    "OutputError",
    "did_you_mean",
    "register_source",
]

_SOURCES: dict[str, list[str]] = {}


def register_source(filename: str, text: str) -> None:
    """Remember a file's text so diagnostics can quote the offending line."""
    _SOURCES[filename] = text.splitlines()


@dataclass(frozen=True)
class Loc:
    """A position in a spec file; line and column are 1-based. ``length`` underlines a span."""

    file: str
    line: int
    col: int
    length: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def shifted(self, offset: int, length: int = 1) -> "Loc":
        """The location ``offset`` characters further on the same line (inside an expression)."""
        return Loc(self.file, self.line, self.col + offset, max(1, length))

    def source_line(self) -> str | None:
        lines = _SOURCES.get(self.file)
        if lines is None or not (1 <= self.line <= len(lines)):
            return None
        return lines[self.line - 1]


@dataclass(frozen=True)
class Diagnostic:
    """One problem, with everything a person needs to fix it."""

    message: str
    loc: Loc | None = None
    expected: str | None = None
    found: str | None = None
    hint: str | None = None
    chain: tuple[str, ...] = ()
    notes: tuple[tuple[str, Loc | None], ...] = ()
    severity: str = "error"
    code: str = ""

    def with_chain(self, chain: Sequence[str]) -> "Diagnostic":
        """The same diagnostic with the chain of block uses that led to it (if it has none)."""
        if self.chain or not chain:
            return self
        return replace(self, chain=tuple(chain))

    def with_hint(self, hint: str) -> "Diagnostic":
        return replace(self, hint=f"{self.hint}; {hint}" if self.hint else hint)

    def render(self) -> str:
        where = f"{self.loc}: " if self.loc else ""
        out = [f"{where}{self.severity}: {_printable(self.message)}"]
        out.extend(_quote(self.loc))
        if self.expected is not None:
            out.append(f"  expected: {_printable(self.expected)}")
        if self.found is not None:
            out.append(f"  found: {_printable(self.found)}")
        for text, loc in self.notes:
            out.append(f"  note: {_printable(text)}" + (f" ({loc})" if loc else ""))
            out.extend("  " + line for line in _quote(loc))
        if self.hint:
            out.append(f"  hint: {_printable(self.hint)}")
        for link in self.chain:
            out.append(f"  in {_printable(link)}")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.render()


def _printable(text: str) -> str:
    """Spec text in a message, with control characters escaped (a name may hold a newline or a
    terminal escape sequence; neither may reach the terminal raw)."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                   for ch in text)


def _quote(loc: Loc | None) -> list[str]:
    if loc is None:
        return []
    line = loc.source_line()
    if line is None:
        return []
    gutter = f"{loc.line:>5} | "
    line, col, length = _window(line.rstrip(), loc.col, max(1, loc.length))
    caret = " " * (len(gutter) - 2) + "| " + " " * (col - 1) + "^" * length
    return [gutter + line, caret]


_QUOTE_WIDTH = 160


def _window(line: str, col: int, length: int) -> tuple[str, int, int]:
    """At most ~160 characters of a long line around the column (a hostile spec may be one
    megabyte on one line); returns the shown text and the column and caret length within it."""
    line = "".join(ch if ch.isprintable() or ch == "\t" else "?" for ch in line[: col + 2 * _QUOTE_WIDTH])
    length = min(length, _QUOTE_WIDTH // 2)
    if len(line) <= _QUOTE_WIDTH:
        return line, col, length
    start = max(0, col - 1 - _QUOTE_WIDTH // 2)
    shown = line[start:start + _QUOTE_WIDTH]
    prefix = "..." if start > 0 else ""
    suffix = "..." if start + _QUOTE_WIDTH < len(line) else ""
    return prefix + shown + suffix, col - start + len(prefix), length


class ArchError(Exception):
    """Base of every error archdsl reports to a user (the CLI catches only this)."""

    exit_code = 1

    def __init__(self, diagnostics: Diagnostic | Iterable[Diagnostic]):
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics: list[Diagnostic] = list(diagnostics)
        super().__init__(self.render())

    def render(self) -> str:
        errors = [d for d in self.diagnostics if d.severity == "error"]
        body = "\n\n".join(d.render() for d in self.diagnostics)
        if len(errors) > 1:
            body += f"\n\n{len(errors)} errors"
        return body

    @property
    def first(self) -> Diagnostic:
        return self.diagnostics[0]


class SpecError(ArchError):
    """The spec is wrong: syntax, names, types, shapes, graph or resource limits."""


class UsageError(ArchError):
    """The command line is wrong (exit code 2, like click's usage errors)."""

    exit_code = 2


class OutputError(ArchError):
    """An output could not be written (a full disk, no permission): exit code 1."""


@dataclass
class Collector:
    """Gathers independent diagnostics so one run reports all of them."""

    diagnostics: list[Diagnostic] = field(default_factory=list)

    def add(self, diag: Diagnostic) -> None:
        self.diagnostics.append(diag)

    def extend(self, error: ArchError) -> None:
        self.diagnostics.extend(error.diagnostics)

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.diagnostics)

    def raise_if_errors(self) -> None:
        if self.has_errors:
            raise SpecError(self.diagnostics)

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A 'did you mean `x`?' hint for an unknown name, or None when nothing is close."""
    matches = difflib.get_close_matches(str(name), sorted(set(candidates)), n=3, cutoff=0.6)
    if not matches:
        return None
    return "did you mean " + " or ".join(f"`{m}`" for m in matches) + "?"
