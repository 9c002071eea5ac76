"""Text-to-image SFD on tiny Stable Diffusion-layout pipelines built in the tests (pixel and latent space)."""

import json

import pytest
import torch
from huggingface_hub import ModelCard

import sfd
from sfd.cli.train import main as train_main
from sfd.core.prompts import PromptSpec, Rewriter
from sfd.core.spec import SpecError
from sfd.pipelines import Denoiser, OneStepTextToImagePipeline, TextToImageDiffusionPipeline
from tests.helpers import T2I_PROMPTS, make_t2i_teacher


@pytest.mark.parametrize(
    "with_vae,layout,edm", [(False, "sfd", False), (True, "diffusers", False), (False, "sfd", True)]
)
def test_tiny_text_to_image_run_exports_and_reloads(tmp_path, tiny_t2i_options, with_vae, layout, edm):
    teacher = make_t2i_teacher(tmp_path / "teacher", with_vae=with_vae, layout=layout, edm=edm)
    out = tmp_path / "out"
    pipe = sfd.forget(teacher, forget="concept=dog", override="cat", output_dir=str(out), **tiny_t2i_options)
    assert isinstance(pipe, OneStepTextToImagePipeline)
    for name in (
        "model_index.json",
        "unet/diffusion_pytorch_model.safetensors",
        "text_encoder/model.safetensors",
        "tokenizer/tokenizer_config.json",
        "README.md",
        "samples.png",
        "logs/metrics.jsonl",
        "logs/samples-000002.png",
    ):
        assert (out / name).exists(), name
    assert (out / "vae").exists() == with_vae
    assert (out / "stable-diffusion" / "model_index.json").exists() == (with_vae and not edm)  # the stock SD view
    loaded = OneStepTextToImagePipeline.from_pretrained(out)
    assert loaded.config.forgotten == ["dog"] and (loaded.vae is None) == (not with_vae)
    assert ("sigma_data" in loaded.scheduler.config) == edm  # the scheduler family (DDPM or EDM) is the teacher's
    images = loaded(
        prompt=["a photo of a dog", "a bird"], generator=torch.Generator().manual_seed(0), output_type="np"
    ).images
    assert images.shape == (2, 16 if with_vae else 8, 16 if with_vae else 8, 1)
    with pytest.raises(ValueError, match="one-step"):
        loaded(prompt="a cat", num_inference_steps=4)
    from sfd.core.loading import load_text_to_image_teacher

    t = load_text_to_image_teacher(teacher).unet.state_dict()
    g = loaded.unet.state_dict()
    assert any(not torch.equal(t[k], g[k]) for k in t)
    card = (out / "README.md").read_text()
    assert "dog" in card and "OneStepTextToImagePipeline" in card and "clip_score_remaining" in card
    assert ModelCard.load(out / "README.md").data.pipeline_tag == "text-to-image"
    record = json.loads((out / "training.json").read_text())
    assert record["forget"] == ["dog"] and record["override"] == "cat"
    log = [json.loads(line) for line in (out / "logs" / "metrics.jsonl").read_text().splitlines()]
    assert 0 <= log[-1]["clip_forget_detection"] <= 1
    assert sum(k.startswith("psi_error_sigma_") for k in log[-1]) == 4  # ψ tracking, text teachers too


def test_teacher_pipeline_samples_with_negative_prompt(tmp_path):
    pipe = TextToImageDiffusionPipeline.from_pretrained(make_t2i_teacher(tmp_path / "t", with_vae=True))
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    a = pipe(prompt=["a dog"], generator=gen(), output_type="pt").images
    b = pipe(prompt=["a dog"], negative_prompt="cat", generator=gen(), output_type="pt").images
    assert a.shape == (1, 1, 16, 16) and not torch.allclose(a, b)


def test_text_denoiser_guidance_uses_the_negative_prompt(tmp_path):
    pipe = TextToImageDiffusionPipeline.from_pretrained(make_t2i_teacher(tmp_path / "t"))
    cond, null, neg = pipe.encode_prompt(["a dog"]), pipe.encode_prompt([""]), pipe.encode_prompt(["cat"])
    plain = Denoiser(pipe.unet, pipe.scheduler.config)
    guided = Denoiser(pipe.unet, pipe.scheduler.config, guidance_scale=3.0, null_embedding=null)
    x, sigma = torch.randn(1, 1, 8, 8), torch.tensor(1.5)
    with torch.no_grad():
        want = plain(x, sigma, neg) + 3.0 * (plain(x, sigma, cond) - plain(x, sigma, neg))  # CFG on x̂₀
        torch.testing.assert_close(guided(x, sigma, cond, uncond=neg), want, rtol=1e-4, atol=1e-5)
        want_null = plain(x, sigma, null) + 3.0 * (plain(x, sigma, cond) - plain(x, sigma, null))
        torch.testing.assert_close(guided(x, sigma, cond), want_null, rtol=1e-4, atol=1e-5)


# ---- prompt specs -------------------------------------------------------------------------------
def test_concept_prompts_come_from_the_pool_and_are_rewritten():
    spec = PromptSpec.parse("concept=dog", "cat", T2I_PROMPTS)
    assert spec.forget_prompts == ("a photo of a dog", "a small dog")
    assert spec.override_prompts == ("a photo of a cat", "a small cat")
    assert "a photo of a dog" not in spec.remain_prompts and "a dark cat" in spec.remain_prompts


def test_concept_missing_from_the_pool_uses_templates(caplog):
    spec = PromptSpec.parse("concept=Brad Pitt", "a middle aged man", ["a tree", "a house"])
    assert "appear in none of the 2 remaining prompts" in caplog.text
    assert (
        spec.forget_prompts[0] == "a photo of a Brad Pitt"
        and spec.override_prompts[0] == "a photo of a a middle aged man"
    )
    assert spec.remain_prompts == ("a tree", "a house")


def test_rewriting_is_whole_word_and_case_insensitive():
    r = Rewriter.parse("man", ["shirt"])
    assert r("A SHIRT on a t-shirt") == "A man on a t-shirt"
    assert Rewriter.parse("", ["nude", "naked"])("a nude woman, naked") == "a woman"


def test_rules_file_and_prompt_file(tmp_path):
    forget = tmp_path / "forget.txt"
    forget.write_text("# comment\nBrad Pitt in a tuxedo\nbrad pitt smiling\n")
    rules = tmp_path / "rules.txt"
    rules.write_text("brad pitt -> a middle aged man\n")
    spec = PromptSpec.parse(f"prompts={forget}", f"rules={rules}", ["a tree"])
    assert spec.override_prompts == ("a middle aged man in a tuxedo", "a middle aged man smiling")
    spec = PromptSpec.parse(f"concept=brad pitt;prompts={forget}", "a man", ["a tree"], negative_concepts=["x", "y"])
    assert spec.override_prompts[1] == "a man smiling" and spec.negative_prompt == "x, y"


@pytest.mark.parametrize(
    "forget,override,message",
    [
        ("concept=zebra;prompts={forget}", "a horse", "not found in any forget prompt"),
        ("prompts={empty}", "a cat", "holds no prompts"),
        ("prompts={missing}", "a cat", "file not found: .*missing.txt"),
        ("concept=dog", "dog", "is the concept being forgotten"),
        ("concept=dog", "random", "needs --override"),
        ("concept=dog", "auto", "are for class-conditional teachers"),
        ("class=dog", "cat", "forget a concept"),
        ("colour=red", "blue", "unknown"),
        ("prompts={forget}", "rules={rules}", "unchanged"),
    ],
)
def test_bad_prompt_specs_are_explained(tmp_path, forget, override, message):
    files = dict(
        forget=tmp_path / "f.txt", empty=tmp_path / "e.txt", missing=tmp_path / "missing.txt", rules=tmp_path / "r.txt"
    )
    files["forget"].write_text("a photo of a dog\n")
    files["empty"].write_text("\n# nothing\n")
    files["rules"].write_text("cat -> bird\n")
    with pytest.raises(SpecError, match=message):
        PromptSpec.parse(forget.format(**files), override.format(**files), T2I_PROMPTS)


def test_bad_text_spec_stops_the_command_line_before_loading(tmp_path, monkeypatch):
    from sfd.training import trainer

    teacher = make_t2i_teacher(tmp_path / "teacher")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    monkeypatch.setattr(trainer.SFDTrainer, "__init__", lambda *a, **k: pytest.fail("model loaded"))
    with pytest.raises(SystemExit, match="holds no prompts"):
        train_main(["--teacher", teacher, "--forget", f"prompts={empty}", "--override", "a cat"])
    with pytest.raises(SystemExit, match="not found in any forget prompt"):
        (tmp_path / "f.txt").write_text("a bird\n")
        train_main(
            ["--teacher", teacher, "--forget", f"concept=dog;prompts={tmp_path / 'f.txt'}", "--override", "cat"]
        )
    with pytest.raises(SystemExit, match="negative_forget_class is for class teachers.*--negative_concepts"):
        train_main(["--teacher", teacher, "--forget", "concept=dog", "--override", "cat", "--negative_forget_class"])


@pytest.mark.parametrize(
    "name", ["sd15-celebrity", "sd15-nudity", "sdxl-celebrity", "sdxl-nudity", "sd3-medium-celebrity"]
)
def test_stable_diffusion_configs_hold_valid_prompt_specs(name, monkeypatch):
    """The GPU configs need a GPU and the Hub to run, but their options and prompt files must parse."""
    from sfd.core.paths import PROJECT_ROOT
    from sfd.core.prompts import read_lines
    from sfd.training.config import load_config

    monkeypatch.chdir(PROJECT_ROOT)
    cfg = load_config(PROJECT_ROOT / "configs" / f"{name}.yaml")
    negative = read_lines(cfg.negative_concepts, "negative") if cfg.negative_concepts else None
    spec = PromptSpec.parse(cfg.forget, cfg.override, read_lines(cfg.remain_prompts, "remain"), negative)
    assert len(spec.forget_prompts) >= 16 and len(spec.remain_prompts) >= 30
    assert all(o != f for f, o in zip(spec.forget_prompts, spec.override_prompts))
    if name.endswith("nudity"):
        assert spec.override_prompts[0] == "a woman" and "nudity" in spec.negative_prompt
    else:
        assert spec.override_prompts[0] == "a photo of a middle aged man"


def test_sfd_eval_measures_text_to_image_models_against_the_teacher(tmp_path, tiny_t2i_options):
    from sfd.cli.eval import main as eval_main

    teacher = make_t2i_teacher(tmp_path / "teacher")
    out = tmp_path / "out"
    sfd.forget(
        teacher,
        forget="concept=dog",
        override="cat",
        output_dir=str(out),
        **dict(tiny_t2i_options, validation_steps=0, final_eval_samples_per_class=0),
    )
    report = tmp_path / "report"
    eval_main(
        [
            "--model",
            str(out),
            "--reference",
            teacher,
            "--forget",
            "concept=dog",
            "--clip",
            tiny_t2i_options["clip"],
            "--num_samples_per_class",
            "4",
            "--report",
            str(report),
            "--classifier",
            "none",
        ]
    )
    m = json.loads((report / "metrics.json").read_text())
    assert m["kind"] == "text" and m["forget_prompts"] == ["a photo of a dog"]
    assert m["remain_prompts"] == ["a photo of a cat", "a photo of a bird"]
    assert m["forget_samples"] == 4 and m["remaining_samples"] == 8
    assert 0 <= m["clip_forget_detection"] <= 1 and m["clip_score_remaining"] >= 0
    assert m["nfe_per_image"] == 1 and m["reference_nfe_per_image"] == 4  # 2 steps x CFG
    assert m["reference_clip_score_remaining"] > 0
    assert m["clip_score_remaining_ratio"] == pytest.approx(
        m["clip_score_remaining"] / m["reference_clip_score_remaining"]
    )
    text = (report / "report.md").read_text()
    assert "CLIP score (remaining) model / reference" in text and (report / "before_after.png").exists()
    assert "16 seeds of 'a photo of a cat'" in text and (report / "seeds.png").exists()


def test_sfd_eval_reads_stable_diffusion_folders_without_a_concept_list(tmp_path, tiny_t2i_options):
    from sfd.evaluation.evaluate_text import evaluate_text_model

    teacher = make_t2i_teacher(tmp_path / "sd", with_vae=True, layout="diffusers")
    m = evaluate_text_model(
        teacher,
        forget="concept=dog",
        override="a cat",
        clip=tiny_t2i_options["clip"],
        num_samples_per_prompt=1,
        progress=False,
    )
    assert m["forget_prompts"] == ["a photo of a dog", "a picture of a dog", "an image of a dog", "a dog"]
    assert len(m["remain_prompts"]) == 16 and m["forget_samples"] == 4 and m["remaining_samples"] == 16
    assert m["nfe_per_image"] == 25 * 2  # loaded with the defaults: 25 steps, guidance 4.5


def test_text_conditions_are_drawn_on_the_prompt_embeddings_device(tmp_path):
    """Masks and indices are made where the embeddings live (a "meta" tensor refuses any CPU tensor beside it, as a
    CUDA tensor would), so the text path trains on an accelerator."""
    from sfd.training.config import load_config
    from sfd.training.setup import validate

    teacher = make_t2i_teacher(tmp_path / "t")
    negative = tmp_path / "negative.txt"
    negative.write_text("dog\n")
    cfg = load_config(
        overrides=dict(
            teacher=teacher,
            forget="concept=cat",
            override="bird",
            clip=None,
            negative_concepts=str(negative),
            output_dir=str(tmp_path / "o"),
        )
    )
    task = validate(cfg)
    task.load(cfg.teacher, "cpu")
    for name in ("forget_emb", "override_emb", "remain_emb", "null_emb", "negative_emb"):
        setattr(task, name, getattr(task, name).to("meta"))
    conds = task.draw(8, 0.5, dropout=0.5, device="meta")
    assert conds.forgotten.shape == (8,) and conds.student.shape[0] == 8
    assert {
        t.device.type
        for t in (conds.forgotten, conds.student, conds.teacher, conds.uncond, conds.fake, conds.fake_uncond)
    } == {"meta"}


def test_mixed_precision_copies_the_networks_from_float32_weights_and_exports_float32(tmp_path, tiny_t2i_options):
    """G and ψ start from the stored float32 teacher (not from bf16-rounded weights); the frozen teacher runs in bf16;
    the exported text encoder is float32 again."""
    from diffusers import UNet2DConditionModel
    from safetensors import safe_open

    from sfd.training.config import load_config
    from sfd.training.setup import validate
    from sfd.training.trainer import SFDTrainer

    teacher = make_t2i_teacher(tmp_path / "t")
    out = tmp_path / "o"
    opts = dict(
        tiny_t2i_options,
        max_train_steps=1,
        validation_steps=0,
        final_eval_samples_per_class=0,
        checkpointing_steps=0,
        mixed_precision="bf16",
    )
    cfg = load_config(
        overrides=dict(opts, teacher=teacher, forget="concept=cat", override="bird", output_dir=str(out))
    )
    trainer = SFDTrainer(cfg, validate(cfg))
    stored = UNet2DConditionModel.from_pretrained(teacher, subfolder="unet").state_dict()
    for net in (trainer.gen_unet, trainer.fake_unet):
        copied = trainer.accelerator.unwrap_model(net).state_dict()
        assert all(torch.equal(copied[k], v) for k, v in stored.items())
    assert trainer.task.unet.dtype == torch.bfloat16
    trainer.train()
    with safe_open(str(out / "text_encoder" / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float32}
