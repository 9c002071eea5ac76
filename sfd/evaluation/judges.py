"""Pretrained judges that look at generated images: any `transformers` image classifier (and its features)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping

import torch
import torch.nn.functional as F

from ..core.paths import DEFAULT_CLASSIFIER, DEFAULT_CLIP


def _normalise(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


class ImageClassifierJudge:
    """Wraps `AutoModelForImageClassification`; takes images in [0, 1] of shape (N, C, H, W).

    Images are resized, given the classifier's channel count and normalised as its
    `preprocessor_config.json` says (or [-1, 1] when it has none)."""

    def __init__(self, model, mean=(0.5,), std=(0.5,), size: tuple[int, int] | None = None):
        self.model = model.eval()
        self.mean, self.std, self.size = mean, std, size
        self.id2label = {int(k): v for k, v in model.config.id2label.items()}

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike = DEFAULT_CLASSIFIER, **kwargs) -> "ImageClassifierJudge":
        from transformers import AutoModelForImageClassification

        if str(path).startswith((".", "/", "~")) and not Path(path).expanduser().exists():
            raise FileNotFoundError(f"classifier folder not found: {path}")
        model = AutoModelForImageClassification.from_pretrained(path, **kwargs)
        config = _preprocessor_config(path)
        mean, std, size = _image_preprocessing(config) if config is not None else ((0.5,), (0.5,), None)
        return cls(model, mean, std, size)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        return _to_model_input(images, self.model.config.num_channels, self.mean, self.std, self.size)

    @torch.no_grad()
    def logits_and_features(self, images: torch.Tensor):
        """Class logits and the last hidden state pooled to one vector per image (the FID feature)."""
        dev = next(self.model.parameters()).device
        out = self.model(pixel_values=self.preprocess(images).to(dev), output_hidden_states=True)
        h = out.hidden_states[-1]
        feats = h.mean((-2, -1)) if h.dim() == 4 else h[:, 0]
        return out.logits.float().cpu(), feats.float().cpu()

    def probs(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits_and_features(images)[0].softmax(-1)

    def match_labels(self, generator_id2label: Mapping[int, str]) -> dict[int, int]:
        """Generator class id → classifier class id, matched by name; a missing name is an error."""
        mapping, missing = _label_map(self.id2label, generator_id2label)
        if missing:
            raise ValueError(
                f"the classifier has no label for generator class(es) {missing}; its labels are "
                f"{sorted(self.id2label.values())}. Pass a classifier trained on the same classes (--classifier)."
            )
        return mapping

    def label_of(self, name: str) -> int | None:
        """The classifier's id of a class name (compared as `match_labels` does), or None when it has no such label."""
        return _label_map(self.id2label, {0: name})[0].get(0)


def _label_map(judge_id2label: Mapping[int, str], generator_id2label: Mapping[int, str]):
    """(generator class id → judge class id for the names both know, the generator's names the judge lacks); names
    compare by their letters and digits, case-insensitively."""
    by_name = {_normalise(v): int(k) for k, v in judge_id2label.items()}
    mapping, missing = {}, []
    for gid, name in generator_id2label.items():
        cid = by_name.get(_normalise(name))
        if cid is None:
            missing.append(name)
        else:
            mapping[int(gid)] = cid
    return mapping, missing


def labels_unknown_to(classifier: str | os.PathLike, generator_id2label: Mapping[int, str]) -> list[str]:
    """The generator's class names that a classifier (folder or Hub id) has no label for, read from its config alone
    (no weights)."""
    from transformers import AutoConfig

    return _label_map(AutoConfig.from_pretrained(classifier).id2label, generator_id2label)[1]


def _preprocessor_config(path) -> dict | None:
    """A model's `preprocessor_config.json`: in its folder, or for a Hub id from the Hub (or its cache); None when it
    has none."""
    folder = Path(path).expanduser()
    if folder.exists():
        proc = folder / "preprocessor_config.json"
        return json.loads(proc.read_text()) if proc.exists() else None
    try:
        from huggingface_hub import hf_hub_download

        return json.loads(Path(hf_hub_download(str(path), "preprocessor_config.json")).read_text())
    except (OSError, ValueError):  # no such file, offline without it in the cache, or not a Hub id
        return None


def _image_preprocessing(cfg: dict | None, default_size=None):
    """mean, std and size from a `preprocessor_config.json` (CLIP's defaults when there is none)."""
    mean, std, size = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711), default_size
    if cfg is not None:
        mean, std = tuple(cfg.get("image_mean", mean)), tuple(cfg.get("image_std", std))
        crop, s = cfg.get("crop_size") or {}, cfg.get("size") or {}
        if "height" in crop:
            size = (crop["height"], crop["width"])
        elif "height" in s:
            size = (s["height"], s["width"])
        elif "shortest_edge" in s:
            size = (s["shortest_edge"], s["shortest_edge"])
    return mean, std, size


def _to_model_input(images: torch.Tensor, channels: int, mean, std, size) -> torch.Tensor:
    x = images.float()
    if x.shape[1] != channels:
        x = x.mean(1, keepdim=True).expand(-1, channels, -1, -1)
    if size is not None and tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    mean_t, std_t = torch.tensor(mean).view(1, -1, 1, 1), torch.tensor(std).view(1, -1, 1, 1)
    if mean_t.shape[1] != channels:
        mean_t, std_t = mean_t.mean().view(1, 1, 1, 1), std_t.mean().view(1, 1, 1, 1)
    return (x - mean_t.to(x)) / std_t.to(x)


def clip_features(output) -> torch.Tensor:
    """`get_image_features` / `get_text_features` return a tensor in transformers 4 and an output whose
    `pooler_output` holds the projected features in transformers 5."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


class CLIPJudge:
    """Zero-shot concept detection and CLIP score with a `transformers.CLIPModel` (images in [0, 1])."""

    def __init__(self, model, tokenizer, mean, std, size):
        self.model, self.tokenizer = model.eval(), tokenizer
        self.mean, self.std, self.size = mean, std, size

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike = DEFAULT_CLIP) -> "CLIPJudge":
        """A transformers CLIP folder or Hub id, or `open_clip:ARCH/PRETRAINED` for the open_clip backend."""
        if str(path).startswith("open_clip:"):
            return OpenCLIPJudge.from_name(str(path)[len("open_clip:") :])
        from transformers import AutoTokenizer, CLIPModel

        if str(path).startswith((".", "/", "~")) and not Path(path).expanduser().exists():
            raise FileNotFoundError(f"CLIP folder not found: {path}")
        model = CLIPModel.from_pretrained(path)
        size = model.config.vision_config.image_size
        mean, std, size = _image_preprocessing(_preprocessor_config(path), (size, size))
        return cls(model, AutoTokenizer.from_pretrained(path), mean, std, size)

    @torch.no_grad()
    def image_embeds(self, images: torch.Tensor) -> torch.Tensor:
        x = _to_model_input(images, self.model.config.vision_config.num_channels, self.mean, self.std, self.size)
        return F.normalize(clip_features(self.model.get_image_features(pixel_values=x)), dim=-1)

    @torch.no_grad()
    def text_embeds(self, prompts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(prompts, padding=True, truncation=True, return_tensors="pt")
        return F.normalize(clip_features(self.model.get_text_features(**tokens)), dim=-1)

    def zero_shot(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """Index of the prompt CLIP prefers for each image."""
        return (self.image_embeds(images) @ self.text_embeds(prompts).T).argmax(-1)

    def clip_score(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """100·cos(image, its prompt), clipped at 0, per image (CLIPScore with w = 100, as in torchmetrics)."""
        return 100 * (self.image_embeds(images) * self.text_embeds(prompts)).sum(-1).clamp_min(0)


class OpenCLIPJudge(CLIPJudge):
    """The same checks with an open_clip model (optional extra `openclip`; it needs torchvision)."""

    @classmethod
    def from_name(cls, name: str) -> "OpenCLIPJudge":
        try:
            import open_clip
        except ImportError as err:
            raise ImportError("the open_clip backend needs `pip install 'sfd[openclip]'`") from err
        arch, _, pretrained = name.partition("/")
        model, _, _ = open_clip.create_model_and_transforms(arch, pretrained=pretrained or None)
        size = model.visual.image_size
        size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
        return cls(
            model, open_clip.get_tokenizer(arch), open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD, size
        )

    @torch.no_grad()
    def image_embeds(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model.encode_image(_to_model_input(images, 3, self.mean, self.std, self.size)), dim=-1)

    @torch.no_grad()
    def text_embeds(self, prompts: list[str]) -> torch.Tensor:
        return F.normalize(self.model.encode_text(self.tokenizer(prompts)), dim=-1)


def classify(judge: ImageClassifierJudge, images: torch.Tensor, batch_size: int = 500):
    """Softmax probabilities and features of `images` (in [0, 1]) by the judge, in batches."""
    logits, feats = zip(
        *(judge.logits_and_features(images[i : i + batch_size]) for i in range(0, len(images), batch_size))
    )
    return torch.cat(logits).softmax(-1), torch.cat(feats)
