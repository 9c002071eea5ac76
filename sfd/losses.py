"""The two SFD losses, written in the σ-space of a denoiser D(x, σ, c) → x̂₀.

Symbols follow SiD / SFD: `x_g` generator output, `y_real` the teacher's x̂₀ (under the override
label for forgotten classes), `y_fake` the fake score network's x̂₀, `alpha` SiD's α.
"""

from __future__ import annotations

import torch


def sample_sigmas(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0, u_max: float = 0.8,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """SiD's training σ: σ = (σ_max^{1/ρ} + (1−u)(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ, u ~ U(0, u_max)."""
    u = torch.rand(n, generator=generator) * u_max
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return (hi + (1 - u) * (lo - hi)) ** rho


def edm_weight(sigma: torch.Tensor, sigma_data: float = 0.5) -> torch.Tensor:
    """EDM's loss weight λ(σ) = (σ² + σ_d²) / (σ·σ_d)², which makes every σ contribute about equally."""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


def fake_score_loss(y_fake: torch.Tensor, x_g: torch.Tensor, sigma: torch.Tensor,
                    sample_weight: torch.Tensor | None = None) -> torch.Tensor:
    """L_ψ = E[λ(σ)·‖f_ψ(x_g + σε, σ, c) − x_g‖²]: denoising score matching on (stop-grad) generator samples."""
    per_sample = edm_weight(sigma.flatten()) * (y_fake - x_g).pow(2).flatten(1).mean(1)
    return _weighted_mean(per_sample, sample_weight)


def sid_generator_loss(y_real: torch.Tensor, y_fake: torch.Tensor, x_g: torch.Tensor, alpha: float,
                       sample_weight: torch.Tensor | None = None) -> torch.Tensor:
    """L_SiD = Σ_pixels (y_real − y_fake)·[(y_real − x_g) − α·(y_real − y_fake)] / w,  w = sg(mean|y_real − x_g|)."""
    w = (y_real - x_g).abs().flatten(1).mean(1).clamp_min(1e-5).detach().view(-1, *([1] * (x_g.dim() - 1)))
    diff = y_real - y_fake
    per_sample = (diff * ((y_real - x_g) - alpha * diff) / w).flatten(1).sum(1)
    return _weighted_mean(per_sample, sample_weight)


def _weighted_mean(per_sample: torch.Tensor, sample_weight: torch.Tensor | None) -> torch.Tensor:
    # mean over the batch of λ_r or λ_f times each sample's loss (the SFD sum λ_r·L_remain + λ_f·L_forget)
    if sample_weight is None:
        return per_sample.mean()
    return (sample_weight.to(per_sample) * per_sample).mean()
