"""Numbers computed from classifier outputs and features: entropy, FID, precision / recall, density / coverage,
diversity, bootstrap intervals."""

from __future__ import annotations

import numpy as np
import torch
from scipy import linalg


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Predictive entropy H(p) = −Σ p log p per sample, in nats."""
    return -(probs * probs.clamp_min(1e-12).log()).sum(-1)


def bootstrap_ci(values: np.ndarray, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-sample values."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (n_boot, len(values)))].mean(1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def feature_statistics(features: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(features, dtype=np.float64)
    return f.mean(0), np.cov(f, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """FID = ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^{1/2}), the matrix square root by scipy.linalg.sqrtm."""
    diff = mu1 - mu2
    covmean, _ = linalg.sqrtm(sigma1 @ sigma2, disp=False)
    if not np.isfinite(covmean).all():  # nearly singular product: regularise as in the FID reference code
        offset = np.eye(sigma1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def bootstrap_fid(features: np.ndarray, mu_ref, sigma_ref, n_boot: int = 20, seed: int = 0) -> tuple[float, float]:
    """95% interval of FID from resampling the generated features (reference statistics held fixed).

    Resampling with replacement duplicates samples, which raises every resampled FID by a bias; the
    spread of the resampled values is therefore centred on the measured FID: FID + (q − mean)."""
    rng = np.random.default_rng(seed)
    f = np.asarray(features, dtype=np.float64)
    fid = frechet_distance(*feature_statistics(f), mu_ref, sigma_ref)
    vals = np.array(
        [
            frechet_distance(*feature_statistics(f[rng.integers(0, len(f), len(f))]), mu_ref, sigma_ref)
            for _ in range(n_boot)
        ]
    )
    lo, hi = np.quantile(vals, [0.025, 0.975]) - vals.mean()
    return float(max(0.0, fid + lo)), float(fid + hi)


def precision_recall(
    real: np.ndarray, fake: np.ndarray, k: int = 3, max_points: int = 5000, seed: int = 0
) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al., 2019) with k-NN balls in feature space.

    precision: share of generated samples inside some real sample's k-NN ball (fidelity);
    recall: share of real samples inside some generated sample's k-NN ball (coverage)."""
    rng = np.random.default_rng(seed)
    real = torch.from_numpy(_subsample(np.asarray(real, np.float32), max_points, rng))
    fake = torch.from_numpy(_subsample(np.asarray(fake, np.float32), max_points, rng))

    def coverage(support: torch.Tensor, query: torch.Tensor) -> float:
        radius = torch.cdist(support, support).kthvalue(k + 1, dim=1).values  # k-th neighbour, self excluded
        return float((torch.cdist(query, support) <= radius[None, :]).any(1).float().mean())

    return coverage(real, fake), coverage(fake, real)


def density_coverage(
    real: np.ndarray, fake: np.ndarray, k: int = 5, max_points: int = 5000, seed: int = 0
) -> tuple[float, float]:
    """Density and coverage (Naeem et al., 2020, eqs. 3–4), robust to outliers among the real samples.

    density = (1 / kM) Σ_j Σ_i 1[Y_j ∈ B(X_i, NND_k(X_i))]: how many real k-NN balls a generated sample falls in, on
    average, over k (1 when the two distributions match); coverage = (1 / N) Σ_i 1[∃ j: Y_j ∈ B(X_i, NND_k(X_i))]: the
    share of real samples whose k-NN ball holds some generated sample."""
    rng = np.random.default_rng(seed)
    real = torch.from_numpy(_subsample(np.asarray(real, np.float32), max_points, rng))
    fake = torch.from_numpy(_subsample(np.asarray(fake, np.float32), max_points, rng))
    radius = torch.cdist(real, real).kthvalue(k + 1, dim=1).values  # NND_k, self excluded
    inside = torch.cdist(fake, real) <= radius[None, :]  # (M generated, N real)
    return float(inside.sum() / (k * len(fake))), float(inside.any(0).float().mean())


def mean_pairwise_distance(features: np.ndarray, max_points: int = 1000, seed: int = 0) -> float:
    """Diversity of one condition's samples: the mean Euclidean distance between two distinct samples' features."""
    rng = np.random.default_rng(seed)
    f = torch.from_numpy(_subsample(np.asarray(features, np.float32), max_points, rng))
    if len(f) < 2:
        return float("nan")
    return float(torch.pdist(f).mean())


def diversity_ratios(model: dict[str, float], reference: dict[str, float]) -> dict:
    """Diversity of a model against its reference (e.g. the teacher), condition by condition: the ratio of their mean
    pairwise feature distances, with its mean and its worst (lowest) condition; 1 means as diverse as the reference."""
    ratios = {c: model[c] / reference[c] for c in model if c in reference and reference[c] > 0}
    if not ratios:
        return {}
    worst = min(ratios, key=ratios.get)
    return {
        "diversity_ratio": ratios,
        "diversity_ratio_mean": float(np.mean(list(ratios.values()))),
        "diversity_ratio_worst": ratios[worst],
        "diversity_ratio_worst_condition": worst,
    }


def _subsample(x: np.ndarray, n: int, rng) -> np.ndarray:
    return x if len(x) <= n else x[rng.choice(len(x), n, replace=False)]
