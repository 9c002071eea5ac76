import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

from tests.helpers import NAMES, make_classifier, make_teacher  # noqa: E402


@pytest.fixture
def tiny_teacher(tmp_path):
    return str(make_teacher(tmp_path / "teacher"))


@pytest.fixture
def tiny_classifier(tmp_path):
    return str(make_classifier(tmp_path / "classifier"))


@pytest.fixture
def tiny_options(tiny_classifier):
    """Training options small enough for a CPU test (seconds)."""
    return dict(
        train_batch_size=4,
        max_train_steps=2,
        validation_steps=2,
        validation_samples_per_class=2,
        final_eval_samples_per_class=2,
        checkpointing_steps=1,
        classifier=tiny_classifier,
        seed=0,
    )


@pytest.fixture
def tiny_t2i_options(tmp_path):
    from sfd.pretrain.clip import build_clip, build_tokenizer

    torch.manual_seed(1)  # a random CLIP whose image-text cosines are mostly positive (CLIPScore clips at 0)
    tok = build_tokenizer(tmp_path / "_clip_bpe", class_names=list(NAMES.values()), max_length=8)
    clip = build_clip(tok, hidden=16, projection_dim=8)
    clip.save_pretrained(tmp_path / "clip")
    tok.save_pretrained(tmp_path / "clip")
    return dict(
        train_batch_size=4,
        max_train_steps=2,
        validation_steps=2,
        validation_samples_per_class=2,
        final_eval_samples_per_class=2,
        checkpointing_steps=1,
        clip=str(tmp_path / "clip"),
        seed=0,
        guidance_scale=2.0,
    )
