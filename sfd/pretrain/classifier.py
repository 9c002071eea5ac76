"""Train the embedded Fashion-MNIST classifier: a small `transformers` ResNet saved with `save_pretrained`.

    python -m sfd.pretrain.classifier --output_dir assets/classifier

The folder loads with `AutoModelForImageClassification.from_pretrained` and carries `id2label`, so any
Hub classifier with an `id2label` can replace it in `sfd-eval --classifier`. Inputs are 1×28×28 images
normalised to [-1, 1] (mean 0.5, std 0.5), as written in its `preprocessor_config.json`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import ResNetConfig, ResNetForImageClassification, ViTImageProcessor

from ..core.io import atomic_directory
from ..data.fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist
from . import asset_parser
from .cards import write_card


def build_classifier(num_labels: int = 10) -> ResNetForImageClassification:
    names = dict(enumerate(FASHION_MNIST_CLASSES)) if num_labels == len(FASHION_MNIST_CLASSES) else None
    config = ResNetConfig(
        num_channels=1,
        embedding_size=32,
        hidden_sizes=[32, 64, 128],
        depths=[1, 1, 1],
        layer_type="basic",
        downsample_in_first_stage=False,
        num_labels=num_labels,
        id2label=names,
        label2id={v: k for k, v in names.items()} if names else None,
    )
    return ResNetForImageClassification(config)


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
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    x, y = load_fashion_mnist("train", args.data_root)
    x_test, y_test = load_fashion_mnist("test", args.data_root)
    model = build_classifier()
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
            xb = x[idx]
            flip = torch.rand(len(xb)) < 0.5  # horizontal flips are label-preserving for clothes
            xb = torch.where(flip.view(-1, 1, 1, 1), xb.flip(-1), xb)
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
            do_resize=False, size={"height": 28, "width": 28}, image_mean=[0.5], image_std=[0.5]
        ).save_pretrained(tmp)
        metrics = {
            "test_accuracy": acc,
            "test_images": len(x_test),
            "epochs": args.epochs,
            "seed": args.seed,
            "train_minutes": round(minutes, 2),
        }
        (Path(tmp) / "metrics.json").write_text(json.dumps(metrics, indent=2))
        write_card(tmp, "classifier")
    return acc


if __name__ == "__main__":
    main()
