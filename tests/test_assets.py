"""Quality bars of the shipped assets (targets.md). Slow: run with `pytest -m slow`."""

from pathlib import Path

import pytest
import torch

ASSETS = Path(__file__).resolve().parent.parent / "assets"
pytestmark = pytest.mark.slow


def test_classifier_test_accuracy_at_least_91_percent():
    from transformers import AutoModelForImageClassification

    from sfd.data.fashion_mnist import load_fashion_mnist
    from sfd.pretrain.classifier import accuracy

    model = AutoModelForImageClassification.from_pretrained(ASSETS / "classifier")
    x, y = load_fashion_mnist("test")
    assert accuracy(model, x, y) >= 0.91


def test_clip_zero_shot_accuracy_at_least_80_percent():
    from transformers import CLIPModel, CLIPTokenizer

    from sfd.data.fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist
    from sfd.pretrain.clip import zero_shot_accuracy

    model = CLIPModel.from_pretrained(ASSETS / "clip")
    tok = CLIPTokenizer.from_pretrained(ASSETS / "clip")
    x, y = load_fashion_mnist("test")
    assert zero_shot_accuracy(model, tok, x, y, FASHION_MNIST_CLASSES) >= 0.80


@pytest.mark.parametrize("teacher,samples_per_class", [("teacher", 50), ("edm-teacher", 30)])
def test_teacher_samples_land_in_their_class(teacher, samples_per_class):
    from sfd.evaluation.evaluate_classes import evaluate_model

    torch.manual_seed(0)
    m = evaluate_model(
        str(ASSETS / teacher),
        forget=None,
        num_samples_per_class=samples_per_class,
        seed=7,
        reference_stats=None,
        progress=False,
    )
    assert m["remaining_accuracy"] >= 0.85  # nothing forgotten: the accuracy over all classes


def test_shipped_unlearned_model_does_not_draw_its_forgotten_class():
    from sfd.evaluation.evaluate_classes import evaluate_model

    m = evaluate_model(
        str(ASSETS / "sfd-trouser"),
        forget="class=trouser",
        num_samples_per_class=100,
        num_forget_samples=1000,
        seed=7,
        reference_stats=None,
        progress=False,
    )
    assert m["forget_accuracy"] <= 0.01
    assert m["remaining_accuracy"] >= 0.85


def test_text_to_image_teacher_draws_its_prompts():
    from sfd.evaluation.evaluate_text import evaluate_text_model

    m = evaluate_text_model(
        str(ASSETS / "t2i-teacher"), forget=None, num_samples_per_prompt=30, seed=7, progress=False
    )
    assert m["clip_accuracy_remaining"] >= 0.85 and m["remaining_samples"] == 300


def test_shipped_text_to_image_model_forgets_sneakers_and_keeps_the_rest():
    """targets.md: CLIP forget detection ≤ 5%, CLIP score of the other prompts ≥ 95% of the teacher's."""
    import json

    from sfd.evaluation.evaluate_text import evaluate_text_model

    m = evaluate_text_model(
        str(ASSETS / "sfd-t2i-sneaker"),
        forget="concept=sneaker",
        num_samples_per_prompt=50,
        num_forget_samples=500,
        seed=7,
        progress=False,
    )
    teacher = json.loads((ASSETS / "t2i-teacher" / "metrics.json").read_text())
    assert m["clip_forget_detection"] <= 0.05
    assert m["clip_score_remaining"] >= 0.95 * teacher["clip_score_remaining"]
