"""One namespace for every identifier that reaches generated code (like torch.fx's ``_Namespace``).

Spec names are untrusted text. Attribute names must stay exactly the spec's names (they are the
``state_dict`` keys), so they are checked, never changed (``codegen.names``); every other
identifier (classes, ctor parameters, locals, forward variables, config attributes; a template's
locals) is created here: sanitised to a Python identifier, kept off keywords, builtins and the
names the generated module itself uses, and made unique with a numeric suffix.
"""

from __future__ import annotations

import builtins
import keyword
import re
from collections.abc import Iterable

from ..errors import SpecError

__all__ = ["GENERATED_NAMES", "PYTHON_NAMES", "CodegenError", "Namespace", "NotGeneric"]

# Names the generated module defines or imports; nothing from a spec may shadow them.
GENERATED_NAMES = frozenset({
    "torch", "torchvision", "nn", "F", "math", "Tensor", "OrderedDict", "NamedTuple", "make_divisible", "frozen",
    "self", "super",
})
# Variable names ruff's E741 refuses.
_AMBIGUOUS = frozenset({"l", "O", "I"})
# Keywords, builtins and the names ruff's E741 refuses: never a local or parameter name.
PYTHON_NAMES = (frozenset(keyword.kwlist) | frozenset(keyword.softkwlist)
                | frozenset(dir(builtins)) | _AMBIGUOUS)

_ILLEGAL = re.compile(r"[^0-9A-Za-z_]")


class CodegenError(SpecError):
    """The spec is valid but uses something the PyTorch code generator cannot express."""


class NotGeneric(CodegenError):
    """A block's class cannot be written once for all its uses (a size or a repeat count known
    only per use); the planner then writes one class per use instead."""


def _sanitize(candidate: str, fallback: str) -> str:
    """Any text -> a Python identifier: illegal characters become ``_``; no leading digit or ``__``."""
    name = _ILLEGAL.sub("_", candidate)
    name = name.lstrip("_") if name.startswith("__") else name
    if not name:
        return fallback
    if name[0].isdigit():
        name = f"{fallback}_{name}"
    return name


class Namespace:
    """Creates unique, safe identifiers within one scope (a module, a class, a function).

    ``create("max")`` gives ``max_`` (a builtin), ``create("x")`` twice gives ``x`` then ``x_1``.
    A name handed out is remembered together with the object it names, so asking again for the
    same object returns the same name.
    """

    def __init__(self, reserved: Iterable[str] = (), *, parent: Namespace | None = None):
        self._reserved = set(reserved) | PYTHON_NAMES | GENERATED_NAMES
        self._used: set[str] = set()
        self._by_object: dict[object, str] = {}
        self._parent = parent

    def taken(self, name: str) -> bool:
        if name in self._used or name in self._reserved:
            return True
        return self._parent is not None and self._parent.taken(name)

    def create(self, candidate: str, obj: object = None, *, fallback: str = "v") -> str:
        """A fresh safe identifier close to ``candidate`` (the same one again for the same ``obj``)."""
        if obj is not None and obj in self._by_object:
            return self._by_object[obj]
        base = _sanitize(candidate, fallback)
        if base in self._reserved or (self._parent is not None and self._parent.taken(base)):
            base += "_"
        name, k = base, 0
        while self.taken(name):
            k += 1
            name = f"{base}_{k}" if not base.endswith("_") else f"{base}{k}"
        self._used.add(name)
        if obj is not None:
            self._by_object[obj] = name
        return name

    def names(self) -> list[str]:
        """Every name handed out here, in order."""
        return sorted(self._used)

    def reserve(self, name: str) -> None:
        """Mark ``name`` as used (an attribute name that must stay as it is)."""
        self._used.add(name)

    def free(self, name: str) -> bool:
        """True when ``name`` can be created as it is."""
        return not self.taken(name) and _sanitize(name, "v") == name
