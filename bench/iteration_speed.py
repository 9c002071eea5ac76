"""Seconds per SFD iteration of the default run (two ψ updates, one G update) under ways of making it faster.

    python -m bench.iteration_speed [--variants default fp32 bf16 channels_last compile] [--iterations 15]

Each variant builds the default trainer (`--forget class=trouser`; `fp32` / `bf16` force its autocast), runs 3 warm-up iterations (for `compile`
these include the compilation, reported apart) and times the next `--iterations`. Run it on a quiet machine.
Writes bench/results/iteration-speed-<cpu capability, e.g. avx2>.{json,md}.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from bench.common import RESULTS, write_result
from sfd.core.precision import describe_machine
from sfd.training.config import load_config
from sfd.training.setup import validate
from sfd.training.trainer import SFDTrainer

PRECISION_VARIANTS = {"fp32": "no", "bf16": "bf16"}  # the default trainer with its autocast forced


def prepare(trainer: SFDTrainer, variant: str) -> None:
    """Apply a speed-up to the trainer's three networks."""
    unets = (
        trainer.accelerator.unwrap_model(trainer.gen_unet),
        trainer.accelerator.unwrap_model(trainer.fake_unet),
        trainer.teacher.unet,
    )
    if variant == "channels_last":
        for unet in unets:
            unet.to(memory_format=torch.channels_last)
    elif variant == "compile":
        for unet in unets:
            unet.forward = torch.compile(unet.forward)
    elif variant != "default" and variant not in PRECISION_VARIANTS:
        raise ValueError(f"unknown variant {variant!r}")


def iteration(trainer: SFDTrainer) -> None:
    for _ in range(trainer.cfg.fake_score_updates):
        trainer.fake_score_step()
    trainer.generator_step()


def measure(variant: str, iterations: int) -> dict:
    precision = PRECISION_VARIANTS.get(variant, "auto")
    with tempfile.TemporaryDirectory() as out:
        cfg = load_config(
            overrides=dict(
                forget="class=trouser",
                output_dir=out,
                overwrite_output_dir=True,
                classifier=None,
                mixed_precision=precision,
            )
        )
        trainer = SFDTrainer(cfg, validate(cfg))
        prepare(trainer, variant)
        start = time.perf_counter()
        for _ in range(3):
            iteration(trainer)
        warmup = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(iterations):
            iteration(trainer)
        return {
            "variant": variant,
            "mixed_precision": cfg.mixed_precision,
            "seconds_per_iteration": (time.perf_counter() - start) / iterations,
            "warmup_seconds": warmup,
            "iterations": iterations,
        }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", nargs="+", default=["default", "fp32", "bf16", "channels_last", "compile"])
    p.add_argument("--iterations", type=int, default=15)
    args = p.parse_args(argv)
    rows = [measure(v, args.iterations) for v in args.variants]
    record = {"machine": describe_machine(), "rows": rows}
    out = RESULTS / f"iteration-speed-{torch.backends.cpu.get_cpu_capability().lower()}"
    base = next((r["seconds_per_iteration"] for r in rows if r["variant"] == "default"), None)
    lines = [
        f"| {r['variant']} | {r['mixed_precision']} | {r['seconds_per_iteration']:.3f} | "
        + (f"{r['seconds_per_iteration'] / base:.2f}× | " if base else "– | ")
        + f"{r['warmup_seconds']:.0f} |"
        for r in rows
    ]
    write_result(
        out,
        record,
        "# Seconds per SFD iteration of the default run\n\n"
        f"`python -m bench.iteration_speed` on {record['machine']}: the default trainer (`--forget class=trouser`, "
        f"`mixed_precision: auto`, batch 32), two fake-score updates and one generator update per iteration, "
        f"{args.iterations} timed iterations after 3 warm-up ones.\n\n"
        "| variant | autocast | s / iteration | vs default | warm-up s (incl. compilation) |\n|---|---|---|---|---|\n"
        + "\n".join(lines)
        + "\n",
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
