import json

import numpy as np
import pytest
import torch

from sfd.core.metrics import bootstrap_ci, entropy, feature_statistics, frechet_distance
from sfd.core.spec import ForgetSpec
from sfd.evaluation.evaluate_classes import class_metrics
from sfd.evaluation.judges import ImageClassifierJudge
from sfd.evaluation.report import write_report

NAMES = {0: "cat", 1: "dog", 2: "bird"}


def one_hot_probs(pred, n=3, p=1.0):
    probs = torch.full((len(pred), n), (1 - p) / (n - 1))
    probs[torch.arange(len(pred)), torch.tensor(pred)] = p
    return probs


def test_forget_accuracy_is_divided_by_the_forgotten_class_samples_only():
    # 4 samples per class; of the 4 'dog' samples, 1 is still classified as dog
    labels = torch.tensor([0] * 4 + [1] * 4 + [2] * 4)
    pred = [0, 0, 0, 2] + [1, 0, 0, 2] + [2, 2, 2, 2]
    spec = ForgetSpec.parse("class=dog", None, NAMES)
    m = class_metrics(one_hot_probs(pred), torch.zeros(12, 2), labels, spec, {0: 0, 1: 1, 2: 2})
    assert m["forget_accuracy"] == 0.25 and m["unlearning_accuracy"] == 0.75 and m["forget_samples"] == 4
    assert m["remaining_accuracy"] == 7 / 8
    assert m["per_class_accuracy"] == {"cat": 0.75, "dog": 0.25, "bird": 1.0}
    assert m["forget_prob_mean"] == pytest.approx(0.25)
    assert m["forget_entropy_mean"] == pytest.approx(0.0, abs=1e-6)


def test_a_model_that_did_not_forget_is_reported_as_not_forgetting():
    labels = torch.arange(3).repeat_interleave(5)
    probs = one_hot_probs(labels.tolist(), p=0.8)
    m = class_metrics(
        probs, torch.zeros(15, 2), labels, ForgetSpec.parse("class=bird", None, NAMES), {0: 0, 1: 1, 2: 2}
    )
    assert m["forget_accuracy"] == 1.0 and m["unlearning_accuracy"] == 0.0
    assert m["forget_prob_mean"] == pytest.approx(0.8)
    assert m["forget_entropy_mean"] == pytest.approx(float(-(0.8 * np.log(0.8) + 2 * 0.1 * np.log(0.1))), rel=1e-5)


def test_forget_accuracy_floor_is_the_classifiers_confusion_on_real_override_images():
    from sfd.evaluation.reference import forget_accuracy_floor

    # real images: 4 cats (1 called dog), 4 dogs, 4 birds (2 called dog)
    ref_labels = torch.tensor([0] * 4 + [1] * 4 + [2] * 4)
    ref_pred = torch.tensor([0, 0, 0, 1] + [1] * 4 + [2, 1, 1, 2])
    ids = {0: 0, 1: 1, 2: 2}
    random_override = ForgetSpec.parse("class=dog", None, NAMES)
    assert forget_accuracy_floor(ref_labels, ref_pred, random_override, ids) == pytest.approx((1 / 4 + 2 / 4) / 2)
    assert forget_accuracy_floor(ref_labels, ref_pred, ForgetSpec.parse("class=dog", "class=cat", NAMES), ids) == 0.25
    # two forgotten classes, override bird: bird images called dog (2/4) and called cat (0/4)
    two = ForgetSpec.parse("class=dog,cat", "class=bird", NAMES)
    assert forget_accuracy_floor(ref_labels, ref_pred, two, ids) == pytest.approx(0.25)
    labels = torch.tensor([0] * 4 + [1] * 4 + [2] * 4)
    m = class_metrics(
        one_hot_probs(labels.tolist()),
        torch.zeros(12, 2),
        labels,
        random_override,
        ids,
        ref_labels=ref_labels,
        ref_predictions=ref_pred,
    )
    assert m["forget_accuracy_floor"] == pytest.approx(0.375) and "fid_remaining" not in m


def test_fid_is_zero_for_identical_statistics_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(2000, 4))
    mu, sig = feature_statistics(f)
    assert frechet_distance(mu, sig, mu, sig) == pytest.approx(0.0, abs=1e-6)
    # same covariance, mean shifted by 1 in each of 4 dims: FID = ‖Δμ‖² = 4
    assert frechet_distance(mu + 1, sig, mu, sig) == pytest.approx(4.0, abs=1e-6)


def test_precision_and_recall_separate_fidelity_from_coverage():
    from sfd.core.metrics import precision_recall

    rng = np.random.default_rng(0)
    real = rng.normal(size=(600, 2))
    collapsed = rng.normal(size=(600, 2)) * 0.1  # all inside the real support, covering little of it
    p, r = precision_recall(real, collapsed)
    assert p > 0.95 and r < 0.5
    p2, r2 = precision_recall(real, real + 0.0)
    assert p2 == 1.0 and r2 == 1.0
    far = rng.normal(size=(600, 2)) + 20
    assert precision_recall(real, far) == (0.0, 0.0)


def test_bootstrap_interval_contains_the_mean():
    v = np.array([0, 1] * 50, dtype=float)
    lo, hi = bootstrap_ci(v)
    assert lo < 0.5 < hi and hi - lo < 0.3


def test_entropy_of_uniform():
    assert float(entropy(torch.full((1, 4), 0.25))) == pytest.approx(np.log(4))


def test_classifier_labels_are_matched_by_name(tiny_classifier):
    judge = ImageClassifierJudge.from_pretrained(tiny_classifier)
    assert judge.match_labels({0: "Dog", 1: "cat"}) == {0: 1, 1: 0}
    with pytest.raises(ValueError, match="no label for generator class.*horse"):
        judge.match_labels({0: "horse"})
    logits, feats = judge.logits_and_features(torch.rand(2, 1, 8, 8))
    assert logits.shape == (2, 3) and feats.shape == (2, 16)
    with pytest.raises(FileNotFoundError, match="classifier folder not found"):
        ImageClassifierJudge.from_pretrained("./no/such/classifier")


def test_report_files(tmp_path):
    m = {
        "forget": ["dog"],
        "num_samples_per_class": 4,
        "seed": 0,
        "forget_accuracy": 0.25,
        "forget_accuracy_ci": (0.0, 0.75),
        "remaining_accuracy": 0.9,
    }
    write_report(m, tmp_path)
    assert json.loads((tmp_path / "metrics.json").read_text())["forget_accuracy"] == 0.25
    assert "0.25 [0, 0.75]" in (tmp_path / "report.md").read_text()


def test_sfd_eval_command_writes_metrics_report_and_pictures(tiny_teacher, tiny_classifier, tmp_path):
    from sfd.cli.eval import main

    report = tmp_path / "report"
    main(
        [
            "--model",
            tiny_teacher,
            "--reference",
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
            "3",
            "--num_forget_samples",
            "5",
            "--batch_size",
            "4",
            "--report",
            str(report),
        ]
    )
    data = json.loads((report / "metrics.json").read_text())
    assert data["forget_samples"] == 5 and data["remaining_samples"] == 6 and data["seed"] == 0
    # the same model with the same seeds is its own reference: identical figures
    assert data["forget_accuracy"] == data["reference_forget_accuracy"]
    for name in ("report.md", "per_class_accuracy.png", "before_after.png"):
        assert (report / name).exists(), name


class IntensityClassifier(torch.nn.Module):
    """A stand-in classifier with a known rule: class k ⇔ mean pixel value (k + 0.5) / 3 (after [-1, 1] normalising)."""

    def __init__(self):
        super().__init__()
        self.config = type("Cfg", (), {"num_channels": 1, "id2label": dict(NAMES)})()
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, pixel_values, output_hidden_states=False):
        level = (pixel_values.mean((1, 2, 3)) + 1) / 2 * 3  # back to [0, 1], times 3 classes
        logits = -((level[:, None] - (torch.arange(3) + 0.5)) ** 2) * 100
        feats = pixel_values.mean((2, 3), keepdim=True).expand(-1, 2, 1, 1)
        return type("Out", (), {"logits": logits, "hidden_states": (feats,)})()


class FabricatedGenerator:
    """A 'pipeline' whose outputs are known: class k draws the intensity of `draws[k]` (a list per sample)."""

    def __init__(self, draws):
        self.draws = draws
        self.config = type("Cfg", (), {"id2label": {str(k): v for k, v in NAMES.items()}})()
        self.counter = {k: 0 for k in NAMES}

    @property
    def id2label(self):
        return dict(NAMES)

    def set_progress_bar_config(self, **kw):
        pass

    def __call__(self, class_labels, generator=None, output_type="pt"):
        out = []
        for c in class_labels:
            drawn = self.draws[c][self.counter[c] % len(self.draws[c])]
            self.counter[c] += 1
            out.append(torch.full((1, 4, 4), (drawn + 0.5) / 3))
        return type("Out", (), {"images": torch.stack(out)})()


def test_every_metric_of_a_fabricated_generator_matches_hand_computation():
    from sfd.evaluation.evaluate_classes import evaluate_model

    judge = ImageClassifierJudge(IntensityClassifier())
    # cat: always cat; dog (forgotten): 1 dog in 4, otherwise bird; bird: 3 birds in 4, 1 cat
    gen = FabricatedGenerator({0: [0], 1: [1, 2, 2, 2], 2: [2, 2, 2, 0]})
    m = evaluate_model(
        gen,
        forget="class=dog",
        classifier=judge,
        reference_stats=None,
        num_samples_per_class=8,
        num_forget_samples=12,
        batch_size=5,
        progress=False,
    )
    assert m["forget_samples"] == 12 and m["remaining_samples"] == 16
    assert m["forget_accuracy"] == pytest.approx(3 / 12) and m["unlearning_accuracy"] == pytest.approx(9 / 12)
    assert m["remaining_accuracy"] == pytest.approx((8 + 6) / 16)
    assert m["per_class_accuracy"] == pytest.approx({"cat": 1.0, "dog": 0.25, "bird": 0.75})
    assert m["forget_prob_mean"] == pytest.approx(0.25, abs=1e-3)  # logits are so sharp that p ∈ {0, 1}
    assert m["forget_entropy_mean"] == pytest.approx(0.0, abs=1e-3)
    lo, hi = m["forget_accuracy_ci"]
    assert lo <= 0.25 <= hi


def test_make_reference_from_an_image_folder(tiny_classifier, tmp_path):
    from PIL import Image
    from safetensors.torch import load_file

    from sfd.cli.eval import main

    for name, value in (("cat", 10), ("bird", 200)):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8), value + i, dtype=np.uint8)).save(tmp_path / "imgs" / name / f"{i}.png")
    out = tmp_path / "ref.safetensors"
    main(["--make-reference", str(tmp_path / "imgs"), "--classifier", tiny_classifier, "--reference_stats", str(out)])
    data = load_file(str(out))
    assert data["labels"].tolist() == [2, 2, 2, 0, 0, 0] and data["features"].shape == (6, 16)
    assert data["predictions"].shape == (6,)  # the classifier's labels of the same images (forget-accuracy floor)
    (tmp_path / "imgs" / "horse").mkdir()
    with pytest.raises(ValueError, match="'horse' is not a class"):
        main(
            [
                "--make-reference",
                str(tmp_path / "imgs"),
                "--classifier",
                tiny_classifier,
                "--reference_stats",
                str(out),
            ]
        )


def test_esd_baseline_moves_the_forgotten_prediction_toward_the_override(tiny_teacher, tmp_path):
    from sfd.baselines.esd import esd_finetune
    from sfd.pipelines import ClassConditionalDiffusionPipeline

    before = ClassConditionalDiffusionPipeline.from_pretrained(tiny_teacher).unet
    pipe = esd_finetune(
        tiny_teacher,
        forget="class=dog",
        override="class=cat",
        steps=30,
        learning_rate=1e-3,
        batch_size=8,
        pool_size=8,
        output_dir=tmp_path / "esd",
        progress=False,
    )
    x, t = torch.randn(16, 1, 8, 8), torch.full((16,), 50)
    dog, cat = torch.full((16,), 1), torch.full((16,), 0)
    with torch.no_grad():
        gap_before = (before(x, t, class_labels=dog).sample - before(x, t, class_labels=cat).sample).pow(2).mean()
        gap_after = (pipe.unet(x, t, class_labels=dog).sample - before(x, t, class_labels=cat).sample).pow(2).mean()
    assert gap_after < 0.5 * gap_before
    reloaded = ClassConditionalDiffusionPipeline.from_pretrained(tmp_path / "esd")
    assert (tmp_path / "esd" / "training.json").exists() and reloaded.id2label[1] == "dog"


def test_a_random_override_above_the_floor_target_warns_and_names_the_best_fixed_override(monkeypatch):
    import sfd.training.conditioning as conditioning

    said = []
    monkeypatch.setattr(conditioning.logger, "warning", said.append)
    task = conditioning.ClassConditioning(ForgetSpec.parse("class=dog", None, NAMES), 1.0)
    task.label_map = {0: 0, 1: 1, 2: 2}
    # real cats are called dog 2 times in 4, real birds never: floor (2/4 + 0) / 2 = 25%
    task.reference = (torch.tensor([0] * 4 + [1] * 4 + [2] * 4), torch.tensor([1, 1, 0, 0] + [1] * 4 + [2] * 4))
    task.warn_about_the_floor()
    assert len(said) == 1 and "25.00%" in said[0] and '--override "class=bird" (floor 0.00%)' in said[0]
    said.clear()
    task.spec = ForgetSpec.parse("class=dog", "class=bird", NAMES)  # a fixed override: the user chose
    task.warn_about_the_floor()
    task.spec, task.reference = ForgetSpec.parse("class=dog", None, NAMES), None  # no reference for this judge
    task.warn_about_the_floor()
    assert said == []
    task.warn_if_not_forgotten({"forget_accuracy": 0.15})  # after training: still found, so advise a fixed override
    assert len(said) == 1 and "15.0%" in said[0] and "--override class=NAME" in said[0]
    task.warn_if_not_forgotten({"forget_accuracy": 0.004})
    assert len(said) == 1


def test_the_floor_uses_the_override_the_run_recorded(tmp_path):
    from sfd.evaluation.evaluate_classes import recorded_override

    (tmp_path / "training.json").write_text(
        json.dumps({"forget": ["dog"], "override": "bird", "override_chosen_by": "auto"})
    )
    assert recorded_override(tmp_path, ["dog"]) == "class=bird"
    assert recorded_override(tmp_path, ["cat"]) is None  # asked about another forget set: no claim
    assert recorded_override(tmp_path, []) is None and recorded_override(tmp_path / "none", ["dog"]) is None
    (tmp_path / "training.json").write_text(json.dumps({"forget": ["dog"], "override": "random"}))
    assert recorded_override(tmp_path, ["dog"]) is None
    (tmp_path / "training.json").write_text(
        json.dumps(
            {"forget": ["dog"], "override": "random", "override_pool": ["bird", "cat"], "override_chosen_by": "far"}
        )
    )
    assert recorded_override(tmp_path, ["dog"]) == "class=bird,cat"  # far's pool


def test_density_and_coverage_match_their_definitions():
    from sfd.core.metrics import density_coverage

    real = np.array([[0.0], [1.0], [2.0], [10.0]])  # k = 1 balls: radii 1, 1, 1, 8
    fake = np.array([[0.5], [9.0], [20.0]])
    density, coverage = density_coverage(real, fake, k=1)
    # 0.5 lies in the balls of 0 and 1; 9 in the ball of 10; 20 in none: density 3 / (1·3), coverage 3 of 4 reals
    assert density == pytest.approx(1.0) and coverage == pytest.approx(0.75)
    assert density_coverage(real, real + 100, k=1) == (0.0, 0.0)


def test_diversity_is_the_mean_pairwise_distance_and_its_ratio_names_the_worst_condition(tmp_path):
    from sfd.core.metrics import diversity_ratios, mean_pairwise_distance

    assert mean_pairwise_distance(np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]])) == pytest.approx(10 / 3)
    assert np.isnan(mean_pairwise_distance(np.zeros((1, 2))))
    d = diversity_ratios({"cat": 1.0, "dog": 0.2, "bird": 3.0}, {"cat": 2.0, "dog": 1.0})
    assert d["diversity_ratio"] == {"cat": 0.5, "dog": 0.2} and d["diversity_ratio_mean"] == pytest.approx(0.35)
    assert d["diversity_ratio_worst_condition"] == "dog" and d["diversity_ratio_worst"] == pytest.approx(0.2)
    base = {"forget": ["dog"], "num_samples_per_class": 4, "seed": 0, "remaining_accuracy": 0.9}
    write_report(
        {**base, "per_class_diversity": {"cat": 1.0}}, tmp_path, {**base, "per_class_diversity": {"cat": 4.0}}
    )
    assert json.loads((tmp_path / "metrics.json").read_text())["diversity_ratio_mean"] == pytest.approx(0.25)
    assert "mean **0.250**, worst 0.250 (cat)" in (tmp_path / "report.md").read_text()


def test_text_models_report_each_remaining_prompts_diversity_and_its_ratio(tmp_path):
    from sfd.evaluation.evaluate_text import classifier_text_metrics
    from tests.helpers import make_classifier

    judge = make_classifier(tmp_path / "classifier")
    torch.manual_seed(0)
    same = torch.rand(1, 1, 8, 8).expand(4, -1, -1, -1)  # one image four times: no diversity
    varied = torch.rand(4, 1, 8, 8)
    prompts = ["a photo of a dog"] * 2 + ["a photo of a cat"] * 4 + ["a photo of a bird"] * 4
    images = torch.cat([torch.rand(2, 1, 8, 8), same, varied])
    forgotten = torch.tensor([True] * 2 + [False] * 8)
    m = classifier_text_metrics(judge, images, prompts, forgotten, ["cat", "dog", "bird"], ["dog"], None)
    assert set(m["per_prompt_diversity"]) == {"a photo of a cat", "a photo of a bird"}  # remaining prompts only
    assert m["per_prompt_diversity"]["a photo of a cat"] == pytest.approx(0.0, abs=1e-5)
    assert m["per_prompt_diversity"]["a photo of a bird"] > 0
    base = {"kind": "text", "forget": ["dog"], "samples_per_prompt": 4, "seed": 0}
    write_report({**base, "per_prompt_diversity": {"p": 1.0}}, tmp_path, {**base, "per_prompt_diversity": {"p": 2.0}})
    assert json.loads((tmp_path / "metrics.json").read_text())["diversity_ratio_mean"] == pytest.approx(0.5)
    assert "within a prompt) model / reference: mean **0.500**" in (tmp_path / "report.md").read_text()


class SwappedIntensityClassifier(IntensityClassifier):
    """The intensity rule with cat and bird swapped: a second judge that sees those two classes differently."""

    def forward(self, pixel_values, output_hidden_states=False):
        out = super().forward(pixel_values, output_hidden_states)
        out.logits = out.logits[:, [2, 1, 0]]
        return out


def test_a_second_judge_reports_its_per_class_accuracy_and_flags_disagreement(tmp_path):
    from sfd.evaluation.evaluate_classes import evaluate_model

    gen = FabricatedGenerator({0: [0], 1: [1, 2, 2, 2], 2: [2, 2, 2, 0]})
    kw = dict(forget="class=dog", reference_stats=None, num_samples_per_class=8, batch_size=8, progress=False)
    m = evaluate_model(
        gen,
        classifier=ImageClassifierJudge(IntensityClassifier()),
        second_classifier=ImageClassifierJudge(SwappedIntensityClassifier()),
        **kw,
    )
    assert m["per_class_accuracy"] == {"cat": 1.0, "dog": 0.25, "bird": 0.75}
    assert m["per_class_accuracy_second"] == {"cat": 0.0, "dog": 0.25, "bird": 0.25}
    assert m["remaining_accuracy_second"] == pytest.approx(2 / 16)
    assert m["judges_disagree"] == {"cat": [1.0, 0.0], "bird": [0.75, 0.25]}  # dog: the same by both
    reference = {**m, "per_class_accuracy": {"cat": 1.0, "bird": 0.95}, "per_class_accuracy_second": {"bird": 0.5}}
    write_report(m, tmp_path, reference)
    data = json.loads((tmp_path / "metrics.json").read_text())
    assert data["worst_class"] == "bird" and data["largest_drop_pts"] == pytest.approx(20.0)
    assert data["worst_class_second"] == "cat" and data["largest_drop_class_second"] == "bird"
    assert data["largest_drop_pts_second"] == pytest.approx(25.0)
    text = (tmp_path / "report.md").read_text()
    assert "disagree by more than 10 points on**: cat (100% vs 0%), bird (75% vs 25%)" in text


def test_psi_tracking_curve_is_drawn_from_the_logged_errors_only_when_they_were_logged(tmp_path):
    from sfd.evaluation.plots import psi_tracking_curve

    log = tmp_path / "metrics.jsonl"
    log.write_text(json.dumps({"step": 100, "forget_accuracy": 0.1}) + "\n")
    assert psi_tracking_curve(log, tmp_path / "a.png") is None and not (tmp_path / "a.png").exists()
    rows = [{"step": s, "psi_error_sigma_0.5": 0.1 * s, "teacher_error_sigma_0.5": 20.0} for s in (100, 200)]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert psi_tracking_curve(log, tmp_path / "b.png") == tmp_path / "b.png" and (tmp_path / "b.png").stat().st_size
