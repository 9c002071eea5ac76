"""Drawing class-conditional samples from any of the project's pipelines, reproducibly per seed."""

from __future__ import annotations

import os
import time
from typing import Sequence

import torch
from tqdm.auto import tqdm


@torch.no_grad()
def sample_conditioned(
    pipe,
    conditions: Sequence,
    key: str,
    batch_size: int = 100,
    seed: int = 0,
    progress: bool = True,
    output_type: str = "pt",
    **call_kwargs,
) -> tuple[torch.Tensor, float]:
    """Images in [0, 1] for `conditions` (passed to the pipeline as `key`), batch k drawn with a
    torch.Generator seeded `seed + k`; and the seconds taken. `output_type="latent"`: the network's samples before
    a latent model's VAE decodes them."""
    conditions = list(conditions)
    out, start = [], time.perf_counter()
    batches = range(0, len(conditions), batch_size)
    for k, i in enumerate(tqdm(batches, desc="sampling", disable=not progress, leave=False)):
        gen = torch.Generator(device="cpu").manual_seed(seed + k)
        batch = {key: conditions[i : i + batch_size]}
        out.append(pipe(**batch, generator=gen, output_type=output_type, **call_kwargs).images.cpu())
    return torch.cat(out), time.perf_counter() - start


def sample_classes(
    pipe, labels: Sequence[int], batch_size: int = 100, seed: int = 0, progress: bool = True, **call_kwargs
) -> tuple[torch.Tensor, float]:
    """Class-conditional samples (see `sample_conditioned`)."""
    return sample_conditioned(pipe, labels, "class_labels", batch_size, seed, progress, **call_kwargs)


def sample_prompts(
    pipe, prompts: Sequence[str], batch_size: int = 100, seed: int = 0, progress: bool = True, **call_kwargs
) -> tuple[torch.Tensor, float]:
    """Text-to-image samples (see `sample_conditioned`)."""
    return sample_conditioned(pipe, prompts, "prompt", batch_size, seed, progress, **call_kwargs)


def nfe_per_image(pipe) -> int:
    """Network evaluations per image of a pipeline's default sampler (×2 under classifier-free guidance)."""
    steps = getattr(pipe.config, "default_num_inference_steps", 1)
    return steps * (2 if getattr(pipe.config, "default_guidance_scale", 1.0) != 1.0 else 1)


def sampling_record(model, pipe, n_images: int, seconds: float, seed: int, batch_size: int) -> dict:
    """What an evaluation records of how its samples were drawn: the model, seed, batch, time and cost per image."""
    return dict(
        model=str(model) if isinstance(model, (str, os.PathLike)) else type(pipe).__name__,
        seed=seed,
        batch_size=batch_size,
        sampling_seconds=seconds,
        images_per_second=n_images / seconds,
        nfe_per_image=nfe_per_image(pipe),
    )
