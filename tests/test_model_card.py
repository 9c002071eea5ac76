"""The exported folder as the Hub sees it: a model card with front matter, a sample grid, training.json, and
`--push_to_hub` uploading the model files (create_repo / upload_folder stubbed: no network)."""

import json
from pathlib import Path

import pytest
import yaml
from huggingface_hub import ModelCard
from PIL import Image

import sfd
import sfd.training.hub as hub
from sfd.training.config import ConfigError, TrainingSetupError, load_config
from sfd.training.model_card import card_license, hub_base_model, teacher_name
from tests.helpers import make_classifier, make_teacher

ROOT = Path(__file__).resolve().parent.parent
TINY = dict(
    train_batch_size=4,
    max_train_steps=2,
    validation_steps=2,
    validation_samples_per_class=2,
    final_eval_samples_per_class=2,
    checkpointing_steps=1,
    seed=0,
)


class FakeHub:
    """Stands in for huggingface_hub's create_repo / upload_folder; notes what each was called with."""

    def __init__(self):
        self.calls = []

    def create_repo(self, repo_id, exist_ok=False, private=None, token=None):
        self.calls.append(("create_repo", dict(repo_id=repo_id, exist_ok=exist_ok, private=private, token=token)))
        return type("RepoUrl", (), {"repo_id": repo_id if "/" in repo_id else f"me/{repo_id}"})()

    def upload_folder(self, repo_id, folder_path, ignore_patterns, commit_message, token=None):
        folder = Path(folder_path)
        self.calls.append(
            (
                "upload_folder",
                dict(repo_id=repo_id, folder=folder, ignore_patterns=ignore_patterns, commit_message=commit_message),
            )
        )
        self.complete = (folder / "model_index.json").exists()  # the export had finished when the upload began


@pytest.fixture(scope="module")
def pushed(tmp_path_factory):
    """One tiny run with --push_to_hub (network off, the Hub stubbed): (its folder, the stub, the teacher's path)."""
    root = tmp_path_factory.mktemp("card")
    teacher, classifier = str(make_teacher(root / "teacher")), str(make_classifier(root / "classifier"))
    fake = FakeHub()
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("HF_HUB_OFFLINE", raising=False)
        mp.setattr(hub, "create_repo", fake.create_repo)
        mp.setattr(hub, "upload_folder", fake.upload_folder)
        out = root / "no-dog"
        sfd.forget(
            teacher,
            forget="class=dog",
            output_dir=str(out),
            classifier=classifier,
            push_to_hub=True,
            hub_model_id="me/no-dog",
            hub_token="hf_secret",
            **TINY,
        )
    return out, fake, teacher


def front_matter(path: Path) -> dict:
    text = path.read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_the_card_has_the_front_matter_the_hub_reads(pushed):
    out, _, teacher = pushed
    meta = front_matter(out / "README.md")
    assert meta["library_name"] == "diffusers"
    assert meta["pipeline_tag"] == "unconditional-image-generation"  # the Hub has no class-conditional task
    assert {"machine-unlearning", "sfd", "one-step", "diffusers", "class-conditional"} <= set(meta["tags"])
    assert meta["license"] == "other"  # the tiny teacher's card names no license
    assert "base_model" not in meta  # a local teacher is no Hub model id
    assert meta["sfd"]["forget"] == ["dog"] and meta["sfd"]["override"] in ("cat", "bird")
    assert meta["sfd"]["teacher"] == teacher
    assert ModelCard.load(out / "README.md").data.library_name == "diffusers"  # huggingface_hub parses it too


def test_the_card_shows_samples_and_loading_without_sfd(pushed):
    out, _, _ = pushed
    card = (out / "README.md").read_text()
    assert "![samples](samples.png)" in card
    assert 'DiffusionPipeline.from_pretrained("me/no-dog", trust_remote_code=True)' in card
    assert 'OneStepClassConditionalPipeline.from_pretrained("me/no-dog")' in card
    assert "forget_accuracy" in card
    grid = Image.open(out / "samples.png")
    assert grid.size == (276, 64)  # 3 classes x 4 samples of 8 px, scaled 2x, with row labels


def test_training_json_records_the_teacher_the_options_and_the_figures(pushed):
    out, _, teacher = pushed
    record = json.loads((out / "training.json").read_text())
    assert record["teacher"] == teacher and record["config"]["teacher"] == teacher
    assert record["config"]["max_train_steps"] == 2 and record["config"]["hub_model_id"] == "me/no-dog"
    assert 0 <= record["final_metrics"]["forget_accuracy"] <= 1
    for written in (out / "training.json", out / "checkpoints" / "run.json", out / "README.md"):
        assert "hf_secret" not in written.read_text(), written  # the token is never recorded


def test_push_to_hub_uploads_the_complete_model_folder_without_checkpoints(pushed):
    out, fake, _ = pushed
    (create, repo), (upload, sent) = fake.calls
    assert create == "create_repo" and repo == dict(
        repo_id="me/no-dog", exist_ok=True, private=None, token="hf_secret"
    )
    assert upload == "upload_folder" and sent["repo_id"] == "me/no-dog" and sent["folder"] == out
    assert fake.complete and "checkpoints/*" in sent["ignore_patterns"] and "dog" in sent["commit_message"]
    files = hub.files_to_upload(out)
    for name in ("model_index.json", "pipeline_sfd.py", "README.md", "samples.png", "training.json"):
        assert name in files
    assert (out / "checkpoints").is_dir() and (out / "logs").is_dir()
    assert not any(f.startswith(("checkpoints/", "logs/")) for f in files)


def test_the_default_repository_is_the_output_folders_name(pushed, monkeypatch):
    out, _, _ = pushed
    fake = FakeHub()
    monkeypatch.setattr(hub, "create_repo", fake.create_repo)
    monkeypatch.setattr(hub, "upload_folder", fake.upload_folder)
    cfg = load_config(overrides=dict(output_dir=str(out), push_to_hub=True, hub_private_repo=True))
    files = hub.push_to_hub(cfg, out)
    assert fake.calls[0][1]["repo_id"] == "no-dog" and fake.calls[0][1]["private"] is True
    assert fake.calls[1][1]["repo_id"] == "me/no-dog"  # the id create_repo answered, with the account
    assert files == hub.files_to_upload(out) and "README.md" in files


def test_push_to_hub_offline_is_refused_before_training(tiny_teacher, tmp_path, monkeypatch):
    import sfd.training.trainer as trainer

    monkeypatch.setattr(trainer.SFDTrainer, "__init__", lambda *a, **k: pytest.fail("model loaded"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TrainingSetupError, match="--push_to_hub needs the network, but HF_HUB_OFFLINE=1"):
        sfd.forget(tiny_teacher, forget="class=dog", output_dir=str(tmp_path / "o"), push_to_hub=True)


def test_bad_hub_repository_ids_are_refused(tiny_teacher, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="hub_model_id must be a Hub repository id"):
        load_config(overrides=dict(hub_model_id="me/two/slashes"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(TrainingSetupError, match="output folder's name"):
        sfd.forget(tiny_teacher, forget="class=dog", output_dir=str(tmp_path / "no dog"), push_to_hub=True)


def test_base_model_and_license_follow_the_teacher(tmp_path):
    assert hub_base_model("stabilityai/sd-turbo") == "stabilityai/sd-turbo"
    assert hub_base_model(str(tmp_path)) is None and teacher_name(str(ROOT / "assets" / "teacher")) == "assets/teacher"
    assert hub_base_model(object()) is None and hub_base_model("None") is None  # an in-memory pipeline names no id
    (tmp_path / "README.md").write_text("---\nlicense: mit\n---\n# a teacher\n")
    assert card_license(load_config(overrides=dict(teacher=str(tmp_path)))) == "mit"
    assert card_license(load_config(overrides=dict(teacher=str(tmp_path), license="cc-by-4.0"))) == "cc-by-4.0"
    assert card_license(load_config(overrides=dict(teacher=str(tmp_path / "missing")))) == "other"


@pytest.mark.parametrize(
    "folder,teacher", [("sfd-trouser", "assets/teacher"), ("sfd-t2i-sneaker", "assets/t2i-teacher")]
)
def test_the_shipped_one_step_cards_have_the_same_front_matter(folder, teacher):
    meta = front_matter(ROOT / "assets" / folder / "README.md")
    assert meta["library_name"] == "diffusers" and meta["license"] == "apache-2.0"
    assert meta["pipeline_tag"] in ("unconditional-image-generation", "text-to-image")
    assert {"machine-unlearning", "sfd", "one-step", "diffusers"} <= set(meta["tags"])
    assert meta["sfd"]["teacher"] == teacher and meta["sfd"]["forget"]
    assert json.loads((ROOT / "assets" / folder / "training.json").read_text())["teacher"] == teacher


def test_a_layered_run_uploads_its_last_stage_only(tmp_path):
    from sfd.training.layered import stage_configs

    cfg = load_config(overrides=dict(forget="class=cat,dog", layers=2, output_dir=str(tmp_path), push_to_hub=True))
    assert [stage.push_to_hub for stage in stage_configs(cfg, ["cat", "dog"])] == [False, True]
