"""The denoising training loop the embedded teachers share (DDPM, or EDM for an EDM scheduler), EMA, resumable
atomic checkpoints."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import torch
from accelerate import Accelerator
from diffusers.training_utils import EMAModel
from tqdm.auto import tqdm

from ..core.io import atomic_directory, save_pretrained_atomic
from ..core.losses import denoising_loss
from ..core.precision import CHOICES


def add_teacher_arguments(p, work_dir: str, max_steps: int, guidance: float, guidance_help: str) -> None:
    """The options every teacher script shares: resumable training, EMA, precision, measuring."""
    p.add_argument("--work_dir", default=work_dir, help="resumable training state")
    p.add_argument("--max_steps", type=int, default=max_steps)
    p.add_argument("--max_minutes", type=float, default=None, help="stop (and export) after this much time")
    p.add_argument("--ema_decay", type=float, default=0.999)
    p.add_argument("--checkpoint_every", type=int, default=250)
    p.add_argument(
        "--mixed_precision",
        default="auto",
        choices=CHOICES,
        help="auto: bf16 where the device computes it natively, else fp32 (sfd/core/precision.py)",
    )
    p.add_argument("--default_guidance_scale", type=float, default=guidance, help=guidance_help)
    p.add_argument(
        "--measure_only",
        action="store_true",
        help="skip training: measure the exported teacher and write metrics.json and README.md",
    )
    p.add_argument("--measure_samples_per_class", type=int, default=100)


def load_for_measuring(pipeline_class, args):
    """The exported teacher and its training steps; a changed --default_guidance_scale is saved into it
    (atomically, keeping the folder's other files)."""
    folder = Path(args.output_dir)
    pipe = pipeline_class.from_pretrained(folder)
    steps = json.loads((folder / "training_steps.json").read_text())["steps"]
    if args.default_guidance_scale != pipe.config.default_guidance_scale:
        pipe.register_to_config(default_guidance_scale=args.default_guidance_scale)
        extra = {
            f.name: f.read_text()
            for f in folder.iterdir()
            if f.is_file() and f.name != "model_index.json" and f.suffix in (".txt", ".json", ".md")
        }
        save_pretrained_atomic(pipe, folder, extra_files=extra)
    return pipe, steps


def train_noise_predictor(
    args,
    accelerator: Accelerator,
    unet,
    noise_scheduler,
    x: torch.Tensor,
    condition: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
    export: Callable[[torch.nn.Module, EMAModel, int], None],
    desc: str = "teacher",
) -> int:
    """Minimise the DDPM loss (`sfd.core.losses.denoising_loss`, Ho et al. eq. 14; EDM's for an EDM scheduler) over random
    rows of `x`.

    `condition(idx, gen)` gives the condition of rows `idx` (class labels or text hidden states), with
    the caller's condition dropout already applied. Reads args.{work_dir, max_steps, max_minutes,
    batch_size, learning_rate, ema_decay, checkpoint_every, seed}; returns the last step.
    """
    ema = EMAModel(unet.parameters(), decay=args.ema_decay)
    opt = torch.optim.AdamW(unet.parameters(), lr=args.learning_rate, weight_decay=0.0)
    unet, opt = accelerator.prepare(unet, opt)
    ema.to(accelerator.device)
    work, step = Path(args.work_dir), 0
    if (work / "state").exists():
        accelerator.load_state(str(work / "state"))
        ema.load_state_dict(torch.load(work / "state" / "ema.pt", weights_only=True))
        step = json.loads((work / "state" / "step.json").read_text())["step"]
        accelerator.print(f"resumed from step {step}")

    gen = torch.Generator().manual_seed(args.seed + step)
    start = time.time()
    bar = tqdm(total=args.max_steps, initial=step, disable=not accelerator.is_local_main_process, desc=desc)
    while step < args.max_steps:
        idx = torch.randint(0, len(x), (args.batch_size,), generator=gen)
        with accelerator.autocast():
            loss = denoising_loss(unet, noise_scheduler, x[idx], condition(idx, gen), gen)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        ema.step(accelerator.unwrap_model(unet).parameters())
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}")
        out_of_time = args.max_minutes is not None and (time.time() - start) / 60 > args.max_minutes
        if step % args.checkpoint_every == 0 or step == args.max_steps or out_of_time:
            with atomic_directory(work / "state") as tmp:
                accelerator.save_state(str(tmp))
                torch.save(ema.state_dict(), tmp / "ema.pt")
                (tmp / "step.json").write_text(json.dumps({"step": step}))
            export(accelerator.unwrap_model(unet), ema, step)
        if out_of_time:
            break
    bar.close()
    accelerator.print(f"{desc}: {step} steps, {(time.time() - start) / 60:.1f} min this run -> {args.output_dir}")
    return step
