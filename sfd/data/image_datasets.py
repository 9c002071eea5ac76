"""Any Hugging Face `datasets` image-classification dataset as tensors, for the project's own recipes.

`load_images(None, split)` is Fashion-MNIST from Debian's package: the offline default the shipped assets were
trained on. `load_images(NAME, split)` reads NAME as a folder written by `save_to_disk`, a folder of class
sub-folders (the `imagefolder` layout, optionally inside train/ and test/ folders) or a Hub id
(`uoft-cs/cifar10`). The image column (feature type `Image`) and the label column (`ClassLabel`) are found by
their types unless named; the class names are the `ClassLabel`'s. Images come back in [-1, 1] as (N, C, H, W),
like `load_fashion_mnist`, with C = 1 when every image is grayscale, else 3.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist

FASHION_MNIST = "fashion-mnist"  # how a model card or metrics.json names the default data
# a split that a dataset lacks, and the splits that stand in for it (the first one present is used)
SPLIT_FALLBACKS = {"test": ("validation", "valid", "val"), "validation": ("valid", "val", "test")}
_GRAYSCALE_MODES = ("1", "L", "LA", "I", "I;16", "F")
_HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


class ImageSizeError(ValueError):
    """The images of a dataset differ in size and no `image_size` was given to bring them to one."""


def dataset_name(dataset: str | None) -> str:
    """The name a model card or metrics.json records for the data a recipe read."""
    return dataset or FASHION_MNIST


def load_images(
    dataset: str | None,
    split: str,
    data_root=None,
    image_column: str | None = None,
    label_column: str | None = None,
    image_size: int | tuple[int, int] | None = None,
    channels: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """Images in [-1, 1] (N, C, H, W), labels (N,) and class names of `dataset` (None: Fashion-MNIST from Debian's
    package, read from `data_root` when given)."""
    if dataset is not None:
        return load_image_dataset(dataset, split, image_column, label_column, image_size, channels)
    if image_column or label_column:
        raise ValueError("--image_column / --label_column name columns of a --dataset; Fashion-MNIST has none")
    x, y = load_fashion_mnist(split, data_root)
    if channels not in (None, 1):
        x = x.expand(-1, channels, -1, -1).contiguous()
    if image_size is not None and _pair(image_size) != tuple(x.shape[-2:]):
        x = F.interpolate(x, size=_pair(image_size), mode="bilinear", antialias=True, align_corners=False)
    return x, y, FASHION_MNIST_CLASSES


def load_image_dataset(
    name_or_path: str,
    split: str = "train",
    image_column: str | None = None,
    label_column: str | None = None,
    image_size: int | tuple[int, int] | None = None,
    channels: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """One split of an image-classification dataset: images in [-1, 1] (N, C, H, W), labels (N,), class names.

    Args:
        name_or_path: a `save_to_disk` folder, an `imagefolder` directory (class sub-folders) or a Hub dataset id.
        split: "train", "test", …; a missing "test" falls back to "validation" (said on stdout).
        image_column / label_column: default: the only column of feature type `Image` / `ClassLabel`.
        image_size: resize every image to this (int: square); needed when the images differ in size.
        channels: 1 (grayscale) or 3 (RGB); default: 1 when every image is grayscale, else 3.
    """
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    data = _open(name_or_path)
    ds = _pick_split(data, split, name_or_path)
    image_column, label_column = _columns(ds, name_or_path, image_column, label_column)
    class_names = tuple(ds.features[label_column].names)
    if len(ds) == 0:
        raise ValueError(f"split {split!r} of dataset {name_or_path!r} has no rows")
    arrays, labels = [], []
    ds = ds.select_columns([image_column, label_column])
    for start in range(0, len(ds), 1000):
        batch = ds[start : start + 1000]
        arrays += [_to_array(img, image_size, channels) for img in batch[image_column]]
        labels += batch[label_column]
    y = torch.tensor(labels, dtype=torch.long)
    if (y < 0).any():
        raise ValueError(
            f"split {split!r} of dataset {name_or_path!r} has {int((y < 0).sum())} unlabelled rows (label -1); "
            "use a split with labels"
        )
    sizes = sorted({a.shape[:2] for a in arrays})
    if len(sizes) > 1:
        raise ImageSizeError(
            f"the images of dataset {name_or_path!r} differ in size ({', '.join(f'{h}×{w}' for h, w in sizes[:4])}"
            f"{', …' if len(sizes) > 4 else ''}); pass --image_size (image_size=) to resize them to one"
        )
    if channels is None:
        channels = 3 if any(a.ndim == 3 for a in arrays) else 1
    x = torch.from_numpy(np.stack([_with_channels(a, channels) for a in arrays]))
    return x.permute(0, 3, 1, 2).float().div(127.5).sub(1.0).contiguous(), y, class_names


def _open(name_or_path: str):
    """The `Dataset` or `DatasetDict` behind a saved folder, an image folder or a Hub id."""
    import datasets

    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
            return datasets.load_from_disk(str(path))
        return datasets.load_dataset("imagefolder", data_dir=str(path))
    if path.exists():
        raise ValueError(f"dataset {name_or_path!r} is a file; give a dataset folder or a Hub dataset id")
    if not _HUB_ID.match(name_or_path) or name_or_path.startswith((".", "~")):
        raise FileNotFoundError(f"dataset folder not found: {name_or_path}")
    try:
        return datasets.load_dataset(name_or_path)
    except Exception as e:  # offline, no such repository, not a dataset: say what was tried
        raise FileNotFoundError(
            f"dataset {name_or_path!r} is neither a local folder nor loadable from the Hub ({type(e).__name__}: {e})"
        ) from e


def _pick_split(data, split: str, name: str):
    import datasets

    if isinstance(data, datasets.Dataset):  # one split saved on its own: it is the split it was
        data = datasets.DatasetDict({str(data.split or "train"): data})
    if not isinstance(data, datasets.DatasetDict):
        raise ValueError(f"dataset {name!r} is a {type(data).__name__}, not an image-classification dataset")
    if split in data:
        return data[split]
    for other in SPLIT_FALLBACKS.get(split, ()):
        if other in data:
            print(f"dataset {name!r} has no {split!r} split; using its {other!r} split")
            return data[other]
    raise ValueError(f"dataset {name!r} has no {split!r} split; its splits are {sorted(data)}")


def _columns(ds, name: str, image_column: str | None, label_column: str | None) -> tuple[str, str]:
    """The image and label columns: as named (checked), else the only one of feature type Image / ClassLabel."""
    from datasets import ClassLabel, Image

    features = ds.features
    described = ", ".join(f"{k} ({type(f).__name__})" for k, f in features.items())
    chosen = []
    for given, kind, flag in ((image_column, Image, "--image_column"), (label_column, ClassLabel, "--label_column")):
        if given is not None:
            if given not in features:
                raise ValueError(f"dataset {name!r} has no column {given!r}; its columns are: {described}")
            if not isinstance(features[given], kind):
                raise ValueError(
                    f"column {given!r} of dataset {name!r} is {type(features[given]).__name__}, not {kind.__name__}; "
                    f"its columns are: {described}"
                )
            chosen.append(given)
            continue
        found = [k for k, f in features.items() if isinstance(f, kind)]
        if len(found) != 1:
            what = "no" if not found else f"{len(found)}"
            raise ValueError(
                f"dataset {name!r} has {what} columns of type {kind.__name__}; its columns are: {described}. "
                f"Name the one to use with {flag}"
                + (" (an image-classification dataset has an Image and a ClassLabel column)" if not found else "")
            )
        chosen.append(found[0])
    return chosen[0], chosen[1]


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _to_array(img, image_size, channels: int | None) -> np.ndarray:
    """A PIL image as uint8 (H, W) (grayscale) or (H, W, 3), resized to `image_size` when given."""
    from PIL import Image as PILImage

    gray = channels == 1 or (channels is None and img.mode in _GRAYSCALE_MODES)
    img = img.convert("L" if gray else "RGB")
    if image_size is not None and img.size != _pair(image_size)[::-1]:
        img = img.resize(_pair(image_size)[::-1], PILImage.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.uint8)


def _with_channels(a: np.ndarray, channels: int) -> np.ndarray:
    if a.ndim == 2:
        a = a[..., None]
    return np.repeat(a, channels, axis=2) if a.shape[2] != channels else a
