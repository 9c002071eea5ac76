"""Train the embedded class-conditional Fashion-MNIST teacher (DDPM, ε-prediction, label dropout for CFG).

    python -m sfd.pretrain.teacher                 # writes assets/teacher (7000 steps; ~45 min on 2 CPU cores)
    python -m sfd.pretrain.teacher --edm --output_dir runs/edm-teacher   # the same UNet as an EDM-style model
    python -m sfd.pretrain.teacher --dataset uoft-cs/cifar10 --output_dir outputs/teacher-cifar10   # any dataset

With `--dataset` the UNet takes its channels and size from the images and its class names from the dataset.

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
from ..core.paths import DEFAULT_CLASSIFIER, DEFAULT_REFERENCE_STATS, display_path
from ..core.precision import resolve_mixed_precision
from ..data.fashion_mnist import FASHION_MNIST_CLASSES
from ..data.image_datasets import dataset_name
from ..evaluation.evaluate_classes import evaluate_model
from ..pipelines import ClassConditionalDiffusionPipeline
from ..pipelines.denoiser import is_edm
from . import asset_parser, load_data
from .denoising import add_teacher_arguments, load_for_measuring, train_noise_predictor


def resolution_levels(sample_size: int | tuple[int, int], most: int) -> int:
    """How many resolutions (at most `most`) a UNet can halve `sample_size` through: 3 for 28 or 32, 2 for 30."""
    h, w = (sample_size, sample_size) if isinstance(sample_size, int) else sample_size
    levels = 1
    while levels < most and h % 2**levels == 0 and w % 2**levels == 0:
        levels += 1
    return levels


def build_unet(
    num_classes: int,
    sample_size: int | tuple[int, int] = 28,
    channels: tuple = (32, 64, 64),
    layers_per_block: int = 1,
    in_channels: int = 1,
):
    """A ~1M-parameter class-conditional UNet (at the default widths); one extra class embedding is the CFG null
    label. It uses as many of `channels`' resolutions as `sample_size` halves through, attention at the lowest."""
    channels = tuple(channels[: resolution_levels(sample_size, len(channels))])
    if any(c % 16 for c in channels) or channels[-1] % 32:  # GroupNorm of 16 groups; attention heads of width 32
        raise ValueError(f"block_out_channels must be multiples of 16, the last used of 32 (got {list(channels)})")
    down = ("DownBlock2D",) * (len(channels) - 1) + ("AttnDownBlock2D",)
    return UNet2DModel(
        sample_size=sample_size,
        in_channels=in_channels,
        out_channels=in_channels,
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
    p.add_argument(
        "--block_out_channels",
        type=int,
        nargs="+",
        default=[32, 64, 64],
        help="the UNet's widths per resolution (multiples of 16, the last of 32)",
    )
    p.add_argument("--classifier", default=str(DEFAULT_CLASSIFIER), help="--measure_only: the judge")
    p.add_argument(
        "--reference_stats", default=str(DEFAULT_REFERENCE_STATS), help="--measure_only: real-image statistics for FID"
    )
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
    x, y, class_names = load_data(args, "train")
    if args.exclude_class is not None:
        if args.exclude_class not in class_names:
            raise SystemExit(f"unknown class {args.exclude_class!r}; valid: {list(class_names)}")
        keep = y != class_names.index(args.exclude_class)
        x, y = x[keep], y[keep]
    num_classes = len(class_names)
    h, w = x.shape[-2:]
    unet = build_unet(num_classes, h if h == w else (h, w), tuple(args.block_out_channels), in_channels=x.shape[1])
    noise_scheduler = build_scheduler(args.edm)

    def labels_with_dropout(idx, gen):  # the null label (id num_classes) trains the unconditional model for CFG
        c = y[idx]
        return torch.where(torch.rand(c.shape, generator=gen) < args.label_dropout, num_classes, c)

    def save(unet, ema, step):
        export(
            unet, ema, noise_scheduler, args.output_dir, step, args.default_guidance_scale, class_names, args.dataset
        )

    train_noise_predictor(args, accelerator, unet, noise_scheduler, x, labels_with_dropout, save)


def export(
    unet,
    ema: EMAModel,
    noise_scheduler,
    output_dir: str,
    step: int,
    guidance_scale: float = 1.0,
    class_names=None,
    dataset: str | None = None,
):
    """Save the EMA weights as a ClassConditionalDiffusionPipeline folder; training_steps.json records the steps and
    (for a `--dataset`) the data."""
    ema_unet = UNet2DModel.from_config(unet.config)
    ema.copy_to(ema_unet.parameters())
    pipe = ClassConditionalDiffusionPipeline(
        unet=ema_unet.eval(),
        scheduler=sampling_scheduler(noise_scheduler),
        id2label=dict(enumerate(class_names or FASHION_MNIST_CLASSES)),
        default_guidance_scale=guidance_scale,
    )
    record = {"steps": step} if dataset is None else {"steps": step, "dataset": dataset}
    save_pretrained_atomic(pipe, output_dir, extra_files={"training_steps.json": json.dumps(record)})


def trained_on(folder) -> str | None:
    """The `--dataset` an exported teacher was trained on (None: Fashion-MNIST), as its training_steps.json says."""
    path = Path(folder) / "training_steps.json"
    return json.loads(path.read_text()).get("dataset") if path.exists() else None


def measure(args) -> dict:
    """Class accuracy (by `--classifier`, default the shipped one) and FID of the exported teacher; written next
    to it."""
    pipe, steps = load_for_measuring(ClassConditionalDiffusionPipeline, args)
    dataset = trained_on(args.output_dir)
    n = args.measure_samples_per_class
    reference_stats = None if args.reference_stats.lower() == "none" else args.reference_stats
    m = evaluate_model(
        pipe,
        forget=None,
        classifier=args.classifier,
        reference_stats=reference_stats,
        num_samples_per_class=n,
        seed=args.seed,
        progress=True,
    )
    per_class, accuracy = m["per_class_accuracy"], m["remaining_accuracy"]  # nothing forgotten: every class
    result = {
        "class_accuracy": accuracy,
        "samples": n * len(per_class),
        "seed": args.seed,
        "per_class_accuracy": per_class,
        "fid": m.get("fid_remaining"),
        "fid_ci": m.get("fid_remaining_ci"),
        "guidance_scale": pipe.config.default_guidance_scale,
        "num_inference_steps": pipe.config.default_num_inference_steps,
        "training_steps": steps,
        "dataset": dataset_name(dataset),
    }
    out = Path(args.output_dir)
    (out / "metrics.json").write_text(json.dumps(result, indent=1))
    (out / "README.md").write_text(teacher_card(pipe, result, args, dataset))
    print(json.dumps(result, indent=1))
    return result


def teacher_card(pipe, result: dict, args, dataset: str | None) -> str:
    """The teacher's model card: how it was trained, the command that reproduces it, what it measured."""
    steps, n = result["training_steps"], args.measure_samples_per_class
    edm = is_edm(pipe.scheduler.config)
    kind, flag = ("edm", " --edm") if edm else ("ddpm", "")
    parameterisation = (
        "EDM preconditioning and loss (σ_data 0.5, σ ∈ [0.002, 80])"
        if edm
        else "ε-prediction, linear β, 1000 training timesteps"
    )
    if dataset is None:
        title, tag, data = "Fashion-MNIST", "fashion-mnist", "the 60,000 training images"
    else:
        title, tag, data = f"`{dataset}`", "image-classification-dataset", f"the training split of `{dataset}`"
        widths = list(pipe.unet.config.block_out_channels)
        flag += f" --dataset {dataset}" + (
            "" if widths == [32, 64, 64] else f" --block_out_channels {' '.join(map(str, widths))}"
        )
    rows = "\n".join(f"| {k} | {v:.3f} |" for k, v in result["per_class_accuracy"].items())
    return f"""---
library_name: diffusers
license: apache-2.0
tags: [class-conditional, {kind}, {tag}]
---
# {title} class-conditional teacher

`UNet2DModel` ({sum(p.numel() for p in pipe.unet.parameters()) / 1e6:.2f} M parameters), {parameterisation},
10% label dropout (class id {len(pipe.config.id2label)} is the null label for classifier-free guidance), EMA weights after {steps} steps
of batch 64 on {data}. Sampled with DPM-Solver++
({pipe.config.default_num_inference_steps} steps, guidance {pipe.config.default_guidance_scale}).

Reproduce: `python -m sfd.pretrain.teacher{flag} --output_dir {args.output_dir} --max_steps {steps}
--default_guidance_scale {pipe.config.default_guidance_scale}`
(then `--measure_only` for the figures below).

## Measured
{n} samples per class (seed {args.seed}), judged by `{display_path(args.classifier)}`:
class accuracy **{result["class_accuracy"]:.4f}** (share of samples classified as their conditioning class).

| class | accuracy |
|---|---|
{rows}
"""


if __name__ == "__main__":
    main()
