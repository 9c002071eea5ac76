"""SDXL and SD3 (flow-matching) teachers: tiny models of diffusers' own classes, saved by diffusers' own pipelines,
are encoded and sampled as diffusers does, then erased from, exported, reloaded and evaluated, offline."""

import json

import pytest
import torch
from diffusers import (
    DiffusionPipeline,
    FlowMatchEulerDiscreteScheduler,
    SD3Transformer2DModel,
    StableDiffusion3Pipeline,
    StableDiffusionXLPipeline,
)

import sfd
from sfd.cli.eval import main as eval_main
from sfd.core.loading import load_pipeline
from sfd.pipelines import Denoiser, OneStepTextToImagePipeline, TextToImageDiffusionPipeline
from sfd.pipelines.conditions import extra_condition_width, pack_condition, unpack_condition
from sfd.training.config import TrainingConfig, TrainingSetupError
from sfd.training.setup import validate
from tests.helpers import make_sd3_teacher, make_sdxl_teacher
from tests.test_standalone import run_without_sfd

FAMILIES = {
    "sdxl": (make_sdxl_teacher, StableDiffusionXLPipeline),
    "sd3": (make_sd3_teacher, StableDiffusion3Pipeline),
}
PROMPTS = ["a photo of a cat", "a bird"]


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    folders = {name: make(root / name) for name, (make, _) in FAMILIES.items()}
    return folders | {"sd3-no-t5": make_sd3_teacher(root / "sd3-no-t5", t5=False)}


def test_pooled_embeddings_and_time_ids_pack_into_extra_rows_and_back():
    hidden, extras = torch.randn(3, 5, 4), torch.randn(3, 10)  # 10 values need 3 rows of 4
    packed = pack_condition(hidden, extras)
    assert packed.shape == (3, 8, 4) and torch.equal(packed[:, -1, 2:], torch.zeros(3, 2))
    back_hidden, back_extras = unpack_condition(packed, 10)
    assert torch.equal(back_hidden, hidden) and torch.equal(back_extras, extras)
    assert pack_condition(hidden, None) is hidden


def test_the_flow_matching_denoiser_is_x_t_minus_t_times_the_velocity():
    torch.manual_seed(0)
    net = SD3Transformer2DModel(
        sample_size=4, patch_size=2, in_channels=4, out_channels=4, num_layers=1, attention_head_dim=8,
        num_attention_heads=2, joint_attention_dim=8, caption_projection_dim=16, pooled_projection_dim=6,
        pos_embed_max_size=4,
    ).eval()  # fmt: skip
    sched = FlowMatchEulerDiscreteScheduler(shift=3.0)
    x, sigma = torch.randn(2, 4, 4, 4), torch.tensor([0.5, 4.0]).view(-1, 1, 1, 1)
    text, pooled = torch.randn(2, 3, 8), torch.randn(2, 6)
    t = sigma / (1 + sigma)  # x_t = (1 − t)·x₀ + t·ε = x_σ / (1 + σ)
    with torch.no_grad():
        v = net(x / (1 + sigma), encoder_hidden_states=text, pooled_projections=pooled, timestep=1000 * t.flatten())
        got = Denoiser(net, sched.config)(x, sigma, pack_condition(text, pooled))
    torch.testing.assert_close(got, x / (1 + sigma) - t * v.sample, rtol=1e-5, atol=1e-5)  # x̂₀ = x_t − t·v̂
    lo, hi = Denoiser(net, sched.config).parameterisation.sigma_range
    t_lo = 3 * 0.001 / (1 + 2 * 0.001)  # the shifted t of the first of N = 1000 steps: shift·s / (1 + (shift − 1)·s)
    assert lo == pytest.approx(t_lo / (1 - t_lo), rel=1e-4) and 1e3 < hi < 1e4  # σ = t / (1 − t), below t = 1
    flux_like = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True).config
    with pytest.raises(ValueError, match="use_dynamic_shifting .* not supported"):
        Denoiser(net, flux_like)


@pytest.mark.parametrize("family", [*FAMILIES, "sd3-no-t5"])
def test_prompts_encode_and_sample_as_the_stock_diffusers_pipeline(teachers, family):
    stock_class = FAMILIES[family.split("-")[0]][1]
    without_t5 = {"text_encoder_3": None, "tokenizer_3": None} if family == "sd3-no-t5" else {}
    ours, stock = load_pipeline(teachers[family]), stock_class.from_pretrained(teachers[family], **without_t5)
    assert isinstance(ours, TextToImageDiffusionPipeline)
    assert ours.network_component == ("unet" if family == "sdxl" else "transformer")
    assert (ours.text_encoder_3 is None) == (family != "sd3")
    text, extras = unpack_condition(ours.encode_prompt(PROMPTS), extra_condition_width(ours.network.config))
    if family == "sdxl":
        embeds, negative, pooled, negative_pooled = stock.encode_prompt(PROMPTS, device="cpu")
        assert ours.config.force_zeros_for_empty_prompt  # SDXL base guides against zeros, not the empty prompt
        assert extras[:, -6:].tolist() == [[16.0, 16.0, 0.0, 0.0, 16.0, 16.0]] * 2  # the time ids of a 16×16 image
        extras = extras[:, :-6]
    else:
        embeds, negative, pooled, negative_pooled = stock.encode_prompt(PROMPTS, PROMPTS, PROMPTS, device="cpu")
    torch.testing.assert_close(text, embeds, rtol=0, atol=1e-5)
    torch.testing.assert_close(extras, pooled, rtol=0, atol=1e-5)
    empty_text, empty_extras = unpack_condition(
        ours.empty_prompt_condition(2), extra_condition_width(ours.network.config)
    )
    torch.testing.assert_close(empty_text, negative, rtol=0, atol=1e-5)  # what stock CFG uses as the unconditional
    torch.testing.assert_close(empty_extras[:, : negative_pooled.shape[-1]], negative_pooled, rtol=0, atol=1e-5)

    ours.scheduler = stock.scheduler  # the same sampler: the stock one of the family (Euler; flow-matching Euler)
    for pipe in (ours, stock):
        pipe.set_progress_bar_config(disable=True)
    for guidance in (1.0, 3.0):
        kw = dict(num_inference_steps=3, guidance_scale=guidance, output_type="pt")
        mine = ours(prompt=PROMPTS, generator=torch.Generator().manual_seed(0), **kw).images
        theirs = stock(prompt=PROMPTS, generator=torch.Generator().manual_seed(0), **kw).images
        assert mine.shape == (2, 3, 16, 16)
        torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_tiny_sdxl_or_sd3_teacher_is_erased_exported_reloaded_and_evaluated(
    tmp_path, teachers, tiny_t2i_options, family
):
    out = tmp_path / "out"
    pipe = sfd.forget(teachers[family], forget="concept=dog", override="cat", output_dir=str(out), **tiny_t2i_options)
    assert isinstance(pipe, OneStepTextToImagePipeline)
    index = json.loads((out / "model_index.json").read_text())
    network = "unet" if family == "sdxl" else "transformer"
    assert index[network][0] == "diffusers" and index["text_encoder_2"][1].startswith("CLIPTextModel")
    assert (index["text_encoder_3"][0] is not None) == (family == "sd3") and index["vae"][1] == "AutoencoderKL"
    scheduler = index["scheduler"][1]
    assert scheduler == ("FlowMatchEulerDiscreteScheduler" if family == "sd3" else "DDPMScheduler")
    assert not (out / "stable-diffusion").exists()  # the stock SD 1.x / 2.x view is for that layout only

    loaded = load_pipeline(str(out))
    assert isinstance(loaded, OneStepTextToImagePipeline) and loaded.config.forgotten == ["dog"]
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    images = loaded(prompt=["a photo of a dog", "a bird"], generator=gen(), output_type="pt").images
    assert images.shape == (2, 3, 16, 16) and 0 <= float(images.min()) and float(images.max()) <= 1
    teacher_weights = load_pipeline(teachers[family]).network.state_dict()
    assert any(not torch.equal(w, loaded.network.state_dict()[k]) for k, w in teacher_weights.items())  # it trained

    remote = DiffusionPipeline.from_pretrained(out, trust_remote_code=True)
    assert type(remote).__name__ == "OneStepTextToImagePipeline" and not type(remote).__module__.startswith("sfd")
    again = remote(prompt=["a photo of a dog", "a bird"], generator=gen(), output_type="pt").images
    torch.testing.assert_close(again, images, rtol=0, atol=1e-6)
    assert run_without_sfd([out], tmp_path)[str(out)]["class"] == "OneStepTextToImagePipeline"

    report = tmp_path / "report"
    eval_main(
        ["--model", str(out), "--forget", "concept=dog", "--override", "cat", "--clip", tiny_t2i_options["clip"]]
        + ["--num_samples_per_class", "2", "--classifier", "none", "--report", str(report)]
    )
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["kind"] == "text" and metrics["forget_samples"] == 2 * len(metrics["forget_prompts"])
    assert 0 <= metrics["clip_forget_detection"] <= 1 and metrics["nfe_per_image"] == 1


def test_unsupported_flow_schedulers_and_text_networks_stop_before_any_weights_load(tmp_path):
    teacher = make_sd3_teacher(tmp_path / "sd3", t5=False)
    for weights in tmp_path.rglob("*.safetensors"):
        weights.unlink()  # the checks read configs only
    cfg = lambda: TrainingConfig(teacher=teacher, forget="concept=dog", override="cat", output_dir=str(tmp_path / "o"))  # noqa: E731
    assert validate(cfg()).kind == "text"
    scheduler = tmp_path / "sd3" / "scheduler" / "scheduler_config.json"
    scheduler.write_text(json.dumps(json.loads(scheduler.read_text()) | {"use_dynamic_shifting": True}))
    with pytest.raises(TrainingSetupError, match="use_dynamic_shifting \\(Flux style"):
        validate(cfg())
    with pytest.raises(TrainingSetupError, match="unet_single_file needs a Stable Diffusion 1.x / 2.x-layout teacher"):
        scheduler.write_text(json.dumps(json.loads(scheduler.read_text()) | {"use_dynamic_shifting": False}))
        validate(TrainingConfig(**{**cfg().to_dict(), "unet_single_file": True}))
