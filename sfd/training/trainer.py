"""Score Forgetting Distillation of a diffusion teacher into a one-step generator.

    pipe = sfd.forget("assets/teacher", forget="class=trouser", output_dir="outputs/no-trouser")
    pipe = sfd.forget("assets/t2i-teacher", forget="concept=sneaker", override="sandal")

One iteration alternates (method notes, sfd-method.md):
  1. fake-score step: ψ learns, by denoising score matching, the distribution of stop-gradient
     generator samples, for remaining and forgotten conditions alike;
  2. generator step: the SiD loss between the teacher's and ψ's denoised estimates, where for a
     forgotten condition the teacher is asked for the *override* instead.
The generator, the fake score and the teacher are the same architecture (both copies start from the
teacher). What a condition is (a class id, a prompt's text embedding) is `sfd.training.conditioning`'s business;
the generator's EMA is exported as the matching one-step pipeline from `pipelines`.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.state import AcceleratorState
from accelerate.utils import set_seed
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from ..core.features import middle_features
from ..core.io import write_text_atomic
from ..core.losses import (
    edm_weight,
    fake_score_loss,
    native_weight,
    regression_loss,
    sample_sigmas,
    sid_generator_loss,
)
from ..core.precision import describe_machine
from ..core.spec import override_text
from ..pipelines.standalone import MODULE_NAME
from ..pipelines.text_to_image import TEXT_COMPONENTS
from .conditioning import Conditions, teacher_sigma_range
from .config import TrainingConfig
from .contrastive import contrastive_loss, teacher_features
from .hub import push_to_hub
from .model_card import SAMPLES_FILE, save_sample_grid, teacher_name, write_model_card
from .override_choice import sigma_grid
from .regression import PairBank
from .stable_diffusion_view import VIEW_FOLDER, stable_diffusion_support, write_stable_diffusion_view

logger = get_logger(__name__)
MODEL_FILES = (
    "unet",
    "transformer",
    "scheduler",
    "text_encoder",
    "tokenizer",
    *TEXT_COMPONENTS,
    "vae",
    "README.md",
    "training.json",
    SAMPLES_FILE,
    f"{MODULE_NAME}.py",
    VIEW_FOLDER,
)  # written before model_index.json, which marks completeness


EMA_FILE = "ema.safetensors"  # in a checkpoint: the generator's EMA, tensor "i" = i-th network parameter


def copy_checkpoint_ema(checkpoint_dir: str | os.PathLike, parameters) -> None:
    """Copy a checkpoint's EMA generator weights into `parameters` (UNet parameter order)."""
    ema = load_file(str(Path(checkpoint_dir) / EMA_FILE))
    with torch.no_grad():
        for i, p in enumerate(parameters):
            p.copy_(ema[str(i)].to(p.device))


def make_accelerator(cfg: TrainingConfig) -> Accelerator:
    """accelerate picks up `torchrun` / `accelerate launch` on GPUs by itself; on a machine without
    one it must be told to use the CPU backend (gloo) for the processes to form a group."""
    multi_process = int(os.environ.get("WORLD_SIZE", "1")) > 1
    cpu_only = not (torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available()))
    shared = AcceleratorState._shared_state
    if shared and not multi_process and shared.get("_mixed_precision") != cfg.mixed_precision:
        # accelerate keeps one process-wide state; a notebook (or test) process that trained before with another
        # precision would be refused. One process, nothing shared with other ranks: start the state afresh.
        AcceleratorState._reset_state()
    accelerator = Accelerator(
        mixed_precision=cfg.mixed_precision,
        log_with=cfg.report_to,
        project_dir=cfg.output_dir,
        cpu=multi_process and cpu_only,
    )
    launched_by_accelerate = any(k.startswith("ACCELERATE_") for k in os.environ)
    if accelerator.device.type == "cpu" and launched_by_accelerate and torch.get_num_threads() == 1:
        # `accelerate launch` pins OMP_NUM_THREADS=1 on CPU; share the cores among the processes instead
        # (a user's own OMP_NUM_THREADS outside accelerate launch is respected)
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // accelerator.num_processes))
    return accelerator


def _weight_dtype(mixed_precision: str) -> torch.dtype:
    """Frozen networks (teacher, text encoder, VAE) are kept in the mixed-precision dtype, as diffusers' scripts do."""
    return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(mixed_precision, torch.float32)


def _lr_schedule(optimizer, cfg: TrainingConfig, updates_per_step: int, num_processes: int):
    """diffusers' learning-rate schedule over the run's updates of one optimiser. accelerate's wrapper steps it once
    per process at each update (as diffusers' training scripts assume), hence the counts × num_processes."""
    per_step = updates_per_step * num_processes
    return get_scheduler(
        cfg.lr_scheduler,
        optimizer,
        num_warmup_steps=cfg.lr_warmup_steps * per_step,
        num_training_steps=cfg.max_train_steps * per_step,
    )


def _adam(parameters, lr: float, cfg: TrainingConfig):
    adam = dict(lr=lr, betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_epsilon)
    if cfg.use_8bit_adam:
        import bitsandbytes as bnb

        return bnb.optim.Adam8bit(parameters, **adam)
    return torch.optim.Adam(parameters, **adam)


class NoEMA:
    """Stands in for `EMAModel` when `use_ema` is off (saves a copy of the generator's weights on large
    models): the "average" is the live generator."""

    cur_decay_value = 0.0

    def __init__(self, parameters):
        self.shadow_params = list(parameters)
        self.optimization_step = 0

    def step(self, parameters) -> None:
        self.optimization_step += 1

    def copy_to(self, parameters) -> None:
        with torch.no_grad():
            for target, source in zip(parameters, self.shadow_params):
                target.copy_(source.detach().to(target.device))

    def to(self, device):
        return self


class SFDTrainer:
    """Holds the three networks, their optimisers and the loop; `train()` returns the one-step pipeline."""

    def __init__(self, cfg: TrainingConfig, task, accelerator: Accelerator | None = None):
        self.cfg, self.task, self.spec = cfg, task, task.spec
        self.accelerator = accelerator or make_accelerator(cfg)
        acc = self.accelerator
        set_seed(cfg.seed, device_specific=True)
        weight_dtype = _weight_dtype(cfg.mixed_precision)
        task.load(cfg.teacher, acc.device, weight_dtype)
        teacher_unet = task.unet.to(acc.device).requires_grad_(False).eval()
        lo, hi = teacher_sigma_range(task.pipe)
        self.sigma_min, self.sigma_max = max(cfg.sigma_min, lo), min(cfg.sigma_max, hi)
        started = time.time()
        later_folds = [name for fold in cfg.layer_folds or [] for name in fold]  # layered: forgotten later
        task.resolve_override(acc, self.sigma_min, self.sigma_max, cfg.seed, later_folds)  # `--override auto`
        choice_seconds = time.time() - started  # counted as training, like the regression pairs
        self.spec = task.spec
        gen_unet = copy.deepcopy(teacher_unet).float().requires_grad_(True).train()
        if cfg.init_generator:  # two-stage SFD: start G from an already distilled one-step generator
            stage1 = type(teacher_unet).from_pretrained(cfg.init_generator, subfolder=task.pipe.network_component)
            gen_unet.load_state_dict(stage1.state_dict())
        fake_unet = copy.deepcopy(teacher_unet).float().requires_grad_(True).train()
        if weight_dtype != torch.float32:
            teacher_unet.to(weight_dtype)
        if cfg.gradient_checkpointing:
            gen_unet.enable_gradient_checkpointing()
            fake_unet.enable_gradient_checkpointing()

        opt_g = _adam(gen_unet.parameters(), cfg.learning_rate_generator, cfg)
        opt_f = _adam(fake_unet.parameters(), cfg.learning_rate_fake_score, cfg)
        sched_g = _lr_schedule(opt_g, cfg, 1, acc.num_processes)
        sched_f = _lr_schedule(opt_f, cfg, cfg.fake_score_updates, acc.num_processes)
        (self.gen_unet, self.fake_unet, self.opt_g, self.opt_f, self.sched_g, self.sched_f) = acc.prepare(
            gen_unet, fake_unet, opt_g, opt_f, sched_g, sched_f
        )
        gen_params = acc.unwrap_model(self.gen_unet).parameters()
        self.ema = (
            EMAModel(gen_params, decay=cfg.ema_decay, use_ema_warmup=True, inv_gamma=1.0, power=cfg.ema_power)
            if cfg.use_ema
            else NoEMA(gen_params)
        )
        self.ema.to(acc.device)

        fake_guidance = cfg.fake_score_guidance_scale
        if fake_guidance is None:
            fake_guidance = task.fake_guidance_default or cfg.guidance_scale
        self.fake_guidance = cfg.fake_score_guidance_scale = fake_guidance  # recorded resolved in the model card
        dn = lambda unet, g=1.0: task.denoiser(unet, g, cfg.guidance_interval).to(acc.device)  # noqa: E731
        self.teacher = dn(teacher_unet, cfg.guidance_scale)
        self.teacher_plain = dn(teacher_unet)  # unguided: the contrastive term's features
        # "_ddp" denoisers go through the accelerate-wrapped module (gradient sync); "_local" ones do not.
        self.gen_ddp, self.gen_local = dn(self.gen_unet), dn(acc.unwrap_model(self.gen_unet))
        self.fake_ddp = dn(self.fake_unet, fake_guidance)
        self.fake_local = dn(acc.unwrap_model(self.fake_unet), fake_guidance)
        self.sample_shape = task.sample_shape()
        self.out = Path(cfg.output_dir)
        self.step, self.train_seconds = 0, choice_seconds
        self.judge = task.load_judge(cfg)
        self.pairs = self.build_pairs() if cfg.regression_weight > 0 else None

    def build_pairs(self) -> PairBank:
        """The teacher's ODE answers for this process's share of the regression pairs; the time counts as training."""
        started, cfg = time.time(), self.cfg
        steps = cfg.regression_steps or getattr(self.task.pipe.config, "default_num_inference_steps", 25)
        n = -(-cfg.regression_pairs // self.accelerator.num_processes)
        pairs = PairBank.build(self, n, steps, progress=self.accelerator.is_local_main_process)
        self.train_seconds += time.time() - started
        logger.info(f"{n} teacher pairs ({steps} DPM-Solver++ steps) in {time.time() - started:.0f} s")
        return pairs

    # ---- one SFD iteration -------------------------------------------------------------------
    def draw_batch(
        self, dropout: float = 0.0
    ) -> tuple[Conditions, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Conditions c, generator noise z, training σ, diffusion noise ε and per-sample weights λ."""
        dev, n = self.accelerator.device, self.cfg.train_batch_size
        conds = self.task.draw(n, self.cfg.forget_fraction, dropout, dev)
        z = torch.randn(n, *self.sample_shape, device=dev)
        sigma = sample_sigmas(n, self.sigma_min, self.sigma_max, self.cfg.sigma_rho, self.cfg.sigma_u_max)
        sigma = sigma.to(dev).view(-1, *([1] * len(self.sample_shape)))
        weights = torch.where(conds.forgotten, self.cfg.forget_weight, self.cfg.remain_weight)
        return conds, z, sigma, torch.randn_like(z), weights

    def generate(self, denoiser, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """G_θ(z, c) = D_θ(σ_init·z, σ_init, c)."""
        s = self.cfg.sigma_init
        return denoiser(s * z, s, cond)

    def fake_score_step(self) -> float:
        acc = self.accelerator
        # condition dropout trains ψ's unconditional branch, needed when ψ itself is guided
        dropout = self.cfg.condition_dropout if self.fake_guidance != 1.0 else 0.0
        conds, z, sigma, eps, weights = self.draw_batch(dropout)
        drawn_for = conds.fake if self.cfg.dropout_before_generator else conds.student
        with torch.no_grad(), acc.autocast():
            x_g = self.generate(self.gen_local, z, drawn_for).float()
        with acc.autocast():
            y_fake = self.fake_ddp(x_g + sigma * eps, sigma, conds.fake, uncond=conds.fake_uncond)
        lam = native_weight(sigma, self.fake_local) if self.cfg.fake_score_weighting == "native" else edm_weight(sigma)
        loss = fake_score_loss(y_fake.float(), x_g, lam, weights)
        acc.backward(loss)
        acc.clip_grad_value_(self.fake_unet.parameters(), self.cfg.max_grad_value)
        self.opt_f.step()
        self.sched_f.step()
        self.opt_f.zero_grad(set_to_none=True)
        return loss.detach().item()

    def generator_step(self) -> float:
        acc = self.accelerator
        conds, z, sigma, eps, weights = self.draw_batch()
        n, z_all, c_all = len(z), z, conds.student
        if self.pairs is not None:  # the regression pairs ride in the same generator pass (one forward per backward)
            z_ref, c_ref, w_ref, x_ref = self.pairs.sample(self.cfg.regression_batch_size)
            z_all, c_all = torch.cat([z, z_ref]), torch.cat([conds.student, c_ref])
        self.fake_local.unet.requires_grad_(False)
        contrast = self.cfg.contrastive_weight > 0 and bool(conds.forgotten.any())
        try:
            features = middle_features(acc.unwrap_model(self.gen_unet)) if contrast else nullcontext([])
            with acc.autocast(), features as gen_features:
                x_all = self.generate(self.gen_ddp, z_all, c_all)
                x_g = x_all[:n]
                x_t = x_g + sigma * eps
                y_real = self.teacher(
                    x_t, sigma, conds.teacher, uncond=conds.uncond
                )  # the override for forgotten rows
                y_fake = self.fake_local(x_t, sigma, conds.student, uncond=conds.uncond)
            loss = sid_generator_loss(y_real.float(), y_fake.float(), x_g.float(), self.cfg.alpha, weights)
            if self.pairs is not None:  # L_SiD + λ_reg·L_reg
                loss = loss + self.cfg.regression_weight * regression_loss(x_all[n:].float(), x_ref, w_ref)
            if contrast:  # + λ_con·L_con on the forgotten rows
                loss = loss + self.cfg.contrastive_weight * self.contrastive_term(gen_features[0][:n], z, conds)
            acc.backward(loss)
        finally:
            self.fake_local.unet.requires_grad_(True)
        acc.clip_grad_value_(self.gen_unet.parameters(), self.cfg.max_grad_value)
        self.opt_g.step()
        self.sched_g.step()
        self.opt_g.zero_grad(set_to_none=True)
        self.ema.step(acc.unwrap_model(self.gen_unet).parameters())
        return loss.detach().item()

    def contrastive_term(self, gen_features: torch.Tensor, z: torch.Tensor, conds: Conditions) -> torch.Tensor:
        """L_con (sfd.training.contrastive) of the forgotten rows: the generator's features against the unguided
        teacher's under the override (pulled towards) and under the forgotten condition (pushed from)."""
        f, s, network = conds.forgotten, self.cfg.sigma_init, self.task.unet
        with self.accelerator.autocast():
            p = teacher_features(self.teacher_plain, network, s * z[f], s, conds.teacher[f])
            n = teacher_features(self.teacher_plain, network, s * z[f], s, conds.student[f])
        return contrastive_loss(gen_features[f], p, n, self.cfg.contrastive_temperature)

    # ---- the loop ----------------------------------------------------------------------------
    def train(self):
        acc, cfg = self.accelerator, self.cfg
        if cfg.overwrite_output_dir and not cfg.resume_from_checkpoint and acc.is_main_process:
            for name in ("model_index.json", "checkpoints", "logs", *MODEL_FILES):
                target = self.out / name
                shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
        acc.wait_for_everyone()
        if cfg.resume_from_checkpoint:
            self.load_checkpoint(cfg.resume_from_checkpoint)
        if cfg.report_to:
            acc.init_trackers(
                "sfd", config={k: v for k, v in cfg.to_dict().items() if isinstance(v, (int, float, str, bool))}
            )
        desc = self.spec.describe()
        logger.info(
            f"SFD: forget {desc['forget']} -> override {override_text(desc)}, "
            f"{cfg.max_train_steps} steps, batch {cfg.train_batch_size} x {acc.num_processes} process(es)"
        )
        bar = tqdm(total=cfg.max_train_steps, initial=self.step, desc="sfd", disable=not acc.is_local_main_process)
        started = time.time()
        while self.step < cfg.max_train_steps:
            for _ in range(cfg.fake_score_updates):  # ψ tracks G on a faster time scale (DMD2's TTUR)
                loss_f = self.fake_score_step()
            loss_g = self.generator_step()
            self.step += 1
            bar.update(1)
            bar.set_postfix(loss_fake=f"{loss_f:.4f}", loss_gen=f"{loss_g:.4f}")
            logs = {"loss_fake_score": loss_f, "loss_generator": loss_g, "ema_decay": self.ema.cur_decay_value}
            last = self.step == cfg.max_train_steps
            validating = cfg.validation_steps and (self.step % cfg.validation_steps == 0 or last)
            if validating:
                logs.update(self.run_validation(cfg.validation_samples_per_class))
                if acc.is_main_process:
                    self.append_log({"step": self.step, **logs})
            acc.log(logs, step=self.step)
            if cfg.checkpointing_steps and (self.step % cfg.checkpointing_steps == 0 or last):
                self.train_seconds += time.time() - started
                started = time.time()
                self.save_checkpoint()
        bar.close()
        self.train_seconds += time.time() - started
        pipe = self.export()
        acc.end_training()
        return pipe

    def ema_pipeline(self):
        unet = type(self.task.unet).from_config(self.task.unet.config)
        self.ema.copy_to(unet.parameters())
        pipe = self.task.one_step_pipeline(unet, self.cfg.sigma_init)
        pipe.set_progress_bar_config(disable=True)
        return pipe.to(self.accelerator.device)

    @torch.no_grad()
    def denoising_errors(self, levels: int = 4) -> dict:
        """ψ's and the teacher's denoising error E‖D(x_g + σε, σ, c) − x_g‖² on fresh generator samples of remaining
        conditions, at `levels` σ spread geometrically over the training range: ψ tracks the generator where its
        error is below the teacher's."""
        conds, z, _, eps, _ = self.draw_batch()
        keep = ~conds.forgotten
        if not keep.any():
            return {}
        pick = lambda t: None if t is None else t[keep]  # noqa: E731
        c, c_teacher, uncond, z, eps = pick(conds.student), pick(conds.teacher), pick(conds.uncond), z[keep], eps[keep]
        with self.accelerator.autocast():
            x_g = self.generate(self.gen_local, z, c).float()
            out = {}
            for sigma in sigma_grid(self.sigma_min, self.sigma_max, levels):
                x_t = x_g + sigma * eps
                for name, net, cond in (("psi", self.fake_local, c), ("teacher", self.teacher, c_teacher)):
                    error = (net(x_t, sigma, cond, uncond=uncond).float() - x_g).pow(2).mean()
                    out[f"{name}_error_sigma_{sigma:.3g}"] = error.item()
        return out

    def run_validation(self, n_per_condition: int) -> dict:
        """Forget rate (and fidelity) of the EMA generator, ψ's tracking of the generator, and a sample grid under
        logs/."""
        acc = self.accelerator
        metrics = {}
        if acc.is_main_process:
            # on a random stream of its own: how often a run validates does not change what it trains
            with torch.random.fork_rng(devices=[acc.device] if acc.device.type == "cuda" else []):
                torch.manual_seed(self.cfg.seed + self.step)
                m, grid = self.task.measure(self.ema_pipeline(), self.judge, n_per_condition, seed=10_000)
                metrics = {k: v for k, v in m.items() if k in self.task.validation_keys}
                metrics.update(self.denoising_errors())
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
            save_file(
                {str(i): p.detach().cpu().contiguous() for i, p in enumerate(self.ema.shadow_params)},
                str(tmp / EMA_FILE),
            )
            state = {
                "step": self.step,
                "ema_optimization_step": self.ema.optimization_step,
                "train_seconds": self.train_seconds,
            }
            (tmp / "trainer_state.json").write_text(json.dumps(state))
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            # the spec guards resuming; the options let tools rebuild a checkpoint's generator (e.g. its sigma_init)
            state = {"spec": self.spec.describe(), "request": self.spec.request(), "config": self.cfg.to_dict()}
            write_text_atomic(ckpt_dir / "run.json", json.dumps(state, default=str, indent=1))
            for old in self.list_checkpoints()[: -self.cfg.checkpoints_total_limit]:
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
    def export(self):
        """Write the EMA generator as a diffusers folder; model_index.json is renamed in last."""
        acc = self.accelerator
        pipe = self.ema_pipeline()
        if acc.is_main_process:
            final = {}
            if self.judge is not None and self.cfg.final_eval_samples_per_class:
                final, _ = self.task.measure(pipe, self.judge, self.cfg.final_eval_samples_per_class, seed=20_000)
                self.task.warn_if_not_forgotten(final)
            tmp = self.out / ".export.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            pipe.to(torch.float32)  # the frozen text encoder / VAE were kept in the mixed-precision dtype
            pipe.save_pretrained(tmp, safe_serialization=True)
            save_sample_grid(pipe, self.task, tmp / SAMPLES_FILE)
            if self.cfg.stable_diffusion_view and stable_diffusion_support(pipe) is None:
                write_stable_diffusion_view(pipe, tmp, single_file=self.cfg.unet_single_file)
            write_model_card(
                tmp / "README.md", self.cfg, self.task, self.step, self.train_seconds, final, acc.num_processes
            )
            teacher = teacher_name(self.cfg.teacher)
            record = {
                "teacher": teacher,
                "steps": self.step,
                "train_seconds": self.train_seconds,
                "num_processes": acc.num_processes,
                "machine": describe_machine(),
                "mixed_precision": self.cfg.mixed_precision,
                **self.spec.describe(),
                **({"forget_image": self.task.forget_image} if self.task.forget_image else {}),
                "config": self.cfg.to_dict() | {"teacher": teacher},
                "final_metrics": final,
            }
            (tmp / "training.json").write_text(json.dumps(record, indent=1, default=str))
            (self.out / "model_index.json").unlink(missing_ok=True)
            for name in MODEL_FILES:
                target = self.out / name
                if target.is_dir():
                    shutil.rmtree(target)
                if (tmp / name).exists():
                    os.replace(tmp / name, target)
            os.replace(tmp / "model_index.json", self.out / "model_index.json")
            shutil.rmtree(tmp, ignore_errors=True)
            if self.cfg.push_to_hub:  # the folder is complete: model_index.json is in place
                forgotten = ", ".join(self.spec.describe()["forget"]) or "nothing"
                push_to_hub(self.cfg, self.out, commit_message=f"SFD, {self.step} steps: {forgotten} forgotten")
            summary = ", ".join(f"{k}={final[k]:.4f}" for k in self.task.validation_keys if k in final)
            acc.print(
                f"SFD done: {self.step} steps in {self.train_seconds / 60:.1f} min -> {self.out}"
                + (f" ({summary})" if summary else "")
            )
        acc.wait_for_everyone()
        return pipe
