"""``archdsl ops``: the table of primitive ops."""

from __future__ import annotations

import click

from ..cli import CONTEXT

__all__ = ["ops_table"]


@click.command("ops", context_settings=CONTEXT)
def ops_table() -> None:
    """List every primitive op with its attributes and defaults."""
    from ..ops import REGISTRY, REQUIRED

    for name in sorted(REGISTRY):
        op = REGISTRY[name]
        attrs = ", ".join(a.name if a.default is REQUIRED else f"{a.name}={_shown(a.default)}"
                          for a in op.attrs)
        click.echo(f"{name:<18} {op.category:<10} {attrs}")


def _shown(default: object) -> str:
    """A default as a spec writes it: ``[]`` for an empty list, not Python's ``()``."""
    return repr(list(default)) if isinstance(default, tuple) else repr(default)
