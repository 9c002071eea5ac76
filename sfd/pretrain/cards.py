"""Model cards (README.md) for the embedded assets, written from the metrics.json their scripts leave."""

from __future__ import annotations

import json
from pathlib import Path

_CARDS = {
    "classifier": (
        "Fashion-MNIST image classifier",
        "image-classification",
        "A `transformers` ResNet (basic blocks, hidden sizes 32/64/128, one block per stage, 1 input channel) "
        "trained with AdamW, one-cycle learning rate, label smoothing 0.05 and horizontal flips. "
        "Loads with `AutoModelForImageClassification.from_pretrained`; `id2label` holds the ten class names; "
        "inputs are 28×28 grayscale images normalised to [-1, 1] (see preprocessor_config.json).",
        "python -m sfd.pretrain.classifier --output_dir assets/classifier",
        [
            ("test_accuracy", "test accuracy"),
            ("test_images", "test images"),
            ("epochs", "epochs"),
            ("seed", "seed"),
            ("train_minutes", "training minutes (2 CPU cores, shared)"),
        ],
    ),
    "classifier-convnext": (
        "Fashion-MNIST image classifier, second judge",
        "image-classification",
        "A `transformers` ConvNeXt (2×2 patch stem, hidden sizes 32/64/128, one block per stage, 1 input channel) "
        "trained with AdamW, one-cycle learning rate, label smoothing 0.05 and random shifts of up to 2 pixels, from "
        "seed 1: a judge independent of `assets/classifier` in architecture, seed and augmentation. Loads with "
        "`AutoModelForImageClassification.from_pretrained`; inputs are 28×28 grayscale images in [-1, 1].",
        "python -m sfd.pretrain.classifier --recipe convnext --output_dir assets/classifier-convnext",
        [
            ("test_accuracy", "test accuracy"),
            ("test_images", "test images"),
            ("epochs", "epochs"),
            ("seed", "seed"),
            ("train_minutes", "training minutes (2 CPU cores, shared)"),
        ],
    ),
    "clip": (
        "Small Fashion-MNIST CLIP",
        "zero-shot-image-classification",
        "A `transformers.CLIPModel` (3-layer text and vision transformers, width 128, 4×4 patches of 28×28 "
        "grayscale images, 64-d projection) with a `CLIPTokenizer` whose byte-level BPE vocabulary is generated "
        "from the byte alphabet and the caption words. Trained contrastively on the 60,000 training images with "
        'captions from 12 templates ("a photo of a {class}", …), every same-class pair counted as a positive. '
        "The offline stand-in for a Hub CLIP.",
        "python -m sfd.pretrain.clip --output_dir assets/clip",
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


def write_card(folder: str | Path, kind: str) -> Path:
    folder = Path(folder)
    title, tag, body, command, keys = _CARDS[kind]
    metrics = json.loads((folder / "metrics.json").read_text())
    rows = "\n".join(f"| {label} | {metrics[k]} |" for k, label in keys if k in metrics)
    text = (
        f"---\nlibrary_name: transformers\ntags: [{tag}, fashion-mnist]\n---\n# {title}\n\n{body}\n\n"
        f"Reproduce: `{command}` (reads Debian's `dataset-fashion-mnist`).\n\n## Measured\n\n"
        f"| figure | value |\n|---|---|\n{rows}\n"
    )
    (folder / "README.md").write_text(text)
    return folder / "README.md"
