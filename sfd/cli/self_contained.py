"""Make saved pipeline folders loadable without this package (diffusers' custom-pipeline convention).

    python -m sfd.cli.self_contained outputs/forget-trouser [MORE_FOLDERS …]

Writes `pipeline_sfd.py` (this package's pipelines as one file) into each folder and names it in `model_index.json`;
the folder then loads with `DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)`. Folders saved by
this package are already self-contained; this refreshes those saved before, or after the pipelines changed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..pipelines.standalone import refresh


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="+", help="saved pipeline folders (each with a model_index.json)")
    args = p.parse_args(argv)
    missing = [f for f in args.folders if not (Path(f) / "model_index.json").exists()]
    if missing:
        raise SystemExit(f"not a saved pipeline folder (no model_index.json): {', '.join(missing)}")
    refresh(args.folders)


if __name__ == "__main__":
    main()
