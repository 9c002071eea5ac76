"""One typed config: the command line, configs/default.yaml and the README's option table all come from it."""

import argparse
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from sfd.cli.train import parse_args
from sfd.training.config import (
    ConfigError,
    TrainingConfig,
    cli_arguments,
    default_yaml,
    load_config,
    options_table,
    public_fields,
    with_options_table,
)

ROOT = Path(__file__).resolve().parent.parent


def test_the_committed_defaults_file_is_the_one_the_config_makes():
    assert (ROOT / "configs" / "default.yaml").read_text() == default_yaml()
    values = yaml.safe_load(default_yaml())
    assert list(values) == [f.name for f in public_fields()]
    assert values["max_train_steps"] == TrainingConfig().max_train_steps == 450
    assert values["override"] == "auto" and values["teacher"] == "assets/teacher"


def test_the_readme_option_table_is_the_one_the_config_makes():
    readme = (ROOT / "README.md").read_text()
    assert with_options_table(readme) == readme
    assert "| `--sigma_init` | `2.5` |" in options_table()


def test_every_option_is_a_flag_and_every_flag_an_option():
    p = argparse.ArgumentParser(argument_default=argparse.SUPPRESS)
    cli_arguments(p)
    flags = {a.dest for a in p._actions if a.dest != "help"}
    assert flags == {f.name for f in public_fields()}
    args = parse_args(
        [
            "--max_train_steps",
            "7",
            "--no-use_ema",
            "--overwrite_output_dir",
            "--guidance_scale",
            "null",
            "--forget_fraction",
            "0.5",
        ]
    )
    assert args == dict(
        max_train_steps=7, use_ema=False, overwrite_output_dir=True, guidance_scale=None, forget_fraction=0.5
    )


@pytest.mark.parametrize(
    "text,match",
    [
        ("max_train_steps: 0\n", "max_train_steps must be a positive integer, got 0"),
        ("max_train_steps: ten\n", "max_train_steps must be an integer, got 'ten'"),
        ("forget_fraction: 1.5\n", r"forget_fraction must be in \(0, 1\) or null"),
        ("mixed_precision: fp8\n", "mixed_precision must be one of"),
        ("lr_scheduler: wavy\n", "unknown lr_scheduler 'wavy'; choose one of"),
        ("sigma_min: 20.0\n", "training σ range needs 0 < sigma_min < sigma_max"),
        ("use_ema: maybe\n", "use_ema must be true or false"),
    ],
)
def test_bad_values_are_refused_when_the_config_is_read(tmp_path, text, match):
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(tmp_path / "c.yaml")


def test_yaml_numbers_without_a_dot_are_read_as_numbers(tmp_path):
    (tmp_path / "c.yaml").write_text("learning_rate_generator: 1e-4\nalpha: 1\n")  # YAML reads 1e-4 as a string
    cfg = load_config(tmp_path / "c.yaml")
    assert cfg.learning_rate_generator == 1e-4 and isinstance(cfg.alpha, float)


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "configs").glob("*.yaml")))
def test_every_shipped_config_loads(name):
    cfg = load_config(ROOT / "configs" / name)
    assert isinstance(cfg, TrainingConfig)


def test_internal_fields_are_not_options():
    internal = {f.name for f in fields(TrainingConfig)} - {f.name for f in public_fields()}
    assert internal == {"layer_folds", "layer_stage"}
    assert "layer_folds" not in default_yaml() and "layer_stage" not in options_table()


def test_guidance_interval_is_read_from_flags_and_yaml_and_checked(tmp_path):
    from sfd.training.config import ConfigError, load_config

    assert load_config(overrides={"guidance_interval": "0.3,2.9"}).guidance_interval == [0.3, 2.9]
    assert load_config(overrides={"guidance_interval": "[0.3, 2.9]"}).guidance_interval == [0.3, 2.9]
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("guidance_interval: [0.5, 4]\n")
    assert load_config(yaml_file).guidance_interval == [0.5, 4]
    for bad in ("3,1", "1", "a,b"):
        with pytest.raises(ConfigError, match="guidance_interval"):
            load_config(overrides={"guidance_interval": bad})
    with pytest.raises(ConfigError, match="fake_score_weighting must be one of"):
        load_config(overrides={"fake_score_weighting": "snr"})
