"""Training a spec on real data (the library behind ``archdsl train``; the command is
:mod:`archdsl.commands.train`).

:func:`train` builds the spec's generated module (:func:`archdsl.builder.build_graph`), checks it
against the static analysis, optionally loads a state_dict (:func:`load_weights`) and freezes
scopes, then trains it with SGD or AdamW on the datasets of :mod:`archdsl.data`, evaluating on the
test set after every epoch. Each epoch's figures go to ``history.json``/``history.csv``, the curves
to ``curves.png``/``curves.svg`` and the state (model, optimizer, schedule, RNG) to
``checkpoint.pt``, every file written atomically; ``model.pt`` holds the final weights alone.

Started by ``torchrun``, the same call runs one process per device with DistributedDataParallel
(gloo on CPU, NCCL on CUDA): each process takes ``batch / world`` samples of every global batch
from a :class:`~torch.utils.data.DistributedSampler`, gradients are averaged, and only rank 0
logs and writes. The sampler is used with one process too, so one process and N processes see the
same global batches in the same order and (for networks without batch norm or dropout, whose
statistics and masks are per process) reach the same weights.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .data import Datasets, DataSource, open_datasets, prepare
from .errors import ArchError, Diagnostic, UsageError, did_you_mean
from .ir import INPUT, Graph
from .util import write_atomic

__all__ = [
    "CHECKPOINT",
    "OPTIMIZERS",
    "SCHEDULES",
    "Distributed",
    "TrainConfig",
    "TrainError",
    "describe",
    "load_weights",
    "train",
]

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("none", "cosine", "step")
DEFAULT_LR = {"sgd": 0.05, "adamw": 1e-3}
CHECKPOINT = "checkpoint.pt"
FINAL_WEIGHTS = "model.pt"
FORMAT = "archdsl-train/1"
HISTORY_FIELDS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds",
                  "samples_per_second")

Log = Callable[[str], None]
Progress = Callable[[Iterable[Any], int, str], AbstractContextManager[Iterable[Any]]]


class TrainError(ArchError):
    """Training cannot go on as asked: weights of another network, a bad checkpoint, ... (exit 1)."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything ``archdsl train`` takes besides the spec and the data."""

    epochs: int = 10
    batch: int = 128  # the global batch: all processes together
    lr: float | None = None  # None: DEFAULT_LR of the optimizer
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "none"
    step_size: int | None = None  # epochs between the step schedule's decays; None: epochs // 3
    gamma: float = 0.1
    augment: tuple[str, ...] = ()
    normalize: str = "none"
    weights: str | None = None
    partial_weights: bool = False
    freeze: tuple[str, ...] = ()
    train_only: tuple[str, ...] = ()
    aux_weight: float = 0.3  # the weight of auxiliary heads' losses (GoogLeNet's 0.3)
    amp: bool = False
    compile: bool = False
    device: str = "auto"
    out: str = "runs"
    resume: bool = False
    overwrite: bool = False
    seed: int = 0
    workers: int = 2
    download: bool = False

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]


@dataclass(frozen=True)
class Distributed:
    """This process's place among torchrun's processes (rank 0 of 1 without torchrun)."""

    rank: int = 0
    local_rank: int = 0
    world: int = 1

    @classmethod
    def from_env(cls) -> Distributed:
        """torchrun's RANK, LOCAL_RANK and WORLD_SIZE."""
        env = os.environ
        return cls(int(env.get("RANK", 0)), int(env.get("LOCAL_RANK", 0)), int(env.get("WORLD_SIZE", 1)))

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


@dataclass
class Run:
    """The pieces of one training run, as :func:`setup` makes them."""

    graph: Graph
    config: TrainConfig
    dist: Distributed
    device: Any
    model: Any  # the module itself (its state_dict is what is saved)
    runnable: Any  # what is called: the model, wrapped in DDP and/or torch.compile
    optimizer: Any
    scheduler: Any
    scaler: Any
    data: Datasets
    out: Path
    held: list[Any] = field(default_factory=list)  # modules with frozen parameters: kept in eval mode
    history: list[dict[str, float]] = field(default_factory=list)


# --- the static side -------------------------------------------------------------------------

def describe(graph: Graph, batch: int, config: TrainConfig, trainable: int | None = None) -> list[str]:
    """The static analysis of a training run: parameters, MACs and the training step's memory
    (the analysis's ``training`` figures: weights, gradients, the optimizer's state and what
    autograd keeps for the backward pass), for the parameters this run trains."""
    from .analysis import analyze
    from .report import bytes_text

    optimizer = config.optimizer if config.optimizer == "adamw" else (
        "sgd-momentum" if config.momentum > 0 else "sgd")
    stats = analyze(graph, batch=batch, optimizer=optimizer)
    memory, step = stats.memory, stats.training
    params = memory.params
    trainable = params if trainable is None else trainable
    width = memory.bytes_per_element
    gradients = trainable * width
    state = step.optimizer_state * trainable // max(stats.trainable_params, 1)
    if trainable == stats.trainable_params:
        peak = f"estimated peak {bytes_text(step.peak)} ({step.peak_at})"
    else:  # layers frozen here: the analysis's peak assumes they train
        peak = f"at most {bytes_text(step.weights + gradients + state + step.saved)}"
    return [
        (f"{graph.name}: {params:,} parameters ({trainable:,} trained), "
         f"{stats.macs // batch:,} MACs per sample, input {'x'.join(map(str, graph.input_shape))}"),
        (f"  predicted memory of a training step, batch {batch} per process ({memory.dtype}): {peak}; "
         f"weights {bytes_text(step.weights)}, gradients {bytes_text(gradients)}, {optimizer} state "
         f"{bytes_text(state)}, saved for backward {bytes_text(step.saved)}"),
    ]


# --- weights and freezing --------------------------------------------------------------------

def load_weights(model: Any, graph: Graph, path: str, partial: bool = False) -> list[str]:
    """Load a state_dict file (or an archdsl checkpoint) into ``model``; returns report lines.

    Keys missing from the file or unknown to the model are an error naming them (unless
    ``partial``); a tensor of another shape is an error too, except in the network's head (the
    last layer with parameters before each output), which ``--set num_classes=...`` replaces: it
    keeps its initial values.
    """
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UsageError(Diagnostic(f"--weights: no such file: {path}", None)) from None
    except Exception as error:  # noqa: BLE001 - an untrusted file: torch.load raises many kinds
        raise TrainError(Diagnostic(f"--weights {path} is not a state_dict file torch can load: "
                                    f"{type(error).__name__}: {str(error).splitlines()[0]}", None,
                                    hint="save one with torch.save(model.state_dict(), FILE)")) from None
    if isinstance(state, dict) and state.get("format") == FORMAT:
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise TrainError(Diagnostic(f"--weights {path} holds no state_dict", None,
                                    expected="a dict of parameter names to tensors",
                                    found=type(state).__name__))
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    heads = _head_layers(graph)
    reshaped = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    wrong = [k for k in reshaped if not _under(k, heads)]
    lines = []
    if wrong or ((missing or unexpected) and not partial):
        raise TrainError(Diagnostic(
            f"--weights {path} are not {graph.name}'s weights", None,
            expected=f"the {len(own)} tensors of {graph.name}'s state_dict",
            found="; ".join(filter(None, [
                _keys("missing from the file", missing), _keys("not in the model", unexpected),
                _keys("of other shapes", wrong, state, own)])),
            hint="a file saved from this spec (with the same --set parameters); "
                 + ("--partial-weights loads the matching tensors and leaves the rest"
                    if not wrong else "shapes differ outside the head: another architecture")))
    for key in reshaped:
        lines.append(f"  {key}: {_shape(state[key])} in the file, {_shape(own[key])} in the model: "
                     "the head is replaced and keeps its initial values")
    if missing:
        lines.append("  " + _keys("missing from the file (kept at their initial values)", missing))
    if unexpected:
        lines.append("  " + _keys("in the file but not in the model (ignored)", unexpected))
    loaded = {k: v for k, v in state.items() if k in own and k not in reshaped}
    model.load_state_dict(loaded, strict=False)
    lines.insert(0, f"loaded {len(loaded)} of {len(own)} tensors from {path}")
    return lines


def _head_layers(graph: Graph) -> list[str]:
    """The last layer with parameters on the way to each output (the classifier's ``fc``)."""
    heads = []
    for name in graph.outputs.values():
        node = graph.nodes[name]
        while node.op != INPUT and not node.opdef.params(node.attrs, list(node.in_shapes), node.shape):
            if len(node.inputs) != 1:
                break
            node = graph.nodes[node.inputs[0]]
        heads.append(node.name)
    return heads


def _under(key: str, prefixes: Iterable[str]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def _keys(what: str, keys: list[str], state: Any = None, own: Any = None, shown: int = 6) -> str:
    if not keys:
        return ""
    text = [f"{k} ({_shape(state[k])} vs {_shape(own[k])})" if state is not None else k
            for k in keys[:shown]]
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return f"{len(keys)} {what}: {', '.join(text)}{more}"


def _shape(tensor: Any) -> str:
    return "x".join(map(str, tensor.shape)) or "scalar"


def freeze(model: Any, freeze: tuple[str, ...], train_only: tuple[str, ...]) -> list[Any]:
    """Freeze the layers under the ``freeze`` names (or all but those under ``train_only``).

    Returns the modules that hold frozen parameters or buffers: they stay in eval mode while the
    rest trains, so batch norm keeps its running statistics (a frozen layer does not change).
    """
    if not freeze and not train_only:
        return []
    modules = dict(model.named_modules())
    for option, names in (("--freeze", freeze), ("--train-only", train_only)):
        for name in names:
            if name not in modules or not name:
                top = [n for n in modules if n and "." not in n]
                raise UsageError(Diagnostic(
                    f"{option} {name}: the network has no layer of that name", None,
                    expected="a layer or scope name (state_dict prefix), e.g. " + ", ".join(top[:8]),
                    found=name, hint=did_you_mean(name, modules) or "see `archdsl report SPEC`"))

    def frozen(name: str) -> bool:
        return _under(name, freeze) if freeze else not _under(name, train_only)

    held = []
    for name, module in modules.items():
        own = list(module.parameters(recurse=False)) + list(module.buffers(recurse=False))
        if own and frozen(name):
            module.requires_grad_(False)
            held.append(module)
    return held


# --- the run ---------------------------------------------------------------------------------

def train(graph: Graph, source: DataSource, config: TrainConfig, *, log: Log = print,
          progress: Progress | None = None, dist: Distributed | None = None) -> list[dict[str, float]]:
    """Train ``graph``'s network on ``source`` as ``config`` says; returns the history.

    ``log`` prints a line (rank 0 only), ``progress(batches, count, label)`` wraps each epoch's loop
    (a progress bar). Under torchrun the process group is set up and torn down here.
    """
    dist = dist or Distributed.from_env()
    _check_config(config, dist)
    with _process_group(config, dist) as device:
        run = setup(graph, source, config, dist, device, log)
        for epoch in range(len(run.history) + 1, config.epochs + 1):
            record = train_epoch(run, epoch, progress)
            if not math.isfinite(record["train_loss"]):
                raise TrainError(Diagnostic(
                    f"epoch {epoch}: the training loss is {record['train_loss']}: training diverged",
                    None, hint=f"a smaller --lr than {config.learning_rate:g}"
                               + ("" if epoch == 1 else f"; {run.out}/{CHECKPOINT} holds epoch {epoch - 1}")))
            run.history.append(record)
            log(_epoch_line(record, config.epochs))
            _collectively(dist, dist.main, lambda done=epoch: _writing(run.out, lambda: save(run, done)))
        if run.history:
            _collectively(dist, dist.main, lambda: _writing(run.out, lambda: write_atomic(
                run.out / FINAL_WEIGHTS, _serialise(run.model.state_dict()))))
            log(f"wrote {run.out}/: {CHECKPOINT}, {FINAL_WEIGHTS}, history.json, history.csv, "
                "curves.png, curves.svg")
        return run.history


def _check_config(config: TrainConfig, dist: Distributed) -> None:
    if config.batch % dist.world:
        raise UsageError(Diagnostic(
            f"--batch {config.batch} does not divide among {dist.world} processes", None,
            expected=f"a multiple of {dist.world} (--batch is the global batch of all processes)",
            found=str(config.batch)))
    if config.freeze and config.train_only:
        raise UsageError(Diagnostic("--freeze and --train-only exclude each other", None,
                                    hint="--train-only fc freezes everything but fc"))
    if config.resume and config.overwrite:
        raise UsageError(Diagnostic("--resume and --overwrite exclude each other", None))


@contextmanager
def _process_group(config: TrainConfig, dist: Distributed) -> Iterator[Any]:
    """The device of this process; under torchrun also the process group (gloo or NCCL)."""
    import torch

    from .runner import resolve_device

    device = resolve_device(config.device)
    if not dist.active:
        yield device
        return
    if device.type == "mps":
        raise UsageError(Diagnostic("torchrun with --device mps: no distributed backend for MPS",
                                    None, hint="--device cpu"))
    if device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    torch.distributed.init_process_group(backend)
    try:
        yield device
    finally:
        torch.distributed.destroy_process_group()


def setup(graph: Graph, source: DataSource, config: TrainConfig, dist: Distributed, device: Any,
          log: Log) -> Run:
    """Data, model (checked, loaded, frozen), optimizer and schedule; resumed from the checkpoint
    in ``config.out`` when asked."""
    import torch

    from .builder import build_graph
    from .runner import autocast_context, check_against_analysis

    out = Path(config.out)
    _check_out(out, config)
    # the data is prepared (extracted, downloaded) by one process per machine
    _collectively(dist, dist.local_rank == 0, lambda: prepare(source, config.download))
    data = open_datasets(source, graph.input_shape, augment=config.augment, normalize=config.normalize)
    classes = graph.main_output.shape[0] if len(graph.main_output.shape) == 1 else None
    if classes != len(data.classes):
        raise TrainError(Diagnostic(
            f"{graph.name} gives {'x'.join(map(str, graph.main_output.shape))} outputs, the data "
            f"has {len(data.classes)} classes", None, expected=f"{len(data.classes)} outputs",
            found="x".join(map(str, graph.main_output.shape)),
            hint=f"--set num_classes={len(data.classes)}"))
    torch.manual_seed(config.seed)
    model = build_graph(graph)
    check_against_analysis(graph, model.eval(), torch.randn(2, *graph.input_shape),
                           autocast_context(torch.device("cpu"), False))
    lines = load_weights(model, graph, config.weights, config.partial_weights) if config.weights else []
    held = freeze(model, config.freeze, config.train_only)
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise UsageError(Diagnostic("nothing to train: every parameter is frozen", None,
                                    hint="--train-only NAME names the layers to train"))
    for line in describe(graph, config.batch // dist.world, config, sum(p.numel() for p in trainable)):
        log(line)
    log(f"  the module matches the static analysis; {data.describe()}")
    for line in lines:
        log(line)
    model.to(device)
    optimizer = _optimizer(config, trainable)
    scheduler = _scheduler(config, optimizer)
    scaler = torch.amp.GradScaler(device.type, enabled=config.amp and device.type == "cuda")
    runnable = model
    if dist.active:
        runnable = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    if config.compile:
        runnable = torch.compile(runnable)
    run = Run(graph, config, dist, device, model, runnable, optimizer, scheduler, scaler, data, out, held)
    if config.resume:
        _resume(run, log)
    if dist.active:
        log(f"  {dist.world} processes ({'NCCL' if device.type == 'cuda' else 'gloo'}), "
            f"{config.batch // dist.world} samples each per step of {config.batch}")
    return run


def _check_out(out: Path, config: TrainConfig) -> None:
    if (out / CHECKPOINT).exists() and not (config.resume or config.overwrite):
        raise UsageError(Diagnostic(f"--out {out} already holds a training run ({CHECKPOINT})", None,
                                    hint="--resume continues it, --overwrite starts again, or "
                                         "choose another --out"))
    if config.resume and not (out / CHECKPOINT).is_file():
        raise UsageError(Diagnostic(f"--resume: no {CHECKPOINT} in {out}", None,
                                    hint="--out names the directory of the run to continue"))


def _collectively(dist: Distributed, runs_here: bool, action: Callable[[], None]) -> None:
    """Run ``action`` in the processes where ``runs_here`` while the others wait; an archdsl
    error it raises is raised in every process, so that none hangs waiting for the others."""
    if not dist.active:
        action()
        return
    import torch.distributed as td

    failure = None
    if runs_here:
        try:
            action()
        except ArchError as error:
            failure = (type(error), error.diagnostics)
    outcomes: list[Any] = [None] * dist.world
    td.all_gather_object(outcomes, failure)
    problem = next((o for o in outcomes if o is not None), None)
    if problem is not None:
        kind, diagnostics = problem
        raise kind(diagnostics)


def _optimizer(config: TrainConfig, params: list[Any]) -> Any:
    import torch

    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.learning_rate, momentum=config.momentum,
                               weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)


def _scheduler(config: TrainConfig, optimizer: Any) -> Any:
    """Stepped once per epoch."""
    import torch

    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    if config.schedule == "step":
        step = config.step_size or max(1, config.epochs // 3)
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step, gamma=config.gamma)
    return None


def _loader(run: Run, dataset: Any, shuffle: bool, epoch: int) -> Any:
    """Batches of this process: its share of every global batch (DistributedSampler), or its
    share of the test set (every ``world``-th image, so nothing is counted twice)."""
    import torch
    from torch.utils.data import DataLoader, DistributedSampler, Subset

    dist, per_process = run.dist, run.config.batch // run.dist.world
    common = {"batch_size": per_process, "num_workers": run.config.workers,
              "pin_memory": run.device.type == "cuda", "persistent_workers": False}
    if shuffle:
        sampler = DistributedSampler(dataset, num_replicas=dist.world, rank=dist.rank, shuffle=True,
                                     seed=run.config.seed)
        sampler.set_epoch(epoch)
        return DataLoader(dataset, sampler=sampler, **common)
    shard = Subset(dataset, range(dist.rank, len(dataset), dist.world))
    return DataLoader(shard, shuffle=False, generator=torch.Generator(), **common)


def train_epoch(run: Run, epoch: int, progress: Progress | None) -> dict[str, float]:
    """One epoch of training, then the test set; the figures of all processes together."""
    import torch

    from .runner import autocast_context

    autocast = autocast_context(run.device, run.config.amp)
    loader = _loader(run, run.data.train, True, epoch)
    run.runnable.train()
    for module in run.held:
        module.eval()
    lr = run.optimizer.param_groups[0]["lr"]
    sums = torch.zeros(3, dtype=torch.float64, device=run.device)  # loss x n, correct, n
    wrap = progress or (lambda items, _n, _label: nullcontext(items))
    start = time.perf_counter()
    with wrap(_batches(loader, run.data), len(loader), f"epoch {epoch}/{run.config.epochs}") as bar:
        for x, y in bar:
            x, y = x.to(run.device, non_blocking=True), y.to(run.device, non_blocking=True)
            with autocast():
                loss, logits = _loss(run.runnable(x), y, run.config.aux_weight)
            run.optimizer.zero_grad(set_to_none=True)
            run.scaler.scale(loss).backward()
            run.scaler.step(run.optimizer)
            run.scaler.update()
            sums += torch.stack([loss.detach().double() * len(y),
                                 (logits.argmax(1) == y).sum().double(),
                                 torch.tensor(float(len(y)), dtype=torch.float64, device=run.device)])
    _synchronize_sum(run, sums)
    seconds = time.perf_counter() - start
    if run.scheduler is not None:
        run.scheduler.step()
    test_loss, test_acc = evaluate(run)
    return {"epoch": epoch, "train_loss": sums[0].item() / sums[2].item(),
            "train_acc": sums[1].item() / sums[2].item(), "test_loss": test_loss, "test_acc": test_acc,
            "lr": lr, "seconds": seconds, "samples_per_second": sums[2].item() / seconds}


def _batches(loader: Any, data: Datasets) -> Iterator[Any]:
    """The loader's batches; an image that cannot be read is a DataError, not a traceback."""
    from .data import READ_ERRORS, DataError

    try:
        yield from loader
    except READ_ERRORS as error:
        raise DataError(Diagnostic(f"{data.source.label} in {data.source.folder}: an image cannot "
                                   f"be read: {type(error).__name__}: {error}", None)) from None


def _loss(outputs: Any, y: Any, aux_weight: float) -> tuple[Any, Any]:
    """Cross-entropy of the main output, plus ``aux_weight`` times each auxiliary head's."""
    import torch.nn.functional as F

    if isinstance(outputs, tuple):
        main, aux = outputs[0], outputs[1:]
    else:
        main, aux = outputs, ()
    loss = F.cross_entropy(main.float(), y)
    for head in aux:
        loss = loss + aux_weight * F.cross_entropy(head.float(), y)
    return loss, main


def evaluate(run: Run) -> tuple[float, float]:
    """Loss and accuracy on the whole test set (each process takes its share)."""
    import torch
    import torch.nn.functional as F

    from .runner import autocast_context

    autocast = autocast_context(run.device, run.config.amp)
    run.runnable.eval()
    sums = torch.zeros(3, dtype=torch.float64, device=run.device)
    with torch.inference_mode():
        for x, y in _batches(_loader(run, run.data.test, False, 0), run.data):
            x, y = x.to(run.device), y.to(run.device)
            with autocast():
                outputs = run.runnable(x)
            logits = (outputs[0] if isinstance(outputs, tuple) else outputs).float()
            sums += torch.stack([F.cross_entropy(logits, y, reduction="sum").double(),
                                 (logits.argmax(1) == y).sum().double(),
                                 torch.tensor(float(len(y)), dtype=torch.float64, device=run.device)])
    _synchronize_sum(run, sums)
    count = max(sums[2].item(), 1.0)
    return sums[0].item() / count, sums[1].item() / count


def _synchronize_sum(run: Run, sums: Any) -> None:
    if run.dist.active:
        import torch.distributed as td

        td.all_reduce(sums)


def _epoch_line(record: dict[str, float], epochs: int) -> str:
    return (f"epoch {record['epoch']}/{epochs}: train loss {record['train_loss']:.4f}, "
            f"train acc {record['train_acc']:.1%}, test loss {record['test_loss']:.4f}, "
            f"test acc {record['test_acc']:.1%}, lr {record['lr']:.3g}, {record['seconds']:.1f} s "
            f"({record['samples_per_second']:,.0f} samples/s)")


# --- checkpoints and history -----------------------------------------------------------------

def _serialise(obj: Any) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _writing(out: Path, action: Callable[[], None]) -> None:
    """Run a write; a disk error is a TrainError (the files written before stay whole)."""
    try:
        action()
    except OSError as error:
        raise TrainError(Diagnostic(f"cannot write the run to {out}: {error}", None,
                                    hint="the files already there are the last complete epoch's; "
                                         "free some space (or choose another --out) and --resume")) from None


def save(run: Run, epoch: int) -> None:
    """The checkpoint, the history (JSON and CSV) and the curves, each written atomically."""
    import torch

    run.out.mkdir(parents=True, exist_ok=True)
    state = {
        "format": FORMAT, "spec": run.graph.name, "params": dict(run.graph.params),
        "input": list(run.graph.input_shape), "epoch": epoch, "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict() if run.scheduler else None,
        "scaler": run.scaler.state_dict(), "history": run.history, "config": asdict(run.config),
        "rng": torch.get_rng_state(),
    }
    write_atomic(run.out / CHECKPOINT, _serialise(state))
    write_atomic(run.out / "history.json", json.dumps(
        {"spec": run.graph.name, "data": run.data.source.label, "epochs": run.history}, indent=2) + "\n")
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=HISTORY_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(run.history)
    write_atomic(run.out / "history.csv", text.getvalue())
    for fmt in ("png", "svg"):
        write_atomic(run.out / f"curves.{fmt}", plot_curves(run.history, f"{run.graph.name} on "
                                                            f"{run.data.source.label}", fmt))


def plot_curves(history: list[dict[str, float]], title: str, fmt: str) -> bytes:
    """Loss and accuracy per epoch, training and test, as d2l's plots show them."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    epochs = [r["epoch"] for r in history]
    figure = Figure(figsize=(8, 3.2), layout="constrained")
    loss, accuracy = figure.subplots(1, 2)
    loss.plot(epochs, [r["train_loss"] for r in history], "o-", label="train loss")
    loss.plot(epochs, [r["test_loss"] for r in history], "s--", label="test loss")
    accuracy.plot(epochs, [r["train_acc"] for r in history], "o-", label="train acc")
    accuracy.plot(epochs, [r["test_acc"] for r in history], "s--", label="test acc")
    for axes, name, corner in ((loss, "loss", "upper right"), (accuracy, "accuracy", "lower right")):
        axes.set_xlabel("epoch")
        axes.set_ylabel(name)
        axes.grid(alpha=0.3)
        axes.legend(loc=corner)
        axes.xaxis.get_major_locator().set_params(integer=True)
    accuracy.set_ylim(0, 1.02)
    figure.suptitle(title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, dpi=100, metadata={"Date": None} if fmt == "svg" else None)
    return buffer.getvalue()


def _resume(run: Run, log: Log) -> None:
    import torch

    path = run.out / CHECKPOINT
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - a truncated or foreign file: many kinds
        raise TrainError(Diagnostic(f"--resume: {path} cannot be read: {type(error).__name__}: "
                                    f"{str(error).splitlines()[0]}", None)) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise TrainError(Diagnostic(f"--resume: {path} is not an archdsl training checkpoint", None))
    if state["spec"] != run.graph.name or state["params"] != dict(run.graph.params) \
            or state["input"] != list(run.graph.input_shape):
        raise TrainError(Diagnostic(
            f"--resume: {path} was trained from another spec or parameters", None,
            expected=f"{run.graph.name} {dict(run.graph.params)} at {list(run.graph.input_shape)}",
            found=f"{state['spec']} {state['params']} at {state['input']}",
            hint="the same SPEC, --set and --input as the run that wrote it"))
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    if run.scheduler is not None and state["scheduler"] is not None:
        run.scheduler.load_state_dict(state["scheduler"])
    run.scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["rng"])
    run.history.extend(state["history"])
    done = state["epoch"]
    log(f"resumed from {path} after epoch {done}"
        + ("" if done < run.config.epochs else f"; nothing left to do (--epochs {run.config.epochs})"))
