"""Part 3: the generated PyTorch code against torchvision's hand-written models.

For resnet50, densenet121, googlenet and mobilenet_v2: the module ``archdsl.builder`` generates from
the spec, loaded with torchvision's own weights (``load_state_dict(strict=True)``), against the
torchvision model, on the same input with the same number of threads:

* **forward**: eval mode, ``torch.no_grad()``;
* **training step**: train mode, forward + cross-entropy + backward + SGD step;
* **folded inference**: the spec compiled with its batch norms folded into the convolutions
  (``archdsl compile --inference``: :func:`archdsl.passes.fold_batchnorm`, weights through
  :func:`archdsl.fold.fold_state_dict`), checked numerically against torchvision first;
* **torch.compile**: the forward of all three after ``torch.compile`` (inductor), steady state.

Each pair is timed in interleaved rounds (median). Batch norms get random running statistics and
affine parameters first, so that the folded model is really checked.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

from archdsl.errors import ArchError

from .common import SPECS, Budget, Stat, interleaved, paired_ratio, quiet

__all__ = ["MODELS", "prepare", "run"]

MODELS = ("resnet50", "densenet121", "googlenet", "mobilenet_v2")
QUICK_MODELS = ("mobilenet_v2",)
COMPILE_ORDER = ("mobilenet_v2", "resnet50", "googlenet", "densenet121")
ROUNDS = 31


def _randomize_bn(model: Any, seed: int = 0) -> None:
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                module.running_var.copy_(torch.rand(n, generator=gen) * 0.5 + 0.75)
                if module.affine:
                    module.weight.copy_(torch.rand(n, generator=gen) * 0.5 + 0.75)
                    module.bias.copy_(torch.randn(n, generator=gen) * 0.1)


def _rel_err(a: Any, b: Any) -> float:
    return float((a - b).norm() / a.norm())


def prepare(name: str) -> dict[str, Any]:
    """torchvision's model, the generated one and the folded one, all with the same weights."""
    import archdsl
    from archdsl.builder import build_graph
    from archdsl.fold import fold_state_dict
    from archdsl.passes import fold_batchnorm

    from .counting import reference_models

    builder, _, _ = reference_models((name,))[name]
    with quiet():
        tv = builder()
    _randomize_bn(tv)
    tv.eval()
    graph = archdsl.load(SPECS / f"{name}.yaml")
    gen = build_graph(graph)
    gen.load_state_dict(tv.state_dict(), strict=True)
    gen.eval()
    folded_graph = fold_batchnorm(graph)
    folded = build_graph(folded_graph)
    folded.load_state_dict(fold_state_dict(tv.state_dict(), graph), strict=True)
    folded.eval()
    return {"torchvision": tv, "archdsl": gen, "archdsl folded": folded, "builder": builder,
            "graph": graph, "bn_total": sum(n.op == "bn" for n in graph),
            "bn_folded": sum(n.op == "bn" for n in graph) - sum(n.op == "bn" for n in folded_graph)}


def _forward_cases(models: dict[str, Any], x: Any) -> dict[str, Callable[[], Any]]:
    return {name: (lambda m=models[name]: m(x)) for name in ("torchvision", "archdsl", "archdsl folded")}


def _train_step(model: Any, x: Any, y: Any) -> Callable[[], Any]:
    import torch

    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)

    def step() -> Any:
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


def _compiled(models: dict[str, Any], x: Any, rounds: int, min_time: float,
              log: Any) -> dict[str, Any]:
    """First call (compilation) and steady-state forward of the torch.compile'd models."""
    import torch

    torch._dynamo.reset()
    compiled, first = {}, {}
    for name in ("torchvision", "archdsl", "archdsl folded"):
        fn = torch.compile(models[name])
        t0 = time.perf_counter()
        with quiet():
            want = fn(x)
        first[name] = time.perf_counter() - t0
        compiled[name] = fn
        log(f"      torch.compile {name}: first call {first[name]:.1f} s")
    check = _rel_err(models["torchvision"](x), want)
    stats = interleaved({name: (lambda f=fn: f(x)) for name, fn in compiled.items()}, rounds,
                        min_time=min_time)
    torch._dynamo.reset()
    return {"first_call": first, "forward": stats, "rel_err_folded": check}


def run(quick: bool = False, *, threads: int = 1, compile_budget: float = 240.0,
        log: Any = print) -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    models = QUICK_MODELS if quick else MODELS
    batch, size = (2, 64) if quick else (2, 160)
    # Many short rounds: load from elsewhere comes in bursts, and a per-round ratio moves by
    # +-4% on this machine (+-6% for a training step); the median of 31 pins it to about 1%.
    rounds = 3 if quick else ROUNDS
    min_time = 0.05
    budget = Budget(0 if quick else compile_budget)
    log(f"part 3: generated code vs torchvision, batch {batch} x 3 x {size} x {size}, "
        f"{threads} thread(s)")
    results: dict[str, Any] = {"batch": batch, "size": size, "threads": threads, "models": {},
                               "inductor_cache": _inductor_cache_state()}
    gen = torch.Generator().manual_seed(0)
    x = torch.randn((batch, 3, size, size), generator=gen)
    y = torch.randint(0, 1000, (batch,), generator=gen)
    for name in models:
        started = time.perf_counter()
        try:
            m = prepare(name)
        except ArchError as error:  # a spec being edited: say so, measure the others
            results["models"][name] = {"error": error.render().splitlines()[0]}
            log(f"  {name:<14} skipped: {results['models'][name]['error']}")
            continue
        row: dict[str, Any] = {"bn_total": m["bn_total"], "bn_folded": m["bn_folded"]}
        with torch.no_grad():
            ref = m["torchvision"](x)
            row["max_abs_diff"] = float((ref - m["archdsl"](x)).abs().max())
            row["rel_err_folded"] = _rel_err(ref, m["archdsl folded"](x))
            row["forward"] = interleaved(_forward_cases(m, x), rounds, min_time=min_time)
        train_tv = copy.deepcopy(m["torchvision"]).train()
        train_gen = copy.deepcopy(m["archdsl"]).train()
        row["train"] = interleaved({"torchvision": _train_step(train_tv, x, y),
                                    "archdsl": _train_step(train_gen, x, y)},
                                   rounds, min_time=min_time)
        del train_tv, train_gen
        fwd, train = row["forward"], row["train"]
        log(f"  {name:<14} forward: tv {fwd['torchvision'].median * 1e3:7.1f} ms, archdsl "
            f"{fwd['archdsl'].median * 1e3:7.1f} ms (x{_speed(fwd, 'archdsl'):.3f}), folded "
            f"{fwd['archdsl folded'].median * 1e3:7.1f} ms (x{_speed(fwd, 'archdsl folded'):.3f}) | "
            f"train: tv {train['torchvision'].median * 1e3:7.1f} ms, archdsl "
            f"{train['archdsl'].median * 1e3:7.1f} ms (x{_speed(train, 'archdsl'):.3f}) "
            f"| folded rel err {row['rel_err_folded']:.1e} ({time.perf_counter() - started:.0f} s)")
        results["models"][name] = row
    # compile the cheapest first: a tight budget still covers most models
    for name in sorted(models, key=lambda n: COMPILE_ORDER.index(n) if n in COMPILE_ORDER else 99):
        row = results["models"][name]
        if "error" in row:
            continue
        if budget.left() < 60:  # a model's three compilations take a minute at the very least
            row["compiled"] = {"skipped": "time budget (--compile-budget)"}
            continue
        log(f"  torch.compile {name} (budget left {budget.left():.0f} s)")
        try:
            with torch.no_grad():
                row["compiled"] = _compiled(prepare(name), x, rounds, min_time, log)
        except Exception as exc:  # noqa: BLE001 - a broken compiler is a result, not a crash
            row["compiled"] = {"skipped": f"{type(exc).__name__}: {str(exc)[:200]}"}
            continue
        fwd = row["compiled"]["forward"]
        log(f"    compiled forward: tv {fwd['torchvision'].median * 1e3:7.1f} ms, archdsl "
            f"{fwd['archdsl'].median * 1e3:7.1f} ms (x{_speed(fwd, 'archdsl'):.3f}), folded "
            f"{fwd['archdsl folded'].median * 1e3:7.1f} ms (x{_speed(fwd, 'archdsl folded'):.3f})")
    return results


def _inductor_cache_state() -> str:
    """``warm`` when inductor's on-disk cache already holds compiled code (from earlier runs)."""
    import getpass
    import os
    import tempfile
    from pathlib import Path

    path = Path(os.environ.get("TORCHINDUCTOR_CACHE_DIR")
                or Path(tempfile.gettempdir()) / f"torchinductor_{getpass.getuser()}")
    return "warm" if path.is_dir() and any(path.iterdir()) else "cold"


def _speed(stats: dict[str, Stat], name: str) -> float:
    """torchvision's time over ours (paired by round): above 1 means archdsl's module is faster."""
    return paired_ratio(stats["torchvision"], stats[name])
