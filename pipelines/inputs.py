"""What every pipeline's `__call__` accepts the way diffusers' pipelines do: labels, per-image counts, noise."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy
import torch
from diffusers.utils.torch_utils import randn_tensor

from .networks import downsampling


def flatten_labels(class_labels) -> list:
    """Class labels as a flat list: an int, a name, a tensor or NumPy array, or (nested) lists of them (`[[1], [1]]`,
    as diffusers' DiTPipeline accepts)."""
    if isinstance(class_labels, (torch.Tensor, numpy.ndarray, numpy.generic)):
        return [int(c) for c in class_labels.flatten().tolist()]
    if isinstance(class_labels, (int, str)) or not isinstance(class_labels, Sequence):
        return [class_labels]
    return [c for item in class_labels for c in flatten_labels(item)]


def check_images_per_prompt(num_images_per_prompt: int) -> None:
    """At least one image per prompt or class label."""
    if num_images_per_prompt < 1:
        raise ValueError(f"num_images_per_prompt must be at least 1, got {num_images_per_prompt}")


def repeat_per_image(values: list, num_images_per_prompt: int) -> list:
    """Each condition repeated `num_images_per_prompt` times, in order (c0, c0, c1, c1, …), as diffusers does."""
    check_images_per_prompt(num_images_per_prompt)
    return [v for v in values for _ in range(num_images_per_prompt)]


def prepare_noise(
    shape: tuple[int, ...],
    generator,
    latents: Optional[torch.Tensor],
    device: torch.device,
    dtype: torch.dtype,
) -> torch.Tensor:
    """The initial noise: `latents` when given (checked against `shape`), else standard normal noise drawn with
    `generator` (one generator, or a list of one per image: then image i depends on generator i only)."""
    if isinstance(generator, list) and len(generator) != shape[0]:
        raise ValueError(f"got a list of {len(generator)} generators for {shape[0]} images: pass one per image")
    if latents is None:
        return randn_tensor(shape, generator=generator, device=device, dtype=dtype)
    if tuple(latents.shape) != tuple(shape):
        raise ValueError(f"latents have shape {tuple(latents.shape)}, expected {tuple(shape)}")
    return latents.to(device=device, dtype=dtype)


def sample_size(network, height: Optional[int], width: Optional[int], scale: int = 1) -> tuple[int, int]:
    """The model-space (h, w) for an image of `height` × `width` pixels (`scale`: the VAE's down-sampling factor;
    default: the network's `sample_size`), checked against the network's down-sampling (a UNet's levels, a DiT's
    patch)."""
    size = network.config.sample_size
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    h = h if height is None else height // scale
    w = w if width is None else width // scale
    factor = downsampling(network.config)
    if h % factor or w % factor or (height or 0) % scale or (width or 0) % scale:
        raise ValueError(
            f"height and width must be multiples of {factor * scale} for this model (got {height} × {width})"
        )
    return h, w


def check_one_step(num_inference_steps: int) -> None:
    """A one-step generator draws in one network evaluation; asking for more steps is an error that says so."""
    if num_inference_steps != 1:
        raise ValueError(
            f"this is a one-step generator (distilled by SFD): it draws each image in one network evaluation, so "
            f"num_inference_steps must be 1 (got {num_inference_steps})"
        )
