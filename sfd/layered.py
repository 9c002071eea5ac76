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
import shutil
from pathlib import Path

import numpy as np

from .conditioning import TrainingSetupError


def split_folds(names: list[str], layers: int) -> list[list[str]]:
    """`layers` contiguous folds of nearly equal size, in the given order."""
    if not 1 <= layers <= len(names):
        raise TrainingSetupError(f"layers must be between 1 and the number of forgotten classes ({len(names)}), got {layers}")
    return [list(fold) for fold in np.array_split(np.array(names, dtype=object), layers)]


def stage_dirs(output_dir: str | os.PathLike, layers: int) -> list[Path]:
    out = Path(output_dir)
    return [out / "stages" / f"stage-{i + 1}-of-{layers}" for i in range(layers - 1)] + [out]


def train_layered(cfg: dict, task):
    """Run the stages for an already validated `cfg` (with cfg["layers"] > 1); returns the last pipeline.
    Each stage makes its own Accelerator (its checkpoints hold that stage's two networks only)."""
    from .trainer import SFDTrainer, validate

    folds = split_folds(task.spec.describe()["forget"], cfg["layers"])
    dirs = stage_dirs(cfg["output_dir"], cfg["layers"])
    steps = math.ceil(cfg["max_train_steps"] / cfg["layers"])
    resuming = cfg["resume_from_checkpoint"] is not None
    if not resuming:
        shutil.rmtree(Path(cfg["output_dir"]) / "stages", ignore_errors=True)
    pipe, previous = None, cfg["init_generator"]
    for i, out in enumerate(dirs):
        done = (out / "model_index.json").exists() and (out / "training.json").exists()
        if resuming and done and out != Path(cfg["output_dir"]):
            previous = str(out)
            continue
        forgotten = [name for fold in folds[: i + 1] for name in fold]
        stage_cfg = dict(cfg, forget="class=" + ",".join(forgotten), output_dir=str(out), max_train_steps=steps,
                         init_generator=previous, overwrite_output_dir=True, layers=1, layer_folds=folds, layer_stage=i + 1,
                         resume_from_checkpoint="latest" if resuming and (out / "checkpoints").is_dir() else None)
        pipe = SFDTrainer(stage_cfg, validate(stage_cfg)).train()
        previous = str(out)
    return pipe
