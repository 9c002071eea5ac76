import pytest
import torch

from sfd.core.spec import ForgetSpec, SpecError

NAMES = {0: "t-shirt/top", 1: "trouser", 2: "pullover", 3: "sneaker"}


def test_names_ids_and_case_are_accepted():
    spec = ForgetSpec.parse("class=Trouser, 3", "class=pullover", NAMES)
    assert spec.forget == (1, 3) and spec.override == 2 and spec.remaining == (0, 2)
    assert ForgetSpec.parse("class=trouser", "pullover", NAMES).override == 2
    assert ForgetSpec.parse("class=trouser", "random", NAMES).override is None


def test_unknown_class_lists_the_valid_ones():
    with pytest.raises(SpecError, match=r"unknown class 'airplane'.*0='t-shirt/top'.*3='sneaker'"):
        ForgetSpec.parse("class=airplane", None, NAMES)
    with pytest.raises(SpecError, match="out of range"):
        ForgetSpec.parse("class=9", None, NAMES)


@pytest.mark.parametrize(
    "forget,override,match",
    [
        ("class=trouser", "class=trouser", "also being forgotten"),
        ("class=0,1,2,3", None, "every class"),
        ("trouser", None, r"class=NAME.*did you mean \"class=trouser\""),
        (" ", None, r"class=NAME\[,NAME…\]\", got ' '$"),
        ("class=", None, "names nothing"),
        ("concept=sneaker", None, "not supported"),
    ],
)
def test_bad_specs_are_refused(forget, override, match):
    with pytest.raises(SpecError, match=match):
        ForgetSpec.parse(forget, override, NAMES)


def test_teacher_labels_replace_only_forgotten_ones():
    fixed = ForgetSpec.parse("class=trouser", "class=sneaker", NAMES)
    labels = torch.tensor([0, 1, 2, 1])
    assert fixed.teacher_labels(labels).tolist() == [0, 3, 2, 3]
    rand = ForgetSpec.parse("class=trouser,sneaker", "random", NAMES)
    out = rand.teacher_labels(torch.tensor([1, 3] * 500), generator=torch.Generator().manual_seed(0))
    assert set(out.tolist()) == {0, 2}  # only remaining classes, both used


def test_sample_labels_respects_forget_fraction():
    spec = ForgetSpec.parse("class=trouser", None, NAMES)
    labels = spec.sample_labels(40, 0.25, torch.Generator().manual_seed(0))
    assert (labels == 1).sum() == 10 and len(labels) == 40


def test_no_forget_spec_counts_every_class_as_remaining():
    spec = ForgetSpec.parse(None, None, NAMES)
    assert spec.forget == () and spec.remaining == (0, 1, 2, 3)
    assert not spec.is_forgotten(torch.tensor([0, 1, 2, 3])).any()
