"""The teacher's own samples as a data-free anchor for the generator (DMD's regression term, Yin et al. 2024).

Before training, the frozen teacher maps a bank of noises z to images by solving its probability-flow ODE
(deterministic, so each z has one answer) under the teacher's conditions: the override for forgotten rows.
During training the generator is pulled towards those answers from the same z,

    L_reg = E_(z, c) ‖G_θ(z, c) − ODE_teacher(z, c_teacher)‖²,

which ties each noise to one teacher sample: DMD's remedy for modes a distribution-matching loss drops. No real
data is used: the pairs are the teacher's. (On the embedded default it did not help at weights 0.1–1:
bench/results/trial-regression-seed99.md; it is off by default.)

The ODE is solved by diffusers' DPM-Solver++ (2M) on the σ-space denoiser `D(x, σ, c)`: the scheduler is
told the model predicts x̂₀ ("sample"), so guidance and the teacher's parameterisation stay in `Denoiser`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import DPMSolverMultistepScheduler
from tqdm.auto import tqdm


@torch.no_grad()
def teacher_ode_samples(
    teacher, scheduler_config, z: torch.Tensor, cond: torch.Tensor, uncond: torch.Tensor | None, num_steps: int
) -> torch.Tensor:
    """x₀ = ODE_teacher(z, c): DPM-Solver++ (2M) from x_T = z (the variance-preserving latent) down to σ = 0."""
    scheduler = DPMSolverMultistepScheduler.from_config(
        scheduler_config,
        prediction_type="sample",
        algorithm_type="dpmsolver++",
        solver_order=2,
        final_sigmas_type="zero",
        thresholding=False,
    )
    scheduler.set_timesteps(num_steps, device=z.device)
    alphas_cumprod = scheduler.alphas_cumprod.to(z.device)
    x = z * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        a = alphas_cumprod[t]
        sigma = ((1 - a) / a).sqrt()  # σ_t of the variance-exploding form x_σ = x_t / sqrt(ᾱ_t)
        x0 = teacher(x / a.sqrt(), sigma, cond, uncond=uncond)
        x = scheduler.step(x0.to(x.dtype), t, x).prev_sample
    return x


@dataclass
class PairBank:
    """Noises, the generator's conditions, per-sample weights and the teacher's ODE answers."""

    z: torch.Tensor
    student: torch.Tensor
    weights: torch.Tensor
    target: torch.Tensor

    @classmethod
    def build(cls, trainer, n: int, num_steps: int, progress: bool = True) -> "PairBank":
        """n pairs drawn like training batches (same forget share and override rule), a training batch at a time."""
        parts, batch_size = [], trainer.cfg.train_batch_size
        for start in tqdm(range(0, n, batch_size), desc="teacher pairs", disable=not progress, leave=False):
            conds, z, _, _, weights = trainer.draw_batch()
            k = min(batch_size, n - start)
            with trainer.accelerator.autocast():
                target = teacher_ode_samples(
                    trainer.teacher,
                    trainer.task.pipe.scheduler.config,
                    z[:k],
                    conds.teacher[:k],
                    None if conds.uncond is None else conds.uncond[:k],
                    num_steps,
                )
            parts.append((z[:k], conds.student[:k], weights[:k], target.float()))
        return cls(*(torch.cat(column) for column in zip(*parts)))

    def sample(self, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """k pairs drawn uniformly (with the global RNG, so a resumed run draws as the original would)."""
        idx = torch.randint(len(self.z), (k,)).to(self.z.device)
        return self.z[idx], self.student[idx], self.weights[idx], self.target[idx]
