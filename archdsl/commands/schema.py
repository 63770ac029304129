"""``archdsl schema``: the JSON Schema of the spec language."""

from __future__ import annotations

import json

import click

from ..cli import CONTEXT

__all__ = ["schema"]


@click.command(context_settings=CONTEXT)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE instead of stdout.")
def schema(output: str | None) -> None:
    """Print the JSON Schema of the spec language (for editors' YAML language servers).

    \b
    VS Code (redhat.vscode-yaml), settings.json:
      "yaml.schemas": {"./archdsl-schema.json": "specs/*.yaml"}
    """
    from ..schema import SPEC_SCHEMA
    from ..util import write_atomic

    text = json.dumps(SPEC_SCHEMA, indent=2) + "\n"
    if output:
        write_atomic(output, text)
    else:
        click.echo(text, nl=False)
