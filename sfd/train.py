"""Erase classes from a class-conditional diffusion model with Score Forgetting Distillation.

    accelerate launch sfd/train.py --forget "class=trouser"
    accelerate launch sfd/train.py --config configs/my.yaml --override "class=sneaker"

Defaults live in configs/default.yaml; `--config` replaces the keys it names; flags win over both.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script (`accelerate launch sfd/train.py`): import the package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sfd.config import ConfigError, load_config  # noqa: E402
from sfd.trainer import TrainingSetupError, run, validate  # noqa: E402

FLAGS = {  # flag: (type, help); every flag is also a key of configs/default.yaml
    "teacher": (str, "class-conditional diffusers pipeline folder or Hub id"),
    "forget": (str, 'what to forget: "class=NAME[,NAME…]" (names or ids), or "concept=PHRASE" / "prompts=FILE"'),
    "override": (str, 'class: "auto", "far", "random", "class=NAME" or "class=A,B" (random among them); '
                         'text: "PHRASE" or "rules=FILE"; what the teacher draws instead'),
    "remain_prompts": (str, "text-to-image: file of remaining prompts, one per line"),
    "negative_concepts": (str, "text-to-image: file of words for the teacher's negative prompt on forget prompts"),
    "output_dir": (str, "where the one-step pipeline, checkpoints and logs go"),
    "max_train_steps": (int, "SFD iterations (fake_score_updates fake-score updates, then one generator update)"),
    "train_batch_size": (int, "samples per process per update"),
    "learning_rate_generator": (float, "Adam learning rate of the generator G_θ"),
    "learning_rate_fake_score": (float, "Adam learning rate of the fake score f_ψ"),
    "lr_scheduler": (str, "learning-rate schedule of both networks (diffusers': constant, linear, cosine, …)"),
    "lr_warmup_steps": (int, "iterations of learning-rate warm-up"),
    "fake_score_updates": (int, "fake-score updates per generator update"),
    "alpha": (float, "SiD's α"),
    "regression_weight": (float, "λ_reg: pull G towards the teacher's own ODE samples from the same noise (0: off)"),
    "regression_pairs": (int, "teacher (noise, sample) pairs made before training for the regression term"),
    "sigma_init": (float, "noise level of the generator's input"),
    "init_generator": (str, "two-stage SFD: a one-step pipeline folder (e.g. from sfd.distill) to start G from"),
    "forget_weight": (float, "λ_f, weight of the forgetting term"),
    "layers": (int, "layered erasure: split the forgotten classes into this many folds, erased in stages"),
    "forget_fraction": (float, "share of each batch drawn from forgotten classes"),
    "guidance_scale": (float, "classifier-free guidance inside the teacher"),
    "fake_score_guidance_scale": (float, "classifier-free guidance inside the fake score"),
    "condition_dropout": (float, "share of the fake score's conditions dropped (prompt dropout) when it is guided"),
    "seed": (int, "random seed"),
    "mixed_precision": (str, "auto | no | fp16 | bf16 (auto: bf16 where the device computes it natively, else fp32)"),
    "checkpointing_steps": (int, "save a resumable checkpoint every N steps"),
    "resume_from_checkpoint": (str, 'a checkpoint folder or "latest"'),
    "validation_steps": (int, "measure the forget rate and save a sample grid every N steps"),
    "validation_samples_per_class": (int, "samples per class at each validation"),
    "final_eval_samples_per_class": (int, "samples per class of the final check in the model card (0 skips it)"),
    "classifier": (str, "transformers image classifier used for validation (class teachers)"),
    "clip": (str, "CLIP model used for validation (text-to-image teachers)"),
    "report_to": (str, "accelerate tracker, e.g. tensorboard or wandb"),
}


def optional_str(text: str) -> str | None:
    """A string flag; "null" / "none" unset it (e.g. `--classifier null` skips validation)."""
    return None if text.strip().lower() in ("null", "none") else text


def parse_args(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                argument_default=argparse.SUPPRESS)
    p.add_argument("--config", help="YAML file of options (keys of configs/default.yaml)")
    for name, (typ, help_) in FLAGS.items():
        p.add_argument(f"--{name}", type=optional_str if typ is str else typ, help=help_)
    p.add_argument("--learning_rate", type=float, help="set both learning rates")
    for name in ("overwrite_output_dir", "gradient_checkpointing", "use_8bit_adam", "negative_forget_class"):
        p.add_argument(f"--{name}", action="store_true")
    # unset flags stay out of the result, so the config files decide them
    args = vars(p.parse_args(argv))
    both = args.pop("learning_rate", None)
    if both is not None:
        args.setdefault("learning_rate_generator", both)
        args.setdefault("learning_rate_fake_score", both)
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    # the run's own messages (the override chosen, validation figures, resuming) at INFO, as diffusers' scripts do
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", datefmt="%H:%M:%S",
                        level=logging.INFO)
    try:
        cfg = load_config(args.pop("config", None), args)
        task = validate(cfg)
    except (ConfigError, TrainingSetupError) as err:
        raise SystemExit(f"sfd-train: error: {err}") from None
    run(cfg, task)


if __name__ == "__main__":
    main()
