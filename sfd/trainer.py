"""Score Forgetting Distillation of a class-conditional diffusion teacher into a one-step generator.

    pipe = sfd.forget("assets/teacher", forget="class=trouser", output_dir="outputs/no-trouser")

One iteration alternates (method notes, sfd-method.md):
  1. fake-score step: ψ learns, by denoising score matching, the distribution of stop-gradient
     generator samples, for remaining and forgotten labels alike;
  2. generator step: the SiD loss between the teacher's and ψ's denoised estimates, where for a
     forgotten label the teacher is asked for the *override* class instead.
The generator, the fake score and the teacher are the same architecture (both copies start from the
teacher). The generator's EMA is exported as a `OneStepClassConditionalPipeline`.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import set_seed
from diffusers import DDPMScheduler, UNet2DModel
from diffusers.training_utils import EMAModel
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from pipelines import ClassConditionalDiffusionPipeline, Denoiser, OneStepClassConditionalPipeline

from .config import load_config
from .io import write_text_atomic
from .losses import fake_score_loss, sample_sigmas, sid_generator_loss
from .spec import ForgetSpec, SpecError

logger = get_logger(__name__)
MODEL_FILES = ("unet", "scheduler", "README.md", "training.json")  # written before model_index.json, which marks completeness


EMA_FILE = "ema.safetensors"  # in a checkpoint: the generator's EMA, tensor "i" = i-th UNet parameter


def copy_checkpoint_ema(checkpoint_dir: str | os.PathLike, parameters) -> None:
    """Copy a checkpoint's EMA generator weights into `parameters` (UNet parameter order)."""
    ema = load_file(str(Path(checkpoint_dir) / EMA_FILE))
    with torch.no_grad():
        for i, p in enumerate(parameters):
            p.copy_(ema[str(i)].to(p.device))


class TrainingSetupError(ValueError):
    """Bad input found before any model is loaded; the message says what to do."""


@dataclass
class TeacherInfo:
    id2label: dict[int, str]
    num_class_embeds: int | None
    default_guidance_scale: float


def inspect_teacher(teacher) -> TeacherInfo:
    """Read only the configs (model_index.json, unet/config.json) of a teacher: no weights are loaded."""
    if isinstance(teacher, ClassConditionalDiffusionPipeline):
        return TeacherInfo(teacher.id2label, teacher.unet.config.num_class_embeds, teacher.config.default_guidance_scale)
    path = str(teacher)
    if path.startswith((".", "/", "~")) or os.path.exists(path):
        if not (Path(path).expanduser() / "model_index.json").exists():
            raise TrainingSetupError(f"teacher not found: {path} has no model_index.json (a saved diffusers pipeline folder)")
    try:
        index = ClassConditionalDiffusionPipeline.load_config(path)
        unet_cfg = UNet2DModel.load_config(path, subfolder="unet")
    except OSError as err:
        raise TrainingSetupError(f"cannot read the teacher's config at {path}: {err}") from err
    id2label = {int(k): v for k, v in (index.get("id2label") or {}).items()}
    return TeacherInfo(id2label, unet_cfg.get("num_class_embeds"), index.get("default_guidance_scale", 1.0))


def default_output_dir(spec: ForgetSpec) -> str:
    names = "-".join(re.sub(r"[^a-z0-9]+", "_", n.lower()).strip("_") for n in spec.forget_names)
    return os.path.join("outputs", f"forget-{names}")


def validate(cfg: dict) -> ForgetSpec:
    """Every check that needs no weights; fills cfg["output_dir"] and returns the parsed spec."""
    if not cfg.get("forget"):
        raise TrainingSetupError('nothing to forget: pass --forget "class=NAME" (e.g. class=trouser)')
    for key in ("max_train_steps", "train_batch_size"):
        if not isinstance(cfg[key], int) or cfg[key] < 1:
            raise TrainingSetupError(f"{key} must be a positive integer, got {cfg[key]!r}")
    if cfg["forget_fraction"] is not None and not 0 < cfg["forget_fraction"] < 1:
        raise TrainingSetupError(f"forget_fraction must be in (0, 1) or null, got {cfg['forget_fraction']}")
    info = inspect_teacher(cfg["teacher"])
    if info.num_class_embeds is None or not info.id2label:
        raise TrainingSetupError(
            f"the teacher {cfg['teacher']} is not class-conditional (its UNet has no class embeddings or its "
            "pipeline config has no id2label); class forgetting needs a class-conditional teacher")
    try:
        spec = ForgetSpec.parse(cfg["forget"], cfg["override"], info.id2label)
    except SpecError as err:
        raise TrainingSetupError(str(err)) from err
    guidance = info.default_guidance_scale if cfg["guidance_scale"] is None else cfg["guidance_scale"]
    if guidance != 1.0 and info.num_class_embeds != len(info.id2label) + 1:
        raise TrainingSetupError(f"guidance_scale {guidance} needs a teacher trained with a null class; use 1.0")
    cfg["guidance_scale"] = guidance
    cfg["output_dir"] = cfg["output_dir"] or default_output_dir(spec)
    out = Path(cfg["output_dir"])
    state_file = out / "checkpoints" / "run.json"
    if out.exists() and any(out.iterdir()) and not cfg["overwrite_output_dir"]:
        if cfg["resume_from_checkpoint"] is None:
            raise TrainingSetupError(
                f"{out} already holds a run; pass --resume_from_checkpoint latest to continue it, "
                "--overwrite_output_dir to replace it, or another --output_dir")
        if state_file.exists() and json.loads(state_file.read_text())["spec"] != spec.describe():
            raise TrainingSetupError(f"{out} holds a run with another forget/override spec; it cannot be resumed with this one")
    return spec


def make_accelerator(cfg: dict) -> Accelerator:
    """accelerate picks up `torchrun` / `accelerate launch` on GPUs by itself; on a machine without
    one it must be told to use the CPU backend (gloo) for the processes to form a group."""
    multi_process = int(os.environ.get("WORLD_SIZE", "1")) > 1
    cpu_only = not (torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available()))
    accelerator = Accelerator(mixed_precision=cfg["mixed_precision"], log_with=cfg["report_to"],
                              project_dir=cfg["output_dir"], cpu=multi_process and cpu_only)
    launched_by_accelerate = any(k.startswith("ACCELERATE_") for k in os.environ)
    if accelerator.device.type == "cpu" and launched_by_accelerate and torch.get_num_threads() == 1:
        # `accelerate launch` pins OMP_NUM_THREADS=1 on CPU; share the cores among the processes instead
        # (a user's own OMP_NUM_THREADS outside accelerate launch is respected)
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // accelerator.num_processes))
    return accelerator


class SFDTrainer:
    """Holds the three networks, their optimisers and the loop; `train()` returns the one-step pipeline."""

    def __init__(self, cfg: dict, spec: ForgetSpec, accelerator: Accelerator | None = None):
        self.cfg, self.spec = cfg, spec
        self.accelerator = accelerator or make_accelerator(cfg)
        acc = self.accelerator
        set_seed(cfg["seed"], device_specific=True)
        teacher = cfg["teacher"]
        if not isinstance(teacher, ClassConditionalDiffusionPipeline):
            teacher = ClassConditionalDiffusionPipeline.from_pretrained(teacher)
        self.teacher_pipe = teacher
        self.scheduler_config = teacher.scheduler.config
        teacher_unet = teacher.unet.to(acc.device).requires_grad_(False).eval()
        gen_unet = copy.deepcopy(teacher_unet).requires_grad_(True).train()
        fake_unet = copy.deepcopy(teacher_unet).requires_grad_(True).train()

        adam = dict(betas=(cfg["adam_beta1"], cfg["adam_beta2"]), eps=cfg["adam_epsilon"])
        opt_g = torch.optim.Adam(gen_unet.parameters(), lr=cfg["learning_rate_generator"], **adam)
        opt_f = torch.optim.Adam(fake_unet.parameters(), lr=cfg["learning_rate_fake_score"], **adam)
        self.gen_unet, self.fake_unet, self.opt_g, self.opt_f = acc.prepare(gen_unet, fake_unet, opt_g, opt_f)
        self.ema = EMAModel(acc.unwrap_model(self.gen_unet).parameters(), decay=cfg["ema_decay"],
                            use_ema_warmup=True, inv_gamma=1.0, power=cfg["ema_power"])
        self.ema.to(acc.device)

        dn = lambda unet, **kw: Denoiser(unet, self.scheduler_config, **kw).to(acc.device)  # noqa: E731
        self.teacher = dn(teacher_unet, null_class_id=teacher.null_class_id, guidance_scale=cfg["guidance_scale"])
        # "_ddp" denoisers go through the accelerate-wrapped module (gradient sync); "_local" ones do not.
        self.gen_ddp, self.gen_local = dn(self.gen_unet), dn(acc.unwrap_model(self.gen_unet))
        self.fake_ddp, self.fake_local = dn(self.fake_unet), dn(acc.unwrap_model(self.fake_unet))
        self.sigma_min = max(cfg["sigma_min"], self.teacher.sigma_min)
        self.sigma_max = min(cfg["sigma_max"], self.teacher.sigma_max)
        cfgu = teacher_unet.config
        self.sample_shape = (cfgu.in_channels, cfgu.sample_size, cfgu.sample_size)
        self.out = Path(cfg["output_dir"])
        self.step, self.train_seconds = 0, 0.0
        self.judge = None
        if cfg["classifier"]:
            from .judges import ImageClassifierJudge

            self.judge = ImageClassifierJudge.from_pretrained(cfg["classifier"])
            self.label_map = self.judge.match_labels(spec.id2label)

    # ---- one SFD iteration -------------------------------------------------------------------
    def draw_batch(self):
        """Labels c, generator noise z, training σ, diffusion noise ε and per-sample weights λ."""
        dev, n = self.accelerator.device, self.cfg["train_batch_size"]
        labels = self.spec.sample_labels(n, self.cfg["forget_fraction"]).to(dev)
        z = torch.randn(n, *self.sample_shape, device=dev)
        sigma = sample_sigmas(n, self.sigma_min, self.sigma_max, self.cfg["sigma_rho"], self.cfg["sigma_u_max"])
        sigma = sigma.to(dev).view(-1, 1, 1, 1)
        weights = torch.where(self.spec.is_forgotten(labels), self.cfg["forget_weight"], self.cfg["remain_weight"])
        return labels, z, sigma, torch.randn_like(z), weights

    def generate(self, denoiser: Denoiser, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """G_θ(z, c) = D_θ(σ_init·z, σ_init, c)."""
        s = self.cfg["sigma_init"]
        return denoiser(s * z, s, labels)

    def fake_score_step(self) -> float:
        acc = self.accelerator
        labels, z, sigma, eps, weights = self.draw_batch()
        with torch.no_grad(), acc.autocast():
            x_g = self.generate(self.gen_local, z, labels).float()
        with acc.autocast():
            y_fake = self.fake_ddp(x_g + sigma * eps, sigma, labels)
        loss = fake_score_loss(y_fake.float(), x_g, sigma, weights)
        acc.backward(loss)
        acc.clip_grad_value_(self.fake_unet.parameters(), self.cfg["max_grad_value"])
        self.opt_f.step()
        self.opt_f.zero_grad(set_to_none=True)
        return loss.detach().item()

    def generator_step(self) -> float:
        acc = self.accelerator
        labels, z, sigma, eps, weights = self.draw_batch()
        c_teacher = self.spec.teacher_labels(labels)  # the override for forgotten labels (the SFD term)
        self.fake_local.unet.requires_grad_(False)
        try:
            with acc.autocast():
                x_g = self.generate(self.gen_ddp, z, labels)
                x_t = x_g + sigma * eps
                y_real = self.teacher(x_t, sigma, c_teacher)
                y_fake = self.fake_local(x_t, sigma, labels)
            loss = sid_generator_loss(y_real.float(), y_fake.float(), x_g.float(), self.cfg["alpha"], weights)
            acc.backward(loss)
        finally:
            self.fake_local.unet.requires_grad_(True)
        acc.clip_grad_value_(self.gen_unet.parameters(), self.cfg["max_grad_value"])
        self.opt_g.step()
        self.opt_g.zero_grad(set_to_none=True)
        self.ema.step(acc.unwrap_model(self.gen_unet).parameters())
        return loss.detach().item()

    # ---- the loop ----------------------------------------------------------------------------
    def train(self) -> OneStepClassConditionalPipeline:
        acc, cfg = self.accelerator, self.cfg
        if cfg["overwrite_output_dir"] and not cfg["resume_from_checkpoint"] and acc.is_main_process:
            for name in ("model_index.json", "checkpoints", "logs", *MODEL_FILES):
                target = self.out / name
                shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
        acc.wait_for_everyone()
        if cfg["resume_from_checkpoint"]:
            self.load_checkpoint(cfg["resume_from_checkpoint"])
        if cfg["report_to"]:
            acc.init_trackers("sfd", config={k: v for k, v in cfg.items() if isinstance(v, (int, float, str, bool))})
        logger.info(f"SFD: forget {self.spec.forget_names} -> override {self.spec.describe()['override']}, "
                    f"{cfg['max_train_steps']} steps, batch {cfg['train_batch_size']} x {acc.num_processes} process(es)")
        bar = tqdm(total=cfg["max_train_steps"], initial=self.step, desc="sfd", disable=not acc.is_local_main_process)
        started = time.time()
        while self.step < cfg["max_train_steps"]:
            loss_f = self.fake_score_step()
            loss_g = self.generator_step()
            self.step += 1
            bar.update(1)
            bar.set_postfix(loss_fake=f"{loss_f:.4f}", loss_gen=f"{loss_g:.4f}")
            logs = {"loss_fake_score": loss_f, "loss_generator": loss_g, "ema_decay": self.ema.cur_decay_value}
            last = self.step == cfg["max_train_steps"]
            validating = cfg["validation_steps"] and (self.step % cfg["validation_steps"] == 0 or last)
            if validating:
                logs.update(self.run_validation(cfg["validation_samples_per_class"]))
                if acc.is_main_process:
                    self.append_log({"step": self.step, **logs})
            acc.log(logs, step=self.step)
            if cfg["checkpointing_steps"] and (self.step % cfg["checkpointing_steps"] == 0 or last):
                self.train_seconds += time.time() - started
                started = time.time()
                self.save_checkpoint()
        bar.close()
        self.train_seconds += time.time() - started
        pipe = self.export()
        acc.end_training()
        return pipe

    def ema_pipeline(self) -> OneStepClassConditionalPipeline:
        unet = UNet2DModel.from_config(self.teacher_pipe.unet.config)
        self.ema.copy_to(unet.parameters())
        scheduler = DDPMScheduler.from_config(self.scheduler_config)
        pipe = OneStepClassConditionalPipeline(unet=unet.eval(), scheduler=scheduler, id2label=self.spec.id2label,
                                               sigma_init=self.cfg["sigma_init"], forgotten=list(self.spec.forget))
        pipe.set_progress_bar_config(disable=True)
        return pipe.to(self.accelerator.device)

    @torch.no_grad()
    def measure(self, pipe, n_per_class: int, seed: int) -> tuple[dict, torch.Tensor]:
        """Classifier figures on `n_per_class` samples of every class (no FID)."""
        from .evaluate import class_metrics, classify
        from .sampling import sample_classes

        labels = torch.arange(len(self.spec.id2label)).repeat_interleave(n_per_class)
        images, _ = sample_classes(pipe, labels.tolist(), batch_size=250, seed=seed, progress=False)
        if self.judge is None:
            return {}, images
        probs, feats = classify(self.judge, images)
        return class_metrics(probs, feats, labels, self.spec, self.label_map), images

    def run_validation(self, n_per_class: int) -> dict:
        """Forget rate and remaining accuracy of the EMA generator, and a sample grid under logs/."""
        acc = self.accelerator
        metrics = {}
        if acc.is_main_process:
            from .viz import class_grid

            m, images = self.measure(self.ema_pipeline(), n_per_class, seed=10_000)
            metrics = {k: v for k, v in m.items() if k in ("forget_accuracy", "remaining_accuracy", "forget_prob_mean")}
            k = min(n_per_class, 8)
            rows = images.view(len(self.spec.id2label), n_per_class, *images.shape[1:])[:, :k].flatten(0, 1)
            grid = class_grid(rows, k, self.spec.forget, row_names=[self.spec.id2label[i] for i in sorted(self.spec.id2label)])
            (self.out / "logs").mkdir(parents=True, exist_ok=True)
            grid.save(self.out / "logs" / f"samples-{self.step:06d}.png")
            logger.info(f"step {self.step}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
        acc.wait_for_everyone()
        return metrics

    def append_log(self, record: dict) -> None:
        with open(self.out / "logs" / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    # ---- checkpoints -------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        """accelerate state + EMA (safetensors) + step, written under a temporary name and renamed."""
        acc = self.accelerator
        ckpt_dir = self.out / "checkpoints"
        final, tmp = ckpt_dir / f"checkpoint-{self.step}", ckpt_dir / f".checkpoint-{self.step}.tmp"
        if acc.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        acc.wait_for_everyone()
        acc.save_state(str(tmp))
        acc.wait_for_everyone()  # every rank has written its RNG state before the rename
        if acc.is_main_process:
            save_file({str(i): p.detach().cpu().contiguous() for i, p in enumerate(self.ema.shadow_params)},
                      str(tmp / EMA_FILE))
            state = {"step": self.step, "ema_optimization_step": self.ema.optimization_step,
                     "train_seconds": self.train_seconds}
            (tmp / "trainer_state.json").write_text(json.dumps(state))
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            write_text_atomic(ckpt_dir / "run.json", json.dumps({"spec": self.spec.describe()}))
            for old in self.list_checkpoints()[: -self.cfg["checkpoints_total_limit"]]:
                shutil.rmtree(old, ignore_errors=True)
        acc.wait_for_everyone()

    def list_checkpoints(self) -> list[Path]:
        found = [p for p in (self.out / "checkpoints").glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
        return sorted(found, key=lambda p: int(p.name.split("-")[-1]))

    def load_checkpoint(self, which: str) -> None:
        if which == "latest":
            found = self.list_checkpoints()
            if not found:
                logger.info(f"no checkpoint under {self.out / 'checkpoints'}; starting from the teacher")
                return
            path = found[-1]
        else:
            path = Path(which)
            if not (path / "trainer_state.json").exists():
                raise FileNotFoundError(f"not a complete SFD checkpoint: {path} (trainer_state.json missing)")
        self.accelerator.load_state(str(path))
        copy_checkpoint_ema(path, self.ema.shadow_params)
        state = json.loads((path / "trainer_state.json").read_text())
        self.step, self.train_seconds = state["step"], state["train_seconds"]
        self.ema.optimization_step = state["ema_optimization_step"]
        logger.info(f"resumed from {path} at step {self.step}")

    # ---- export ------------------------------------------------------------------------------
    def export(self) -> OneStepClassConditionalPipeline:
        """Write the EMA generator as a diffusers folder; model_index.json is renamed in last."""
        acc = self.accelerator
        pipe = self.ema_pipeline()
        if acc.is_main_process:
            final = {}
            if self.judge is not None and self.cfg["final_eval_samples_per_class"]:
                final, _ = self.measure(pipe, self.cfg["final_eval_samples_per_class"], seed=20_000)
            tmp = self.out / ".export.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            pipe.save_pretrained(tmp, safe_serialization=True)
            from .model_card import write_model_card

            write_model_card(tmp / "README.md", self.cfg, self.spec, self.step, self.train_seconds, final,
                             acc.num_processes)
            record = {"steps": self.step, "train_seconds": self.train_seconds, "num_processes": acc.num_processes,
                      **self.spec.describe(), "final_metrics": final}
            (tmp / "training.json").write_text(json.dumps(record, indent=1))
            (self.out / "model_index.json").unlink(missing_ok=True)
            for name in MODEL_FILES:
                target = self.out / name
                if target.is_dir():
                    shutil.rmtree(target)
                os.replace(tmp / name, target)
            os.replace(tmp / "model_index.json", self.out / "model_index.json")
            shutil.rmtree(tmp, ignore_errors=True)
            summary = ", ".join(f"{k}={final[k]:.4f}" for k in ("forget_accuracy", "remaining_accuracy") if k in final)
            acc.print(f"SFD done: {self.step} steps in {self.train_seconds / 60:.1f} min -> {self.out}"
                      + (f" ({summary})" if summary else ""))
        acc.wait_for_everyone()
        return pipe


def forget(teacher=None, forget: str | None = None, config: str | os.PathLike | None = None,
           accelerator: Accelerator | None = None, **options) -> OneStepClassConditionalPipeline:
    """Erase the classes in `forget` from a class-conditional teacher; return the one-step pipeline.

    `teacher` is a folder, a Hub id or a loaded `ClassConditionalDiffusionPipeline` (default: the
    embedded Fashion-MNIST teacher); `options` are the keys of configs/default.yaml. With an
    `output_dir` the pipeline is also saved there (with checkpoints, logs and a model card).
    """
    overrides = dict(options, forget=forget)
    if teacher is not None:
        overrides["teacher"] = teacher
    cfg = load_config(config, overrides)
    spec = validate(cfg)
    return SFDTrainer(cfg, spec, accelerator).train()

