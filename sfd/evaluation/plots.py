"""Pictures for an sfd-eval report: before/after sample grid, per-class accuracy bars, forget rate over training."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from PIL import Image

from ..core.sampling import sample_conditioned
from ..core.viz import class_grid, prompt_label


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _side_by_side(
    model_pipe,
    reference_pipe,
    rows: list,
    key: str,
    names: list[str],
    marked: list[int],
    path: Path,
    per_row: int,
    seed: int,
) -> Path:
    """`per_row` samples of each row's condition (passed as `key`) through both pipelines with the same seeds;
    reference (left) and model (right), marked rows flagged."""

    conditions = [c for c in rows for _ in range(per_row)]
    grids = []
    for pipe in (reference_pipe, model_pipe):
        images, _ = sample_conditioned(pipe, conditions, key, batch_size=len(conditions), seed=seed, progress=False)
        grids.append(class_grid(images, per_row, marked, row_names=names))
    w, h = grids[0].width + grids[1].width + 20, max(g.height for g in grids)
    canvas = Image.new("RGB", (w, h), (255, 255, 255))
    canvas.paste(grids[0], (0, 0))
    canvas.paste(grids[1], (grids[0].width + 20, 0))
    canvas.save(path)
    return path


def before_after_grid(
    model_pipe, reference_pipe, id2label: dict, forgotten, path: Path, per_row: int = 8, seed: int = 0
) -> Path:
    """One row per class, forgotten classes marked."""
    ids = sorted(id2label)
    marked = [i for i, c in enumerate(ids) if c in set(forgotten)]
    return _side_by_side(
        model_pipe, reference_pipe, ids, "class_labels", [id2label[c] for c in ids], marked, path, per_row, seed
    )


def before_after_prompts(
    model_pipe,
    reference_pipe,
    prompts: list[str],
    num_forget: int,
    path: Path,
    per_row: int = 8,
    seed: int = 0,
    concepts=(),
) -> Path:
    """One row per prompt, the first `num_forget` (forget prompts) marked."""
    return _side_by_side(
        model_pipe,
        reference_pipe,
        prompts,
        "prompt",
        [prompt_label(p, concepts) for p in prompts],
        list(range(num_forget)),
        path,
        per_row,
        seed,
    )


def seed_grid(model_pipe, reference_pipe, prompt: str, path: Path, n: int = 16, seed: int = 0) -> Path:
    """`n` seeds of one prompt: the reference's samples in the top row, the model's (same seeds) below."""
    images = []
    for pipe in (reference_pipe, model_pipe):
        drawn, _ = sample_conditioned(pipe, [prompt] * n, "prompt", batch_size=n, seed=seed, progress=False)
        images.append(drawn)
    grid = class_grid(torch.cat(images), n, [], row_names=["reference", "model"])
    grid.save(path)
    return path


def per_class_bars(model: dict, reference: dict | None, forgotten_names, path: Path) -> Path:
    plt = _pyplot()
    names = list(model["per_class_accuracy"])
    x = torch.arange(len(names)).float()
    fig, ax = plt.subplots(figsize=(9, 3.5))
    if reference:
        ax.bar(x - 0.2, [reference["per_class_accuracy"].get(n, 0) for n in names], 0.4, label="reference")
    ax.bar(x + (0.2 if reference else 0), [model["per_class_accuracy"][n] for n in names], 0.4, label="model")
    ax.set_xticks(
        x.tolist(), [n + (" (forgotten)" if n in forgotten_names else "") for n in names], rotation=30, ha="right"
    )
    ax.set_ylabel("classified as its class")
    ax.set_ylim(0, 1)
    return _save(fig, ax, path)


def forget_rate_curve(metrics_jsonl: Path, path: Path) -> Path | None:
    """The forget accuracy and remaining accuracy logged during SFD training (logs/metrics.jsonl)."""
    if not metrics_jsonl.exists():
        return None
    rows = [json.loads(line) for line in metrics_jsonl.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "forget_accuracy" in r]
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    steps = [r["step"] for r in rows]
    ax.plot(steps, [r["forget_accuracy"] for r in rows], "o-", label="forget accuracy")
    ax.plot(steps, [r["remaining_accuracy"] for r in rows], "s-", label="remaining accuracy")
    ax.set_xlabel("SFD step")
    ax.set_ylim(0, 1)
    return _save(fig, ax, path)


def psi_tracking_curve(metrics_jsonl: Path, path: Path) -> Path | None:
    """ψ's denoising error on generator samples over the teacher's, per σ level, at each validation (below 1: ψ
    tracks the generator better than the teacher does)."""
    if not metrics_jsonl.exists():
        return None
    rows = [json.loads(line) for line in metrics_jsonl.read_text().splitlines() if line.strip()]
    levels = sorted(
        {k.removeprefix("psi_error_sigma_") for r in rows for k in r if k.startswith("psi_error_sigma_")}, key=float
    )
    if not levels:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for level in levels:
        kept = [r for r in rows if f"psi_error_sigma_{level}" in r and r.get(f"teacher_error_sigma_{level}")]
        ratio = [r[f"psi_error_sigma_{level}"] / r[f"teacher_error_sigma_{level}"] for r in kept]
        ax.plot([r["step"] for r in kept], ratio, "o-", label=f"σ = {level}")
    ax.axhline(1.0, color="gray", lw=0.8)
    ax.set_xlabel("SFD step")
    ax.set_ylabel("ψ error / teacher error")
    return _save(fig, ax, path)


def _save(fig, ax, path: Path) -> Path:
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def plot_curves(series: dict[str, dict], path: Path, title: str) -> Path:
    """Forget accuracy against attack steps, one line per named curve."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, c in series.items():
        ax.plot(c["steps"], [100 * v for v in c["forget_accuracy"]], marker="o", label=name)
    ax.set_xlabel("attacker's fine-tuning steps")
    ax.set_ylabel("forget accuracy (%)")
    ax.set_ylim(-2, 102)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
