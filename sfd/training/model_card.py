"""The README.md written next to an exported one-step model: the Hub's front matter (`huggingface_hub.ModelCardData`),
how to load the folder, a grid of samples (samples.png) and the figures measured at the end of training."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch
from huggingface_hub import ModelCard, ModelCardData
from huggingface_hub.utils import HFValidationError, validate_repo_id

from ..core.paths import display_path
from ..core.precision import describe_machine
from ..core.sampling import sample_classes, sample_prompts
from ..core.spec import override_text
from ..core.viz import class_grid, grid_classes, prompt_label, shrink
from ..evaluation.evaluate_text import evaluation_prompts
from .config import TrainingConfig
from .hub import hub_repo_id

logger = logging.getLogger(__name__)  # the card is written on the main process only
SAMPLES_FILE = "samples.png"
# The Hub has no task for class-conditional generation (facebook/DiT-XL-2-256 sets no pipeline_tag); its image
# generation task without a text input is unconditional-image-generation, so a class-conditional model is listed there.
PIPELINE_TAGS = {"class": "unconditional-image-generation", "text": "text-to-image"}
UNLEARNING_KEYS = ("forget", "override", "override_pool", "override_chosen_by")  # of spec.describe(), under `sfd:`
SAMPLES_PER_ROW, SAMPLES_SEED = 4, 0  # samples.png: images per class or prompt, and their seed

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


def _teacher_source(teacher) -> str:
    """The teacher's folder or Hub id as given (a loaded pipeline: where it was loaded from, else its class)."""
    if isinstance(teacher, (str, os.PathLike)):
        return str(teacher)
    return str(getattr(teacher, "name_or_path", None) or type(teacher).__name__)


def teacher_name(teacher) -> str:
    """The teacher as the card and training.json name it: a Hub id as given, a folder in its display form."""
    source = _teacher_source(teacher)
    return display_path(source) if Path(source).expanduser().exists() else source


def hub_base_model(teacher) -> str | None:
    """The teacher's Hub id (namespace/name) for `base_model`; None for a local folder, as the Hub refuses a card whose
    base_model is not a model id on the Hub."""
    source = _teacher_source(teacher)
    if "/" not in source or Path(source).expanduser().exists():
        return None
    try:
        validate_repo_id(source)
    except HFValidationError:
        return None
    return source


def card_license(cfg: TrainingConfig) -> str:
    """--license, else the teacher card's license (a distilled model inherits its terms), else "other"."""
    if cfg.license:
        return cfg.license
    readme, hub_id = Path(_teacher_source(cfg.teacher)).expanduser() / "README.md", hub_base_model(cfg.teacher)
    if not readme.is_file() and hub_id is None:
        return "other"
    try:
        return ModelCard.load(readme if readme.is_file() else hub_id).data.license or "other"
    except Exception as err:  # best effort: a card that cannot be read leaves the license to --license
        logger.warning(f"could not read the teacher's license ({err}); the card says license: other (set --license)")
        return "other"


def card_data(cfg: TrainingConfig, task) -> ModelCardData:
    """The front matter the Hub reads: library, task, tags, base model, license; and under `sfd` what was forgotten."""
    desc = task.spec.describe()
    kind_tag = "class-conditional" if task.kind == "class" else "text-to-image"
    return ModelCardData(
        library_name="diffusers",
        pipeline_tag=PIPELINE_TAGS[task.kind],
        tags=["diffusers", "sfd", "machine-unlearning", "one-step", kind_tag],
        base_model=hub_base_model(cfg.teacher),
        license=card_license(cfg),
        sfd={"teacher": teacher_name(cfg.teacher)} | {k: desc[k] for k in UNLEARNING_KEYS if k in desc},
    )


def model_location(cfg: TrainingConfig) -> str:
    """Where a reader loads the model from: the Hub repository when it is uploaded, else the output folder."""
    return hub_repo_id(cfg) if cfg.push_to_hub else display_path(cfg.output_dir)


def _usage(cfg: TrainingConfig, task) -> str:
    spec, where = task.spec, model_location(cfg)
    if task.kind == "class":
        name = json.dumps([spec.id2label[spec.remaining[0]]])
        cls, call = "OneStepClassConditionalPipeline", f"class_labels=pipe.get_label_ids({name})"
    else:
        cls, call = "OneStepTextToImagePipeline", f"prompt={json.dumps([spec.remain_prompts[0]])}"
    return (
        "# diffusers alone: the folder carries its pipeline code (pipeline_sfd.py)\n"
        "from diffusers import DiffusionPipeline\n"
        f'pipe = DiffusionPipeline.from_pretrained("{where}", trust_remote_code=True)\n'
        f"images = pipe({call}).images\n"
        "\n"
        "# or with sfd installed\n"
        f"from sfd.pipelines import {cls}\n"
        f'pipe = {cls}.from_pretrained("{where}")'
    )


@torch.no_grad()
def save_sample_grid(
    pipe, task, path: Path, per_row: int = SAMPLES_PER_ROW, max_rows: int = 10, seed: int = SAMPLES_SEED
) -> None:
    """A grid of one-step samples, `per_row` per class or prompt, forgotten rows (marked red) and remaining ones, at
    most `max_rows` rows, drawn with a fixed seed; images above 128 px are shrunk to 128 px."""
    spec = task.spec
    if task.kind == "class":
        ids = grid_classes(sorted(spec.id2label), spec.forget, max_rows)
        images, _ = sample_classes(pipe, [i for i in ids for _ in range(per_row)], seed=seed, progress=False)
        names, marked = [spec.id2label[i] for i in ids], [k for k, i in enumerate(ids) if i in spec.forget]
    else:
        forget_p, remain_p = evaluation_prompts(spec.concepts, pipe.concepts, spec.forget_prompts, spec.remain_prompts)
        forget_p = forget_p[: max_rows // 2]
        prompts = forget_p + remain_p[: max_rows - len(forget_p)]
        images, _ = sample_prompts(pipe, [p for p in prompts for _ in range(per_row)], seed=seed, progress=False)
        names, marked = [prompt_label(p, pipe.concepts or spec.concepts) for p in prompts], range(len(forget_p))
    size = max(images.shape[-2:])
    class_grid(shrink(images), per_row, marked, scale=2 if size <= 64 else 1, row_names=names).save(path)


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
    e = task.forget_image
    if e and "chosen" in e:
        extra += (
            f"- Forgotten class chosen from {len(e['images'])} image(s) by the teacher's own denoising loss: "
            f"{e['chosen']!r} (runner-up {e['runner_up']!r}, relative margin {e['margin']:.1%})\n"
        )
    elif e:
        extra += (
            f"- Forgotten concept learned from {len(e['images'])} image(s) as the token {e['token']!r} (textual "
            f"inversion, {e['inversion_steps']} steps); nearest words {e['nearest_words']}; forgotten: {e['concepts']}\n"
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
    machine = describe_machine()
    explanation = (
        "A forgotten class's accuracy is the share of its samples still classified as it; its floor is what a perfect "
        "eraser would score (real images of the override classes that the classifier calls by the forgotten name)."
        if task.kind == "class"
        else "CLIP forget detection is the share of forget-prompt samples CLIP names as a forgotten concept."
    )
    body = f"""# {title}

- Teacher: `{teacher_name(cfg.teacher)}`
- Forgotten: {desc["forget"]}; override: {override_text(desc)}
{extra}- Training: {steps} SFD iterations, {seconds / 60:.1f} min wall time on {num_processes} process(es), {machine}
- Sampling: one network evaluation per image.

```python
{_usage(cfg, task)}
```

![samples]({SAMPLES_FILE})

{SAMPLES_PER_ROW} samples per {unit}, seed {SAMPLES_SEED}; a red bar marks the forgotten rows.

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
    ModelCard(f"---\n{card_data(cfg, task).to_yaml()}\n---\n{body}").save(path)
