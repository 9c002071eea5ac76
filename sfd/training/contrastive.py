"""The optional contrastive term (after Contrastive Unlearning): erase the forgotten condition inside the generator,
not only at its output.

For a forgotten row with generator input σ_init·z, let a be the generator's pooled middle-block features under the
forgotten condition f, p the frozen teacher's under the override o and n the teacher's under f itself. A two-way
InfoNCE with cosine similarities and temperature τ pulls a towards p and pushes it from n:

    L_con = E_forgotten softplus((cos(a, n) − cos(a, p)) / τ)   (= −log of p's share of the two exponentials)

added to the generator loss with weight λ_con (`contrastive_weight`; 0, the default, turns it off).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..core.features import middle_features


def contrastive_loss(a: torch.Tensor, p: torch.Tensor, n: torch.Tensor, temperature: float) -> torch.Tensor:
    """L_con above for rows of anchor a, positive p and negative n (N, C)."""
    return F.softplus((F.cosine_similarity(a, n, dim=-1) - F.cosine_similarity(a, p, dim=-1)) / temperature).mean()


@torch.no_grad()
def teacher_features(teacher_denoiser, network, x: torch.Tensor, sigma: float, cond: torch.Tensor) -> torch.Tensor:
    """The frozen teacher's pooled middle-block features at (x, σ) under `cond` (unguided)."""
    with middle_features(network) as captured:
        teacher_denoiser(x, sigma, cond)
    return captured[0]
