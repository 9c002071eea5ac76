"""`--override auto` / `far`: the remaining class(es) the teacher itself finds least like the forgotten ones (data-free).

A random override per sample averages the remaining classes' scores, which keeps the look of a forgotten class that
sits among similar ones (docs/results.md, "Other classes and the override"); a fixed override far from it forgets reliably. "Far" is measured
with the teacher alone, the way a diffusion classifier scores a class: the teacher draws images x of each forgotten
class f, and each remaining class c is scored by how badly the teacher's class-c denoiser reconstructs them,

    d(f, c) = E_{x ~ teacher(·|f), σ, ε} λ(σ)·‖D(x + σε, σ, c) − x‖²   (the denoising loss, a bound on −log p(x | c)),

over a fixed grid of σ. `auto`'s override is the class whose smallest d over the forgotten classes is largest: the
one that explains none of them. `far` draws the override per sample among the farther half of that ranking.
"""

from __future__ import annotations

import math

import torch

from ..core.losses import edm_weight
from ..core.sampling import sample_classes

SAMPLES_PER_CLASS = 32  # teacher images per forgotten class
NUM_SIGMAS = 8  # geometric grid over the training σ range


def sigma_grid(sigma_min: float, sigma_max: float, n: int = NUM_SIGMAS) -> list[float]:
    """n noise levels spread geometrically over [σ_min, σ_max]."""
    return torch.logspace(math.log10(sigma_min), math.log10(sigma_max), n).tolist()


@torch.no_grad()
def denoising_distances(
    pipe,
    denoiser,
    forget: list[int],
    candidates: list[int],
    sigma_min: float,
    sigma_max: float,
    n: int = SAMPLES_PER_CLASS,
    num_sigmas: int = NUM_SIGMAS,
    seed: int = 0,
) -> torch.Tensor:
    """d(f, c) above for every forgotten f (rows) and candidate c (columns); `denoiser` is the unguided teacher.
    A latent teacher (with a VAE) is measured on its latents."""
    labels = [f for f in forget for _ in range(n)]
    latent = getattr(pipe, "vae", None) is not None
    images, _ = sample_classes(
        pipe, labels, batch_size=max(n, 100), seed=seed, progress=False, output_type="latent" if latent else "pt"
    )
    x0 = images if latent else images * 2 - 1  # back to the model's space ([-1, 1] for pixels)
    device = next(denoiser.parameters()).device
    x0 = x0.to(device).view(len(forget), n, *images.shape[1:])
    sigmas = sigma_grid(sigma_min, sigma_max, num_sigmas)
    gen = torch.Generator().manual_seed(seed)
    noises = [torch.randn(x0.shape[1:], generator=gen).to(device) for _ in sigmas]  # shared by every class pair
    return torch.stack([class_errors(denoiser, x0[i], candidates, sigmas, noises) for i in range(len(forget))])


@torch.no_grad()
def class_errors(
    denoiser, x0: torch.Tensor, classes: list[int], sigmas: list[float], noises: list[torch.Tensor]
) -> torch.Tensor:
    """d(c) for each class c: the mean over the rows of x0 and the σ grid of λ(σ)·‖D(x0 + σε, σ, c) − x0‖², with the
    same noise ε (one tensor like x0 per σ) for every class."""
    d = torch.zeros(len(classes))
    for sigma, eps in zip(sigmas, noises):
        x_t = x0 + sigma * eps
        for j, c in enumerate(classes):
            labels = torch.full((len(x0),), c, device=x0.device)
            err = (denoiser(x_t, sigma, labels).float() - x0).pow(2).flatten(1).mean(1)
            d[j] += edm_weight(torch.tensor(sigma)) * err.mean().cpu() / len(sigmas)
    return d


def rank_candidates(
    pipe, denoiser, spec, sigma_min: float, sigma_max: float, seed: int = 0, exclude=()
) -> list[tuple[int, float]]:
    """The remaining classes, farthest first, each with its smallest d(f, c) over the forgotten classes f.
    Classes in `exclude` (ids; a layered erasure's later folds, to be forgotten next) are not candidates."""
    excluded = set(exclude)
    candidates = [c for c in spec.remaining if c not in excluded]
    if not candidates:
        raise ValueError(
            f"--override auto/far: every remaining class of {spec.describe()} is excluded ({list(exclude)})"
        )
    d = denoising_distances(pipe, denoiser, list(spec.forget), candidates, sigma_min, sigma_max, seed=seed)
    nearest_forgotten = d.min(0).values.tolist()
    return sorted(zip(candidates, nearest_forgotten), key=lambda cd: -cd[1])


def choose_override(
    pipe, denoiser, spec, sigma_min: float, sigma_max: float, seed: int = 0, exclude=()
) -> tuple[int, dict]:
    """`auto`: the remaining class farthest (max over c of min over f of d(f, c)) from the forgotten ones, and d per
    class name."""
    ranked = rank_candidates(pipe, denoiser, spec, sigma_min, sigma_max, seed, exclude)
    return ranked[0][0], _by_name(ranked, spec)


def choose_far_pool(
    pipe, denoiser, spec, sigma_min: float, sigma_max: float, seed: int = 0, exclude=()
) -> tuple[list[int], dict]:
    """`far`: the farther half of the remaining classes (⌊n/2⌋ of n, at least one), farthest first, and d per class
    name; the override is drawn among them per sample, so no single class carries the whole forgotten one."""
    ranked = rank_candidates(pipe, denoiser, spec, sigma_min, sigma_max, seed, exclude)
    return [c for c, _ in ranked[: max(1, len(ranked) // 2)]], _by_name(ranked, spec)


def _by_name(ranked: list[tuple[int, float]], spec) -> dict:
    return {spec.id2label[c]: round(float(v), 4) for c, v in ranked}
