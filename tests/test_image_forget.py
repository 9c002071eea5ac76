"""`--forget "image=PATH"`: the teacher names the class it sees in a picture, data-free, before training starts."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import sfd
from sfd.pipelines import ClassConditionalDiffusionPipeline, TextToImageDiffusionPipeline
from sfd.training.config import TrainingConfig, TrainingSetupError
from sfd.training.image_forget import image_paths, rank_classes_for_images, read_image
from sfd.training.setup import validate
from tests.helpers import make_t2i_teacher


class ClassOracle(nn.Module):
    """A denoiser that reconstructs `image` perfectly under class `right` and returns zeros under any other."""

    def __init__(self, image: torch.Tensor, right: int):
        super().__init__()
        self.image, self.right = image, right
        self.scale = nn.Parameter(torch.ones(()))  # a parameter, so callers find its device

    def forward(self, x, sigma, labels):
        keep = (labels == self.right).view(-1, 1, 1, 1).to(x)
        return keep * self.image.expand_as(x) * self.scale


def save_png(path, array):
    Image.fromarray(array).save(path)
    return str(path)


def test_the_class_whose_denoiser_explains_the_image_ranks_first(tiny_teacher):
    pipe = ClassConditionalDiffusionPipeline.from_pretrained(tiny_teacher)
    image = torch.rand(1, 1, 8, 8) * 2 - 1
    for right in (0, 2):
        ranking = rank_classes_for_images(pipe, ClassOracle(image[0], right), image, 0.1, 10.0, draws=4)
        assert [c for c, _ in ranking][0] == right and ranking[0][1] == 0.0 and ranking[1][1] > 0


def test_images_are_read_converted_and_bad_paths_named(tmp_path, caplog):
    rgb = save_png(tmp_path / "big.png", np.full((16, 16, 3), 255, dtype=np.uint8))
    with caplog.at_level("WARNING"):
        x = read_image(tmp_path / "big.png", 8, 1)
    assert x.shape == (1, 8, 8) and torch.allclose(x, torch.ones_like(x))  # white → +1
    assert "16×16 RGB converted to the teacher's 8×8 L" in caplog.text
    assert image_paths(f"image={rgb}, {tmp_path / 'b.png'}") == [tmp_path / "big.png", tmp_path / "b.png"]
    assert image_paths("class=cat") is None
    (tmp_path / "text.png").write_text("not an image")
    for path, message in ((tmp_path / "missing.png", "image not found: .*missing.png"), (tmp_path / "text.png", "cannot read --forget image .*text.png")):  # fmt: skip
        with pytest.raises(TrainingSetupError, match=message):
            validate(TrainingConfig(teacher="/nonexistent", forget=f"image={path}"))  # the file first, no teacher
    with pytest.raises(TrainingSetupError, match="names no image"):
        image_paths("image= ,")


def test_a_text_teacher_learns_a_token_from_the_image_and_forgets_it_with_its_nearest_word(tmp_path, tiny_t2i_options):
    image = save_png(tmp_path / "x.png", np.random.default_rng(0).integers(0, 255, (8, 8), dtype=np.uint8))
    teacher = make_t2i_teacher(tmp_path / "t2i")
    out = tmp_path / "out"
    cfg = TrainingConfig(
        teacher=teacher, forget=f"image={image}", override="a cat", output_dir=str(out), **tiny_t2i_options
    )
    task = validate(cfg)
    evidence = task.forget_image
    losses = evidence["word_losses"]
    word = min(losses, key=losses.get)  # of the nearest words, the one whose prompt explains the image best
    assert set(losses) == set(evidence["nearest_words"])
    assert evidence["token"] == "sfdconcept" and evidence["concepts"] == ["sfdconcept", word]
    assert cfg.forget == f"concept=sfdconcept,{word}" and isinstance(cfg.teacher, TextToImageDiffusionPipeline)
    first, last = evidence["image_loss_before_after"]
    assert last < first  # the token learned to explain the image
    assert "a photo of a sfdconcept" in task.spec.forget_prompts
    tokenizer = cfg.teacher.tokenizer
    assert len(tokenizer("sfdconcept").input_ids) == 3  # bos, the new token, eos
    words = dict(evidence["nearest_words"])
    assert len(words) == 5 and all(-1 <= c <= 1 for c in words.values()) and all(len(w) > 1 for w in words)


def test_an_image_run_forgets_the_chosen_class_and_records_the_ranking(tiny_teacher, tiny_options, tmp_path):
    image = save_png(tmp_path / "x.png", np.random.default_rng(0).integers(0, 255, (8, 8), dtype=np.uint8))
    out = tmp_path / "out"
    cfg = TrainingConfig(teacher=tiny_teacher, forget=f"image={image}", output_dir=str(out), **tiny_options)
    task = validate(cfg)
    evidence = task.forget_image
    assert cfg.forget == f"class={task.spec.forget[0]}" and evidence["chosen"] == task.spec.forget_names[0]
    assert sorted(evidence["ranking"]) == ["bird", "cat", "dog"] and evidence["images"] == [image]
    assert list(evidence["ranking"].values()) == sorted(evidence["ranking"].values())  # most likely first
    d = list(evidence["ranking"].values())
    assert evidence["margin"] == pytest.approx((d[1] - d[0]) / d[0], abs=1e-3)
    again = TrainingConfig(teacher=tiny_teacher, forget=f"image={image}", output_dir=str(out), **tiny_options)
    assert validate(again).forget_image == evidence  # seeded: the same choice every time (and on every process)

    sfd.forget(tiny_teacher, forget=f"image={image}", output_dir=str(out), **tiny_options)
    record = json.loads((out / "training.json").read_text())
    assert record["forget_image"] == evidence and record["forget"] == [evidence["chosen"]]
    card = (out / "README.md").read_text()
    assert f"chosen from 1 image(s) by the teacher's own denoising loss: {evidence['chosen']!r}" in card
