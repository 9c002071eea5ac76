"""One-step class-conditional generator exported by SFD: x = G_θ(z, c) = D_θ(σ_init·z, σ_init, c)."""

from __future__ import annotations

from typing import Optional

import torch
from diffusers import DiffusionPipeline, ImagePipelineOutput

from .denoiser import Denoiser
from .inputs import check_one_step, prepare_noise, sample_size
from .labels import ClassLabelMixin, postprocess
from .standalone import SelfContainedMixin


class OneStepClassConditionalPipeline(SelfContainedMixin, ClassLabelMixin, DiffusionPipeline):
    """One network evaluation per image. `forgotten` lists the class ids this model was made to forget;
    asking for them is allowed and returns what the model now draws."""

    model_cpu_offload_seq = "unet"

    def __init__(
        self,
        unet,
        scheduler,
        id2label: Optional[dict] = None,
        sigma_init: float = 2.5,
        forgotten: Optional[list] = None,
    ):
        super().__init__()
        self.register_modules(unet=unet, scheduler=scheduler)
        id2label = {str(k): v for k, v in (id2label or {}).items()}
        self.register_to_config(id2label=id2label, sigma_init=float(sigma_init), forgotten=list(forgotten or []))

    def generator_network(self) -> Denoiser:
        return Denoiser(self.unet, self.scheduler.config)

    @torch.no_grad()
    def __call__(
        self,
        class_labels,
        generator: Optional[torch.Generator | list[torch.Generator]] = None,
        output_type: str = "pil",
        return_dict: bool = True,
        num_inference_steps: int = 1,
        num_images_per_prompt: int = 1,
        latents: Optional[torch.Tensor] = None,
    ):
        """Draw images of the given classes with one network evaluation each: x = D(σ_init·z, σ_init, c).

        Args:
            class_labels (`int`, `str`, a tensor or a (nested) list of them): class ids or names (see
                `get_label_ids`); a forgotten class is allowed and returns what the model now draws.
            generator, output_type, return_dict, num_images_per_prompt: as for
                `ClassConditionalDiffusionPipeline.__call__`.
            num_inference_steps (`int`, defaults to 1): must be 1; the model is a one-step generator.
            latents (`torch.Tensor`, *optional*): the standard normal noise z (N, C, H, W) instead of drawing it.

        Returns:
            As `ClassConditionalDiffusionPipeline.__call__`.
        """
        check_one_step(num_inference_steps)
        labels = self._class_tensor(class_labels, self._execution_device, num_images_per_prompt)
        shape = (len(labels), self.unet.config.in_channels, *sample_size(self.unet, None, None))
        z = prepare_noise(shape, generator, latents, self._execution_device, self.unet.dtype)
        sigma = self.config.sigma_init
        images = self.generator_network()(sigma * z, sigma, labels)
        images = postprocess(images, output_type)
        self.maybe_free_model_hooks()
        return ImagePipelineOutput(images=images) if return_dict else (images,)
