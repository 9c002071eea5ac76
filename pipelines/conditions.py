"""Text conditions as one tensor per row, whatever the teacher family needs besides the token states.

SDXL's UNet also takes the pooled embedding of its second text encoder and six size/crop "time ids"; SD3's
transformer takes a pooled projection of its CLIP encoders. Everything in SFD treats a condition as one tensor per
row (it is drawn, masked with `torch.where`, concatenated for guidance and copied), so these extra vectors ride as
extra token rows after the text encoder's states: (B, L, D) hidden states and (B, E) extras pack into
(B, L + ⌈E / D⌉, D), the extras flattened and zero-padded into the last rows. Only the network call unpacks them
(`networks.predict`), and the network's config says how many values there are (`extra_condition_width`).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

SDXL_TIME_IDS = 6  # (original height, width, crop top, left, target height, width), as SDXL base is conditioned


def is_sdxl_unet(config) -> bool:
    """A UNet2DConditionModel with SDXL's "text_time" micro-conditioning (pooled text embedding + time ids)."""
    return config.get("addition_embed_type") == "text_time"


def is_sd3_transformer(config) -> bool:
    """An MMDiT (diffusers' SD3Transformer2DModel): joint attention over image and text tokens, pooled projections."""
    return config.get("joint_attention_dim") is not None and config.get("pooled_projection_dim") is not None


def extra_condition_width(config) -> int:
    """E, the values a text network takes besides the token states: SDXL's pooled embedding and its time ids, SD3's
    pooled projection, or none (Stable Diffusion 1.x / 2.x)."""
    if is_sd3_transformer(config):
        return int(config["pooled_projection_dim"])
    if is_sdxl_unet(config):
        time_embed = int(config["addition_time_embed_dim"])
        pooled = int(config["projection_class_embeddings_input_dim"]) - SDXL_TIME_IDS * time_embed
        return pooled + SDXL_TIME_IDS
    return 0


def pack_condition(hidden: torch.Tensor, extras: Optional[torch.Tensor]) -> torch.Tensor:
    """(B, L, D) token states and (B, E) extras → (B, L + ⌈E/D⌉, D); no extras: the states unchanged."""
    if extras is None or extras.shape[-1] == 0:
        return hidden
    n, width = hidden.shape[0], hidden.shape[-1]
    rows = math.ceil(extras.shape[-1] / width)
    padded = F.pad(extras.to(hidden), (0, rows * width - extras.shape[-1]))
    return torch.cat([hidden, padded.view(n, rows, width)], dim=1)


def unpack_condition(cond: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of `pack_condition` for E = `width` extras: (token states, extras)."""
    rows = math.ceil(width / cond.shape[-1])
    return cond[:, :-rows], cond[:, -rows:].flatten(1)[:, :width]
