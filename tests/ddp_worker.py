"""Run by test_train.py under `torchrun --nproc_per_node 2`: a few SFD steps, then each rank saves its weights."""

import sys
from pathlib import Path

from safetensors.torch import save_file

from sfd.training.config import load_config
from sfd.training.setup import validate
from sfd.training.trainer import SFDTrainer

teacher, out = sys.argv[1], sys.argv[2]
cfg = load_config(
    overrides=dict(
        teacher=teacher,
        forget="class=dog",
        output_dir=out,
        train_batch_size=4,
        max_train_steps=3,
        validation_steps=0,
        checkpointing_steps=2,
        classifier=None,
        final_eval_samples_per_class=0,
    )
)
trainer = SFDTrainer(cfg, validate(cfg))
trainer.train()
rank = trainer.accelerator.process_index
weights = trainer.accelerator.unwrap_model(trainer.gen_unet).state_dict()
save_file({k: v.contiguous() for k, v in weights.items()}, str(Path(out) / f"rank{rank}.safetensors"))
