"""The checks of a run that need no weights: options, the teacher's configs, the output folder."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

from ..core.precision import resolve_mixed_precision
from ..pipelines.denoiser import is_edm, is_flow_matching
from .conditioning import (
    check_teacher_family,
    inspect,
    teacher_kind,
    teacher_scheduler_config,
    teacher_sigma_range,
)
from .config import TrainingConfig, TrainingSetupError
from .hub import check_can_push
from .image_forget import check_images, identify_forget_class, image_paths, invert_text_concept
from .layered import split_folds


def default_output_dir(forget_names) -> str:
    names = "-".join(re.sub(r"[^a-z0-9]+", "_", n.lower()).strip("_") for n in forget_names)
    return os.path.join("outputs", f"forget-{names}")


def validate(cfg: TrainingConfig, require_forget: bool = True):
    """Every check that needs no weights; fills `cfg.output_dir`, `cfg.guidance_scale` and `cfg.mixed_precision`.
    `--forget image=` loads the teacher (after the files and the teacher's family are checked) to read the image.

    Args:
        cfg: the run's options.
        require_forget: False allows plain SiD distillation (nothing forgotten, class teachers).

    Returns:
        The teacher's conditioning (`ClassConditioning` or `TextConditioning`) with its parsed spec.
    """
    cfg.check()
    if not cfg.forget and require_forget:
        raise TrainingSetupError(
            'nothing to forget: pass --forget "class=NAME" (e.g. class=trouser) or "concept=PHRASE"'
        )
    if cfg.init_generator:
        check_init_generator(cfg)
    cfg.mixed_precision = resolve_mixed_precision(cfg.mixed_precision)  # recorded resolved in the model card
    if cfg.use_8bit_adam:
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise TrainingSetupError("use_8bit_adam needs `pip install bitsandbytes` (a CUDA machine)") from None
    paths = image_paths(cfg.forget)
    if paths is not None:  # `image=`: the teacher names the class it sees (loads the teacher; files checked first)
        check_images(paths)
        check_teacher_family(cfg.teacher)
        lo, hi = teacher_sigma_range(cfg.teacher)
        sigma_range = (max(cfg.sigma_min, lo), min(cfg.sigma_max, hi))
        if teacher_kind(cfg.teacher) == "class":  # the class the teacher sees in the image
            evidence = identify_forget_class(cfg, paths, sigma_range)
        else:  # a token learned from the image, and its nearest word
            evidence = invert_text_concept(cfg, paths, sigma_range)
    task = inspect(cfg)
    task.forget_image = evidence if paths is not None else None
    task.check_judge(cfg)
    spec = task.spec
    lo, hi = teacher_sigma_range(cfg.teacher)
    scheduler_cfg = teacher_scheduler_config(cfg.teacher)
    if cfg.regression_weight > 0 and (is_edm(scheduler_cfg) or is_flow_matching(scheduler_cfg)):
        raise TrainingSetupError(
            "regression_weight > 0 solves the teacher's ODE with a DDPM-family DPM-Solver; it is not "
            "available for EDM-style or flow-matching teachers yet: set regression_weight 0"
        )
    if max(cfg.sigma_min, lo) >= min(cfg.sigma_max, hi):  # the trainer clamps the range to the teacher's
        raise TrainingSetupError(
            f"the training σ range [{cfg.sigma_min}, {cfg.sigma_max}] misses the teacher's "
            f"[{lo:.3g}, {hi:.3g}]: set sigma_min / sigma_max"
        )
    if cfg.layers != 1:
        if task.kind != "class":
            raise TrainingSetupError(
                "layered erasure (layers > 1) splits a set of classes: it needs a class-conditional teacher"
            )
        split_folds(spec.describe()["forget"], cfg.layers)  # raises unless 1 <= layers <= number of classes
    if cfg.unet_single_file:
        check_stable_diffusion_view(cfg, task)
    cfg.guidance_scale = task.guidance_scale
    cfg.output_dir = cfg.output_dir or (
        default_output_dir(spec.describe()["forget"]) if cfg.forget else os.path.join("outputs", "distilled")
    )
    check_output_dir(cfg, spec)
    if cfg.push_to_hub:
        check_can_push(cfg)
    return task


def check_stable_diffusion_view(cfg: TrainingConfig, task) -> None:
    """`unet_single_file` is written beside the stock Stable Diffusion view: the teacher must have one."""
    from .stable_diffusion_view import view_support

    if not cfg.stable_diffusion_view:
        raise TrainingSetupError(
            "unet_single_file is written with the stable-diffusion/ view: set stable_diffusion_view"
        )
    reason = view_support(*task.teacher_configs, teacher_scheduler_config(cfg.teacher))
    if reason is not None:
        raise TrainingSetupError(
            "unet_single_file needs a Stable Diffusion 1.x / 2.x-layout teacher (text encoder, UNet2DConditionModel, "
            f"VAE, DDPM-family scheduler); {cfg.teacher} is not one: {reason}"
        )


def check_init_generator(cfg: TrainingConfig) -> None:
    """Two-stage SFD starts G from a one-step pipeline folder distilled at the same σ_init: G(z) = D(σ_init·z, σ_init)
    means another function at another σ_init."""
    folder = Path(cfg.init_generator)
    index = folder / "model_index.json"
    if not ((folder / "unet").is_dir() or (folder / "transformer").is_dir()) or not index.is_file():
        raise TrainingSetupError(
            f"init_generator {folder} is not a one-step pipeline folder (no unet/ or transformer/, or no "
            "model_index.json)"
        )
    stage1 = json.loads(index.read_text()).get("sigma_init")
    if stage1 is None:
        raise TrainingSetupError(
            f"init_generator {folder} records no sigma_init: it is not a one-step pipeline of sfd"
        )
    if not math.isclose(stage1, cfg.sigma_init):
        raise TrainingSetupError(
            f"init_generator {folder} was distilled at sigma_init {stage1}, not {cfg.sigma_init}: "
            f"pass --sigma_init {stage1}"
        )


def check_output_dir(cfg: TrainingConfig, spec) -> None:
    """An output folder that holds a run is resumed (same spec), replaced (`overwrite_output_dir`) or refused."""
    out = Path(cfg.output_dir)
    state_file = out / "checkpoints" / "run.json"
    if out.exists() and any(out.iterdir()) and not cfg.overwrite_output_dir:
        if cfg.resume_from_checkpoint is None:
            raise TrainingSetupError(
                f"{out} already holds a run; pass --resume_from_checkpoint latest to continue it, "
                "--overwrite_output_dir to replace it, or another --output_dir"
            )
        saved = json.loads(state_file.read_text()) if state_file.exists() else None
        if saved and saved.get("request", saved["spec"]) != spec.request():
            raise TrainingSetupError(
                f"{out} holds a run with another forget/override spec; it cannot be resumed with this one"
            )
