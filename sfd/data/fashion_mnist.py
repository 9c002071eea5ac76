"""Fashion-MNIST, read from the IDX files that Debian's `dataset-fashion-mnist` package installs."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch

# The dataset's own label names, in label-id order. Models carry their names in their saved
# config; this list is only used when an asset is first trained on the dataset.
FASHION_MNIST_CLASSES = (
    "t-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)

DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _open(path: Path):
    for candidate in (path, path.with_name(path.name + ".gz")):
        if candidate.exists():
            return gzip.open(candidate, "rb") if candidate.suffix == ".gz" else open(candidate, "rb")
    raise FileNotFoundError(
        f"Fashion-MNIST file not found: {path}(.gz). Install it with "
        "`apt-get install dataset-fashion-mnist` or pass --data_root / set SFD_FASHION_MNIST."
    )


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (the MNIST container format: magic, dims, then raw big-endian data)."""
    with _open(path) as f:
        data = f.read()
    zero, dtype_code, ndim = data[0] * 256 + data[1], data[2], data[3]
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    dims = np.frombuffer(data[4 : 4 + 4 * ndim], dtype=">u4").astype(int)
    return np.frombuffer(data[4 + 4 * ndim :], dtype=np.uint8).reshape(dims)


def load_fashion_mnist(split: str = "train", root: str | os.PathLike | None = None):
    """Images as a float tensor in [-1, 1] of shape (N, 1, 28, 28) and integer labels (N,)."""
    if split not in _FILES:
        raise ValueError(f"split must be one of {sorted(_FILES)}, got {split!r}")
    root = Path(root or os.environ.get("SFD_FASHION_MNIST", DEFAULT_ROOT))
    images_name, labels_name = _FILES[split]
    images = read_idx(root / images_name)
    labels = read_idx(root / labels_name)
    x = torch.from_numpy(images.copy()).float().div(127.5).sub(1.0).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y
