"""The README.md written next to an exported one-step model."""

from __future__ import annotations

import json
from pathlib import Path

from ..core.paths import display_path
from ..core.precision import describe_machine
from ..core.spec import override_text
from .config import TrainingConfig

_KEYS = {
    "class": (
        "forget_accuracy",
        "forget_accuracy_floor",
        "unlearning_accuracy",
        "forget_prob_mean",
        "forget_entropy_mean",
        "remaining_accuracy",
    ),
    "text": ("clip_forget_detection", "clip_score_remaining", "clip_accuracy_remaining"),
}


def _usage(cfg: TrainingConfig, task) -> str:
    spec = task.spec
    if task.kind == "class":
        name = json.dumps([spec.id2label[spec.remaining[0]]])
        return (
            f"from sfd.pipelines import OneStepClassConditionalPipeline\n"
            f'pipe = OneStepClassConditionalPipeline.from_pretrained("{cfg.output_dir}")\n'
            f"images = pipe(class_labels=pipe.get_label_ids({name})).images"
        )
    return (
        f"from sfd.pipelines import OneStepTextToImagePipeline\n"
        f'pipe = OneStepTextToImagePipeline.from_pretrained("{cfg.output_dir}")\n'
        f"images = pipe(prompt={json.dumps([spec.remain_prompts[0]])}).images"
    )


def _per_condition_table(task, metrics: dict) -> str:
    forgotten = {n.lower() for n in task.spec.describe()["forget"]}
    if task.kind == "class":
        rows = "\n".join(
            f"| {name} | {'forgotten' if name.lower() in forgotten else ''} | {acc:.3f} |"
            for name, acc in metrics.get("per_class_accuracy", {}).items()
        )
        return f"| class | | accuracy |\n|---|---|---|\n{rows}"
    rows = "\n".join(f"| {p} | {acc:.3f} |" for p, acc in metrics.get("per_prompt_clip_accuracy", {}).items())
    return f"| prompt | CLIP zero-shot accuracy |\n|---|---|\n{rows}"


def write_model_card(
    path: Path, cfg: TrainingConfig, task, steps: int, seconds: float, metrics: dict, num_processes: int = 1
) -> None:
    desc = task.spec.describe()
    n = cfg.final_eval_samples_per_class
    rows = "\n".join(f"| {k} | {metrics[k]:.4f} |" for k in _KEYS[task.kind] if k in metrics)
    judge = cfg.classifier if task.kind == "class" else cfg.clip
    unit = "class" if task.kind == "class" else "evaluation prompt"
    settings = {
        k: getattr(cfg, k)
        for k in (
            "max_train_steps",
            "train_batch_size",
            "learning_rate_generator",
            "learning_rate_fake_score",
            "lr_scheduler",
            "adam_beta1",
            "fake_score_updates",
            "regression_weight",
            "regression_pairs",
            "alpha",
            "sigma_init",
            "sigma_min",
            "sigma_max",
            "sigma_u_max",
            "forget_weight",
            "forget_fraction",
            "guidance_scale",
            "negative_forget_class",
            "fake_score_guidance_scale",
            "ema_decay",
            "seed",
            "mixed_precision",
        )
    }
    extra = (
        ""
        if task.kind == "class"
        else (
            f"- Prompts: {desc['forget_prompts']} forget prompts, {desc['remain_prompts']} remaining prompts"
            + (f'; negative prompt for the teacher: "{desc["negative_prompt"]}"' if desc["negative_prompt"] else "")
            + "\n"
        )
    )
    if cfg.layer_folds:
        start = display_path(cfg.init_generator) if cfg.init_generator else "the teacher"
        extra += (
            f"- Layered erasure: stage {cfg.layer_stage} of {len(cfg.layer_folds)} over the folds "
            f"{cfg.layer_folds}; generator started from {start}\n"
        )
    title = (
        f"One-step generator with {', '.join(desc['forget'])} forgotten (Score Forgetting Distillation)"
        if desc["forget"]
        else "One-step generator distilled with SiD (nothing forgotten)"
    )
    kind_tag = "class-conditional" if task.kind == "class" else "text-to-image"
    machine = describe_machine()
    explanation = (
        "A forgotten class's accuracy is the share of its samples still classified as it; its floor is what a perfect "
        "eraser would score (real images of the override classes that the classifier calls by the forgotten name)."
        if task.kind == "class"
        else "CLIP forget detection is the share of forget-prompt samples CLIP names as a forgotten concept."
    )
    text = f"""---
library_name: diffusers
tags: [sfd, machine-unlearning, one-step, {kind_tag}]
---
# {title}

- Teacher: `{display_path(cfg.teacher)}`
- Forgotten: {desc["forget"]}; override: {override_text(desc)}
{extra}- Training: {steps} SFD iterations, {seconds / 60:.1f} min wall time on {num_processes} process(es), {machine}
- Sampling: one network evaluation per image.

```python
{_usage(cfg, task)}
```

## Measured at the end of training
{n} samples per {unit}, seed 20000, judged by `{display_path(judge)}`.
{explanation}

| metric | value |
|---|---|
{rows or "| (no judge configured) | |"}

{_per_condition_table(task, metrics)}

## Settings
```json
{json.dumps(settings, indent=1)}
```
"""
    path.write_text(text)
