import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

NAMES = {0: "cat", 1: "dog", 2: "bird"}


def tiny_unet(num_class_embeds=4):
    from diffusers import UNet2DModel

    return UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16), layers_per_block=1,
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                       num_class_embeds=num_class_embeds, norm_num_groups=4)


def make_teacher(path, num_class_embeds=4, prediction_type="epsilon", guidance=1.0, seed=0):
    from diffusers import DDPMScheduler

    from pipelines import ClassConditionalDiffusionPipeline

    torch.manual_seed(seed)
    pipe = ClassConditionalDiffusionPipeline(
        unet=tiny_unet(num_class_embeds), scheduler=DDPMScheduler(num_train_timesteps=100, prediction_type=prediction_type),
        id2label=NAMES, default_guidance_scale=guidance, default_num_inference_steps=3)
    pipe.save_pretrained(path)
    return path


def make_classifier(path, names=NAMES):
    from transformers import ResNetConfig, ResNetForImageClassification

    torch.manual_seed(0)
    cfg = ResNetConfig(num_channels=1, embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic",
                       num_labels=len(names), id2label=dict(names), label2id={v: k for k, v in names.items()})
    ResNetForImageClassification(cfg).save_pretrained(path)
    return path


@pytest.fixture
def tiny_teacher(tmp_path):
    return str(make_teacher(tmp_path / "teacher"))


@pytest.fixture
def tiny_classifier(tmp_path):
    return str(make_classifier(tmp_path / "classifier"))


@pytest.fixture
def tiny_options(tiny_classifier):
    """Training options small enough for a CPU test (seconds)."""
    return dict(train_batch_size=4, max_train_steps=2, validation_steps=2, validation_samples_per_class=2,
                final_eval_samples_per_class=2, checkpointing_steps=1, classifier=tiny_classifier, seed=0)
