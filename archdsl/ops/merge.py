"""Merges of two or more inputs: ``add``, ``mul``, ``concat``.

They lower to expressions, not modules: ``{x0} + {x1}``, ``{x0} * {x1}``, ``torch.cat([{xs}], 1)``.
fvcore counts none of them (0 FLOPs).
"""

from __future__ import annotations

from .base import Attrs, Lowering, Op, OpError, Saved, Shape, Style, register
from .common import fmt_shape, numel, violated

__all__ = ["Add", "Concat", "Merge", "Mul"]


class Merge(Op):
    """Two or more inputs, one output."""

    category = "merge"
    style = Style("merge", "#ffffff", "#444444", merge="symbol")
    fresh_output = True
    min_inputs = 2
    max_inputs = None

    def require_inputs(self, ins: list[Shape]) -> None:
        """At least two inputs, all image-shaped or all flat."""
        if len(ins) < 2:
            raise OpError(f"{self.name} needs two or more inputs", expected="2 or more inputs",
                          found=f"{len(ins)} input" + ("" if len(ins) == 1 else "s"))
        for i, shape in enumerate(ins[1:], start=1):
            if len(shape) != len(ins[0]):
                raise self.mismatch(ins, i, "inputs of one rank (all C x H x W or all flat)")

    def mismatch(self, ins: list[Shape], index: int, what: str, hint: str | None = None,
                 reference: int = 0) -> OpError:
        """An OpError for input ``index`` disagreeing with input ``reference``."""
        ref = fmt_shape(ins[reference])
        return OpError(f"{self.name} needs {what}; input {index} differs from input {reference}",
                       expected=f"{what} (input {reference} is {ref})",
                       found=f"input {reference}: {ref}, input {index}: {fmt_shape(ins[index])}",
                       hint=hint, input_index=index)

    def infix(self, ins: list[Shape], operator: str) -> Lowering:
        """``{x0} + {x1} + ...`` for every input."""
        return Lowering(None, forward=f" {operator} ".join(f"{{x{i}}}" for i in range(len(ins))))


@register
class Add(Merge):
    """Element-wise sum of inputs of one shape (residual connections)."""

    name = "add"
    pytorch = "a + b"
    doc = "element-wise sum (two or more inputs of one shape)"

    def shape(self, a: Attrs, ins: list[Shape]) -> Shape:
        self.require_inputs(ins)
        for i, shape in enumerate(ins[1:], start=1):
            if violated(lambda shape=shape: shape != ins[0]):
                raise self.mismatch(ins, i, "inputs of one shape",
                                    hint="use a projection shortcut (1x1 conv with stride) "
                                         "to match")
        return ins[0]

    def saved_for_backward(self, a: Attrs, ins: list[Shape], out: Shape) -> Saved:
        """Nothing: the gradient passes to every input unchanged."""
        return Saved(overwritable=True)

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        return self.infix(ins, "+")

    def label(self, a: Attrs, ins: list[Shape], out: Shape) -> str:
        return "+"


@register
class Mul(Merge):
    """Element-wise product; a C x 1 x 1 input broadcasts over C x H x W (squeeze-and-excitation)."""

    name = "mul"
    pytorch = "a * b"
    doc = "element-wise product (one shape; C x 1 x 1 broadcasts)"

    def shape(self, a: Attrs, ins: list[Shape]) -> Shape:
        self.require_inputs(ins)
        full = max(ins, key=numel)
        reference = ins.index(full)
        for i, shape in enumerate(ins):
            if violated(lambda shape=shape: shape != full and not _is_gate_for(shape, full)):
                raise self.mismatch(ins, i, "inputs of one shape (or a C x 1 x 1 gate)",
                                    hint="mul broadcasts only a C x 1 x 1 gate with the same "
                                         "channels over C x H x W", reference=reference)
        return full

    def saved_for_backward(self, a: Attrs, ins: list[Shape], out: Shape) -> Saved:
        """Every input: each one's gradient is the product of the others."""
        return Saved(inputs=tuple(range(len(ins))), overwritable=True)

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        return self.infix(ins, "*")

    def label(self, a: Attrs, ins: list[Shape], out: Shape) -> str:
        return "x"


@register
class Concat(Merge):
    """Channel concatenation of inputs with the same H x W (or of flat feature vectors)."""

    name = "concat"
    style = Style("merge", "#ffffff", "#444444", merge="channels")
    node_name = "cat"
    pytorch = "torch.cat(xs, 1)"
    doc = "concatenation along channels (same H x W), or of flat features"

    def shape(self, a: Attrs, ins: list[Shape]) -> Shape:
        self.require_inputs(ins)
        for i, shape in enumerate(ins[1:], start=1):
            if violated(lambda shape=shape: shape[1:] != ins[0][1:]):
                raise self.mismatch(ins, i, "inputs with the same H x W",
                                    hint="downsample the larger input (stride or pooling) so "
                                         "the spatial sizes agree")
        return (sum(shape[0] for shape in ins),) + ins[0][1:]

    def saved_for_backward(self, a: Attrs, ins: list[Shape], out: Shape) -> Saved:
        """Nothing: the gradient is sliced back along the channels."""
        return Saved(overwritable=True)

    def lower(self, a: Attrs, ins: list[Shape], out: Shape) -> Lowering:
        return Lowering(None, forward="torch.cat([{xs}], 1)")

    def label(self, a: Attrs, ins: list[Shape], out: Shape) -> str:
        return "concat"


def _is_gate_for(shape: Shape, full: Shape) -> bool:
    """``shape`` is C x 1 x 1 with the channels of ``full`` (C x H x W)."""
    return len(full) == 3 and shape == (full[0], 1, 1)
