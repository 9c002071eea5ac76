"""Prompts → the condition each text-teacher family was trained with, as diffusers' own pipelines encode them.

- Stable Diffusion 1.x / 2.x: the CLIP text encoder's last hidden states (B, L, D).
- SDXL (`StableDiffusionXLPipeline`): the penultimate hidden states of both CLIP encoders side by side, the second
  encoder's pooled projection and the time ids (height, width, 0, 0, height, width).
- SD3 (`StableDiffusion3Pipeline`): the two CLIP encoders' penultimate states side by side, zero-padded to the T5
  width and followed by the T5 states (zeros without a T5 encoder); the two pooled projections side by side.
The pooled vectors and time ids are packed into extra token rows (`conditions.pack_condition`).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from .conditions import (
    SDXL_TIME_IDS,
    extra_condition_width,
    is_sd3_transformer,
    is_sdxl_unet,
    pack_condition,
    unpack_condition,
)

T5_MAX_LENGTH = 256  # SD3's default `max_sequence_length`


def _tokens(tokenizer, prompts: list[str], max_length: int, device) -> torch.Tensor:
    return tokenizer(
        prompts, padding="max_length", max_length=max_length, truncation=True, return_tensors="pt"
    ).input_ids.to(device)


def clip_states(tokenizer, encoder, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(penultimate hidden states, the encoder's first output: the pooled projection of a CLIPTextModelWithProjection)."""
    out = encoder(_tokens(tokenizer, prompts, tokenizer.model_max_length, encoder.device), output_hidden_states=True)
    return out.hidden_states[-2], out[0]


def sd_condition(pipe, prompts: list[str]) -> torch.Tensor:
    """Stable Diffusion 1.x / 2.x: the text encoder's last hidden states."""
    tok, enc = pipe.tokenizer, pipe.text_encoder
    return enc(_tokens(tok, prompts, tok.model_max_length, enc.device))[0]


def sdxl_condition(pipe, prompts: list[str], height: int, width: int) -> torch.Tensor:
    """SDXL: [h₁ ‖ h₂] penultimate states, the second encoder's pooled projection, time ids (h, w, 0, 0, h, w)."""
    states = [clip_states(tok, enc, prompts) for tok, enc in pipe.text_pairs()]
    hidden = torch.cat([h for h, _ in states], dim=-1)
    pooled = states[-1][1].to(hidden)
    time_ids = hidden.new_tensor([height, width, 0, 0, height, width]).expand(len(prompts), SDXL_TIME_IDS)
    return pack_condition(hidden, torch.cat([pooled, time_ids], dim=-1))


def sd3_condition(pipe, prompts: list[str], max_length: int = T5_MAX_LENGTH) -> torch.Tensor:
    """SD3: [[h_L ‖ h_G] zero-padded to the T5 width ; T5 states] along the tokens, pooled [p_L ‖ p_G]."""
    (h_l, p_l), (h_g, p_g) = (
        clip_states(pipe.tokenizer, pipe.text_encoder, prompts),
        clip_states(pipe.tokenizer_2, pipe.text_encoder_2, prompts),
    )
    clip = torch.cat([h_l, h_g], dim=-1)
    width = pipe.network.config.joint_attention_dim
    if pipe.text_encoder_3 is None:
        t5 = clip.new_zeros(len(prompts), max_length, width)
    else:
        enc = pipe.text_encoder_3
        t5 = enc(_tokens(pipe.tokenizer_3, prompts, max_length, enc.device))[0].to(clip)
    hidden = torch.cat([F.pad(clip, (0, t5.shape[-1] - clip.shape[-1])), t5], dim=-2)
    return pack_condition(hidden, torch.cat([p_l, p_g], dim=-1).to(hidden))


def encode_prompts(pipe, prompts: list[str], height: Optional[int] = None, width: Optional[int] = None):
    """The packed condition of each prompt for `pipe`'s network (SD, SDXL or SD3), at image size `height` × `width`
    (SDXL's time ids; default: the model's own size)."""
    config = pipe.network.config
    if is_sd3_transformer(config):
        return sd3_condition(pipe, prompts, pipe.config.get("max_sequence_length") or T5_MAX_LENGTH)
    if is_sdxl_unet(config):
        _, _, h, w = pipe.latent_shape(1, height, width)
        scale = pipe.vae_scale_factor
        return sdxl_condition(pipe, prompts, height or h * scale, width or w * scale)
    return sd_condition(pipe, prompts)


def zero_text(pipe, cond: torch.Tensor) -> torch.Tensor:
    """The condition with its text (token states and pooled embedding) zeroed and its time ids kept: SDXL's
    unconditional branch when `force_zeros_for_empty_prompt` is set (as in SDXL base)."""
    width = extra_condition_width(pipe.network.config)
    if not width:
        return torch.zeros_like(cond)
    hidden, extras = unpack_condition(cond, width)
    if is_sdxl_unet(pipe.network.config):
        extras = torch.cat([torch.zeros_like(extras[:, :-SDXL_TIME_IDS]), extras[:, -SDXL_TIME_IDS:]], dim=-1)
    else:
        extras = torch.zeros_like(extras)
    return pack_condition(torch.zeros_like(hidden), extras)
