"""Make saved pipeline folders loadable without this package, and by stock Stable Diffusion tools.

    python -m sfd.cli.self_contained outputs/forget-trouser [MORE_FOLDERS …]
    python -m sfd.cli.self_contained outputs/forget-dog --stable_diffusion [--unet_single_file]

Writes `pipeline_sfd.py` (this package's pipelines as one file) into each folder and names it in `model_index.json`;
the folder then loads with `DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)`. Folders saved by
this package are already self-contained; this refreshes those saved before, or after the pipelines changed.
`--stable_diffusion` also writes the stock `StableDiffusionPipeline` view of a one-step text-to-image folder
(`FOLDER/stable-diffusion`, see `sfd.training.stable_diffusion_view`), as exports of SD-layout teachers carry.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.loading import load_pipeline
from ..pipelines.standalone import refresh
from ..training.stable_diffusion_view import stable_diffusion_support, write_stable_diffusion_view


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="+", help="saved pipeline folders (each with a model_index.json)")
    p.add_argument("--stable_diffusion", action="store_true", help="also write the stock StableDiffusionPipeline view")
    p.add_argument("--unet_single_file", action="store_true", help="with the view, the UNet as one .safetensors file")
    args = p.parse_args(argv)
    missing = [f for f in args.folders if not (Path(f) / "model_index.json").exists()]
    if missing:
        raise SystemExit(f"not a saved pipeline folder (no model_index.json): {', '.join(missing)}")
    pipes = {f: load_pipeline(f) for f in args.folders} if args.stable_diffusion else {}
    unsupported = {f: r for f, pipe in pipes.items() if (r := stable_diffusion_support(pipe)) is not None}
    if unsupported:
        raise SystemExit(
            "no stock Stable Diffusion view for " + "; ".join(f"{f}: {r}" for f, r in unsupported.items())
        )
    refresh(args.folders)
    for folder, pipe in pipes.items():
        print(f"{folder}: stock view written to {write_stable_diffusion_view(pipe, folder, args.unet_single_file)}")


if __name__ == "__main__":
    main()
