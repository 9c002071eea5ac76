"""The scheduler loop shared by the multi-step teacher pipelines (class- and text-conditional)."""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch

from .networks import predict


def guided_sampling_loop(
    pipe,
    latents: torch.Tensor,
    cond: torch.Tensor,
    uncond: torch.Tensor | None,
    guidance_scale: float,
    num_inference_steps: int,
    generator=None,
    callback_on_step_end: Optional[Callable] = None,
    callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
) -> torch.Tensor:
    """Run `pipe.scheduler` from `latents`; with guidance, ε = ε(uncond) + w·(ε(cond) − ε(uncond)) (CFG).

    `cond` / `uncond` are class labels or text hidden states (see `Denoiser`); `uncond` is ignored at w = 1.
    `callback_on_step_end(pipe, i, t, {"latents": …})` runs after every step, as in diffusers' pipelines; the
    `latents` it returns replace the current ones.
    """
    unknown = set(callback_on_step_end_tensor_inputs) - {"latents"}
    if unknown:
        raise ValueError(f"callback_on_step_end_tensor_inputs may only name 'latents', got {sorted(unknown)}")
    guided = guidance_scale != 1.0
    conds = torch.cat([cond, uncond]) if guided else cond
    scheduler = pipe.scheduler
    latents = latents * getattr(scheduler, "init_noise_sigma", 1.0)  # flow matching starts from unit noise
    scheduler.set_timesteps(num_inference_steps, device=latents.device)
    for i, t in enumerate(pipe.progress_bar(scheduler.timesteps)):
        model_in = torch.cat([latents, latents]) if guided else latents
        if hasattr(scheduler, "scale_model_input"):  # flow-matching schedulers feed x_t unscaled
            model_in = scheduler.scale_model_input(model_in, t)
        out = predict(pipe.network, model_in, t, conds)  # ε (or v, x₀, a flow velocity) of a UNet or a transformer
        if guided:
            out_cond, out_uncond = out.chunk(2)
            out = out_uncond + guidance_scale * (out_cond - out_uncond)
        latents = scheduler.step(out, t, latents, generator=generator).prev_sample
        if callback_on_step_end is not None:
            given = {name: latents for name in callback_on_step_end_tensor_inputs}
            latents = (callback_on_step_end(pipe, i, t, given) or {}).get("latents", latents)
    return latents
