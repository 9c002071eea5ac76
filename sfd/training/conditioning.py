"""The two kinds of teachers SFD erases from, behind one interface the trainer uses.

`ClassConditioning` (a class-conditional `UNet2DModel` or DiT: conditions are label ids) and `TextConditioning`
(the Stable Diffusion 1.x / 2.x, SDXL and SD3 layouts: conditions are text-encoder states, with pooled embeddings
packed in, see `pipelines.conditions`) each know how to
- read and check the teacher's configs without loading weights (`inspect`),
- draw a batch of conditions: the student's c, the teacher's c (the override for forgotten rows) and
  the unconditional branch for guidance (a negative prompt for forgotten rows, if one is given),
- wrap the denoising network (a UNet or a DiT) as a denoiser D(x, σ, c), and export the generator as a one-step
  pipeline.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from accelerate.logging import get_logger
from accelerate.utils import broadcast_object_list
from diffusers import DDPMScheduler, DiffusionPipeline, DiTTransformer2DModel, UNet2DModel

from ..core.loading import has_component, load_text_to_image_teacher
from ..core.paths import DEFAULT_CLASSIFIER, GENERAL_REMAIN_PROMPTS
from ..core.prompts import PromptSpec, read_lines
from ..core.sampling import sample_classes, sample_prompts
from ..core.spec import FAR, ForgetSpec, SpecError, resolve_classes
from ..core.viz import class_grid, grid_classes, prompt_label, shrink
from ..evaluation.evaluate_classes import class_metrics
from ..evaluation.evaluate_text import evaluation_prompts, text_metrics
from ..evaluation.judges import CLIPJudge, ImageClassifierJudge, classify, labels_unknown_to
from ..evaluation.reference import forget_accuracy_floor, load_reference_predictions
from ..pipelines import (
    ClassConditionalDiffusionPipeline,
    Denoiser,
    OneStepClassConditionalPipeline,
    OneStepTextToImagePipeline,
    TextToImageDiffusionPipeline,
)
from ..pipelines.denoiser import is_edm, is_flow_matching, noise_parameterisation, scheduler_of_family
from ..pipelines.networks import TRANSFORMER_CLASSES, class_embeddings, is_class_transformer, null_class_of
from ..pipelines.text_to_image import TEXT_COMPONENTS
from .config import TrainingConfig, TrainingSetupError
from .override_choice import choose_far_pool, choose_override

logger = get_logger(__name__)
setup_logger = logging.getLogger(__name__)  # before accelerate's state exists (validation of the options)
FORGET_TARGET = 0.01  # forget accuracy above which training advises a fixed override (the project's target)
TEACHER_PROMPTS_FILE = "prompts.txt"  # example prompts a teacher folder may ship (the embedded one does)
GRID_ROWS = 20  # validation grids show every class up to this many (e.g. not ImageNet's 1000 rows)


@dataclass
class Conditions:
    student: torch.Tensor  # c given to the generator and the fake score
    teacher: torch.Tensor  # c given to the teacher: the override for forgotten rows
    uncond: torch.Tensor | None  # the unconditional branch under guidance (None: the model's null condition)
    forgotten: torch.Tensor  # bool per row
    fake: torch.Tensor | None = None  # the student's c with condition dropout, for training ψ
    fake_uncond: torch.Tensor | None = None

    def __post_init__(self):
        if self.fake is None:
            self.fake, self.fake_uncond = self.student, self.uncond


def _read_index(path: str) -> dict:
    if path.startswith((".", "/", "~")) or os.path.exists(path):
        if not (Path(path).expanduser() / "model_index.json").exists():
            raise TrainingSetupError(
                f"teacher not found: {path} has no model_index.json (a saved diffusers pipeline folder)"
            )
    try:
        return DiffusionPipeline.load_config(path)
    except OSError as err:
        raise TrainingSetupError(f"cannot read the teacher's config at {path}: {err}") from err


def _network_config(path: str, folder: str) -> dict:
    """The denoising network's config.json (in `unet/`, or `transformer/` for a DiT), no weights."""
    try:
        model_class = DiTTransformer2DModel if folder == "transformer" else UNet2DModel  # either reads any config.json
        return model_class.load_config(path, subfolder=folder)
    except OSError as err:
        raise TrainingSetupError(f"cannot read the teacher's {folder}/config.json at {path}: {err}") from err


def loaded_network_config(pipe) -> dict:
    """A loaded pipeline's network config, with its class name as a saved config.json has it."""
    return {"_class_name": type(pipe.network).__name__, **dict(pipe.network.config)}


def without_label_dropout(network) -> None:
    """SFD draws every condition itself (ψ's label dropout is `condition_dropout`); a DiT's label embeddings would
    otherwise replace 10% of the labels by the null class, independently in every block, whenever the generator and
    ψ are in train mode. The null class's embedding stays."""
    from diffusers.models.embeddings import LabelEmbedding

    for module in network.modules():
        if isinstance(module, LabelEmbedding):
            module.dropout_prob = 0.0


def teacher_scheduler_config(teacher) -> dict:
    """The teacher's scheduler config (a loaded pipeline's, or read from its folder: no weights)."""
    if isinstance(teacher, DiffusionPipeline):
        return dict(teacher.scheduler.config)
    try:
        return DDPMScheduler.load_config(str(teacher), subfolder="scheduler")
    except OSError as err:
        raise TrainingSetupError(
            f"cannot read the teacher's scheduler/scheduler_config.json at {teacher}: {err}"
        ) from err


def teacher_sigma_range(teacher) -> tuple[float, float]:
    """The teacher's σ range (its first and last training timestep, or an EDM scheduler's σ_min / σ_max), checking
    that its parameterisation is one `Denoiser` wraps: configs only, no weights."""
    try:
        return noise_parameterisation(teacher_scheduler_config(teacher)).sigma_range
    except ValueError as err:
        raise TrainingSetupError(f"the teacher's scheduler: {err}") from None


def check_teacher_family(teacher) -> None:
    """A teacher folder or Hub id of a family the `Denoiser` does not wrap stops here (configs only)."""
    if not isinstance(teacher, DiffusionPipeline):
        check_supported_family(_read_index(str(teacher)), str(teacher))


def teacher_kind(teacher) -> str:
    """ "class" or "text", from a loaded pipeline or the teacher's model_index.json (no weights)."""
    if isinstance(teacher, DiffusionPipeline):
        return "text" if isinstance(teacher, TextToImageDiffusionPipeline) else "class"
    return "text" if "text_encoder" in _read_index(str(teacher)) else "class"


def inspect(cfg: TrainingConfig):
    """The conditioning kind of cfg.teacher with its spec parsed; configs only, no weights."""
    teacher = cfg.teacher
    if isinstance(teacher, ClassConditionalDiffusionPipeline):
        return ClassConditioning.inspect(cfg, dict(teacher.config), loaded_network_config(teacher))
    if isinstance(teacher, TextToImageDiffusionPipeline):
        return TextConditioning.inspect(cfg, dict(teacher.config), loaded_network_config(teacher))
    index = _read_index(str(teacher))
    check_teacher_family(teacher)
    folder = "transformer" if has_component(index, "transformer") else "unet"
    network_cfg = _network_config(str(teacher), folder)
    if "text_encoder" in index:
        return TextConditioning.inspect(cfg, index, network_cfg)
    return ClassConditioning.inspect(cfg, index, network_cfg)


SUPPORTED_FAMILIES = (
    "class-conditional UNet2DModel and DiT teachers (DiTPipeline layout); text teachers in the Stable Diffusion "
    "1.x / 2.x layout (CLIPTextModel, UNet2DConditionModel), the SDXL base layout (two CLIP encoders, a 'text_time' "
    "UNet) and the SD3 / SD3.5 layout (SD3Transformer2DModel, two CLIP encoders, optional T5); DDPM-family, EDM or "
    "fixed-shift flow-matching schedulers"
)
TEXT_NETWORK_CLASSES = ("UNet2DConditionModel", "SD3Transformer2DModel")


def check_supported_family(index: dict, teacher: str) -> None:
    """Families the `Denoiser` does not wrap (Flux, PixArt, the SDXL refiner, …) stop here, before any weights."""
    name = index.get("_class_name")
    name = name[-1] if isinstance(name, list) else name
    transformer = str((index.get("transformer") or [None, None])[-1])
    if not has_component(index, "text_encoder"):
        if has_component(index, "text_encoder_2"):
            reason = "it has a second text encoder but no first (an SDXL refiner: aesthetic-score conditioning)"
        else:
            return
    elif transformer.startswith("Flux"):
        reason = (
            "it is a Flux model (guidance-distilled: guidance is an input of the transformer, latents are packed "
            "2×2 with rotary position ids, and the scheduler's shift depends on the resolution)"
        )
    elif transformer not in ("None", *TEXT_NETWORK_CLASSES):
        reason = f"its text-conditioned transformer is a {transformer}"
    else:
        return
    raise TrainingSetupError(f"unsupported teacher {teacher} ({name}): {reason}; supported: {SUPPORTED_FAMILIES}")


def check_class_network(network_cfg: dict, scheduler_cfg: dict) -> None:
    """Class teachers the `Denoiser` calls: a UNet2DModel, or a DiT with a DDPM-family scheduler (configs only)."""
    name = network_cfg.get("_class_name")
    dit = is_class_transformer(network_cfg)
    if not (name == "UNet2DModel" or (name in TRANSFORMER_CLASSES and dit)):
        raise TrainingSetupError(
            f"the teacher's denoising network is a {name}; a class-conditional teacher is a UNet2DModel with class "
            "embeddings or a DiT (DiTTransformer2DModel, or a Transformer2DModel with patch_size, num_embeds_ada_norm "
            "and norm_type ada_norm_zero)"
        )
    if dit and (is_edm(scheduler_cfg) or is_flow_matching(scheduler_cfg)):
        raise TrainingSetupError(
            f"a DiT teacher is a DDPM-family model: give it a DDPM-family scheduler (DDPM, DDIM, DPM-Solver, Euler, … "
            f"with a beta schedule, as diffusers' DiTPipeline has), not {scheduler_cfg.get('_class_name', 'this one')}"
        )


class _Conditioning:
    """What both kinds hold: the parsed spec, the teacher's guidance and, once loaded, the teacher pipeline."""

    def __init__(self, spec, guidance_scale: float):
        self.spec, self.guidance_scale = spec, guidance_scale
        self.pipe = None
        self.forget_image = None  # `--forget image=`: how the forgotten class or concept was read from the image
        self.teacher_configs = ({}, {})  # (model_index.json, the network's config.json), as `inspect` read them

    @property
    def unet(self):
        """The teacher's denoising network (a UNet, or a DiT for DiT teachers)."""
        return self.pipe.network

    def resolve_override(self, accelerator, sigma_min: float, sigma_max: float, seed: int, exclude=()) -> None:
        """Once the teacher is loaded: choose an override the spec leaves to the teacher (class teachers' `auto`),
        never one of the classes named in `exclude` (a layered erasure's later folds)."""

    def warn_if_not_forgotten(self, metrics: dict) -> None:
        """After training: advice when the final check still finds what was to be forgotten (class teachers)."""

    def check_judge(self, cfg: TrainingConfig) -> None:
        """Before any weights load: the judge of validation samples can judge this teacher's conditions."""


class ClassConditioning(_Conditioning):
    """A class-conditional teacher (`ClassConditionalDiffusionPipeline`, a UNet or a DiT); c = label ids."""

    kind = "class"
    negative_forget_class = False
    reference = None  # (labels, classifier predictions) of real images, for the forget-accuracy floor; see load_judge
    device = "cpu"  # where `load` put the teacher, and where the judge runs
    fake_guidance_default = 1.0  # the fake score learns without label dropout, so it is not guided
    validation_keys = ("forget_accuracy", "remaining_accuracy", "forget_prob_mean")

    @classmethod
    def inspect(cls, cfg: TrainingConfig, index: dict, network_cfg: dict) -> "ClassConditioning":
        check_class_network(network_cfg, teacher_scheduler_config(cfg.teacher))
        id2label = {int(k): v for k, v in (index.get("id2label") or {}).items()}
        if class_embeddings(network_cfg) is None or not id2label:
            raise TrainingSetupError(
                f"the teacher {cfg.teacher} is not class-conditional (its network has no class embeddings or its "
                "pipeline config has no id2label); class forgetting needs a class-conditional teacher"
            )
        try:
            spec = ForgetSpec.parse(cfg.forget, cfg.override, id2label)
        except SpecError as err:
            raise TrainingSetupError(str(err)) from err
        guidance = index.get("default_guidance_scale", 1.0) if cfg.guidance_scale is None else cfg.guidance_scale
        if guidance != 1.0 and null_class_of(network_cfg, len(id2label)) is None:
            raise TrainingSetupError(f"guidance_scale {guidance} needs a teacher trained with a null class; use 1.0")
        negative = bool(cfg.negative_forget_class)
        if negative and guidance == 1.0:
            raise TrainingSetupError(
                "negative_forget_class acts through the teacher's classifier-free guidance: "
                "set guidance_scale > 1 or turn it off"
            )
        task = cls(spec, guidance)
        task.negative_forget_class = negative
        return task

    def load(self, teacher, device, weight_dtype=torch.float32) -> None:
        pipe = (
            teacher
            if isinstance(teacher, ClassConditionalDiffusionPipeline)
            else ClassConditionalDiffusionPipeline.from_pretrained(teacher)
        )
        self.pipe, self.device = pipe, device
        self.null_class_id = pipe.null_class_id
        without_label_dropout(pipe.network)  # before the trainer copies it into G and ψ
        if pipe.vae is not None:  # frozen; decodes validation samples an image at a time
            pipe.vae.to(device).requires_grad_(False).enable_slicing()
            if weight_dtype != torch.float32:
                pipe.vae.to(weight_dtype)

    def resolve_override(self, accelerator, sigma_min: float, sigma_max: float, seed: int, exclude=()) -> None:
        """`--override auto` / `far`: the main process lets the teacher choose (sfd.training.override_choice); every rank takes
        its answer, so a near tie cannot split the processes."""
        if not self.spec.needs_resolving:
            return
        far, choice = self.spec.chooser == FAR, [None]  # far: a pool; auto: one class
        if accelerator.is_main_process:
            teacher = self.denoiser(self.unet).to(accelerator.device)  # unguided: a class's own denoising loss
            excluded = resolve_classes(list(exclude), self.spec.id2label, "layered erasure folds")
            choose = choose_far_pool if far else choose_override
            choice = [choose(self.pipe, teacher, self.spec, sigma_min, sigma_max, seed, exclude=excluded)]
        if accelerator.num_processes > 1:
            broadcast_object_list(choice)
        chosen, distances = choice[0]
        self.spec = self.spec.resolved(pool=chosen) if far else self.spec.resolved(chosen)
        names = [self.spec.id2label[c] for c in self.spec.override_classes]
        logger.info(
            f"--override {self.spec.chooser}: {', '.join(map(repr, names))}, the remaining class(es) the "
            f"teacher finds least like {self.spec.forget_names} (denoising distance per class: {distances})",
            main_process_only=True,
        )

    def sample_shape(self) -> tuple[int, ...]:
        c = self.pipe.network.config
        return (c.in_channels, c.sample_size, c.sample_size)

    def denoiser(self, unet, guidance_scale: float = 1.0, guidance_interval=None) -> Denoiser:
        return Denoiser(
            unet,
            self.pipe.scheduler.config,
            null_class_id=self.null_class_id,
            guidance_scale=guidance_scale,
            guidance_interval=guidance_interval,
        )

    def draw(self, n: int, forget_fraction: float | None, dropout: float = 0.0, device="cpu") -> Conditions:
        """Labels (forget_fraction of them forgotten); the teacher's labels carry the override; with
        `dropout`, that share of the fake score's labels becomes the null class."""
        labels = self.spec.sample_labels(n, forget_fraction).to(device)
        forgotten = self.spec.is_forgotten(labels)
        fake, uncond = None, None
        if dropout and self.null_class_id is not None:
            fake = torch.where(torch.rand(n, device=device) < dropout, self.null_class_id, labels)
        if self.negative_forget_class:  # CFG against the forgotten class itself (a negative prompt, for classes)
            uncond = torch.where(forgotten, labels, self.null_class_id)
        return Conditions(labels, self.spec.teacher_labels(labels), uncond, forgotten, fake, uncond)

    def check_judge(self, cfg: TrainingConfig) -> None:
        """The classifier must name the teacher's classes (its config is read, no weights). The shipped Fashion-MNIST
        classifier, the default, is dropped with a warning for a teacher of other classes (e.g. ImageNet's): no
        measurement; a classifier given explicitly is an error."""
        if not cfg.classifier:
            return
        try:
            missing = labels_unknown_to(cfg.classifier, self.spec.id2label)
        except OSError as err:
            raise TrainingSetupError(f"cannot read the classifier's config at {cfg.classifier}: {err}") from err
        if not missing:
            return
        if Path(cfg.classifier).resolve() == Path(DEFAULT_CLASSIFIER).resolve():
            setup_logger.warning(
                f"the shipped classifier does not know the teacher's classes ({missing[0]!r}, …): validation samples "
                "are drawn but not measured; pass --classifier MODEL with the teacher's class names to measure them"
            )
            cfg.classifier = None
            return
        raise TrainingSetupError(
            f"the classifier {cfg.classifier} has no label for {len(missing)} of the teacher's classes "
            f"({', '.join(map(repr, missing[:5]))}{', …' if len(missing) > 5 else ''}): pass a classifier trained on "
            "the teacher's classes (--classifier), or --classifier null to skip the measurement"
        )

    def load_judge(self, cfg: TrainingConfig):
        """The image classifier that measures validation samples (None: no measurement)."""
        if not cfg.classifier:
            return None
        judge = ImageClassifierJudge.from_pretrained(cfg.classifier)
        judge.model.to(self.device)  # where the samples are drawn (an ImageNet ViT is slow on the CPU)
        self.label_map = judge.match_labels(self.spec.id2label)
        if Path(cfg.classifier).resolve() == Path(DEFAULT_CLASSIFIER).resolve():  # the reference is that classifier's
            self.reference = load_reference_predictions()
            self.warn_about_the_floor()
        return judge

    def suggested_override(self) -> tuple[str, float] | None:
        """The remaining class whose real images the judge least often calls by a forgotten name, with that floor."""
        if self.reference is None or not self.spec.forget:
            return None
        by_class = {
            c: forget_accuracy_floor(*self.reference, replace(self.spec, override=c), self.label_map)
            for c in self.spec.remaining
        }
        best = min(by_class, key=by_class.get)
        return self.spec.id2label[best], by_class[best]

    def override_advice(self) -> str:
        suggestion = self.suggested_override()
        example = f' --override "class={suggestion[0]}" (floor {suggestion[1]:.2%})' if suggestion else ""
        return (
            f"a random override per sample averages the remaining classes' scores, which keeps the look of a "
            f"class that sits among similar ones (README, 'Choosing the override'); a fixed override far from it forgets "
            f"reliably: --override auto (the teacher chooses one), or a class, e.g."
            f"{example or ' --override class=NAME'}"
        )

    def warn_about_the_floor(self, target: float = FORGET_TARGET) -> None:
        """Before training, with a random override (among every remaining class or a pool): say when the judge itself
        calls more than `target` of real images of those classes by a forgotten name (the floor no eraser can beat)."""
        spec = self.spec
        if self.reference is None or spec.override is not None or spec.needs_resolving or not spec.forget:
            return
        floor = forget_accuracy_floor(*self.reference, spec, self.label_map)
        if floor > target:
            logger.warning(
                f"{'the override pool' if spec.pool else '--override random'}: the judge classifies "
                f"{floor:.2%} of real images of the override "
                f"classes as {spec.forget_names}, so even a perfect eraser would measure that forget "
                f"accuracy; and {self.override_advice()}."
            )

    def warn_if_not_forgotten(self, metrics: dict, target: float = FORGET_TARGET) -> None:
        """After training, with a random override: say when the final check still finds the forgotten classes."""
        if self.spec.override is None and metrics.get("forget_accuracy", 0.0) > target:
            logger.warning(
                f"forget accuracy {metrics['forget_accuracy']:.1%} at the end with a random override: "
                f"{self.override_advice()}."
            )

    @torch.no_grad()
    def measure(self, pipe, judge, n_per_class: int, seed: int):
        """Classifier figures on `n_per_class` samples of every class (no FID), and a grid, one row per class (at most
        `GRID_ROWS`: the forgotten classes and the first remaining ones)."""
        ids = sorted(self.spec.id2label)
        labels = torch.tensor(ids).repeat_interleave(n_per_class)
        images, _ = sample_classes(pipe, labels.tolist(), batch_size=250, seed=seed, progress=False)
        k = min(n_per_class, 8)
        shown = ids if len(ids) <= GRID_ROWS else grid_classes(ids, self.spec.forget, GRID_ROWS)
        per_class = images.view(len(ids), n_per_class, *images.shape[1:])
        rows = shrink(per_class[[ids.index(i) for i in shown], :k].flatten(0, 1))
        marked = [row for row, i in enumerate(shown) if i in self.spec.forget]
        grid = class_grid(rows, k, marked, row_names=[self.spec.id2label[i] for i in shown])
        if judge is None:
            return {}, grid
        probs, feats = classify(judge, images)
        ref_labels, ref_predictions = self.reference or (None, None)
        return class_metrics(
            probs, feats, labels, self.spec, self.label_map, ref_labels=ref_labels, ref_predictions=ref_predictions
        ), grid

    def one_step_pipeline(self, unet, sigma_init: float) -> OneStepClassConditionalPipeline:
        """The generator as a one-step pipeline: saved under the teacher's component name (`unet` or `transformer`)
        with the teacher's VAE for a latent model."""
        scheduler = scheduler_of_family(self.pipe.scheduler.config)
        return OneStepClassConditionalPipeline(
            scheduler=scheduler,
            id2label=self.spec.id2label,
            sigma_init=sigma_init,
            forgotten=list(self.spec.forget),
            vae=self.pipe.vae,
            **{self.pipe.network_component: unet.eval()},
        )


def remain_prompt_file(cfg: TrainingConfig) -> Path:
    """--remain_prompts, else the teacher folder's prompts.txt, else the general list in configs/."""
    if cfg.remain_prompts:
        return Path(cfg.remain_prompts)
    teacher = cfg.teacher
    folder = Path(teacher.name_or_path if isinstance(teacher, DiffusionPipeline) else str(teacher)).expanduser()
    if (folder / TEACHER_PROMPTS_FILE).is_file():
        return folder / TEACHER_PROMPTS_FILE
    return GENERAL_REMAIN_PROMPTS


class TextConditioning(_Conditioning):
    """A Stable Diffusion-layout teacher; c = the text encoder's hidden states of a prompt."""

    kind = "text"
    fake_guidance_default = None  # None: the teacher's guidance (SiD-LSG / SFD guide the fake score too)
    validation_keys = ("clip_forget_detection", "clip_score_remaining", "clip_accuracy_remaining")

    @classmethod
    def inspect(cls, cfg: TrainingConfig, index: dict, network_cfg: dict) -> "TextConditioning":
        name = network_cfg.get("_class_name")
        if name not in TEXT_NETWORK_CLASSES:
            raise TrainingSetupError(
                f"the teacher {cfg.teacher}'s denoising network is a {name}; supported: {SUPPORTED_FAMILIES}"
            )
        if not (network_cfg.get("cross_attention_dim") or network_cfg.get("joint_attention_dim")):
            raise TrainingSetupError(
                f"the teacher {cfg.teacher} has a text encoder but its {name} has no cross-attention"
            )
        if network_cfg.get("addition_embed_type") not in (None, "text_time") or (
            network_cfg.get("addition_embed_type") == "text_time" and not has_component(index, "text_encoder_2")
        ):
            raise TrainingSetupError(
                f"the teacher {cfg.teacher}'s UNet takes '{network_cfg.get('addition_embed_type')}' extra conditions; "
                f"supported: {SUPPORTED_FAMILIES}"
            )
        if cfg.negative_forget_class:
            raise TrainingSetupError(
                "negative_forget_class is for class teachers; for a text teacher give the words to "
                "steer away from as --negative_concepts FILE"
            )
        try:
            remain = read_lines(remain_prompt_file(cfg), "--remain_prompts")
            negative = read_lines(cfg.negative_concepts, "--negative_concepts") if cfg.negative_concepts else None
            spec = PromptSpec.parse(cfg.forget, cfg.override, remain, negative)
        except SpecError as err:
            raise TrainingSetupError(str(err)) from err
        guidance = index.get("default_guidance_scale", 4.5) if cfg.guidance_scale is None else cfg.guidance_scale
        task = cls(spec, guidance)
        task.teacher_configs = (index, network_cfg)
        return task

    def load(self, teacher, device, weight_dtype=torch.float32) -> None:
        pipe = (
            teacher
            if isinstance(teacher, TextToImageDiffusionPipeline)
            else load_text_to_image_teacher(str(teacher), weight_dtype)
        )
        self.pipe = pipe
        for _, encoder in pipe.text_pairs():
            encoder.to(device).requires_grad_(False)
        if pipe.vae is not None:
            pipe.vae.requires_grad_(False)
        s = self.spec
        enc = lambda prompts: pipe.encode_prompt(list(prompts)).float()  # noqa: E731  (frozen: encoded once)
        self.forget_emb, self.override_emb = enc(s.forget_prompts), enc(s.override_prompts)
        self.remain_emb, self.null_emb = enc(s.remain_prompts), pipe.empty_prompt_condition(1).float()
        self.negative_emb = enc([s.negative_prompt]) if s.negative_prompt else None

    def sample_shape(self) -> tuple[int, ...]:
        return self.pipe.latent_shape(1)[1:]

    def denoiser(self, unet, guidance_scale: float = 1.0, guidance_interval=None) -> Denoiser:
        return Denoiser(
            unet,
            self.pipe.scheduler.config,
            guidance_scale=guidance_scale,
            null_embedding=self.null_emb,
            guidance_interval=guidance_interval,
        )

    def draw(self, n: int, forget_fraction: float | None, dropout: float = 0.0, device="cpu") -> Conditions:
        """Rows of forget prompts (teacher: their override) and remaining prompts; with `dropout`, that share
        of the student's prompts becomes "" (prompt dropout when training the fake score)."""
        dev = self.forget_emb.device  # the prompt embeddings' device: every mask and index is made on it
        idx, forgotten = (t.to(dev) for t in self.spec.sample(n, forget_fraction))
        f = forgotten.view(-1, 1, 1)
        f_idx, r_idx = idx.clamp(max=len(self.forget_emb) - 1), idx.clamp(max=len(self.remain_emb) - 1)
        student = torch.where(f, self.forget_emb[f_idx], self.remain_emb[r_idx])
        teacher = torch.where(f, self.override_emb[f_idx], student)
        null = self.null_emb.expand_as(student)
        uncond = torch.where(f, self.negative_emb.expand_as(student), null) if self.negative_emb is not None else None
        fake, fake_uncond = student, uncond
        if dropout:
            drop = (torch.rand(n, device=dev) < dropout).view(-1, 1, 1)
            fake = torch.where(drop, null, student)
            fake_uncond = None if uncond is None else torch.where(drop, null, uncond)
        to = lambda t: None if t is None else t.to(device)  # noqa: E731
        return Conditions(to(student), to(teacher), to(uncond), forgotten.to(device), to(fake), to(fake_uncond))

    def load_judge(self, cfg: TrainingConfig):
        """The CLIP model that measures validation samples (None: no measurement)."""
        if not cfg.clip:
            return None
        return CLIPJudge.from_pretrained(cfg.clip)

    def candidates(self, pipe) -> list[str]:
        """Concept names CLIP chooses among: the model's own list, else the forgotten concepts and the override."""
        extra = [self.spec.override_phrase] if self.spec.override_phrase else ["a photo"]
        return list(pipe.concepts) or list(dict.fromkeys(list(self.spec.concepts) + extra))

    @torch.no_grad()
    def measure(self, pipe, judge, n_per_prompt: int, seed: int):
        """CLIP figures on `n_per_prompt` samples of each evaluation prompt, and a grid, one row per prompt."""
        forget_p, remain_p = evaluation_prompts(
            self.spec.concepts, pipe.concepts, self.spec.forget_prompts, self.spec.remain_prompts
        )
        prompts = [p for p in forget_p + remain_p for _ in range(n_per_prompt)]
        forgotten = torch.arange(len(prompts)) < len(forget_p) * n_per_prompt
        images, _ = sample_prompts(pipe, prompts, batch_size=250, seed=seed, progress=False)
        k = min(n_per_prompt, 8)
        rows = images.view(len(forget_p) + len(remain_p), n_per_prompt, *images.shape[1:])[:, :k].flatten(0, 1)
        names = [prompt_label(p, pipe.concepts or self.spec.concepts) for p in forget_p + remain_p]
        grid = class_grid(rows, k, range(len(forget_p)), row_names=names)
        if judge is None:
            return {}, grid
        return text_metrics(judge, images, prompts, forgotten, self.candidates(pipe), list(self.spec.concepts)), grid

    def one_step_pipeline(self, unet, sigma_init: float) -> OneStepTextToImagePipeline:
        """The generator as a one-step pipeline with the teacher's encoders, tokenizers and VAE, saved under the
        teacher's component name (`unet`, or `transformer` for SD3)."""
        p = self.pipe
        return OneStepTextToImagePipeline(
            **{name: getattr(p, name) for name in TEXT_COMPONENTS},
            text_encoder=p.text_encoder,
            tokenizer=p.tokenizer,
            vae=p.vae,
            scheduler=scheduler_of_family(p.scheduler.config),
            sigma_init=sigma_init,
            forgotten=list(self.spec.concepts) or list(self.spec.forget_prompts),
            concepts=p.concepts,
            force_zeros_for_empty_prompt=p.config.get("force_zeros_for_empty_prompt", False),
            **{p.network_component: unet.eval()},
        )
