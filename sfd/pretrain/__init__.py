"""Scripts that train the embedded Fashion-MNIST assets (teacher, classifier, CLIP, FID statistics), or the same
recipes on any image-classification dataset (`--dataset`, see `sfd.data.image_datasets`)."""

import argparse

from ..data.image_datasets import load_images


def asset_parser(doc: str, output_dir: str, batch_size: int, learning_rate: float) -> argparse.ArgumentParser:
    """The options every asset script shares: where the asset goes, where the data is, the seed, the optimiser."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output_dir", default=output_dir)
    p.add_argument("--data_root", default=None, help="Fashion-MNIST IDX folder (default: Debian's package)")
    p.add_argument(
        "--dataset",
        default=None,
        help="train on this image-classification dataset instead of Fashion-MNIST: a Hub id (uoft-cs/cifar10), "
        "a folder of class sub-folders (imagefolder) or a save_to_disk folder",
    )
    p.add_argument("--image_column", default=None, help="--dataset's image column (default: its one Image column)")
    p.add_argument(
        "--label_column", default=None, help="--dataset's label column (default: its one ClassLabel column)"
    )
    p.add_argument(
        "--image_size", type=int, default=None, help="resize the images to this square size (default: as stored)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch_size", type=int, default=batch_size)
    p.add_argument("--learning_rate", type=float, default=learning_rate)
    return p


def load_data(args, split: str):
    """Images in [-1, 1] (N, C, H, W), labels and class names of the data the script's arguments name."""
    if args.dataset is not None and args.data_root is not None:
        raise SystemExit("--data_root is Fashion-MNIST's folder; with --dataset leave it out")
    return load_images(args.dataset, split, args.data_root, args.image_column, args.label_column, args.image_size)


def data_flags(args) -> str:
    """The options that named the data, as a model card's command repeats them ("" for Fashion-MNIST)."""
    if args.dataset is None:
        return ""
    names = ("dataset", "image_column", "label_column", "image_size")
    return "".join(f" --{k} {getattr(args, k)}" for k in names if getattr(args, k) is not None)
