"""The op interface: everything about one primitive op lives in one class.

An op declares its attributes (:class:`Attr`), its shape rule, its parameter/buffer/MAC counts,
its fvcore FLOP count, its receptive-field geometry, its PyTorch lowering and its drawing label.
Shape inference, the reports, the code generator and the diagrams all ask the op; none of them
switch on op names. Adding an op is adding one class to a module under ``archdsl/ops`` and
decorating it with :func:`register`.

Shapes are tuples of ints without the batch dimension: ``(C, H, W)`` for images and ``(F,)`` for
flat vectors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import did_you_mean

__all__ = [
    "MAX_INT_ATTR",
    "REGISTRY",
    "REQUIRED",
    "RF",
    "Attr",
    "Attrs",
    "Extra",
    "Lowering",
    "Op",
    "OpError",
    "Regularizer",
    "Saved",
    "Shape",
    "Style",
    "describe_value",
    "get_op",
    "pair",
    "register",
]

Shape = tuple[int, ...]
# No integer attribute (a size, kernel, stride, padding, group count) may exceed what PyTorch's
# int32-based kernels take; a larger one is refused where it is written, not deep in torch.
MAX_INT_ATTR = 2**31 - 1


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


class OpError(Exception):
    """Raised by an op's rules; the caller turns it into a located diagnostic.

    ``attr`` names the attribute at fault (its source location is used when known) and
    ``input_index`` the input at fault (its producer is named).
    """

    def __init__(self, message: str, *, expected: str | None = None, found: str | None = None,
                 hint: str | None = None, attr: str | None = None, input_index: int | None = None):
        super().__init__(message)
        self.message = message
        self.expected = expected
        self.found = found
        self.hint = hint
        self.attr = attr
        self.input_index = input_index


ATTR_KINDS = ("int", "float", "bool", "pair", "padding", "size", "choice", "optional_pair",
              "optional_float", "int_list")


@dataclass(frozen=True)
class Attr:
    """One attribute of an op.

    kind: ``int`` (>= ``minimum``), ``float``, ``bool``, ``pair`` (int or [h, w], each >= minimum),
    ``padding`` (pair >= 0, or one of ``choices``), ``size`` (pair >= 1), ``choice`` (one of
    ``choices``), ``optional_pair`` (a pair, or None meaning "same as another"),
    ``optional_float`` (a number, or None meaning "not given"), ``int_list`` (a list of integers,
    each within the bounds; ``()`` as the default means "not given").

    ``minimum`` defaults by kind: 1 for ``int``, ``pair``, ``size`` and ``optional_pair`` (counts
    and sizes), 0 for ``padding``, unbounded for ``float``, ``optional_float`` and ``int_list``.
    ``maximum`` is unbounded by default. ``exclusive_minimum`` makes the lower bound strict (a
    scale factor > 0).
    """

    name: str
    kind: str
    default: Any = REQUIRED
    doc: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    exclusive_minimum: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ATTR_KINDS:
            raise ValueError(f"attribute {self.name!r} has unknown kind {self.kind!r}")

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def lower_bound(self) -> float | None:
        """The effective minimum (the kind's default when ``minimum`` is None)."""
        if self.minimum is not None:
            return self.minimum
        if self.kind == "padding":
            return 0
        if self.kind in ("int", "pair", "size", "optional_pair"):
            return 1
        return None

    def expected(self) -> str:
        """What a valid value looks like, in words (for diagnostics and the op table)."""
        bound = _bounds(self.lower_bound, self.maximum, self.exclusive_minimum)
        if self.kind == "int":
            return "an integer" + bound
        if self.kind == "float":
            return "a number" + bound
        if self.kind == "optional_float":
            return "a number" + bound + ", or null"
        if self.kind == "int_list":
            return "a list of integers" + (f" (each{bound})" if bound else "")
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return "one of: " + ", ".join(self.choices)
        single = f"an integer{bound} or a list [h, w] of them"
        if self.kind == "padding" and self.choices:
            return single + ", or one of: " + ", ".join(self.choices)
        return single

    def coerce(self, value: Any) -> Any:
        """Check ``value`` against this attribute and return it normalised.

        Pairs become ``(h, w)`` tuples, floats accept ints, bools are never ints. Raises
        :class:`OpError` naming the attribute, with what was expected and what was found.
        """
        if self.kind in ("optional_pair", "optional_float") and value is None:
            return None
        if self.kind == "int":
            return self._number(value, integral=True)
        if self.kind in ("float", "optional_float"):
            return float(self._number(value, integral=False))
        if self.kind == "int_list":
            return self._int_list(value)
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise self._error(value)
            return value
        if self.kind == "choice":
            if not isinstance(value, str) or value not in self.choices:
                raise self._error(value, hint=_choice_hint(value, self.choices))
            return value
        if self.kind == "padding" and isinstance(value, str):
            if value not in self.choices:
                raise self._error(value, hint=_choice_hint(value, self.choices))
            return value
        return self._pair(value)

    def _number(self, value: Any, *, integral: bool) -> int | float:
        allowed = (int,) if integral else (int, float)
        if isinstance(value, bool) or not isinstance(value, allowed):
            hint = None
            if integral and isinstance(value, float) and value.is_integer():
                hint = f"write {int(value)}, or wrap an expression in int(...)"
            raise self._error(value, hint=hint)
        if not integral and not math.isfinite(value):
            raise self._error(value)
        if not _in_bounds(value, self.lower_bound, self.maximum, self.exclusive_minimum):
            raise self._error(value)
        if integral:
            self._check_size(value)
        return value

    def _int_list(self, value: Any) -> tuple[int, ...]:
        if not isinstance(value, (list, tuple)):
            raise self._error(value, hint="write the integers as a list: [a, b, ...]")
        for item in value:
            if isinstance(item, bool) or not isinstance(item, int):
                raise self._error(value)
            if not _in_bounds(item, self.lower_bound, self.maximum):
                raise self._error(value)
            self._check_size(item)
        return tuple(value)

    def _check_size(self, value: int) -> None:
        if value > MAX_INT_ATTR:
            raise OpError(f"`{self.name}` is too large", attr=self.name,
                          expected=f"at most 2**31 - 1 = {MAX_INT_ATTR:,}",
                          found=describe_value(value))

    def _pair(self, value: Any) -> tuple[int, int]:
        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise self._error(value, hint="give one integer for both axes, or [h, w]")
            items = list(value)
        else:
            items = [value, value]
        for item in items:
            if isinstance(item, bool) or not isinstance(item, int):
                raise self._error(value)
            if not _in_bounds(item, self.lower_bound, self.maximum):
                raise self._error(value)
            self._check_size(item)
        return (items[0], items[1])

    def _error(self, value: Any, hint: str | None = None) -> OpError:
        expected = self.expected()
        return OpError(f"`{self.name}` must be {expected}", attr=self.name, expected=expected,
                       found=describe_value(value), hint=hint)


def _bounds(low: float | None, high: float | None, exclusive: bool = False) -> str:
    if low is not None and high is not None and not exclusive:
        return f" from {_num(low)} to {_num(high)}"
    if low is not None and high is not None:
        return f" > {_num(low)} and <= {_num(high)}"
    if low is not None:
        return f" {'>' if exclusive else '>='} {_num(low)}"
    if high is not None:
        return f" <= {_num(high)}"
    return ""


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _in_bounds(value: float, low: float | None, high: float | None, exclusive: bool = False) -> bool:
    above = low is None or (value > low if exclusive else value >= low)
    return above and (high is None or value <= high)


def _choice_hint(value: Any, choices: tuple[str, ...]) -> str | None:
    return did_you_mean(value, choices) if isinstance(value, str) else None


def describe_value(value: Any) -> str:
    """A value as a person wrote it, with its type when that is the problem: ``true (a boolean)``."""
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if value is None:
        return "nothing (null)"
    if isinstance(value, str):
        shown = repr(value) if len(value) <= 60 else repr(value[:60]) + "..."
        return f"{shown} (a string of {len(value):,} characters)" if len(value) > 60 \
            else f"{shown} (a string)"
    if isinstance(value, float):
        return f"{value!r} (a float)"
    if isinstance(value, (list, tuple)):
        items = ", ".join(_plain(v)[:60] for v in value[:8]) + (", ..." if len(value) > 8 else "")
        return f"[{items}] (a list of {len(value):,})"
    if isinstance(value, dict):
        return "a mapping"
    return repr(value)


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, str) else str(value)


class Attrs:
    """Resolved, validated attribute values of one node (read-only, attribute access)."""

    __slots__ = ("_values",)

    def __init__(self, values: dict[str, Any]):
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Attrs are read-only")

    def get(self, name: str, default: Any = None) -> Any:
        return self._values.get(name, default)

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Attrs) and self._values == other._values

    def __hash__(self) -> int:
        return hash(tuple(sorted((k, repr(v)) for k, v in self._values.items())))

    def __repr__(self) -> str:
        return "Attrs(" + ", ".join(f"{k}={v!r}" for k, v in self._values.items()) + ")"


@dataclass(frozen=True)
class RF:
    """Receptive-field geometry of one op along H and W: effective kernel, stride, padding.

    ``global_`` means the op sees its whole input (global/adaptive pooling, flatten, linear).
    """

    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    global_: bool = False


@dataclass(frozen=True)
class Lowering:
    """How an op becomes PyTorch code.

    ``module`` is the constructor (``"nn.Conv2d"``), or None for a functional op. ``args`` are
    positional constructor arguments; ``kwargs`` are ``(name, value, default)`` triples: the code
    generator omits a keyword whose value equals its default. ``forward`` is a template for the
    forward expression: ``{m}`` is the submodule (``self.conv1``), ``{x}`` the first input and
    ``{xs}`` all inputs joined by ``, ``; ``{x0}``, ``{x1}``... are single inputs.
    The names they use (``torch``, ``torchvision``) are imported by the generated module as its
    code uses them (``codegen.emit.import_lines``).
    ``inplace_ok``: the module takes ``inplace=`` (see ``Op.inplace_in_code``).
    ``parameter`` is, instead of a module, a bare learnable tensor that the module running the op
    holds under the layer's name (ConvNeXt's ``<block>.layer_scale``): ``(shape, fill)``, written
    ``nn.Parameter(torch.ones(*shape) * fill)``; ``{m}`` in ``forward`` is then that tensor.
    """

    module: str | None
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any, Any], ...] = ()
    forward: str = "{m}({x})"
    inplace_ok: bool = False
    parameter: tuple[tuple[Any, ...], Any] | None = None

    @property
    def has_attribute(self) -> bool:
        """The op is an attribute of the module that runs it: a submodule or a bare parameter."""
        return self.module is not None or self.parameter is not None


CHAIN_ROLES = ("anchor", "attached", "alone")
MERGE_DRAWINGS = ("symbol", "channels")


@dataclass(frozen=True)
class Style:
    """How diagrams draw an op. :mod:`archdsl.draw` reads only this (and :meth:`Op.label`,
    :meth:`Op.compact_label`); it never tests an op's name.

    ``legend`` names the colour in the diagram's legend; ``fill`` and ``border`` colour the box.
    ``chain``: ``"anchor"`` leads a chain folded into one box (conv, linear: ``3x3 conv 64 · BN ·
    ReLU``), ``"attached"`` joins the anchor's box (norms, activations, dropout), ``"alone"`` is
    always a box of its own. ``merge``: how a merge of several inputs is drawn: ``"symbol"`` a small
    circle holding the label (``+``), ``"channels"`` a pill listing the inputs' channels and their
    sum (``concat 64 + 32 = 96``; also the running concatenation of a dense block and the
    ``64 | 96→128 | 32 = 224`` summary of a parallel block); None for an op that is not a merge.
    ``token``: how the op reads in that summary: ``"channels"`` its output channels, ``"label"``
    its label when the branch has nothing else to show, other text as written (``"pool"``), ``""``
    nothing.
    """

    legend: str = "other"
    fill: str = "#ffffff"
    border: str = "#808080"
    chain: str = "alone"
    merge: str | None = None
    token: str = ""

    def __post_init__(self) -> None:
        if self.chain not in CHAIN_ROLES:
            raise ValueError(f"Style.chain must be one of {CHAIN_ROLES}, not {self.chain!r}")
        if self.merge is not None and self.merge not in MERGE_DRAWINGS:
            raise ValueError(f"Style.merge must be None or one of {MERGE_DRAWINGS}, not {self.merge!r}")


@dataclass(frozen=True)
class Extra:
    """A tensor an op's backward keeps that is none of its inputs or outputs.

    ``per_sample`` elements for every sample of the batch plus ``fixed`` elements once (batch
    norm's per-channel statistics); ``bytes`` per element, or None for the activations' dtype.
    """

    what: str
    per_sample: int = 0
    fixed: int = 0
    bytes: int | None = None

    def elements(self, batch: int) -> int:
        return self.per_sample * batch + self.fixed


@dataclass(frozen=True)
class Saved:
    """What autograd keeps for an op's backward in a training step (weights and buffers excluded).

    Measured with ``torch.autograd.graph.saved_tensors_hooks`` on CPU (tests/test_training.py):

    * ``inputs``: the positions of the inputs it keeps (a conv keeps its input);
    * ``output``: it keeps its output (ReLU, sigmoid, softmax);
    * ``extra``: new tensors it keeps besides (max-pool's int64 indices, dropout's mask, batch
      norm's saved mean and inverse std);
    * ``alias``: its output is its input, or a view of it (flatten, identity, a channel chunk):
      no new storage;
    * ``inplace``: the generated code may run it in place over its input (``nn.ReLU(inplace=True)``)
      when its producer is ``overwritable`` and has no other consumer; its output then shares the
      producer's storage;
    * ``overwritable``: its output is a new tensor its own backward does not need, so a following
      in-place op may overwrite it.

    Tensors are counted once per storage: what two ops keep of one storage (a ReLU's output kept
    by the ReLU and by the next conv) costs once.
    """

    inputs: tuple[int, ...] = ()
    output: bool = False
    extra: tuple[Extra, ...] = ()
    alias: bool = False
    inplace: bool = False
    overwritable: bool = False


class Op:
    """Base class of every primitive op. Subclasses set the class attributes and override rules."""

    name: ClassVar[str] = ""
    category: ClassVar[str] = "other"  # conv, linear, norm, act, pool, merge, reshape, regularize
    doc: ClassVar[str] = ""
    attrs: ClassVar[tuple[Attr, ...]] = ()
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int | None] = 1
    counts_in_depth: ClassVar[bool] = False  # conv and linear layers (the ResNet paper's depth)
    pytorch: ClassVar[str] = ""  # what the op lowers to, for the op table (``nn.Conv2d``)
    style: ClassVar[Style] = Style()  # how diagrams draw it (colour, legend, chains, merges)

    # --- rules for code generation and graph passes (read by codegen/ and passes.py) ----------
    # The automatic name of an unnamed merge node (``cat`` for ``concat``); default: the op's name.
    node_name: ClassVar[str] = ""
    # An unnamed use without attributes, `from:` or `output:` makes no node: its input passes
    # through (``identity``); with `from:` or `output:` it is a node, the value read or named.
    passthrough: ClassVar[bool] = False
    # The output is a new tensor its backward does not read: a ReLU after it may run in place.
    fresh_output: ClassVar[bool] = False
    # Generated code runs its module in place (``nn.ReLU(inplace=True)``, as torchvision does)
    # where its input is a fresh tensor nothing else reads; only where that backward is exact.
    inplace_in_code: ClassVar[bool] = False
    # The module form of a functional op, for a member of an nn.Sequential (``nn.Flatten()``).
    module_form: ClassVar[str | None] = None
    # In eval mode a per-channel affine map that the op before it can absorb (batch norm).
    foldable_norm: ClassVar[bool] = False
    # Can absorb a following ``foldable_norm`` op into its weights (see :meth:`absorb_norm`).
    absorbs_norm: ClassVar[bool] = False

    # --- shapes ---------------------------------------------------------------------------
    def shape(self, a: Attrs, ins: list[Shape]) -> Shape:
        """The output shape; raises OpError on a bad input."""
        return ins[0]

    def finalize(self, a: dict[str, Any], ins: list[Shape]) -> dict[str, Any]:
        """Fill attributes whose default depends on others (pool stride = kernel). Pure.

        Called on the result of :meth:`resolve`; must be idempotent.
        """
        return a

    # --- attributes -----------------------------------------------------------------------
    def resolve(self, raw: dict[str, Any] | None) -> dict[str, Any]:
        """Validate the attributes as written and return them complete, in declaration order.

        Rejects unknown names (with a did-you-mean hint), requires required ones, fills
        defaults, coerces every value (:meth:`Attr.coerce`) and runs :meth:`check`. Input-dependent
        defaults are left to :meth:`finalize`.
        """
        raw = dict(raw or {})
        declared = {attr.name: attr for attr in self.attrs}
        for key in raw:
            if key not in declared:
                raise self.unknown_attr(key)
        values: dict[str, Any] = {}
        for attr in self.attrs:
            if attr.name in raw:
                values[attr.name] = attr.coerce(raw[attr.name])
            elif attr.required:
                raise OpError(f"`{self.name}` needs `{attr.name}`", attr=attr.name,
                              expected=f"`{attr.name}`: {attr.expected()}", found="no value",
                              hint=attr.doc or None)
            else:
                values[attr.name] = attr.coerce(attr.default)
        self.check(values)
        return values

    def check(self, a: dict[str, Any]) -> None:
        """Cross-attribute rules that do not depend on the input (raise OpError). Pure."""

    def bind(self, raw: dict[str, Any] | None, ins: list[Shape]) -> Attrs:
        """``Attrs(finalize(resolve(raw), ins))``: the attributes one node computes with."""
        return Attrs(self.finalize(self.resolve(raw), ins))

    def unknown_attr(self, key: Any) -> OpError:
        """The error for an attribute the op does not have (with a did-you-mean hint)."""
        names = [attr.name for attr in self.attrs]
        expected = "one of: " + ", ".join(names) if names else "no attributes"
        return OpError(f"`{self.name}` has no attribute `{key}`", attr=str(key), expected=expected,
                       found=f"`{key}`", hint=did_you_mean(str(key), names))

    def absorb_norm(self, a: dict[str, Any]) -> dict[str, Any]:
        """The attributes once a following batch norm is folded in (``absorbs_norm`` ops)."""
        raise NotImplementedError(f"op {self.name} cannot absorb a normalisation")

    # --- costs ----------------------------------------------------------------------------
    def params(self, a: Attrs, ins: list[Shape], out: Shape) -> int:
        return 0

    def buffers(self, a: Attrs, ins: list[Shape], out: Shape) -> int:
        return 0

    def macs(self, a: Attrs, ins: list[Shape], out: Shape) -> int:
        """Multiply-accumulates of conv and linear layers, bias excluded (torchvision's _ops)."""
        return 0

    def fvcore_flops(self, a: Attrs, ins: list[Shape], out: Shape) -> int:
        """What fvcore's FlopCountAnalysis counts for this op (its default handles)."""
        return 0

    def rf(self, a: Attrs, ins: list[Shape], out: Shape) -> RF:
        return RF()

    def saved_for_backward(self, a: Attrs, ins: list[Shape], out: Shape) -> Saved:
        """What autograd keeps of this op for the backward pass (:class:`Saved`).

        Every op states its own rule, measured against PyTorch: there is no default, because a
        wrong guess would silently skew every training-memory figure (a test walks the registry).
        """
        raise NotImplementedError(f"op {self.name} has no saved_for_backward rule: say what "
                                  f"autograd keeps for its backward (see archdsl.ops.Saved)")

    # --- lowering and drawing ---------------------------------------------------------------
    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        raise NotImplementedError(f"op {self.name} has no PyTorch lowering")

    def label(self, a: Attrs, ins: list[Shape], out: Shape) -> str:
        """A short human label for diagrams: ``3x3 conv 128, /2``."""
        return self.name

    def compact_label(self, a: Attrs, ins: list[Shape], out: Shape) -> str:
        """The label in a one-line summary of layers (``[BN-ReLU-1x1 128, BN-ReLU-3x3 32]``)."""
        return self.label(a, ins, out)

    def drawn_identity(self, a: Attrs) -> str:
        """The attributes that tell two instances apart in a diagram (equal ones fold together)."""
        return repr(a)


class Regularizer(Op):
    """An op that is an identity at inference (dropout, stochastic depth): its rate does not tell
    two instances apart in a diagram (EfficientNet's blocks differ only in a rate that grows along
    the network, and still fold)."""

    category = "regularize"

    def drawn_identity(self, a: Attrs) -> str:
        return ""


REGISTRY: dict[str, Op] = {}


def register(cls: type[Op]) -> type[Op]:
    """Class decorator: add an op to the registry (one instance per op)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.name in REGISTRY:
        raise ValueError(f"op {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls()
    return cls


def get_op(name: str) -> Op | None:
    return REGISTRY.get(name)


def pair(value: Any) -> tuple[int, int]:
    """``3`` -> ``(3, 3)``; ``[1, 7]`` -> ``(1, 7)``."""
    if isinstance(value, (tuple, list)):
        return (value[0], value[1])
    return (value, value)
