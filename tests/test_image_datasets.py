"""Any `datasets` image-classification dataset for the project's own recipes (`--dataset`): a tiny three-class RGB
dataset built here, as an `imagefolder` directory of PNGs and as a `save_to_disk` folder, read through
`sfd.data.image_datasets` and trained on by the teacher, classifier and CLIP recipes for a couple of steps."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from sfd.data.fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist
from sfd.data.image_datasets import ImageSizeError, load_image_dataset, load_images

NAMES = ("cat", "dog", "frog")
PER_CLASS, SIZE = 4, 8


def pixels(c: int, i: int, split: str) -> np.ndarray:
    """Image i of class c: a flat colour that encodes (class, index, split), so every row can be checked."""
    red = 40 * c + 5 * i + (2 if split == "test" else 0)
    return np.tile(np.array([red, 255 - red, 20 * i], dtype=np.uint8), (SIZE, SIZE, 1))


def decoded_class(x: torch.Tensor) -> torch.Tensor:
    """The class an image of `pixels` encodes, read back from its red value in [-1, 1]."""
    return ((x[:, 0, 0, 0] + 1) * 127.5).round().long() // 40


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """(imagefolder directory, save_to_disk folder) of the same images; the datasets cache kept in the test's folder."""
    import datasets
    from datasets import ClassLabel, Dataset, DatasetDict

    root = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(datasets.config, "HF_DATASETS_CACHE", str(root / "cache"))
        splits = {}
        for split in ("train", "test"):
            rows = {"img": [], "label": []}
            for c, name in enumerate(NAMES):
                (root / "folder" / split / name).mkdir(parents=True)
                for i in range(PER_CLASS):
                    Image.fromarray(pixels(c, i, split)).save(root / "folder" / split / name / f"{i}.png")
                    rows["img"].append(Image.fromarray(pixels(c, i, split)))
                    rows["label"].append(c)
            ds = Dataset.from_dict(rows).cast_column("img", datasets.Image())
            splits[split] = ds.cast_column("label", ClassLabel(names=list(NAMES)))
        DatasetDict(splits).save_to_disk(str(root / "saved"))
        yield str(root / "folder"), str(root / "saved")


@pytest.mark.parametrize("route", ["imagefolder", "save_to_disk"])
def test_a_local_dataset_loads_as_images_in_minus_one_one_with_its_labels_and_class_names(data, route):
    folder = data[0] if route == "imagefolder" else data[1]
    x, y, names = load_image_dataset(folder, "test")
    assert names == NAMES
    assert x.shape == (3 * PER_CLASS, 3, SIZE, SIZE) and x.dtype == torch.float32 and y.dtype == torch.long
    assert sorted(y.tolist()) == [0] * 4 + [1] * 4 + [2] * 4
    assert torch.equal(decoded_class(x), y)  # each image carries its own label
    expected = torch.stack(
        [torch.from_numpy(pixels(int(c), i, "test")).permute(2, 0, 1) for c in range(3) for i in range(PER_CLASS)]
    )
    got = ((x + 1) * 127.5).round().to(torch.uint8)
    assert sorted(map(tuple, got[:, :, 0, 0].tolist())) == sorted(map(tuple, expected[:, :, 0, 0].tolist()))
    assert float(x.min()) == -1 and float(x.max()) == pytest.approx(253 / 127.5 - 1)  # blue 0; green 255 - 2
    gray, _, _ = load_image_dataset(folder, "test", channels=1, image_size=4)
    assert gray.shape == (12, 1, 4, 4)


def test_fashion_mnist_from_debians_package_stays_the_default():
    x, y, names = load_images(None, "test")
    fx, fy = load_fashion_mnist("test")
    assert names == FASHION_MNIST_CLASSES and torch.equal(x, fx) and torch.equal(y, fy) and x.shape[1:] == (1, 28, 28)


def test_bad_datasets_columns_and_splits_are_clear_errors(data, tmp_path, capsys):
    from datasets import ClassLabel, Dataset, DatasetDict, Value
    from datasets import Image as ImageFeature

    folder, saved = data
    with pytest.raises(FileNotFoundError, match="dataset folder not found"):
        load_image_dataset(str(tmp_path / "missing"), "train")
    with pytest.raises(ValueError, match=r"no 'eval' split; its splits are \['test', 'train'\]"):
        load_images(saved, "eval")
    with pytest.raises(ValueError, match=r"no column 'image'; its columns are: img \(Image\), label \(ClassLabel\)"):
        load_image_dataset(saved, "train", image_column="image")
    with pytest.raises(ValueError, match="column 'img' .* is Image, not ClassLabel"):
        load_image_dataset(saved, "train", label_column="img")

    base = Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]}).cast_column("label", ClassLabel(names=["x", "y"]))
    base.save_to_disk(str(tmp_path / "text"))
    with pytest.raises(ValueError, match=r"no columns of type Image; its columns are: text \(Value\)"):
        load_image_dataset(str(tmp_path / "text"), "train")

    two = Dataset.from_dict({"img": [Image.fromarray(pixels(0, 0, "train"))] * 2, "fine": [0, 1], "coarse": [1, 0]})
    two = two.cast_column("fine", ClassLabel(names=["a", "b"])).cast_column("coarse", ClassLabel(names=["p", "q"]))
    two = two.cast_column("img", ImageFeature())
    DatasetDict(train=two, validation=two.cast_column("coarse", Value("int64"))).save_to_disk(str(tmp_path / "two"))
    with pytest.raises(ValueError, match="2 columns of type ClassLabel.*--label_column"):
        load_image_dataset(str(tmp_path / "two"), "train")
    x, y, names = load_image_dataset(str(tmp_path / "two"), "train", label_column="coarse")
    assert names == ("p", "q") and y.tolist() == [1, 0]
    _, y, names = load_image_dataset(str(tmp_path / "two"), "test")  # no test split: validation stands in
    assert names == ("a", "b") and y.tolist() == [0, 1]
    assert "has no 'test' split; using its 'validation' split" in capsys.readouterr().out

    mixed = tmp_path / "mixed"
    for name, size in (("a", 8), ("b", 6)):
        (mixed / name).mkdir(parents=True)
        Image.fromarray(np.zeros((size, size), dtype=np.uint8)).save(mixed / name / "0.png")
    with pytest.raises(ImageSizeError, match="differ in size .*6×6, 8×8.*--image_size"):
        load_image_dataset(str(mixed), "train")
    x, y, names = load_image_dataset(str(mixed), "train", image_size=4)
    assert x.shape == (2, 1, 4, 4) and names == ("a", "b")  # grayscale PNGs stay one channel


def test_teacher_recipe_trains_on_the_dataset_and_exports_its_classes_and_shape(data, tmp_path):
    from sfd.core.loading import load_pipeline
    from sfd.pretrain import teacher

    out = tmp_path / "teacher"
    args = ["--dataset", data[1], "--output_dir", str(out), "--work_dir", str(tmp_path / "work"), "--batch_size", "4"]
    tiny = ["--block_out_channels", "16", "32", "32", "--checkpoint_every", "1", "--mixed_precision", "no"]
    teacher.main(args + tiny + ["--max_steps", "2", "--exclude_class", "dog"])
    pipe = load_pipeline(str(out))
    assert dict(pipe.config.id2label) == {"0": "cat", "1": "dog", "2": "frog"}  # every class, "dog" left out or not
    cfg = pipe.unet.config
    assert (cfg.in_channels, cfg.out_channels, cfg.sample_size, cfg.num_class_embeds) == (3, 3, 8, 4)
    assert list(cfg.block_out_channels) == [16, 32, 32]
    assert json.loads((out / "training_steps.json").read_text()) == {"steps": 2, "dataset": data[1]}
    pipe.set_progress_bar_config(disable=True)
    images = pipe(
        class_labels=["cat", "frog"],
        num_inference_steps=2,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
    ).images
    assert images.shape == (2, SIZE, SIZE, 3) and np.isfinite(images).all()
    with pytest.raises(SystemExit, match=r"unknown class 'trouser'; valid: \['cat', 'dog', 'frog'\]"):
        teacher.main(args + tiny + ["--max_steps", "1", "--exclude_class", "trouser"])


@pytest.fixture(scope="module")
def classifier(data, tmp_path_factory):
    """The classifier recipe, one epoch on the imagefolder route: (its folder, the accuracy main returned)."""
    from sfd.pretrain import classifier as recipe

    out = tmp_path_factory.mktemp("classifier") / "out"
    acc = recipe.main(["--dataset", data[0], "--output_dir", str(out), "--epochs", "1", "--batch_size", "4"])
    return out, acc


def test_classifier_recipe_trains_on_the_dataset_with_its_labels_channels_and_size(classifier, data):
    from transformers import AutoModelForImageClassification

    from sfd.evaluation.judges import ImageClassifierJudge

    out, acc = classifier
    model = AutoModelForImageClassification.from_pretrained(out)
    assert model.config.id2label == {0: "cat", 1: "dog", 2: "frog"} and model.config.num_channels == 3
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"] == data[0] and metrics["test_images"] == 12 and metrics["test_accuracy"] == acc
    assert 0 <= acc <= 1
    processor = json.loads((out / "preprocessor_config.json").read_text())
    assert processor["size"] == {"height": SIZE, "width": SIZE} and processor["image_mean"] == [0.5, 0.5, 0.5]
    card = (out / "README.md").read_text()
    assert f"# `{data[0]}` image classifier" in card and "3 input channels" in card and "8×8 RGB" in card
    assert f"--dataset {data[0]} --output_dir {out}" in card and "Fashion" not in card
    x, _, _ = load_image_dataset(data[0], "test")
    assert ImageClassifierJudge.from_pretrained(out).probs((x + 1) / 2).shape == (12, 3)


def test_make_reference_from_the_dataset_writes_features_labels_and_predictions(classifier, data, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file

    from sfd.cli.eval import main
    from tests.helpers import make_classifier

    ref = tmp_path / "ref.safetensors"
    main(["--make-reference", "--dataset", data[1], "--classifier", str(classifier[0]), "--reference_stats", str(ref)])
    stats = load_file(str(ref))
    _, y, _ = load_image_dataset(data[1], "test")
    assert torch.equal(stats["labels"], y) and stats["features"].shape == (12, 128)  # the ResNet's last width
    assert stats["predictions"].shape == (12,) and set(stats["predictions"].tolist()) <= {0, 1, 2}
    with safe_open(str(ref), "pt") as f:
        assert f.metadata()["source"] == f"{data[1]} test"

    other = make_classifier(tmp_path / "other")  # labelled cat / dog / bird / fish: no frog
    with pytest.raises(ValueError, match=r"no label for generator class\(es\) \['frog'\]"):
        main(["--make-reference", "--dataset", data[1], "--classifier", str(other), "--reference_stats", str(ref)])
    with pytest.raises(SystemExit, match="not both"):
        main(["--make-reference", data[0], "--dataset", data[1], "--classifier", str(other)])


def test_teacher_measures_with_the_datasets_classifier_and_names_the_dataset(classifier, data, tmp_path):
    from sfd.pretrain import teacher

    out = tmp_path / "teacher"
    args = ["--dataset", data[1], "--output_dir", str(out), "--work_dir", str(tmp_path / "work"), "--batch_size", "4"]
    teacher.main(args + ["--max_steps", "1", "--block_out_channels", "16", "32", "32", "--mixed_precision", "no"])
    measure = ["--measure_only", "--classifier", str(classifier[0]), "--reference_stats", "none"]
    result = teacher.main(["--output_dir", str(out), *measure, "--measure_samples_per_class", "2"])
    assert result["dataset"] == data[1] and result["samples"] == 6 and set(result["per_class_accuracy"]) == set(NAMES)
    assert json.loads((out / "metrics.json").read_text())["dataset"] == data[1]
    card = (out / "README.md").read_text()
    assert f"# `{data[1]}` class-conditional teacher" in card and "class id 3 is the null label" in card
    assert f"--dataset {data[1]} --block_out_channels 16 32 32 --output_dir {out}" in card


def test_clip_and_text_to_image_recipes_train_on_the_dataset(data, tmp_path):
    from transformers import CLIPModel

    from sfd.core.loading import load_pipeline
    from sfd.pretrain import clip, text_to_image

    acc = clip.main(
        ["--dataset", data[1], "--output_dir", str(tmp_path / "clip"), "--steps", "2", "--batch_size", "4"]
    )
    model = CLIPModel.from_pretrained(tmp_path / "clip")
    vision = model.config.vision_config
    assert (vision.image_size, vision.num_channels, vision.patch_size) == (SIZE, 3, 4) and 0 <= acc <= 1
    metrics = json.loads((tmp_path / "clip" / "metrics.json").read_text())
    assert metrics["dataset"] == data[1] and metrics["test_images"] == 12
    assert "4×4 patches of 8×8 RGB images" in (tmp_path / "clip" / "README.md").read_text()

    out = tmp_path / "t2i"
    text_to_image.main(
        ["--dataset", data[1], "--clip", str(tmp_path / "clip"), "--output_dir", str(out)]
        + ["--work_dir", str(tmp_path / "work"), "--max_steps", "1", "--batch_size", "4", "--mixed_precision", "no"]
    )
    pipe = load_pipeline(str(out))
    assert list(pipe.config.concepts) == list(NAMES) and "a photo of a frog" in (out / "prompts.txt").read_text()
    pipe.set_progress_bar_config(disable=True)
    images = pipe("a photo of a cat", num_inference_steps=2, output_type="np").images
    assert images.shape == (1, SIZE, SIZE, 3) and np.isfinite(images).all()
