"""sfd-train: erase classes or concepts from a diffusion model with Score Forgetting Distillation.

    accelerate launch sfd/train.py --forget "class=trouser"
    sfd-train --config configs/t2i-sneaker.yaml --override "class=sneaker"

Every option of `sfd.training.config.TrainingConfig` is a flag; `--config FILE` names the options it changes;
flags win over both.
"""

from __future__ import annotations

import argparse
import logging

from ..training.api import run
from ..training.config import TrainingSetupError, cli_arguments, load_config
from ..training.setup import validate


def parse_args(argv=None) -> dict:
    """The flags given (unset ones stay out, so the config file and the defaults decide them)."""
    p = argparse.ArgumentParser(
        prog="sfd-train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,
    )
    p.add_argument("--config", help="YAML file of options (keys of configs/default.yaml)")
    p.add_argument("--learning_rate", type=float, help="set both learning rates")
    cli_arguments(p)
    args = vars(p.parse_args(argv))
    both = args.pop("learning_rate", None)
    if both is not None:
        args.setdefault("learning_rate_generator", both)
        args.setdefault("learning_rate_fake_score", both)
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    # the run's own messages (the override chosen, validation figures, resuming) at INFO, as diffusers' scripts do
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", datefmt="%H:%M:%S", level=logging.INFO
    )
    try:
        cfg = load_config(args.pop("config", None), args)
        task = validate(cfg)
    except TrainingSetupError as err:
        raise SystemExit(f"sfd-train: error: {err}") from None
    run(cfg, task)


if __name__ == "__main__":
    main()
