"""`--override auto` / `far`: the remaining class(es) the teacher finds least like the forgotten one, chosen data-free;
and a pool of override classes named by the user."""

import json
from types import SimpleNamespace

import pytest
import torch

import sfd
from sfd.core.losses import edm_weight
from sfd.core.spec import ForgetSpec, SpecError
from sfd.evaluation import evaluate_classes
from sfd.evaluation.reference import forget_accuracy_floor
from sfd.training.config import TrainingSetupError
from sfd.training.override_choice import choose_far_pool, choose_override, denoising_distances, rank_candidates

NAMES = {0: "cat", 1: "dog", 2: "bird", 3: "fish"}
# one fixed image per class: the stub teacher draws it and its class-c denoiser always answers it
TEMPLATES = torch.stack([torch.full((1, 4, 4), v) for v in (-0.5, -0.3, 0.9, 0.8)])


class TemplateTeacher(torch.nn.Module):
    """D(x, σ, c) = T_c, whatever x and σ; as a pipeline it draws T_c for class c (in [0, 1], like output_type="pt")."""

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x, sigma, labels):
        return TEMPLATES[labels]

    def __call__(self, *args, class_labels=None, generator=None, output_type=None, **kwargs):
        if class_labels is None:
            return super().__call__(*args, **kwargs)
        return SimpleNamespace(images=TEMPLATES[torch.tensor(class_labels)] / 2 + 0.5)


def test_auto_is_parsed_unresolved_and_then_resolved():
    spec = ForgetSpec.parse("class=cat", "auto", NAMES)
    assert spec.needs_resolving and spec.describe()["override"] == "auto"
    with pytest.raises(SpecError, match="not been resolved"):
        spec.teacher_labels(torch.tensor([0, 1]))
    chosen = spec.resolved(2)
    assert chosen.describe() == {"forget": ["cat"], "override": "bird", "override_chosen_by": "auto"}
    assert chosen.request() == spec.request() == {"forget": ["cat"], "override": "auto"}
    assert chosen.teacher_labels(torch.tensor([0, 1])).tolist() == [2, 1]
    with pytest.raises(SpecError, match="must be a remaining class"):
        spec.resolved(0)
    with pytest.raises(SpecError, match="name the class the run chose"):
        ForgetSpec.parse("class=cat", "auto", NAMES, allow_auto=False)


def test_far_is_resolved_to_a_pool_the_override_is_drawn_from():
    spec = ForgetSpec.parse("class=cat", "far", NAMES)
    assert spec.needs_resolving and spec.request() == {"forget": ["cat"], "override": "far"}
    with pytest.raises(SpecError, match="far has not been resolved"):
        spec.teacher_labels(torch.tensor([0, 1]))
    chosen = spec.resolved(pool=[2, 3])
    assert chosen.describe() == {
        "forget": ["cat"],
        "override": "random",
        "override_pool": ["bird", "fish"],
        "override_chosen_by": "far",
    }
    assert chosen.request() == spec.request() and chosen.override_classes == (2, 3)
    drawn = chosen.teacher_labels(torch.zeros(400, dtype=torch.long), torch.Generator().manual_seed(0))
    assert set(drawn.tolist()) == {2, 3} and 150 < int((drawn == 2).sum()) < 250  # uniform over the pool
    assert chosen.teacher_labels(torch.tensor([1, 2])).tolist() == [1, 2]  # remaining classes keep their label
    with pytest.raises(SpecError, match="must be a remaining class"):
        spec.resolved(pool=[2, 0])
    with pytest.raises(SpecError, match="or the pool far chose"):
        ForgetSpec.parse("class=cat", "far", NAMES, allow_auto=False)


def test_a_pool_can_be_named_and_its_floor_averages_over_it():
    spec = ForgetSpec.parse("class=cat", "class=bird,fish", NAMES)
    assert spec.override is None and spec.pool == (2, 3) and spec.chooser is None
    assert spec.describe() == {"forget": ["cat"], "override": "random", "override_pool": ["bird", "fish"]}
    with pytest.raises(SpecError, match="'cat' is also being forgotten"):
        ForgetSpec.parse("class=cat", "class=bird,cat", NAMES)
    # real images: dogs called cat 4 times in 4, birds 1 in 4, fish never
    ref_labels = torch.tensor([1] * 4 + [2] * 4 + [3] * 4)
    ref_pred = torch.tensor([0] * 4 + [0, 2, 2, 2] + [3] * 4)
    ids = {i: i for i in NAMES}
    assert forget_accuracy_floor(ref_labels, ref_pred, spec, ids) == pytest.approx((1 / 4 + 0) / 2)
    assert forget_accuracy_floor(
        ref_labels, ref_pred, ForgetSpec.parse("class=cat", "random", NAMES), ids
    ) == pytest.approx((1 + 1 / 4 + 0) / 3)


def test_denoising_distances_match_the_hand_computed_values():
    teacher = TemplateTeacher()
    d = denoising_distances(teacher, teacher, [0], [1, 2, 3], 0.5, 2.0, n=3, num_sigmas=2)
    # D ignores its input, so d(f, c) = mean over σ of λ(σ)·mean‖T_c − T_f‖²
    weight = (edm_weight(torch.tensor(0.5)) + edm_weight(torch.tensor(2.0))) / 2
    expected = torch.tensor([(TEMPLATES[c] - TEMPLATES[0]).pow(2).mean() for c in (1, 2, 3)]) * weight
    torch.testing.assert_close(d, expected.view(1, 3))


def test_the_choice_is_far_from_every_forgotten_class():
    teacher = TemplateTeacher()
    # alone, cat (-0.5) is farthest from bird (0.9); with fish (0.8) also forgotten, bird is near fish and dog wins
    assert choose_override(teacher, teacher, ForgetSpec.parse("class=cat", "auto", NAMES), 0.5, 2.0)[0] == 2
    best, distances = choose_override(teacher, teacher, ForgetSpec.parse("class=cat,fish", "auto", NAMES), 0.5, 2.0)
    assert best == 1 and set(distances) == {"dog", "bird"} and distances["dog"] > distances["bird"]
    # a layered erasure's later fold is not a candidate: without bird, fish (0.8) is the farthest from cat
    best, distances = choose_override(
        teacher, teacher, ForgetSpec.parse("class=cat", "auto", NAMES), 0.5, 2.0, exclude=[2]
    )
    assert best == 3 and set(distances) == {"dog", "fish"}
    with pytest.raises(ValueError, match="every remaining class"):
        choose_override(teacher, teacher, ForgetSpec.parse("class=cat", "auto", NAMES), 0.5, 2.0, exclude=[1, 2, 3])


def test_far_takes_the_farther_half_of_the_ranking():
    teacher = TemplateTeacher()
    spec = ForgetSpec.parse("class=cat", "far", NAMES)
    # cat is -0.5: bird (0.9) is farthest, then fish (0.8), then dog (-0.3)
    assert [c for c, _ in rank_candidates(teacher, teacher, spec, 0.5, 2.0)] == [2, 3, 1]
    pool, distances = choose_far_pool(teacher, teacher, spec, 0.5, 2.0)
    assert pool == [2] and list(distances) == ["bird", "fish", "dog"]  # ⌊3/2⌋ = 1 of 3
    assert choose_far_pool(teacher, teacher, spec, 0.5, 2.0, exclude=[2, 3])[0] == [1]  # at least one


@pytest.mark.parametrize("chooser", ["auto", "far"])
def test_a_run_with_a_chooser_records_the_choice_and_resumes(chooser, tiny_teacher, tiny_options, tmp_path):
    out = tmp_path / "o"
    sfd.forget(
        tiny_teacher,
        forget="class=dog",
        override=chooser,
        output_dir=str(out),
        **dict(tiny_options, validation_steps=0),
    )
    training = json.loads((out / "training.json").read_text())
    assert training["override_chosen_by"] == chooser
    if chooser == "auto":
        assert training["override"] in ("cat", "bird") and "override_pool" not in training
    else:  # ⌊2/2⌋ = 1 of the two remaining classes, drawn per sample
        assert training["override"] == "random" and len(training["override_pool"]) == 1
        assert training["override_pool"][0] in ("cat", "bird")
        assert evaluate_classes.recorded_override(out, ["dog"]) == f"class={training['override_pool'][0]}"
    assert f"(chosen by the teacher: --override {chooser})" in (out / "README.md").read_text()
    run = json.loads((out / "checkpoints" / "run.json").read_text())
    assert run["request"] == {"forget": ["dog"], "override": chooser}
    sfd.forget(
        tiny_teacher,
        forget="class=dog",
        override=chooser,
        output_dir=str(out),  # same request: resumes
        **dict(tiny_options, validation_steps=0, max_train_steps=3, resume_from_checkpoint="latest"),
    )
    with pytest.raises(TrainingSetupError, match="another forget/override spec"):
        sfd.forget(
            tiny_teacher,
            forget="class=dog",
            override="random",
            output_dir=str(out),
            **dict(tiny_options, resume_from_checkpoint="latest"),
        )
