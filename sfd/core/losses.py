"""The two SFD losses (and the optional regression term), written in the σ-space of a denoiser D(x, σ, c) → x̂₀,
and the DDPM / EDM denoising losses the teachers (and the relearning attacker) train with.

Symbols follow SiD / SFD: `x_g` generator output, `y_real` the teacher's x̂₀ (under the override
label for forgotten classes), `y_fake` the fake score network's x̂₀, `alpha` SiD's α.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..pipelines.denoiser import Denoiser, is_edm
from ..pipelines.networks import predict


def sample_sigmas(
    n: int,
    sigma_min: float,
    sigma_max: float,
    rho: float = 7.0,
    u_max: float = 0.8,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """SiD's training σ: σ = (σ_max^{1/ρ} + (1−u)(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ, u ~ U(0, u_max)."""
    u = torch.rand(n, generator=generator) * u_max
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return (hi + (1 - u) * (lo - hi)) ** rho


def edm_weight(sigma: torch.Tensor, sigma_data: float = 0.5) -> torch.Tensor:
    """EDM's loss weight λ(σ) = (σ² + σ_d²) / (σ·σ_d)², which makes every σ contribute about equally."""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


def native_weight(sigma: torch.Tensor, denoiser: Denoiser) -> torch.Tensor:
    """The weight on ‖x̂₀ − x₀‖² that makes it the plain loss of the network's own parameterisation:
    ε-MSE = ‖x̂₀ − x₀‖²/σ², v-MSE = (1 + σ²)/σ²·‖x̂₀ − x₀‖², x₀-MSE = ‖x̂₀ − x₀‖², flow-velocity MSE
    = ((1 + σ)/σ)²·‖x̂₀ − x₀‖² (v̂ − v = (x₀ − x̂₀)/t); EDM-preconditioned networks train with λ(σ) (Karras et al.
    eq. 2)."""
    param = denoiser.parameterisation
    if hasattr(param, "scheduler"):  # EDM preconditioning
        return edm_weight(sigma, param.scheduler.config.sigma_data)
    return {
        "epsilon": sigma**-2,
        "v_prediction": (1 + sigma**2) / sigma**2,
        "sample": torch.ones_like(sigma),
        "flow_prediction": ((1 + sigma) / sigma) ** 2,
    }[param.prediction_type]


def fake_score_loss(
    y_fake: torch.Tensor,
    x_g: torch.Tensor,
    weight: torch.Tensor,
    sample_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """L_ψ = E[w(σ)·‖f_ψ(x_g + σε, σ, c) − x_g‖²]: denoising score matching on (stop-grad) generator samples, w(σ)
    EDM's λ(σ) or the network's native weight (`native_weight`)."""
    per_sample = weight.flatten() * (y_fake - x_g).pow(2).flatten(1).mean(1)
    return _weighted_mean(per_sample, sample_weight)


def sid_generator_loss(
    y_real: torch.Tensor,
    y_fake: torch.Tensor,
    x_g: torch.Tensor,
    alpha: float,
    sample_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """L_SiD = Σ_pixels (y_real − y_fake)·[(y_real − x_g) − α·(y_real − y_fake)] / w,  w = sg(mean|y_real − x_g|)."""
    w = (y_real - x_g).abs().flatten(1).mean(1).clamp_min(1e-5).detach().view(-1, *([1] * (x_g.dim() - 1)))
    diff = y_real - y_fake
    per_sample = (diff * ((y_real - x_g) - alpha * diff) / w).flatten(1).sum(1)
    return _weighted_mean(per_sample, sample_weight)


def regression_loss(x_g: torch.Tensor, x_ref: torch.Tensor, sample_weight: torch.Tensor | None = None) -> torch.Tensor:
    """L_reg = E[Σ_pixels (G_θ(z, c) − ODE_teacher(z, c_teacher))²]: DMD's regression term (sfd/training/regression.py makes the
    pairs), summed over pixels like the SiD loss."""
    per_sample = (x_g - x_ref).pow(2).flatten(1).sum(1)
    return _weighted_mean(per_sample, sample_weight)


def _weighted_mean(per_sample: torch.Tensor, sample_weight: torch.Tensor | None) -> torch.Tensor:
    # mean over the batch of λ_r or λ_f times each sample's loss (the SFD sum λ_r·L_remain + λ_f·L_forget)
    if sample_weight is None:
        return per_sample.mean()
    return (sample_weight.to(per_sample) * per_sample).mean()


def denoising_loss(unet, scheduler, x0: torch.Tensor, cond: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """E_t,ε ‖target − UNet(√ᾱ_t·x₀ + √(1−ᾱ_t)·ε, t, c)‖² (DDPM, Ho et al. eq. 14), target ε, v or x₀ per the
    schedule's prediction_type; c is class ids or text hidden states. The teachers' and the relearning attacker's loss.
    An EDM-style scheduler (it carries sigma_data) trains with `edm_denoising_loss` instead."""
    if is_edm(scheduler.config):
        return edm_denoising_loss(Denoiser(unet, scheduler.config), scheduler.config.sigma_data, x0, cond, gen)
    dev = next(unet.parameters()).device  # draws on the CPU generator, computed where the UNet lives
    t = torch.randint(0, scheduler.config.num_train_timesteps, (len(x0),), generator=gen).to(dev)
    x0, noise = x0.to(dev), torch.randn(x0.shape, generator=gen).to(dev)
    x_t = scheduler.add_noise(x0, noise, t)  # q(x_t | x_0)
    target = {"epsilon": noise, "v_prediction": scheduler.get_velocity(x0, noise, t), "sample": x0}[
        scheduler.config.prediction_type
    ]
    return F.mse_loss(predict(unet, x_t, t, cond.to(dev)).float(), target)  # a UNet or a DiT, called its own way


def edm_denoising_loss(
    denoiser,
    sigma_data: float,
    x0: torch.Tensor,
    cond: torch.Tensor,
    gen: torch.Generator,
    p_mean: float = -1.2,
    p_std: float = 1.2,
) -> torch.Tensor:
    """E_σ,ε λ(σ)·‖D(x₀ + σ·ε, σ, c) − x₀‖² with ln σ ~ N(P_mean, P_std²) (EDM, Karras et al. eq. 2 and Table 1)."""
    dev = next(denoiser.parameters()).device
    sigma = (torch.randn(len(x0), generator=gen) * p_std + p_mean).exp().view(-1, *([1] * (x0.dim() - 1)))
    noise = torch.randn(x0.shape, generator=gen)
    x0, sigma = x0.to(dev), sigma.to(dev)
    per_sample = edm_weight(sigma.flatten(), sigma_data) * (
        denoiser(x0 + sigma * noise.to(dev), sigma, cond.to(dev)).float() - x0
    ).pow(2).flatten(1).mean(1)
    return per_sample.mean()


def sampling_level_loss(
    denoiser, sigma: float, x0: torch.Tensor, labels: torch.Tensor, gen: torch.Generator
) -> torch.Tensor:
    """‖D(x₀ + σ·ε, σ, c) − x₀‖² at the one noise level σ = σ_init a one-step generator is sampled at
    (EDM's denoising loss, Karras et al. eq. 2, at a single σ): the adaptive attacker's loss."""
    noise = torch.randn(x0.shape, generator=gen)
    dev = next(denoiser.parameters()).device
    x0, labels = x0.to(dev), labels.to(dev)
    return F.mse_loss(denoiser(x0 + sigma * noise.to(dev), sigma, labels).float(), x0)
