"""Loading the project's pipelines, and Stable Diffusion- and DiT-layout teachers, from a folder or the Hub."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import torch
from diffusers import DDPMScheduler, DiffusionPipeline

from .. import pipelines as pipelines_module
from ..pipelines import ClassConditionalDiffusionPipeline, TextToImageDiffusionPipeline
from ..pipelines.denoiser import scheduler_of_family


def has_component(index: dict, name: str) -> bool:
    """Whether a model_index.json (or a pipeline's config) holds the component `name` (not absent, not null)."""
    return (index.get(name) or [None])[0] is not None


def is_dit_layout(index: dict) -> bool:
    """A diffusers DiTPipeline folder (or any with its layout): a `transformer`, class names in `id2label`."""
    return has_component(index, "transformer") and bool(index.get("id2label"))


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
    if local and "text_encoder" in config:  # a Stable Diffusion / SDXL / SD3-layout folder (diffusers' pipelines)
        return load_text_to_image_teacher(str(path))
    if local:
        raise ValueError(f"{path} holds a {name}, not a pipeline of this project")
    return DiffusionPipeline.from_pretrained(path_or_pipe)


TEXT_TEACHER_COMPONENTS = (
    "unet",
    "transformer",
    "text_encoder",
    "tokenizer",
    "text_encoder_2",
    "tokenizer_2",
    "text_encoder_3",
    "tokenizer_3",
    "vae",
)
COMPONENT_LIBRARIES = ("diffusers", "transformers")
FROZEN_COMPONENTS = ("text_encoder", "text_encoder_2", "text_encoder_3", "vae")


def _load_component(path: str, name: str, library: str, class_name: str, weight_dtype):
    """One component by the (library, class) its model_index.json names, from its subfolder; weights from safetensors
    only (a folder with pickled `.bin` weights alone is refused by the loader), the frozen encoders and the VAE in
    `weight_dtype`."""
    if library not in COMPONENT_LIBRARIES:
        raise ValueError(f"{path}: component {name} comes from {library!r}; expected one of {COMPONENT_LIBRARIES}")
    cls = getattr(importlib.import_module(library), class_name)
    kwargs = {"torch_dtype": weight_dtype} if name in FROZEN_COMPONENTS else {}
    if name.startswith("tokenizer"):
        return cls.from_pretrained(path, subfolder=name)
    return cls.from_pretrained(path, subfolder=name, use_safetensors=True, **kwargs)


def load_text_to_image_teacher(path: str, weight_dtype=torch.float32) -> TextToImageDiffusionPipeline:
    """Any Stable Diffusion 1.x / 2.x-, SDXL- or SD3-layout folder or Hub id (`StableDiffusionPipeline`,
    `StableDiffusionXLPipeline`, `StableDiffusion3Pipeline`, or this project's `TextToImageDiffusionPipeline`), loaded
    component by component so every layout reads the same way.

    `weight_dtype` is the frozen components' dtype (text encoders, VAE); the denoising network is always read in
    float32, since the generator and the fake score are copied from it (the trainer casts the frozen teacher's
    network itself)."""
    index = DiffusionPipeline.load_config(path)
    components = {
        name: _load_component(path, name, *index[name], weight_dtype)
        for name in TEXT_TEACHER_COMPONENTS
        if has_component(index, name)
    }
    scheduler = scheduler_of_family(DDPMScheduler.load_config(path, subfolder="scheduler"))
    return TextToImageDiffusionPipeline(
        scheduler=scheduler,
        default_guidance_scale=index.get("default_guidance_scale", 4.5),
        concepts=index.get("concepts"),
        force_zeros_for_empty_prompt=index.get("force_zeros_for_empty_prompt", False),
        **components,
    )
