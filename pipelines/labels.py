"""Class names that travel in a pipeline's saved config (`id2label` in model_index.json)."""

from __future__ import annotations

from typing import Iterable

import torch

from .inputs import flatten_labels, repeat_per_image
from .networks import class_embeddings


def names_of(label: str) -> list[str]:
    """The names of one class: an ImageNet-style label lists synonyms separated by commas ("tench, Tinca tinca")."""
    return [name.strip() for name in label.split(",") if name.strip()]


def label_ids_by_name(id2label: dict[int, str]) -> dict[str, int]:
    """Every name → its class id, sorted: each full label and each of its synonyms, as diffusers' DiTPipeline.labels
    (where two classes share a synonym, the later id wins there and here)."""
    by_name = {}
    for idx, label in id2label.items():
        for name in [label, *names_of(label)]:
            by_name[name] = int(idx)
    return dict(sorted(by_name.items()))


class ClassLabelMixin:
    """`get_label_ids` / `labels` like diffusers' DiTPipeline, backed by the registered `id2label`."""

    @property
    def id2label(self) -> dict[int, str]:
        mapping = self.config.get("id2label") or {}
        return {int(k): v for k, v in mapping.items()}

    @property
    def labels(self) -> dict[str, int]:
        """Name → class id: every label of `id2label` and each of its comma-separated synonyms."""
        return label_ids_by_name(self.id2label)

    @property
    def num_classes(self) -> int:
        """Classes that can be asked for: those of `id2label`, else every class embedding of the network."""
        return len(self.id2label) or int(class_embeddings(self.network.config) or 0)

    def get_label_ids(self, label: str | Iterable[str]) -> list[int]:
        """Class ids of class names (full labels or synonyms, see `labels`)."""
        names = [label] if isinstance(label, str) else list(label)
        labels = self.labels
        if not labels:
            raise ValueError(
                f"this model has no id2label, so it knows no class names: pass class ids 0..{self.num_classes - 1}"
            )
        unknown = [n for n in names if n not in labels]
        if unknown:
            shown = sorted(labels) if len(labels) <= 50 else sorted(labels)[:50] + ["…"]
            raise ValueError(
                f"unknown class name(s) {unknown}; valid names ({len(labels)}, see `pipe.labels`): {shown}"
            )
        return [labels[n] for n in names]

    def _class_tensor(self, class_labels, device, num_images_per_prompt: int = 1) -> torch.Tensor:
        """Ids, names, tensors or nested lists of them → a flat tensor of ids, each repeated per image."""
        flat = flatten_labels(class_labels)
        ids = [self.get_label_ids(c)[0] if isinstance(c, str) else int(c) for c in flat]
        bad = [i for i in ids if not 0 <= i < self.num_classes]
        if bad:
            raise ValueError(f"class id(s) {bad} out of range 0..{self.num_classes - 1}")
        return torch.tensor(repeat_per_image(ids, num_images_per_prompt), device=device, dtype=torch.long)


def postprocess(images: torch.Tensor, output_type: str):
    """[-1, 1] tensors → "pt" (N,C,H,W in [0,1]), "np" (N,H,W,C float) or "pil"."""
    import numpy as np
    from PIL import Image

    images = (images.float() / 2 + 0.5).clamp(0, 1)
    if output_type == "pt":
        return images
    arr = images.permute(0, 2, 3, 1).cpu().numpy()
    if output_type == "np":
        return arr
    if output_type == "pil":
        arr = (arr * 255).round().astype(np.uint8)
        return [Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a) for a in arr]
    raise ValueError(f"output_type must be 'pil', 'np' or 'pt', got {output_type!r}")
