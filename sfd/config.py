"""Training options: `configs/default.yaml`, then an optional user YAML, then explicit overrides."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "configs" / "default.yaml"
# Paths in the default config are relative to the project, so the defaults work from any folder.
_PROJECT_PATH_KEYS = ("teacher", "classifier", "clip")


class ConfigError(ValueError):
    pass


def read_yaml(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of option: value")
    return data


def load_config(user_config: str | os.PathLike | None = None, overrides: Mapping[str, Any] | None = None) -> dict:
    """Defaults ← user YAML ← overrides (an override of None sets the option to null)."""
    cfg = read_yaml(DEFAULT_CONFIG)
    for key in _PROJECT_PATH_KEYS:
        if cfg.get(key) and not Path(cfg[key]).is_absolute():
            cfg[key] = str(PROJECT_ROOT / cfg[key])
    layers = [read_yaml(user_config) if user_config else {}, dict(overrides or {})]
    for layer in layers:
        unknown = sorted(set(layer) - set(cfg))
        if unknown:
            raise ConfigError(f"unknown option(s) {unknown}; known options: {sorted(cfg)}")
        cfg.update(layer)
    return cfg
