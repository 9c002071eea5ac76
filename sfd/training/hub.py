"""`--push_to_hub`: upload an exported one-step pipeline folder to the Hugging Face Hub, as diffusers' training
scripts do at the end of a run. The model files go (weights, `pipeline_sfd.py`, README.md, samples.png,
training.json); checkpoints, logs and a layered run's intermediate stages stay on disk."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from huggingface_hub import create_repo, upload_folder
from huggingface_hub.constants import ENV_VARS_TRUE_VALUES
from huggingface_hub.utils import filter_repo_objects

from .config import TrainingConfig, TrainingSetupError, hub_repo_id_or_null

logger = logging.getLogger(__name__)  # called on the main process only, inside or outside a run
IGNORE_PATTERNS = ["checkpoints/*", "logs/*", "stages/*", ".*"]


def hub_repo_id(cfg: TrainingConfig) -> str:
    """--hub_model_id, else the output folder's name (created under the token's account)."""
    return cfg.hub_model_id or Path(cfg.output_dir).resolve().name


def check_can_push(cfg: TrainingConfig) -> None:
    """Refuse before training what would make the upload at the end fail."""
    if os.environ.get("HF_HUB_OFFLINE", "").upper() in ENV_VARS_TRUE_VALUES:
        raise TrainingSetupError(
            f"--push_to_hub needs the network, but HF_HUB_OFFLINE={os.environ['HF_HUB_OFFLINE']} is set: unset "
            "HF_HUB_OFFLINE, or train without --push_to_hub and upload the folder later "
            "(hf upload REPO OUTPUT_DIR --exclude 'checkpoints/*' --exclude 'logs/*')"
        )
    if cfg.hub_token and cfg.report_to == "wandb":  # as diffusers' scripts: wandb records the command line
        raise TrainingSetupError(
            "--hub_token with --report_to wandb would expose the token in the run's logged command line: "
            "log in with `hf auth login` (or set HF_TOKEN) instead"
        )
    hub_repo_id_or_null("hub_model_id (default: the output folder's name)", hub_repo_id(cfg))


def files_to_upload(folder: str | os.PathLike) -> list[str]:
    """The folder's files that an upload sends (relative POSIX paths), `IGNORE_PATTERNS` applied."""
    folder = Path(folder)
    paths = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return list(filter_repo_objects(paths, ignore_patterns=IGNORE_PATTERNS))


def push_to_hub(cfg: TrainingConfig, folder: str | os.PathLike, commit_message: str = "End of training") -> list[str]:
    """Create the Hub repository (if it does not exist) and upload the exported folder's model files.

    Args:
        cfg: the run's options (`hub_model_id`, `hub_token`, `hub_private_repo`).
        folder: the exported folder, complete (its model_index.json in place).
        commit_message: the Hub commit's title.

    Returns:
        The files uploaded (relative paths).
    """
    files = files_to_upload(folder)
    private = cfg.hub_private_repo or None  # None: public unless the organisation's default is private
    repo_id = create_repo(hub_repo_id(cfg), exist_ok=True, private=private, token=cfg.hub_token).repo_id
    upload_folder(
        repo_id=repo_id,
        folder_path=str(folder),
        ignore_patterns=IGNORE_PATTERNS,
        commit_message=commit_message,
        token=cfg.hub_token,
    )
    logger.info(f"uploaded {len(files)} files to https://huggingface.co/{repo_id}")
    return files
