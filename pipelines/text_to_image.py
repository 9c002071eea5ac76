"""Text-to-image pipelines in the Stable Diffusion layout: `UNet2DConditionModel`, `CLIPTextModel` +
`CLIPTokenizer`, a DDPM-family scheduler and, for latent models, an `AutoencoderKL` (`vae`; a
pixel-space model saves `vae` as null).

`TextToImageDiffusionPipeline` is the multi-step teacher; `OneStepTextToImagePipeline` is what SFD
exports: x = decode(G_θ(z, p)) with G_θ(z, p) = D_θ(σ_init·z, σ_init, text(p)), one network evaluation.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
from diffusers import DiffusionPipeline, ImagePipelineOutput

from .denoiser import Denoiser
from .inputs import check_images_per_prompt, check_one_step, prepare_noise, sample_size
from .labels import postprocess
from .multistep import guided_sampling_loop
from .networks import NetworkMixin
from .standalone import SelfContainedMixin


def _as_list(prompt: str | Sequence[str]) -> list[str]:
    return [prompt] if isinstance(prompt, str) else list(prompt)


class PromptLatentMixin(NetworkMixin):
    """Prompt encoding, latent shapes and decoding shared by the text-to-image pipelines."""

    @torch.no_grad()
    def encode_prompt(self, prompt: str | Sequence[str]) -> torch.Tensor:
        """The text encoder's last hidden states (B, L, D), as Stable Diffusion conditions its UNet."""
        tokens = self.tokenizer(
            _as_list(prompt),
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        )
        ids = tokens.input_ids.to(self.text_encoder.device)
        return self.text_encoder(ids)[0]

    def latent_shape(self, n: int, height: Optional[int] = None, width: Optional[int] = None) -> tuple[int, ...]:
        h, w = sample_size(self.unet, height, width, self.vae_scale_factor)
        return (n, self.unet.config.in_channels, h, w)

    def prompt_conditions(
        self,
        prompt,
        prompt_embeds: Optional[torch.Tensor],
        negative_prompt,
        negative_prompt_embeds: Optional[torch.Tensor],
        num_images_per_prompt: int,
        guided: bool,
    ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """The text encoder's hidden states of the prompts and, with guidance, of the negative prompts ("" by
        default), each repeated `num_images_per_prompt` times; precomputed embeddings replace either."""
        if (prompt is None) == (prompt_embeds is None):
            raise ValueError("pass exactly one of `prompt` and `prompt_embeds`")
        check_images_per_prompt(num_images_per_prompt)
        cond = self.encode_prompt(prompt) if prompt_embeds is None else prompt_embeds.to(self._execution_device)
        uncond = None
        if guided:
            if negative_prompt_embeds is not None:
                uncond = negative_prompt_embeds.to(self._execution_device)
            else:
                negative = [""] if negative_prompt is None else _as_list(negative_prompt)
                uncond = self.encode_prompt(negative * len(cond) if len(negative) == 1 else negative)
            if uncond.shape != cond.shape:
                raise ValueError(f"negative prompts give {tuple(uncond.shape)}, prompts {tuple(cond.shape)}")
            uncond = uncond.repeat_interleave(num_images_per_prompt, dim=0)
        return cond.repeat_interleave(num_images_per_prompt, dim=0), uncond

    @property
    def concepts(self) -> list[str]:
        return list(self.config.get("concepts") or [])


class TextToImageDiffusionPipeline(SelfContainedMixin, PromptLatentMixin, DiffusionPipeline):
    """`pipe(prompt=[...], negative_prompt=..., guidance_scale=..., num_inference_steps=...)` with the
    scheduler's multi-step sampler and classifier-free guidance (empty prompt or negative prompt)."""

    model_cpu_offload_seq = "text_encoder->unet->vae"
    _optional_components = ["vae"]

    def __init__(
        self,
        unet,
        text_encoder,
        tokenizer,
        scheduler,
        vae=None,
        default_guidance_scale: float = 4.5,
        default_num_inference_steps: int = 25,
        concepts: Optional[list] = None,
    ):
        super().__init__()
        self.register_modules(unet=unet, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler, vae=vae)
        self.register_to_config(
            default_guidance_scale=default_guidance_scale,
            default_num_inference_steps=default_num_inference_steps,
            concepts=list(concepts or []),
        )

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | Sequence[str] | None = None,
        negative_prompt: str | Sequence[str] | None = None,
        guidance_scale: Optional[float] = None,
        num_inference_steps: Optional[int] = None,
        generator: Optional[torch.Generator | list[torch.Generator]] = None,
        output_type: str = "pil",
        return_dict: bool = True,
        num_images_per_prompt: int = 1,
        latents: Optional[torch.Tensor] = None,
        prompt_embeds: Optional[torch.Tensor] = None,
        negative_prompt_embeds: Optional[torch.Tensor] = None,
        height: Optional[int] = None,
        width: Optional[int] = None,
        callback_on_step_end: Optional[Callable] = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
    ):
        """Sample images of the prompts with the scheduler's multi-step sampler and classifier-free guidance.

        Args:
            prompt (`str` or `list[str]`, *optional*): the prompts (or pass `prompt_embeds`).
            negative_prompt (`str` or `list[str]`, *optional*): the guidance's unconditional branch (default: "").
            guidance_scale (`float`, *optional*): classifier-free guidance (default: `default_guidance_scale`).
            num_inference_steps (`int`, *optional*): sampler steps (default: `default_num_inference_steps`).
            generator, output_type, return_dict, num_images_per_prompt, latents, callback_on_step_end,
                callback_on_step_end_tensor_inputs: as for `ClassConditionalDiffusionPipeline.__call__` (`latents`
                are in the UNet's space: the VAE's latents for a latent model).
            prompt_embeds, negative_prompt_embeds (`torch.Tensor`, *optional*): the text encoder's hidden states
                (B, L, D), e.g. from `encode_prompt`, instead of the prompts.
            height, width (`int`, *optional*): the image size in pixels (default: the model's; multiples of the
                UNet's and VAE's down-sampling).

        Returns:
            As `ClassConditionalDiffusionPipeline.__call__`.
        """
        guidance_scale = self.config.default_guidance_scale if guidance_scale is None else guidance_scale
        steps = num_inference_steps or self.config.default_num_inference_steps
        cond, uncond = self.prompt_conditions(
            prompt,
            prompt_embeds,
            negative_prompt,
            negative_prompt_embeds,
            num_images_per_prompt,
            guidance_scale != 1.0,
        )
        shape = self.latent_shape(len(cond), height, width)
        noise = prepare_noise(shape, generator, latents, self._execution_device, self.unet.dtype)
        noise = guided_sampling_loop(
            self,
            noise,
            cond,
            uncond,
            guidance_scale,
            steps,
            generator,
            callback_on_step_end,
            callback_on_step_end_tensor_inputs,
        )
        images = postprocess(self.decode(noise), output_type)
        self.maybe_free_model_hooks()
        return ImagePipelineOutput(images=images) if return_dict else (images,)


class OneStepTextToImagePipeline(SelfContainedMixin, PromptLatentMixin, DiffusionPipeline):
    """One network evaluation per image. `forgotten` lists the concepts this model was made to forget;
    prompting for them is allowed and returns what the model now draws."""

    model_cpu_offload_seq = "text_encoder->unet->vae"
    _optional_components = ["vae"]

    def __init__(
        self,
        unet,
        text_encoder,
        tokenizer,
        scheduler,
        vae=None,
        sigma_init: float = 2.5,
        forgotten: Optional[list] = None,
        concepts: Optional[list] = None,
    ):
        super().__init__()
        self.register_modules(unet=unet, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler, vae=vae)
        self.register_to_config(
            sigma_init=float(sigma_init), forgotten=list(forgotten or []), concepts=list(concepts or [])
        )

    def generator_network(self) -> Denoiser:
        return Denoiser(self.unet, self.scheduler.config)

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | Sequence[str] | None = None,
        generator: Optional[torch.Generator | list[torch.Generator]] = None,
        output_type: str = "pil",
        return_dict: bool = True,
        num_inference_steps: int = 1,
        guidance_scale: Optional[float] = None,
        negative_prompt: str | Sequence[str] | None = None,
        num_images_per_prompt: int = 1,
        latents: Optional[torch.Tensor] = None,
        prompt_embeds: Optional[torch.Tensor] = None,
        negative_prompt_embeds: Optional[torch.Tensor] = None,
        height: Optional[int] = None,
        width: Optional[int] = None,
    ):
        """Draw images of the prompts with one network evaluation each: x = decode(D(σ_init·z, σ_init, text(p))).

        Args:
            prompt (`str` or `list[str]`, *optional*): the prompts (or pass `prompt_embeds`); a forgotten concept is
                allowed and returns what the model now draws.
            generator, output_type, return_dict, num_images_per_prompt, prompt_embeds, negative_prompt_embeds,
                height, width: as for `TextToImageDiffusionPipeline.__call__`.
            num_inference_steps (`int`, defaults to 1): must be 1; the model is a one-step generator.
            guidance_scale (`float`, *optional*): the teacher's guidance is baked in at distillation, so the default
                (None, or any value ≤ 1) draws G(z, p) as trained. A value w > 1 adds guidance on top, on the one-step
                outputs: G(z, n) + w·(G(z, p) − G(z, n)) with the negative prompt n (two evaluations per image).
            negative_prompt (`str` or `list[str]`, *optional*): n for `guidance_scale` > 1 (default: "").
            latents (`torch.Tensor`, *optional*): the standard normal noise z (N, C, h, w) in the UNet's space.

        Returns:
            As `ClassConditionalDiffusionPipeline.__call__`.
        """
        check_one_step(num_inference_steps)
        guided = guidance_scale is not None and guidance_scale > 1.0
        cond, uncond = self.prompt_conditions(
            prompt, prompt_embeds, negative_prompt, negative_prompt_embeds, num_images_per_prompt, guided
        )
        shape = self.latent_shape(len(cond), height, width)
        z = prepare_noise(shape, generator, latents, self._execution_device, self.unet.dtype)
        sigma = self.config.sigma_init
        g = self.generator_network()
        latents = g(sigma * z, sigma, cond)
        if guided:  # guidance on the one-step outputs
            latents_uncond = g(sigma * z, sigma, uncond)
            latents = latents_uncond + guidance_scale * (latents - latents_uncond)
        images = postprocess(self.decode(latents), output_type)
        self.maybe_free_model_hooks()
        return ImagePipelineOutput(images=images) if return_dict else (images,)
