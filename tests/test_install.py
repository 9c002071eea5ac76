"""`pip install .` (not editable) ships everything a user needs: the commands, the defaults and the embedded assets."""

import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def test_a_wheel_install_runs_the_commands_and_loads_the_defaults_from_another_folder(tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(env_dir)  # torch & co. from this interpreter
    python = env_dir / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", str(ROOT)], check=True, capture_output=True)
    work = tmp_path / "elsewhere"
    work.mkdir()
    for command in ("sfd-train", "sfd-eval", "sfd-attack"):
        out = subprocess.run(
            [env_dir / "bin" / command, "--help"], cwd=work, check=True, capture_output=True, text=True
        )
        assert "usage:" in out.stdout
    check = (
        "import sfd, sfd.pipelines\n"
        "from sfd.training.config import load_config\n"
        "from sfd.training.setup import validate\n"
        "cfg = load_config(overrides={'forget': 'class=trouser'})\n"
        "task = validate(cfg)\n"
        "print(sfd.__file__, cfg.teacher, task.spec.describe()['forget'], cfg.output_dir)\n"
    )
    out = subprocess.run([python, "-c", check], cwd=work, check=True, capture_output=True, text=True).stdout.split()
    site = str(env_dir)
    assert out[0].startswith(site) and out[1].startswith(site)  # the installed package and its shipped teacher
    assert out[1].endswith("sfd/assets/teacher") and out[2:] == ["['trouser']", "outputs/forget-trouser"]
    assert sys.executable != str(python)
