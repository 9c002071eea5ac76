"""Diffusers pipelines used by models that sfd trains and exports. Importable without the trainer."""

from .class_conditional import ClassConditionalDiffusionPipeline
from .denoiser import Denoiser
from .one_step import OneStepClassConditionalPipeline
from .text_to_image import OneStepTextToImagePipeline, TextToImageDiffusionPipeline

__all__ = [
    "ClassConditionalDiffusionPipeline",
    "Denoiser",
    "OneStepClassConditionalPipeline",
    "OneStepTextToImagePipeline",
    "TextToImageDiffusionPipeline",
]
