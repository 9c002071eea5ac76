"""The networks a pipeline holds: the denoising network (a UNet or a transformer) and, for latent models, a VAE.

Five kinds of diffusers networks denoise, each called its own way:
- `UNet2DModel` with class embeddings: `(x, t, class_labels=c)`; `num_class_embeds` embeddings, the last one the
  null class when the model was trained with label dropout (`num_class_embeds == classes + 1`);
- `UNet2DConditionModel`: `(x, t, encoder_hidden_states=text)`;
- SDXL's `UNet2DConditionModel` ("text_time" addition embedding): the same, with
  `added_cond_kwargs={"text_embeds": pooled, "time_ids": sizes}`, unpacked from the condition (see `conditions`);
- SD3's `SD3Transformer2DModel` (MMDiT): `(x, encoder_hidden_states=text, pooled_projections=pooled, timestep=t)`;
- DiT (`DiTTransformer2DModel`, or a `Transformer2DModel` config of the same shape, as on the Hub): latent patches
  with adaLN-Zero class embeddings, `(x, timestep=t, class_labels=c)` with one timestep per row; its label embedding
  has a dropout row after the `num_embeds_ada_norm` classes, so the null class id is `num_embeds_ada_norm`.
A network with twice as many output as input channels learned its variance (DiT, improved DDPM): the first half is
the prediction (ε), the second is dropped, as diffusers' DiTPipeline does.
"""

from __future__ import annotations

from typing import Optional

import torch

from .conditions import SDXL_TIME_IDS, extra_condition_width, is_sd3_transformer, is_sdxl_unet, unpack_condition

UNET_CLASSES = ("UNet2DModel", "UNet2DConditionModel")
TRANSFORMER_CLASSES = ("DiTTransformer2DModel", "Transformer2DModel")


def is_class_transformer(config) -> bool:
    """A DiT: a patched transformer whose adaLN-Zero norms embed the class (diffusers' DiTTransformer2DModel, or a
    Transformer2DModel config of the same shape)."""
    return (
        config.get("patch_size") is not None
        and config.get("num_embeds_ada_norm") is not None
        and config.get("norm_type") == "ada_norm_zero"
    )


def class_embeddings(config) -> Optional[int]:
    """Class ids the network embeds (a UNet's null class included, a DiT's dropout row not); None: no classes."""
    if is_class_transformer(config):
        return int(config["num_embeds_ada_norm"])
    return config.get("num_class_embeds")


def null_class_of(config, num_classes: int) -> Optional[int]:
    """The class id of the unconditional branch, or None when the network was trained without label dropout."""
    if is_class_transformer(config):
        return int(config["num_embeds_ada_norm"])  # diffusers' LabelEmbedding: the dropout row after the classes
    return num_classes if config.get("num_class_embeds") == num_classes + 1 else None


def downsampling(config) -> int:
    """Model-space pixels per side of the network's coarsest feature map (a UNet's levels, a DiT's patch)."""
    if is_class_transformer(config) or is_sd3_transformer(config):
        return int(config["patch_size"])
    return 2 ** (len(config["block_out_channels"]) - 1)


def predict(network, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    """The network's prediction (ε, v, x₀ or a flow velocity) at input x and timestep(s) t for conditions c: class
    ids or text conditions (packed, see `conditions`); a learned-variance output keeps its first half."""
    config = getattr(network, "config", None) or {}
    if cond.is_floating_point():
        cond = cond.to(network.dtype)
        width = extra_condition_width(config)
        text, extras = unpack_condition(cond, width) if width else (cond, None)
        if is_sd3_transformer(config):
            t = torch.as_tensor(t, device=x.device).reshape(-1).expand(len(x))  # one timestep per row
            out = network(x, encoder_hidden_states=text, pooled_projections=extras, timestep=t).sample
        elif is_sdxl_unet(config):
            pooled, time_ids = extras[:, :-SDXL_TIME_IDS], extras[:, -SDXL_TIME_IDS:]
            added = {"text_embeds": pooled, "time_ids": time_ids}
            out = network(x, t, encoder_hidden_states=text, added_cond_kwargs=added).sample
        else:
            out = network(x, t, encoder_hidden_states=text).sample
    elif is_class_transformer(config):  # anything else is called like a UNet
        t = torch.as_tensor(t, device=x.device).reshape(-1).expand(len(x))  # DiT embeds one timestep per row
        out = network(x, timestep=t, class_labels=cond).sample
    else:
        out = network(x, t, class_labels=cond).sample
    channels = x.shape[1]
    return out[:, :channels] if out.shape[1] == 2 * channels else out  # [ε, learned variance] → ε


class NetworkMixin:
    """What a pipeline needs of its networks: the denoising one (`unet` or `transformer`), the VAE's scale and
    decoding; a pixel-space model has no `vae`."""

    @property
    def network(self):
        """The denoising network: the registered `unet`, else the `transformer` (a DiT)."""
        unet = getattr(self, "unet", None)
        return unet if unet is not None else self.transformer

    @property
    def network_component(self) -> str:
        """The component name the denoising network is saved under: "unet" or "transformer"."""
        return "unet" if getattr(self, "unet", None) is not None else "transformer"

    @property
    def vae_scale_factor(self) -> int:
        """Image pixels per latent pixel (1 for a pixel-space model)."""
        vae = getattr(self, "vae", None)
        return 1 if vae is None else 2 ** (len(vae.config.block_out_channels) - 1)

    def image_format(self) -> tuple[int, int]:
        """(pixels per side, channels) of the images the model draws (through its VAE for a latent model)."""
        net, vae = self.network, getattr(self, "vae", None)
        size = net.config.sample_size
        size = size if isinstance(size, int) else size[0]
        return size * self.vae_scale_factor, (vae.config.in_channels if vae is not None else net.config.in_channels)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents → images in [-1, 1]: vae.decode(latents / scaling_factor + shift_factor) (SD3's VAE has a shift;
        identity for a pixel-space model)."""
        vae = getattr(self, "vae", None)
        if vae is None:
            return latents
        shift = vae.config.get("shift_factor") or 0.0
        return vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor + shift).sample

    def encode_images(self, images: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Images in [-1, 1] → latents: (z − shift_factor)·scaling_factor (identity for a pixel-space model)."""
        vae = getattr(self, "vae", None)
        if vae is None:
            return images
        shift = vae.config.get("shift_factor") or 0.0
        return (vae.encode(images.to(vae.dtype)).latent_dist.sample(generator) - shift) * vae.config.scaling_factor


def check_one_network(unet, transformer) -> None:
    """A pipeline denoises with exactly one network: a UNet, or a transformer (a DiT, SD3's MMDiT)."""
    if (unet is None) == (transformer is None):
        raise ValueError(
            "pass exactly one denoising network: `unet` (a UNet2DModel or UNet2DConditionModel) or `transformer` (a "
            "DiT or an SD3Transformer2DModel)"
        )
