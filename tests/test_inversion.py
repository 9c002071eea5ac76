"""Concept inversion (`sfd-attack invert`): a new class embedding is learned while every weight stays frozen."""

import json

import pytest
import torch
from diffusers import DDPMScheduler

from sfd.cli.attack import main as attack_main
from sfd.evaluation.inversion import class_embedding_tables, inversion_curve, inverted_class
from sfd.pipelines import ClassConditionalDiffusionPipeline, OneStepClassConditionalPipeline
from tests.helpers import NAMES, make_dit_teacher, tiny_dit, tiny_unet
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


def test_sfd_attack_invert_writes_a_report_for_a_dit(tmp_path):
    import numpy as np
    from datasets import ClassLabel, Dataset, Image

    from tests.helpers import DIT_NAMES, make_classifier

    teacher = make_dit_teacher(tmp_path / "dit")
    rows = {"image": [np.zeros((8, 8, 3), dtype=np.uint8)] * 6, "label": [0, 1, 2] * 2}
    data = Dataset.from_dict(rows).cast_column("image", Image()).cast_column("label", ClassLabel(names=["cat", "dog, puppy", "bird"]))  # fmt: skip
    data.save_to_disk(str(tmp_path / "data"))
    classifier = str(make_classifier(tmp_path / "classifier", DIT_NAMES))
    report = tmp_path / "report"
    attack_main(
        ["invert", "--model", teacher, "--forget", "class=puppy", "--images", "2", "--steps", "0,2"]
        + ["--eval_samples", "2", "--num_inference_steps", "2", "--classifier", classifier]
        + ["--dataset", str(tmp_path / "data"), "--init", "mean", "--report", str(report)]
    )
    (curve,) = json.loads((report / "invert.json").read_text())
    assert curve["init"] == "mean" and curve["steps"] == [0, 2] and curve["embedding_tables"] == 1
    assert (report / "invert.png").exists() and "sfd-attack invert" in (report / "invert.md").read_text()
