"""Train the embedded class-conditional Fashion-MNIST teacher (DDPM, ε-prediction, label dropout for CFG).

    python -m sfd.pretrain.teacher                 # writes assets/teacher (7000 steps; ~45 min on 2 CPU cores)
    python -m sfd.pretrain.teacher --edm --output_dir runs/edm-teacher   # the same UNet as an EDM-style model

Resumable: the training state is checkpointed atomically to `--work_dir` and picked up on restart.
The exported folder is a `ClassConditionalDiffusionPipeline` (safetensors) with the EMA weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from diffusers import (
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EDMDPMSolverMultistepScheduler,
    EDMEulerScheduler,
    UNet2DModel,
)
from diffusers.training_utils import EMAModel

from ..core.io import save_pretrained_atomic
from ..core.precision import resolve_mixed_precision
from ..data.fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist
from ..evaluation.evaluate_classes import evaluate_model
from ..pipelines import ClassConditionalDiffusionPipeline
from ..pipelines.denoiser import is_edm
from . import asset_parser
from .denoising import add_teacher_arguments, load_for_measuring, train_noise_predictor


def build_unet(num_classes: int, sample_size: int = 28, channels: tuple = (32, 64, 64), layers_per_block: int = 1):
    """A ~1M-parameter class-conditional UNet; one extra class embedding is the CFG null label."""
    down = ("DownBlock2D", "DownBlock2D", "AttnDownBlock2D")
    return UNet2DModel(
        sample_size=sample_size,
        in_channels=1,
        out_channels=1,
        block_out_channels=channels,
        layers_per_block=layers_per_block,
        down_block_types=down,
        up_block_types=tuple(reversed([b.replace("Down", "Up") for b in down])),
        num_class_embeds=num_classes + 1,
        norm_num_groups=16,
        attention_head_dim=32,
    )


def build_scheduler(edm: bool = False):
    """The training parameterisation: DDPM (linear β, 1000 steps, ε) or EDM (Karras et al. 2022: σ_data 0.5,
    σ ∈ [0.002, 80], the network predicts F with D = c_skip·x + c_out·F)."""
    if edm:
        return EDMEulerScheduler(sigma_min=0.002, sigma_max=80.0, sigma_data=0.5, prediction_type="epsilon")
    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", prediction_type="epsilon")


def sampling_scheduler(noise_scheduler):
    """DPM-Solver++ of the training scheduler's family: what the exported pipeline samples with."""
    family = EDMDPMSolverMultistepScheduler if is_edm(noise_scheduler.config) else DPMSolverMultistepScheduler
    return family.from_config(noise_scheduler.config)


def parse_args(argv=None):
    p = asset_parser(__doc__, "assets/teacher", batch_size=64, learning_rate=5e-4)
    add_teacher_arguments(
        p, "runs/teacher-pretrain", 7000, 1.5, "classifier-free guidance the exported pipeline samples with by default"
    )
    p.add_argument("--label_dropout", type=float, default=0.1)
    p.add_argument("--exclude_class", default=None, help="class name left out of training (a 'gold' retrain)")
    p.add_argument(
        "--edm",
        action="store_true",
        help="train an EDM-style model (EDM loss and preconditioning, diffusers' EDM schedulers) instead of a DDPM",
    )
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.measure_only:
        return measure(args)
    accelerator = Accelerator(mixed_precision=resolve_mixed_precision(args.mixed_precision))
    set_seed(args.seed)
    x, y = load_fashion_mnist("train", args.data_root)
    if args.exclude_class is not None:
        if args.exclude_class not in FASHION_MNIST_CLASSES:
            raise SystemExit(f"unknown class {args.exclude_class!r}; valid: {list(FASHION_MNIST_CLASSES)}")
        keep = y != FASHION_MNIST_CLASSES.index(args.exclude_class)
        x, y = x[keep], y[keep]
    num_classes = len(FASHION_MNIST_CLASSES)
    noise_scheduler = build_scheduler(args.edm)

    def labels_with_dropout(idx, gen):  # the null label (id num_classes) trains the unconditional model for CFG
        c = y[idx]
        return torch.where(torch.rand(c.shape, generator=gen) < args.label_dropout, num_classes, c)

    def save(unet, ema, step):
        export(unet, ema, noise_scheduler, args.output_dir, step, args.default_guidance_scale)

    train_noise_predictor(args, accelerator, build_unet(num_classes), noise_scheduler, x, labels_with_dropout, save)


def export(unet, ema: EMAModel, noise_scheduler, output_dir: str, step: int, guidance_scale: float = 1.0):
    """Save the EMA weights as a ClassConditionalDiffusionPipeline folder."""
    ema_unet = UNet2DModel.from_config(unet.config)
    ema.copy_to(ema_unet.parameters())
    pipe = ClassConditionalDiffusionPipeline(
        unet=ema_unet.eval(),
        scheduler=sampling_scheduler(noise_scheduler),
        id2label=dict(enumerate(FASHION_MNIST_CLASSES)),
        default_guidance_scale=guidance_scale,
    )
    save_pretrained_atomic(pipe, output_dir, extra_files={"training_steps.json": json.dumps({"steps": step})})


def measure(args) -> dict:
    """Class accuracy (by the shipped classifier) and FID of the exported teacher; written next to it."""
    pipe, steps = load_for_measuring(ClassConditionalDiffusionPipeline, args)
    n = args.measure_samples_per_class
    m = evaluate_model(pipe, forget=None, num_samples_per_class=n, seed=args.seed, progress=True)
    per_class, accuracy = m["per_class_accuracy"], m["remaining_accuracy"]  # nothing forgotten: every class
    result = {
        "class_accuracy": accuracy,
        "samples": n * len(per_class),
        "seed": args.seed,
        "per_class_accuracy": per_class,
        "fid": m["fid_remaining"],
        "fid_ci": m["fid_remaining_ci"],
        "guidance_scale": pipe.config.default_guidance_scale,
        "num_inference_steps": pipe.config.default_num_inference_steps,
        "training_steps": steps,
    }
    out = Path(args.output_dir)
    edm = is_edm(pipe.scheduler.config)
    kind, flag = ("edm", " --edm") if edm else ("ddpm", "")
    parameterisation = (
        "EDM preconditioning and loss (σ_data 0.5, σ ∈ [0.002, 80])"
        if edm
        else "ε-prediction, linear β, 1000 training timesteps"
    )
    (out / "metrics.json").write_text(json.dumps(result, indent=1))
    rows = "\n".join(f"| {k} | {v:.3f} |" for k, v in per_class.items())
    (out / "README.md").write_text(f"""---
library_name: diffusers
license: apache-2.0
tags: [class-conditional, {kind}, fashion-mnist]
---
# Fashion-MNIST class-conditional teacher

`UNet2DModel` ({sum(p.numel() for p in pipe.unet.parameters()) / 1e6:.2f} M parameters), {parameterisation},
10% label dropout (class id 10 is the null label for classifier-free guidance), EMA weights after {steps} steps
of batch 64 on the 60,000 training images. Sampled with DPM-Solver++
({pipe.config.default_num_inference_steps} steps, guidance {pipe.config.default_guidance_scale}).

Reproduce: `python -m sfd.pretrain.teacher{flag} --output_dir {args.output_dir} --max_steps {steps}
--default_guidance_scale {pipe.config.default_guidance_scale}`
(then `--measure_only` for the figures below).

## Measured
{n} samples per class (seed {args.seed}), judged by `assets/classifier`:
class accuracy **{accuracy:.4f}** (share of samples classified as their conditioning class).

| class | accuracy |
|---|---|
{rows}
""")
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
