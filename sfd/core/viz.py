"""Sample grids: one row per class, forgotten rows marked with a red bar on the left."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from .prompts import concept_pattern


def class_grid(
    images: torch.Tensor,
    per_row: int,
    marked_rows: Sequence[int] = (),
    scale: int = 2,
    row_names: Sequence[str] | None = None,
) -> Image.Image:
    """`images` in [0, 1], (rows·per_row, C, H, W), row-major; returns an RGB grid."""
    n, c, h, w = images.shape
    rows = n // per_row
    arr = (images.clamp(0, 1) * 255).round().byte().cpu()
    if c == 1:
        arr = arr.expand(-1, 3, -1, -1)
    pad, bar = 2, 6
    label_w = 90 if row_names else 0
    grid = np.zeros((rows * (h + pad) + pad, label_w + bar + per_row * (w + pad) + pad, 3), dtype=np.uint8)
    grid[:] = 40
    for i in range(rows):
        y = pad + i * (h + pad)
        if i in set(marked_rows):
            grid[y : y + h, label_w : label_w + bar - 1] = (220, 30, 30)
        for j in range(per_row):
            x = label_w + bar + pad + j * (w + pad)
            grid[y : y + h, x : x + w] = arr[i * per_row + j].permute(1, 2, 0).numpy()
    img = Image.fromarray(grid).resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST)
    if row_names:
        draw = ImageDraw.Draw(img)
        for i, name in enumerate(row_names):
            draw.text(
                (4, (pad + i * (h + pad)) * scale + 4),
                name[:14],
                fill=(255, 80, 80) if i in set(marked_rows) else (230, 230, 230),
            )
    return img


def shrink(images: torch.Tensor, size: int = 128) -> torch.Tensor:
    """Images larger than `size` px on their longer side, scaled down to it (grids of 256 px samples stay small)."""
    longest = max(images.shape[-2:])
    if longest <= size:
        return images
    return torch.nn.functional.interpolate(images, scale_factor=size / longest, mode="bilinear", antialias=True)


def grid_classes(ids: Sequence[int], forget: Sequence[int], max_rows: int = 10) -> list[int]:
    """The classes a grid of at most `max_rows` rows shows: up to half that many forgotten ones and the first remaining
    ones, in id order."""
    shown = list(forget)[: max_rows // 2]
    return sorted(shown + [i for i in ids if i not in forget][: max_rows - len(shown)])


def prompt_label(prompt: str, concepts=()) -> str:
    """A short row name for a prompt: the concept it names, else its end."""
    named = [c for c in concepts if concept_pattern([c]).search(prompt)]
    return max(named, key=len) if named else prompt[-14:]
