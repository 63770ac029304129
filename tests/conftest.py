"""Shared test helpers: write a spec into a temporary directory and load it; one torch thread.

Nothing here imports torch at import time: the torch-free tests run without it."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


def zoo_specs() -> list[Path]:
    """Every model spec of the zoo (not the libraries or studies)."""
    return sorted(SPECS.glob("*.yaml"))


@pytest.fixture
def write_spec(tmp_path: Path):
    """write_spec(text, name="spec.yaml") -> path of a dedented spec file in tmp_path."""

    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path

    return write


@pytest.fixture
def one_thread():
    """One intra-op torch thread for the test: on a busy 2-core machine OpenMP spinning makes small
    models 10x slower. Modules that run models use it for every test:
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# Installed as sitecustomize.py, it makes every import of torch fail in that Python process.
NO_TORCH = """
import sys

class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"import of {name} is blocked by this test")
        return None

sys.meta_path.insert(0, _NoTorch())
"""


@pytest.fixture
def no_torch_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a subprocess in which ``import torch`` fails (archdsl importable)."""
    site = tmp_path / "no_torch_site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(NO_TORCH, encoding="utf-8")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
