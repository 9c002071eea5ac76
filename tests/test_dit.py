"""DiT teachers (diffusers' DiTPipeline layout, as facebook/DiT-XL-2-256): a tiny DiT built with the same classes
is wrapped, sampled, erased from, exported, reloaded and evaluated, offline."""

import json
from pathlib import Path

import pytest
import torch
from diffusers import DDIMScheduler, DiffusionPipeline, DiTPipeline, DiTTransformer2DModel

from sfd.cli.eval import main as eval_main
from sfd.cli.train import main as train_main
from sfd.core.loading import load_pipeline
from sfd.core.spec import ForgetSpec, SpecError
from sfd.pipelines import ClassConditionalDiffusionPipeline, Denoiser, OneStepClassConditionalPipeline
from sfd.pipelines.denoiser import sigmas_from_config
from sfd.training.conditioning import ClassConditioning
from sfd.training.config import TrainingConfig, TrainingSetupError
from sfd.training.setup import validate
from tests.helpers import DIT_NAMES, NAMES, make_classifier, make_dit_teacher, tiny_dit
from tests.test_standalone import run_without_sfd


def test_the_denoiser_of_a_dit_is_x_minus_sigma_times_the_first_half_of_its_output():
    torch.manual_seed(0)
    dit = tiny_dit().eval()
    sched = DDIMScheduler(num_train_timesteps=100, beta_schedule="linear", clip_sample=False)
    t = torch.tensor([10, 60])
    sigma = sigmas_from_config(sched.config)[t].view(-1, 1, 1, 1)  # σ_t = sqrt((1 − ᾱ_t)/ᾱ_t) of two timesteps
    x, labels = torch.randn(2, 4, 4, 4), torch.tensor([1, 2])
    with torch.no_grad():
        out = dit(x / (1 + sigma**2).sqrt(), timestep=t.float(), class_labels=labels).sample  # input sqrt(ᾱ_t)·x
        got = Denoiser(dit, sched.config)(x, sigma, labels)
    assert out.shape == (2, 8, 4, 4) and out[:, 4:].abs().mean() > 1e-3  # a learned variance that must be dropped
    torch.testing.assert_close(got, x - sigma * out[:, :4], rtol=1e-5, atol=1e-5)  # x̂₀ = x − σ·ε̂


def test_imagenet_style_labels_resolve_by_every_synonym():
    spec = ForgetSpec.parse("class=puppy", "class=Bird", DIT_NAMES)
    assert spec.forget == (1,) and spec.override == 2
    assert ForgetSpec.parse("class=dog, puppy", None, DIT_NAMES).forget == (1,)  # both synonyms name one class
    cranes = {0: "crane", 1: "crane", 2: "maillot", 3: "maillot, tank suit"}  # as in ImageNet's id2label
    with pytest.raises(SpecError, match=r"'crane' names several classes \(0='crane', 1='crane'\)"):
        ForgetSpec.parse("class=crane", None, cranes)
    assert ForgetSpec.parse("class=maillot", None, cranes).forget == (2,)  # a full label wins over a synonym
    assert ForgetSpec.parse("class=tank suit", None, cranes).forget == (3,)
    many = {i: f"class number {i}, thing{i}" for i in range(1000)}
    with pytest.raises(SpecError, match=r"unknown class 'thing10000'\. Closest: .*1000 classes \(ids 0\.\.999\)"):
        ForgetSpec.parse("class=thing10000", None, many)


def test_a_dit_pipeline_folder_loads_as_a_teacher_that_samples_what_diffusers_samples(tmp_path):
    folder = make_dit_teacher(tmp_path / "dit", num_embeds_ada_norm=1000)  # ImageNet's null id, 1000, in a tiny table
    pipe = load_pipeline(folder)
    assert isinstance(pipe, ClassConditionalDiffusionPipeline) and pipe.unet is None
    assert isinstance(pipe.transformer, DiTTransformer2DModel)  # the Hub's Transformer2DModel config, remapped
    assert pipe.null_class_id == 1000 and pipe.num_classes == 3
    assert pipe.get_label_ids(["puppy", "dog", "dog, puppy", "bird"]) == [1, 1, 1, 2]
    stock = DiTPipeline.from_pretrained(folder)
    for pipeline in (pipe, stock):
        pipeline.set_progress_bar_config(disable=True)
    for guidance in (1.0, 4.0):
        kw = dict(num_inference_steps=3, guidance_scale=guidance, output_type="pt")
        ours = pipe(class_labels=["puppy", "bird"], generator=torch.Generator().manual_seed(0), **kw).images
        theirs = stock(class_labels=[1, 2], generator=torch.Generator().manual_seed(0), **kw).images
        assert ours.shape == (2, 3, 8, 8)  # 4×4 latents decoded by the VAE
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)
    latents = pipe(class_labels=[0], num_inference_steps=3, output_type="latent").images
    assert latents.shape == (1, 4, 4, 4)


def options(tmp_path, teacher: str, **extra) -> TrainingConfig:
    return TrainingConfig(teacher=teacher, forget="class=puppy", output_dir=str(tmp_path / "out"), **extra)


def test_unsupported_dit_schedulers_and_networks_stop_before_any_weights_load(tmp_path):
    from diffusers import EDMEulerScheduler, FlowMatchEulerDiscreteScheduler

    edm = make_dit_teacher(tmp_path / "edm", scheduler=EDMEulerScheduler(sigma_data=0.5))
    flow = make_dit_teacher(tmp_path / "flow", scheduler=FlowMatchEulerDiscreteScheduler())
    other = make_dit_teacher(tmp_path / "other")
    config = Path(other, "transformer", "config.json")
    config.write_text(json.dumps(json.loads(config.read_text()) | {"_class_name": "SD3Transformer2DModel"}))
    for folder in (edm, flow, other):
        for weights in Path(folder).rglob("*.safetensors"):
            weights.unlink()  # nothing to load: the checks read configs only
    with pytest.raises(TrainingSetupError, match="a DiT teacher is a DDPM-family model.*not EDMEulerScheduler"):
        validate(options(tmp_path, edm))
    with pytest.raises(
        TrainingSetupError, match="a DiT teacher is a DDPM-family model.*not FlowMatchEulerDiscreteScheduler"
    ):
        validate(options(tmp_path, flow))
    with pytest.raises(TrainingSetupError, match="is a SD3Transformer2DModel; .*UNet2DModel.*or a DiT"):
        validate(options(tmp_path, other))


def test_the_generator_and_psi_copies_of_a_dit_never_drop_labels_in_train_mode(tmp_path):
    cfg = options(tmp_path, make_dit_teacher(tmp_path / "dit"))
    task = validate(cfg)
    task.load(cfg.teacher, "cpu")
    net = task.unet.train()  # diffusers' LabelEmbedding replaces 10% of labels by the null class in train mode
    den = task.denoiser(net)
    x, labels = torch.randn(64, 4, 4, 4), torch.ones(64, dtype=torch.long)
    with torch.no_grad():
        first, second = den(x, 1.0, labels), den(x, 1.0, labels)
        null = den(x, 1.0, torch.full_like(labels, task.null_class_id))
    assert torch.equal(first, second)
    assert (first - null).abs().flatten(1).amax(1).min() > 1e-6  # no row was drawn as the null class


def test_a_tiny_dit_is_erased_exported_reloaded_and_evaluated(tmp_path, capsys):
    teacher = make_dit_teacher(tmp_path / "dit")
    classifier = str(make_classifier(tmp_path / "classifier", DIT_NAMES))
    out = tmp_path / "out"
    flags = dict(
        teacher=teacher,
        forget="class=puppy",  # a synonym of "dog, puppy"; the override is the default, auto (chosen on latents)
        output_dir=out,
        train_batch_size=4,
        max_train_steps=2,
        validation_steps=2,
        validation_samples_per_class=2,
        final_eval_samples_per_class=2,
        checkpointing_steps=2,
        classifier=classifier,
        seed=0,
    )
    train_main([arg for k, v in flags.items() for arg in (f"--{k}", str(v))])
    index = json.loads((out / "model_index.json").read_text())
    assert index["transformer"] == ["diffusers", "DiTTransformer2DModel"] and index["vae"][1] == "AutoencoderKL"
    assert index["unet"] == [None, None] and index["forgotten"] == [1]
    record = json.loads((out / "training.json").read_text())
    assert record["forget"] == ["dog, puppy"] and record["override"] in ("cat", "bird")
    assert 0 <= record["final_metrics"]["forget_accuracy"] <= 1

    pipe = load_pipeline(str(out))
    assert isinstance(pipe, OneStepClassConditionalPipeline) and pipe.vae is not None
    images = pipe(class_labels=["puppy", "bird"], generator=torch.Generator().manual_seed(0), output_type="pt").images
    assert images.shape == (2, 3, 8, 8) and 0 <= float(images.min()) and float(images.max()) <= 1
    teacher_weights = load_pipeline(teacher).transformer.state_dict()
    generator_weights = pipe.transformer.state_dict()
    assert any(not torch.equal(teacher_weights[k], generator_weights[k]) for k in teacher_weights)  # it trained

    remote = DiffusionPipeline.from_pretrained(out, trust_remote_code=True)
    assert type(remote).__name__ == "OneStepClassConditionalPipeline" and not type(remote).__module__.startswith("sfd")
    again = remote(class_labels=["puppy", "bird"], generator=torch.Generator().manual_seed(0), output_type="pt")
    torch.testing.assert_close(again.images, images, rtol=0, atol=1e-6)
    without_sfd = run_without_sfd([out], tmp_path)[str(out)]  # a fresh interpreter in which `import sfd` fails
    assert without_sfd["class"] == "OneStepClassConditionalPipeline"

    report = tmp_path / "report"
    capsys.readouterr()
    eval_main(
        ["--model", str(out), "--forget", "class=puppy", "--classifier", classifier, "--reference_stats", "none"]
        + ["--clip", "none", "--second_classifier", "none", "--num_samples_per_class", "4", "--batch_size", "6"]
        + ["--report", str(report)]
    )
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["forget"] == ["dog, puppy"] and metrics["num_samples_per_class"] == 4
    assert 0 <= metrics["forget_accuracy"] <= 1 and 0 <= metrics["remaining_accuracy"] <= 1
    assert metrics["unlearning_accuracy"] == pytest.approx(1 - metrics["forget_accuracy"])
    assert metrics["nfe_per_image"] == 1 and metrics["images_per_second"] > 0


def test_a_dit_teachers_one_step_pipeline_keeps_its_vae_and_component_name(tmp_path):
    cfg = options(tmp_path, make_dit_teacher(tmp_path / "dit"))
    task = validate(cfg)
    assert isinstance(task, ClassConditioning)
    task.load(cfg.teacher, "cpu")
    assert task.sample_shape() == (4, 4, 4)  # the generator draws latents
    one_step = task.one_step_pipeline(tiny_dit(), cfg.sigma_init)
    assert one_step.vae is task.pipe.vae and one_step.network_component == "transformer" and one_step.unet is None


def test_a_classifier_without_the_teachers_class_names_is_caught_before_any_weights_load(tmp_path, caplog):
    teacher = make_dit_teacher(tmp_path / "dit")
    for weights in Path(teacher).rglob("*.safetensors"):
        weights.unlink()
    cfg = options(tmp_path, teacher)  # the default judge: the shipped Fashion-MNIST classifier
    with caplog.at_level("WARNING"):
        validate(cfg)
    assert cfg.classifier is None and "does not know the teacher's classes ('cat', …)" in caplog.text
    other = str(make_classifier(tmp_path / "classifier", NAMES))  # "dog", not "dog, puppy"
    with pytest.raises(TrainingSetupError, match=r"has no label for 1 of the teacher's classes \('dog, puppy'\)"):
        validate(options(tmp_path, teacher, classifier=other))
    cfg = options(tmp_path, teacher, classifier=str(make_classifier(tmp_path / "imagenet-like", DIT_NAMES)))
    validate(cfg)
    assert cfg.classifier.endswith("imagenet-like")


CLIP = ["transformers", "CLIPTextModel"]


@pytest.mark.parametrize(
    "index,reason",
    [
        (
            {"_class_name": "StableDiffusionXLImg2ImgPipeline", "text_encoder": [None, None], "text_encoder_2": CLIP},
            "an SDXL refiner",
        ),
        (
            {
                "_class_name": "FluxPipeline",
                "transformer": ["diffusers", "FluxTransformer2DModel"],
                "text_encoder": CLIP,
            },
            "a Flux model \\(guidance-distilled",
        ),
        (
            {
                "_class_name": "PixArtAlphaPipeline",
                "transformer": ["diffusers", "PixArtTransformer2DModel"],
                "text_encoder": CLIP,
            },
            "text-conditioned transformer is a PixArtTransformer2DModel",
        ),
    ],
)
def test_unsupported_families_stop_before_weights_and_name_the_supported_ones(tmp_path, index, reason):
    import json

    from sfd.training.config import TrainingSetupError, load_config
    from sfd.training.setup import validate

    (tmp_path / "model_index.json").write_text(json.dumps(index))  # a config alone: no weights to load
    cfg = load_config(None, dict(teacher=str(tmp_path), forget="class=dog"))
    with pytest.raises(TrainingSetupError, match=reason) as err:
        validate(cfg)
    assert "supported: class-conditional UNet2DModel and DiT" in str(err.value)


def test_the_relearning_attack_fine_tunes_a_dit_on_latents_of_a_local_dataset_and_refuses_text_models(tmp_path):
    import numpy as np
    from datasets import ClassLabel, Dataset, Image

    from sfd.cli.attack import main as attack_main
    from sfd.evaluation.relearn import relearn_curve
    from tests.helpers import make_t2i_teacher

    teacher = make_dit_teacher(tmp_path / "dit")
    rng = np.random.default_rng(0)
    rows = {"image": [rng.integers(0, 255, (8, 8, 3), dtype=np.uint8) for _ in range(12)], "label": [0, 1, 2] * 4}
    names = ["Cat", "dog, puppy", "bird"]  # the model's class names, matched case-insensitively
    ds = Dataset.from_dict(rows).cast_column("image", Image()).cast_column("label", ClassLabel(names=names))
    ds.save_to_disk(str(tmp_path / "data"))
    classifier = str(make_classifier(tmp_path / "classifier", DIT_NAMES))
    pipe = load_pipeline(teacher)
    before = {k: v.clone() for k, v in pipe.transformer.state_dict().items()}
    kw = dict(
        classifier=classifier, eval_samples=2, num_inference_steps=2, progress=False, dataset=str(tmp_path / "data")
    )
    curve = relearn_curve(pipe, "class=puppy", n_images=3, checkpoints=[0, 2], learning_rate=1e-2, **kw)
    assert curve["attacked"] == ["dog, puppy"] and curve["batch_size"] == 3 and len(curve["forget_accuracy"]) == 2
    assert curve["dataset"] == str(tmp_path / "data")
    assert all(torch.equal(before[k], v) for k, v in pipe.transformer.state_dict().items())  # fine-tuned a copy
    with pytest.raises(ValueError, match="only 4 images of class 1 to attack with; asked for 5"):
        relearn_curve(pipe, "class=puppy", n_images=5, checkpoints=[0], **kw)

    other = tmp_path / "other"
    Dataset.from_dict(rows).cast_column("image", Image()).cast_column(
        "label", ClassLabel(names=["cat", "wolf", "bird"])
    ).save_to_disk(str(other))
    with pytest.raises(SystemExit, match="no class named 'dog, puppy'; its classes: cat, wolf, bird"):
        attack_main(
            [
                "relearn",
                "--model",
                teacher,
                "--forget",
                "class=puppy",
                "--dataset",
                str(other),
                "--classifier",
                classifier,
            ]
        )
    text = make_t2i_teacher(tmp_path / "t2i")
    with pytest.raises(SystemExit, match="TextToImageDiffusionPipeline is not one .*sfd-attack invert"):
        attack_main(["relearn", "--model", text, "--forget", "class=dog"])
