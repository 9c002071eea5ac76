"""Text-to-image pipelines in the Stable Diffusion layout: `UNet2DConditionModel`, `CLIPTextModel` +
`CLIPTokenizer`, a DDPM-family scheduler and, for latent models, an `AutoencoderKL` (`vae`; a
pixel-space model saves `vae` as null).

`TextToImageDiffusionPipeline` is the multi-step teacher; `OneStepTextToImagePipeline` is what SFD
exports: x = decode(G_θ(z, p)) with G_θ(z, p) = D_θ(σ_init·z, σ_init, text(p)), one network evaluation.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from diffusers import DiffusionPipeline, ImagePipelineOutput
from diffusers.utils.torch_utils import randn_tensor

from .denoiser import Denoiser
from .labels import postprocess
from .multistep import guided_sampling_loop


def _as_list(prompt: str | Sequence[str]) -> list[str]:
    return [prompt] if isinstance(prompt, str) else list(prompt)


class PromptLatentMixin:
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

    def latent_shape(self, n: int) -> tuple[int, ...]:
        size = self.unet.config.sample_size
        h, w = (size, size) if isinstance(size, int) else size
        return (n, self.unet.config.in_channels, h, w)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents → images in [-1, 1] (identity for a pixel-space model)."""
        if self.vae is None:
            return latents
        return self.vae.decode(latents.to(self.vae.dtype) / self.vae.config.scaling_factor).sample

    def encode_images(self, images: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Images in [-1, 1] → latents (identity for a pixel-space model)."""
        if self.vae is None:
            return images
        dist = self.vae.encode(images.to(self.vae.dtype)).latent_dist
        return dist.sample(generator) * self.vae.config.scaling_factor

    @property
    def concepts(self) -> list[str]:
        return list(self.config.get("concepts") or [])


class TextToImageDiffusionPipeline(PromptLatentMixin, DiffusionPipeline):
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
        prompt: str | Sequence[str],
        negative_prompt: str | Sequence[str] | None = None,
        guidance_scale: Optional[float] = None,
        num_inference_steps: Optional[int] = None,
        generator: Optional[torch.Generator] = None,
        output_type: str = "pil",
        return_dict: bool = True,
    ):
        """Sample one image per prompt with the scheduler's multi-step sampler and classifier-free guidance.

        Args:
            prompt (`str` or `list[str]`): the prompts.
            negative_prompt (`str` or `list[str]`, *optional*): the guidance's unconditional branch (default: "").
            guidance_scale (`float`, *optional*): classifier-free guidance (default: `default_guidance_scale`).
            num_inference_steps (`int`, *optional*): sampler steps (default: `default_num_inference_steps`).
            generator, output_type, return_dict: as for `ClassConditionalDiffusionPipeline.__call__`.

        Returns:
            As `ClassConditionalDiffusionPipeline.__call__`.
        """
        prompts = _as_list(prompt)
        guidance_scale = self.config.default_guidance_scale if guidance_scale is None else guidance_scale
        steps = num_inference_steps or self.config.default_num_inference_steps
        cond = self.encode_prompt(prompts)
        uncond = None
        if guidance_scale != 1.0:
            negative = [""] * len(prompts) if negative_prompt is None else _as_list(negative_prompt)
            if len(negative) == 1:
                negative = negative * len(prompts)
            uncond = self.encode_prompt(negative)
        latents = randn_tensor(
            self.latent_shape(len(prompts)), generator=generator, device=self._execution_device, dtype=self.unet.dtype
        )
        latents = guided_sampling_loop(self, latents, cond, uncond, guidance_scale, steps, generator)
        images = postprocess(self.decode(latents), output_type)
        self.maybe_free_model_hooks()
        return ImagePipelineOutput(images=images) if return_dict else (images,)


class OneStepTextToImagePipeline(PromptLatentMixin, DiffusionPipeline):
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
        prompt: str | Sequence[str],
        generator: Optional[torch.Generator] = None,
        output_type: str = "pil",
        return_dict: bool = True,
        num_inference_steps: int = 1,
    ):
        """Draw one image per prompt with one network evaluation (guidance was applied during distillation).

        Args:
            prompt (`str` or `list[str]`): the prompts; a forgotten concept is allowed and returns what the model now
                draws.
            generator, output_type, return_dict: as for `ClassConditionalDiffusionPipeline.__call__`.
            num_inference_steps (`int`, defaults to 1): must be 1; the model is a one-step generator.

        Returns:
            As `ClassConditionalDiffusionPipeline.__call__`.
        """
        if num_inference_steps != 1:
            raise ValueError("this is a one-step generator: num_inference_steps must be 1")
        cond = self.encode_prompt(prompt)
        z = randn_tensor(
            self.latent_shape(len(cond)), generator=generator, device=self._execution_device, dtype=self.unet.dtype
        )
        sigma = self.config.sigma_init
        latents = self.generator_network()(sigma * z, sigma, cond)
        images = postprocess(self.decode(latents), output_type)
        self.maybe_free_model_hooks()
        return ImagePipelineOutput(images=images) if return_dict else (images,)
