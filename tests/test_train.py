import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import sfd
from sfd.cli.train import main as train_main
from sfd.pipelines import OneStepClassConditionalPipeline
from sfd.training.config import TrainingSetupError
from tests.helpers import NAMES, make_teacher

ROOT = Path(__file__).resolve().parent.parent


def unet_weights(path):
    return OneStepClassConditionalPipeline.from_pretrained(path).unet.state_dict()


def test_tiny_run_exports_a_loadable_one_step_pipeline(tiny_teacher, tiny_options, tmp_path):
    out = tmp_path / "out"
    pipe = sfd.forget(tiny_teacher, forget="class=dog", output_dir=str(out), **tiny_options)
    assert isinstance(pipe, OneStepClassConditionalPipeline)
    for name in (
        "model_index.json",
        "unet/diffusion_pytorch_model.safetensors",
        "scheduler/scheduler_config.json",
        "README.md",
        "logs/metrics.jsonl",
        "logs/samples-000002.png",
    ):
        assert (out / name).exists(), name
    loaded = OneStepClassConditionalPipeline.from_pretrained(out)
    assert loaded.id2label == NAMES and loaded.config.forgotten == [1]
    images = loaded(
        class_labels=loaded.get_label_ids(["dog", "bird"]),
        generator=torch.Generator().manual_seed(0),
        output_type="np",
    ).images
    assert images.shape == (2, 8, 8, 1)
    # the generator moved away from the teacher's one-shot denoiser
    from sfd.pipelines import ClassConditionalDiffusionPipeline

    t = ClassConditionalDiffusionPipeline.from_pretrained(tiny_teacher).unet.state_dict()
    g = loaded.unet.state_dict()
    assert any(not torch.equal(t[k], g[k]) for k in t)
    card = (out / "README.md").read_text()
    assert "dog" in card and "forget_accuracy" in card
    log = [json.loads(line) for line in (out / "logs" / "metrics.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 2 and 0 <= log[-1]["forget_accuracy"] <= 1
    run = json.loads((out / "checkpoints" / "run.json").read_text())  # what tools need to rebuild a checkpoint
    assert run["spec"]["forget"] == ["dog"] and run["config"]["sigma_init"] == 2.5
    assert run["request"]["override"] == "auto" and run["spec"]["override"] in (
        "cat",
        "bird",
    )  # the default: the teacher's pick


@pytest.mark.parametrize("extra", [{}, dict(regression_weight=1.0, regression_pairs=8, regression_steps=3)])
def test_resume_reaches_the_same_weights_as_an_uninterrupted_run(
    extra, tiny_teacher, tiny_options, tmp_path, monkeypatch
):
    from sfd.training.trainer import SFDTrainer

    # a decaying learning rate: resuming must also restore where the schedule stands (and, with the regression
    # term, rebuild the same teacher pairs and draw from them as the uninterrupted run did)
    opts = dict(
        tiny_options,
        max_train_steps=4,
        validation_steps=0,
        final_eval_samples_per_class=0,
        lr_scheduler="linear",
        learning_rate_generator=1e-3,
        learning_rate_fake_score=1e-3,
        **extra,
    )
    sfd.forget(tiny_teacher, forget="class=dog", output_dir=str(tmp_path / "a"), **opts)
    save = SFDTrainer.save_checkpoint

    class Killed(Exception):
        pass

    def save_then_die(self):  # the run is killed right after it wrote checkpoint-2
        save(self)
        if self.step == 2:
            raise Killed

    monkeypatch.setattr(SFDTrainer, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        sfd.forget(tiny_teacher, forget="class=dog", output_dir=str(tmp_path / "b"), **opts)
    monkeypatch.setattr(SFDTrainer, "save_checkpoint", save)
    assert (tmp_path / "b" / "checkpoints" / "checkpoint-2").exists()
    assert not (tmp_path / "b" / "model_index.json").exists()  # no half-written model folder
    sfd.forget(
        tiny_teacher, forget="class=dog", output_dir=str(tmp_path / "b"), **dict(opts, resume_from_checkpoint="latest")
    )
    a, b = unet_weights(tmp_path / "a"), unet_weights(tmp_path / "b")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)
    kept = sorted(p.name for p in (tmp_path / "b" / "checkpoints").glob("checkpoint-*"))
    assert kept == ["checkpoint-3", "checkpoint-4"]  # checkpoints_total_limit = 2


@pytest.mark.parametrize(
    "argv,match",
    [
        (["--forget", "class=horse"], "unknown class 'horse'.*0='cat'"),
        (["--forget", "class=dog", "--override", "class=dog"], "also being forgotten"),
        (["--forget", "class=cat,dog,bird"], "every class"),
        (["--forget", "class=dog", "--max_train_steps", "0"], "positive integer"),
        (["--forget", "class=dog", "--fake_score_updates", "0"], "fake_score_updates must be a positive integer"),
        (["--forget", "class=dog", "--lr_scheduler", "cosin"], "unknown lr_scheduler 'cosin'.*'cosine'"),
        (["--forget", "class=dog", "--lr_warmup_steps", "-1"], "lr_warmup_steps must be a non-negative integer"),
        (["--forget", "class=dog", "--negative_forget_class"], "negative_forget_class acts through the teacher's"),
        (["--forget", "class=dog", "--mixed_precision", "fp8"], "mixed_precision must be one of.*'auto'"),
        ([], "nothing to forget"),
    ],
)
def test_bad_input_stops_before_loading(argv, match, tiny_teacher, tmp_path, capsys, monkeypatch):
    import sfd.training.trainer as trainer

    monkeypatch.setattr(trainer.SFDTrainer, "__init__", lambda *a, **k: pytest.fail("model loaded"))
    with pytest.raises(SystemExit, match=match):
        train_main(["--teacher", tiny_teacher, "--output_dir", str(tmp_path / "o")] + argv)


@pytest.mark.parametrize("options", [dict(sigma_min=20.0), dict(sigma_u_max=0.0)])
def test_an_empty_training_sigma_range_is_refused_before_loading(options, tiny_teacher, tmp_path, monkeypatch):
    import sfd.training.trainer as trainer

    monkeypatch.setattr(trainer.SFDTrainer, "__init__", lambda *a, **k: pytest.fail("model loaded"))
    with pytest.raises(TrainingSetupError, match="training σ range needs 0 < sigma_min < sigma_max"):
        sfd.forget(tiny_teacher, forget="class=dog", output_dir=str(tmp_path / "o"), **options)


def test_a_sigma_range_outside_the_teachers_is_refused(tiny_teacher, tiny_options, tmp_path, monkeypatch):
    # the tiny teacher's 100-step schedule ends near σ = 1.3; a range above it leaves nothing to train on
    import sfd.training.trainer as trainer

    monkeypatch.setattr(trainer.SFDTrainer, "__init__", lambda *a, **k: pytest.fail("model loaded"))
    with pytest.raises(TrainingSetupError, match="misses the teacher's"):
        sfd.forget(
            tiny_teacher,
            forget="class=dog",
            output_dir=str(tmp_path / "o"),
            **dict(tiny_options, sigma_min=5.0, sigma_max=13.0),
        )


def test_missing_teacher_and_unconditional_teacher_are_refused(tmp_path):
    from diffusers import DDPMScheduler, UNet2DModel

    from sfd.pipelines import ClassConditionalDiffusionPipeline

    with pytest.raises(SystemExit, match="teacher not found: .*nowhere"):
        train_main(["--teacher", str(tmp_path / "nowhere"), "--forget", "class=dog"])
    unet = UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
    )
    ClassConditionalDiffusionPipeline(unet=unet, scheduler=DDPMScheduler(), id2label=NAMES).save_pretrained(
        tmp_path / "u"
    )
    with pytest.raises(SystemExit, match="not class-conditional"):
        train_main(["--teacher", str(tmp_path / "u"), "--forget", "class=dog"])


def test_output_dir_of_another_run_is_protected(tiny_teacher, tiny_options, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "something").write_text("x")
    with pytest.raises(TrainingSetupError, match="already holds a run"):
        sfd.forget(tiny_teacher, forget="class=dog", output_dir=str(out), **tiny_options)
    other = tmp_path / "other"
    sfd.forget(tiny_teacher, forget="class=dog", output_dir=str(other), **dict(tiny_options, max_train_steps=1))
    with pytest.raises(TrainingSetupError, match="another forget/override spec"):
        sfd.forget(
            tiny_teacher,
            forget="class=cat",
            output_dir=str(other),
            **dict(tiny_options, resume_from_checkpoint="latest"),
        )


def test_yaml_config_and_flags_layer_over_the_defaults(tiny_teacher, tmp_path):
    from sfd.training.config import ConfigError, load_config

    user = tmp_path / "c.yaml"
    user.write_text("alpha: 0.8\nmax_train_steps: 7\n")
    cfg = load_config(user, {"max_train_steps": 9})
    assert cfg.alpha == 0.8 and cfg.max_train_steps == 9 and cfg.seed == 0
    from sfd.cli.train import parse_args

    args = parse_args(
        ["--config", str(user), "--classifier", "null", "--learning_rate", "1e-4", "--learning_rate_generator", "2e-5"]
    )
    cfg = load_config(args.pop("config"), args)
    assert cfg.classifier is None and cfg.max_train_steps == 7  # unset flags leave the YAML's values
    assert cfg.learning_rate_generator == 2e-5 and cfg.learning_rate_fake_score == 1e-4
    user.write_text("alhpa: 1.0\n")
    with pytest.raises(ConfigError, match="unknown option.*alhpa"):
        load_config(user)


def test_two_cpu_processes_end_with_identical_weights(tmp_path):
    teacher = make_teacher(tmp_path / "teacher")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29533",
        str(ROOT / "tests" / "ddp_worker.py"),
        str(teacher),
        str(tmp_path / "out"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from safetensors.torch import load_file

    r0, r1 = (load_file(str(tmp_path / "out" / f"rank{r}.safetensors")) for r in (0, 1))
    assert r0.keys() == r1.keys()
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
    assert (tmp_path / "out" / "model_index.json").exists()
    t = make_teacher(tmp_path / "t2")  # same seed → same init: training changed the weights
    from sfd.pipelines import ClassConditionalDiffusionPipeline

    init = ClassConditionalDiffusionPipeline.from_pretrained(t).unet.state_dict()
    assert any(not torch.equal(init[k], r0[k]) for k in init)


def test_overwrite_output_dir_starts_afresh(tiny_teacher, tiny_options, tmp_path):
    out = tmp_path / "out"
    sfd.forget(tiny_teacher, forget="class=dog", output_dir=str(out), **dict(tiny_options, max_train_steps=3))
    sfd.forget(tiny_teacher, forget="class=cat", output_dir=str(out), overwrite_output_dir=True, **tiny_options)
    assert sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    assert OneStepClassConditionalPipeline.from_pretrained(out).config.forgotten == [0]


def test_two_stage_sfd_starts_from_a_distilled_generator(tiny_teacher, tiny_options, tmp_path):
    opts = dict(tiny_options, validation_steps=0, final_eval_samples_per_class=0)
    stage1 = sfd.distill(tiny_teacher, output_dir=str(tmp_path / "stage1"), **opts)
    assert stage1.config.forgotten == []
    assert "nothing forgotten" in (tmp_path / "stage1" / "README.md").read_text()
    seen = {}
    from sfd.training import trainer

    original = trainer.SFDTrainer.train

    def spy(self):  # the generator before the first stage-2 step is the stage-1 generator
        seen["gen"] = {k: v.clone() for k, v in self.accelerator.unwrap_model(self.gen_unet).state_dict().items()}
        return original(self)

    trainer.SFDTrainer.train = spy
    try:
        sfd.forget(
            tiny_teacher,
            forget="class=dog",
            output_dir=str(tmp_path / "stage2"),
            init_generator=str(tmp_path / "stage1"),
            **opts,
        )
    finally:
        trainer.SFDTrainer.train = original
    stage1_weights = unet_weights(tmp_path / "stage1")  # the exported (EMA) stage-1 generator
    for k, v in stage1_weights.items():
        torch.testing.assert_close(seen["gen"][k], v, rtol=0, atol=0)
    with pytest.raises(TrainingSetupError, match="not a one-step pipeline folder"):
        sfd.forget(
            tiny_teacher, forget="class=dog", output_dir=str(tmp_path / "x"), init_generator=str(tmp_path), **opts
        )
    with pytest.raises(TrainingSetupError, match=r"distilled at sigma_init 2.5, not 1.5: pass --sigma_init 2.5"):
        sfd.forget(
            tiny_teacher,
            forget="class=dog",
            output_dir=str(tmp_path / "y"),
            init_generator=str(tmp_path / "stage1"),
            **dict(opts, sigma_init=1.5),
        )


def test_without_ema_the_export_is_the_generator_itself(tiny_teacher, tiny_options, tmp_path):
    from sfd.training.config import load_config
    from sfd.training.setup import validate
    from sfd.training.trainer import SFDTrainer

    cfg = load_config(
        overrides=dict(
            tiny_options,
            teacher=tiny_teacher,
            forget="class=dog",
            use_ema=False,
            output_dir=str(tmp_path / "out"),
            validation_steps=0,
            final_eval_samples_per_class=0,
        )
    )
    trainer = SFDTrainer(cfg, validate(cfg))
    trainer.train()
    live = trainer.accelerator.unwrap_model(trainer.gen_unet).state_dict()
    exported = unet_weights(tmp_path / "out")
    for k, v in exported.items():
        torch.testing.assert_close(v, live[k], rtol=0, atol=0)


def test_fake_score_updates_sets_the_psi_steps_per_generator_step(tiny_teacher, tiny_options, tmp_path):
    from sfd.training.config import load_config
    from sfd.training.setup import validate
    from sfd.training.trainer import SFDTrainer

    cfg = load_config(
        overrides=dict(
            tiny_options,
            teacher=tiny_teacher,
            forget="class=dog",
            fake_score_updates=3,
            output_dir=str(tmp_path / "out"),
            validation_steps=0,
            checkpointing_steps=0,
            final_eval_samples_per_class=0,
        )
    )
    trainer = SFDTrainer(cfg, validate(cfg))
    trainer.train()
    adam_steps = lambda opt: max(s["step"] for s in opt.state_dict()["state"].values())  # noqa: E731
    assert adam_steps(trainer.opt_f) == 3 * cfg.max_train_steps
    assert adam_steps(trainer.opt_g) == cfg.max_train_steps


def test_lr_schedule_counts_the_fake_score_updates(tiny_teacher, tiny_options, tmp_path):
    from sfd.training.config import load_config
    from sfd.training.setup import validate
    from sfd.training.trainer import SFDTrainer

    cfg = load_config(
        overrides=dict(
            tiny_options,
            teacher=tiny_teacher,
            forget="class=dog",
            fake_score_updates=3,
            max_train_steps=4,
            lr_scheduler="linear",
            output_dir=str(tmp_path / "out"),
        )
    )
    trainer = SFDTrainer(cfg, validate(cfg))
    for _ in range(3):
        trainer.fake_score_step()
    trainer.generator_step()
    # one iteration of four: both rates are 3/4 of their start (ψ's schedule spans 3 × 4 updates)
    assert trainer.opt_g.param_groups[0]["lr"] == pytest.approx(0.75 * cfg.learning_rate_generator)
    assert trainer.opt_f.param_groups[0]["lr"] == pytest.approx(0.75 * cfg.learning_rate_fake_score)


def test_negative_forget_class_guides_forgotten_rows_against_their_own_class(tmp_path):
    from sfd.training.config import load_config
    from sfd.training.setup import validate

    teacher = make_teacher(tmp_path / "t", guidance=1.5)
    cfg = load_config(
        overrides=dict(
            teacher=str(teacher),
            forget="class=dog",
            override="random",
            negative_forget_class=True,
            output_dir=str(tmp_path / "o"),
        )
    )
    task = validate(cfg)
    task.load(cfg.teacher, "cpu")
    conds = task.draw(16, 0.5)
    assert conds.forgotten.sum() == 8
    # forgotten rows: CFG from the forgotten class towards the override; the others keep the null class
    assert torch.equal(conds.uncond, torch.where(conds.forgotten, 1, task.null_class_id))
    assert not task.spec.is_forgotten(conds.teacher).any()
    plain = load_config(overrides=dict(cfg.to_dict(), negative_forget_class=False))
    off = validate(plain)
    off.load(plain.teacher, "cpu")
    assert off.draw(4, 0.5).uncond is None


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_edm_teacher_trains_and_exports_an_edm_one_step_pipeline(prediction_type, tiny_options, tmp_path):
    """An EDM-style teacher (UNet2DModel + diffusers' EDMEulerScheduler) goes through the same σ-space losses; the
    one-step pipeline keeps its scheduler family, so G(z, c) = D(σ_init·z, σ_init, c) with EDM's preconditioning."""
    from diffusers import EDMEulerScheduler

    from sfd.pipelines import Denoiser
    from sfd.pipelines.denoiser import EDMParameterisation

    teacher = make_teacher(tmp_path / "edm", prediction_type=prediction_type, edm=True)
    out = tmp_path / "out"
    pipe = sfd.forget(str(teacher), forget="class=dog", output_dir=str(out), **tiny_options)
    loaded = OneStepClassConditionalPipeline.from_pretrained(out)
    assert (
        isinstance(loaded.scheduler, EDMEulerScheduler) and loaded.scheduler.config.prediction_type == prediction_type
    )
    card = json.loads((out / "training.json").read_text())
    assert card["steps"] == tiny_options["max_train_steps"]
    images = loaded(class_labels=[0, 1, 2], generator=torch.Generator().manual_seed(0), output_type="pt").images
    z = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        generator = Denoiser(loaded.unet, loaded.scheduler.config)
        x = generator(2.5 * z, 2.5, torch.tensor([0, 1, 2]))
    assert isinstance(generator.parameterisation, EDMParameterisation)
    torch.testing.assert_close(images, (x / 2 + 0.5).clamp(0, 1))
    torch.testing.assert_close(pipe.unet.state_dict()["conv_in.weight"], loaded.unet.state_dict()["conv_in.weight"])


def test_edm_teacher_bad_parameterisation_and_regression_are_refused_before_loading(tmp_path, monkeypatch):
    import sfd.training.trainer as trainer

    monkeypatch.setattr(trainer.SFDTrainer, "__init__", lambda *a, **k: pytest.fail("model loaded"))
    teacher = str(make_teacher(tmp_path / "edm", edm=True))
    with pytest.raises(SystemExit, match="regression_weight > 0 .* not available for EDM-style or flow-matching"):
        train_main(["--teacher", teacher, "--forget", "class=dog", "--regression_weight", "1"])
    sample = str(make_teacher(tmp_path / "edm-sample", prediction_type="sample", edm=True))
    with pytest.raises(SystemExit, match="teacher's scheduler: unsupported prediction_type 'sample' for an EDM"):
        train_main(["--teacher", sample, "--forget", "class=dog"])


@pytest.mark.parametrize("before", [True, False])
def test_dropout_before_generator_makes_psi_learn_the_generators_null_condition(before, tiny_options, tmp_path):
    from sfd.training.config import load_config
    from sfd.training.setup import validate
    from sfd.training.trainer import SFDTrainer

    teacher = make_teacher(tmp_path / "t", guidance=1.5)
    cfg = load_config(
        overrides=dict(
            tiny_options,
            teacher=str(teacher),
            forget="class=dog",
            fake_score_guidance_scale=1.5,
            condition_dropout=1.0,  # every ψ condition dropped
            dropout_before_generator=before,
            output_dir=str(tmp_path / "o"),
            classifier=None,
        )
    )
    trainer = SFDTrainer(cfg, validate(cfg))
    seen = []
    generate = trainer.generate
    trainer.generate = lambda d, z, cond: seen.append(cond.clone()) or generate(d, z, cond)
    trainer.fake_score_step()
    null = trainer.task.null_class_id
    assert (seen[0] == null).all() if before else (seen[0] != null).all()


@pytest.mark.parametrize("weighting", ["edm", "native"])
def test_fake_score_weighting_sets_psis_loss_weight(weighting, tiny_teacher, tiny_options, tmp_path, monkeypatch):
    import sfd.training.trainer as trainer_module
    from sfd.core.losses import edm_weight
    from sfd.training.config import load_config
    from sfd.training.setup import validate

    cfg = load_config(
        overrides=dict(
            tiny_options,
            teacher=tiny_teacher,
            forget="class=dog",
            fake_score_weighting=weighting,
            output_dir=str(tmp_path / "o"),
            classifier=None,
        )
    )
    trainer = trainer_module.SFDTrainer(cfg, validate(cfg))
    drawn, weights = [], []
    draw = trainer.draw_batch
    trainer.draw_batch = lambda *a: drawn.append(draw(*a)) or drawn[-1]
    loss = trainer_module.fake_score_loss
    monkeypatch.setattr(trainer_module, "fake_score_loss", lambda y, x, w, s: weights.append(w) or loss(y, x, w, s))
    trainer.fake_score_step()
    sigma = drawn[0][2]
    expected = edm_weight(sigma) if weighting == "edm" else sigma**-2  # the tiny teacher predicts ε
    torch.testing.assert_close(weights[0], expected)


def test_validation_logs_psi_tracking_and_leaves_the_training_stream_alone(tiny_teacher, tiny_options, tmp_path):
    runs = {}
    for every in (1, 0):
        out = tmp_path / f"v{every}"
        sfd.forget(
            tiny_teacher,
            forget="class=dog",
            output_dir=str(out),
            **dict(tiny_options, validation_steps=every, checkpointing_steps=0, final_eval_samples_per_class=0),
        )
        runs[every] = unet_weights(out)
    for k in runs[0]:
        torch.testing.assert_close(runs[1][k], runs[0][k])
    log = [json.loads(line) for line in (tmp_path / "v1" / "logs" / "metrics.jsonl").read_text().splitlines()]
    errors = {k: v for k, v in log[-1].items() if k.startswith(("psi_error_sigma_", "teacher_error_sigma_"))}
    assert len(errors) == 8 and all(v > 0 and math.isfinite(v) for v in errors.values())
    assert "psi_error_sigma_0.14" in errors and "teacher_error_sigma_0.14" in errors  # from the default σ_min
