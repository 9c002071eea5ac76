import pytest
import torch
from diffusers import DPMSolverMultistepScheduler

from sfd.core.losses import regression_loss
from sfd.pipelines import ClassConditionalDiffusionPipeline, Denoiser
from sfd.training.regression import teacher_ode_samples
from tests.helpers import make_teacher


@pytest.mark.parametrize("prediction_type,guidance", [("epsilon", 1.0), ("v_prediction", 2.0), ("sample", 1.5)])
def test_ode_samples_are_the_teacher_pipelines_dpm_solver_samples(prediction_type, guidance, tmp_path):
    pipe = ClassConditionalDiffusionPipeline.from_pretrained(
        make_teacher(tmp_path / "t", prediction_type=prediction_type, guidance=guidance)
    )
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    labels = torch.tensor([0, 1, 2, 1])
    expected = pipe(
        class_labels=labels.tolist(),
        num_inference_steps=6,
        generator=torch.Generator().manual_seed(3),
        output_type="pt",
    ).images
    z = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    teacher = Denoiser(pipe.unet, pipe.scheduler.config, null_class_id=pipe.null_class_id, guidance_scale=guidance)
    x0 = teacher_ode_samples(teacher, pipe.scheduler.config, z, labels, None, num_steps=6)
    torch.testing.assert_close((x0 / 2 + 0.5).clamp(0, 1), expected, rtol=0, atol=1e-5)


def test_regression_loss_matches_a_hand_computed_value():
    x_g = torch.tensor([[[[1.0, 2.0]]], [[[0.0, 0.0]]]])
    x_ref = torch.tensor([[[[0.0, 0.0]]], [[[3.0, 0.0]]]])
    assert regression_loss(x_g, x_ref).item() == pytest.approx((5 + 9) / 2)  # Σ pixels, mean over the batch
    w = torch.tensor([2.0, 0.5])
    assert regression_loss(x_g, x_ref, w).item() == pytest.approx((2 * 5 + 0.5 * 9) / 2)


def test_the_pair_bank_holds_the_teachers_answers_under_the_override(tiny_teacher, tiny_options, tmp_path):
    import sfd
    from sfd.training.config import load_config
    from sfd.training.setup import validate
    from sfd.training.trainer import SFDTrainer

    cfg = load_config(
        overrides=dict(
            tiny_options,
            teacher=tiny_teacher,
            forget="class=dog",
            override="class=bird",
            regression_weight=1.0,
            regression_pairs=10,
            regression_steps=4,
            output_dir=str(tmp_path / "out"),
            forget_fraction=0.5,
            mixed_precision="no",
        )
    )
    trainer = SFDTrainer(cfg, validate(cfg))
    bank = trainer.pairs
    assert len(bank.z) == 10 and bank.target.shape == (10, 1, 8, 8)
    forgotten = bank.student == 1
    assert forgotten.any() and (~forgotten).any()
    asked = torch.where(forgotten, 2, bank.student)  # the teacher was asked for bird where the student sees dog
    with torch.no_grad():
        expected = teacher_ode_samples(trainer.teacher, trainer.task.pipe.scheduler.config, bank.z, asked, None, 4)
        unchanged = teacher_ode_samples(
            trainer.teacher, trainer.task.pipe.scheduler.config, bank.z, bank.student, None, 4
        )
    torch.testing.assert_close(bank.target, expected, rtol=0, atol=1e-5)
    assert (bank.target - unchanged)[forgotten].abs().max() > 1e-2  # (the override made a difference)
    # the term moves the generator towards the pairs: after a few steps with only L_reg, G is closer to them
    before = regression_loss(trainer.generate(trainer.gen_local, bank.z, bank.student).detach(), bank.target)
    pipe = sfd.forget(
        tiny_teacher,
        forget="class=dog",
        override="class=bird",
        output_dir=str(tmp_path / "reg"),
        **dict(
            tiny_options,
            regression_weight=1e3,
            regression_pairs=10,
            regression_steps=4,
            regression_batch_size=10,
            max_train_steps=5,
            learning_rate_generator=1e-3,
            use_ema=False,
            forget_fraction=0.5,
            validation_steps=0,
            final_eval_samples_per_class=0,
            mixed_precision="no",
        ),
    )
    s = cfg.sigma_init
    with torch.no_grad():
        student = Denoiser(pipe.unet, pipe.scheduler.config)
        after = regression_loss(student(s * bank.z, s, bank.student), bank.target)
    assert after < 0.5 * before


@pytest.mark.parametrize(
    "options,match",
    [
        (dict(regression_weight=-1.0), "regression_weight must be >= 0"),
        (dict(regression_steps=0), "regression_steps must be a positive integer"),
        (dict(regression_pairs=0), "regression_pairs must be a positive integer"),
    ],
)
def test_bad_regression_options_are_refused_before_loading(options, match, tiny_teacher, tmp_path):
    from sfd.training.config import TrainingSetupError, load_config
    from sfd.training.setup import validate

    with pytest.raises(TrainingSetupError, match=match):
        validate(
            load_config(
                overrides=dict(options, teacher=tiny_teacher, forget="class=dog", output_dir=str(tmp_path / "o"))
            )
        )
