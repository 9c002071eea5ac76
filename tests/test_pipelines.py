import numpy as np
import pytest
import torch

from sfd.pipelines import ClassConditionalDiffusionPipeline, OneStepClassConditionalPipeline
from tests.helpers import NAMES, make_teacher, tiny_unet


def test_teacher_round_trip_keeps_class_names_and_weights(tiny_teacher):
    pipe = ClassConditionalDiffusionPipeline.from_pretrained(tiny_teacher)
    assert pipe.id2label == NAMES
    assert pipe.get_label_ids(["dog", "cat"]) == [1, 0]
    assert pipe.null_class_id == 3
    again = ClassConditionalDiffusionPipeline.from_pretrained(tiny_teacher)
    for a, b in zip(pipe.unet.parameters(), again.unet.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("output_type", ["pt", "np", "pil"])
def test_teacher_output_types(tiny_teacher, output_type):
    pipe = ClassConditionalDiffusionPipeline.from_pretrained(tiny_teacher)
    pipe.set_progress_bar_config(disable=True)
    images = pipe(
        class_labels=["bird", 0],
        num_inference_steps=2,
        output_type=output_type,
        generator=torch.Generator().manual_seed(0),
    ).images
    if output_type == "pt":
        assert images.shape == (2, 1, 8, 8) and images.dtype == torch.float32
        assert 0 <= images.min() and images.max() <= 1
    elif output_type == "np":
        assert images.shape == (2, 8, 8, 1) and images.dtype == np.float32
    else:
        assert len(images) == 2 and images[0].size == (8, 8)


def test_teacher_sampling_is_reproducible_and_guidance_changes_it(tiny_teacher):
    pipe = ClassConditionalDiffusionPipeline.from_pretrained(tiny_teacher)
    pipe.set_progress_bar_config(disable=True)

    def run(g):
        return pipe(
            class_labels=[1, 2],
            guidance_scale=g,
            num_inference_steps=2,
            output_type="pt",
            generator=torch.Generator().manual_seed(3),
        ).images

    assert torch.equal(run(1.0), run(1.0))
    assert not torch.allclose(run(1.0), run(3.0))


def test_unknown_label_and_guidance_without_null_class_are_errors(tmp_path):
    pipe = ClassConditionalDiffusionPipeline.from_pretrained(make_teacher(tmp_path / "t", num_class_embeds=3))
    with pytest.raises(ValueError, match="valid names"):
        pipe.get_label_ids("horse")
    with pytest.raises(ValueError, match="null class"):
        pipe(class_labels=[0], guidance_scale=2.0)
    with pytest.raises(ValueError, match="out of range"):
        pipe(class_labels=[7])


def test_one_step_pipeline_round_trip(tmp_path):
    from diffusers import DDPMScheduler

    pipe = OneStepClassConditionalPipeline(
        unet=tiny_unet(),
        scheduler=DDPMScheduler(num_train_timesteps=100),
        id2label=NAMES,
        sigma_init=2.5,
        forgotten=[1],
    )
    pipe.save_pretrained(tmp_path / "g")
    loaded = OneStepClassConditionalPipeline.from_pretrained(tmp_path / "g")
    assert loaded.id2label == NAMES and loaded.config.forgotten == [1] and loaded.config.sigma_init == 2.5
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    a = pipe(class_labels=["dog", "cat"], generator=gen(), output_type="pt").images
    b = loaded(class_labels=["dog", "cat"], generator=gen(), output_type="pt").images
    assert a.shape == (2, 1, 8, 8) and torch.allclose(a, b)
    with pytest.raises(ValueError, match="one-step"):
        loaded(class_labels=[0], num_inference_steps=4)
