"""TextToImageDiffusionPipeline of sfd (Score Forgetting Distillation), as one file for diffusers: `DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)`.

Built by `pipelines/standalone.py` from the package's pipeline modules; it needs torch, diffusers and transformers, not sfd."""

from __future__ import annotations

import ast
import json
import math
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import numpy
import torch
import torch.nn.functional as F
from diffusers import DiffusionPipeline, ImagePipelineOutput
from diffusers.utils.torch_utils import randn_tensor
from torch import nn

# ---- standalone ----


MODULE_NAME = "pipeline_sfd"
MODULE_ORDER = (
    "standalone",
    "conditions",
    "networks",
    "inputs",
    "labels",
    "multistep",
    "denoiser",
    "prompt_encoding",
    "one_step",
    "class_conditional",
    "text_to_image",
)


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _split_module(source: str) -> tuple[list[ast.stmt], str]:
    """(its absolute import statements, the module's code without its docstring and its imports)."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    drop, imports = set(), []
    for i, node in enumerate(tree.body):
        docstring = i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        is_import = isinstance(node, (ast.Import, ast.ImportFrom))
        if docstring or is_import:
            drop.update(range(node.lineno - 1, node.end_lineno))
        if is_import and not (isinstance(node, ast.ImportFrom) and (node.level or node.module == "__future__")):
            imports.append(node)
    body = "".join(line for k, line in enumerate(lines) if k not in drop)
    return imports, body.strip("\n")


PIPELINE_CLASSES = (
    "ClassConditionalDiffusionPipeline",
    "OneStepClassConditionalPipeline",
    "TextToImageDiffusionPipeline",
    "OneStepTextToImagePipeline",
)


def _package_source() -> str:
    """Every module of this package in dependency order, as one text with one block of imports."""
    here = Path(__file__).resolve().parent
    imports, bodies, defined = [], [], {}
    for name in MODULE_ORDER:
        module_imports, body = _split_module((here / f"{name}.py").read_text())
        imports += module_imports
        for node in ast.parse(body).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                if node.name in defined:
                    raise RuntimeError(f"{node.name} is defined in both {defined[node.name]}.py and {name}.py")
                defined[node.name] = name
        bodies.append(f"# ---- {name} ----\n\n\n{body}")
    return _import_block(imports) + "\n\n" + "\n\n\n".join(bodies) + "\n"


def _import_block(nodes: list[ast.stmt]) -> str:
    """One import statement per module, merged and sorted, standard library first (as isort / ruff order them)."""
    plain, named = set(), {}

    def spelled(alias: ast.alias) -> str:
        return alias.name if alias.asname is None else f"{alias.name} as {alias.asname}"

    for node in nodes:
        if isinstance(node, ast.Import):
            plain.update(spelled(a) for a in node.names)
        else:
            named.setdefault(node.module, set()).update(spelled(a) for a in node.names)
    groups = {True: [], False: []}
    lines = [(m, f"import {m}") for m in sorted(plain)]
    lines += [(m, f"from {m} import {', '.join(sorted(named[m]))}") for m in sorted(named)]
    for module, line in lines:
        groups[module.split(".")[0] in sys.stdlib_module_names].append(line)
    return "\n".join(groups[True]) + "\n\n" + "\n".join(groups[False])


def _without_classes(source: str, names: set[str]) -> str:
    lines = source.splitlines(keepends=True)
    drop = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.name in names:
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            drop.update(range(first - 1, node.end_lineno))
    return "".join(line for k, line in enumerate(lines) if k not in drop)


def module_source(class_name: str) -> str:
    """The text of `pipeline_sfd.py` for a folder of `class_name`: this package's pipeline code with that one
    pipeline class (diffusers' `custom_pipeline=` loading wants exactly one), importing only torch, diffusers,
    transformers, numpy and PIL."""
    if class_name not in PIPELINE_CLASSES:
        raise ValueError(f"{class_name} is not a pipeline of this package; choose among {list(PIPELINE_CLASSES)}")
    if Path(__file__).stem != MODULE_NAME:  # the package's modules
        header = (
            f'"""{class_name} of sfd (Score Forgetting Distillation), as one file for diffusers: '
            "`DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)`.\n\nBuilt by "
            "`pipelines/standalone.py` from the package's pipeline modules; it needs torch, diffusers and "
            'transformers, not sfd."""\n\nfrom __future__ import annotations\n\n'
        )
        source = header + _package_source()
    else:  # running as a single file already: it is its own source
        source = Path(__file__).read_text()
    present = {n.name for n in ast.parse(source).body if isinstance(n, ast.ClassDef)}
    if class_name not in present:
        raise ValueError(f"{Path(__file__).name} holds no {class_name}")
    return _tidy(_without_classes(source, set(PIPELINE_CLASSES) - {class_name}))


def _tidy(source: str) -> str:
    """Two blank lines between top-level blocks, and no section header left without code under it."""
    source = re.sub(r"\n{4,}", "\n\n\n", source)
    source = re.sub(r"# ---- \w+ ----\n\n\n(?=# ---- )", "", source)
    return source.rstrip("\n") + "\n"


def make_self_contained(folder: str | os.PathLike, class_name: str) -> None:
    """Write `pipeline_sfd.py` into a saved pipeline folder and point its `model_index.json` at `class_name` in it."""
    folder = Path(folder)
    _write_atomic(folder / f"{MODULE_NAME}.py", module_source(class_name))
    index = folder / "model_index.json"
    config = json.loads(index.read_text())
    config["_class_name"] = [MODULE_NAME, class_name]
    _write_atomic(index, json.dumps(config, indent=2, sort_keys=True) + "\n")


def refresh(folders) -> None:
    """Rewrite the module file of saved pipeline folders (e.g. after this package's pipelines changed)."""
    for folder in folders:
        name = json.loads((Path(folder) / "model_index.json").read_text())["_class_name"]
        make_self_contained(folder, name[-1] if isinstance(name, list) else name)
        print(f"{folder}: {MODULE_NAME}.py written")


class SelfContainedMixin:
    """`save_pretrained` that leaves a folder loadable without this package (`make_self_contained`), and
    `from_pretrained` of the class itself that does not need the folder's module file."""

    @classmethod
    def load_config(cls, *args, **kwargs):
        out = super().load_config(*args, **kwargs)
        config = out[0] if isinstance(out, tuple) else out
        name = config.get("_class_name")
        if isinstance(name, list) and name[0] == MODULE_NAME:  # this class is at hand: no remote code to run
            config["_class_name"] = name[1]
        return out

    def save_pretrained(self, save_directory, *args, push_to_hub: bool = False, **kwargs):
        super().save_pretrained(save_directory, *args, **kwargs)
        make_self_contained(save_directory, type(self).__name__)
        if push_to_hub:  # after the module file is in the folder, so the Hub copy is self-contained too
            from huggingface_hub import create_repo, upload_folder

            repo_id = kwargs.get("repo_id") or Path(save_directory).name
            token = kwargs.get("token")
            repo_id = create_repo(repo_id, exist_ok=True, private=kwargs.get("private"), token=token).repo_id
            upload_folder(
                repo_id=repo_id, folder_path=save_directory, token=token, commit_message=kwargs.get("commit_message")
            )


# ---- conditions ----


SDXL_TIME_IDS = 6  # (original height, width, crop top, left, target height, width), as SDXL base is conditioned


def is_sdxl_unet(config) -> bool:
    """A UNet2DConditionModel with SDXL's "text_time" micro-conditioning (pooled text embedding + time ids)."""
    return config.get("addition_embed_type") == "text_time"


def is_sd3_transformer(config) -> bool:
    """An MMDiT (diffusers' SD3Transformer2DModel): joint attention over image and text tokens, pooled projections."""
    return config.get("joint_attention_dim") is not None and config.get("pooled_projection_dim") is not None


def extra_condition_width(config) -> int:
    """E, the values a text network takes besides the token states: SDXL's pooled embedding and its time ids, SD3's
    pooled projection, or none (Stable Diffusion 1.x / 2.x)."""
    if is_sd3_transformer(config):
        return int(config["pooled_projection_dim"])
    if is_sdxl_unet(config):
        time_embed = int(config["addition_time_embed_dim"])
        pooled = int(config["projection_class_embeddings_input_dim"]) - SDXL_TIME_IDS * time_embed
        return pooled + SDXL_TIME_IDS
    return 0


def pack_condition(hidden: torch.Tensor, extras: Optional[torch.Tensor]) -> torch.Tensor:
    """(B, L, D) token states and (B, E) extras → (B, L + ⌈E/D⌉, D); no extras: the states unchanged."""
    if extras is None or extras.shape[-1] == 0:
        return hidden
    n, width = hidden.shape[0], hidden.shape[-1]
    rows = math.ceil(extras.shape[-1] / width)
    padded = F.pad(extras.to(hidden), (0, rows * width - extras.shape[-1]))
    return torch.cat([hidden, padded.view(n, rows, width)], dim=1)


def unpack_condition(cond: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of `pack_condition` for E = `width` extras: (token states, extras)."""
    rows = math.ceil(width / cond.shape[-1])
    return cond[:, :-rows], cond[:, -rows:].flatten(1)[:, :width]


# ---- networks ----


UNET_CLASSES = ("UNet2DModel", "UNet2DConditionModel")
TRANSFORMER_CLASSES = ("DiTTransformer2DModel", "Transformer2DModel")


def is_class_transformer(config) -> bool:
    """A DiT: a patched transformer whose adaLN-Zero norms embed the class (diffusers' DiTTransformer2DModel, or a
    Transformer2DModel config of the same shape)."""
    return (
        config.get("patch_size") is not None
        and config.get("num_embeds_ada_norm") is not None
        and config.get("norm_type") == "ada_norm_zero"
    )


def class_embeddings(config) -> Optional[int]:
    """Class ids the network embeds (a UNet's null class included, a DiT's dropout row not); None: no classes."""
    if is_class_transformer(config):
        return int(config["num_embeds_ada_norm"])
    return config.get("num_class_embeds")


def null_class_of(config, num_classes: int) -> Optional[int]:
    """The class id of the unconditional branch, or None when the network was trained without label dropout."""
    if is_class_transformer(config):
        return int(config["num_embeds_ada_norm"])  # diffusers' LabelEmbedding: the dropout row after the classes
    return num_classes if config.get("num_class_embeds") == num_classes + 1 else None


def downsampling(config) -> int:
    """Model-space pixels per side of the network's coarsest feature map (a UNet's levels, a DiT's patch)."""
    if is_class_transformer(config) or is_sd3_transformer(config):
        return int(config["patch_size"])
    return 2 ** (len(config["block_out_channels"]) - 1)


def predict(network, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    """The network's prediction (ε, v, x₀ or a flow velocity) at input x and timestep(s) t for conditions c: class
    ids or text conditions (packed, see `conditions`); a learned-variance output keeps its first half."""
    config = getattr(network, "config", None) or {}
    if cond.is_floating_point():
        cond = cond.to(network.dtype)
        width = extra_condition_width(config)
        text, extras = unpack_condition(cond, width) if width else (cond, None)
        if is_sd3_transformer(config):
            t = torch.as_tensor(t, device=x.device).reshape(-1).expand(len(x))  # one timestep per row
            out = network(x, encoder_hidden_states=text, pooled_projections=extras, timestep=t).sample
        elif is_sdxl_unet(config):
            pooled, time_ids = extras[:, :-SDXL_TIME_IDS], extras[:, -SDXL_TIME_IDS:]
            added = {"text_embeds": pooled, "time_ids": time_ids}
            out = network(x, t, encoder_hidden_states=text, added_cond_kwargs=added).sample
        else:
            out = network(x, t, encoder_hidden_states=text).sample
    elif is_class_transformer(config):  # anything else is called like a UNet
        t = torch.as_tensor(t, device=x.device).reshape(-1).expand(len(x))  # DiT embeds one timestep per row
        out = network(x, timestep=t, class_labels=cond).sample
    else:
        out = network(x, t, class_labels=cond).sample
    channels = x.shape[1]
    return out[:, :channels] if out.shape[1] == 2 * channels else out  # [ε, learned variance] → ε


class NetworkMixin:
    """What a pipeline needs of its networks: the denoising one (`unet` or `transformer`), the VAE's scale and
    decoding; a pixel-space model has no `vae`."""

    @property
    def network(self):
        """The denoising network: the registered `unet`, else the `transformer` (a DiT)."""
        unet = getattr(self, "unet", None)
        return unet if unet is not None else self.transformer

    @property
    def network_component(self) -> str:
        """The component name the denoising network is saved under: "unet" or "transformer"."""
        return "unet" if getattr(self, "unet", None) is not None else "transformer"

    @property
    def vae_scale_factor(self) -> int:
        """Image pixels per latent pixel (1 for a pixel-space model)."""
        vae = getattr(self, "vae", None)
        return 1 if vae is None else 2 ** (len(vae.config.block_out_channels) - 1)

    def image_format(self) -> tuple[int, int]:
        """(pixels per side, channels) of the images the model draws (through its VAE for a latent model)."""
        net, vae = self.network, getattr(self, "vae", None)
        size = net.config.sample_size
        size = size if isinstance(size, int) else size[0]
        return size * self.vae_scale_factor, (vae.config.in_channels if vae is not None else net.config.in_channels)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents → images in [-1, 1]: vae.decode(latents / scaling_factor + shift_factor) (SD3's VAE has a shift;
        identity for a pixel-space model)."""
        vae = getattr(self, "vae", None)
        if vae is None:
            return latents
        shift = vae.config.get("shift_factor") or 0.0
        return vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor + shift).sample

    def encode_images(self, images: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Images in [-1, 1] → latents: (z − shift_factor)·scaling_factor (identity for a pixel-space model)."""
        vae = getattr(self, "vae", None)
        if vae is None:
            return images
        shift = vae.config.get("shift_factor") or 0.0
        return (vae.encode(images.to(vae.dtype)).latent_dist.sample(generator) - shift) * vae.config.scaling_factor


def check_one_network(unet, transformer) -> None:
    """A pipeline denoises with exactly one network: a UNet, or a transformer (a DiT, SD3's MMDiT)."""
    if (unet is None) == (transformer is None):
        raise ValueError(
            "pass exactly one denoising network: `unet` (a UNet2DModel or UNet2DConditionModel) or `transformer` (a "
            "DiT or an SD3Transformer2DModel)"
        )


# ---- inputs ----


def flatten_labels(class_labels) -> list:
    """Class labels as a flat list: an int, a name, a tensor or NumPy array, or (nested) lists of them (`[[1], [1]]`,
    as diffusers' DiTPipeline accepts)."""
    if isinstance(class_labels, (torch.Tensor, numpy.ndarray, numpy.generic)):
        return [int(c) for c in class_labels.flatten().tolist()]
    if isinstance(class_labels, (int, str)) or not isinstance(class_labels, Sequence):
        return [class_labels]
    return [c for item in class_labels for c in flatten_labels(item)]


def check_images_per_prompt(num_images_per_prompt: int) -> None:
    """At least one image per prompt or class label."""
    if num_images_per_prompt < 1:
        raise ValueError(f"num_images_per_prompt must be at least 1, got {num_images_per_prompt}")


def repeat_per_image(values: list, num_images_per_prompt: int) -> list:
    """Each condition repeated `num_images_per_prompt` times, in order (c0, c0, c1, c1, …), as diffusers does."""
    check_images_per_prompt(num_images_per_prompt)
    return [v for v in values for _ in range(num_images_per_prompt)]


def prepare_noise(
    shape: tuple[int, ...],
    generator,
    latents: Optional[torch.Tensor],
    device: torch.device,
    dtype: torch.dtype,
) -> torch.Tensor:
    """The initial noise: `latents` when given (checked against `shape`), else standard normal noise drawn with
    `generator` (one generator, or a list of one per image: then image i depends on generator i only)."""
    if isinstance(generator, list) and len(generator) != shape[0]:
        raise ValueError(f"got a list of {len(generator)} generators for {shape[0]} images: pass one per image")
    if latents is None:
        return randn_tensor(shape, generator=generator, device=device, dtype=dtype)
    if tuple(latents.shape) != tuple(shape):
        raise ValueError(f"latents have shape {tuple(latents.shape)}, expected {tuple(shape)}")
    return latents.to(device=device, dtype=dtype)


def sample_size(network, height: Optional[int], width: Optional[int], scale: int = 1) -> tuple[int, int]:
    """The model-space (h, w) for an image of `height` × `width` pixels (`scale`: the VAE's down-sampling factor;
    default: the network's `sample_size`), checked against the network's down-sampling (a UNet's levels, a DiT's
    patch)."""
    size = network.config.sample_size
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    h = h if height is None else height // scale
    w = w if width is None else width // scale
    factor = downsampling(network.config)
    if h % factor or w % factor or (height or 0) % scale or (width or 0) % scale:
        raise ValueError(
            f"height and width must be multiples of {factor * scale} for this model (got {height} × {width})"
        )
    return h, w


def check_one_step(num_inference_steps: int) -> None:
    """A one-step generator draws in one network evaluation; asking for more steps is an error that says so."""
    if num_inference_steps != 1:
        raise ValueError(
            f"this is a one-step generator (distilled by SFD): it draws each image in one network evaluation, so "
            f"num_inference_steps must be 1 (got {num_inference_steps})"
        )


# ---- labels ----


def names_of(label: str) -> list[str]:
    """The names of one class: an ImageNet-style label lists synonyms separated by commas ("tench, Tinca tinca")."""
    return [name.strip() for name in label.split(",") if name.strip()]


def label_ids_by_name(id2label: dict[int, str]) -> dict[str, int]:
    """Every name → its class id, sorted: each full label and each of its synonyms, as diffusers' DiTPipeline.labels
    (where two classes share a synonym, the later id wins there and here)."""
    by_name = {}
    for idx, label in id2label.items():
        for name in [label, *names_of(label)]:
            by_name[name] = int(idx)
    return dict(sorted(by_name.items()))


class ClassLabelMixin:
    """`get_label_ids` / `labels` like diffusers' DiTPipeline, backed by the registered `id2label`."""

    @property
    def id2label(self) -> dict[int, str]:
        mapping = self.config.get("id2label") or {}
        return {int(k): v for k, v in mapping.items()}

    @property
    def labels(self) -> dict[str, int]:
        """Name → class id: every label of `id2label` and each of its comma-separated synonyms."""
        return label_ids_by_name(self.id2label)

    @property
    def num_classes(self) -> int:
        """Classes that can be asked for: those of `id2label`, else every class embedding of the network."""
        return len(self.id2label) or int(class_embeddings(self.network.config) or 0)

    def get_label_ids(self, label: str | Iterable[str]) -> list[int]:
        """Class ids of class names (full labels or synonyms, see `labels`)."""
        names = [label] if isinstance(label, str) else list(label)
        labels = self.labels
        if not labels:
            raise ValueError(
                f"this model has no id2label, so it knows no class names: pass class ids 0..{self.num_classes - 1}"
            )
        unknown = [n for n in names if n not in labels]
        if unknown:
            shown = sorted(labels) if len(labels) <= 50 else sorted(labels)[:50] + ["…"]
            raise ValueError(
                f"unknown class name(s) {unknown}; valid names ({len(labels)}, see `pipe.labels`): {shown}"
            )
        return [labels[n] for n in names]

    def _class_tensor(self, class_labels, device, num_images_per_prompt: int = 1) -> torch.Tensor:
        """Ids, names, tensors or nested lists of them → a flat tensor of ids, each repeated per image."""
        flat = flatten_labels(class_labels)
        ids = [self.get_label_ids(c)[0] if isinstance(c, str) else int(c) for c in flat]
        bad = [i for i in ids if not 0 <= i < self.num_classes]
        if bad:
            raise ValueError(f"class id(s) {bad} out of range 0..{self.num_classes - 1}")
        return torch.tensor(repeat_per_image(ids, num_images_per_prompt), device=device, dtype=torch.long)


def postprocess(images: torch.Tensor, output_type: str):
    """[-1, 1] tensors → "pt" (N,C,H,W in [0,1]), "np" (N,H,W,C float) or "pil"."""
    import numpy as np
    from PIL import Image

    images = (images.float() / 2 + 0.5).clamp(0, 1)
    if output_type == "pt":
        return images
    arr = images.permute(0, 2, 3, 1).cpu().numpy()
    if output_type == "np":
        return arr
    if output_type == "pil":
        arr = (arr * 255).round().astype(np.uint8)
        return [Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a) for a in arr]
    raise ValueError(f"output_type must be 'pil', 'np' or 'pt', got {output_type!r}")


# ---- multistep ----


def guided_sampling_loop(
    pipe,
    latents: torch.Tensor,
    cond: torch.Tensor,
    uncond: torch.Tensor | None,
    guidance_scale: float,
    num_inference_steps: int,
    generator=None,
    callback_on_step_end: Optional[Callable] = None,
    callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
) -> torch.Tensor:
    """Run `pipe.scheduler` from `latents`; with guidance, ε = ε(uncond) + w·(ε(cond) − ε(uncond)) (CFG).

    `cond` / `uncond` are class labels or text hidden states (see `Denoiser`); `uncond` is ignored at w = 1.
    `callback_on_step_end(pipe, i, t, {"latents": …})` runs after every step, as in diffusers' pipelines; the
    `latents` it returns replace the current ones.
    """
    unknown = set(callback_on_step_end_tensor_inputs) - {"latents"}
    if unknown:
        raise ValueError(f"callback_on_step_end_tensor_inputs may only name 'latents', got {sorted(unknown)}")
    guided = guidance_scale != 1.0
    conds = torch.cat([cond, uncond]) if guided else cond
    scheduler = pipe.scheduler
    latents = latents * getattr(scheduler, "init_noise_sigma", 1.0)  # flow matching starts from unit noise
    scheduler.set_timesteps(num_inference_steps, device=latents.device)
    for i, t in enumerate(pipe.progress_bar(scheduler.timesteps)):
        model_in = torch.cat([latents, latents]) if guided else latents
        if hasattr(scheduler, "scale_model_input"):  # flow-matching schedulers feed x_t unscaled
            model_in = scheduler.scale_model_input(model_in, t)
        out = predict(pipe.network, model_in, t, conds)  # ε (or v, x₀, a flow velocity) of a UNet or a transformer
        if guided:
            out_cond, out_uncond = out.chunk(2)
            out = out_uncond + guidance_scale * (out_cond - out_uncond)
        latents = scheduler.step(out, t, latents, generator=generator).prev_sample
        if callback_on_step_end is not None:
            given = {name: latents for name in callback_on_step_end_tensor_inputs}
            latents = (callback_on_step_end(pipe, i, t, given) or {}).get("latents", latents)
    return latents


# ---- denoiser ----


PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")
EDM_PREDICTION_TYPES = ("epsilon", "v_prediction")


def is_edm(scheduler_config) -> bool:
    """EDM-style schedulers are parameterised by σ and σ_data instead of a beta schedule."""
    return "sigma_data" in scheduler_config


def is_flow_matching(scheduler_config) -> bool:
    """Flow-matching (rectified-flow) schedulers: diffusers' FlowMatch* schedulers, which carry a time `shift`."""
    return str(scheduler_config.get("_class_name", "")).startswith("FlowMatch") or (
        "shift" in scheduler_config and "beta_start" not in scheduler_config
    )


def alphas_cumprod_from_config(scheduler_config) -> torch.Tensor:
    """ᾱ_t of a DDPM-family scheduler, rebuilt from its config (any diffusers scheduler with betas)."""
    from diffusers import DDPMScheduler

    return DDPMScheduler.from_config(scheduler_config).alphas_cumprod.float()


def sigmas_from_config(scheduler_config) -> torch.Tensor:
    """σ_t = sqrt((1 − ᾱ_t) / ᾱ_t) of every training timestep t of a DDPM-family scheduler, increasing in t."""
    alphas_cumprod = alphas_cumprod_from_config(scheduler_config)
    return ((1 - alphas_cumprod) / alphas_cumprod).sqrt()


def sigma_range_from_config(scheduler_config) -> tuple[float, float]:
    """The σ range the teacher was trained on: its first and last timestep's σ, or an EDM scheduler's σ_min / σ_max."""
    if is_edm(scheduler_config):
        return float(scheduler_config["sigma_min"]), float(scheduler_config["sigma_max"])
    if is_flow_matching(scheduler_config):
        return FlowMatchParameterisation(scheduler_config).sigma_range
    sigmas = sigmas_from_config(scheduler_config)
    return float(sigmas[0]), float(sigmas[-1])


def edm_scheduler(scheduler_config):
    """diffusers' EDMEulerScheduler with the EDM settings of any EDM scheduler's config (other solvers' keys dropped,
    which diffusers would otherwise warn about)."""
    import inspect

    from diffusers import EDMEulerScheduler

    keys = inspect.signature(EDMEulerScheduler.__init__).parameters
    return EDMEulerScheduler.from_config({k: v for k, v in dict(scheduler_config).items() if k in keys})


def scheduler_of_family(scheduler_config):
    """A DDPMScheduler, an EDMEulerScheduler or a FlowMatchEulerDiscreteScheduler built from the config, whichever
    family it belongs to: what a one-step pipeline stores (only its parameterisation is used) and a text teacher
    samples with."""
    from diffusers import DDPMScheduler, FlowMatchEulerDiscreteScheduler

    if is_edm(scheduler_config):
        return edm_scheduler(scheduler_config)
    if is_flow_matching(scheduler_config):
        return FlowMatchEulerDiscreteScheduler.from_config(scheduler_config)
    return DDPMScheduler.from_config(scheduler_config)


def check_ddpm_family(scheduler_config) -> None:
    """A DDPM-family scheduler carries a beta schedule; others (flow matching, …) have no ᾱ_t to rebuild."""
    if not {"beta_start", "trained_betas"} & set(scheduler_config):
        name = scheduler_config.get("_class_name", "this scheduler")
        raise ValueError(
            f"{name} is neither a DDPM-family scheduler (DDPM, DDIM, DPM-Solver, Euler, … with a beta schedule), an "
            "EDM-style one (EDMEulerScheduler, EDMDPMSolverMultistepScheduler, with sigma_data) nor a flow-matching "
            "one (FlowMatchEulerDiscreteScheduler)"
        )


class DDPMParameterisation(nn.Module):
    """σ ↔ t by interpolating log σ over the training table; input x/sqrt(1 + σ²); ε / v / x₀ → x̂₀."""

    def __init__(self, scheduler_config):
        super().__init__()
        check_ddpm_family(scheduler_config)
        prediction_type = scheduler_config.get("prediction_type", "epsilon")
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"unsupported prediction_type {prediction_type!r}; expected one of {PREDICTION_TYPES}")
        self.prediction_type = prediction_type
        self.register_buffer("log_sigmas", sigmas_from_config(scheduler_config).log(), persistent=False)

    @property
    def sigma_range(self) -> tuple[float, float]:
        return float(self.log_sigmas[0].exp()), float(self.log_sigmas[-1].exp())

    def sigma_to_t(self, sigma: torch.Tensor) -> torch.Tensor:
        """Continuous timestep for σ by linear interpolation of log σ over the training table."""
        log_sigma = sigma.float().log().clamp(self.log_sigmas[0], self.log_sigmas[-1])
        idx = torch.searchsorted(self.log_sigmas, log_sigma.contiguous()).clamp(1, len(self.log_sigmas) - 1)
        low, high = self.log_sigmas[idx - 1], self.log_sigmas[idx]
        frac = (log_sigma - low) / (high - low)
        return idx - 1 + frac

    def model_input(self, x: torch.Tensor, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x * (1 + sigma**2).rsqrt(), self.sigma_to_t(sigma.flatten())

    def x0(self, out: torch.Tensor, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        if self.prediction_type == "epsilon":  # x̂₀ = x − σ·ε̂
            return x - sigma * out
        if self.prediction_type == "v_prediction":  # x̂₀ = x/(1+σ²) − σ/sqrt(1+σ²)·v̂
            return x / (1 + sigma**2) - sigma / (1 + sigma**2).sqrt() * out
        return out


class EDMParameterisation(nn.Module):
    """EDM preconditioning (Karras et al. 2022, Table 1) by the diffusers EDM scheduler's own methods."""

    def __init__(self, scheduler_config):
        super().__init__()
        prediction_type = scheduler_config.get("prediction_type", "epsilon")
        if prediction_type not in EDM_PREDICTION_TYPES:
            raise ValueError(
                f"unsupported prediction_type {prediction_type!r} for an EDM scheduler; expected one of "
                f"{EDM_PREDICTION_TYPES}"
            )
        self.prediction_type = prediction_type
        self.scheduler = edm_scheduler(scheduler_config)
        self.sigma_range = sigma_range_from_config(scheduler_config)

    def model_input(self, x: torch.Tensor, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # c_in = 1/sqrt(σ² + σ_data²), c_noise = ¼·ln σ
        return self.scheduler.precondition_inputs(x, sigma), self.scheduler.precondition_noise(sigma.flatten())

    def x0(self, out: torch.Tensor, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return self.scheduler.precondition_outputs(x, out, sigma)  # D = c_skip·x + c_out·F


class FlowMatchParameterisation(nn.Module):
    """Rectified flow x_t = (1 − t)·x₀ + t·ε (SD3): t = σ/(1 + σ), input x_σ/(1 + σ) at timestep N·t, v → x̂₀."""

    prediction_type = "flow_prediction"

    def __init__(self, scheduler_config):
        super().__init__()
        if scheduler_config.get("use_dynamic_shifting"):
            raise ValueError(
                "a flow-matching scheduler with use_dynamic_shifting (Flux style, resolution-dependent shift) is not "
                "supported; SD3 / SD3.5-style FlowMatchEulerDiscreteScheduler with a fixed `shift` is"
            )
        from diffusers import FlowMatchEulerDiscreteScheduler

        self.num_train_timesteps = int(scheduler_config.get("num_train_timesteps", 1000))
        times = FlowMatchEulerDiscreteScheduler.from_config(scheduler_config).sigmas.double()  # t, from 1 down
        # the training range: its smallest t, and its largest below t = 1 (σ = ∞, pure noise)
        t_lo, t_hi = float(times.min()), float(times[times < 1].max())
        self.sigma_range = (t_lo / (1 - t_lo), t_hi / (1 - t_hi))

    def model_input(self, x: torch.Tensor, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = sigma / (1 + sigma)  # x_t = x_σ/(1 + σ) = (1 − t)·x₀ + t·ε
        return x / (1 + sigma), self.num_train_timesteps * t.flatten()

    def x0(self, out: torch.Tensor, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return x / (1 + sigma) - sigma / (1 + sigma) * out  # x̂₀ = x_t − t·v̂


def noise_parameterisation(scheduler_config) -> nn.Module:
    if is_edm(scheduler_config):
        return EDMParameterisation(scheduler_config)
    if is_flow_matching(scheduler_config):
        return FlowMatchParameterisation(scheduler_config)
    return DDPMParameterisation(scheduler_config)


class Denoiser(nn.Module):
    """D(x, σ, c) ≈ E[x₀ | x₀ + σ·ε = x, c] for a diffusers model and its scheduler (DDPM family, EDM or flow matching).

    The condition c is integer class labels (a `UNet2DModel` with class embeddings, or a DiT) or text conditions
    (a `UNet2DConditionModel`, an SDXL UNet or an SD3 transformer; see `conditions` for how pooled embeddings ride
    along); `unet` is whichever network it is (see `networks`).
    `guidance_scale` > 1 applies classifier-free guidance on x̂₀ (equivalent to guidance on ε) against the
    unconditional condition: `null_class_id`, the `null_embedding` of the empty prompt, or a per-call `uncond`
    (e.g. a negative prompt). With
    `guidance_interval` = (σ_lo, σ_hi), guidance applies only to rows whose σ lies in it (Kynkäänniemi et al.
    2024, "Applying guidance in a limited interval"); other rows get the conditional x̂₀.
    """

    def __init__(
        self,
        unet: nn.Module,
        scheduler_config,
        null_class_id: int | None = None,
        guidance_scale: float = 1.0,
        null_embedding: torch.Tensor | None = None,
        guidance_interval: tuple[float, float] | None = None,
    ):
        super().__init__()
        if guidance_scale != 1.0 and null_class_id is None and null_embedding is None:
            raise ValueError(
                "classifier-free guidance needs a model trained with a null class or an empty-prompt embedding"
            )
        self.unet = unet
        self.parameterisation = noise_parameterisation(scheduler_config)
        self.null_class_id = null_class_id
        self.guidance_scale = guidance_scale
        self.null_embedding = null_embedding
        self.guidance_interval = None if guidance_interval is None else tuple(map(float, guidance_interval))

    @property
    def prediction_type(self) -> str:
        return self.parameterisation.prediction_type

    @property
    def sigma_min(self) -> float:
        return self.parameterisation.sigma_range[0]

    @property
    def sigma_max(self) -> float:
        return self.parameterisation.sigma_range[1]

    def _denoise(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x_in, t = self.parameterisation.model_input(x, sigma)
        out = predict(self.unet, x_in, t, cond)  # each network called its own way (`networks.predict`)
        return self.parameterisation.x0(out.to(x.dtype), x, sigma)

    def null_condition(self, cond: torch.Tensor) -> torch.Tensor:
        if cond.is_floating_point():
            if self.null_embedding is None:
                raise ValueError(
                    "guidance on text conditions needs `null_embedding` (the empty prompt's hidden states)"
                )
            return self.null_embedding.to(cond).expand_as(cond)
        return torch.full_like(cond, self.null_class_id)

    def forward(
        self, x: torch.Tensor, sigma: torch.Tensor | float, cond: torch.Tensor, uncond: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x̂₀; with guidance, x̂₀(uncond) + w·(x̂₀(cond) − x̂₀(uncond)) (CFG, Ho & Salimans eq. 6 on x̂₀)."""
        sigma = torch.as_tensor(sigma, device=x.device, dtype=x.dtype)
        sigma = sigma.flatten().expand(x.shape[0]).reshape(-1, 1, 1, 1)
        if self.guidance_scale == 1.0:
            return self._denoise(x, sigma, cond)
        uncond = self.null_condition(cond) if uncond is None else uncond
        x0_cond, x0_uncond = self._denoise(
            torch.cat([x, x]), torch.cat([sigma, sigma]), torch.cat([cond, uncond])
        ).chunk(2)
        return x0_uncond + self.guidance_weight(sigma) * (x0_cond - x0_uncond)

    def guidance_weight(self, sigma: torch.Tensor) -> torch.Tensor | float:
        """w per row: the guidance scale, or 1 (no guidance) where σ lies outside `guidance_interval`."""
        if self.guidance_interval is None:
            return self.guidance_scale
        lo, hi = self.guidance_interval
        inside = (sigma >= lo) & (sigma <= hi)
        return torch.where(inside, self.guidance_scale, 1.0).to(sigma)


# ---- prompt_encoding ----


T5_MAX_LENGTH = 256  # SD3's default `max_sequence_length`


def _tokens(tokenizer, prompts: list[str], max_length: int, device) -> torch.Tensor:
    return tokenizer(
        prompts, padding="max_length", max_length=max_length, truncation=True, return_tensors="pt"
    ).input_ids.to(device)


def clip_states(tokenizer, encoder, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(penultimate hidden states, the encoder's first output: the pooled projection of a CLIPTextModelWithProjection)."""
    out = encoder(_tokens(tokenizer, prompts, tokenizer.model_max_length, encoder.device), output_hidden_states=True)
    return out.hidden_states[-2], out[0]


def sd_condition(pipe, prompts: list[str]) -> torch.Tensor:
    """Stable Diffusion 1.x / 2.x: the text encoder's last hidden states."""
    tok, enc = pipe.tokenizer, pipe.text_encoder
    return enc(_tokens(tok, prompts, tok.model_max_length, enc.device))[0]


def sdxl_condition(pipe, prompts: list[str], height: int, width: int) -> torch.Tensor:
    """SDXL: [h₁ ‖ h₂] penultimate states, the second encoder's pooled projection, time ids (h, w, 0, 0, h, w)."""
    states = [clip_states(tok, enc, prompts) for tok, enc in pipe.text_pairs()]
    hidden = torch.cat([h for h, _ in states], dim=-1)
    pooled = states[-1][1].to(hidden)
    time_ids = hidden.new_tensor([height, width, 0, 0, height, width]).expand(len(prompts), SDXL_TIME_IDS)
    return pack_condition(hidden, torch.cat([pooled, time_ids], dim=-1))


def sd3_condition(pipe, prompts: list[str], max_length: int = T5_MAX_LENGTH) -> torch.Tensor:
    """SD3: [[h_L ‖ h_G] zero-padded to the T5 width ; T5 states] along the tokens, pooled [p_L ‖ p_G]."""
    (h_l, p_l), (h_g, p_g) = (
        clip_states(pipe.tokenizer, pipe.text_encoder, prompts),
        clip_states(pipe.tokenizer_2, pipe.text_encoder_2, prompts),
    )
    clip = torch.cat([h_l, h_g], dim=-1)
    width = pipe.network.config.joint_attention_dim
    if pipe.text_encoder_3 is None:
        t5 = clip.new_zeros(len(prompts), max_length, width)
    else:
        enc = pipe.text_encoder_3
        t5 = enc(_tokens(pipe.tokenizer_3, prompts, max_length, enc.device))[0].to(clip)
    hidden = torch.cat([F.pad(clip, (0, t5.shape[-1] - clip.shape[-1])), t5], dim=-2)
    return pack_condition(hidden, torch.cat([p_l, p_g], dim=-1).to(hidden))


def encode_prompts(pipe, prompts: list[str], height: Optional[int] = None, width: Optional[int] = None):
    """The packed condition of each prompt for `pipe`'s network (SD, SDXL or SD3), at image size `height` × `width`
    (SDXL's time ids; default: the model's own size)."""
    config = pipe.network.config
    if is_sd3_transformer(config):
        return sd3_condition(pipe, prompts, pipe.config.get("max_sequence_length") or T5_MAX_LENGTH)
    if is_sdxl_unet(config):
        _, _, h, w = pipe.latent_shape(1, height, width)
        scale = pipe.vae_scale_factor
        return sdxl_condition(pipe, prompts, height or h * scale, width or w * scale)
    return sd_condition(pipe, prompts)


def zero_text(pipe, cond: torch.Tensor) -> torch.Tensor:
    """The condition with its text (token states and pooled embedding) zeroed and its time ids kept: SDXL's
    unconditional branch when `force_zeros_for_empty_prompt` is set (as in SDXL base)."""
    width = extra_condition_width(pipe.network.config)
    if not width:
        return torch.zeros_like(cond)
    hidden, extras = unpack_condition(cond, width)
    if is_sdxl_unet(pipe.network.config):
        extras = torch.cat([torch.zeros_like(extras[:, :-SDXL_TIME_IDS]), extras[:, -SDXL_TIME_IDS:]], dim=-1)
    else:
        extras = torch.zeros_like(extras)
    return pack_condition(torch.zeros_like(hidden), extras)


# ---- text_to_image ----


TEXT_COMPONENTS = ("text_encoder_2", "tokenizer_2", "text_encoder_3", "tokenizer_3")  # SDXL's and SD3's extra ones
# every component has a default (an SD3 pipeline has no `unet`); `__init__` still requires a network, a scheduler and
# the first text encoder and tokenizer
OPTIONAL_COMPONENTS = ["vae", "unet", "transformer", "text_encoder", "tokenizer", "scheduler", *TEXT_COMPONENTS]
OFFLOAD_SEQUENCE = "text_encoder->text_encoder_2->text_encoder_3->unet->transformer->vae"


def _as_list(prompt: str | Sequence[str]) -> list[str]:
    return [prompt] if isinstance(prompt, str) else list(prompt)


class PromptLatentMixin(NetworkMixin):
    """Prompt encoding, latent shapes and decoding shared by the text-to-image pipelines."""

    def register_text_modules(self, unet, transformer, scheduler, vae, text_encoder, tokenizer, *extra) -> None:
        """The networks, encoders and tokenizers of any supported layout (exactly one of `unet` / `transformer`);
        `extra`: the `TEXT_COMPONENTS`, in order."""
        check_one_network(unet, transformer)
        if scheduler is None or text_encoder is None or tokenizer is None:
            raise ValueError("a text-to-image pipeline needs a `scheduler`, a `text_encoder` and a `tokenizer`")
        modules = dict(unet=unet, transformer=transformer, text_encoder=text_encoder, tokenizer=tokenizer, vae=vae)
        self.register_modules(scheduler=scheduler, **modules, **dict(zip(TEXT_COMPONENTS, extra)))

    def text_pairs(self) -> list[tuple]:
        """The (tokenizer, text encoder) pairs present: one for SD, two for SDXL, two or three for SD3."""
        pairs = [("tokenizer", "text_encoder"), ("tokenizer_2", "text_encoder_2"), ("tokenizer_3", "text_encoder_3")]
        return [(getattr(self, t), getattr(self, e)) for t, e in pairs if getattr(self, e, None) is not None]

    @torch.no_grad()
    def encode_prompt(
        self, prompt: str | Sequence[str], height: Optional[int] = None, width: Optional[int] = None
    ) -> torch.Tensor:
        """The condition the network was trained with, as diffusers' pipeline of its family encodes it: Stable
        Diffusion's last hidden states (B, L, D); SDXL's and SD3's states with their pooled embeddings (and SDXL's
        time ids for `height` × `width`) packed as extra rows (see `conditions`)."""
        return encode_prompts(self, _as_list(prompt), height, width)

    def empty_prompt_condition(self, n: int, height: Optional[int] = None, width: Optional[int] = None):
        """The unconditional branch of guidance: the empty prompt's condition, or zeros (time ids kept) when the model
        was trained that way (`force_zeros_for_empty_prompt`, as SDXL base)."""
        empty = self.encode_prompt([""] * n, height, width)
        return zero_text(self, empty) if self.config.get("force_zeros_for_empty_prompt") else empty

    def latent_shape(self, n: int, height: Optional[int] = None, width: Optional[int] = None) -> tuple[int, ...]:
        h, w = sample_size(self.network, height, width, self.vae_scale_factor)
        return (n, self.network.config.in_channels, h, w)

    def prompt_conditions(
        self,
        prompt,
        prompt_embeds: Optional[torch.Tensor],
        negative_prompt,
        negative_prompt_embeds: Optional[torch.Tensor],
        num_images_per_prompt: int,
        guided: bool,
        height: Optional[int] = None,
        width: Optional[int] = None,
    ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """The conditions of the prompts and, with guidance, of the negative prompts (default: the empty prompt's
        condition), each repeated `num_images_per_prompt` times; precomputed embeddings replace either."""
        if (prompt is None) == (prompt_embeds is None):
            raise ValueError("pass exactly one of `prompt` and `prompt_embeds`")
        check_images_per_prompt(num_images_per_prompt)
        device = self._execution_device
        cond = self.encode_prompt(prompt, height, width) if prompt_embeds is None else prompt_embeds.to(device)
        uncond = None
        if guided:
            if negative_prompt_embeds is not None:
                uncond = negative_prompt_embeds.to(device)
            elif negative_prompt is None:
                uncond = self.empty_prompt_condition(len(cond), height, width)
            else:
                negative = _as_list(negative_prompt)
                uncond = self.encode_prompt(negative * len(cond) if len(negative) == 1 else negative, height, width)
            if uncond.shape != cond.shape:
                raise ValueError(f"negative prompts give {tuple(uncond.shape)}, prompts {tuple(cond.shape)}")
            uncond = uncond.repeat_interleave(num_images_per_prompt, dim=0)
        return cond.repeat_interleave(num_images_per_prompt, dim=0), uncond

    @property
    def concepts(self) -> list[str]:
        return list(self.config.get("concepts") or [])


class TextToImageDiffusionPipeline(SelfContainedMixin, PromptLatentMixin, DiffusionPipeline):
    """`pipe(prompt=[...], negative_prompt=..., guidance_scale=..., num_inference_steps=...)` with the
    scheduler's multi-step sampler and classifier-free guidance (empty prompt or negative prompt)."""

    model_cpu_offload_seq = OFFLOAD_SEQUENCE
    _optional_components = OPTIONAL_COMPONENTS

    def __init__(
        self,
        unet=None,
        text_encoder=None,
        tokenizer=None,
        scheduler=None,
        vae=None,
        default_guidance_scale: float = 4.5,
        default_num_inference_steps: int = 25,
        concepts: Optional[list] = None,
        transformer=None,
        force_zeros_for_empty_prompt: bool = False,
        text_encoder_2=None,
        tokenizer_2=None,
        text_encoder_3=None,
        tokenizer_3=None,
    ):
        super().__init__()
        self.register_text_modules(
            unet,
            transformer,
            scheduler,
            vae,
            text_encoder,
            tokenizer,
            text_encoder_2,
            tokenizer_2,
            text_encoder_3,
            tokenizer_3,
        )
        self.register_to_config(
            default_guidance_scale=default_guidance_scale,
            default_num_inference_steps=default_num_inference_steps,
            concepts=list(concepts or []),
            force_zeros_for_empty_prompt=bool(force_zeros_for_empty_prompt),
        )

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | Sequence[str] | None = None,
        negative_prompt: str | Sequence[str] | None = None,
        guidance_scale: Optional[float] = None,
        num_inference_steps: Optional[int] = None,
        generator: Optional[torch.Generator | list[torch.Generator]] = None,
        output_type: str = "pil",
        return_dict: bool = True,
        num_images_per_prompt: int = 1,
        latents: Optional[torch.Tensor] = None,
        prompt_embeds: Optional[torch.Tensor] = None,
        negative_prompt_embeds: Optional[torch.Tensor] = None,
        height: Optional[int] = None,
        width: Optional[int] = None,
        callback_on_step_end: Optional[Callable] = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
    ):
        """Sample images of the prompts with the scheduler's multi-step sampler and classifier-free guidance.

        Args:
            prompt (`str` or `list[str]`, *optional*): the prompts (or pass `prompt_embeds`).
            negative_prompt (`str` or `list[str]`, *optional*): the guidance's unconditional branch (default: "").
            guidance_scale (`float`, *optional*): classifier-free guidance (default: `default_guidance_scale`).
            num_inference_steps (`int`, *optional*): sampler steps (default: `default_num_inference_steps`).
            generator, output_type, return_dict, num_images_per_prompt, latents, callback_on_step_end,
                callback_on_step_end_tensor_inputs: as for `ClassConditionalDiffusionPipeline.__call__` (`latents`
                are in the UNet's space: the VAE's latents for a latent model).
            prompt_embeds, negative_prompt_embeds (`torch.Tensor`, *optional*): the text encoder's hidden states
                (B, L, D), e.g. from `encode_prompt`, instead of the prompts.
            height, width (`int`, *optional*): the image size in pixels (default: the model's; multiples of the
                UNet's and VAE's down-sampling).

        Returns:
            As `ClassConditionalDiffusionPipeline.__call__`.
        """
        guidance_scale = self.config.default_guidance_scale if guidance_scale is None else guidance_scale
        steps = num_inference_steps or self.config.default_num_inference_steps
        cond, uncond = self.prompt_conditions(
            prompt,
            prompt_embeds,
            negative_prompt,
            negative_prompt_embeds,
            num_images_per_prompt,
            guidance_scale != 1.0,
            height,
            width,
        )
        shape = self.latent_shape(len(cond), height, width)
        noise = prepare_noise(shape, generator, latents, self._execution_device, self.network.dtype)
        noise = guided_sampling_loop(
            self,
            noise,
            cond,
            uncond,
            guidance_scale,
            steps,
            generator,
            callback_on_step_end,
            callback_on_step_end_tensor_inputs,
        )
        images = postprocess(self.decode(noise), output_type)
        self.maybe_free_model_hooks()
        return ImagePipelineOutput(images=images) if return_dict else (images,)
