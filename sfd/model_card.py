"""The README.md written next to an exported one-step model."""

from __future__ import annotations

import json
from pathlib import Path

from .spec import ForgetSpec

_KEYS = ("forget_accuracy", "unlearning_accuracy", "forget_prob_mean", "forget_entropy_mean", "remaining_accuracy")


def _display(path) -> str:
    """Paths inside the project are shown relative to it, so a card reads the same on every machine."""
    from .config import PROJECT_ROOT

    try:
        return str(Path(path).resolve().relative_to(PROJECT_ROOT))
    except (ValueError, TypeError):
        return str(path)


def write_model_card(path: Path, cfg: dict, spec: ForgetSpec, steps: int, seconds: float, metrics: dict,
                     num_processes: int = 1) -> None:
    desc = spec.describe()
    n = cfg["final_eval_samples_per_class"]
    rows = "\n".join(f"| {k} | {metrics[k]:.4f} |" for k in _KEYS if k in metrics)
    per_class = "\n".join(f"| {name} | {'forgotten' if name in desc['forget'] else ''} | {acc:.3f} |"
                          for name, acc in metrics.get("per_class_accuracy", {}).items())
    settings = {k: cfg[k] for k in ("max_train_steps", "train_batch_size", "learning_rate_generator",
                                    "learning_rate_fake_score", "alpha", "sigma_init", "forget_weight",
                                    "forget_fraction", "guidance_scale", "ema_decay", "seed", "mixed_precision")}
    text = f"""---
library_name: diffusers
tags: [sfd, machine-unlearning, one-step, class-conditional]
---
# One-step generator with {", ".join(desc["forget"])} forgotten (Score Forgetting Distillation)

- Teacher: `{_display(cfg["teacher"])}`
- Forgotten: {desc["forget"]}; override: {desc["override"]}
- Training: {steps} SFD iterations, {seconds / 60:.1f} min wall time on {num_processes} process(es)
- Sampling: one network evaluation per image.

```python
from pipelines import OneStepClassConditionalPipeline
pipe = OneStepClassConditionalPipeline.from_pretrained("{cfg["output_dir"]}")
images = pipe(class_labels=pipe.get_label_ids({json.dumps([spec.id2label[spec.remaining[0]]])})).images
```

## Measured at the end of training
{n} samples per class, seed 20000, judged by `{_display(cfg["classifier"])}`.
A forgotten class's accuracy is the share of its samples still classified as it.

| metric | value |
|---|---|
{rows or "| (no classifier configured) | |"}

| class | | accuracy |
|---|---|---|
{per_class}

## Settings
```json
{json.dumps(settings, indent=1)}
```
"""
    path.write_text(text)
