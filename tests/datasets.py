"""Small datasets in the real on-disk formats, written by the tests (no network here).

Each class is a bright square at its own place of a grid on a noisy background, so a small network
separates the classes within a few epochs. The files are what torchvision's readers expect:
Fashion-MNIST's gzipped IDX files in ``<root>/FashionMNIST/raw/``, CIFAR-10's pickled batches in
``<root>/cifar-10-batches-py/``, and an ImageFolder tree of PNGs.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
from PIL import Image

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck")


def class_images(count: int, size: int, channels: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` uint8 images (N x H x W x C) and their labels: class k is a bright square in cell
    k of a 4 x 4 grid over a noisy background (balanced classes, shuffled)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % classes
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(count, size, size, channels), dtype=np.uint8)
    cell = size // 4
    for i, label in enumerate(labels):
        row, col = divmod(int(label), 4)
        images[i, row * cell:(row + 1) * cell, col * cell:(col + 1) * cell, :] += 180
    return images, labels.astype(np.uint8)


def _idx(array: np.ndarray) -> bytes:
    """IDX (http://yann.lecun.com/exdb/mnist/): zero, zero, type 0x08 (ubyte), dims, sizes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_fashion_mnist(root: Path, train: int = 400, test: int = 200, seed: int = 0) -> Path:
    """Gzipped IDX files in ``root/FashionMNIST/raw`` (as the download leaves them, unextracted)."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, count, offset in (("train", train, 0), ("t10k", test, 1)):
        images, labels = class_images(count, 28, 1, 10, seed + offset)
        (raw / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(images[..., 0])))
        (raw / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(labels)))
    return raw


def write_cifar10(root: Path, train: int = 250, test: int = 100, seed: int = 0) -> Path:
    """CIFAR-10's python batches: five training batches, a test batch and batches.meta."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = class_images(train, 32, 3, 10, seed)
    for k, part in enumerate(np.array_split(np.arange(train), 5), start=1):
        _pickle(folder / f"data_batch_{k}", images[part], labels[part])
    images, labels = class_images(test, 32, 3, 10, seed + 1)
    _pickle(folder / "test_batch", images, labels)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": list(CIFAR_CLASSES), "num_vis": 3072}, fh, protocol=2)
    return folder


def _pickle(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    # rows of 3072 bytes: the red plane, then green, then blue (N x C x H x W flattened)
    data = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    with open(path, "wb") as fh:
        pickle.dump({"data": data, "labels": [int(v) for v in labels]}, fh, protocol=2)


def write_image_folder(root: Path, classes: tuple[str, ...] = ("cat", "dog", "fish"), per_class: int = 8,
                       size: int = 40, held_out: str = "val", seed: int = 0) -> Path:
    """``root/train/<class>/*.png`` and ``root/<held_out>/<class>/*.png`` (RGB images)."""
    for split, offset in (("train", 0), (held_out, 1)):
        images, labels = class_images(per_class * len(classes), size, 3, len(classes), seed + offset)
        for i, (image, label) in enumerate(zip(images, labels)):
            folder = root / split / classes[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"{i:04d}.png")
    return root
