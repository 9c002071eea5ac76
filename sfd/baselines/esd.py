"""ESD-style data-free erasure of a class from a multi-step class-conditional teacher.

Erased Stable Diffusion (Gandikota et al., ICCV 2023) fine-tunes the model so that its noise
prediction for the erased condition matches a frozen copy's prediction for something else. Adapted to
class labels here: ε_θ(x_t, t, c_forget) is trained toward ε_frozen(x_t, t, c_override) (the override
class, as SFD's; ESD's own target is the negatively guided ε(∅) − η·(ε(c) − ε(∅))). x_t are the
model's own samples of the forgotten class (drawn once with its default sampler) noised to a random
t; no training images are used. The result is still a multi-step pipeline.
"""

from __future__ import annotations

import copy
import json
import time

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..core.io import save_pretrained_atomic
from ..core.loading import load_pipeline
from ..core.sampling import sample_classes
from ..core.spec import ForgetSpec
from ..pipelines import ClassConditionalDiffusionPipeline


def esd_finetune(
    teacher,
    forget: str,
    override: str = "random",
    steps: int = 300,
    learning_rate: float = 1e-5,
    batch_size: int = 32,
    pool_size: int = 256,
    seed: int = 0,
    output_dir=None,
    progress: bool = True,
) -> ClassConditionalDiffusionPipeline:
    pipe = load_pipeline(teacher)
    pipe.set_progress_bar_config(disable=True)
    spec = ForgetSpec.parse(forget, override, pipe.id2label)
    torch.manual_seed(seed)
    start = time.time()
    # the model's own samples of the forgotten classes, in [-1, 1]
    labels = torch.tensor(spec.forget)[torch.randint(len(spec.forget), (pool_size,))]
    pool, _ = sample_classes(pipe, labels.tolist(), batch_size=128, seed=seed, progress=False)
    pool = pool * 2 - 1
    frozen = copy.deepcopy(pipe.unet).requires_grad_(False).eval()
    unet = pipe.unet.requires_grad_(True).train()
    opt = torch.optim.Adam(unet.parameters(), lr=learning_rate)
    alphas = pipe.scheduler.alphas_cumprod.float()
    bar = tqdm(range(steps), desc="esd", disable=not progress)
    for _ in bar:
        idx = torch.randint(len(pool), (batch_size,))
        x0, c = pool[idx], labels[idx]
        t = torch.randint(0, len(alphas), (batch_size,))
        a = alphas[t].view(-1, 1, 1, 1)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * torch.randn_like(x0)  # q(x_t | x_0)
        with torch.no_grad():
            target = frozen(x_t, t, class_labels=spec.teacher_labels(c)).sample  # ε for the override
        loss = F.mse_loss(unet(x_t, t, class_labels=c).sample, target)  # ESD: ε_θ(x_t, c_f) → ε*(x_t, c_o)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        bar.set_postfix(loss=f"{loss.item():.4f}")
    unet.eval().requires_grad_(False)
    if output_dir is not None:
        record = {
            "method": "esd",
            "steps": steps,
            "seconds": time.time() - start,
            "forget": spec.forget_names,
            "override": spec.describe()["override"],
            "learning_rate": learning_rate,
            "batch_size": batch_size,
        }
        save_pretrained_atomic(pipe, output_dir, extra_files={"training.json": json.dumps(record, indent=1)})
    return pipe
