"""`--forget "image=PATH[,PATH…]"`: forget what a picture shows.

Class teachers forget the class the teacher itself sees in the picture, data-free, as a diffusion classifier (Li et
al. 2023, "Your diffusion model is secretly a zero-shot classifier"): each class c is scored by how well the
teacher's class-c denoiser reconstructs the image x,

    d(c) = E_{σ, ε} λ(σ)·‖D(x + σε, σ, c) − x‖²   (the denoising loss, a bound on −log p(x | c)),

over the σ grid and weighting `--override auto` uses (`override_choice`), with the same noise for every class; several
images average their d. The class with the smallest d is forgotten; the ranking, the relative margin to the runner-up
and the choice go to the log, `training.json` and the model card, and a small margin warns. Text teachers learn a new
token from the picture instead (textual inversion, below) and forget it with the nearest word that explains it best.
"""

from __future__ import annotations

import copy
import logging
import math
from pathlib import Path

import numpy as np
import torch

from ..core.prompts import DEFAULT_TEMPLATES as TEMPLATES
from ..core.tokens import PLACEHOLDER, PlaceholderToken, nearest_words, placeholder_prompts
from .config import TrainingConfig, TrainingSetupError
from .override_choice import class_errors, sigma_grid

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


def process_device():
    """This process's accelerator device (accelerate's), where the teacher reads the image: every process does the
    same seeded computation and reaches the same answer."""
    from accelerate import PartialState

    return PartialState().device


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
    sigmas = sigma_grid(sigma_min, sigma_max)
    d = torch.zeros(len(classes))
    for image in x.float():
        x0 = image.expand(draws, *image.shape)
        noises = [torch.randn(x0.shape, generator=gen).to(device) for _ in sigmas]
        d += class_errors(denoiser, x0, classes, sigmas, noises) / len(x)
    return sorted(zip(classes, d.tolist()), key=lambda cd: cd[1])


def identify_forget_class(cfg: TrainingConfig, paths: list[Path], sigma_range: tuple[float, float]) -> dict:
    """Load the class teacher, rank its classes for the images and return the evidence; `cfg.forget` becomes
    "class=ID" of the chosen class and `cfg.teacher` the loaded teacher (training does not load it again)."""
    from ..pipelines import ClassConditionalDiffusionPipeline, Denoiser
    from .conditioning import without_label_dropout

    teacher = cfg.teacher
    pipe = (
        teacher
        if isinstance(teacher, ClassConditionalDiffusionPipeline)
        else ClassConditionalDiffusionPipeline.from_pretrained(str(teacher))
    )
    without_label_dropout(pipe.network)
    pipe.to(process_device())
    net = pipe.network.eval()
    size, channels = pipe.image_format()
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
    cfg.teacher, cfg.forget = pipe, f"class={best}"
    return evidence


# ---- text teachers: textual inversion (Gal et al. 2023) of the image into a new token ----------------------------

INVERSION_STEPS = 300
INVERSION_LR = 5e-3
INVERSION_BATCH = 4


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Light augmentations of one image, per row: a horizontal flip half of the time and a shift of up to 1/8 of its
    size (reflect-padded)."""
    n, _, h, w = x.shape
    pad = max(1, h // 8)
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad), mode="reflect")
    out = []
    for i in range(n):
        dy, dx = torch.randint(0, 2 * pad + 1, (2,), generator=gen).tolist()
        crop = padded[i, :, dy : dy + h, dx : dx + w]
        out.append(crop.flip(-1) if torch.rand((), generator=gen) < 0.5 else crop)
    return torch.stack(out)


def learn_token(
    pipe, images: torch.Tensor, sigma_range, seed: int, steps: int = INVERSION_STEPS
) -> tuple[float, float]:
    """Textual inversion: the placeholder's embedding rows minimise the teacher's denoising loss
    E λ(σ)·‖D(x + σε, σ, text(template(PLACEHOLDER))) − x‖² over light augmentations x of the images; returns
    `token_loss` before and after."""
    from ..core.losses import edm_weight
    from ..pipelines import Denoiser
    from ..pipelines.prompt_encoding import encode_prompts

    token = PlaceholderToken(pipe)
    opt = torch.optim.Adam(token.rows, lr=INVERSION_LR)
    network = pipe.network.requires_grad_(False)
    denoiser = Denoiser(network, pipe.scheduler.config)
    device = next(network.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    lo, hi = (math.log(s) for s in sigma_range)
    before = token_loss(pipe, denoiser, images, sigma_range, seed)  # the fixed check
    for _ in range(steps):
        pick = torch.randint(len(images), (INVERSION_BATCH,), generator=gen)
        x = pipe.encode_images(augment(images[pick], gen).to(device), gen).float().detach()
        prompts = placeholder_prompts(len(x), gen)
        sigma = torch.exp(lo + (hi - lo) * torch.rand(len(x), generator=gen)).to(device).view(-1, 1, 1, 1)
        noise = torch.randn(x.shape, generator=gen).to(device)
        cond = encode_prompts(pipe, prompts).float()
        err = (denoiser(x + sigma * noise, sigma, cond).float() - x).pow(2).flatten(1).mean(1)
        loss = (edm_weight(sigma.flatten()) * err).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    token.store()
    return before, token_loss(pipe, denoiser, images, sigma_range, seed)


@torch.no_grad()
def token_loss(
    pipe, denoiser, images: torch.Tensor, sigma_range, seed: int, draws: int = 8, word: str = PLACEHOLDER
) -> float:
    """The denoising loss of the images under "a photo of a WORD" on a fixed σ grid and fixed noise (the same for every
    word, and before and after learning): d(c) of `class_errors` with the word's prompt as the condition."""
    from ..pipelines.prompt_encoding import encode_prompts

    device = next(denoiser.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    x = pipe.encode_images(images.to(device), torch.Generator(device).manual_seed(seed)).float()
    x0 = x.repeat_interleave(draws, dim=0)
    sigmas = sigma_grid(*sigma_range)
    noises = [torch.randn(x0.shape, generator=gen).to(device) for _ in sigmas]
    cond = encode_prompts(pipe, [TEMPLATES[0].format(word)]).float().expand(len(x0), -1, -1)
    wrapped = lambda x_t, sigma, _labels: denoiser(x_t, sigma, cond)  # noqa: E731  (class_errors passes labels)
    return float(class_errors(wrapped, x0, [0], sigmas, noises)[0])


def invert_text_concept(cfg: TrainingConfig, paths: list[Path], sigma_range: tuple[float, float]) -> dict:
    """Load the text teacher, learn `PLACEHOLDER` from the images, and forget it with the word that explains the images
    best (by the teacher's denoising loss) among its five nearest vocabulary words: `cfg.forget` becomes
    "concept=PLACEHOLDER,WORD" and `cfg.teacher` the teacher with the learned token."""
    from ..core.loading import load_text_to_image_teacher
    from ..pipelines import Denoiser, TextToImageDiffusionPipeline

    teacher = cfg.teacher
    if isinstance(teacher, TextToImageDiffusionPipeline):
        pipe = copy.deepcopy(teacher)  # the caller's pipeline keeps its vocabulary
    else:
        pipe = load_text_to_image_teacher(str(teacher))
        pipe.register_to_config(_name_or_path=str(teacher))
    pipe.to(process_device())
    if pipe.tokenizer is None:
        raise TrainingSetupError("--forget image= on a text teacher needs its tokenizer to add the learned token")
    pipe.network.eval()
    size, channels = pipe.image_format()
    images = torch.stack([read_image(p, size, channels) for p in paths])
    before, after = learn_token(pipe, images, sigma_range, cfg.seed)
    words = nearest_words(pipe)
    denoiser = Denoiser(pipe.network, pipe.scheduler.config)
    word_loss = {w: round(token_loss(pipe, denoiser, images, sigma_range, cfg.seed, word=w), 5) for w, _ in words}
    # of the nearest words, the one that explains the image best (none: the token alone)
    concepts = [PLACEHOLDER] + ([min(word_loss, key=word_loss.get)] if word_loss else [])
    logger.warning(
        f"--forget image: learned the token {PLACEHOLDER!r} from {len(paths)} image(s) in {INVERSION_STEPS} steps "
        f"(denoising loss of the image {before:.4g} → {after:.4g}); nearest words {words}, their denoising loss "
        f"{word_loss}; forgetting the concepts {concepts}"
    )
    cfg.teacher, cfg.forget = pipe, "concept=" + ",".join(concepts)
    return {
        "images": [str(p) for p in paths],
        "token": PLACEHOLDER,
        "nearest_words": dict(words),
        "word_losses": word_loss,
        "concepts": concepts,
        "inversion_steps": INVERSION_STEPS,
        "image_loss_before_after": [round(before, 5), round(after, 5)],
    }
