"""Train the embedded small CLIP on Fashion-MNIST images and captions built from the class names.

    python -m sfd.pretrain.clip --output_dir assets/clip
    python -m sfd.pretrain.clip --dataset uoft-cs/cifar10 --output_dir outputs/clip-cifar10   # any dataset

It is the offline stand-in for a Hub CLIP: a `transformers.CLIPModel` and a `CLIPTokenizer` whose
byte-level BPE vocabulary is generated here (the byte alphabet plus every caption word as one token).
Training uses the CLIP contrastive loss with class-aware targets: in a batch drawn from ten classes
many captions describe the same class, so every same-class pair counts as a positive.
"""

from __future__ import annotations

import json
import time
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

from ..core.io import atomic_directory
from ..data.fashion_mnist import FASHION_MNIST_CLASSES
from ..data.image_datasets import dataset_name
from ..evaluation.judges import clip_features
from . import asset_parser, data_flags, load_data
from .cards import write_card

CAPTION_TEMPLATES = (
    "a photo of a {}",
    "a picture of a {}",
    "an image of a {}",
    "a {}",
    "a photo of the {}",
    "a black and white photo of a {}",
    "a small photo of a {}",
    "a grayscale image of a {}",
    "a low resolution photo of a {}",
    "a {} on a black background",
    "a centered photo of a {}",
    "a product photo of a {}",
)
# Extra words the text-to-image captions may use; they get whole-word tokens too.
EXTRA_WORDS = "dark bright light white gray grey black striped plain simple small large photo image of".split()
BOS, EOS = "<|startoftext|>", "<|endoftext|>"


@lru_cache()
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2 / CLIP's reversible byte → printable character table."""
    bs = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def caption_words(class_names=FASHION_MNIST_CLASSES) -> list[str]:
    import re

    # CLIP's pre-tokenizer splits on letters / digits / other characters; keep the letter runs.
    text = " ".join(list(CAPTION_TEMPLATES) + list(class_names) + EXTRA_WORDS).lower()
    return sorted(set(re.findall(r"[a-z]+", text)))


def write_bpe_files(folder: Path, words: list[str]) -> tuple[Path, Path]:
    """vocab.json / merges.txt: byte alphabet (+ end-of-word forms), one merge chain per word, specials last."""
    alphabet = list(bytes_to_unicode().values())
    vocab = alphabet + [c + "</w>" for c in alphabet]
    merges: list[str] = []
    known = set(vocab)
    for word in words:
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        left = pieces[0]
        for right in pieces[1:]:
            merge = f"{left} {right}"
            left = left + right
            if left not in known:
                merges.append(merge)
                vocab.append(left)
                known.add(left)
    vocab += [BOS, EOS]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return folder / "vocab.json", folder / "merges.txt"


def build_tokenizer(folder: Path, class_names=FASHION_MNIST_CLASSES, max_length: int = 32) -> CLIPTokenizer:
    vocab, merges = write_bpe_files(folder, caption_words(class_names))
    return CLIPTokenizer(
        str(vocab),
        str(merges),
        bos_token=BOS,
        eos_token=EOS,
        pad_token=EOS,
        unk_token=EOS,
        model_max_length=max_length,
    )


def patch_size(image_size: int) -> int:
    """The vision transformer's patch: 4 (as for 28×28) where it divides the image size, else 2 or 1."""
    return next(p for p in (4, 2, 1) if image_size % p == 0)


def build_clip(
    tokenizer: CLIPTokenizer, hidden: int = 128, projection_dim: int = 64, image_size: int = 28, num_channels: int = 1
) -> CLIPModel:
    ids = dict(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=hidden,
            intermediate_size=2 * hidden,
            num_hidden_layers=3,
            num_attention_heads=4,
            max_position_embeddings=tokenizer.model_max_length,
            **ids,
        ),
        vision_config=dict(
            image_size=image_size,
            patch_size=patch_size(image_size),
            num_channels=num_channels,
            hidden_size=hidden,
            intermediate_size=2 * hidden,
            num_hidden_layers=3,
            num_attention_heads=4,
        ),
        projection_dim=projection_dim,
    )
    return CLIPModel(config)


def class_prompts(class_names, template: str = "a photo of a {}") -> list[str]:
    return [template.format(name) for name in class_names]


@torch.no_grad()
def zero_shot_accuracy(model, tokenizer, x, y, class_names, batch_size: int = 500) -> float:
    model.eval()
    text = tokenizer(class_prompts(class_names), padding=True, return_tensors="pt")
    t = F.normalize(clip_features(model.get_text_features(**text)), dim=-1)
    correct = 0
    for i in range(0, len(x), batch_size):
        v = F.normalize(clip_features(model.get_image_features(pixel_values=x[i : i + batch_size])), dim=-1)
        correct += ((v @ t.T).argmax(-1) == y[i : i + batch_size]).sum().item()
    return correct / len(x)


def parse_args(argv=None):
    p = asset_parser(__doc__, "assets/clip", batch_size=128, learning_rate=1e-3)
    p.add_argument("--steps", type=int, default=800)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    x, y, names = load_data(args, "train")
    x_test, y_test, test_names = load_data(args, "test")
    channels, size, width = x.shape[1:]
    if size != width or test_names != names or x_test.shape[1:] != x.shape[1:]:
        raise SystemExit(
            f"the CLIP recipe needs square images of one shape in both splits and the same classes (train: "
            f"{tuple(x.shape[1:])}, {list(names)}; test: {tuple(x_test.shape[1:])}, {list(test_names)}); "
            "--image_size resizes them"
        )
    with atomic_directory(args.output_dir) as tmp:
        tokenizer = build_tokenizer(Path(tmp) / "_bpe", names)
        model = build_clip(tokenizer, image_size=size, num_channels=channels)
        # every (template, class) caption, tokenised once
        captions = [[t.format(n) for t in CAPTION_TEMPLATES] for n in names]
        tokens = [tokenizer(c, padding="max_length", return_tensors="pt") for c in captions]
        opt = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=0.1)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.learning_rate, total_steps=args.steps)
        start = time.time()
        bar = tqdm(range(args.steps), desc="clip")
        for _ in bar:
            model.train()
            idx = torch.randint(0, len(x), (args.batch_size,))
            labels = y[idx]
            tmpl = torch.randint(0, len(CAPTION_TEMPLATES), (args.batch_size,))
            ids = torch.stack([tokens[c]["input_ids"][t] for c, t in zip(labels.tolist(), tmpl.tolist())])
            mask = torch.stack([tokens[c]["attention_mask"][t] for c, t in zip(labels.tolist(), tmpl.tolist())])
            out = model(input_ids=ids, attention_mask=mask, pixel_values=x[idx])
            same = (labels[:, None] == labels[None, :]).float()
            target = same / same.sum(-1, keepdim=True)  # class-aware contrastive targets
            loss = (F.cross_entropy(out.logits_per_image, target) + F.cross_entropy(out.logits_per_text, target)) / 2
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        acc = zero_shot_accuracy(model, tokenizer, x_test, y_test, names)
        minutes = (time.time() - start) / 60
        print(
            f"clip: zero-shot test accuracy {acc:.4f} on {len(x_test)} images ('a photo of a <class>'), {minutes:.1f} min"
        )
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        CLIPImageProcessor(
            do_resize=False,
            do_center_crop=False,
            crop_size={"height": size, "width": size},
            size={"shortest_edge": size},
            image_mean=[0.5] * channels,
            image_std=[0.5] * channels,
        ).save_pretrained(tmp)
        import shutil

        shutil.rmtree(Path(tmp) / "_bpe")
        metrics = {
            "zero_shot_accuracy": acc,
            "test_images": len(x_test),
            "prompt": "a photo of a {}",
            "steps": args.steps,
            "seed": args.seed,
            "train_minutes": round(minutes, 2),
            "dataset": dataset_name(args.dataset),
        }
        (Path(tmp) / "metrics.json").write_text(json.dumps(metrics, indent=2))
        shape = (channels, size, size)
        write_card(tmp, "clip", args.dataset, args.output_dir, shape, len(names), patch_size(size), data_flags(args))
    return acc


if __name__ == "__main__":
    main()
