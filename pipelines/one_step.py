"""One-step class-conditional generator exported by SFD: x = G_θ(z, c) = D_θ(σ_init·z, σ_init, c)."""

from __future__ import annotations

from typing import Optional

import torch
from diffusers import DiffusionPipeline, ImagePipelineOutput
from diffusers.utils.torch_utils import randn_tensor

from .denoiser import Denoiser
from .labels import ClassLabelMixin, postprocess


class OneStepClassConditionalPipeline(ClassLabelMixin, DiffusionPipeline):
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
        generator: Optional[torch.Generator] = None,
        output_type: str = "pil",
        return_dict: bool = True,
        num_inference_steps: int = 1,
    ):
        """Draw one image per class label with one network evaluation: x = D(σ_init·z, σ_init, c).

        Args:
            class_labels (`int`, `str` or a list of them): class ids or names (see `get_label_ids`); a forgotten
                class is allowed and returns what the model now draws.
            generator, output_type, return_dict: as for `ClassConditionalDiffusionPipeline.__call__`.
            num_inference_steps (`int`, defaults to 1): must be 1; the model is a one-step generator.

        Returns:
            As `ClassConditionalDiffusionPipeline.__call__`.
        """
        if num_inference_steps != 1:
            raise ValueError("this is a one-step generator: num_inference_steps must be 1")
        labels = self._class_tensor(class_labels, self._execution_device)
        cfg = self.unet.config
        z = randn_tensor(
            (len(labels), cfg.in_channels, cfg.sample_size, cfg.sample_size),
            generator=generator,
            device=self._execution_device,
            dtype=self.unet.dtype,
        )
        sigma = self.config.sigma_init
        images = self.generator_network()(sigma * z, sigma, labels)
        images = postprocess(images, output_type)
        self.maybe_free_model_hooks()
        return ImagePipelineOutput(images=images) if return_dict else (images,)
