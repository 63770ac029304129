"""The names of the generated code's classes and attributes: class names from spec names
(``camel_case``), and the spec's layer names checked as PyTorch attributes (they are the
``state_dict`` keys, so never changed): not an ``nn.Module`` member they would hide, a dotted
name the member of an ``nn.ModuleDict`` (``member_access``).
"""

from __future__ import annotations

import keyword
import re

from ..blocks.namespace import CodegenError
from ..errors import Diagnostic, Loc

__all__ = ["CONTAINER_ATTRIBUTES", "MODULE_ATTRIBUTES", "camel_case", "check_attribute", "member_access"]

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

_ATTRIBUTE = re.compile(r"^(?:(?!__)[A-Za-z_][A-Za-z0-9_]*|[0-9]+)\Z")
# A member of a container registered by its string key (``nn.Sequential(OrderedDict(...))``, like
# ``add_module``): a `-` may follow the first character (RegNet's ``block1-0``).
_MEMBER = re.compile(r"^(?:(?!__)[A-Za-z_][A-Za-z0-9_\-]*|[0-9]+)\Z")


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
