"""Where the shipped defaults live: the embedded assets and the prompt lists.

A source checkout (or an editable install) reads them from the project's `assets/` and `configs/`; a
wheel carries the same folders inside the package (`sfd/assets`, `sfd/configs`, see pyproject.toml).
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # sfd/


def shipped(name: str) -> Path:
    """The folder `name` ("assets" or "configs") inside an installed wheel, else beside the package."""
    inside = PACKAGE_DIR / name
    return inside if inside.is_dir() else PACKAGE_DIR.parent / name


PROJECT_ROOT = PACKAGE_DIR.parent
ASSETS = shipped("assets")
CONFIGS = shipped("configs")

DEFAULT_TEACHER = ASSETS / "teacher"
DEFAULT_CLASSIFIER = ASSETS / "classifier"
SECOND_CLASSIFIER = ASSETS / "classifier-convnext"  # an independently trained second judge
DEFAULT_CLIP = ASSETS / "clip"
DEFAULT_REFERENCE_STATS = ASSETS / "fid_reference.safetensors"
GENERAL_REMAIN_PROMPTS = CONFIGS / "prompts" / "remain-general.txt"


def display_path(path) -> str:
    """A path inside the shipped folders or the project, shown relative to them (model cards read the same on every
    machine); any other path (or a non-path) as given."""
    for root in (ASSETS.parent, PROJECT_ROOT):
        try:
            return str(Path(path).resolve().relative_to(root))
        except (ValueError, TypeError):
            continue
    return str(path)
