"""How much a class-conditional model still draws the forgotten classes, and how well the rest.

Per class, samples are labelled by a `transformers` image classifier (default: assets/classifier).
For forgotten classes: forget accuracy (share of that class's samples still classified as it), UA = 1 −
that, mean probability of the forgotten class, mean predictive entropy, and the forget-accuracy floor: what
a perfect eraser would score, because the classifier also calls some real images of the override classes by
the forgotten name. For the remaining classes: accuracy, and FID, precision and recall against real test images
of those classes, in the classifier's feature space (`sfd.evaluation.reference`). Intervals are percentile
bootstrap 95%.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..core.loading import load_pipeline
from ..core.metrics import (
    bootstrap_ci,
    bootstrap_fid,
    density_coverage,
    entropy,
    feature_statistics,
    frechet_distance,
    mean_pairwise_distance,
    precision_recall,
)
from ..core.paths import DEFAULT_CLASSIFIER, DEFAULT_REFERENCE_STATS
from ..core.sampling import sample_classes, sampling_record
from ..core.spec import ForgetSpec
from .gold import GOLD_SEED_OFFSET, GoldSamples, gold_alignment
from .judges import CLIPJudge, ImageClassifierJudge, classify
from .reference import forget_accuracy_floor, load_reference


def per_class_hits(
    probs: torch.Tensor, labels: torch.Tensor, spec: ForgetSpec, label_map: dict[int, int]
) -> tuple[np.ndarray, dict[str, float]]:
    """Whether the judge's top class is each sample's class (1.0 / 0.0), and the accuracy of every class drawn."""
    hit = (probs.argmax(-1) == torch.tensor([label_map[int(c)] for c in labels])).numpy().astype(np.float64)
    per_class = {
        name: float(hit[labels.numpy() == c].mean()) for c, name in spec.id2label.items() if (labels == c).any()
    }
    return hit, per_class


def class_metrics(
    probs: torch.Tensor,
    feats: torch.Tensor,
    labels: torch.Tensor,
    spec: ForgetSpec,
    label_map: dict[int, int],
    ref_features: torch.Tensor | None = None,
    ref_labels: torch.Tensor | None = None,
    seed: int = 0,
    ref_predictions: torch.Tensor | None = None,
) -> dict:
    """All classifier-based figures from per-sample probabilities; `labels` are generator class ids. With the
    reference images' labels and the classifier's predictions of them, also the forget-accuracy floor."""
    cls_of = torch.tensor([label_map[int(c)] for c in labels])
    hit, per_class = per_class_hits(probs, labels, spec, label_map)
    own_prob = probs.gather(1, cls_of[:, None]).squeeze(1).numpy()
    ent = entropy(probs).numpy()
    forgotten = spec.is_forgotten(labels).numpy()
    m: dict = {"per_class_accuracy": per_class}
    if forgotten.any():
        fa = hit[forgotten]  # divided by the number of samples of the forgotten class(es) only
        m.update(
            forget_accuracy=float(fa.mean()),
            forget_accuracy_ci=bootstrap_ci(fa, seed=seed),
            unlearning_accuracy=float(1 - fa.mean()),
            forget_prob_mean=float(own_prob[forgotten].mean()),
            forget_entropy_mean=float(ent[forgotten].mean()),
            forget_samples=int(forgotten.sum()),
        )
        if ref_labels is not None and ref_predictions is not None:
            m["forget_accuracy_floor"] = forget_accuracy_floor(ref_labels, ref_predictions, spec, label_map)
    rem = ~forgotten
    m.update(
        remaining_accuracy=float(hit[rem].mean()),
        remaining_accuracy_ci=bootstrap_ci(hit[rem], seed=seed),
        remaining_samples=int(rem.sum()),
        per_class_diversity={  # mean pairwise judge-feature distance within each remaining class
            spec.id2label[c]: mean_pairwise_distance(feats[labels == c].numpy(), seed=seed)
            for c in spec.remaining
            if int((labels == c).sum()) > 1
        },
    )
    if ref_features is not None:
        ref_cls = [label_map[i] for i in spec.remaining]
        ref = ref_features[torch.isin(ref_labels, torch.tensor(ref_cls))].numpy()
        mu_r, sig_r = feature_statistics(ref)
        f = feats[torch.from_numpy(rem)].numpy()
        precision, recall = precision_recall(ref, f, seed=seed)
        density, coverage = density_coverage(ref, f, seed=seed)
        m.update(
            fid_remaining=frechet_distance(*feature_statistics(f), mu_r, sig_r),
            fid_remaining_ci=bootstrap_fid(f, mu_r, sig_r, seed=seed),
            fid_reference_images=len(ref),
            precision_remaining=precision,
            recall_remaining=recall,
            density_remaining=density,
            coverage_remaining=coverage,
        )
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


def evaluate_model(
    model,
    forget: str | None,
    override: str | None = None,
    classifier=DEFAULT_CLASSIFIER,
    reference_stats=DEFAULT_REFERENCE_STATS,
    num_samples_per_class: int = 100,
    batch_size: int = 100,
    seed: int = 0,
    progress: bool = True,
    num_forget_samples: int | None = None,
    clip=None,
    prompt_template: str = "a photo of a {}",
    gold=None,
    keep_features: bool = False,
    second_classifier=None,
) -> dict:
    """Sample every class of a class-conditional model and measure the samples with the judges.

    Args:
        model: a pipeline folder, Hub id or loaded pipeline (one-step or multi-step).
        forget: `"class=NAME[,NAME…]"`, the classes that count as forgotten; None: every class is remaining.
        override: the override for the forget-accuracy floor (`"class=NAME"`, `"class=A,B"` or `"random"`; default:
            what the model's training.json records).
        classifier: an `ImageClassifierJudge` or its folder (default: the shipped classifier).
        reference_stats: the reference file of real images for FID, precision / recall and the floor (None skips).
        num_samples_per_class: samples of every remaining class; `num_forget_samples` (default: the same) of
            every forgotten class.
        batch_size, seed, progress: sampling in batches, batch k seeded `seed + k`.
        clip: a `CLIPJudge` or its folder: adds CLIP's zero-shot detection of the forgotten classes and the CLIP
            score of the rest.
        prompt_template: the CLIP prompt of a class name.
        gold: a `GoldSamples` or a gold model's folder: adds the alignment with it (`sfd.evaluation.gold`).
        keep_features: adds the remaining samples' classifier features (an array) as "features_remaining".
        second_classifier: a second, independently trained judge (or its folder): adds its per-class accuracy
            and remaining accuracy (suffix `_second`) and the classes where the two judges differ by more than
            10 points (`judges_disagree`).

    Returns:
        A dict of figures: forget_accuracy (with a bootstrap 95% interval), forget_accuracy_floor,
        unlearning_accuracy, remaining_accuracy, per_class_accuracy, per_class_diversity (mean pairwise judge-feature
        distance within each remaining class; `sfd-eval --reference` reports its ratio to the reference's),
        fid_remaining, precision_remaining, recall_remaining, density_remaining, coverage_remaining,
        images_per_second, nfe_per_image, and what was measured (counts, seed, model).
    """
    pipe = load_pipeline(model)
    pipe.set_progress_bar_config(disable=True)
    if override is None:  # the floor is the override's: take the one the run recorded (e.g. chosen by `auto`)
        override = recorded_override(model, ForgetSpec.parse(forget or None, None, pipe.id2label).forget_names)
    spec = ForgetSpec.parse(forget or None, override, pipe.id2label, allow_auto=False)
    judge = (
        classifier
        if isinstance(classifier, ImageClassifierJudge)
        else ImageClassifierJudge.from_pretrained(classifier)
    )
    label_map = judge.match_labels(spec.id2label)
    n_forget = num_samples_per_class if num_forget_samples is None else num_forget_samples
    labels = torch.cat(
        [torch.full((num_samples_per_class,), c) for c in spec.remaining]
        + [torch.full((n_forget,), c) for c in spec.forget]
    )
    images, seconds = sample_classes(pipe, labels.tolist(), batch_size, seed, progress)
    probs, feats = classify(judge, images)
    ref = load_reference(reference_stats) if reference_stats else {}
    m = class_metrics(
        probs,
        feats,
        labels,
        spec,
        label_map,
        ref.get("features"),
        ref.get("labels"),
        seed,
        ref_predictions=ref.get("predictions"),
    )
    feats_remaining = feats[~spec.is_forgotten(labels)].numpy()
    if gold is not None:
        if not isinstance(gold, GoldSamples):
            gold = gold_samples(
                gold,
                forget,
                seed,
                override=override,
                classifier=judge,
                num_samples_per_class=num_samples_per_class,
                batch_size=batch_size,
                progress=progress,
                num_forget_samples=num_forget_samples,
            )
        m.update(gold_alignment(feats_remaining, m["per_class_accuracy"], gold, seed))
    if keep_features:
        m["features_remaining"] = feats_remaining
    if clip is not None:
        clip = clip if isinstance(clip, CLIPJudge) else CLIPJudge.from_pretrained(clip)
        m.update(clip_metrics(clip, images, labels, spec, prompt_template, seed))
    if second_classifier is not None:
        m.update(second_judge_metrics(second_classifier, images, labels, spec, m["per_class_accuracy"]))
    m.update(
        kind="class",
        forget=spec.describe()["forget"],
        num_samples_per_class=num_samples_per_class,
        num_forget_samples=n_forget,
        **sampling_record(model, pipe, len(labels), seconds, seed, batch_size),
    )
    return m


def second_judge_metrics(
    judge, images: torch.Tensor, labels: torch.Tensor, spec: ForgetSpec, first: dict, threshold: float = 0.10
) -> dict:
    """The second judge's per-class and remaining accuracy on the same samples, and the classes where its accuracy
    and the first judge's (`first`) differ by more than `threshold`: damage one judge would hide."""
    judge = judge if isinstance(judge, ImageClassifierJudge) else ImageClassifierJudge.from_pretrained(judge)
    label_map = judge.match_labels(spec.id2label)
    probs, _ = classify(judge, images)
    hit, per_class = per_class_hits(probs, labels, spec, label_map)
    remaining = ~spec.is_forgotten(labels).numpy()
    disagree = {
        name: [first[name], acc]
        for name, acc in per_class.items()
        if name in first and abs(first[name] - acc) > threshold
    }
    return {
        "per_class_accuracy_second": per_class,
        "remaining_accuracy_second": float(hit[remaining].mean()),
        "judges_disagree": disagree,
        "second_judge": str(getattr(judge.model, "name_or_path", "")),
    }


def clip_metrics(
    clip: CLIPJudge,
    images: torch.Tensor,
    labels: torch.Tensor,
    spec: ForgetSpec,
    template: str = "a photo of a {}",
    seed: int = 0,
) -> dict:
    """clip_forget_detection: share of forgotten-class samples whose zero-shot class (over all class
    prompts) is a forgotten one; clip_score: mean CLIPScore of remaining-class samples with their prompt."""
    names = [spec.id2label[i] for i in sorted(spec.id2label)]
    prompts = [template.format(n) for n in names]
    forgotten = spec.is_forgotten(labels)
    m: dict = {}
    if forgotten.any():
        pred = torch.cat(
            [clip.zero_shot(images[forgotten][i : i + 500], prompts) for i in range(0, int(forgotten.sum()), 500)]
        )
        hit = torch.isin(pred, torch.tensor(spec.forget)).numpy().astype(np.float64)
        m.update(clip_forget_detection=float(hit.mean()), clip_forget_detection_ci=bootstrap_ci(hit, seed=seed))
    rem = ~forgotten
    rem_images, rem_prompts = images[rem], [prompts[int(c)] for c in labels[rem]]
    scores = torch.cat(
        [clip.clip_score(rem_images[i : i + 500], rem_prompts[i : i + 500]) for i in range(0, len(rem_images), 500)]
    ).numpy()
    m.update(clip_score=float(scores.mean()), clip_score_ci=bootstrap_ci(scores, seed=seed))
    return m


def gold_samples(gold, forget: str | None, seed: int, **evaluate_kwargs) -> GoldSamples:
    """Sample and judge the gold model `gold` as `evaluate_model` does, with seed + GOLD_SEED_OFFSET."""
    kwargs = dict(evaluate_kwargs, reference_stats=None, clip=None, gold=None, keep_features=True)
    m = evaluate_model(gold, forget, seed=seed + GOLD_SEED_OFFSET, **kwargs)
    return GoldSamples(m.pop("features_remaining"), m["per_class_accuracy"], str(gold), seed + GOLD_SEED_OFFSET)
