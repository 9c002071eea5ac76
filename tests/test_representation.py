"""`sfd-eval --representation`: a linear probe on the middle block's features and the judge-space separation."""

import json

import pytest
import torch

from sfd.cli.eval import main as eval_main
from sfd.evaluation.judges import ImageClassifierJudge
from sfd.evaluation.representation import judge_separation, probe_accuracy, probe_features
from sfd.pipelines import ClassConditionalDiffusionPipeline


def test_the_probe_finds_a_linear_rule_and_not_a_random_one():
    torch.manual_seed(0)
    x = torch.randn(400, 16)
    rule = (x[:, 3] - x[:, 7] > 0).long()  # a linear concept
    assert probe_accuracy(x[:200], rule[:200], x[200:], rule[200:]) > 0.9
    noise = torch.randint(0, 2, (400,))  # none
    assert abs(probe_accuracy(x[:200], noise[:200], x[200:], noise[200:]) - 0.5) < 0.12


def test_middle_features_are_one_vector_per_image_and_depend_on_the_image(tiny_teacher):
    pipe = ClassConditionalDiffusionPipeline.from_pretrained(tiny_teacher)
    x = torch.rand(5, 1, 8, 8) * 2 - 1
    feats = probe_features(pipe, x, 0.5, seed=0, batch_size=2)
    assert feats.shape == (5, pipe.unet.config.block_out_channels[-1])
    torch.testing.assert_close(
        feats, probe_features(pipe, x, 0.5, seed=0), rtol=1e-4, atol=1e-5
    )  # batch size: no matter
    assert not torch.allclose(feats, probe_features(pipe, -x, 0.5, seed=0))


def test_samples_that_look_like_another_class_are_separated_from_the_forgotten_one(tiny_classifier):
    judge = ImageClassifierJudge.from_pretrained(tiny_classifier)
    torch.manual_seed(0)
    real_x = torch.cat([torch.full((20, 1, 8, 8), -0.9), torch.full((20, 1, 8, 8), 0.9)]) + 0.05 * torch.randn(
        40, 1, 8, 8
    )
    real_y = torch.tensor([0] * 20 + [1] * 20)
    label_map = {0: 0, 1: 1}
    like_forgotten = judge_separation(judge, (real_x[:10] + 1) / 2, real_x, real_y, 0, label_map)
    like_other = judge_separation(judge, (real_x[20:30] + 1) / 2, real_x, real_y, 0, label_map)
    assert like_forgotten["separation"] < 1 < like_other["separation"] and like_other["nearest_remaining_class"] == 1


def test_sfd_eval_reports_the_representation_of_model_and_reference(tiny_teacher, tiny_classifier, tmp_path):
    report = tmp_path / "report"
    eval_main(
        ["--model", tiny_teacher, "--reference", tiny_teacher, "--forget", "class=dog", "--representation"]
        + ["--classifier", tiny_classifier, "--reference_stats", "none", "--clip", "none", "--second_classifier"]
        + ["none", "--num_samples_per_class", "4", "--batch_size", "12", "--report", str(report)]
    )
    metrics = json.loads((report / "metrics.json").read_text())
    rep, ref = metrics["representation"], metrics["reference_representation"]
    assert rep == ref  # the same model, the same seed
    assert 0 <= rep["probe_accuracy_sigma_0.5"] <= 1 and rep["separation"] > 0
    assert rep["nearest_remaining_class"] in ("cat", "bird")
    assert "## What the weights represent" in (report / "report.md").read_text()
    with pytest.raises(SystemExit, match="--representation measures a forgotten class: pass --forget"):
        eval_main(["--model", tiny_teacher, "--representation", "--classifier", tiny_classifier, "--clip", "none"]
                  + ["--reference_stats", "none", "--second_classifier", "none", "--num_samples_per_class", "2"])  # fmt: skip
