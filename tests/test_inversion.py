"""Concept inversion (`sfd-attack invert`): a new class embedding is learned while every weight stays frozen."""

import json

import pytest
import torch
from diffusers import DDPMScheduler

from sfd.cli.attack import main as attack_main
from sfd.evaluation.inversion import class_embedding_tables, inversion_curve, inverted_class
from sfd.pipelines import ClassConditionalDiffusionPipeline, OneStepClassConditionalPipeline
from tests.helpers import NAMES, make_dit_teacher, make_t2i_teacher, tiny_dit, tiny_unet
from tests.test_robustness import tiny_pool


def test_the_inverted_class_is_looked_up_as_learnable_vectors_and_the_tables_are_untouched():
    torch.manual_seed(0)
    unet = tiny_unet()
    table = unet.class_embedding.weight.detach().clone()
    labels = torch.tensor([0, 1, 2, 1])
    with inverted_class(unet, 1) as (vector,):
        with torch.no_grad():
            vector.add_(1.0)
        out = unet.class_embedding(labels)
        assert torch.equal(out[[1, 3]], (table[1] + 1).expand(2, -1)) and torch.equal(out[[0, 2]], table[[0, 2]])
    assert torch.equal(unet.class_embedding(labels), table[labels])  # the hook is gone after the block
    with inverted_class(unet, 1, init="mean", classes=[0, 2]) as (vector,):
        assert torch.allclose(vector, table[[0, 2]].mean(0))
    assert len(class_embedding_tables(tiny_dit())) == 1  # one DiT block: its label table
    with pytest.raises(ValueError, match="unknown init 'zero'"):
        with inverted_class(unet, 1, init="zero"):
            pass


@pytest.mark.parametrize("one_step", [False, True])
def test_inversion_learns_only_the_embedding_and_measures_every_budget(
    tmp_path, tiny_teacher, tiny_classifier, one_step
):
    if one_step:
        torch.manual_seed(0)
        pipe = OneStepClassConditionalPipeline(
            unet=tiny_unet(), scheduler=DDPMScheduler(num_train_timesteps=100), id2label=NAMES, sigma_init=2.5
        )
    else:
        pipe = ClassConditionalDiffusionPipeline.from_pretrained(tiny_teacher)
    before = {k: v.clone() for k, v in pipe.unet.state_dict().items()}
    kw = dict(classifier=tiny_classifier, eval_samples=6, pool=tiny_pool(), progress=False, n_images=5)
    kw["num_inference_steps"] = None if one_step else 2
    curve = inversion_curve(pipe, "class=dog", checkpoints=[3, 0], **kw)
    assert curve["steps"] == [0, 3] and len(curve["forget_accuracy"]) == 2 and curve["attacked"] == ["dog"]
    assert curve["attack"].endswith("(one-step: at σ_init)") == one_step
    assert curve["embedding_change_norm"] > 0  # the vector moved
    assert all(torch.equal(before[k], v) for k, v in pipe.unet.state_dict().items())  # no weight did
    assert all(p.requires_grad for p in pipe.unet.parameters())  # and their flags are restored
    step0 = inversion_curve(pipe, "class=dog", checkpoints=[0], **kw)
    assert step0["forget_accuracy"] == curve["forget_accuracy"][:1]  # step 0 is the released model
    with pytest.raises(ValueError, match="one class at a time"):
        inversion_curve(pipe, "class=dog,cat", checkpoints=[0], **kw)


def save_dataset(path, names, shape) -> str:
    """Six blank images of `shape` labelled 0, 1, 2 twice, as a `datasets` folder with class names `names`."""
    import numpy as np
    from datasets import ClassLabel, Dataset, Image

    rows = {"image": [np.zeros(shape, dtype=np.uint8)] * 6, "label": [0, 1, 2] * 2}
    data = Dataset.from_dict(rows).cast_column("image", Image()).cast_column("label", ClassLabel(names=names))
    data.save_to_disk(str(path))
    return str(path)


def invert_with_the_cli(model, forget, classifier, data, report) -> dict:
    """`sfd-attack invert` from the vocabulary's / other rows' mean with 2 images and budgets 0, 2; its one curve."""
    attack_main(
        ["invert", "--model", model, "--forget", forget, "--images", "2", "--steps", "0,2"]
        + ["--eval_samples", "2", "--num_inference_steps", "2", "--classifier", classifier]
        + ["--dataset", data, "--init", "mean", "--report", str(report)]
    )
    (curve,) = json.loads((report / "invert.json").read_text())
    return curve


def test_sfd_attack_invert_writes_a_report_for_a_dit(tmp_path):
    from tests.helpers import DIT_NAMES, make_classifier

    teacher = make_dit_teacher(tmp_path / "dit")
    data = save_dataset(tmp_path / "data", ["cat", "dog, puppy", "bird"], (8, 8, 3))
    classifier = str(make_classifier(tmp_path / "classifier", DIT_NAMES))
    report = tmp_path / "report"
    curve = invert_with_the_cli(teacher, "class=puppy", classifier, data, report)
    assert curve["init"] == "mean" and curve["steps"] == [0, 2] and curve["embedding_tables"] == 1
    assert (report / "invert.png").exists() and "sfd-attack invert" in (report / "invert.md").read_text()


# ---- text-to-image models: a new token ----------------------------------------------------------------------------


def text_pool():
    """Tiny 8×8 grayscale images labelled by name, as `load_images` returns them."""
    x, y = tiny_pool()
    return x, y, tuple(NAMES.values())


def test_the_new_token_starts_from_the_concepts_own_row_and_only_its_row_learns(tmp_path):
    from sfd.core.tokens import PLACEHOLDER, PlaceholderToken
    from sfd.pipelines import TextToImageDiffusionPipeline
    from sfd.pipelines.prompt_encoding import encode_prompts

    pipe = TextToImageDiffusionPipeline.from_pretrained(make_t2i_teacher(tmp_path / "t2i"))
    before = pipe.text_encoder.get_input_embeddings().weight.detach().clone()
    token = PlaceholderToken(pipe, start="dog")
    (row,) = token.rows
    with torch.no_grad():  # a one-token word: the new word encodes exactly as the word it starts from
        assert torch.equal(
            encode_prompts(pipe, [f"a photo of a {PLACEHOLDER}"]), encode_prompts(pipe, ["a photo of a dog"])
        )
    encode_prompts(pipe, [f"a {PLACEHOLDER}"]).sum().backward()
    assert row.grad.abs().sum() > 0 and row.dtype == torch.float32  # the row learns, in fp32
    assert not any(p.requires_grad for p in pipe.text_encoder.parameters())  # no encoder weight does
    with torch.no_grad():
        row.add_(1.0)
        moved = encode_prompts(pipe, [f"a {PLACEHOLDER}"])
    token.store()  # the learned row goes into the table and the hook goes away: the same condition without it
    table = pipe.text_encoder.get_input_embeddings().weight
    assert torch.equal(table[: len(before)], before) and torch.equal(table[-1], row.detach())
    assert torch.equal(encode_prompts(pipe, [f"a {PLACEHOLDER}"]), moved)
    with torch.no_grad():
        row.add_(1.0)  # no longer looked up
    assert torch.equal(encode_prompts(pipe, [f"a {PLACEHOLDER}"]), moved)


@pytest.mark.parametrize("one_step", [False, True])
def test_text_inversion_learns_only_a_new_token_and_leaves_the_callers_pipeline_as_it_was(
    tmp_path, tiny_classifier, one_step
):
    from sfd.pipelines import OneStepTextToImagePipeline, TextToImageDiffusionPipeline

    pipe = TextToImageDiffusionPipeline.from_pretrained(make_t2i_teacher(tmp_path / "t2i"))
    if one_step:
        pipe = OneStepTextToImagePipeline(
            pipe.unet, pipe.text_encoder, pipe.tokenizer, pipe.scheduler, sigma_init=2.5, concepts=list(NAMES.values())
        )
    weights = {k: v.clone() for k, v in pipe.unet.state_dict().items()} | {
        k: v.clone() for k, v in pipe.text_encoder.state_dict().items()
    }
    vocabulary = len(pipe.tokenizer)
    kw = dict(classifier=tiny_classifier, eval_samples=4, pool=text_pool(), progress=False, n_images=5)
    kw["num_inference_steps"] = None if one_step else 2
    curve = inversion_curve(pipe, "concept=dog", checkpoints=[3, 0], learning_rate=0.1, **kw)
    assert curve["steps"] == [0, 3] and len(curve["forget_accuracy"]) == 2 and curve["attacked"] == ["dog"]
    assert curve["attack"].startswith("concept inversion, new token")
    assert curve["attack"].endswith("(one-step: at σ_init)") == one_step
    assert curve["judge"] == "classifier label 'dog'" and curve["embedding_tables"] == 1
    assert curve["embedding_change_norm"] > 0  # the token's row moved
    state = pipe.unet.state_dict() | pipe.text_encoder.state_dict()
    assert all(torch.equal(weights[k], v) for k, v in state.items())  # no weight of the caller's pipeline changed
    assert all(p.requires_grad for p in pipe.unet.parameters())  # and its network's flags are restored
    assert len(pipe.tokenizer) == vocabulary  # and it did not gain the word
    with pytest.raises(ValueError, match="one concept at a time"):
        inversion_curve(pipe, "concept=dog,cat", checkpoints=[0], **kw)


def test_text_inversion_judges_with_clip_when_the_classifier_does_not_know_the_concept(
    tmp_path, tiny_classifier, tiny_t2i_options
):
    from sfd.evaluation.token_inversion import concept_judge
    from sfd.pipelines import TextToImageDiffusionPipeline

    pipe = TextToImageDiffusionPipeline.from_pretrained(make_t2i_teacher(tmp_path / "t2i"))
    rate, judged_by = concept_judge(pipe, "zebra", tiny_classifier, clip=None)
    assert judged_by == "CLIP zero-shot among 4 prompts"  # zebra and the model's three concepts
    from sfd.evaluation.judges import CLIPJudge

    clip = CLIPJudge.from_pretrained(tmp_path / "clip")
    rate, judged_by = concept_judge(pipe, "dog", tiny_classifier, clip=clip)
    assert judged_by == "CLIP zero-shot among 3 prompts"  # an explicit CLIP wins over the classifier
    images = torch.rand(6, 1, 8, 8)
    prompts = ["a photo of a dog", "a photo of a cat", "a photo of a bird"]  # the concept first
    assert rate(images) == (clip.zero_shot(images, prompts) == 0).float().mean().item()


def test_sfd_attack_invert_attacks_a_text_model_folder(tmp_path, tiny_classifier):
    teacher = make_t2i_teacher(tmp_path / "t2i")
    data = save_dataset(tmp_path / "data", ["Cat", "Dog", "Bird"], (8, 8))
    curve = invert_with_the_cli(teacher, "concept=dog", tiny_classifier, data, tmp_path / "report")
    assert curve["init"] == "mean" and curve["steps"] == [0, 2] and curve["attacked"] == ["dog"]
    assert curve["attack"] == "concept inversion, new token" and curve["judge"] == "classifier label 'dog'"
    with pytest.raises(SystemExit, match="text-to-image: forget a concept"):
        attack_main(["invert", "--model", teacher, "--forget", "class=dog", "--classifier", tiny_classifier])
