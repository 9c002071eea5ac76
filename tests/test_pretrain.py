"""The asset builders, on tiny settings: everything saves with save_pretrained and reloads."""

import numpy as np
import pytest
import torch
from transformers import AutoModelForImageClassification, AutoTokenizer, CLIPModel

from sfd.data.fashion_mnist import FASHION_MNIST_CLASSES
from sfd.evaluation.judges import CLIPJudge
from sfd.pretrain.classifier import RECIPES, build_classifier, shift
from sfd.pretrain.clip import build_clip, build_tokenizer
from sfd.pretrain.teacher import build_scheduler, build_unet


def test_classifier_round_trips_with_auto_class_and_id2label(tmp_path):
    build_classifier().save_pretrained(tmp_path)
    model = AutoModelForImageClassification.from_pretrained(tmp_path)
    assert [model.config.id2label[i] for i in range(10)] == list(FASHION_MNIST_CLASSES)
    assert model(torch.zeros(2, 1, 28, 28)).logits.shape == (2, 10)


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_both_judges_recipes_round_trip_through_the_auto_class(recipe, tmp_path):
    build, _, _, _ = RECIPES[recipe]
    build().save_pretrained(tmp_path)
    model = AutoModelForImageClassification.from_pretrained(tmp_path)
    assert (
        type(model).__name__
        == {"resnet": "ResNetForImageClassification", "convnext": "ConvNextForImageClassification"}[recipe]
    )
    assert model(torch.zeros(2, 1, 28, 28)).logits.shape == (2, 10)


def test_shift_moves_each_image_by_whole_pixels_and_fills_with_black():
    torch.manual_seed(0)
    x = torch.full((64, 1, 28, 28), -1.0)
    x[:, :, 13, 13] = 1.0
    y = shift(x, pixels=2)
    assert (y == 1.0).flatten(1).sum(1).eq(1).all()  # the bright pixel survives, once, in every image
    rows, cols = (y[:, 0] == 1.0).nonzero()[:, 1], (y[:, 0] == 1.0).nonzero()[:, 2]
    assert (
        rows.sub(13).abs().max() <= 2
        and cols.sub(13).abs().max() <= 2
        and len(set(zip(rows.tolist(), cols.tolist()))) > 5
    )
    assert set(y.unique().tolist()) == {-1.0, 1.0}


def test_generated_bpe_tokenizer_keeps_caption_words_whole(tmp_path):
    tok = build_tokenizer(tmp_path / "bpe")
    tok.save_pretrained(tmp_path / "tok")
    tok = AutoTokenizer.from_pretrained(tmp_path / "tok")
    pieces = tok.convert_ids_to_tokens(tok("a photo of an ankle boot").input_ids)
    assert pieces == [
        "<|startoftext|>",
        "a</w>",
        "photo</w>",
        "of</w>",
        "an</w>",
        "ankle</w>",
        "boot</w>",
        "<|endoftext|>",
    ]
    assert tok.eos_token_id == len(tok) - 1  # pooled at the end-of-text token
    assert len(tok("zebra").input_ids) > 3  # unknown words fall back to bytes, never to <unk>


def test_small_clip_saves_reloads_and_judges(tmp_path):
    tok = build_tokenizer(tmp_path / "bpe")
    model = build_clip(tok, hidden=32, projection_dim=16)
    model.save_pretrained(tmp_path / "clip")
    tok.save_pretrained(tmp_path / "clip")
    judge = CLIPJudge.from_pretrained(tmp_path / "clip")
    assert isinstance(judge.model, CLIPModel)
    pred = judge.zero_shot(torch.rand(3, 1, 28, 28), ["a photo of a bag", "a photo of a dress"])
    assert pred.shape == (3,) and set(pred.tolist()) <= {0, 1}
    scores = judge.clip_score(torch.rand(2, 3, 32, 32), ["a bag", "a dress"])  # RGB, other size: adapted
    assert scores.shape == (2,) and (scores >= 0).all() and (scores <= 100).all()


def test_teacher_unet_takes_the_null_class():
    unet = build_unet(10)
    assert unet.config.num_class_embeds == 11 and unet.config.sample_size == 28
    out = unet(torch.zeros(1, 1, 28, 28), 10, class_labels=torch.tensor([10])).sample
    assert out.shape == (1, 1, 28, 28)
    assert build_scheduler().config.prediction_type == "epsilon"


def test_open_clip_backend_is_optional_and_wired(monkeypatch):
    import sys
    import types

    monkeypatch.setitem(sys.modules, "open_clip", None)
    import pytest

    with pytest.raises(ImportError, match="sfd\\[openclip\\]"):
        CLIPJudge.from_pretrained("open_clip:ViT-B-32/laion2b")

    class FakeModel(torch.nn.Module):  # a stand-in with open_clip's interface
        visual = types.SimpleNamespace(image_size=16)

        def encode_image(self, x):
            assert x.shape == (2, 3, 16, 16)
            return x.mean((2, 3))

        def encode_text(self, tokens):
            return tokens.float()

    fake = types.SimpleNamespace(
        create_model_and_transforms=lambda arch, pretrained=None: (FakeModel(), None, None),
        get_tokenizer=lambda arch: (
            lambda prompts: torch.tensor([[1.0, 0, 0] if "a" in p else [0, 1.0, 0] for p in prompts])
        ),
        OPENAI_DATASET_MEAN=(0.5, 0.5, 0.5),
        OPENAI_DATASET_STD=(0.5, 0.5, 0.5),
    )
    monkeypatch.setitem(sys.modules, "open_clip", fake)
    judge = CLIPJudge.from_pretrained("open_clip:ViT-B-32/laion2b")
    images = torch.zeros(2, 1, 8, 8)
    images[0] = 1.0  # bright image → first channel large after normalising
    assert judge.zero_shot(images, ["a", "b"]).shape == (2,)


def test_teacher_scripts_train_resume_and_export(tmp_path):
    """A few steps of each teacher script on the real data: resumable, exported as loadable pipelines."""
    import json

    from sfd.pipelines import ClassConditionalDiffusionPipeline, TextToImageDiffusionPipeline
    from sfd.pretrain import teacher, text_to_image

    for module, pipe_cls, extra in (
        (teacher, ClassConditionalDiffusionPipeline, ["--exclude_class", "trouser"]),
        (text_to_image, TextToImageDiffusionPipeline, []),
    ):
        out, work = tmp_path / module.__name__ / "out", tmp_path / module.__name__ / "work"
        args = [
            "--output_dir",
            str(out),
            "--work_dir",
            str(work),
            "--batch_size",
            "4",
            "--checkpoint_every",
            "1",
            "--mixed_precision",
            "no",
            *extra,
        ]
        module.main(args + ["--max_steps", "1"])
        module.main(args + ["--max_steps", "2"])  # resumes from step 1
        assert json.loads((out / "training_steps.json").read_text())["steps"] == 2
        pipe = pipe_cls.from_pretrained(out)
        assert pipe.config.default_guidance_scale > 1
    assert (tmp_path / text_to_image.__name__ / "out" / "prompts.txt").read_text().count("sneaker") >= 12


def test_changing_the_default_guidance_keeps_the_folder_files(tmp_path):
    import argparse

    from sfd.pipelines import TextToImageDiffusionPipeline
    from sfd.pretrain.denoising import load_for_measuring
    from tests.helpers import make_t2i_teacher

    folder = make_t2i_teacher(tmp_path / "t")
    (tmp_path / "t" / "training_steps.json").write_text('{"steps": 5}')
    pipe, steps = load_for_measuring(
        TextToImageDiffusionPipeline, argparse.Namespace(output_dir=folder, default_guidance_scale=3.0)
    )
    assert steps == 5 and (tmp_path / "t" / "prompts.txt").exists()
    assert TextToImageDiffusionPipeline.from_pretrained(folder).config.default_guidance_scale == 3.0


@pytest.mark.parametrize("edm", [False, True])
def test_teacher_script_trains_a_few_steps_and_exports_a_sampling_pipeline(edm, tmp_path):
    """`python -m sfd.pretrain.teacher [--edm]`: DDPM or EDM training, exported with the DPM-Solver++ of its family."""
    from diffusers import DPMSolverMultistepScheduler, EDMDPMSolverMultistepScheduler

    from sfd.pipelines import ClassConditionalDiffusionPipeline
    from sfd.pretrain.teacher import main

    out = tmp_path / "teacher"
    main(
        [
            "--output_dir",
            str(out),
            "--work_dir",
            str(tmp_path / "work"),
            "--max_steps",
            "2",
            "--batch_size",
            "4",
            "--checkpoint_every",
            "1",
            "--mixed_precision",
            "no",
        ]
        + (["--edm"] if edm else [])
    )
    pipe = ClassConditionalDiffusionPipeline.from_pretrained(out)
    assert type(pipe.scheduler) is (EDMDPMSolverMultistepScheduler if edm else DPMSolverMultistepScheduler)
    pipe.set_progress_bar_config(disable=True)
    images = pipe(
        class_labels=["trouser", "bag"],
        num_inference_steps=2,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
    ).images
    assert images.shape == (2, 28, 28, 1) and np.isfinite(images).all()
