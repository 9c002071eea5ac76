"""Training options: one typed record (`TrainingConfig`) that holds each option's default, help text and checks.

The command line (`sfd-train`), `configs/default.yaml` and the README's option table are all made from it
(`cli_arguments`, `default_yaml`, `options_table`; tests prove the committed files agree). A run's options
are the defaults, then an optional user YAML, then explicit overrides (`load_config`).

    python -m sfd.training.config --write     # regenerate configs/default.yaml, docs/options.md and the README table
"""

from __future__ import annotations

import argparse
import os
import textwrap
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from ..core.paths import CONFIGS, DEFAULT_CLASSIFIER, DEFAULT_CLIP, DEFAULT_TEACHER, PROJECT_ROOT, display_path
from ..core.precision import CHOICES as PRECISIONS


class TrainingSetupError(ValueError):
    """Bad input found before any model is loaded; the message says what to do."""


class ConfigError(TrainingSetupError):
    """An option that cannot be used (unknown key, wrong type, out of range); the message says what to do."""


# ---- checks, one per kind of value ------------------------------------------------------------
def positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def non_negative_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")


def optional_positive_int(name: str, value) -> None:
    if value is not None:
        positive_int(name, value)


def non_negative(name: str, value) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
        raise ConfigError(f"{name} must be >= 0, got {value!r}")


def positive(name: str, value) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise ConfigError(f"{name} must be > 0, got {value!r}")


def open_fraction_or_null(name: str, value) -> None:
    if value is not None and not (isinstance(value, (int, float)) and 0 < value < 1):
        raise ConfigError(f"{name} must be in (0, 1) or null, got {value!r}")


def fraction(name: str, value) -> None:
    if not (isinstance(value, (int, float)) and 0 <= value <= 1):
        raise ConfigError(f"{name} must be in [0, 1], got {value!r}")


def one_of(*choices: str) -> Callable[[str, Any], None]:
    def check(name: str, value) -> None:
        if value not in choices:
            raise ConfigError(f"{name} must be one of {list(choices)}, got {value!r}")

    return check


def hub_repo_id_or_null(name: str, value) -> None:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        if value is not None:
            validate_repo_id(value)
    except HFValidationError as err:
        raise ConfigError(
            f"{name} must be a Hub repository id, name or namespace/name (letters, digits, '-', '_', '.'), got {value!r}"
        ) from err


def lr_schedule(name: str, value) -> None:
    from diffusers.optimization import SchedulerType

    valid = [s.value for s in SchedulerType if s.value != "piecewise_constant"]  # that one needs more than a count
    if value not in valid:
        raise ConfigError(f"unknown {name} {value!r}; choose one of {valid}")


def option(
    default,
    help: str,
    check: Callable[[str, Any], None] | None = None,
    kind: type | None = None,
    group: str = "training",
    internal: bool = False,
):
    """A field of `TrainingConfig`: its default, the help the CLI and the README show, the check it must pass and
    the type a command-line or YAML value is read as (`kind`, when the default does not tell)."""
    return field(
        default=default, metadata={"help": help, "check": check, "kind": kind, "group": group, "internal": internal}
    )


@dataclass
class TrainingConfig:
    """Every option of an SFD run (`sfd-train`, `sfd.forget()`, `sfd.distill()`)."""

    # one option per statement, kept as written (the formatter would spread each over lines)
    # fmt: off
    # ---- what to erase ----
    teacher: Any = option(str(DEFAULT_TEACHER), "class-conditional, or SD 1.x / 2.x-, SDXL- or SD3-layout "
                          "pipeline: a folder, a Hub id or a loaded pipeline", kind=str, group="what to erase")
    forget: str | None = option(None, 'required: "class=NAME[,NAME…]" (names or ids from id2label), '
                                '"image=PATH[,PATH…]" (the class the teacher sees in the image), or '
                                '"concept=PHRASE[,…]" and/or "prompts=FILE" joined by ";" (text-to-image)',
                                kind=str, group="what to erase")
    override: str | None = option("auto", 'what the teacher draws instead. Class teachers: "auto" (the remaining '
                                  'class the teacher finds least like the forgotten ones), "far" (a random class '
                                  'per sample among the farther half), "random", "class=NAME" or "class=A,B" '
                                  '(random among them). Text: "PHRASE" replacing the concept ("" deletes it) or '
                                  '"rules=FILE" (`old -> new` lines)', kind=str, group="what to erase")
    remain_prompts: str | None = option(None, "text: remaining prompts, one per line (null: the teacher's "
                                        "prompts.txt, else configs/prompts/remain-general.txt)", kind=str,
                                        group="what to erase")
    negative_concepts: str | None = option(None, "text: file of words joined into the teacher's negative prompt on "
                                           "forget prompts", kind=str, group="what to erase")
    negative_forget_class: bool = option(False, "class teachers: on forgotten rows the teacher's CFG is taken against "
                                         "the forgotten class instead of the null class", group="what to erase")
    output_dir: str | None = option(None, "where the one-step pipeline, checkpoints and logs go (null: "
                                    "outputs/forget-<names>)", kind=str, group="what to erase")
    overwrite_output_dir: bool = option(False, "replace a run already in output_dir", group="what to erase")

    # ---- budget and optimisers ----
    max_train_steps: int = option(450, "SFD iterations (fake_score_updates ψ updates, then one generator update)",
                                  positive_int)
    train_batch_size: int = option(32, "samples per process per update", positive_int)
    forget_fraction: float | None = option(0.25, "share of each batch drawn from forgotten classes (null: uniform "
                                           "over classes)", open_fraction_or_null, kind=float)
    learning_rate_generator: float = option(5.0e-5, "Adam learning rate of the generator G_θ", positive)
    learning_rate_fake_score: float = option(1.0e-4, "Adam learning rate of the fake score f_ψ (ψ faster than G)",
                                             positive)
    fake_score_updates: int = option(2, "ψ updates per generator update (two time-scale rule)", positive_int)
    lr_scheduler: str = option("constant", "diffusers' learning-rate schedule of both networks (constant, linear, "
                               "cosine, …)", lr_schedule)
    lr_warmup_steps: int = option(0, "iterations of linear learning-rate warm-up", non_negative_int)
    adam_beta1: float = option(0.9, "Adam's momentum, both networks (the SiD / SFD reference code uses 0)", fraction)
    adam_beta2: float = option(0.999, "Adam's second-moment decay, both networks", fraction)
    adam_epsilon: float = option(1.0e-8, "Adam's ε", positive)
    max_grad_value: float = option(1.0, "gradient value clipping, as in the SiD / SFD reference code", positive)
    use_8bit_adam: bool = option(False, "bitsandbytes' 8-bit Adam for both networks (CUDA only)")
    gradient_checkpointing: bool = option(False, "generator and fake score trade compute for memory (large UNets)")
    mixed_precision: str = option("auto", "auto | no | fp16 | bf16 (auto: bf16 where the device computes it "
                                  "natively, else fp32)", one_of(*PRECISIONS))
    seed: int = option(0, "random seed", non_negative_int)

    # ---- the SFD / SiD objective ----
    alpha: float = option(1.0, "SiD's α in the generator loss", non_negative, group="objective")
    sigma_init: float = option(2.5, "generator input noise level: G(z, c) = D(σ_init·z, σ_init, c)", positive,
                               group="objective")
    sigma_min: float = option(0.14, "lowest training σ (clamped to the teacher's range)", group="objective")
    sigma_max: float = option(13.0, "highest training σ (clamped to the teacher's range)", group="objective")
    sigma_rho: float = option(7.0, "ρ of the training σ schedule: σ = (σ_max^(1/ρ) + (1−u)(σ_min^(1/ρ) − "
                              "σ_max^(1/ρ)))^ρ", positive, group="objective")
    sigma_u_max: float = option(1.0, "u ~ U(0, u_max) in the σ schedule (0 < u_max ≤ 1)", group="objective")
    remain_weight: float = option(1.0, "λ_r, weight of the remaining conditions' SiD term", non_negative,
                                  group="objective")
    forget_weight: float = option(1.0, "λ_f, weight of the forgetting term", non_negative, group="objective")
    contrastive_weight: float = option(0.0, "λ_con, weight of the optional contrastive term on the generator's "
                                       "middle-block features of forgotten rows (towards the teacher's for the "
                                       "override, away from its own for the forgotten condition; 0: off)",
                                       non_negative, group="objective")
    contrastive_temperature: float = option(0.1, "τ of the contrastive term", positive, group="objective")
    guidance_scale: float | None = option(None, "classifier-free guidance inside the teacher (null: the teacher "
                                          "pipeline's default)", kind=float, group="objective")
    fake_score_guidance_scale: float | None = option(None, "classifier-free guidance inside the fake score (null: 1 "
                                                     "for class teachers, guidance_scale for text)", kind=float,
                                                     group="objective")
    fake_score_weighting: str = option("edm", "ψ's loss weight over σ: edm (λ(σ) = (σ² + σ_d²)/(σ·σ_d)² on x̂₀) or "
                                       "native (the plain ε-, v- or x₀-MSE of the teacher's parameterisation)",
                                       one_of("edm", "native"), group="objective")
    guidance_interval: list | None = option(None, "[σ_lo, σ_hi]: classifier-free guidance (teacher and fake score) "
                                            "only for training σ in this interval, none outside (null: every σ)",
                                            kind=list, group="objective")
    dropout_before_generator: bool = option(False, "a condition dropped for ψ is dropped before the generator too, "
                                            "so ψ's unconditional branch learns G(z, null) rather than G(z, c)",
                                            group="objective")
    condition_dropout: float = option(0.1, "share of the fake score's conditions dropped to null / \"\" (only when "
                                      "it is guided)", fraction, group="objective")
    regression_weight: float = option(0.0, "λ_reg: pull G towards the teacher's own ODE sample from the same noise "
                                      "(0: off)", non_negative, group="objective")
    regression_pairs: int = option(512, "teacher (noise, sample) pairs made before training", positive_int,
                                   group="objective")
    regression_steps: int | None = option(None, "DPM-Solver++ steps per pair (null: the teacher's default sampler "
                                          "steps)", optional_positive_int, kind=int, group="objective")
    regression_batch_size: int = option(8, "regression pairs per generator update", positive_int, group="objective")
    layers: int = option(1, "layered erasure: k folds of the forgotten classes erased in k stages (budget split)",
                         positive_int, group="objective")
    init_generator: str | None = option(None, "two-stage SFD: a one-step pipeline folder (e.g. from sfd.distill) "
                                        "to start G from", kind=str, group="objective")

    # ---- export ----
    use_ema: bool = option(True, "export an EMA of the generator (false: the generator itself)", group="export")
    ema_decay: float = option(0.999, "largest EMA decay, warmed up as 1 − (1 + step)^(−ema_power)", fraction,
                              group="export")
    ema_power: float = option(0.6667, "power of the EMA warm-up", positive, group="export")
    stable_diffusion_view: bool = option(True, "text-to-image teachers with a VAE: also write stable-diffusion/, a stock "
                                         "StableDiffusionPipeline that draws the same images with 1 step, guidance 0",
                                         group="export")
    unet_single_file: bool = option(False, "with the stable-diffusion/ view, also write the UNet as one .safetensors "
                                    "file for single-file loaders", group="export")
    license: str | None = option(None, "the model card's license, a Hub license id such as apache-2.0 (null: the "
                                 "teacher card's, as a distilled model inherits its terms; other if it names none)",
                                 kind=str, group="export")
    push_to_hub: bool = option(False, "upload the exported folder (not its checkpoints or logs) to the Hugging Face "
                               "Hub at the end", group="export")
    hub_model_id: str | None = option(None, "the Hub repository, namespace/name (null: the output folder's name "
                                      "under the token's account)", hub_repo_id_or_null, kind=str, group="export")
    hub_token: str | None = option(None, "Hub token of the upload (null: the one `hf auth login` saved, or HF_TOKEN); "
                                   "never written to run.json or a tracker", kind=str, group="export")
    hub_private_repo: bool = option(False, "create the Hub repository private", group="export")

    # ---- checkpoints, validation, logging ----
    checkpointing_steps: int = option(100, "save a resumable checkpoint every N steps (0: never)", non_negative_int,
                                      group="checkpoints and validation")
    checkpoints_total_limit: int = option(2, "checkpoints kept", positive_int, group="checkpoints and validation")
    resume_from_checkpoint: str | None = option(None, 'a checkpoint folder or "latest"', kind=str,
                                                group="checkpoints and validation")
    validation_steps: int = option(100, "measure the forget rate and save a sample grid every N steps (0: never)",
                                   non_negative_int, group="checkpoints and validation")
    validation_samples_per_class: int = option(50, "samples per class (or prompt) at each validation", positive_int,
                                               group="checkpoints and validation")
    final_eval_samples_per_class: int = option(100, "samples per class of the final check in the model card (0 "
                                               "skips it)", non_negative_int, group="checkpoints and validation")
    classifier: str | None = option(str(DEFAULT_CLASSIFIER), "class teachers: transformers image classifier judging "
                                    "validation and the model card (null skips)", kind=str,
                                    group="checkpoints and validation")
    clip: str | None = option(str(DEFAULT_CLIP), "text teachers: CLIP judge of validation and the model card "
                              "(null skips)", kind=str, group="checkpoints and validation")
    report_to: str | None = option(None, "an accelerate tracker (tensorboard, wandb, …) besides logs/metrics.jsonl",
                                   kind=str, group="checkpoints and validation")

    # ---- set by a layered erasure for its stages, not by users ----
    layer_folds: list | None = option(None, "the folds of a layered erasure", kind=list, internal=True)
    layer_stage: int | None = option(None, "the stage of a layered erasure", kind=int, internal=True)
    # fmt: on

    def check(self) -> "TrainingConfig":
        """Every option's own check, then the checks across options; returns self."""
        for f in fields(self):
            if f.metadata["check"] is not None:
                f.metadata["check"](f.name, getattr(self, f.name))
        if not 0 < self.sigma_min < self.sigma_max or not 0 < self.sigma_u_max <= 1:
            raise ConfigError(
                f"the training σ range needs 0 < sigma_min < sigma_max and 0 < sigma_u_max <= 1, got "
                f"{self.sigma_min}, {self.sigma_max}, {self.sigma_u_max}"
            )
        g = self.guidance_interval
        if g is not None and not (
            isinstance(g, (list, tuple))
            and len(g) == 2
            and all(isinstance(v, (int, float)) for v in g)
            and 0 <= g[0] < g[1]
        ):
            raise ConfigError(f"guidance_interval must be [σ_lo, σ_hi] with 0 <= σ_lo < σ_hi, or null; got {g!r}")
        return self

    def to_dict(self) -> dict:
        """The options by name (values as they are: a loaded teacher pipeline stays an object), secrets left out: what
        run.json, training.json and trackers record."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in SECRETS}

    def replace(self, **changes) -> "TrainingConfig":
        return replace(self, **changes)


SECRETS = ("hub_token",)  # options never recorded (to_dict leaves them out)

# the options the README's table shows; docs/options.md lists every one
README_OPTIONS = (
    "teacher",
    "forget",
    "override",
    "output_dir",
    "max_train_steps",
    "train_batch_size",
    "learning_rate_generator",
    "learning_rate_fake_score",
    "fake_score_updates",
    "sigma_init",
    "guidance_scale",
    "layers",
    "init_generator",
    "mixed_precision",
    "seed",
    "resume_from_checkpoint",
    "validation_steps",
    "classifier",
)


def public_fields():
    return [f for f in fields(TrainingConfig) if not f.metadata["internal"]]


def _kind(f) -> type:
    if f.metadata["kind"] is not None:
        return f.metadata["kind"]
    return type(f.default)


def coerce(f, value):
    """A YAML or command-line value as the option's type ("null" / "none" unset an optional one)."""
    if isinstance(value, str) and value.strip().lower() in ("null", "none") and "None" in str(f.type):
        return None
    kind = _kind(f)
    if value is None or kind is str or type(value) is kind:
        return value
    try:
        if kind is float and not isinstance(value, bool):
            return float(value)  # an int, or a string such as YAML's 1e-4 (no dot)
        if kind is int and isinstance(value, str) and value.lstrip("-").isdigit():
            return int(value)
        if kind is bool and isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if kind is list and isinstance(value, (str, tuple)):  # a flag's "0.5,3" or "[0.5, 3]", or a tuple
            return list(yaml.safe_load(f"[{value.strip().strip('[]')}]") if isinstance(value, str) else value)
    except (TypeError, ValueError):
        pass
    words = {int: "an integer", float: "a number", bool: "true or false", list: "a list"}
    raise ConfigError(f"{f.name} must be {words.get(kind, kind.__name__)}, got {value!r}")


def read_yaml(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of option: value")
    return data


def load_config(
    user_config: str | os.PathLike | None = None, overrides: Mapping[str, Any] | None = None
) -> TrainingConfig:
    """Defaults ← user YAML ← overrides (an override of None sets the option to null), checked.

    Args:
        user_config: a YAML file of `option: value` (the keys of `configs/default.yaml`).
        overrides: options that win over both, e.g. parsed command-line flags or `sfd.forget()` keywords.

    Returns:
        The checked `TrainingConfig`.
    """
    by_name = {f.name: f for f in fields(TrainingConfig)}
    values: dict[str, Any] = {}
    for layer in (read_yaml(user_config) if user_config else {}, dict(overrides or {})):
        unknown = sorted(set(layer) - set(by_name))
        if unknown:
            raise ConfigError(f"unknown option(s) {unknown}; known options: {sorted(f.name for f in public_fields())}")
        values.update({k: coerce(by_name[k], v) for k, v in layer.items()})
    return TrainingConfig(**values).check()


# ---- what is made from the fields: CLI flags, the defaults file, the README table ------------
def cli_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per option (booleans as `--name` / `--no-name`); unset flags stay out of the parsed result."""
    for f in public_fields():
        if _kind(f) is bool:
            parser.add_argument(f"--{f.name}", action=argparse.BooleanOptionalAction, help=f.metadata["help"])
        else:
            parser.add_argument(
                f"--{f.name}",
                type=lambda text, f=f: coerce(f, text),
                help=f.metadata["help"],
                metavar=_kind(f).__name__.upper(),
            )


def _yaml_value(value) -> str:
    if isinstance(value, str) and (value.startswith("/") or os.sep in value):
        value = display_path(value)
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def default_yaml() -> str:
    """configs/default.yaml: every option with its default and its help as a comment, by group."""
    lines = [
        "# Defaults of `sfd-train` / `accelerate launch sfd/train.py` and `sfd.forget()`, generated from",
        "# sfd.training.config.TrainingConfig (`python -m sfd.training.config --yaml`). A `--config FILE` names",
        "# only the options it changes; flags win over both.",
    ]
    group = None
    for f in public_fields():
        if f.metadata["group"] != group:
            group = f.metadata["group"]
            lines += ["", f"# ---- {group} ----"]
        lines += [f"# {line}" for line in textwrap.wrap(f.metadata["help"], 116)]
        lines.append(f"{f.name}: {_yaml_value(f.default)}")
    return "\n".join(lines) + "\n"


def options_table(names=None) -> str:
    """A markdown table of the options `names` (default: every option)."""
    rows = ["| option | default | what it does |", "|---|---|---|"]
    for f in public_fields():
        if names is not None and f.name not in names:
            continue
        help_ = f.metadata["help"].replace("|", "\\|")
        rows.append(f"| `--{f.name}` | `{_yaml_value(f.default)}` | {help_} |")
    return "\n".join(rows)


README_MARKERS = ("<!-- options:start -->", "<!-- options:end -->")


def with_options_table(readme: str) -> str:
    """The README's text with the generated option table between its two markers."""
    start, end = README_MARKERS
    if start not in readme or end not in readme:
        raise ConfigError(f"the README has no {start} … {end} markers for the option table")
    head, rest = readme.split(start, 1)
    return f"{head}{start}\n{options_table(README_OPTIONS)}\n{end}{rest.split(end, 1)[1]}"


def options_reference() -> str:
    """docs/options.md: every option, by group."""
    parts = [
        "# Training options",
        "",
        "Every option of `sfd-train` / `accelerate launch sfd/train.py` / `sfd.forget()`, generated from",
        "`sfd.training.config.TrainingConfig` (`python -m sfd.training.config --write`). Booleans take",
        "`--name` / `--no-name`; `null` unsets an optional value. `configs/default.yaml` holds the same defaults.",
    ]
    for group in dict.fromkeys(f.metadata["group"] for f in public_fields()):
        names = [f.name for f in public_fields() if f.metadata["group"] == group]
        parts += ["", f"## {group.capitalize()}", "", options_table(names)]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--write",
        action="store_true",
        help="rewrite configs/default.yaml and the README's option table "
        "of a source checkout (default: print the YAML)",
    )
    a = p.parse_args()
    if not a.write:
        print(default_yaml(), end="")
    else:
        (CONFIGS / "default.yaml").write_text(default_yaml())
        (PROJECT_ROOT / "docs" / "options.md").write_text(options_reference())
        readme = PROJECT_ROOT / "README.md"
        readme.write_text(with_options_table(readme.read_text()))
