"""Benchmark scripts' reuse options: earlier figures are kept only when they were measured the same way."""

import argparse
import json

import pytest
import torch

from bench import default_run, robustness


def _teacher_record(seed=1234, per_class=200):
    return {
        "forget": "class=trouser",
        "teacher": {
            "seed": seed,
            "batch_size": 100,
            "model": "assets/teacher",
            "num_samples_per_class": per_class,
            "num_forget_samples": 200,
            "fid_remaining": 0.59,
        },
    }


def _args(path, **kw):
    base = dict(
        reuse_teacher=str(path),
        forget="class=trouser",
        seed=1234,
        batch_size=100,
        samples_per_class=200,
        teacher_forget_samples=200,
        teacher="assets/teacher",
    )
    return argparse.Namespace(**{**base, **kw})


def test_default_run_reuses_the_teacher_only_with_the_same_seed_and_counts(tmp_path):
    path = tmp_path / "earlier.json"
    path.write_text(json.dumps(_teacher_record()))
    assert default_run.reused_teacher(_args(path))["fid_remaining"] == 0.59
    with pytest.raises(SystemExit, match="'seed': 1234.*'seed': 99"):
        default_run.reused_teacher(_args(path, seed=99))
    with pytest.raises(SystemExit, match="num_samples_per_class"):
        default_run.reused_teacher(_args(path, samples_per_class=100))
    with pytest.raises(SystemExit, match="missing.json not found"):
        default_run.reused_teacher(_args(tmp_path / "missing.json"))


def test_a_relearning_record_names_the_dates_of_carried_over_rows():
    assert robustness._measured_on({"measured_on": {"teacher": "2026-11-25", "sfd": "2026-11-25"}}) == ""
    note = robustness._measured_on({"measured_on": {"teacher": "2026-11-23", "sfd": "2026-11-25"}})
    assert "Teacher (multi-step) 2026-11-23" in note and "SFD (one step) 2026-11-25" in note


@pytest.mark.parametrize(
    "argv,match",
    [
        (["--remeasure", "sfd"], "only makes sense with --reuse"),
        (["--reuse", "missing.json"], "missing.json not found"),
    ],
)
def test_robustness_refuses_reuse_options_that_cannot_work_before_loading(argv, match, capsys):
    with pytest.raises(SystemExit):
        robustness.main(argv)
    assert match in capsys.readouterr().err


def test_a_result_is_written_as_its_json_beside_its_table(tmp_path):
    from bench.common import write_result

    table = write_result(tmp_path / "trial-x.seed99", {"fid": 1.25, "rows": [1, 2]}, "| a |\n|---|\n| 1 |")
    assert table == tmp_path / "trial-x.seed99.md" and table.read_text() == "| a |\n|---|\n| 1 |\n"
    assert json.loads((tmp_path / "trial-x.seed99.json").read_text()) == {"fid": 1.25, "rows": [1, 2]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trial-x.seed99.json", "trial-x.seed99.md"]  # no temp left


def test_gpu_check_refuses_without_cuda_before_any_work(monkeypatch):
    import bench.gpu_check as gpu_check

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(gpu_check, "class_check", lambda args: pytest.fail("trained without a GPU"))
    with pytest.raises(SystemExit, match="needs a CUDA GPU"):
        gpu_check.main([])
