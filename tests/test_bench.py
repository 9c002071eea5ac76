"""Smoke test of the multi-method benchmark: `python -m bench.run --quick` end to end (slow: several minutes)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def test_quick_benchmark_runs_every_method_and_writes_the_table(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--quick",
            "--runs",
            str(tmp_path / "runs"),
            "--results",
            str(tmp_path / "results"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    record = json.loads(next((tmp_path / "results").glob("*-quick.json")).read_text())
    assert set(record["results"]) == {"teacher", "sfd", "sfd-2stage", "esd", "gold"}
    for method, r in record["results"].items():
        m = r["metrics"]
        assert 0 <= m["forget_accuracy"] <= 1 and m["fid_remaining"] > 0 and m["images_per_second"] > 0
        assert m["fid_to_gold"] > 0 and m["gold_seed"] == record["seed"] + 1  # gold's own row: the noise floor
        if method == "teacher":
            assert r["training"]["peak_rss_mb"] is None and r["training"]["seconds"] == 0
        else:
            assert r["training"]["peak_rss_mb"] > 100 and r["training"]["seconds"] > 0
    assert record["results"]["sfd"]["metrics"]["nfe_per_image"] == 1
    assert record["results"]["teacher"]["metrics"]["nfe_per_image"] > 1
    assert record["ratios"]["throughput_sfd_over_teacher"] > 5
    assert set(record["ratios"]) >= {"unlearning_time_sfd_over_gold_retrain", "fid_remaining_sfd_2stage_over_teacher"}
    table = next((tmp_path / "results").glob("*-quick.md")).read_text()
    assert table.count("\n| ") >= 6 and "Gold retrain" in table
