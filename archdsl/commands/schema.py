"""``archdsl schema``: the JSON Schema of the spec language."""

from __future__ import annotations

import json

import click

from ..cli import CONTEXT

__all__ = ["schema"]


@click.command(context_settings=CONTEXT)
@click.argument("specs", nargs=-1, type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write to FILE instead of stdout (a regular file is replaced atomically; a "
                   "device or FIFO is written through; - is stdout).")
@click.option("--allow-path", "allow_paths", multiple=True, type=click.Path(file_okay=False),
              help="Also allow `use:` to read block libraries under DIR (repeatable).")
def schema(specs: tuple[str, ...], output: str | None, allow_paths: tuple[str, ...]) -> None:
    """Print the JSON Schema of the spec language (for editors' YAML language servers).

    Every op's attributes are described (types, ranges, enums, defaults, required ones), so an
    editor completes them and flags a misspelt attribute. A block call looks like an op call:
    without SPECS the schema knows no blocks and lets an unknown key be one; given SPECS (specs or
    block libraries), it knows their blocks and parameters, and refuses a misspelt op or block.

    \b
    VS Code (redhat.vscode-yaml), settings.json:
      "yaml.schemas": {"./archdsl-schema.json": "specs/*.yaml"}
    \b
    A schema that knows the project's blocks:
      archdsl schema specs/lib/*.yaml -o archdsl-schema.json
    """
    from ..parser import block_signatures
    from ..schema import SPEC_SCHEMA, spec_schema
    from ..util import write_output

    if specs:
        blocks = {}
        for path in specs:
            blocks.update(block_signatures(path, allow_paths))
        document = spec_schema(blocks)
    else:
        document = SPEC_SCHEMA
    text = json.dumps(document, indent=2) + "\n"
    write_output(output or "-", text)
