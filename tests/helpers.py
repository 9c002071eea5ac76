"""Tiny models built in the tests: class-conditional and Stable Diffusion-layout teachers, a classifier judge."""

import torch

NAMES = {0: "cat", 1: "dog", 2: "bird"}


def tiny_unet(num_class_embeds=4):
    from diffusers import UNet2DModel

    return UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        num_class_embeds=num_class_embeds,
        norm_num_groups=4,
    )


def make_teacher(path, num_class_embeds=4, prediction_type="epsilon", guidance=1.0, seed=0, edm=False):
    """A tiny class-conditional teacher: a DDPM scheduler, or with `edm` an EDM-style one (diffusers' EDMEulerScheduler)."""
    from diffusers import DDPMScheduler, EDMEulerScheduler

    from sfd.pipelines import ClassConditionalDiffusionPipeline

    torch.manual_seed(seed)
    scheduler = (
        EDMEulerScheduler(sigma_min=0.002, sigma_max=80.0, sigma_data=0.5, prediction_type=prediction_type)
        if edm
        else DDPMScheduler(num_train_timesteps=100, prediction_type=prediction_type)
    )
    pipe = ClassConditionalDiffusionPipeline(
        unet=tiny_unet(num_class_embeds),
        scheduler=scheduler,
        id2label=NAMES,
        default_guidance_scale=guidance,
        default_num_inference_steps=3,
    )
    pipe.save_pretrained(path)
    return path


def make_classifier(path, names=NAMES):
    from transformers import ResNetConfig, ResNetForImageClassification

    torch.manual_seed(0)
    cfg = ResNetConfig(
        num_channels=1,
        embedding_size=8,
        hidden_sizes=[8, 16],
        depths=[1, 1],
        layer_type="basic",
        num_labels=len(names),
        id2label=dict(names),
        label2id={v: k for k, v in names.items()},
    )
    ResNetForImageClassification(cfg).save_pretrained(path)
    return path


T2I_PROMPTS = ["a photo of a cat", "a photo of a dog", "a photo of a bird", "a small dog", "a dark cat", "a bird"]


def make_t2i_teacher(path, with_vae: bool = False, layout: str = "sfd", seed: int = 0, edm: bool = False):
    """A tiny Stable Diffusion-layout pipeline: CLIP text encoder + tokenizer, UNet2DConditionModel,
    DDPM scheduler and, with `with_vae`, an AutoencoderKL (latent space). `layout="diffusers"` saves it
    as a diffusers `StableDiffusionPipeline` (the layout of Hub SD checkpoints); `edm` gives it an EDM scheduler."""
    from pathlib import Path

    from diffusers import AutoencoderKL, DDPMScheduler, EDMEulerScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from sfd.pipelines import TextToImageDiffusionPipeline
    from sfd.pretrain.clip import build_tokenizer

    torch.manual_seed(seed)
    path = Path(path)
    tokenizer = build_tokenizer(path.parent / f"_bpe-{path.name}", class_names=list(NAMES.values()), max_length=8)
    text = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=8,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    channels = 2 if with_vae else 1
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=channels,
        out_channels=channels,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16,
        attention_head_dim=2,
        norm_num_groups=4,
    )
    vae = None
    if with_vae:
        vae = AutoencoderKL(
            in_channels=1,
            out_channels=1,
            latent_channels=2,
            block_out_channels=(8, 8),
            down_block_types=("DownEncoderBlock2D",) * 2,
            up_block_types=("UpDecoderBlock2D",) * 2,
            norm_num_groups=4,
            sample_size=16,
        )
    scheduler = EDMEulerScheduler(sigma_data=0.5) if edm else DDPMScheduler(num_train_timesteps=100)
    if layout == "diffusers":
        from diffusers import StableDiffusionPipeline

        pipe = StableDiffusionPipeline(
            vae=vae,
            text_encoder=text,
            tokenizer=tokenizer,
            unet=unet,
            scheduler=scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
    else:
        pipe = TextToImageDiffusionPipeline(
            unet=unet,
            text_encoder=text,
            tokenizer=tokenizer,
            scheduler=scheduler,
            vae=vae,
            default_guidance_scale=2.0,
            default_num_inference_steps=2,
            concepts=list(NAMES.values()),
        )
    pipe.save_pretrained(path)
    (path / "prompts.txt").write_text("\n".join(T2I_PROMPTS) + "\n")
    return str(path)


DIT_NAMES = {0: "cat", 1: "dog, puppy", 2: "bird"}  # ImageNet-style labels: comma-separated synonyms


def tiny_dit(num_embeds_ada_norm: int = 3):
    """A tiny diffusers DiT: 4×4 latents of 4 channels in 2×2 patches, learned σ (8 output channels)."""
    from diffusers import DiTTransformer2DModel

    return DiTTransformer2DModel(
        num_attention_heads=2,
        attention_head_dim=4,
        in_channels=4,
        out_channels=8,
        num_layers=1,
        sample_size=4,
        patch_size=2,
        num_embeds_ada_norm=num_embeds_ada_norm,
        norm_type="ada_norm_zero",
        norm_num_groups=4,
    )


def make_dit_teacher(path, num_embeds_ada_norm: int = 3, legacy: bool = True, scheduler=None, seed: int = 0) -> str:
    """A tiny DiT saved by diffusers' own DiTPipeline (transformer, AutoencoderKL 4×4 latents → 8×8 RGB images, a DDIM
    scheduler with DiT's linear betas), laid out like facebook/DiT-XL-2-256: `id2label` in model_index.json and, with
    `legacy`, the transformer recorded as a `Transformer2DModel`."""
    import json
    from pathlib import Path

    from diffusers import AutoencoderKL, DDIMScheduler, DiTPipeline

    torch.manual_seed(seed)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(8, 8),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        norm_num_groups=4,
        sample_size=8,
    )
    scheduler = scheduler or DDIMScheduler(num_train_timesteps=100, beta_schedule="linear", clip_sample=False)
    pipe = DiTPipeline(transformer=tiny_dit(num_embeds_ada_norm), vae=vae, scheduler=scheduler, id2label=DIT_NAMES)
    pipe.save_pretrained(path)
    path = Path(path)
    index = json.loads((path / "model_index.json").read_text())
    index["id2label"] = {str(k): v for k, v in DIT_NAMES.items()}  # the Hub folder has it; save_pretrained does not
    if legacy:
        index["transformer"] = ["diffusers", "Transformer2DModel"]
        config = json.loads((path / "transformer" / "config.json").read_text())
        (path / "transformer" / "config.json").write_text(json.dumps(config | {"_class_name": "Transformer2DModel"}))
    (path / "model_index.json").write_text(json.dumps(index, indent=2))
    return str(path)


def _tiny_clip(tokenizer, projection: bool, hidden: int = 16, seed: int = 0):
    """A tiny CLIP text encoder for `tokenizer`; with `projection`, a CLIPTextModelWithProjection (pooled output)."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,  # SDXL / SD3 read the penultimate layer
        num_attention_heads=2,
        max_position_embeddings=8,
        projection_dim=hidden,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config)


def _tiny_vae(latent_channels: int, shift_factor=None):
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=latent_channels,
        block_out_channels=(8, 8),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        norm_num_groups=4,
        sample_size=16,
        shift_factor=shift_factor,
        scaling_factor=1.5,
    )


def make_sdxl_teacher(path, seed: int = 0) -> str:
    """A tiny SDXL base saved by diffusers' StableDiffusionXLPipeline: two CLIP encoders (the second with a projection),
    a "text_time" UNet2DConditionModel (pooled embedding + 6 time ids), an AutoencoderKL (8×8 latents → 16×16 RGB) and
    SDXL's scaled-linear Euler scheduler, zeros for the empty prompt (`force_zeros_for_empty_prompt`)."""
    from pathlib import Path

    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel

    from sfd.pretrain.clip import build_tokenizer

    path = Path(path)
    tokenizer = build_tokenizer(path.parent / f"_bpe-{path.name}", class_names=list(NAMES.values()), max_length=8)
    text_encoder, text_encoder_2 = _tiny_clip(tokenizer, False, 16, seed), _tiny_clip(tokenizer, True, 16, seed + 1)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,  # 16 + 16: both encoders' states side by side
        attention_head_dim=2,
        norm_num_groups=4,
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=4,
        projection_class_embeddings_input_dim=6 * 4 + 16,  # time ids + the pooled projection
    )
    scheduler = EulerDiscreteScheduler(
        num_train_timesteps=100, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear"
    )
    StableDiffusionXLPipeline(
        vae=_tiny_vae(4),
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=scheduler,
        force_zeros_for_empty_prompt=True,
    ).save_pretrained(path)
    (path / "prompts.txt").write_text("\n".join(T2I_PROMPTS) + "\n")
    return str(path)


def make_sd3_teacher(path, seed: int = 0, t5: bool = True) -> str:
    """A tiny SD3 saved by diffusers' StableDiffusion3Pipeline: an SD3Transformer2DModel (MMDiT), two CLIP encoders with
    projections, a T5 encoder (or none, `t5=False`), an AutoencoderKL with a shift factor (4×4 … 8×8 latents) and
    SD3's FlowMatchEulerDiscreteScheduler (shift 3)."""
    from pathlib import Path

    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline
    from transformers import T5Config, T5EncoderModel

    from sfd.pretrain.clip import build_tokenizer

    path = Path(path)
    tokenizer = build_tokenizer(path.parent / f"_bpe-{path.name}", class_names=list(NAMES.values()), max_length=8)
    text_encoder, text_encoder_2 = _tiny_clip(tokenizer, True, 16, seed), _tiny_clip(tokenizer, True, 16, seed + 1)
    torch.manual_seed(seed)
    text_encoder_3 = None
    if t5:
        t5_config = T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=32, num_layers=1, num_heads=2)
        text_encoder_3 = T5EncoderModel(t5_config)
    transformer = SD3Transformer2DModel(
        sample_size=8,
        patch_size=2,
        in_channels=4,
        out_channels=4,
        num_layers=2,
        attention_head_dim=8,
        num_attention_heads=2,
        joint_attention_dim=32,  # the T5 width; the CLIP states (16 + 16) are padded to it
        caption_projection_dim=16,
        pooled_projection_dim=32,  # both encoders' projections side by side
        pos_embed_max_size=8,
    )
    StableDiffusion3Pipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=_tiny_vae(4, shift_factor=0.1),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer,
        text_encoder_3=text_encoder_3,
        tokenizer_3=tokenizer if t5 else None,
    ).save_pretrained(path)
    (path / "prompts.txt").write_text("\n".join(T2I_PROMPTS) + "\n")
    return str(path)
