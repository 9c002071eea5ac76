"""Real images measured by the judge: the reference for FID and for the forget-accuracy floor.

The reference file (default: `assets/fid_reference.safetensors`) holds the classifier's features of real images,
their labels and the classifier's predictions of them. `sfd-eval --make-reference` writes it: of the Fashion-MNIST test
set, of a folder of class sub-folders, or of any image-classification dataset (`--dataset`, `sfd.data.image_datasets`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from ..core.paths import DEFAULT_CLASSIFIER, DEFAULT_REFERENCE_STATS
from ..core.spec import ForgetSpec
from ..data.fashion_mnist import load_fashion_mnist
from ..data.image_datasets import ImageSizeError, load_image_dataset
from .judges import ImageClassifierJudge, classify


def load_reference(path=DEFAULT_REFERENCE_STATS) -> dict[str, torch.Tensor]:
    """The reference images' classifier "features", their "labels" and (in files made since the floor was added) the
    classifier's "predictions"."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"FID reference features not found: {path} (make them with `sfd-eval --make-reference`)"
        )
    return load_file(str(path))


def load_reference_features(path=DEFAULT_REFERENCE_STATS) -> tuple[torch.Tensor, torch.Tensor]:
    data = load_reference(path)
    return data["features"], data["labels"]


def load_reference_predictions(path=DEFAULT_REFERENCE_STATS) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(true labels, the classifier's predicted labels) of the reference images; None for a reference file made
    before predictions were recorded (or none at all)."""
    if not Path(path).exists():
        return None
    data = load_reference(path)
    return (data["labels"], data["predictions"]) if "predictions" in data else None


def forget_accuracy_floor(
    ref_labels: torch.Tensor, ref_predictions: torch.Tensor, spec: ForgetSpec, label_map: dict[int, int]
) -> float:
    """The forget accuracy of a perfect eraser that draws real images of the override class(es): the share the
    classifier labels as the forgotten class, averaged as the override is drawn (uniformly over the remaining
    classes for `random`, over the pool for `far`) and over the forgotten classes."""
    rates = [
        (ref_predictions[ref_labels == label_map[c]] == label_map[f]).double().mean()
        for f in spec.forget
        for c in spec.override_classes
    ]
    return float(torch.stack(rates).mean())


def make_reference(
    classifier=DEFAULT_CLASSIFIER,
    out=DEFAULT_REFERENCE_STATS,
    data_root=None,
    image_dir: str | None = None,
    dataset: str | None = None,
    split: str = "test",
    image_column: str | None = None,
    label_column: str | None = None,
) -> Path:
    """Classifier features of real images, saved for FID, with their labels and the classifier's predictions of
    them (for the forget-accuracy floor): the 10,000 Fashion-MNIST test images, the images under `image_dir`
    (one sub-folder per class, named as the classifier's labels), or the `split` of an image-classification
    `dataset` (a Hub id, `imagefolder` or `save_to_disk` folder), its class names matched to the classifier's."""
    if image_dir and dataset:
        raise ValueError("give an image folder or a dataset for the reference, not both")
    judge = ImageClassifierJudge.from_pretrained(classifier)
    if dataset:
        x, y = load_dataset_for_judge(dataset, split, judge, image_column, label_column)
        source = f"{dataset} {split}"
    elif image_dir:
        x, y = load_image_folder(image_dir, judge)
        source = str(image_dir)
    else:
        x, y = load_fashion_mnist("test", data_root)
        x, source = (x + 1) / 2, "fashion-mnist test"
    probs, feats = classify(judge, x)
    tmp = Path(str(out) + ".tmp")
    save_file(
        {"features": feats.contiguous(), "labels": y, "predictions": probs.argmax(-1)},
        str(tmp),
        metadata={"source": source},
    )
    os.replace(tmp, out)
    return Path(out)


def load_dataset_for_judge(
    dataset: str, split: str, judge: ImageClassifierJudge, image_column=None, label_column=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images in [0, 1] with the judge's channels (as stored, or at the judge's input size when they differ in size)
    and classifier label ids of one split of `dataset`; every class of the dataset must be one of the classifier's
    labels."""
    channels = judge.model.config.num_channels
    try:  # the judge resizes each batch itself: keep the stored size (a 224-pixel judge would need 15× the memory)
        x, y, names = load_image_dataset(dataset, split, image_column, label_column, None, channels)
    except ImageSizeError:
        if judge.size is None:
            raise
        x, y, names = load_image_dataset(dataset, split, image_column, label_column, judge.size, channels)
    to_judge = judge.match_labels(dict(enumerate(names)))
    return (x + 1) / 2, torch.tensor([to_judge[int(c)] for c in y])


def load_image_folder(image_dir, judge: ImageClassifierJudge) -> tuple[torch.Tensor, torch.Tensor]:
    """Images in [0, 1] and classifier label ids from `image_dir/<class name>/*.png|jpg`."""
    root = Path(image_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    by_name = {v.lower(): k for k, v in judge.id2label.items()}
    mode = "L" if judge.model.config.num_channels == 1 else "RGB"
    size = judge.size
    images, labels = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name.lower() not in by_name:
            raise ValueError(
                f"folder {folder.name!r} is not a class of the classifier; its labels are {sorted(by_name)}"
            )
        for f in sorted(folder.iterdir()):
            if f.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".webp"):
                img = Image.open(f).convert(mode)
                size = size or img.size[::-1]
                img = img.resize(size[::-1])
                arr = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0)
                images.append(arr[None] if arr.dim() == 2 else arr.permute(2, 0, 1))
                labels.append(by_name[folder.name.lower()])
    if not images:
        raise ValueError(f"no images under {root}/<class name>/")
    return torch.stack(images), torch.tensor(labels)
