"""Loading the project's pipelines, and Stable Diffusion- and DiT-layout teachers, from a folder or the Hub."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDPMScheduler, DiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

from .. import pipelines as pipelines_module
from ..pipelines import ClassConditionalDiffusionPipeline, TextToImageDiffusionPipeline
from ..pipelines.denoiser import scheduler_of_family


def is_dit_layout(index: dict) -> bool:
    """A diffusers DiTPipeline folder (or any with its layout): a `transformer`, class names in `id2label`."""
    return (index.get("transformer") or [None])[0] is not None and bool(index.get("id2label"))


def load_pipeline(path_or_pipe):
    """A pipeline object, or a saved folder / Hub id loaded with the right class from `pipelines`: this project's
    own folders, Stable Diffusion-layout ones (as `TextToImageDiffusionPipeline`) and DiTPipeline-layout ones (as
    `ClassConditionalDiffusionPipeline`)."""
    if (
        not isinstance(path_or_pipe, (str, bytes))
        and hasattr(path_or_pipe, "__call__")
        and hasattr(path_or_pipe, "config")
    ):
        return path_or_pipe
    path = Path(path_or_pipe)
    index = path / "model_index.json"
    local = str(path_or_pipe).startswith((".", "/", "~")) or path.exists()
    if local and not index.exists():
        raise FileNotFoundError(f"no diffusers pipeline at {path}: {index} is missing")
    config = json.loads(index.read_text()) if local else DiffusionPipeline.load_config(str(path_or_pipe))
    name = config["_class_name"]
    name = name[-1] if isinstance(name, (list, tuple)) else name  # ["pipeline_sfd", class]: a self-contained folder
    cls = getattr(pipelines_module, name, None)
    if cls is not None:
        return cls.from_pretrained(path_or_pipe)
    if is_dit_layout(config):  # e.g. facebook/DiT-XL-2-256
        return ClassConditionalDiffusionPipeline.from_pretrained(path_or_pipe)
    if local and "text_encoder" in config:  # a Stable Diffusion-layout folder (e.g. StableDiffusionPipeline)
        return load_text_to_image_teacher(str(path))
    if local:
        raise ValueError(f"{path} holds a {name}, not a pipeline of this project")
    return DiffusionPipeline.from_pretrained(path_or_pipe)


def load_text_to_image_teacher(path: str, weight_dtype=torch.float32) -> TextToImageDiffusionPipeline:
    """Any Stable Diffusion-layout folder or Hub id (a `StableDiffusionPipeline`, or this project's
    `TextToImageDiffusionPipeline`), loaded component by component so both read the same way.

    `weight_dtype` is the frozen components' dtype (text encoder, VAE); the UNet is always read in float32, since the
    generator and the fake score are copied from it (the trainer casts the frozen teacher UNet itself)."""
    index = DiffusionPipeline.load_config(path)
    unet = UNet2DConditionModel.from_pretrained(path, subfolder="unet")
    text_encoder = CLIPTextModel.from_pretrained(path, subfolder="text_encoder", torch_dtype=weight_dtype)
    tokenizer = CLIPTokenizer.from_pretrained(path, subfolder="tokenizer")
    scheduler = scheduler_of_family(DDPMScheduler.load_config(path, subfolder="scheduler"))
    vae = None
    if (index.get("vae") or [None])[0] is not None:
        vae = AutoencoderKL.from_pretrained(path, subfolder="vae", torch_dtype=weight_dtype)
    return TextToImageDiffusionPipeline(
        unet=unet,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        vae=vae,
        default_guidance_scale=index.get("default_guidance_scale", 4.5),
        concepts=index.get("concepts"),
    )
