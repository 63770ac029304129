"""One namespace for every identifier that reaches generated code (like torch.fx's ``_Namespace``).

Spec names are untrusted text. Attribute names must stay exactly the spec's names (they are the
``state_dict`` keys), so they are checked, never changed; every other identifier (classes, ctor
parameters, locals, forward variables, config attributes) is created here: sanitised to a Python
identifier, kept off keywords, builtins and the names the generated module itself uses, and made
unique with a numeric suffix.
"""

from __future__ import annotations

import builtins
import keyword
import re
from collections.abc import Iterable

from ..errors import Diagnostic, Loc, SpecError

__all__ = [
    "CONTAINER_ATTRIBUTES",
    "GENERATED_NAMES",
    "MODULE_ATTRIBUTES",
    "PYTHON_NAMES",
    "CodegenError",
    "Namespace",
    "NotGeneric",
    "camel_case",
    "check_attribute",
    "member_access",
]

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

# Attributes and methods of torch.nn.Module (torch 2.x). A submodule with one of these names would
# shadow the method (``self.forward``) or break the module (``self.training``), and cannot be
# renamed without changing the state_dict, so such names are refused.
MODULE_ATTRIBUTES = frozenset({
    "T_destination", "_apply", "_backward_hooks", "_backward_pre_hooks", "_buffers", "_call_impl",
    "_compiled_call_impl", "_forward_hooks", "_forward_hooks_always_called",
    "_forward_hooks_with_kwargs", "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs",
    "_get_backward_hooks", "_get_backward_pre_hooks", "_get_name", "_is_full_backward_hook",
    "_load_from_state_dict", "_load_state_dict_post_hooks", "_load_state_dict_pre_hooks",
    "_maybe_warn_non_full_backward_hook", "_modules", "_named_members",
    "_non_persistent_buffers_set", "_parameters", "_register_load_state_dict_pre_hook",
    "_register_state_dict_hook", "_replicate_for_data_parallel", "_save_to_state_dict",
    "_slow_forward", "_state_dict_hooks", "_state_dict_pre_hooks", "_version",
    "_wrapped_call_impl", "add_module", "apply", "bfloat16", "buffers", "call_super_init",
    "children", "compile", "cpu", "cuda", "double", "dump_patches", "eval", "extra_repr", "float",
    "forward", "get_buffer", "get_extra_state", "get_parameter", "get_submodule", "half", "ipu",
    "load_state_dict", "modules", "mtia", "named_buffers", "named_children", "named_modules",
    "named_parameters", "parameters", "register_backward_hook", "register_buffer",
    "register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook",
    "register_full_backward_pre_hook", "register_load_state_dict_post_hook",
    "register_load_state_dict_pre_hook", "register_module", "register_parameter",
    "register_state_dict_post_hook", "register_state_dict_pre_hook", "requires_grad_",
    "set_extra_state", "set_submodule", "share_memory", "state_dict", "to", "to_empty", "train",
    "training", "type", "xpu", "zero_grad",
})

# Methods nn.Sequential and nn.ModuleDict (the DenseBlock) add to nn.Module (torch 2.x): a member
# named like one cannot be registered (``add_module`` refuses an existing attribute).
CONTAINER_ATTRIBUTES = frozenset({
    "append", "extend", "insert", "pop",  # nn.Sequential
    "clear", "items", "keys", "update", "values",  # nn.ModuleDict
})

_ILLEGAL = re.compile(r"[^0-9A-Za-z_]")
_ATTRIBUTE = re.compile(r"^(?:(?!__)[A-Za-z_][A-Za-z0-9_]*|[0-9]+)\Z")
# A member of a container registered by its string key (``nn.Sequential(OrderedDict(...))``, like
# ``add_module``): a `-` may follow the first character (RegNet's ``block1-0``).
_MEMBER = re.compile(r"^(?:(?!__)[A-Za-z_][A-Za-z0-9_\-]*|[0-9]+)\Z")


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


def camel_case(name: str, fallback: str = "Net") -> str:
    """A class name from a spec name: ``conv_bn_relu6`` -> ``ConvBnRelu6``, ``resnext50_32x4d`` ->
    ``Resnext50_32x4d`` (an underscore stays where two parts would run digits together)."""
    parts = [p for p in re.split(r"[^0-9A-Za-z]+", name) if p]
    out = ""
    for part in parts:
        if out and out[-1].isdigit() and part[0].isdigit():
            out += "_"
        out += part[0].upper() + part[1:]
    if not out:
        return fallback
    if out[0].isdigit():
        out = fallback + out
    return out


def check_attribute(name: str, loc: Loc | None, *, numbered_ok: bool,
                    container: str | None = None) -> str:
    """Check that a spec name can be a submodule attribute as it is (it is the state_dict key);
    ``container`` names the nn.Sequential or nn.ModuleDict that holds it, if any: its members are
    registered by their string keys, so a `-` may be in the name."""
    if container and _MEMBER.match(name):
        pass
    elif not _ATTRIBUTE.match(name) or keyword.iskeyword(name):
        raise CodegenError(Diagnostic(f"`{name}` cannot be a PyTorch attribute name", loc,
                                      expected="a Python identifier or a number",
                                      hint=_attribute_hint(name)))
    if name.isdigit() and not numbered_ok:
        raise CodegenError(Diagnostic(
            f"the layer name `{name}` is a number, which only an nn.Sequential can hold", loc,
            hint="numbered names need a sequence of single-input layers (no `from:`, "
                 "`output:`, parallel or residual at that level); give the layer a name"))
    if name in MODULE_ATTRIBUTES:
        raise CodegenError(Diagnostic(
            f"the layer name `{name}` would hide nn.Module.{name} in the generated code", loc,
            hint=f"rename the layer, e.g. `{name}_`"))
    if container and name in CONTAINER_ATTRIBUTES:
        raise CodegenError(Diagnostic(
            f"the layer name `{name}` is a method of the {container} that holds it in the "
            "generated code", loc, expected="a name that is not one of "
            + ", ".join(f"`{n}`" for n in sorted(CONTAINER_ATTRIBUTES)),
            hint=f"rename the layer, e.g. `{name}_`"))
    return name


def member_access(name: str, loc: Loc | None) -> tuple[str | None, str]:
    """How a class reaches its layer ``name``: ``(None, "conv1")``, an attribute; or, for a dotted
    name, ``("paths", 'paths["0"]')``: a member of the nn.ModuleDict attribute ``paths`` (the
    state_dict keys of torchvision's nn.ModuleList children, ``paths.0.weight``)."""
    if "." not in name:
        return None, check_attribute(name, loc, numbered_ok=False)
    container, member = name.split(".", 1)
    if "." in member:
        raise CodegenError(Diagnostic(f"`{name}`: a container inside a container cannot be "
                                      "generated yet", loc, expected="one `.` (`paths.0`)",
                                      hint="name the layer `paths.0`, not `paths.0.conv`"))
    check_attribute(container, loc, numbered_ok=False)
    check_attribute(member, loc, numbered_ok=True, container="nn.ModuleDict")
    return container, f'{container}["{member}"]'  # (member: letters, digits, `_` and `-`)


def _attribute_hint(name: str) -> str | None:
    """What the code generator can do with a layer name that is not an attribute."""
    if "." in name:
        return ("a dotted name (`paths.0`) can name a layer of a class (the member of an "
                "nn.ModuleDict), not a member of an nn.Sequential")
    if "-" in name:
        return ("a name with `-` can be a member of a named sequence or repeat (an nn.Sequential "
                "registers it by its key, like RegNet's `block1-0`), not an attribute of a class")
    return None
