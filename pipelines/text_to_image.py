"""Text-to-image pipelines in diffusers' layouts: Stable Diffusion 1.x / 2.x (`UNet2DConditionModel`, `CLIPTextModel`
+ `CLIPTokenizer`), SDXL (the same with `text_encoder_2` / `tokenizer_2` and a "text_time" UNet) and SD3 (an
`SD3Transformer2DModel` as `transformer`, two CLIP encoders and an optional T5 `text_encoder_3`), a DDPM-family, EDM or
flow-matching scheduler and, for latent models, an `AutoencoderKL` (`vae`; a pixel-space model saves `vae` as null).

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
from .networks import NetworkMixin, check_one_network
from .prompt_encoding import encode_prompts, zero_text
from .standalone import SelfContainedMixin

TEXT_COMPONENTS = ("text_encoder_2", "tokenizer_2", "text_encoder_3", "tokenizer_3")  # SDXL's and SD3's extra ones
# every component has a default (an SD3 pipeline has no `unet`); `__init__` still requires a network, a scheduler and
# the first text encoder and tokenizer
OPTIONAL_COMPONENTS = ["vae", "unet", "transformer", "text_encoder", "tokenizer", "scheduler", *TEXT_COMPONENTS]
OFFLOAD_SEQUENCE = "text_encoder->text_encoder_2->text_encoder_3->unet->transformer->vae"


def _as_list(prompt: str | Sequence[str]) -> list[str]:
    return [prompt] if isinstance(prompt, str) else list(prompt)


class PromptLatentMixin(NetworkMixin):
    """Prompt encoding, latent shapes and decoding shared by the text-to-image pipelines."""

    def register_text_modules(self, unet, transformer, scheduler, vae, text_encoder, tokenizer, *extra) -> None:
        """The networks, encoders and tokenizers of any supported layout (exactly one of `unet` / `transformer`);
        `extra`: the `TEXT_COMPONENTS`, in order."""
        check_one_network(unet, transformer)
        if scheduler is None or text_encoder is None or tokenizer is None:
            raise ValueError("a text-to-image pipeline needs a `scheduler`, a `text_encoder` and a `tokenizer`")
        modules = dict(unet=unet, transformer=transformer, text_encoder=text_encoder, tokenizer=tokenizer, vae=vae)
        self.register_modules(scheduler=scheduler, **modules, **dict(zip(TEXT_COMPONENTS, extra)))

    def text_pairs(self) -> list[tuple]:
        """The (tokenizer, text encoder) pairs present: one for SD, two for SDXL, two or three for SD3."""
        pairs = [("tokenizer", "text_encoder"), ("tokenizer_2", "text_encoder_2"), ("tokenizer_3", "text_encoder_3")]
        return [(getattr(self, t), getattr(self, e)) for t, e in pairs if getattr(self, e, None) is not None]

    @torch.no_grad()
    def encode_prompt(
        self, prompt: str | Sequence[str], height: Optional[int] = None, width: Optional[int] = None
    ) -> torch.Tensor:
        """The condition the network was trained with, as diffusers' pipeline of its family encodes it: Stable
        Diffusion's last hidden states (B, L, D); SDXL's and SD3's states with their pooled embeddings (and SDXL's
        time ids for `height` × `width`) packed as extra rows (see `conditions`)."""
        return encode_prompts(self, _as_list(prompt), height, width)

    def empty_prompt_condition(self, n: int, height: Optional[int] = None, width: Optional[int] = None):
        """The unconditional branch of guidance: the empty prompt's condition, or zeros (time ids kept) when the model
        was trained that way (`force_zeros_for_empty_prompt`, as SDXL base)."""
        empty = self.encode_prompt([""] * n, height, width)
        return zero_text(self, empty) if self.config.get("force_zeros_for_empty_prompt") else empty

    def latent_shape(self, n: int, height: Optional[int] = None, width: Optional[int] = None) -> tuple[int, ...]:
        h, w = sample_size(self.network, height, width, self.vae_scale_factor)
        return (n, self.network.config.in_channels, h, w)

    def prompt_conditions(
        self,
        prompt,
        prompt_embeds: Optional[torch.Tensor],
        negative_prompt,
        negative_prompt_embeds: Optional[torch.Tensor],
        num_images_per_prompt: int,
        guided: bool,
        height: Optional[int] = None,
        width: Optional[int] = None,
    ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """The conditions of the prompts and, with guidance, of the negative prompts (default: the empty prompt's
        condition), each repeated `num_images_per_prompt` times; precomputed embeddings replace either."""
        if (prompt is None) == (prompt_embeds is None):
            raise ValueError("pass exactly one of `prompt` and `prompt_embeds`")
        check_images_per_prompt(num_images_per_prompt)
        device = self._execution_device
        cond = self.encode_prompt(prompt, height, width) if prompt_embeds is None else prompt_embeds.to(device)
        uncond = None
        if guided:
            if negative_prompt_embeds is not None:
                uncond = negative_prompt_embeds.to(device)
            elif negative_prompt is None:
                uncond = self.empty_prompt_condition(len(cond), height, width)
            else:
                negative = _as_list(negative_prompt)
                uncond = self.encode_prompt(negative * len(cond) if len(negative) == 1 else negative, height, width)
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

    model_cpu_offload_seq = OFFLOAD_SEQUENCE
    _optional_components = OPTIONAL_COMPONENTS

    def __init__(
        self,
        unet=None,
        text_encoder=None,
        tokenizer=None,
        scheduler=None,
        vae=None,
        default_guidance_scale: float = 4.5,
        default_num_inference_steps: int = 25,
        concepts: Optional[list] = None,
        transformer=None,
        force_zeros_for_empty_prompt: bool = False,
        text_encoder_2=None,
        tokenizer_2=None,
        text_encoder_3=None,
        tokenizer_3=None,
    ):
        super().__init__()
        self.register_text_modules(
            unet,
            transformer,
            scheduler,
            vae,
            text_encoder,
            tokenizer,
            text_encoder_2,
            tokenizer_2,
            text_encoder_3,
            tokenizer_3,
        )
        self.register_to_config(
            default_guidance_scale=default_guidance_scale,
            default_num_inference_steps=default_num_inference_steps,
            concepts=list(concepts or []),
            force_zeros_for_empty_prompt=bool(force_zeros_for_empty_prompt),
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
            height,
            width,
        )
        shape = self.latent_shape(len(cond), height, width)
        noise = prepare_noise(shape, generator, latents, self._execution_device, self.network.dtype)
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

    model_cpu_offload_seq = OFFLOAD_SEQUENCE
    _optional_components = OPTIONAL_COMPONENTS

    def __init__(
        self,
        unet=None,
        text_encoder=None,
        tokenizer=None,
        scheduler=None,
        vae=None,
        sigma_init: float = 2.5,
        forgotten: Optional[list] = None,
        concepts: Optional[list] = None,
        transformer=None,
        force_zeros_for_empty_prompt: bool = False,
        text_encoder_2=None,
        tokenizer_2=None,
        text_encoder_3=None,
        tokenizer_3=None,
    ):
        super().__init__()
        self.register_text_modules(
            unet,
            transformer,
            scheduler,
            vae,
            text_encoder,
            tokenizer,
            text_encoder_2,
            tokenizer_2,
            text_encoder_3,
            tokenizer_3,
        )
        self.register_to_config(
            sigma_init=float(sigma_init),
            forgotten=list(forgotten or []),
            concepts=list(concepts or []),
            force_zeros_for_empty_prompt=bool(force_zeros_for_empty_prompt),
        )

    def generator_network(self) -> Denoiser:
        return Denoiser(self.network, self.scheduler.config)

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
            prompt,
            prompt_embeds,
            negative_prompt,
            negative_prompt_embeds,
            num_images_per_prompt,
            guided,
            height,
            width,
        )
        shape = self.latent_shape(len(cond), height, width)
        z = prepare_noise(shape, generator, latents, self._execution_device, self.network.dtype)
        sigma = self.config.sigma_init
        g = self.generator_network()
        latents = g(sigma * z, sigma, cond)
        if guided:  # guidance on the one-step outputs
            latents_uncond = g(sigma * z, sigma, uncond)
            latents = latents_uncond + guidance_scale * (latents - latents_uncond)
        images = postprocess(self.decode(latents), output_type)
        self.maybe_free_model_hooks()
        return ImagePipelineOutput(images=images) if return_dict else (images,)
