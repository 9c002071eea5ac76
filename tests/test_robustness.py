"""Relearning attack, layered erasure and alignment with the gold model, on tiny models."""

import json

import numpy as np
import pytest
import torch

from sfd.core.losses import denoising_loss
from sfd.evaluation.relearn import area_under_curve, attacker_images, relearn_curve, steps_to_reach
from tests.helpers import make_teacher


def test_curve_summaries_by_hand():
    steps, acc = [0, 10, 20], [0.0, 0.2, 1.0]
    # trapezoids: (0 + 0.2) / 2 * 10 + (0.2 + 1.0) / 2 * 10 = 7, over 20 steps
    assert area_under_curve(steps, acc) == pytest.approx(0.35)
    # 0.5 is crossed between 10 (0.2) and 20 (1.0): 10 + 0.3 / 0.8 * 10
    assert steps_to_reach(steps, acc, 0.5) == pytest.approx(13.75)
    assert steps_to_reach(steps, acc, 0.0) == 0.0
    assert steps_to_reach(steps, [0.0, 0.1, 0.2], 0.5) is None


class ZeroUNet(torch.nn.Module):
    """Predicts 0 everywhere: the loss is then the mean square of the target."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x, t, class_labels=None):
        return type("Out", (), {"sample": x * self.w})()


@pytest.mark.parametrize("prediction_type", ["epsilon", "sample", "v_prediction"])
def test_denoising_loss_targets_the_schedule_parameterisation(prediction_type):
    from diffusers import DDPMScheduler

    sched = DDPMScheduler(num_train_timesteps=100, prediction_type=prediction_type)
    x0 = torch.randn(6, 1, 4, 4)
    loss = denoising_loss(ZeroUNet(), sched, x0, torch.zeros(6, dtype=torch.long), torch.Generator().manual_seed(3))
    gen = torch.Generator().manual_seed(3)  # the same draws, by hand
    t = torch.randint(0, 100, (6,), generator=gen)
    noise = torch.randn(x0.shape, generator=gen)
    target = {"epsilon": noise, "sample": x0, "v_prediction": sched.get_velocity(x0, noise, t)}[prediction_type]
    assert loss.item() == pytest.approx(target.pow(2).mean().item(), rel=1e-5)


def test_edm_denoising_loss_by_hand():
    """With F = 0 an EDM model's x̂₀ is c_skip·x: the loss is λ(σ)·‖c_skip·(x₀ + σε) − x₀‖², ln σ ~ N(−1.2, 1.2²)."""
    from diffusers import EDMEulerScheduler

    sched = EDMEulerScheduler(sigma_data=0.5)
    x0 = torch.randn(6, 1, 4, 4)
    loss = denoising_loss(ZeroUNet(), sched, x0, torch.zeros(6, dtype=torch.long), torch.Generator().manual_seed(3))
    gen = torch.Generator().manual_seed(3)
    sigma = (torch.randn(6, generator=gen) * 1.2 - 1.2).exp().view(-1, 1, 1, 1)
    x = x0 + sigma * torch.randn(x0.shape, generator=gen)
    c_skip, weight = 0.25 / (sigma**2 + 0.25), (sigma**2 + 0.25) / (sigma * 0.5) ** 2
    expected = (weight * (c_skip * x - x0) ** 2).flatten(1).mean(1).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_attacker_images_are_n_per_class_of_the_asked_classes():
    x, y = torch.arange(30.0).view(30, 1, 1, 1), torch.arange(30) % 3
    xs, ys = attacker_images((x, y), [2, 0], 4, seed=1)
    assert ys.tolist() == [2] * 4 + [0] * 4
    assert (xs.view(-1)[:4] % 3 == 2).all() and (xs.view(-1)[4:] % 3 == 0).all()
    assert len(set(xs.view(-1).tolist())) == 8
    with pytest.raises(ValueError, match="only 10 images"):
        attacker_images((x, y), [1], 11)


def tiny_pool():
    torch.manual_seed(0)
    return torch.rand(30, 1, 8, 8) * 2 - 1, torch.arange(30) % 3


def test_relearn_curve_fine_tunes_a_copy_and_measures_every_budget(tiny_teacher, tiny_classifier):
    from sfd.pipelines import ClassConditionalDiffusionPipeline

    pipe = ClassConditionalDiffusionPipeline.from_pretrained(tiny_teacher)
    before = {k: v.clone() for k, v in pipe.unet.state_dict().items()}
    kw = dict(classifier=tiny_classifier, eval_samples=6, pool=tiny_pool(), progress=False)
    curve = relearn_curve(pipe, "class=dog", n_images=5, checkpoints=[3, 0], learning_rate=1e-2, **kw)
    assert curve["steps"] == [0, 3] and curve["attacked"] == ["dog"] and curve["batch_size"] == 5
    assert len(curve["forget_accuracy"]) == 2 and curve["per_class_forget_accuracy"]["dog"] == curve["forget_accuracy"]
    assert all(torch.equal(before[k], v) for k, v in pipe.unet.state_dict().items())  # the released model is untouched
    # step 0 is the released model itself: the same figure with no fine-tuning at all
    assert (
        relearn_curve(pipe, "class=dog", checkpoints=[0], n_images=5, **kw)["forget_accuracy"]
        == curve["forget_accuracy"][:1]
    )
    # the resurgence test attacks with the remaining classes only
    benign = relearn_curve(pipe, "class=dog", n_images=5, checkpoints=[0, 3], benign=True, learning_rate=1e-2, **kw)
    assert benign["attacked"] == ["cat", "bird"] and benign["benign"]


def test_relearning_attack_fine_tunes_an_edm_model_with_its_own_loss(tmp_path, tiny_classifier):
    from sfd.pipelines import ClassConditionalDiffusionPipeline

    pipe = ClassConditionalDiffusionPipeline.from_pretrained(make_teacher(tmp_path / "edm", edm=True))
    before = {k: v.clone() for k, v in pipe.unet.state_dict().items()}
    curve = relearn_curve(
        pipe,
        "class=dog",
        n_images=5,
        checkpoints=[0, 2],
        classifier=tiny_classifier,
        pool=tiny_pool(),
        eval_samples=6,
        learning_rate=1e-2,
        progress=False,
    )
    assert curve["steps"] == [0, 2] and len(curve["forget_accuracy"]) == 2
    assert all(torch.equal(before[k], v) for k, v in pipe.unet.state_dict().items())


def test_adaptive_attack_trains_the_generator_at_its_sampling_level(tiny_teacher, tiny_classifier):
    from diffusers import DDPMScheduler

    from sfd.core.losses import sampling_level_loss
    from sfd.pipelines import OneStepClassConditionalPipeline
    from tests.helpers import NAMES, tiny_unet

    torch.manual_seed(0)
    pipe = OneStepClassConditionalPipeline(
        unet=tiny_unet(),
        scheduler=DDPMScheduler(num_train_timesteps=100),
        id2label=NAMES,
        sigma_init=2.5,
        forgotten=[1],
    )
    x0, c = torch.randn(4, 1, 8, 8), torch.tensor([1, 1, 0, 2])
    gen = torch.Generator().manual_seed(5)
    loss = sampling_level_loss(pipe.generator_network(), 2.5, x0, c, gen)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(5))  # the same draw, by hand
    with torch.no_grad():
        expected = (pipe.generator_network()(x0 + 2.5 * noise, 2.5, c) - x0).pow(2).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    kw = dict(classifier=tiny_classifier, eval_samples=6, pool=tiny_pool(), progress=False, n_images=5)
    curve = relearn_curve(pipe, "class=dog", checkpoints=[0, 2], at_sampling_level=True, **kw)
    assert curve["at_sampling_level"] and curve["steps"] == [0, 2]
    with pytest.raises(ValueError, match="one-step generator"):
        relearn_curve(tiny_teacher, "class=dog", at_sampling_level=True, **kw)


def test_sfd_attack_command_writes_curves_and_refuses_unknown_classes(
    tiny_teacher, tiny_classifier, tmp_path, monkeypatch
):
    import sfd.evaluation.relearn
    from sfd.cli.attack import main

    monkeypatch.setattr(sfd.evaluation.relearn, "load_images", lambda *args: (*tiny_pool(), ()))
    main(
        [
            "relearn",
            "--model",
            tiny_teacher,
            "--forget",
            "class=dog",
            "--images",
            "2",
            "4",
            "--steps",
            "0,2",
            "--eval_samples",
            "4",
            "--classifier",
            tiny_classifier,
            "--report",
            str(tmp_path / "r"),
        ]
    )
    curves = json.loads((tmp_path / "r" / "relearn.json").read_text())
    assert [c["images_per_class"] for c in curves] == [2, 4]
    assert curves[0]["forget_accuracy"][0] == curves[1]["forget_accuracy"][0]  # same released model, same eval seed
    assert (tmp_path / "r" / "relearn.png").stat().st_size > 0 and "| 2 | dog |" in (
        tmp_path / "r" / "relearn.md"
    ).read_text()
    with pytest.raises(SystemExit, match="unknown class 'horse'"):
        main(["relearn", "--model", tiny_teacher, "--forget", "class=horse", "--classifier", tiny_classifier])
    with pytest.raises(SystemExit, match="step counts separated by commas"):
        main(["relearn", "--model", tiny_teacher, "--forget", "class=dog", "--steps", "0,ten"])
    with pytest.raises(SystemExit, match="at least one image"):
        main(
            [
                "relearn",
                "--model",
                tiny_teacher,
                "--forget",
                "class=dog",
                "--images",
                "0",
                "--classifier",
                tiny_classifier,
            ]
        )


# ---- layered erasure ---------------------------------------------------------------------------------


def test_split_folds_keeps_the_order_and_refuses_too_many_layers():
    from sfd.training.config import TrainingSetupError
    from sfd.training.layered import split_folds

    assert split_folds(["a", "b", "c"], 2) == [["a", "b"], ["c"]]
    assert split_folds(["a", "b", "c"], 3) == [["a"], ["b"], ["c"]]
    with pytest.raises(TrainingSetupError, match="between 1 and the number of forgotten classes"):
        split_folds(["a", "b"], 3)


def test_layered_erasure_runs_stages_each_from_the_previous(tiny_teacher, tiny_options, tmp_path):
    import sfd
    from sfd.pipelines import OneStepClassConditionalPipeline

    out = tmp_path / "layered"
    opts = dict(tiny_options, max_train_steps=4, checkpointing_steps=2, validation_steps=0)
    pipe = sfd.forget(tiny_teacher, forget="class=cat,dog", layers=2, output_dir=str(out), **opts)
    stage1 = out / "stages" / "stage-1-of-2"
    first, last = (json.loads((d / "training.json").read_text()) for d in (stage1, out))
    assert first["forget"] == ["cat"] and last["forget"] == ["cat", "dog"]
    assert first["steps"] == last["steps"] == 2  # the budget is split over the stages
    # the default --override auto never picks a class a later stage forgets (dog): bird is the one left
    assert first["override"] == last["override"] == "bird" and first["override_chosen_by"] == "auto"
    assert "stage 2 of 2" in (out / "README.md").read_text() and "stage-1-of-2" in (out / "README.md").read_text()
    reloaded = OneStepClassConditionalPipeline.from_pretrained(out)
    assert reloaded.config.forgotten == [0, 1]
    assert all(torch.equal(a, b) for a, b in zip(pipe.unet.state_dict().values(), reloaded.unet.state_dict().values()))
    # resuming a finished layered run skips stage 1 and ends with the same model
    again = sfd.forget(
        tiny_teacher, forget="class=cat,dog", layers=2, output_dir=str(out), resume_from_checkpoint="latest", **opts
    )
    assert all(
        torch.equal(a, b) for a, b in zip(again.unet.state_dict().values(), reloaded.unet.state_dict().values())
    )


def test_layers_are_checked_before_loading(tiny_teacher, tmp_path, capsys):
    from sfd.cli.train import main

    with pytest.raises(SystemExit, match="between 1 and the number of forgotten classes"):
        main(
            ["--teacher", tiny_teacher, "--forget", "class=cat", "--layers", "2", "--output_dir", str(tmp_path / "o")]
        )


# ---- alignment with the gold model ---------------------------------------------------------------------


def test_gold_alignment_is_zero_for_the_same_samples_and_grows_with_a_shift(tmp_path):
    from sfd.evaluation.gold import GoldSamples, gold_alignment

    rng = np.random.default_rng(0)
    feats = rng.normal(size=(400, 4))
    gold = GoldSamples(feats, {"cat": 0.9, "dog": 0.0}, "gold", 1)
    same = gold_alignment(feats, {"cat": 0.9, "dog": 0.0}, gold)
    assert same["fid_to_gold"] == pytest.approx(0.0, abs=1e-6) and same["accuracy_gap_to_gold_max_pts"] == 0.0
    moved = gold_alignment(feats + 1.0, {"cat": 0.8, "dog": 0.3}, gold)
    assert moved["fid_to_gold"] == pytest.approx(4.0, rel=1e-3)  # ‖Δμ‖² with equal covariances
    assert moved["accuracy_gap_to_gold_pts"] == pytest.approx({"cat": 10.0, "dog": 30.0})
    assert moved["accuracy_gap_to_gold_mean_pts"] == pytest.approx(20.0)
    gold.save(tmp_path / "g.safetensors")
    back = GoldSamples.load(tmp_path / "g.safetensors")
    assert np.allclose(back.features, feats) and back.per_class_accuracy == gold.per_class_accuracy and back.seed == 1


def test_sfd_eval_gold_reports_the_alignment(tiny_teacher, tiny_classifier, tmp_path):
    from sfd.cli.eval import main

    report = tmp_path / "report"
    main(
        [
            "--model",
            tiny_teacher,
            "--gold",
            tiny_teacher,
            "--forget",
            "class=dog",
            "--classifier",
            tiny_classifier,
            "--reference_stats",
            "none",
            "--clip",
            "none",
            "--num_samples_per_class",
            "12",
            "--batch_size",
            "12",
            "--report",
            str(report),
        ]
    )
    data = json.loads((report / "metrics.json").read_text())
    # the gold model is this very model drawn with the next seed: a small but non-zero distance (the noise floor)
    assert data["gold_seed"] == 1 and 0 < data["fid_to_gold"] < 1e3
    assert set(data["accuracy_gap_to_gold_pts"]) == {"cat", "dog", "bird"}
    assert "FID to gold" in (report / "report.md").read_text()
