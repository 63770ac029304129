"""One cold counting run of a peer tool, as a user types it: ``python bench/peer_cli.py TOOL MODEL``.

Imports torch, torchvision and the tool, builds the torchvision model (random weights), counts its
parameters and MACs at 3x224x224 and prints them as JSON. :mod:`bench.counting` times this as a
whole process beside ``archdsl report``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str]) -> int:
    tool, model_name = argv
    import torch
    import torchvision

    from bench.peers import count  # the same counting code as in-process

    model = getattr(torchvision.models, model_name)(weights=None).eval()
    params, macs = count(tool, model, (3, 224, 224))
    print(json.dumps({"tool": tool, "model": model_name, "params": params, "macs": macs,
                      "torch": torch.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
