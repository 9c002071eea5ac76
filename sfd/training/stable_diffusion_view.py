"""A stock `StableDiffusionPipeline` folder for a one-step text-to-image export (SD-layout teachers with a VAE).

The one-step generator is G(z, p) = D(σ_init·z, σ_init, text(p)). A stock pipeline called with
`num_inference_steps=1, guidance_scale=0` draws the same image when its scheduler is diffusers'
`EulerDiscreteScheduler` configured so that its single step is the denoiser at σ_init:
- Karras sigmas with `sigma_max = σ_init`: one step gives exactly σ = σ_init, and the scheduler maps it to the
  (fractional) timestep by interpolating log σ over the training table, as `Denoiser` does;
- "trailing" spacing: the initial noise is σ_init·z and the model input σ_init·z / sqrt(1 + σ_init²);
- the Euler step to σ = 0 returns the prediction's x̂₀ (ε, v or x₀, the teacher's `prediction_type`).

The view lives in `<export>/stable-diffusion/`; its weight files are hard links to the export's own where the file
system allows (no second copy on disk). `unet.safetensors` beside it (optional) holds the UNet as one file in
diffusers' key layout for single-file loaders: `UNet2DConditionModel.from_single_file(file, config=view,
subfolder="unet")`.
"""

from __future__ import annotations

import filecmp
import os
from pathlib import Path

VIEW_FOLDER = "stable-diffusion"
SINGLE_FILE = "unet.safetensors"


def stock_scheduler(scheduler_config, sigma_init: float):
    """Euler with one step at σ_init (Karras sigmas from σ_init), the teacher's betas and prediction type."""
    from diffusers import EulerDiscreteScheduler

    from ..pipelines.denoiser import sigma_range_from_config

    sigma_min = min(sigma_range_from_config(scheduler_config)[0], sigma_init)
    return EulerDiscreteScheduler.from_config(
        {k: v for k, v in dict(scheduler_config).items() if not k.startswith("_")},
        use_karras_sigmas=True,
        sigma_max=float(sigma_init),
        sigma_min=float(sigma_min),
        timestep_spacing="trailing",
        final_sigmas_type="zero",
        interpolation_type="linear",
        use_exponential_sigmas=False,
        use_beta_sigmas=False,
    )


def view_support(index: dict, network_config: dict, scheduler_config: dict) -> str | None:
    """None when a text teacher or export with these configs (model_index.json, the network's config.json with its
    `_class_name`, the scheduler's) can be viewed as a stock StableDiffusionPipeline, else the reason it cannot."""
    from ..core.loading import has_component
    from ..pipelines.conditions import extra_condition_width
    from ..pipelines.denoiser import is_edm, is_flow_matching

    if not has_component(index, "text_encoder"):
        return "it is not a text-to-image model"
    if not has_component(index, "vae"):
        return "the model is pixel-space (no VAE); StableDiffusionPipeline needs a VAE"
    if network_config.get("_class_name") != "UNet2DConditionModel" or extra_condition_width(network_config):
        name = network_config.get("_class_name")
        return f"the denoiser is an SDXL / SD3-style {name}; StableDiffusionPipeline needs an SD 1.x / 2.x UNet"
    if is_edm(scheduler_config) or is_flow_matching(scheduler_config):
        name = scheduler_config.get("_class_name")
        return f"the teacher's scheduler is a {name}; StableDiffusionPipeline's stock view needs a DDPM-family one"
    return None


def stable_diffusion_support(pipe) -> str | None:
    """None when the loaded `pipe` can be viewed as a stock StableDiffusionPipeline, else the reason it cannot."""
    from ..pipelines import OneStepTextToImagePipeline
    from .conditioning import loaded_network_config

    if not isinstance(pipe, OneStepTextToImagePipeline):
        return f"a {type(pipe).__name__} is not a one-step text-to-image pipeline"
    return view_support(dict(pipe.config), loaded_network_config(pipe), dict(pipe.scheduler.config))


def stable_diffusion_pipeline(pipe):
    """The stock StableDiffusionPipeline that draws G(z, p) with `num_inference_steps=1, guidance_scale=0`."""
    from diffusers import StableDiffusionPipeline

    reason = stable_diffusion_support(pipe)
    if reason is not None:
        raise ValueError(f"no stock Stable Diffusion view: {reason}")
    return StableDiffusionPipeline(
        vae=pipe.vae,
        text_encoder=pipe.text_encoder,
        tokenizer=pipe.tokenizer,
        unet=pipe.unet,
        scheduler=stock_scheduler(pipe.scheduler.config, pipe.config.sigma_init),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _link_identical_files(view: Path, source: Path) -> None:
    """Replace each file of `view` that equals the file at the same place in `source` by a hard link to it."""
    for path in view.rglob("*"):
        twin = source / path.relative_to(view)
        if path.is_file() and twin.is_file() and filecmp.cmp(path, twin, shallow=False):
            link = path.with_name(f".{path.name}.link")
            try:
                os.link(twin, link)
            except OSError:  # a file system without hard links keeps the copy
                continue
            os.replace(link, path)


def write_stable_diffusion_view(pipe, export_dir: str | os.PathLike, single_file: bool = False) -> Path:
    """Save the stock view of `pipe` (already saved in `export_dir`) to `export_dir/stable-diffusion`."""
    export_dir = Path(export_dir)
    view = export_dir / VIEW_FOLDER
    stable_diffusion_pipeline(pipe).save_pretrained(view, safe_serialization=True)
    _link_identical_files(view, export_dir)
    if single_file:
        from safetensors.torch import save_file

        state = {k: v.contiguous() for k, v in pipe.unet.state_dict().items()}
        save_file(state, str(view / SINGLE_FILE), metadata={"format": "pt", "layout": "diffusers"})
    return view
