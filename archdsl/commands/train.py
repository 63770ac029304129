"""``archdsl train``: train or fine-tune a spec on Fashion-MNIST, CIFAR-10 or an ImageFolder, in
one process or under torchrun (the work is :mod:`archdsl.training`)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

import click

from ..cli import CONTEXT, echo_warnings, load_from_options, spec_options
from ..data import AUGMENTATIONS, NORMALIZATIONS
from ..errors import ArchError
from ..runner import DEVICES
from ..training import OPTIMIZERS, SCHEDULES, Distributed, TrainConfig

__all__ = ["train"]


@click.command("train", context_settings=CONTEXT)
@click.argument("spec", type=click.Path(dir_okay=False))
@spec_options
@click.option("--data", "data", required=True, metavar="fashion-mnist|cifar10|imagefolder:DIR",
              help="The dataset: Fashion-MNIST, CIFAR-10 (under --root), or DIR/train/<class>/* "
                   "with DIR/val/ (or DIR/test/).")
@click.option("--root", default="data", show_default=True, type=click.Path(file_okay=False),
              help="Where fashion-mnist and cifar10 are (torchvision's layout).")
@click.option("--download", is_flag=True, help="Download the dataset with torchvision if missing.")
@click.option("--epochs", type=click.IntRange(1), default=10, show_default=True,
              help="Epochs in all (with --resume: up to this many).")
@click.option("--batch", type=click.IntRange(1), default=128, show_default=True,
              help="Global batch size (split among torchrun's processes).")
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=None,
              help="Learning rate [default: 0.05 for sgd, 0.001 for adamw].")
@click.option("--optimizer", type=click.Choice(OPTIMIZERS), default="sgd", show_default=True)
@click.option("--momentum", type=click.FloatRange(0, 1), default=0.9, show_default=True,
              help="SGD momentum (the course's plain SGD: 0).")
@click.option("--weight-decay", type=click.FloatRange(0), default=0.0, show_default=True)
@click.option("--schedule", type=click.Choice(SCHEDULES), default="none", show_default=True,
              help="Learning-rate schedule, stepped per epoch.")
@click.option("--step-size", type=click.IntRange(1), default=None,
              help="Epochs between the step schedule's decays [default: epochs / 3].")
@click.option("--gamma", type=click.FloatRange(0, 1), default=0.1, show_default=True,
              help="The step schedule's decay factor.")
@click.option("--augment", multiple=True, type=click.Choice(AUGMENTATIONS),
              help="Training augmentation (repeatable): horizontal flip, pad-and-crop, "
                   "random resized crop, colour jitter.")
@click.option("--normalize", type=click.Choice(NORMALIZATIONS), default="none", show_default=True,
              help="Standardise images (imagenet: what torchvision's pretrained weights expect).")
@click.option("--weights", type=click.Path(dir_okay=False),
              help="Start from a state_dict file (torchvision's pretrained files load as they are).")
@click.option("--partial-weights", is_flag=True,
              help="Let --weights miss keys or hold extra ones (reported, not an error).")
@click.option("--freeze", multiple=True, metavar="NAME",
              help="Freeze this layer or scope, e.g. --freeze features (repeatable).")
@click.option("--train-only", multiple=True, metavar="NAME",
              help="Freeze everything but this layer or scope, e.g. --train-only fc (repeatable).")
@click.option("--aux-weight", type=click.FloatRange(0), default=0.3, show_default=True,
              help="Weight of auxiliary heads' losses (GoogLeNet with aux_logits=true).")
@click.option("--amp", is_flag=True, help="Mixed precision (float16 on CUDA, bfloat16 on CPU).")
@click.option("--compile", "use_compile", is_flag=True, help="torch.compile the model first.")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True,
              help="auto is CUDA when present, else CPU (under torchrun: one GPU per process).")
@click.option("--workers", type=click.IntRange(0), default=2, show_default=True,
              help="Data-loading processes per training process.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed for the weights and the shuffling.")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Directory for the checkpoint, history and curves [default: runs/<spec name>].")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.")
@click.option("--overwrite", is_flag=True, help="Start again in an --out that holds a run.")
def train(spec: str, sets: tuple[str, ...], input_shape: str | None, allow_paths: tuple[str, ...],
          max_nodes: int, data: str, root: str, download: bool, epochs: int, batch: int,
          lr: float | None, optimizer: str, momentum: float, weight_decay: float, schedule: str,
          step_size: int | None, gamma: float, augment: tuple[str, ...], normalize: str,
          weights: str | None, partial_weights: bool, freeze: tuple[str, ...],
          train_only: tuple[str, ...], aux_weight: float, amp: bool, use_compile: bool, device: str,
          workers: int, seed: int, out: str | None, resume: bool, overwrite: bool) -> None:
    """Train SPEC's network on real data: the static analysis first, then a progress bar, the
    losses and accuracies per epoch, and in --out a checkpoint, the history (JSON, CSV) and the
    curves (PNG, SVG).

    Under torchrun (`torchrun --nproc-per-node N -m archdsl train ...`) each process trains on its
    share of every batch with DistributedDataParallel; rank 0 alone prints and writes.

    \b
    Examples:
      archdsl train specs/lenet.yaml --data fashion-mnist --root data --download
      archdsl train specs/resnet18.yaml --set in_channels=1 --set num_classes=10 \\
          --input 1x96x96 --data fashion-mnist --lr 0.01 --momentum 0
      archdsl train specs/resnet18.yaml --set num_classes=2 --data imagefolder:data/hotdog \\
          --weights resnet18-f37072fd.pth --train-only fc --normalize imagenet
      torchrun --nproc-per-node 2 -m archdsl train specs/lenet.yaml --data fashion-mnist
    """
    from ..data import parse_data
    from ..training import train as run_training

    dist = Distributed.from_env()
    try:
        graph = load_from_options(spec, sets, input_shape, allow_paths, max_nodes)
        if dist.main:
            echo_warnings(graph)
        config = TrainConfig(
            epochs=epochs, batch=batch, lr=lr, optimizer=optimizer, momentum=momentum,
            weight_decay=weight_decay, schedule=schedule, step_size=step_size, gamma=gamma,
            augment=augment, normalize=normalize, weights=weights, partial_weights=partial_weights,
            freeze=freeze, train_only=train_only, aux_weight=aux_weight, amp=amp,
            compile=use_compile, device=device, out=out or f"runs/{graph.name}", resume=resume,
            overwrite=overwrite, seed=seed, workers=workers, download=download)
        run_training(graph, parse_data(data, root), config, dist=dist,
                     log=click.echo if dist.main else _quiet,
                     progress=_progress_bar if dist.main else None)
    except ArchError as error:
        if dist.main:
            raise
        sys.exit(error.exit_code)  # rank 0 prints the same error once


def _quiet(_line: str) -> None:
    pass


def _progress_bar(items: Iterable[Any], length: int, label: str) -> click.progressbar:
    return click.progressbar(items, length=length, label=label, file=sys.stderr, show_pos=True)
