"""Model cards (README.md) for the embedded assets, written from the metrics.json their scripts leave."""

from __future__ import annotations

import json
from pathlib import Path

_CARDS = {
    "classifier": (
        "{data} image classifier",
        "image-classification",
        "A `transformers` ResNet (basic blocks, hidden sizes 32/64/128, one block per stage, {channels_text}) "
        "trained with AdamW, one-cycle learning rate, label smoothing 0.05 and horizontal flips. "
        "Loads with `AutoModelForImageClassification.from_pretrained`; `id2label` holds the {classes} class names; "
        "inputs are {size} {colour} images normalised to [-1, 1] (see preprocessor_config.json).",
        "python -m sfd.pretrain.classifier{dataset_flag} --output_dir {output_dir}",
        [
            ("test_accuracy", "test accuracy"),
            ("test_images", "test images"),
            ("epochs", "epochs"),
            ("seed", "seed"),
            ("train_minutes", "training minutes (2 CPU cores, shared)"),
        ],
    ),
    "classifier-convnext": (
        "{data} image classifier, second judge",
        "image-classification",
        "A `transformers` ConvNeXt (2×2 patch stem, hidden sizes 32/64/128, one block per stage, {channels_text}) "
        "trained with AdamW, one-cycle learning rate, label smoothing 0.05 and random shifts of up to 2 pixels, from "
        "seed 1: a judge independent of `assets/classifier` in architecture, seed and augmentation. Loads with "
        "`AutoModelForImageClassification.from_pretrained`; inputs are {size} {colour} images in [-1, 1].",
        "python -m sfd.pretrain.classifier --recipe convnext{dataset_flag} --output_dir {output_dir}",
        [
            ("test_accuracy", "test accuracy"),
            ("test_images", "test images"),
            ("epochs", "epochs"),
            ("seed", "seed"),
            ("train_minutes", "training minutes (2 CPU cores, shared)"),
        ],
    ),
    "clip": (
        "Small {data} CLIP",
        "zero-shot-image-classification",
        "A `transformers.CLIPModel` (3-layer text and vision transformers, width 128, {patch}×{patch} patches of {size} "
        "{colour} images, 64-d projection) with a `CLIPTokenizer` whose byte-level BPE vocabulary is generated "
        "from the byte alphabet and the caption words. Trained contrastively on {train_images} with "
        'captions from 12 templates ("a photo of a {{class}}", …), every same-class pair counted as a positive. '
        "The offline stand-in for a Hub CLIP.",
        "python -m sfd.pretrain.clip{dataset_flag} --output_dir {output_dir}",
        [
            ("zero_shot_accuracy", "zero-shot test accuracy"),
            ("prompt", "prompt"),
            ("test_images", "test images"),
            ("steps", "steps"),
            ("seed", "seed"),
            ("train_minutes", "training minutes (2 CPU cores, shared)"),
        ],
    ),
}


def write_card(
    folder: str | Path,
    kind: str,
    dataset: str | None = None,
    output_dir: str | None = None,
    image_shape: tuple[int, int, int] = (1, 28, 28),
    num_classes: int = 10,
    patch: int = 4,
    data_flags: str | None = None,
) -> Path:
    """README.md in `folder` from its metrics.json: the Fashion-MNIST asset's card when `dataset` is None (the
    default), else the same recipe's card for that dataset (`--dataset`), with its image shape and class count;
    `data_flags`: the options that name the data in the card's command (default: `--dataset DATASET`)."""
    folder = Path(folder)
    title, tag, body, command, keys = _CARDS[kind]
    channels, height, width = image_shape
    facts = dict(
        data="Fashion-MNIST" if dataset is None else f"`{dataset}`",
        channels_text=f"{channels} input channel" + ("s" if channels > 1 else ""),
        classes="ten" if num_classes == 10 else str(num_classes),
        size=f"{height}×{width}",
        colour="grayscale" if channels == 1 else "RGB",
        patch=patch,
        train_images="the 60,000 training images" if dataset is None else f"the training split of `{dataset}`",
        dataset_flag="" if dataset is None else data_flags or f" --dataset {dataset}",
        output_dir=f"assets/{kind}" if dataset is None else output_dir or f"outputs/{kind}",
    )
    metrics = json.loads((folder / "metrics.json").read_text())
    rows = "\n".join(f"| {label} | {metrics[k]} |" for k, label in keys if k in metrics)
    source = "Debian's `dataset-fashion-mnist`" if dataset is None else f"`{dataset}` through `datasets`"
    tags = f"[{tag}, fashion-mnist]" if dataset is None else f"[{tag}]"
    text = (
        f"---\nlibrary_name: transformers\ntags: {tags}\n---\n# {title.format(**facts)}\n\n{body.format(**facts)}\n\n"
        f"Reproduce: `{command.format(**facts)}` (reads {source}).\n\n## Measured\n\n"
        f"| figure | value |\n|---|---|\n{rows}\n"
    )
    (folder / "README.md").write_text(text)
    return folder / "README.md"
