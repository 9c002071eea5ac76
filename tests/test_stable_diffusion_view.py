"""A one-step text-to-image export of an SD-layout teacher also loads as a stock StableDiffusionPipeline."""

import os

import pytest
import torch
from diffusers import (
    AutoPipelineForText2Image,
    DDPMScheduler,
    DiffusionPipeline,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)

from sfd.core.loading import load_pipeline
from sfd.pipelines import OneStepTextToImagePipeline
from sfd.training.stable_diffusion_view import (
    SINGLE_FILE,
    stable_diffusion_pipeline,
    stock_scheduler,
    write_stable_diffusion_view,
)
from tests.helpers import make_t2i_teacher

PROMPTS = ["a photo of a cat", "a dog", "a bird"]


def one_step(tmp_path, prediction_type="epsilon", sigma_init=2.5, with_vae=True) -> OneStepTextToImagePipeline:
    t = load_pipeline(str(make_t2i_teacher(tmp_path / "teacher", with_vae=with_vae)))
    scheduler = DDPMScheduler.from_config({**t.scheduler.config, "prediction_type": prediction_type})
    return OneStepTextToImagePipeline(
        t.unet, t.text_encoder, t.tokenizer, scheduler, vae=t.vae, sigma_init=sigma_init, forgotten=["dog"]
    )


def ours(pipe, seed=0) -> torch.Tensor:
    return pipe(prompt=PROMPTS, generator=torch.Generator().manual_seed(seed), output_type="pt").images


def stock(pipe, seed=0) -> torch.Tensor:
    pipe.set_progress_bar_config(disable=True)
    out = pipe(PROMPTS, num_inference_steps=1, guidance_scale=0, generator=torch.Generator().manual_seed(seed))
    arrays = torch.from_numpy(pipe.image_processor.pil_to_numpy(out.images))
    return (arrays[..., None] if arrays.ndim == 3 else arrays).permute(0, 3, 1, 2)  # grayscale PIL: no channel axis


@pytest.mark.parametrize("prediction_type,sigma_init", [("epsilon", 2.5), ("epsilon", 0.6), ("v_prediction", 2.5)])
def test_stock_pipeline_draws_the_one_step_image(tmp_path, prediction_type, sigma_init):
    """σ_init between two training timesteps (2.5, 0.6) needs no snapping: the Euler scheduler interpolates log σ
    to a fractional timestep as the denoiser does."""
    pipe = one_step(tmp_path, prediction_type, sigma_init)
    folder = tmp_path / "export"
    pipe.save_pretrained(folder)
    view = write_stable_diffusion_view(pipe, folder)
    want = ours(pipe)
    for loader in (StableDiffusionPipeline, DiffusionPipeline, AutoPipelineForText2Image):
        sd = loader.from_pretrained(view)
        assert type(sd) is StableDiffusionPipeline
        got = sd(
            PROMPTS,
            num_inference_steps=1,
            guidance_scale=0,
            generator=torch.Generator().manual_seed(0),
            output_type="pt",
        ).images
        assert (got - want).abs().max() <= 1e-4, loader.__name__
    assert (stock(sd) - want).abs().max() <= 1 / 255 + 1e-6  # the default PIL output, to 8 bits
    assert (ours(pipe, seed=1) - want).abs().max() > 1e-2  # the comparison can fail


def test_one_scheduler_step_lands_on_sigma_init(tmp_path):
    pipe = one_step(tmp_path)
    table = ((1 - pipe.scheduler.alphas_cumprod) / pipe.scheduler.alphas_cumprod).sqrt()
    sigma_init = float((table[40] * table[41]).sqrt())  # between two training timesteps
    scheduler = stock_scheduler(pipe.scheduler.config, sigma_init)
    scheduler.set_timesteps(1)
    assert scheduler.sigmas.tolist() == pytest.approx([sigma_init, 0.0], rel=1e-6)
    assert scheduler.init_noise_sigma == pytest.approx(sigma_init, rel=1e-6)
    assert float(scheduler.timesteps[0]) == pytest.approx(40.5, abs=1e-3)  # log σ interpolated, as `Denoiser` does
    assert float(pipe.generator_network().parameterisation.sigma_to_t(torch.tensor([sigma_init]))) == pytest.approx(
        40.5, abs=1e-3
    )


def test_view_shares_the_export_weights_and_writes_a_single_file_unet(tmp_path):
    pipe = one_step(tmp_path)
    folder = tmp_path / "export"
    pipe.save_pretrained(folder)
    view = write_stable_diffusion_view(pipe, folder, single_file=True)
    for component in ("unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors"):
        assert os.path.samefile(view / component, folder / component), component  # hard links, no second copy
    unet = UNet2DConditionModel.from_single_file(str(view / SINGLE_FILE), config=str(view), subfolder="unet")
    for (name, a), b in zip(unet.state_dict().items(), pipe.unet.state_dict().values()):
        assert torch.equal(a, b), name
    assert type(load_pipeline(str(folder))) is OneStepTextToImagePipeline  # the export itself is unchanged


def test_pixel_space_models_have_no_stock_view(tmp_path):
    with pytest.raises(ValueError, match="no VAE"):
        stable_diffusion_pipeline(one_step(tmp_path, with_vae=False))


def test_single_file_unet_is_refused_before_training_for_a_pixel_space_teacher(tmp_path):
    from sfd.training.config import load_config
    from sfd.training.setup import TrainingSetupError, validate

    teacher = make_t2i_teacher(tmp_path / "teacher")
    cfg = load_config(None, dict(teacher=str(teacher), forget="concept=dog", override="cat", unet_single_file=True))
    with pytest.raises(
        TrainingSetupError, match="Stable Diffusion 1.x / 2.x-layout teacher.*pixel-space \\(no VAE\\)"
    ):
        validate(cfg)
