"""Train the embedded small text-to-image teacher in the Stable Diffusion layout on Fashion-MNIST.

    python -m sfd.pretrain.text_to_image --output_dir assets/t2i-teacher
    python -m sfd.pretrain.text_to_image --dataset uoft-cs/cifar10 --clip outputs/clip-cifar10 --output_dir OUT

Components, as in Stable Diffusion 1.x: `UNet2DConditionModel` (cross-attention on the text hidden
states), `CLIPTextModel` + `CLIPTokenizer` (the text half of the shipped small CLIP, frozen), a DDPM
scheduler exported as DPM-Solver++, and no VAE: the model works in pixel space (28×28), which
`bench/latent_vs_pixel.py` measured to be the better choice at this size (see the model card).
Captions come from the class names, the CLIP caption templates and two attributes measured on each
image (brightness, size). 10% of captions are dropped to "" for classifier-free guidance.
Resumable: training state is checkpointed atomically to `--work_dir`.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from diffusers import DDPMScheduler, DPMSolverMultistepScheduler, UNet2DConditionModel
from diffusers.training_utils import EMAModel
from transformers import CLIPModel, CLIPTextModel, CLIPTokenizer

from ..core.io import save_pretrained_atomic
from ..core.paths import DEFAULT_CLASSIFIER, DEFAULT_CLIP
from ..core.precision import resolve_mixed_precision
from ..data.fashion_mnist import FASHION_MNIST_CLASSES
from ..evaluation.evaluate_text import evaluate_text_model
from ..pipelines import TextToImageDiffusionPipeline
from . import asset_parser, load_data
from .clip import CAPTION_TEMPLATES
from .denoising import add_teacher_arguments, load_for_measuring, train_noise_predictor
from .teacher import resolution_levels

PROMPTS_FILE = "prompts.txt"  # example captions shipped with the teacher: SFD's default remaining prompts
ATTRIBUTES = {"brightness": ("dark", "bright"), "size": ("small", "large")}


def image_attributes(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per image: 0 = low third, 1 = middle, 2 = high third of foreground brightness and of foreground area."""
    fg = x > -0.8
    area = fg.flatten(1).float().mean(1)
    brightness = (x.clamp(min=-1) + 1).flatten(1).sum(1) / fg.flatten(1).sum(1).clamp(min=1) / 2
    out = {}
    for name, value in (("brightness", brightness), ("size", area)):
        lo, hi = value.quantile(torch.tensor([1 / 3, 2 / 3]))
        out[name] = (value > lo).long() + (value > hi).long()
    return out


def caption(class_name: str, template: str, attribute: str | None) -> str:
    return template.format(f"{attribute} {class_name}" if attribute else class_name)


def caption_table(
    y: torch.Tensor,
    attrs: dict[str, torch.Tensor],
    seed: int,
    captions_per_image: int = 4,
    class_names=FASHION_MNIST_CLASSES,
):
    """A few captions per training image: a random template, and half the time a true attribute word."""
    rng = random.Random(seed)
    texts, index = [], {}
    rows = torch.empty(len(y), captions_per_image, dtype=torch.long)
    for i, c in enumerate(y.tolist()):
        for j in range(captions_per_image):
            attribute = None
            if rng.random() < 0.5:
                kind = rng.choice(sorted(ATTRIBUTES))
                level = int(attrs[kind][i])
                attribute = {0: ATTRIBUTES[kind][0], 2: ATTRIBUTES[kind][1]}.get(level)
            text = caption(class_names[c], rng.choice(CAPTION_TEMPLATES), attribute)
            rows[i, j] = index.setdefault(text, len(index))
            if rows[i, j] == len(texts):
                texts.append(text)
    return texts, rows


def example_prompts(class_names=FASHION_MNIST_CLASSES) -> list[str]:
    """Every template with every class, plus the attribute words with two templates."""
    plain = [caption(n, t, None) for n in class_names for t in CAPTION_TEMPLATES]
    with_attr = [
        caption(n, t, a)
        for n in class_names
        for t in CAPTION_TEMPLATES[:2]
        for pair in ATTRIBUTES.values()
        for a in pair
    ]
    return plain + with_attr


def build_unet(
    cross_attention_dim: int,
    sample_size: int | tuple[int, int] = 28,
    channels: tuple = (32, 64, 64),
    in_channels: int = 1,
) -> UNet2DConditionModel:
    """A small SD-layout UNet: cross-attention at the lowest resolution (7×7 for 28×28 images; as many of
    `channels`' resolutions as the size halves through) and in the middle block.
    (Cross-attention also at 14×14 measured 1.07 s per batch-64 step instead of 0.49 s on a 2-core CPU.)"""
    channels = tuple(channels[: resolution_levels(sample_size, len(channels))])
    down = ("DownBlock2D",) * (len(channels) - 1) + ("CrossAttnDownBlock2D",)
    return UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=in_channels,
        out_channels=in_channels,
        block_out_channels=channels,
        layers_per_block=1,
        down_block_types=down,
        up_block_types=tuple(reversed([b.replace("Down", "Up") for b in down])),
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=4,
        norm_num_groups=16,
    )


def load_text_encoder(clip_dir: str | Path) -> tuple[CLIPTextModel, CLIPTokenizer]:
    """The text tower of a saved `CLIPModel`, as the `CLIPTextModel` a Stable Diffusion pipeline holds."""
    clip = CLIPModel.from_pretrained(clip_dir)
    text = CLIPTextModel(clip.config.text_config)
    target = getattr(text, "text_model", text)  # transformers 4 wraps the transformer in .text_model, 5 does not
    target.load_state_dict(clip.text_model.state_dict())
    return text.eval().requires_grad_(False), CLIPTokenizer.from_pretrained(clip_dir)


def parse_args(argv=None):
    p = asset_parser(__doc__, "assets/t2i-teacher", batch_size=64, learning_rate=5e-4)
    p.add_argument("--clip", default=str(DEFAULT_CLIP), help="CLIPModel folder for the text encoder")
    add_teacher_arguments(
        p, "runs/t2i-teacher-pretrain", 4000, 4.5, "chosen on selection seed 99: bench/results/t2i-teacher-guidance.md"
    )
    p.add_argument("--caption_dropout", type=float, default=0.1)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.measure_only:
        return measure(args)
    accelerator = Accelerator(mixed_precision=resolve_mixed_precision(args.mixed_precision))
    set_seed(args.seed)
    x, y, class_names = load_data(args, "train")
    text_encoder, tokenizer = load_text_encoder(args.clip)
    texts, rows = caption_table(y, image_attributes(x), args.seed, class_names=class_names)
    with torch.no_grad():  # the text encoder is frozen: encode every distinct caption once
        ids = tokenizer(
            texts + [""],
            padding="max_length",
            max_length=tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids
        table = torch.cat([text_encoder(ids[i : i + 512])[0] for i in range(0, len(ids), 512)])
    empty = len(texts)
    accelerator.print(f"{len(texts)} distinct captions, e.g. {texts[:3]}")

    def captions_with_dropout(idx, gen):
        pick = rows[idx, torch.randint(rows.shape[1], (len(idx),), generator=gen)]
        pick = torch.where(torch.rand(len(idx), generator=gen) < args.caption_dropout, empty, pick)
        return table[pick]

    noise_scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", prediction_type="epsilon")

    def save(unet, ema: EMAModel, step: int):
        ema_unet = UNet2DConditionModel.from_config(unet.config)
        ema.copy_to(ema_unet.parameters())
        pipe = TextToImageDiffusionPipeline(
            unet=ema_unet.eval(),
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            vae=None,
            scheduler=DPMSolverMultistepScheduler.from_config(noise_scheduler.config),
            default_guidance_scale=args.default_guidance_scale,
            concepts=list(class_names),
        )
        save_pretrained_atomic(
            pipe,
            args.output_dir,
            extra_files={
                PROMPTS_FILE: "\n".join(example_prompts(class_names)) + "\n",
                "training_steps.json": json.dumps({"steps": step}),
            },
        )

    h, w = x.shape[-2:]
    unet = build_unet(text_encoder.config.hidden_size, h if h == w else (h, w), in_channels=x.shape[1])
    accelerator.print(f"UNet2DConditionModel: {sum(p.numel() for p in unet.parameters()) / 1e6:.2f} M parameters")
    train_noise_predictor(args, accelerator, unet, noise_scheduler, x, captions_with_dropout, save, desc="t2i-teacher")


def measure(args) -> dict:
    """CLIP zero-shot accuracy, classifier accuracy and CLIP score of "a photo of a {class}" samples."""
    pipe, steps = load_for_measuring(TextToImageDiffusionPipeline, args)
    m = evaluate_text_model(
        pipe,
        forget=None,
        clip=args.clip,
        num_samples_per_prompt=args.measure_samples_per_class,
        seed=args.seed,
        classifier=DEFAULT_CLASSIFIER,
    )
    result = {
        **m,
        "guidance_scale": pipe.config.default_guidance_scale,
        "num_inference_steps": pipe.config.default_num_inference_steps,
        "training_steps": steps,
    }
    out = Path(args.output_dir)
    (out / "metrics.json").write_text(json.dumps(result, indent=1))
    write_teacher_card(pipe, out, result, args)
    print(json.dumps(result, indent=1))
    return result


def write_teacher_card(pipe, out: Path, m: dict, args) -> None:
    params = sum(p.numel() for p in pipe.unet.parameters()) / 1e6
    rows = "\n".join(f"| {k} | {v:.3f} |" for k, v in m["per_prompt_clip_accuracy"].items())
    (out / "README.md").write_text(f"""---
library_name: diffusers
license: apache-2.0
tags: [text-to-image, stable-diffusion-layout, fashion-mnist]
---
# Small Fashion-MNIST text-to-image teacher (Stable Diffusion layout)

`UNet2DConditionModel` ({params:.2f} M parameters, cross-attention at 7×7 and in the middle block), `CLIPTextModel` +
`CLIPTokenizer` (the text tower of `assets/clip`, frozen), ε-prediction with linear β over 1000 steps,
sampled with DPM-Solver++ ({m["num_inference_steps"]} steps, guidance {m["guidance_scale"]}). No VAE: pixel
space, 28×28 (`bench/results/latent-vs-pixel.md` measured that a small `AutoencoderKL` at this size loses
more than it saves). EMA weights after {m["training_steps"]} steps of batch {args.batch_size}, 10% caption dropout.
Captions: class name in one of 12 templates, half of them with a measured attribute word
(dark / bright, small / large); `prompts.txt` lists example prompts (SFD's default remaining prompts).

Reproduce: `python -m sfd.pretrain.text_to_image --output_dir assets/t2i-teacher --max_steps {m["training_steps"]}`
(then `--measure_only` for the figures below; the shipped run was stopped by `--max_minutes 26` on 2 CPU cores).

## Measured
{m["samples_per_prompt"]} samples per prompt "a photo of a {{class}}" (seed {m["seed"]}):
CLIP zero-shot accuracy **{m["clip_accuracy_remaining"]:.4f}** (by `assets/clip`), classifier accuracy
**{m["classifier_accuracy_remaining"]:.4f}** (by `assets/classifier`), mean CLIP score {m["clip_score_remaining"]:.2f}.

| prompt | CLIP accuracy |
|---|---|
{rows}
""")


if __name__ == "__main__":
    main()
