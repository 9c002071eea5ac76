"""sfd-eval: how much a class-conditional model still draws the forgotten classes, and how well the rest.

    sfd-eval --model OUT_DIR [--reference TEACHER_DIR] --forget "class=trouser" --report REPORT_DIR

Per class, samples are labelled by a `transformers` image classifier (default: assets/classifier).
For forgotten classes: forget accuracy (share of that class's samples still classified as it), UA = 1 −
that, mean probability of the forgotten class, mean predictive entropy, and the forget-accuracy floor: what
a perfect eraser would score, because the classifier also calls some real images of the override classes by
the forgotten name. For the remaining classes:
accuracy and FID against real test images of those classes, in the classifier's feature space
(assets/fid_reference.safetensors). Intervals are percentile bootstrap 95%.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from .judges import DEFAULT_CLASSIFIER, DEFAULT_CLIP, CLIPJudge, ImageClassifierJudge
from .metrics import bootstrap_ci, bootstrap_fid, entropy, feature_statistics, frechet_distance, precision_recall
from .sampling import load_pipeline, nfe_per_image, sample_classes, sample_prompts
from .spec import ForgetSpec

DEFAULT_REFERENCE_STATS = Path(__file__).resolve().parent.parent / "assets" / "fid_reference.safetensors"


def load_reference(path=DEFAULT_REFERENCE_STATS) -> dict[str, torch.Tensor]:
    """The reference images' classifier "features", their "labels" and (in files made since the floor was added) the
    classifier's "predictions"."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"FID reference features not found: {path} (make them with `sfd-eval --make-reference`)")
    return load_file(str(path))


def load_reference_features(path=DEFAULT_REFERENCE_STATS) -> tuple[torch.Tensor, torch.Tensor]:
    data = load_reference(path)
    return data["features"], data["labels"]


def load_reference_predictions(path=DEFAULT_REFERENCE_STATS) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(true labels, the classifier's predicted labels) of the reference images; None for a reference file made
    before predictions were recorded (or none at all)."""
    if not Path(path).exists():
        return None
    data = load_reference(path)
    return (data["labels"], data["predictions"]) if "predictions" in data else None


def forget_accuracy_floor(ref_labels: torch.Tensor, ref_predictions: torch.Tensor, spec: ForgetSpec,
                          label_map: dict[int, int]) -> float:
    """The forget accuracy of a perfect eraser that draws real images of the override class(es): the share the
    classifier labels as the forgotten class, averaged as the override is drawn (uniformly over the remaining
    classes for `random`, over the pool for `far`) and over the forgotten classes."""
    rates = [(ref_predictions[ref_labels == label_map[c]] == label_map[f]).double().mean()
             for f in spec.forget for c in spec.override_classes]
    return float(torch.stack(rates).mean())


def classify(judge: ImageClassifierJudge, images: torch.Tensor, batch_size: int = 500):
    logits, feats = zip(*(judge.logits_and_features(images[i : i + batch_size]) for i in range(0, len(images), batch_size)))
    return torch.cat(logits).softmax(-1), torch.cat(feats)


def class_metrics(probs: torch.Tensor, feats: torch.Tensor, labels: torch.Tensor, spec: ForgetSpec,
                  label_map: dict[int, int], ref_features: torch.Tensor | None = None,
                  ref_labels: torch.Tensor | None = None, seed: int = 0,
                  ref_predictions: torch.Tensor | None = None) -> dict:
    """All classifier-based figures from per-sample probabilities; `labels` are generator class ids. With the
    reference images' labels and the classifier's predictions of them, also the forget-accuracy floor."""
    cls_of = torch.tensor([label_map[int(c)] for c in labels])
    hit = (probs.argmax(-1) == cls_of).numpy().astype(np.float64)
    own_prob = probs.gather(1, cls_of[:, None]).squeeze(1).numpy()
    ent = entropy(probs).numpy()
    forgotten = spec.is_forgotten(labels).numpy()
    m: dict = {"per_class_accuracy": {}}
    for gid, name in spec.id2label.items():
        sel = labels.numpy() == gid
        if sel.any():
            m["per_class_accuracy"][name] = float(hit[sel].mean())
    if forgotten.any():
        fa = hit[forgotten]  # divided by the number of samples of the forgotten class(es) only
        m.update(forget_accuracy=float(fa.mean()), forget_accuracy_ci=bootstrap_ci(fa, seed=seed),
                 unlearning_accuracy=float(1 - fa.mean()), forget_prob_mean=float(own_prob[forgotten].mean()),
                 forget_entropy_mean=float(ent[forgotten].mean()), forget_samples=int(forgotten.sum()))
        if ref_labels is not None and ref_predictions is not None:
            m["forget_accuracy_floor"] = forget_accuracy_floor(ref_labels, ref_predictions, spec, label_map)
    rem = ~forgotten
    m.update(remaining_accuracy=float(hit[rem].mean()), remaining_accuracy_ci=bootstrap_ci(hit[rem], seed=seed),
             remaining_samples=int(rem.sum()))
    if ref_features is not None:
        ref_cls = [label_map[i] for i in spec.remaining]
        ref = ref_features[torch.isin(ref_labels, torch.tensor(ref_cls))].numpy()
        mu_r, sig_r = feature_statistics(ref)
        f = feats[torch.from_numpy(rem)].numpy()
        precision, recall = precision_recall(ref, f, seed=seed)
        m.update(fid_remaining=frechet_distance(*feature_statistics(f), mu_r, sig_r),
                 fid_remaining_ci=bootstrap_fid(f, mu_r, sig_r, seed=seed), fid_reference_images=len(ref),
                 precision_remaining=precision, recall_remaining=recall)
    return m


def recorded_override(model, forget_names: list[str]) -> str | None:
    """`class=NAME` (or `class=A,B,…` for a pool) when `model` is a folder whose training.json records a fixed override
    (given or chosen by `auto`) or a pool (chosen by `far`) for exactly these forgotten classes; None (a random
    override among every remaining class) otherwise."""
    path = Path(str(model)) / "training.json"
    if not forget_names or not path.is_file():
        return None
    record = json.loads(path.read_text())
    if sorted(record.get("forget") or []) != sorted(forget_names):
        return None
    if record.get("override_pool"):
        return "class=" + ",".join(record["override_pool"])
    override = record.get("override")
    return f"class={override}" if isinstance(override, str) and override != "random" else None


def evaluate_model(model, forget: str | None, override: str | None = None, classifier=DEFAULT_CLASSIFIER,
                   reference_stats=DEFAULT_REFERENCE_STATS, num_samples_per_class: int = 100,
                   batch_size: int = 100, seed: int = 0, progress: bool = True,
                   num_forget_samples: int | None = None, clip=None, prompt_template: str = "a photo of a {}",
                   gold=None, keep_features: bool = False) -> dict:
    """Sample `num_samples_per_class` images of every remaining class (and `num_forget_samples`, default
    the same, of every forgotten class) from `model` and measure them. With `clip` (a CLIPJudge or a
    path) also CLIP's zero-shot detection of the forgotten classes and the CLIP score of the rest. With
    `gold` (a `GoldSamples` or a gold model's folder) also the alignment with it (`sfd.gold`).
    `keep_features` adds the remaining samples' classifier features (an array) as "features_remaining"."""
    pipe = load_pipeline(model)
    pipe.set_progress_bar_config(disable=True)
    if override is None:  # the floor is the override's: take the one the run recorded (e.g. chosen by `auto`)
        override = recorded_override(model, ForgetSpec.parse(forget or None, None, pipe.id2label).forget_names)
    spec = ForgetSpec.parse(forget or None, override, pipe.id2label, allow_auto=False)
    judge = classifier if isinstance(classifier, ImageClassifierJudge) else ImageClassifierJudge.from_pretrained(classifier)
    label_map = judge.match_labels(spec.id2label)
    n_forget = num_samples_per_class if num_forget_samples is None else num_forget_samples
    labels = torch.cat([torch.full((num_samples_per_class,), c) for c in spec.remaining]
                       + [torch.full((n_forget,), c) for c in spec.forget])
    images, seconds = sample_classes(pipe, labels.tolist(), batch_size, seed, progress)
    probs, feats = classify(judge, images)
    ref = load_reference(reference_stats) if reference_stats else {}
    m = class_metrics(probs, feats, labels, spec, label_map, ref.get("features"), ref.get("labels"), seed,
                      ref_predictions=ref.get("predictions"))
    feats_remaining = feats[~spec.is_forgotten(labels)].numpy()
    if gold is not None:
        from .gold import GoldSamples, gold_alignment

        if not isinstance(gold, GoldSamples):
            gold = GoldSamples.from_model(gold, forget, seed, override=override, classifier=judge,
                                          num_samples_per_class=num_samples_per_class, batch_size=batch_size,
                                          progress=progress, num_forget_samples=num_forget_samples)
        m.update(gold_alignment(feats_remaining, m["per_class_accuracy"], gold, seed))
    if keep_features:
        m["features_remaining"] = feats_remaining
    if clip is not None:
        clip = clip if isinstance(clip, CLIPJudge) else CLIPJudge.from_pretrained(clip)
        m.update(clip_metrics(clip, images, labels, spec, prompt_template, seed))
    m.update(kind="class", model=str(model) if isinstance(model, (str, os.PathLike)) else type(pipe).__name__,
             forget=spec.describe()["forget"], num_samples_per_class=num_samples_per_class,
             num_forget_samples=n_forget, seed=seed,
             batch_size=batch_size, sampling_seconds=seconds, images_per_second=len(labels) / seconds,
             nfe_per_image=nfe_per_image(pipe))
    return m


def clip_metrics(clip: CLIPJudge, images: torch.Tensor, labels: torch.Tensor, spec: ForgetSpec,
                 template: str = "a photo of a {}", seed: int = 0) -> dict:
    """clip_forget_detection: share of forgotten-class samples whose zero-shot class (over all class
    prompts) is a forgotten one; clip_score: mean CLIPScore of remaining-class samples with their prompt."""
    names = [spec.id2label[i] for i in sorted(spec.id2label)]
    prompts = [template.format(n) for n in names]
    forgotten = spec.is_forgotten(labels)
    m: dict = {}
    if forgotten.any():
        pred = torch.cat([clip.zero_shot(images[forgotten][i : i + 500], prompts) for i in range(0, int(forgotten.sum()), 500)])
        hit = torch.isin(pred, torch.tensor(spec.forget)).numpy().astype(np.float64)
        m.update(clip_forget_detection=float(hit.mean()), clip_forget_detection_ci=bootstrap_ci(hit, seed=seed))
    rem = ~forgotten
    rem_images, rem_prompts = images[rem], [prompts[int(c)] for c in labels[rem]]
    scores = torch.cat([clip.clip_score(rem_images[i : i + 500], rem_prompts[i : i + 500])
                        for i in range(0, len(rem_images), 500)]).numpy()
    m.update(clip_score=float(scores.mean()), clip_score_ci=bootstrap_ci(scores, seed=seed))
    return m


def evaluation_prompts(forget_concepts, concepts, forget_prompts=(), remain_prompts=(), template: str = "a photo of a {}",
                       max_prompts: int = 16) -> tuple[list[str], list[str]]:
    """(forget, remaining) prompts to measure: one template prompt per concept when the model lists its
    concepts, else up to `max_prompts` evenly spaced prompts of each kind."""
    if concepts:
        low = {c.lower() for c in forget_concepts}
        return ([template.format(c) for c in concepts if c.lower() in low],
                [template.format(c) for c in concepts if c.lower() not in low])
    pick = lambda xs: [xs[int(i)] for i in np.linspace(0, len(xs) - 1, min(max_prompts, len(xs)))] if xs else []  # noqa: E731
    return pick(list(forget_prompts)), pick(list(remain_prompts))


def text_metrics(clip: CLIPJudge, images: torch.Tensor, prompts: list[str], forgotten: torch.Tensor,
                 candidates: list[str], forget_concepts: list[str], template: str = "a photo of a {}",
                 seed: int = 0) -> dict:
    """CLIP figures of text-to-image samples (images in [0, 1], one prompt each):
    clip_forget_detection — share of forget-prompt samples whose zero-shot concept (among `candidates`)
    is a forgotten one; clip_score_remaining — mean CLIPScore of the other samples with their prompt;
    clip_accuracy_remaining — share of those whose zero-shot concept is the one their prompt names."""
    from .prompts import concept_pattern

    cand_prompts = [template.format(c) for c in candidates]
    pred = torch.cat([clip.zero_shot(images[i : i + 500], cand_prompts) for i in range(0, len(images), 500)])
    pred_names = [candidates[int(i)].lower() for i in pred]
    m: dict = {"per_prompt_clip_accuracy": {}}
    forgotten = forgotten.numpy()
    if forgotten.any() and forget_concepts:
        low = {c.lower() for c in forget_concepts}
        hit = np.array([n in low for n, f in zip(pred_names, forgotten) if f], dtype=np.float64)
        m.update(clip_forget_detection=float(hit.mean()), clip_forget_detection_ci=bootstrap_ci(hit, seed=seed),
                 forget_samples=int(forgotten.sum()))
    named = [next((c.lower() for c in candidates if concept_pattern([c]).search(p)), None) for p in prompts]
    correct = np.array([n is not None and n == want for n, want in zip(pred_names, named)], dtype=np.float64)
    for prompt in dict.fromkeys(prompts):
        sel = np.array([p == prompt for p in prompts])
        if named[int(np.argmax(sel))] is not None:
            m["per_prompt_clip_accuracy"][prompt] = float(correct[sel].mean())
    rem = ~forgotten
    if rem.any():
        rem_idx = np.flatnonzero(rem)
        scores = torch.cat([clip.clip_score(images[rem_idx[i : i + 500]], [prompts[j] for j in rem_idx[i : i + 500]])
                            for i in range(0, len(rem_idx), 500)]).numpy()
        has_name = np.array([named[j] is not None for j in rem_idx])
        m.update(clip_score_remaining=float(scores.mean()), clip_score_remaining_ci=bootstrap_ci(scores, seed=seed),
                 remaining_samples=int(rem.sum()))
        if has_name.any():
            acc = correct[rem_idx][has_name]
            m.update(clip_accuracy_remaining=float(acc.mean()), clip_accuracy_remaining_ci=bootstrap_ci(acc, seed=seed))
    return m


def classifier_text_metrics(classifier, images: torch.Tensor, prompts: list[str], forgotten: torch.Tensor,
                            candidates: list[str], forget_concepts: list[str],
                            reference_stats=DEFAULT_REFERENCE_STATS, seed: int = 0) -> dict:
    """The image classifier's verdicts on samples of prompts that name one of its classes:
    classifier_forget_accuracy / classifier_accuracy_remaining, and (with reference features) FID,
    precision and recall of the remaining samples against real images of the classes they name —
    the diversity check that CLIP scores do not make."""
    from .prompts import concept_pattern

    judge = classifier if isinstance(classifier, ImageClassifierJudge) else ImageClassifierJudge.from_pretrained(classifier)
    label_map = judge.match_labels(dict(enumerate(candidates)))
    probs, feats = classify(judge, images)
    pred = probs.argmax(-1)
    named = [next((i for i, c in enumerate(candidates) if concept_pattern([c]).search(p)), None) for p in prompts]
    hit = np.array([n is not None and int(pr) == label_map[n] for pr, n in zip(pred, named)], dtype=np.float64)
    has = np.array([n is not None for n in named])
    f = forgotten.numpy()
    m = {}
    if (f & has).any() and forget_concepts:
        m["classifier_forget_accuracy"] = float(hit[f & has].mean())
    rem = ~f & has
    if rem.any():
        m["classifier_accuracy_remaining"] = float(hit[rem].mean())
        if reference_stats:
            ref_f, ref_l = load_reference_features(reference_stats)
            classes = sorted({label_map[n] for n, r in zip(named, rem) if r})
            ref = ref_f[torch.isin(ref_l, torch.tensor(classes))].numpy()
            mu_r, sig_r = feature_statistics(ref)
            gen = feats[torch.from_numpy(rem)].numpy()
            precision, recall = precision_recall(ref, gen, seed=seed)
            m.update(fid_remaining=frechet_distance(*feature_statistics(gen), mu_r, sig_r),
                     precision_remaining=precision, recall_remaining=recall)
    return m


def evaluate_text_model(model, forget: str | None, override: str | None = None, clip=DEFAULT_CLIP,
                        prompts: list[str] | None = None, num_samples_per_prompt: int = 100,
                        num_forget_samples: int | None = None, batch_size: int = 100, seed: int = 0,
                        progress: bool = True, template: str = "a photo of a {}", classifier=None) -> dict:
    """Sample a text-to-image model on forget and remaining prompts and measure it with CLIP (and,
    when the concepts are a `classifier`'s labels, with that classifier as a second judge).

    Prompts: `prompts` if given (those naming a forgotten concept are forget prompts), else one
    "a photo of a {concept}" per concept the model lists in its config, else the forget spec's prompts
    (or templates filled with the concept) and configs/prompts/remain-general.txt (16 of each at most)."""
    from .prompts import concept_pattern, parse_forget, read_lines

    pipe = load_pipeline(model)
    pipe.set_progress_bar_config(disable=True)
    concepts, prompt_file = parse_forget(forget) if forget else ([], None)
    candidates = list(dict.fromkeys(list(pipe.concepts) + concepts + ([override] if override and not pipe.concepts else [])))
    if prompts is not None:
        pattern = concept_pattern(concepts) if concepts else None
        forget_p = [p for p in prompts if pattern and pattern.search(p)]
        remain_p = [p for p in prompts if p not in forget_p]
    else:  # models without a concept list (e.g. Stable Diffusion): the forget spec's prompts and the general list
        from .conditioning import GENERAL_REMAIN_PROMPTS
        from .prompts import DEFAULT_TEMPLATES

        file_prompts = read_lines(prompt_file, "--forget prompts") if prompt_file else \
            [t.format(c) for c in concepts for t in DEFAULT_TEMPLATES]
        general = [] if pipe.concepts else read_lines(GENERAL_REMAIN_PROMPTS, "remaining prompts")
        forget_p, remain_p = evaluation_prompts(concepts, pipe.concepts, file_prompts, general, template)
    if not candidates:
        raise ValueError("no concept names to detect: give --forget concept=… or a model whose config lists `concepts`")
    n_forget = num_samples_per_prompt if num_forget_samples is None else num_forget_samples
    all_prompts = [p for p in forget_p for _ in range(n_forget)] + [p for p in remain_p for _ in range(num_samples_per_prompt)]
    forgotten = torch.tensor([True] * (len(forget_p) * n_forget) + [False] * (len(remain_p) * num_samples_per_prompt))
    images, seconds = sample_prompts(pipe, all_prompts, batch_size, seed, progress)
    clip = clip if isinstance(clip, CLIPJudge) else CLIPJudge.from_pretrained(clip)
    m = text_metrics(clip, images, all_prompts, forgotten, candidates, concepts, template, seed)
    if classifier is not None:
        m.update(classifier_text_metrics(classifier, images, all_prompts, forgotten, candidates, concepts, seed=seed))
    m.update(kind="text", model=str(model) if isinstance(model, (str, os.PathLike)) else type(pipe).__name__, forget=concepts,
             forget_prompts=forget_p, remain_prompts=remain_p, samples_per_prompt=num_samples_per_prompt,
             num_forget_samples=n_forget, seed=seed, batch_size=batch_size, sampling_seconds=seconds,
             images_per_second=len(all_prompts) / seconds, nfe_per_image=nfe_per_image(pipe))
    return m


def make_reference(classifier=DEFAULT_CLASSIFIER, out=DEFAULT_REFERENCE_STATS, data_root=None,
                   image_dir: str | None = None) -> Path:
    """Classifier features of real images, saved for FID, with their labels and the classifier's predictions of
    them (for the forget-accuracy floor): the 10,000 Fashion-MNIST test images, or the images under `image_dir`
    (one sub-folder per class, named as the classifier's labels)."""
    from safetensors.torch import save_file

    judge = ImageClassifierJudge.from_pretrained(classifier)
    if image_dir:
        x, y = load_image_folder(image_dir, judge)
        source = str(image_dir)
    else:
        from .data import load_fashion_mnist

        x, y = load_fashion_mnist("test", data_root)
        x, source = (x + 1) / 2, "fashion-mnist test"
    probs, feats = classify(judge, x)
    tmp = Path(str(out) + ".tmp")
    save_file({"features": feats.contiguous(), "labels": y, "predictions": probs.argmax(-1)}, str(tmp),
              metadata={"source": source})
    os.replace(tmp, out)
    return Path(out)


def load_image_folder(image_dir, judge: ImageClassifierJudge) -> tuple[torch.Tensor, torch.Tensor]:
    """Images in [0, 1] and classifier label ids from `image_dir/<class name>/*.png|jpg`."""
    from PIL import Image

    root = Path(image_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    by_name = {v.lower(): k for k, v in judge.id2label.items()}
    mode = "L" if judge.model.config.num_channels == 1 else "RGB"
    size = judge.size
    images, labels = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name.lower() not in by_name:
            raise ValueError(f"folder {folder.name!r} is not a class of the classifier; its labels are {sorted(by_name)}")
        for f in sorted(folder.iterdir()):
            if f.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".webp"):
                img = Image.open(f).convert(mode)
                size = size or img.size[::-1]
                img = img.resize(size[::-1])
                arr = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0)
                images.append(arr[None] if arr.dim() == 2 else arr.permute(2, 0, 1))
                labels.append(by_name[folder.name.lower()])
    if not images:
        raise ValueError(f"no images under {root}/<class name>/")
    return torch.stack(images), torch.tensor(labels)


_REPORT_COLUMNS = {
    "class": [("forget_accuracy", "forget accuracy"), ("forget_accuracy_floor", "forget floor"), ("unlearning_accuracy", "UA"),
              ("remaining_accuracy", "remaining acc."),
              ("fid_remaining", "FID (remaining)"), ("precision_remaining", "precision"),
              ("recall_remaining", "recall"), ("clip_forget_detection", "CLIP forget detection"),
              ("clip_score", "CLIP score"), ("fid_to_gold", "FID to gold"),
              ("accuracy_gap_to_gold_mean_pts", "acc. gap to gold (pts, mean)"), ("images_per_second", "images/s"),
              ("nfe_per_image", "NFE")],
    "text": [("clip_forget_detection", "CLIP forget detection"), ("clip_score_remaining", "CLIP score (remaining)"),
             ("clip_accuracy_remaining", "CLIP accuracy (remaining)"), ("classifier_forget_accuracy", "classifier forget acc."),
             ("classifier_accuracy_remaining", "classifier acc. (remaining)"), ("fid_remaining", "FID (remaining)"),
             ("recall_remaining", "recall (remaining)"), ("images_per_second", "images/s"),
             ("nfe_per_image", "NFE")],
}
_RATIOS = {"class": ("fid_remaining", "FID (remaining) model / reference"),
           "text": ("clip_score_remaining", "CLIP score (remaining) model / reference")}


def write_report(metrics: dict, report_dir: Path, reference: dict | None = None, pictures: dict | None = None) -> None:
    report_dir.mkdir(parents=True, exist_ok=True)
    kind = metrics.get("kind", "class")
    flat = {**metrics, **{f"reference_{k}": v for k, v in (reference or {}).items()}}
    key, label = _RATIOS[kind]
    if reference and metrics.get(key) is not None and reference.get(key):
        flat[f"{key}_ratio"] = metrics[key] / reference[key]
    (report_dir / "metrics.json").write_text(json.dumps(flat, indent=2))
    rows = [("model", metrics)] + ([("reference", reference)] if reference else [])
    cols = [c for c in _REPORT_COLUMNS[kind] if any(m.get(c[0]) is not None for _, m in rows)]  # measured ones
    lines = ["| | " + " | ".join(c[1] for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, m in rows:
        lines.append(f"| {name} | " + " | ".join(_fmt(m.get(k), m.get(k + "_ci")) for k, _ in cols) + " |")
    ratio = f"\n{label}: **{flat[key + '_ratio']:.3f}**\n" if f"{key}_ratio" in flat else ""
    unit = "class" if kind == "class" else "prompt"
    n = metrics.get("num_samples_per_class", metrics.get("samples_per_prompt"))
    (report_dir / "report.md").write_text(
        f"# sfd-eval report\n\nForgotten: {metrics['forget']}; {n} samples per {unit}, "
        f"seed {metrics['seed']}; intervals are bootstrap 95%.\n\n" + "\n".join(lines) + "\n" + ratio
        + "".join(f"\n## {title}\n\n![{title}]({Path(p).name})\n" for title, p in (pictures or {}).items() if p))


def _fmt(v, ci=None) -> str:
    if v is None:
        return "–"
    s = f"{v:.4g}" if isinstance(v, float) else str(v)
    return s + (f" [{ci[0]:.3g}, {ci[1]:.3g}]" if ci else "")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="pipeline folder or Hub id to measure")
    p.add_argument("--reference", default=None, help="second model (e.g. the teacher) measured the same way")
    p.add_argument("--forget", default=None, help='e.g. "class=trouser"; without it every class counts as remaining')
    p.add_argument("--override", default=None, help='for the floor: "class=NAME", "class=A,B" (a pool) or "random" '
                   "(default: what the model's training.json records, else random)")
    p.add_argument("--classifier", default=str(DEFAULT_CLASSIFIER))
    p.add_argument("--reference_stats", default=str(DEFAULT_REFERENCE_STATS))
    p.add_argument("--clip", default=str(DEFAULT_CLIP), help="CLIP model for the CLIP check ('none' to skip)")
    p.add_argument("--num_samples_per_class", type=int, default=100, help="per class (per prompt for text-to-image models)")
    p.add_argument("--num_forget_samples", type=int, default=None,
                   help="samples per forgotten class / forget prompt (default: as above)")
    p.add_argument("--prompts", default=None, help="text-to-image: evaluation prompts, one per line (default: "
                   "'a photo of a {concept}' per concept the model lists, else the forget prompts)")
    p.add_argument("--gold", default=None, help="class models: a model retrained without the forgotten classes; "
                   "adds the FID between the two models' remaining-class samples and the per-class accuracy gap")
    p.add_argument("--batch_size", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--report", default=None, help="folder for metrics.json and report.md")
    p.add_argument("--make-reference", dest="make_reference", nargs="?", const="", default=None, metavar="IMAGE_DIR",
                   help="write FID reference features to --reference_stats: of IMAGE_DIR/<class>/*.png, or without "
                        "a folder of the Fashion-MNIST test set")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.make_reference is not None:
        print(f"wrote {make_reference(args.classifier, args.reference_stats, image_dir=args.make_reference or None)}")
        return
    if not args.model:
        raise SystemExit("sfd-eval needs --model (or --make-reference)")
    if args.reference_stats.lower() == "none":
        args.reference_stats = None
    if is_text_to_image(args.model):
        return main_text(args)
    kw = dict(forget=args.forget, override=args.override, classifier=ImageClassifierJudge.from_pretrained(args.classifier),
              reference_stats=args.reference_stats, num_samples_per_class=args.num_samples_per_class,
              batch_size=args.batch_size, seed=args.seed, num_forget_samples=args.num_forget_samples,
              clip=None if args.clip.lower() == "none" else CLIPJudge.from_pretrained(args.clip))
    if args.gold:
        from .gold import GoldSamples

        kw["gold"] = GoldSamples.from_model(args.gold, args.forget, args.seed, **{k: v for k, v in kw.items() if k not in (
            "forget", "seed", "reference_stats", "clip")}, progress=True)
    metrics = evaluate_model(args.model, **kw)
    reference = evaluate_model(args.reference, **kw) if args.reference else None
    print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, dict)}, indent=1))
    if args.report:
        write_report(metrics, Path(args.report), reference, report_pictures(args, metrics, reference))
        print(f"report written to {args.report}")


def is_text_to_image(model) -> bool:
    from pipelines import OneStepTextToImagePipeline, TextToImageDiffusionPipeline

    index = Path(model) / "model_index.json"
    if index.exists():
        return "text_encoder" in json.loads(index.read_text())
    return isinstance(load_pipeline(model), (OneStepTextToImagePipeline, TextToImageDiffusionPipeline))


def main_text(args) -> None:
    """sfd-eval on text-to-image models: CLIP forget detection and CLIP score (plus the classifier, when
    the model's concepts are its classes)."""
    if args.gold:
        raise SystemExit("sfd-eval: error: --gold is for class-conditional models (a retrain without the classes)")
    from .prompts import read_lines

    clip = CLIPJudge.from_pretrained(args.clip)
    kw = dict(forget=args.forget, override=args.override, clip=clip, num_samples_per_prompt=args.num_samples_per_class,
              num_forget_samples=args.num_forget_samples, batch_size=args.batch_size, seed=args.seed,
              prompts=read_lines(args.prompts, "--prompts") if args.prompts else None)
    pipe = load_pipeline(args.model)
    if args.classifier.lower() != "none" and pipe.concepts:
        judge = ImageClassifierJudge.from_pretrained(args.classifier)
        try:
            judge.match_labels(dict(enumerate(pipe.concepts)))
            kw["classifier"] = judge
        except ValueError:
            pass  # the classifier does not know these concepts: CLIP only
    metrics = evaluate_text_model(pipe, **kw)
    metrics["model"] = args.model
    reference = ref_pipe = None
    if args.reference:
        ref_pipe = load_pipeline(args.reference)
        reference = evaluate_text_model(ref_pipe, **kw)
        reference["model"] = args.reference
    print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}, indent=1))
    if args.report:
        pictures = {}
        if args.reference:
            from . import report_plots

            out = Path(args.report)
            out.mkdir(parents=True, exist_ok=True)
            prompts = metrics["forget_prompts"] + metrics["remain_prompts"]
            pictures["Samples: reference (left) and model (right), same seeds"] = report_plots.before_after_prompts(
                pipe, ref_pipe, prompts, len(metrics["forget_prompts"]),
                out / "before_after.png", seed=args.seed, concepts=pipe.concepts or metrics["forget"])
        write_report(metrics, Path(args.report), reference, pictures)
        print(f"report written to {args.report}")


def report_pictures(args, metrics: dict, reference: dict | None) -> dict:
    from . import report_plots

    out = Path(args.report)
    out.mkdir(parents=True, exist_ok=True)
    pics = {"Per-class accuracy": report_plots.per_class_bars(metrics, reference, metrics["forget"], out / "per_class_accuracy.png")}
    if args.reference:
        model, ref = load_pipeline(args.model), load_pipeline(args.reference)
        for p in (model, ref):
            p.set_progress_bar_config(disable=True)
        spec = ForgetSpec.parse(args.forget or None, args.override, model.id2label)
        pics["Samples: reference (left) and model (right), same seeds"] = report_plots.before_after_grid(
            model, ref, spec.id2label, spec.forget, out / "before_after.png", seed=args.seed)
    if Path(args.model, "logs").exists():
        pics["Forget rate during training"] = report_plots.forget_rate_curve(
            Path(args.model) / "logs" / "metrics.jsonl", out / "forget_rate.png")
    return pics


if __name__ == "__main__":
    main()
