"""The primitive ops: one class per op, registered in :data:`REGISTRY` by name.

Importing this package registers every op. Nothing here imports torch: lowering describes PyTorch
code as data (:class:`Lowering`), so analysis runs without it.
"""

from __future__ import annotations

from . import (  # noqa: F401  (register the ops)
    act,
    conv,
    linear,
    merge,
    norm,
    pool,
    resample,
    reshape,
    scale,
)
from .base import (
    REGISTRY,
    REQUIRED,
    RF,
    Attr,
    Attrs,
    Extra,
    Lowering,
    Op,
    OpError,
    Saved,
    Shape,
    Style,
    get_op,
    register,
)

__all__ = [
    "REGISTRY",
    "REQUIRED",
    "RF",
    "Attr",
    "Attrs",
    "Extra",
    "Lowering",
    "Op",
    "OpError",
    "Saved",
    "Shape",
    "Style",
    "get_op",
    "register",
]
