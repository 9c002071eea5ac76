"""The optional contrastive term on the generator's middle-block features of forgotten rows."""

import pytest
import torch

from sfd.core.features import middle_features
from sfd.training.config import TrainingConfig
from sfd.training.contrastive import contrastive_loss
from sfd.training.setup import validate
from sfd.training.trainer import SFDTrainer
from tests.helpers import tiny_unet


def test_the_loss_is_small_near_the_positive_and_large_near_the_negative():
    a, other = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    near_positive = contrastive_loss(a, a, other, temperature=0.1)
    near_negative = contrastive_loss(a, other, a, temperature=0.1)
    assert near_positive.item() == pytest.approx(torch.nn.functional.softplus(torch.tensor(-10.0)).item())
    assert near_negative.item() == pytest.approx(10.0, abs=1e-3)  # softplus(10) ≈ 10


def test_middle_features_are_pooled_per_row_and_carry_gradients():
    torch.manual_seed(0)
    unet = tiny_unet()
    x = torch.randn(3, 1, 8, 8)
    with middle_features(unet) as captured:
        unet(x, torch.tensor([5, 5, 5]), class_labels=torch.tensor([0, 1, 2]))
    (feats,) = captured
    assert feats.shape == (3, unet.config.block_out_channels[-1]) and feats.requires_grad
    with middle_features(unet) as again:
        pass
    assert again == []  # the hook is gone after its block


def test_the_term_reaches_the_generator_and_changes_its_update(tiny_teacher, tiny_options, tmp_path):
    def one_step(weight: float):
        cfg = TrainingConfig(
            teacher=tiny_teacher,
            forget="class=dog",
            override="class=cat",
            output_dir=str(tmp_path / f"w{weight}"),
            contrastive_weight=weight,
            forget_fraction=0.5,
            **dict(tiny_options, max_train_steps=1),
        )
        trainer = SFDTrainer(cfg, validate(cfg))
        torch.manual_seed(0)
        trainer.generator_step()
        return [p.detach().clone() for p in trainer.accelerator.unwrap_model(trainer.gen_unet).parameters()]

    off, on = one_step(0.0), one_step(10.0)
    assert any(not torch.equal(a, b) for a, b in zip(off, on))  # the same draw, another update

    cfg = TrainingConfig(
        teacher=tiny_teacher, forget="class=dog", override="class=cat", output_dir=str(tmp_path / "t")
    )
    trainer = SFDTrainer(cfg, validate(cfg))
    conds = trainer.task.draw(8, 0.5, device="cpu")
    z = torch.randn(8, 1, 8, 8)
    net = trainer.accelerator.unwrap_model(trainer.gen_unet)
    with middle_features(net) as captured:
        trainer.generate(trainer.gen_local, z, conds.student)
    loss = trainer.contrastive_term(captured[0], z, conds)
    loss.backward()
    assert loss.item() > 0 and net.mid_block.resnets[0].conv1.weight.grad.abs().sum() > 0
