"""`sfd.forget()` and `sfd.distill()`: one call from options to a trained one-step pipeline.

pipe = sfd.forget("assets/teacher", forget="class=trouser", output_dir="outputs/no-trouser")
pipe = sfd.forget("assets/t2i-teacher", forget="concept=sneaker", override="sandal")
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from accelerate import Accelerator

from .config import TrainingConfig, TrainingSetupError, load_config
from .layered import stage_configs
from .setup import validate
from .trainer import SFDTrainer


def forget(
    teacher=None,
    forget: str | None = None,
    config: str | os.PathLike | None = None,
    accelerator: Accelerator | None = None,
    **options,
):
    """Erase `forget` from a teacher into a one-step generator.

    Args:
        teacher: a folder, a Hub id or a loaded `ClassConditionalDiffusionPipeline` / `TextToImageDiffusionPipeline`
            (default: the embedded Fashion-MNIST class-conditional teacher).
        forget: `"class=NAME[,NAME…]"` for class teachers, `"concept=PHRASE"` / `"prompts=FILE"` for text teachers.
        config: a YAML file of options (the keys of `configs/default.yaml`).
        accelerator: an `accelerate.Accelerator` to train with (default: one made from the options).
        **options: any `TrainingConfig` option, e.g. `output_dir`, `override`, `max_train_steps`. With an
            `output_dir` the pipeline is saved there, with checkpoints, logs and a model card.

    Returns:
        The one-step pipeline (`OneStepClassConditionalPipeline` or `OneStepTextToImagePipeline`).
    """
    overrides = dict(options, forget=forget)
    if teacher is not None:
        overrides["teacher"] = teacher
    cfg = load_config(config, overrides)
    return run(cfg, validate(cfg), accelerator)


def distill(teacher=None, config: str | os.PathLike | None = None, accelerator: Accelerator | None = None, **options):
    """Plain SiD distillation of a class-conditional teacher into a one-step generator (nothing forgotten): the first
    stage of two-stage SFD, whose second stage is `forget(..., init_generator=<this output_dir>)`.

    Args:
        teacher, config, accelerator, **options: as for `forget`.

    Returns:
        The one-step pipeline.
    """
    overrides = dict(options, forget=None)
    if teacher is not None:
        overrides["teacher"] = teacher
    cfg = load_config(config, overrides)
    return SFDTrainer(cfg, validate(cfg, require_forget=False), accelerator).train()


def run(cfg: TrainingConfig, task, accelerator: Accelerator | None = None):
    """One SFD run of validated options, or a layered erasure in stages when `cfg.layers` > 1 (`sfd.training.layered`;
    each stage makes its own Accelerator, so its checkpoints hold that stage's two networks only)."""
    if cfg.layers == 1:
        return SFDTrainer(cfg, task, accelerator).train()
    if accelerator is not None:
        raise TrainingSetupError("layered erasure makes one Accelerator per stage: do not pass one")
    if cfg.resume_from_checkpoint is None:
        shutil.rmtree(Path(cfg.output_dir) / "stages", ignore_errors=True)
    pipe = None
    for stage in stage_configs(cfg, task.spec.describe()["forget"]):
        pipe = SFDTrainer(stage, validate(stage)).train()
    return pipe
