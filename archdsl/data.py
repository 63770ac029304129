"""The datasets of ``archdsl train``: torchvision's own readers and v2 transforms, sized to a spec.

Three sources, read by torchvision's dataset classes from their usual on-disk formats:

* ``fashion-mnist``: ``<root>/FashionMNIST/raw/`` with the four IDX files (gzipped files are
  extracted there first, as torchvision's download does);
* ``cifar10``: ``<root>/cifar-10-batches-py/`` with the pickled batches. torchvision checks each
  file's MD5 against the official release; here only their presence is checked, so that a subset
  or a re-packed copy in the same format loads (a malformed file still fails, when it is read);
* ``imagefolder:DIR``: ``DIR/train/<class>/*`` and ``DIR/val/<class>/*`` (or ``DIR/test/``).

Every image is converted to the spec's channels (grayscale or RGB), resized to its height and
width, optionally augmented (the course's random crop, flip and colour jitter) and scaled to
[0, 1] (``--normalize imagenet`` then standardises it as torchvision's pretrained weights expect).
Anything wrong with the data is a :class:`DataError` that says what was expected and how to get it.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from .errors import ArchError, Diagnostic, UsageError, did_you_mean

__all__ = [
    "AUGMENTATIONS",
    "DATASETS",
    "NORMALIZATIONS",
    "DataError",
    "DataSource",
    "Datasets",
    "open_datasets",
    "parse_data",
    "prepare",
]

DATASETS = ("fashion-mnist", "cifar10", "imagefolder:DIR")
AUGMENTATIONS = ("flip", "crop", "resized-crop", "jitter")
NORMALIZATIONS = ("none", "imagenet")

# torchvision's pretrained weights expect this (its weights' transforms: ImageNet mean and std).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

FASHION_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte")
CIFAR_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
               "test_batch", "batches.meta")
# What reading a malformed file raises in torchvision's readers (IDX, pickle, PIL).
READ_ERRORS = (OSError, EOFError, ValueError, RuntimeError, AssertionError, KeyError, IndexError,
               TypeError, pickle.UnpicklingError)


class DataError(ArchError):
    """The dataset is missing, malformed, or does not fit the spec (exit 1)."""


@dataclass(frozen=True)
class DataSource:
    """Where the data is: ``kind`` is ``fashion-mnist``, ``cifar10`` or ``imagefolder``."""

    kind: str
    root: Path

    @property
    def label(self) -> str:
        return {"fashion-mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}.get(self.kind, "ImageFolder")

    @property
    def folder(self) -> Path:
        """The directory the files are read from."""
        if self.kind == "fashion-mnist":
            return self.root / "FashionMNIST" / "raw"
        if self.kind == "cifar10":
            return self.root / "cifar-10-batches-py"
        return self.root

    @property
    def native_size(self) -> tuple[int, int] | None:
        return {"fashion-mnist": (28, 28), "cifar10": (32, 32)}.get(self.kind)


@dataclass(frozen=True)
class Datasets:
    train: Any
    test: Any
    classes: tuple[str, ...]
    source: DataSource

    def describe(self) -> str:
        return (f"{self.source.label} from {self.source.folder}: {len(self.train):,} training and "
                f"{len(self.test):,} test images, {len(self.classes)} classes")


def parse_data(text: str, root: str | Path) -> DataSource:
    """``--data`` and ``--root`` as a :class:`DataSource` (a UsageError for an unknown name)."""
    if text.startswith("imagefolder:"):
        directory = text.split(":", 1)[1]
        if not directory:
            raise UsageError(Diagnostic("--data imagefolder: needs a directory", None,
                                        expected="imagefolder:DIR", found=text,
                                        hint="e.g. --data imagefolder:data/hotdog"))
        return DataSource("imagefolder", Path(directory))
    if text in ("fashion-mnist", "cifar10"):
        return DataSource(text, Path(root))
    names = ("fashion-mnist", "cifar10", "imagefolder")
    raise UsageError(Diagnostic(f"--data: unknown dataset `{text}`", None,
                                expected="one of: " + ", ".join(DATASETS), found=text,
                                hint=did_you_mean(text, names)))


def prepare(source: DataSource, download: bool) -> None:
    """Make the files readable: download them (``download``) or extract gzipped IDX files.

    This writes into the data directory, so under torchrun one process per machine runs it.
    """
    if source.kind == "fashion-mnist":
        _prepare_fashion_mnist(source, download)
    elif source.kind == "cifar10":
        _prepare_cifar10(source, download)
    elif download:
        raise UsageError(Diagnostic("--download: an ImageFolder directory cannot be downloaded",
                                    None, hint="--download works with fashion-mnist and cifar10"))


def _prepare_fashion_mnist(source: DataSource, download: bool) -> None:
    from torchvision.datasets import FashionMNIST
    from torchvision.datasets.utils import extract_archive

    folder = source.folder
    for name in FASHION_FILES:
        packed = folder / f"{name}.gz"
        if not (folder / name).is_file() and packed.is_file():
            try:
                extract_archive(str(packed), str(folder))
            except READ_ERRORS as error:
                raise _malformed(source, f"{packed} cannot be extracted: {error}") from None
    if download:
        _download(lambda: FashionMNIST(str(source.root), train=True, download=True), source)
    missing = [name for name in FASHION_FILES if not (folder / name).is_file()]
    if missing:
        raise _missing(source, [f"{name}[.gz]" for name in missing],
                       "the four files of https://github.com/zalandoresearch/fashion-mnist")


def _prepare_cifar10(source: DataSource, download: bool) -> None:
    from torchvision.datasets import CIFAR10

    if download:
        _download(lambda: CIFAR10(str(source.root), train=True, download=True), source)
    missing = [name for name in CIFAR_FILES if not (source.folder / name).is_file()]
    if missing:
        raise _missing(source, missing, "the python version of CIFAR-10 "
                       "(https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz), unpacked")


def _download(fetch: Any, source: DataSource) -> None:
    try:
        fetch()
    except (OSError, RuntimeError) as error:  # urllib's URLError is an OSError
        reason = " ".join(str(error).split())  # torchvision's message spans lines
        raise DataError(Diagnostic(f"--download: {source.label} could not be downloaded: {reason}",
                                   None, hint=f"put the files in {source.folder} yourself")) from None


def _missing(source: DataSource, missing: list[str], what: str) -> DataError:
    return DataError(Diagnostic(
        f"{source.label} is not in {source.folder}", None,
        expected=", ".join(missing), found="no such files" if not source.folder.is_dir()
        else "the directory without them",
        hint=f"pass --download to fetch it with torchvision, or put there {what}; "
             "--root DIR says where the data is"))


def _malformed(source: DataSource, what: str) -> DataError:
    return DataError(Diagnostic(f"{source.label} in {source.folder} is malformed: {what}", None,
                                hint="remove the files and fetch them again (--download)"))


def open_datasets(source: DataSource, input_shape: tuple[int, ...], *, augment: tuple[str, ...] = (),
                  normalize: str = "none") -> Datasets:
    """The training and test sets of ``source``, transformed to ``input_shape`` (C, H, W)."""
    channels = _channels(input_shape)
    train_tf = _transform(input_shape, channels, source, augment, normalize)
    test_tf = _transform(input_shape, channels, source, (), normalize)
    try:
        if source.kind == "imagefolder":
            return _image_folder(source, train_tf, test_tf)
        from torchvision.datasets import FashionMNIST

        reader = FashionMNIST if source.kind == "fashion-mnist" else _CIFAR10Files()
        train = reader(str(source.root), train=True, transform=train_tf)
        test = reader(str(source.root), train=False, transform=test_tf)
        train[0], test[0]  # a malformed image fails here, not in the training loop
    except DataError:
        raise
    except READ_ERRORS as error:
        raise _malformed(source, f"{type(error).__name__}: {error}") from None
    return Datasets(train, test, tuple(str(c) for c in train.classes), source)


def _channels(input_shape: tuple[int, ...]) -> int:
    if len(input_shape) != 3 or input_shape[0] not in (1, 3):
        shape = "x".join(map(str, input_shape))
        raise DataError(Diagnostic(
            f"the spec's input {shape} is not an image the data can be resized to", None,
            expected="CxHxW with C = 1 (grayscale) or 3 (RGB)", found=shape,
            hint="--input 1x28x28 or 3x32x32 (for example), or --set in_channels=1 / 3"))
    return input_shape[0]


def _transform(input_shape: tuple[int, ...], channels: int, source: DataSource,
               augment: tuple[str, ...], normalize: str) -> Any:
    import torch
    from torchvision.transforms import v2

    size = tuple(input_shape[1:])
    steps: list[Any] = [v2.ToImage(), v2.Grayscale(1) if channels == 1 else v2.RGB()]
    if source.native_size != size:
        steps.append(v2.Resize(size, antialias=True))
    steps.extend(_augmentation(name, size) for name in AUGMENTATIONS if name in augment)
    steps.append(v2.ToDtype(torch.float32, scale=True))
    if normalize == "imagenet":
        mean, std = IMAGENET_MEAN, IMAGENET_STD
        if channels == 1:  # one channel: the average of ImageNet's three
            mean, std = (sum(mean) / 3,), (sum(std) / 3,)
        steps.append(v2.Normalize(mean, std))
    return v2.Compose(steps)


def _augmentation(name: str, size: tuple[int, ...]) -> Any:
    """The course's augmentations (d2l 14.1; ``crop`` is the ResNet paper's CIFAR-10 crop)."""
    from torchvision.transforms import v2

    if name == "flip":
        return v2.RandomHorizontalFlip()
    if name == "crop":  # pad by 1/8 of the side and crop back: 4 pixels at 32x32
        return v2.RandomCrop(size, padding=max(1, min(size) // 8))
    if name == "resized-crop":
        return v2.RandomResizedCrop(size, scale=(0.1, 1.0), ratio=(0.5, 2.0), antialias=True)
    return v2.ColorJitter(brightness=0.5, contrast=0.5, saturation=0.5, hue=0.1)


def _CIFAR10Files() -> Any:  # a class factory: torchvision is imported lazily
    from torchvision.datasets import CIFAR10

    class CIFAR10Files(CIFAR10):
        """torchvision's CIFAR-10 reader, checking that the files exist rather than their MD5."""

        train_list: ClassVar = [[name, None] for name, _ in CIFAR10.train_list]
        test_list: ClassVar = [[name, None] for name, _ in CIFAR10.test_list]
        meta: ClassVar = {**CIFAR10.meta, "md5": None}

    return CIFAR10Files


def _image_folder(source: DataSource, train_tf: Any, test_tf: Any) -> Datasets:
    from torchvision.datasets import ImageFolder

    root = source.root
    held_out = next((root / name for name in ("val", "test") if (root / name).is_dir()), None)
    if not (root / "train").is_dir() or held_out is None:
        found = sorted(p.name + "/" for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        raise DataError(Diagnostic(
            f"{root} is not an ImageFolder dataset", None,
            expected=f"{root}/train/<class>/<images> and {root}/val/<class>/<images> (or test/)",
            found=", ".join(found) or ("an empty directory" if root.is_dir() else "no such directory"),
            hint="one subdirectory per class in each of train/ and val/"))
    try:
        train = ImageFolder(str(root / "train"), transform=train_tf)
        test = ImageFolder(str(held_out), transform=test_tf)
    except (FileNotFoundError, OSError) as error:
        raise DataError(Diagnostic(f"{root} is not an ImageFolder dataset: {error}", None,
                                   hint="one subdirectory per class, each with .png/.jpg images"))
    if train.classes != test.classes:
        raise DataError(Diagnostic(
            f"the classes of {root}/train and {held_out} differ", None,
            expected=", ".join(train.classes), found=", ".join(test.classes),
            hint="both need the same class subdirectories"))
    train[0], test[0]  # a malformed image fails here, not in the training loop
    return Datasets(train, test, tuple(train.classes), source)
