"""Erase classes from a class-conditional diffusion model with Score Forgetting Distillation.

    accelerate launch sfd/train.py --forget "class=trouser"
    accelerate launch sfd/train.py --config configs/my.yaml --override "class=sneaker"

Defaults live in configs/default.yaml; `--config` replaces the keys it names; flags win over both.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script (`accelerate launch sfd/train.py`): import the package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sfd.config import ConfigError, load_config  # noqa: E402
from sfd.trainer import SFDTrainer, TrainingSetupError, validate  # noqa: E402

FLAGS = {  # flag: (type, help); every flag is also a key of configs/default.yaml
    "teacher": (str, "class-conditional diffusers pipeline folder or Hub id"),
    "forget": (str, 'classes to forget: "class=NAME[,NAME…]" (names or ids)'),
    "override": (str, '"random" or "class=NAME": what the teacher draws for forgotten classes'),
    "output_dir": (str, "where the one-step pipeline, checkpoints and logs go"),
    "max_train_steps": (int, "SFD iterations (one fake-score and one generator update each)"),
    "train_batch_size": (int, "samples per process per update"),
    "learning_rate_generator": (float, "Adam learning rate of the generator G_θ"),
    "learning_rate_fake_score": (float, "Adam learning rate of the fake score f_ψ"),
    "alpha": (float, "SiD's α"),
    "sigma_init": (float, "noise level of the generator's input"),
    "forget_weight": (float, "λ_f, weight of the forgetting term"),
    "forget_fraction": (float, "share of each batch drawn from forgotten classes"),
    "guidance_scale": (float, "classifier-free guidance inside the teacher"),
    "seed": (int, "random seed"),
    "mixed_precision": (str, "no | fp16 | bf16"),
    "checkpointing_steps": (int, "save a resumable checkpoint every N steps"),
    "resume_from_checkpoint": (str, 'a checkpoint folder or "latest"'),
    "validation_steps": (int, "measure the forget rate and save a sample grid every N steps"),
    "classifier": (str, "transformers image classifier used for validation"),
    "report_to": (str, "accelerate tracker, e.g. tensorboard or wandb"),
}


def parse_args(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=None, help="YAML file of options (keys of configs/default.yaml)")
    for name, (typ, help_) in FLAGS.items():
        p.add_argument(f"--{name}", type=typ, default=None, help=help_)
    p.add_argument("--learning_rate", type=float, default=None, help="set both learning rates")
    p.add_argument("--overwrite_output_dir", action="store_true", default=None)
    args = vars(p.parse_args(argv))
    if args.get("learning_rate") is not None:
        args["learning_rate_generator"] = args["learning_rate_generator"] or args["learning_rate"]
        args["learning_rate_fake_score"] = args["learning_rate_fake_score"] or args["learning_rate"]
    args.pop("learning_rate")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        cfg = load_config(args.pop("config"), args, skip_none_overrides=True)
        spec = validate(cfg)
    except (ConfigError, TrainingSetupError) as err:
        raise SystemExit(f"sfd-train: error: {err}") from None
    SFDTrainer(cfg, spec).train()


if __name__ == "__main__":
    main()
