"""`mixed_precision: auto`: bf16 only where the device computes it natively."""

import pytest
import torch

import sfd
import sfd.core.precision as precision
from sfd.core.precision import resolve_mixed_precision


@pytest.mark.parametrize("choice", ["no", "fp16", "bf16"])
def test_an_explicit_choice_is_kept(choice, monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: pytest.fail("an explicit choice needs no probe"))
    assert resolve_mixed_precision(choice, use_cpu=True) == choice


@pytest.mark.parametrize("fast_bf16,expected", [(True, "bf16"), (False, "no")])
def test_auto_on_a_cpu_follows_its_bf16_kernels(fast_bf16, expected, monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: fast_bf16)
    assert resolve_mixed_precision("auto", use_cpu=True) == expected


@pytest.mark.parametrize("bf16_gpu,expected", [(True, "bf16"), (False, "no")])
def test_auto_on_a_gpu_follows_its_bf16_support(bf16_gpu, expected, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_gpu)
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: not bf16_gpu)  # must not be asked
    assert resolve_mixed_precision("auto") == expected


def test_the_cpu_probe_answers_a_boolean():
    assert isinstance(precision.cpu_has_fast_bf16(), bool)


def test_training_records_the_resolved_precision(tiny_teacher, tiny_options, tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: False)
    out = tmp_path / "o"
    sfd.forget(tiny_teacher, forget="class=dog", output_dir=str(out), **dict(tiny_options, validation_steps=0))
    card = (out / "README.md").read_text()
    assert '"mixed_precision": "no"' in card
    assert precision.describe_machine() in card  # wall times depend on the machine: the card names it
