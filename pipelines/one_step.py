"""One-step class-conditional generator exported by SFD: x = decode(G_θ(z, c)) with G_θ(z, c) = D_θ(σ_init·z, σ_init,
c); `decode` is the identity for a pixel-space model."""

from __future__ import annotations

from typing import Optional

import torch
from diffusers import DiffusionPipeline, ImagePipelineOutput

from .denoiser import Denoiser
from .inputs import check_one_step, prepare_noise, sample_size
from .labels import ClassLabelMixin, postprocess
from .networks import NetworkMixin, check_one_network
from .standalone import SelfContainedMixin


class OneStepClassConditionalPipeline(SelfContainedMixin, ClassLabelMixin, NetworkMixin, DiffusionPipeline):
    """One network evaluation per image (a `unet` or a DiT `transformer`, decoded by the `vae` of a latent model).
    `forgotten` lists the class ids this model was made to forget; asking for them is allowed and returns what the
    model now draws."""

    model_cpu_offload_seq = "unet->transformer->vae"
    # every component has a default so that a DiT pipeline needs no `unet`; `__init__` still requires a scheduler
    _optional_components = ["unet", "scheduler", "transformer", "vae"]

    def __init__(
        self,
        unet=None,
        scheduler=None,
        id2label: Optional[dict] = None,
        sigma_init: float = 2.5,
        forgotten: Optional[list] = None,
        transformer=None,
        vae=None,
    ):
        super().__init__()
        check_one_network(unet, transformer)
        if scheduler is None:
            raise ValueError("a one-step pipeline needs the teacher's `scheduler` (its parameterisation)")
        self.register_modules(unet=unet, scheduler=scheduler, transformer=transformer, vae=vae)
        id2label = {str(k): v for k, v in (id2label or {}).items()}
        self.register_to_config(id2label=id2label, sigma_init=float(sigma_init), forgotten=list(forgotten or []))

    def generator_network(self) -> Denoiser:
        return Denoiser(self.network, self.scheduler.config)

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
        """Draw images of the given classes with one network evaluation each: x = decode(D(σ_init·z, σ_init, c)).

        Args:
            class_labels (`int`, `str`, a tensor or a (nested) list of them): class ids or names (see
                `get_label_ids`); a forgotten class is allowed and returns what the model now draws.
            generator, output_type, return_dict, num_images_per_prompt: as for
                `ClassConditionalDiffusionPipeline.__call__`.
            num_inference_steps (`int`, defaults to 1): must be 1; the model is a one-step generator.
            latents (`torch.Tensor`, *optional*): the standard normal noise z (N, C, H, W) in the network's space
                instead of drawing it.

        Returns:
            As `ClassConditionalDiffusionPipeline.__call__`.
        """
        check_one_step(num_inference_steps)
        labels = self._class_tensor(class_labels, self._execution_device, num_images_per_prompt)
        net = self.network
        shape = (len(labels), net.config.in_channels, *sample_size(net, None, None))
        z = prepare_noise(shape, generator, latents, self._execution_device, net.dtype)
        sigma = self.config.sigma_init
        samples = self.generator_network()(sigma * z, sigma, labels)
        images = samples if output_type == "latent" else postprocess(self.decode(samples), output_type)
        self.maybe_free_model_hooks()
        return ImagePipelineOutput(images=images) if return_dict else (images,)
