"""archdsl's benchmarks against the tools its users use today (see BENCHMARKS.md).

Run them all with ``python bench/run.py`` (``--quick`` for a smoke run). One module per part:

* :mod:`bench.counting` -- params + MACs: archdsl from the spec vs fvcore, ptflops, thop and
  torchinfo on the torchvision model, in-process and as cold command-line processes;
* :mod:`bench.scaling`  -- analysis time and memory as the network grows;
* :mod:`bench.runtime`  -- generated PyTorch code vs torchvision: forward and training step,
  eager and ``torch.compile``, and the batch-norm-folded inference model;
* :mod:`bench.zoo`      -- compile (code generation) and draw time for the whole zoo.

:mod:`bench.common` has the timing discipline shared by all: interleaved rounds, medians.
Timings are measurements, never assertions.
"""
