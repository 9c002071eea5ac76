"""Layered erasure (Layered Unlearning, Qian et al. 2025): forget k folds of the forget set in k stages.

The forgotten classes are split into `layers` folds, in the order given. Stage i runs SFD forgetting
folds 1..i and keeping every other class, its generator starting from stage i − 1's (the two-stage
`init_generator`; stage 1 starts from the teacher). The `max_train_steps` budget is split evenly over
the stages, so a layered run costs what a one-shot run of the same classes costs. Intermediate stages
are saved under `output_dir/stages/`; the last one is the exported model in `output_dir`. An
interrupted run resumed with `resume_from_checkpoint="latest"` skips finished stages and resumes the
stage it was in.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from .config import TrainingConfig, TrainingSetupError


def split_folds(names: list[str], layers: int) -> list[list[str]]:
    """`layers` contiguous folds of nearly equal size, in the given order."""
    if not 1 <= layers <= len(names):
        raise TrainingSetupError(
            f"layers must be between 1 and the number of forgotten classes ({len(names)}), got {layers}"
        )
    return [list(fold) for fold in np.array_split(np.array(names, dtype=object), layers)]


def stage_dirs(output_dir: str | os.PathLike, layers: int) -> list[Path]:
    out = Path(output_dir)
    return [out / "stages" / f"stage-{i + 1}-of-{layers}" for i in range(layers - 1)] + [out]


def stage_configs(cfg: TrainingConfig, forget_names: list[str]) -> list[TrainingConfig]:
    """The options of each stage of an already validated layered run (`cfg.layers` > 1): stage i forgets folds
    1..i into its own folder, with its share of the budget and the previous stage's generator as its start. On
    resuming, finished intermediate stages are left out and the stage that was running resumes."""
    folds = split_folds(forget_names, cfg.layers)
    steps = math.ceil(cfg.max_train_steps / cfg.layers)
    resuming = cfg.resume_from_checkpoint is not None
    stages, previous = [], cfg.init_generator
    for i, out in enumerate(stage_dirs(cfg.output_dir, cfg.layers)):
        done = (out / "model_index.json").exists() and (out / "training.json").exists()
        if not (resuming and done and out != Path(cfg.output_dir)):
            forgotten = [name for fold in folds[: i + 1] for name in fold]
            stages.append(
                cfg.replace(
                    forget="class=" + ",".join(forgotten),
                    output_dir=str(out),
                    max_train_steps=steps,
                    init_generator=previous,
                    overwrite_output_dir=True,
                    layers=1,
                    layer_folds=folds,
                    layer_stage=i + 1,
                    resume_from_checkpoint="latest" if resuming and (out / "checkpoints").is_dir() else None,
                    push_to_hub=cfg.push_to_hub and out == Path(cfg.output_dir),  # the last stage only
                )
            )
        previous = str(out)
    return stages
