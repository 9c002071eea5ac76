"""Train the embedded Fashion-MNIST classifiers (judges): small `transformers` models saved with `save_pretrained`.

    python -m sfd.pretrain.classifier --output_dir assets/classifier                              # the judge
    python -m sfd.pretrain.classifier --recipe convnext --output_dir assets/classifier-convnext   # the second judge
    python -m sfd.pretrain.classifier --dataset uoft-cs/cifar10 --output_dir outputs/classifier-cifar10   # any dataset

The second judge differs from the first in architecture (ConvNeXt, not ResNet), seed and augmentation (random
shifts of up to 2 pixels, not flips), so that a one-step model's per-class damage seen by one judge and missed by
the other shows as a disagreement (`sfd-eval`).

The folder loads with `AutoModelForImageClassification.from_pretrained` and carries `id2label`, so any
Hub classifier with an `id2label` can replace it in `sfd-eval --classifier`. Inputs are 1×28×28 images
normalised to [-1, 1] (mean 0.5, std 0.5), as written in its `preprocessor_config.json`; with `--dataset`, images of
that dataset's channels and size, and its class names in `id2label`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import (
    ConvNextConfig,
    ConvNextForImageClassification,
    ResNetConfig,
    ResNetForImageClassification,
    ViTImageProcessor,
)

from ..core.io import atomic_directory
from ..data.fashion_mnist import FASHION_MNIST_CLASSES
from ..data.image_datasets import dataset_name
from . import asset_parser, data_flags, load_data
from .cards import write_card


def _labels(num_labels: int, class_names=None) -> dict:
    if class_names is None and num_labels == len(FASHION_MNIST_CLASSES):
        class_names = FASHION_MNIST_CLASSES
    names = dict(enumerate(class_names)) if class_names is not None else None
    return dict(num_labels=num_labels, id2label=names, label2id={v: k for k, v in names.items()} if names else None)


def build_classifier(num_labels: int = 10, num_channels: int = 1, class_names=None) -> ResNetForImageClassification:
    config = ResNetConfig(
        num_channels=num_channels,
        embedding_size=32,
        hidden_sizes=[32, 64, 128],
        depths=[1, 1, 1],
        layer_type="basic",
        downsample_in_first_stage=False,
        **_labels(num_labels, class_names),
    )
    return ResNetForImageClassification(config)


def build_convnext(num_labels: int = 10, num_channels: int = 1, class_names=None) -> ConvNextForImageClassification:
    config = ConvNextConfig(
        num_channels=num_channels,
        patch_size=2,
        hidden_sizes=[32, 64, 128],
        depths=[1, 1, 1],
        num_stages=3,
        **_labels(num_labels, class_names),
    )
    return ConvNextForImageClassification(config)


def flip(x: torch.Tensor) -> torch.Tensor:
    """Horizontal flips of half the batch: label-preserving for clothes."""
    return torch.where((torch.rand(len(x)) < 0.5).view(-1, 1, 1, 1), x.flip(-1), x)


def shift(x: torch.Tensor, pixels: int = 2) -> torch.Tensor:
    """Each image (in [-1, 1]) moved by its own random whole-pixel offset in [-pixels, pixels]², the border filled
    with black (-1)."""
    n, _, h, w = x.shape
    offset = torch.randint(-pixels, pixels + 1, (n, 2)).float()
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, 0, 2], theta[:, 1, 2] = -2 * offset[:, 0] / w, -2 * offset[:, 1] / h
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, mode="nearest", padding_mode="zeros", align_corners=False) - 1


# recipe: (builder, augmentation, default seed, model-card kind)
RECIPES = {
    "resnet": (build_classifier, flip, 0, "classifier"),
    "convnext": (build_convnext, shift, 1, "classifier-convnext"),
}


@torch.no_grad()
def accuracy(model, x, y, batch_size: int = 500) -> float:
    model.eval()
    correct = sum(
        (model(x[i : i + batch_size]).logits.argmax(-1) == y[i : i + batch_size]).sum().item()
        for i in range(0, len(x), batch_size)
    )
    return correct / len(x)


def parse_args(argv=None):
    p = asset_parser(__doc__, "assets/classifier", batch_size=128, learning_rate=2e-3)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--recipe", choices=sorted(RECIPES), default="resnet", help="architecture and augmentation")
    p.set_defaults(seed=None)
    args = p.parse_args(argv)
    if args.seed is None:
        args.seed = RECIPES[args.recipe][2]
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    x, y, class_names = load_data(args, "train")
    x_test, y_test, test_names = load_data(args, "test")
    if test_names != class_names or x_test.shape[1:] != x.shape[1:]:
        raise SystemExit(
            f"the test split differs from the training split: classes {list(test_names)} vs {list(class_names)}, "
            f"images {tuple(x_test.shape[1:])} vs {tuple(x.shape[1:])}"
        )
    if len(x) < args.batch_size:
        raise SystemExit(f"--batch_size {args.batch_size} is more than the {len(x)} training images")
    channels, height, width = x.shape[1:]
    build, augment, _, card = RECIPES[args.recipe]
    model = build(len(class_names), channels, class_names)
    opt = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=5e-4)
    steps = args.epochs * (len(x) // args.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.learning_rate, total_steps=steps)
    start = time.time()
    bar = tqdm(total=steps, desc="classifier")
    for _ in range(args.epochs):
        model.train()
        perm = torch.randperm(len(x))
        for i in range(len(x) // args.batch_size):
            idx = perm[i * args.batch_size : (i + 1) * args.batch_size]
            xb = augment(x[idx])
            loss = F.cross_entropy(model(xb).logits, y[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    acc = accuracy(model, x_test, y_test)
    minutes = (time.time() - start) / 60
    print(f"classifier: test accuracy {acc:.4f} on {len(x_test)} images, {minutes:.1f} min")
    with atomic_directory(args.output_dir) as tmp:
        model.save_pretrained(tmp)
        ViTImageProcessor(
            do_resize=False,
            size={"height": height, "width": width},
            image_mean=[0.5] * channels,
            image_std=[0.5] * channels,
        ).save_pretrained(tmp)
        metrics = {
            "test_accuracy": acc,
            "test_images": len(x_test),
            "epochs": args.epochs,
            "seed": args.seed,
            "recipe": args.recipe,
            "train_minutes": round(minutes, 2),
            "dataset": dataset_name(args.dataset),
        }
        (Path(tmp) / "metrics.json").write_text(json.dumps(metrics, indent=2))
        write_card(
            tmp,
            card,
            args.dataset,
            args.output_dir,
            (channels, height, width),
            len(class_names),
            data_flags=data_flags(args),
        )
    return acc


if __name__ == "__main__":
    main()
