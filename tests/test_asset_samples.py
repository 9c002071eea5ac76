"""The shipped pipelines load through `sfd.core.loading` and draw the recorded samples for a fixed seed."""

import json
from pathlib import Path

import pytest
import torch

from sfd.core.loading import load_pipeline

ROOT = Path(__file__).resolve().parent.parent
RECORD = json.loads((Path(__file__).parent / "data" / "asset_samples.json").read_text())


@pytest.mark.parametrize("name", sorted(RECORD["pixels"]))
def test_shipped_pipeline_draws_the_recorded_samples(name):
    pipe = load_pipeline(str(ROOT / "assets" / name))
    pipe.set_progress_bar_config(disable=True)
    generator = torch.Generator().manual_seed(0)
    if getattr(pipe, "id2label", None):
        images = pipe(class_labels=[1, 7], generator=generator, output_type="pt").images
    else:
        images = pipe(
            prompt=["a photo of a trouser", "a photo of a sneaker"], generator=generator, output_type="pt"
        ).images
    pixels = images.flatten()[::97][:12]
    assert torch.allclose(pixels, torch.tensor(RECORD["pixels"][name]), atol=1e-5)
