"""Rebuild ``generated/`` from ``specs/``: ``python -m archdsl.codegen.regen [--check]``.

Every model spec directly in ``specs/`` is compiled with its default parameters to
``generated/<spec>.py``. ``--check`` writes nothing and exits 1 when a file is missing, stale or
left over from a spec that is gone (the test suite runs the same comparison).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ArchError
from ..pipeline import load
from ..util import write_atomic
from .emit import compile_graph

__all__ = ["ROOT", "expected_files", "main", "stale_files", "zoo_specs"]

ROOT = Path(__file__).resolve().parents[2]


def zoo_specs(root: Path = ROOT) -> list[Path]:
    """The model specs of the zoo (``specs/*.yaml``; libraries and studies are not models)."""
    return sorted((root / "specs").glob("*.yaml"))


def generated_path(spec: Path, root: Path = ROOT) -> Path:
    return root / "generated" / f"{spec.stem}.py"


def expected_files(root: Path = ROOT) -> dict[Path, str]:
    """``{generated file: its source}`` for every zoo spec."""
    return {generated_path(spec, root): compile_graph(load(spec)) for spec in zoo_specs(root)}


def stale_files(root: Path = ROOT) -> list[str]:
    """What is missing, different or left over in ``generated/`` (empty when up to date)."""
    expected = expected_files(root)
    problems = []
    for path, source in expected.items():
        if not path.exists():
            problems.append(f"{path.relative_to(root)}: missing")
        elif path.read_text(encoding="utf-8") != source:
            problems.append(f"{path.relative_to(root)}: stale")
    for path in sorted((root / "generated").glob("*.py")):
        if path not in expected:
            problems.append(f"{path.relative_to(root)}: no spec specs/{path.stem}.yaml")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m archdsl.codegen.regen", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    try:
        if args.check:
            problems = stale_files()
            for problem in problems:
                print(problem, file=sys.stderr)
            print("generated/ is up to date" if not problems else
                  "run `python -m archdsl.codegen.regen` to update generated/", file=sys.stderr)
            return 1 if problems else 0
        (ROOT / "generated").mkdir(exist_ok=True)
        for path, source in expected_files().items():
            if not path.exists() or path.read_text(encoding="utf-8") != source:
                write_atomic(path, source)
                print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)
    except ArchError as error:
        print(error.render(), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
