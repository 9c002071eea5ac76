"""The scheduler loop shared by the multi-step teacher pipelines (class- and text-conditional)."""

from __future__ import annotations

import torch


def guided_sampling_loop(
    pipe,
    latents: torch.Tensor,
    cond: torch.Tensor,
    uncond: torch.Tensor | None,
    guidance_scale: float,
    num_inference_steps: int,
    generator=None,
) -> torch.Tensor:
    """Run `pipe.scheduler` from `latents`; with guidance, ε = ε(uncond) + w·(ε(cond) − ε(uncond)) (CFG).

    `cond` / `uncond` are class labels or text hidden states (see `Denoiser`); `uncond` is ignored at w = 1.
    """
    guided = guidance_scale != 1.0
    conds = torch.cat([cond, uncond]) if guided else cond
    kwarg = "encoder_hidden_states" if conds.is_floating_point() else "class_labels"
    latents = latents * pipe.scheduler.init_noise_sigma
    pipe.scheduler.set_timesteps(num_inference_steps, device=latents.device)
    for t in pipe.progress_bar(pipe.scheduler.timesteps):
        model_in = torch.cat([latents, latents]) if guided else latents
        model_in = pipe.scheduler.scale_model_input(model_in, t)
        out = pipe.unet(model_in, t, **{kwarg: conds}).sample
        if guided:
            out_cond, out_uncond = out.chunk(2)
            out = out_uncond + guidance_scale * (out_cond - out_uncond)
        latents = pipe.scheduler.step(out, t, latents, generator=generator).prev_sample
    return latents
