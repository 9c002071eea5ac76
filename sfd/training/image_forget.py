"""`--forget "image=PATH[,PATH…]"` for class teachers: forget the class the teacher itself sees in a picture.

Data-free, as a diffusion classifier (Li et al. 2023, "Your diffusion model is secretly a zero-shot classifier"):
each class c is scored by how well the teacher's class-c denoiser reconstructs the image x,

    d(c) = E_{σ, ε} λ(σ)·‖D(x + σε, σ, c) − x‖²   (the denoising loss, a bound on −log p(x | c)),

over the σ grid and weighting `--override auto` uses (`override_choice`), with the same noise for every class; several
images average their d. The class with the smallest d is forgotten; the ranking, the relative margin to the runner-up
and the choice go to the log, `training.json` and the model card, and a small margin warns.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import torch

from .config import TrainingConfig, TrainingSetupError
from .override_choice import NUM_SIGMAS, class_errors

logger = logging.getLogger(__name__)
NOISE_DRAWS = 32  # ε per σ and image
SMALL_MARGIN = 0.05  # relative gap (d₂ − d₁)/d₁ under which the choice is reported as uncertain
IMAGE_KIND = "image"


def image_paths(forget: str | None) -> list[Path] | None:
    """The image paths of an `image=` spec, or None for any other spec."""
    if not forget or not forget.strip().lower().startswith(f"{IMAGE_KIND}="):
        return None
    paths = [Path(p.strip()).expanduser() for p in forget.partition("=")[2].split(",") if p.strip()]
    if not paths:
        raise TrainingSetupError(f"--forget {forget!r} names no image after 'image='")
    return paths


def check_images(paths: list[Path]) -> None:
    """Every image exists and opens (before any weights load); the error names the path."""
    from PIL import Image, UnidentifiedImageError

    for path in paths:
        if not path.is_file():
            raise TrainingSetupError(f"--forget image not found: {path}")
        try:
            with Image.open(path) as img:
                img.verify()
        except (UnidentifiedImageError, OSError) as err:
            raise TrainingSetupError(f"cannot read --forget image {path}: {err}") from None


def read_image(path: Path, size: int, channels: int) -> torch.Tensor:
    """One image as (C, size, size) in [-1, 1]; another size or channel count is converted, with a message."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise TrainingSetupError(f"--forget image not found: {path}")
    try:
        with Image.open(path) as img:
            img.load()
            mode = "L" if channels == 1 else "RGB"
            if img.mode != mode or img.size != (size, size):
                logger.warning(
                    f"{path}: {img.size[0]}×{img.size[1]} {img.mode} converted to the teacher's {size}×{size} {mode}"
                )
            img = img.convert(mode).resize((size, size), Image.Resampling.BICUBIC)
            array = np.asarray(img, dtype=np.float32)
    except (UnidentifiedImageError, OSError) as err:
        raise TrainingSetupError(f"cannot read --forget image {path}: {err}") from None
    x = torch.from_numpy(array).reshape(size, size, channels).permute(2, 0, 1)
    return x / 127.5 - 1


def rank_classes_for_images(
    pipe, denoiser, images: torch.Tensor, sigma_min: float, sigma_max: float, seed: int = 0, draws: int = NOISE_DRAWS
) -> list[tuple[int, float]]:
    """Every class of `pipe`, most likely first, with d(c) averaged over `images` ((N, C, H, W) in [-1, 1]; a latent
    teacher scores the VAE's latents of them)."""
    device = next(denoiser.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        x = pipe.encode_images(images.to(device), torch.Generator(device).manual_seed(seed))
    classes = sorted(pipe.id2label)
    sigmas = torch.logspace(math.log10(sigma_min), math.log10(sigma_max), NUM_SIGMAS).tolist()
    d = torch.zeros(len(classes))
    for image in x.float():
        x0 = image.expand(draws, *image.shape)
        noises = [torch.randn(x0.shape, generator=gen).to(device) for _ in sigmas]
        d += class_errors(denoiser, x0, classes, sigmas, noises) / len(x)
    return sorted(zip(classes, d.tolist()), key=lambda cd: cd[1])


def identify_forget_class(cfg: TrainingConfig, paths: list[Path], sigma_range: tuple[float, float]) -> dict:
    """Load the class teacher, rank its classes for the images and return the evidence; `cfg.forget` becomes
    "class=ID" of the chosen class. Text teachers are refused (textual inversion is not implemented)."""
    from ..pipelines import ClassConditionalDiffusionPipeline, Denoiser
    from .conditioning import without_label_dropout

    teacher = cfg.teacher
    pipe = (
        teacher
        if isinstance(teacher, ClassConditionalDiffusionPipeline)
        else ClassConditionalDiffusionPipeline.from_pretrained(str(teacher))
    )
    without_label_dropout(pipe.network)
    net = pipe.network.eval()
    size = net.config.sample_size * pipe.vae_scale_factor
    channels = (pipe.vae or net).config.in_channels
    images = torch.stack([read_image(p, size, channels) for p in paths])
    denoiser = Denoiser(net, pipe.scheduler.config)  # unguided: each class's own denoising loss
    ranking = rank_classes_for_images(pipe, denoiser, images, *sigma_range, seed=cfg.seed)
    (best, d1), (runner_up, d2) = ranking[0], ranking[1]
    margin = (d2 - d1) / d1 if d1 > 0 else math.inf
    names = pipe.id2label
    evidence = {
        "images": [str(p) for p in paths],
        "chosen": names[best],
        "runner_up": names[runner_up],
        "margin": round(margin, 4),
        "ranking": {names[c]: round(v, 5) for c, v in ranking},
    }
    message = (
        f"--forget image: the teacher sees {names[best]!r} in {len(paths)} image(s) (denoising loss {d1:.4g}; "
        f"runner-up {names[runner_up]!r} {d2:.4g}, margin {margin:.1%})"
    )
    if margin < SMALL_MARGIN:
        logger.warning(
            f"{message}: a small margin, the image may show {names[runner_up]!r}; name the class with "
            f'--forget "class=NAME" if you know it'
        )
    else:
        logger.info(message)
    cfg.forget = f"class={best}"
    return evidence
