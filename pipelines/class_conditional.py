"""Multi-step class-conditional diffusion pipeline (the teacher): a `UNet2DModel` or a DiT, a diffusers scheduler and,
for a latent model, an `AutoencoderKL` (the layout of diffusers' DiTPipeline, whose folders load as this class)."""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
from diffusers import DiffusionPipeline, ImagePipelineOutput

from .inputs import prepare_noise, sample_size
from .labels import ClassLabelMixin, postprocess
from .multistep import guided_sampling_loop
from .networks import NetworkMixin, check_one_network, null_class_of
from .standalone import SelfContainedMixin


class ClassConditionalDiffusionPipeline(SelfContainedMixin, ClassLabelMixin, NetworkMixin, DiffusionPipeline):
    """Samples `pipe(class_labels=[...])` with the scheduler's multi-step sampler.

    The denoising network is a `unet` (a `UNet2DModel` with class embeddings) or a `transformer` (a DiT, as in
    diffusers' DiTPipeline); a `vae` makes it a latent model. A UNet with `num_class_embeds == len(id2label) + 1`
    was trained with label dropout: its last class id is the null label and enables classifier-free guidance
    (`guidance_scale > 1`); a DiT's null label is `num_embeds_ada_norm`.
    """

    model_cpu_offload_seq = "unet->transformer->vae"
    # every component has a default so that a DiT pipeline needs no `unet`; `__init__` still requires a scheduler
    _optional_components = ["unet", "scheduler", "transformer", "vae"]

    def __init__(
        self,
        unet=None,
        scheduler=None,
        id2label: Optional[dict] = None,
        default_guidance_scale: float = 1.0,
        default_num_inference_steps: int = 25,
        transformer=None,
        vae=None,
    ):
        super().__init__()
        check_one_network(unet, transformer)
        if scheduler is None:
            raise ValueError("a class-conditional pipeline needs a `scheduler`")
        self.register_modules(unet=unet, scheduler=scheduler, transformer=transformer, vae=vae)
        id2label = {str(k): v for k, v in (id2label or {}).items()}
        self.register_to_config(
            id2label=id2label,
            default_guidance_scale=default_guidance_scale,
            default_num_inference_steps=default_num_inference_steps,
        )

    @property
    def null_class_id(self) -> Optional[int]:
        return null_class_of(self.network.config, self.num_classes)

    @torch.no_grad()
    def __call__(
        self,
        class_labels,
        guidance_scale: Optional[float] = None,
        num_inference_steps: Optional[int] = None,
        generator: Optional[torch.Generator | list[torch.Generator]] = None,
        output_type: str = "pil",
        return_dict: bool = True,
        num_images_per_prompt: int = 1,
        latents: Optional[torch.Tensor] = None,
        callback_on_step_end: Optional[Callable] = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
    ):
        """Sample images of the given classes with the scheduler's multi-step sampler.

        Args:
            class_labels (`int`, `str`, a tensor or a (nested) list of them): class ids or names (see
                `get_label_ids`; ids alone when the model has no `id2label`).
            guidance_scale (`float`, *optional*): classifier-free guidance against the null class (default: the
                pipeline's `default_guidance_scale`; 1 turns it off).
            num_inference_steps (`int`, *optional*): sampler steps (default: `default_num_inference_steps`).
            generator (`torch.Generator` or a list of them, *optional*): the random generator of the initial noise;
                a list gives one per image (image i then depends on generator i only).
            output_type (`str`, defaults to `"pil"`): `"pil"`, `"np"` (N, H, W, C in [0, 1]), `"pt"` (N, C, H, W in
                [0, 1]) or `"latent"` (the network's samples before the VAE decodes them, as in diffusers).
            return_dict (`bool`, defaults to True): return an `ImagePipelineOutput` instead of a tuple.
            num_images_per_prompt (`int`, defaults to 1): images per class label.
            latents (`torch.Tensor`, *optional*): the initial noise (N, C, H, W) in the network's space (the VAE's
                latents for a latent model), standard normal, instead of drawing it; it is scaled by the scheduler's
                `init_noise_sigma`.
            callback_on_step_end (`Callable`, *optional*): `callback(pipe, step, timestep, {"latents": …})` after
                every step, as in diffusers' pipelines; the `"latents"` it returns replace the current ones.
            callback_on_step_end_tensor_inputs (`list[str]`, defaults to `["latents"]`): the tensors passed to it.

        Returns:
            `ImagePipelineOutput` with `.images` (a list of PIL images, an array or a tensor, as `output_type` says),
            or the tuple `(images,)` when `return_dict` is False.
        """
        guidance_scale = self.config.default_guidance_scale if guidance_scale is None else guidance_scale
        steps = num_inference_steps or self.config.default_num_inference_steps
        if guidance_scale != 1.0 and self.null_class_id is None:
            raise ValueError("this model has no null class, so it cannot use classifier-free guidance")
        labels = self._class_tensor(class_labels, self._execution_device, num_images_per_prompt)
        net = self.network
        shape = (len(labels), net.config.in_channels, *sample_size(net, None, None))
        noise = prepare_noise(shape, generator, latents, self._execution_device, net.dtype)
        null = torch.full_like(labels, self.null_class_id) if guidance_scale != 1.0 else None
        noise = guided_sampling_loop(
            self,
            noise,
            labels,
            null,
            guidance_scale,
            steps,
            generator,
            callback_on_step_end,
            callback_on_step_end_tensor_inputs,
        )
        images = noise if output_type == "latent" else postprocess(self.decode(noise), output_type)
        self.maybe_free_model_hooks()
        return ImagePipelineOutput(images=images) if return_dict else (images,)
