"""Saved pipeline folders are self-contained: they load with diffusers alone, without this package."""

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from sfd.core.loading import load_pipeline
from sfd.pipelines import OneStepClassConditionalPipeline, OneStepTextToImagePipeline
from sfd.pipelines.standalone import MODULE_NAME, module_source
from tests.helpers import make_t2i_teacher, make_teacher

ROOT = Path(__file__).resolve().parent.parent
RECORD = json.loads((Path(__file__).parent / "data" / "asset_samples.json").read_text())

# Runs in a fresh interpreter in which `import sfd` fails; prints the first pixels of two images per folder.
WITHOUT_SFD = textwrap.dedent(
    """
    import json, sys
    sys.modules["sfd"] = None  # importing sfd (or anything under it) now raises ImportError
    import torch
    from diffusers import DiffusionPipeline

    out = {}
    for folder in sys.argv[1:]:
        pipe = DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)
        pipe.set_progress_bar_config(disable=True)
        generator = torch.Generator().manual_seed(0)
        if getattr(pipe, "id2label", None):
            images = pipe(class_labels=[1, min(7, pipe.num_classes - 1)], generator=generator, output_type="pt").images
        else:
            images = pipe(prompt=["a photo of a trouser", "a photo of a sneaker"], generator=generator, output_type="pt").images
        out[folder] = {"module": type(pipe).__module__, "class": type(pipe).__name__,
                       "pixels": images.flatten()[::97][:12].tolist()}
    print("RESULT" + json.dumps(out))
    """
)


def run_without_sfd(folders, tmp_path) -> dict:
    env = {"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_SFD, *map(str, folders)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
    return json.loads(line[len("RESULT") :])


def pixels(pipe) -> list[float]:
    pipe.set_progress_bar_config(disable=True)
    generator = torch.Generator().manual_seed(0)
    if getattr(pipe, "id2label", None):
        images = pipe(class_labels=[1, min(7, pipe.num_classes - 1)], generator=generator, output_type="pt").images
    else:
        images = pipe(prompt=["a photo of a trouser", "a photo of a sneaker"], generator=generator, output_type="pt")
        images = images.images
    return images.flatten()[::97][:12].tolist()


def test_module_file_imports_only_the_diffusers_stack():
    tree = ast.parse(module_source("OneStepTextToImagePipeline"))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, "a relative import was left in the module file"
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
    assert roots - set(sys.stdlib_module_names) <= {
        "torch",
        "numpy",
        "diffusers",
        "transformers",
        "PIL",
        "huggingface_hub",
    }
    classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    assert "OneStepTextToImagePipeline" in classes and "PromptLatentMixin" in classes
    assert not classes & {"TextToImageDiffusionPipeline", "ClassConditionalDiffusionPipeline"}  # one pipeline a file


def tiny_folders(tmp_path) -> list[Path]:
    teacher = make_teacher(tmp_path / "teacher")
    t2i = make_t2i_teacher(tmp_path / "t2i", with_vae=True)
    one_step = tmp_path / "one-step"
    t = load_pipeline(str(teacher))
    OneStepClassConditionalPipeline(t.unet, t.scheduler, id2label=t.id2label, sigma_init=2.0).save_pretrained(one_step)
    one_step_t2i = tmp_path / "one-step-t2i"
    s = load_pipeline(str(t2i))
    OneStepTextToImagePipeline(s.unet, s.text_encoder, s.tokenizer, s.scheduler, vae=s.vae).save_pretrained(
        one_step_t2i
    )
    return [Path(f) for f in (teacher, t2i, one_step, one_step_t2i)]


def test_saved_folders_load_and_sample_without_this_package(tmp_path):
    folders = tiny_folders(tmp_path)
    for folder in folders:
        index = json.loads((folder / "model_index.json").read_text())
        assert index["_class_name"][0] == MODULE_NAME
        assert (folder / f"{MODULE_NAME}.py").read_text() == module_source(index["_class_name"][1])
    result = run_without_sfd(folders, tmp_path)
    for folder in folders:
        got = result[str(folder)]
        assert got["module"].endswith(MODULE_NAME) and not got["module"].startswith("sfd")
        assert got["class"] == json.loads((folder / "model_index.json").read_text())["_class_name"][1]
        assert torch.allclose(torch.tensor(got["pixels"]), torch.tensor(pixels(load_pipeline(str(folder)))), atol=1e-6)


def test_loading_without_trust_remote_code_fails_with_diffusers_message(tmp_path):
    from diffusers import DiffusionPipeline

    folder = make_teacher(tmp_path / "teacher")
    with pytest.raises(ValueError, match="trust_remote_code"):
        DiffusionPipeline.from_pretrained(folder)


def test_a_folder_saved_by_the_standalone_class_is_self_contained_again(tmp_path):
    folder = make_teacher(tmp_path / "teacher")
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)
    assert not type(pipe).__module__.startswith("sfd")
    pipe.save_pretrained(tmp_path / "again")
    again = (tmp_path / "again" / f"{MODULE_NAME}.py").read_text()
    assert again == module_source("ClassConditionalDiffusionPipeline")
    assert load_pipeline(str(tmp_path / "again")).id2label == pipe.id2label


SHIPPED = sorted(RECORD["pixels"])


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_folders_carry_the_current_module_file(name):
    folder = ROOT / "assets" / name
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"][0] == MODULE_NAME, f"run `python -m sfd.cli.self_contained {folder}`"
    assert (folder / f"{MODULE_NAME}.py").read_text() == module_source(index["_class_name"][1]), (
        f"{folder}/{MODULE_NAME}.py is stale: run `python -m sfd.cli.self_contained assets/*/`"
    )


def test_shipped_folders_draw_the_recorded_samples_without_this_package(tmp_path):
    result = run_without_sfd([ROOT / "assets" / n for n in SHIPPED], tmp_path)
    for name in SHIPPED:
        got = torch.tensor(result[str(ROOT / "assets" / name)]["pixels"])
        assert torch.allclose(got, torch.tensor(RECORD["pixels"][name]), atol=1e-5), name


def test_custom_pipeline_names_the_folder_module_file(tmp_path):
    """diffusers' other route to a custom pipeline: `custom_pipeline=` the module file (here the folder's own)."""
    from diffusers import DiffusionPipeline

    folder = make_teacher(tmp_path / "teacher")
    pipe = DiffusionPipeline.from_pretrained(
        folder, custom_pipeline=str(folder / f"{MODULE_NAME}.py"), trust_remote_code=True
    )
    assert type(pipe).__name__ == "ClassConditionalDiffusionPipeline" and not type(pipe).__module__.startswith("sfd")
    assert torch.allclose(torch.tensor(pixels(pipe)), torch.tensor(pixels(load_pipeline(str(folder)))), atol=1e-6)
