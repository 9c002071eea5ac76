"""Diffusers pipelines used by models that sfd trains and exports. Importable without the trainer."""

from .class_conditional import ClassConditionalDiffusionPipeline
from .denoiser import Denoiser
from .one_step import OneStepClassConditionalPipeline

__all__ = ["ClassConditionalDiffusionPipeline", "Denoiser", "OneStepClassConditionalPipeline"]
