"""How much a text-to-image model still draws the forgotten concepts, and how well the rest, judged by CLIP (and by
the image classifier where the prompts name its classes)."""

from __future__ import annotations

import numpy as np
import torch

from ..core.loading import load_pipeline
from ..core.metrics import (
    bootstrap_ci,
    density_coverage,
    feature_statistics,
    frechet_distance,
    mean_pairwise_distance,
    precision_recall,
)
from ..core.paths import DEFAULT_CLIP, DEFAULT_REFERENCE_STATS, GENERAL_REMAIN_PROMPTS
from ..core.prompts import DEFAULT_TEMPLATES, concept_pattern, parse_forget, read_lines
from ..core.sampling import sample_prompts, sampling_record
from .judges import CLIPJudge, ImageClassifierJudge, classify
from .reference import load_reference_features


def evaluation_prompts(
    forget_concepts,
    concepts,
    forget_prompts=(),
    remain_prompts=(),
    template: str = "a photo of a {}",
    max_prompts: int = 16,
) -> tuple[list[str], list[str]]:
    """(forget, remaining) prompts to measure: one template prompt per concept when the model lists its
    concepts, else up to `max_prompts` evenly spaced prompts of each kind."""
    if concepts:
        low = {c.lower() for c in forget_concepts}
        return (
            [template.format(c) for c in concepts if c.lower() in low],
            [template.format(c) for c in concepts if c.lower() not in low],
        )
    pick = lambda xs: [xs[int(i)] for i in np.linspace(0, len(xs) - 1, min(max_prompts, len(xs)))] if xs else []  # noqa: E731
    return pick(list(forget_prompts)), pick(list(remain_prompts))


def text_metrics(
    clip: CLIPJudge,
    images: torch.Tensor,
    prompts: list[str],
    forgotten: torch.Tensor,
    candidates: list[str],
    forget_concepts: list[str],
    template: str = "a photo of a {}",
    seed: int = 0,
) -> dict:
    """CLIP figures of text-to-image samples (images in [0, 1], one prompt each):
    clip_forget_detection — share of forget-prompt samples whose zero-shot concept (among `candidates`)
    is a forgotten one; clip_score_remaining — mean CLIPScore of the other samples with their prompt;
    clip_accuracy_remaining — share of those whose zero-shot concept is the one their prompt names."""
    cand_prompts = [template.format(c) for c in candidates]
    pred = torch.cat([clip.zero_shot(images[i : i + 500], cand_prompts) for i in range(0, len(images), 500)])
    pred_names = [candidates[int(i)].lower() for i in pred]
    m: dict = {"per_prompt_clip_accuracy": {}}
    forgotten = forgotten.numpy()
    if forgotten.any() and forget_concepts:
        low = {c.lower() for c in forget_concepts}
        hit = np.array([n in low for n, f in zip(pred_names, forgotten) if f], dtype=np.float64)
        m.update(
            clip_forget_detection=float(hit.mean()),
            clip_forget_detection_ci=bootstrap_ci(hit, seed=seed),
            forget_samples=int(forgotten.sum()),
        )
    named = [next((c.lower() for c in candidates if concept_pattern([c]).search(p)), None) for p in prompts]
    correct = np.array([n is not None and n == want for n, want in zip(pred_names, named)], dtype=np.float64)
    for prompt in dict.fromkeys(prompts):
        sel = np.array([p == prompt for p in prompts])
        if named[int(np.argmax(sel))] is not None:
            m["per_prompt_clip_accuracy"][prompt] = float(correct[sel].mean())
    rem = ~forgotten
    if rem.any():
        rem_idx = np.flatnonzero(rem)
        scores = torch.cat(
            [
                clip.clip_score(images[rem_idx[i : i + 500]], [prompts[j] for j in rem_idx[i : i + 500]])
                for i in range(0, len(rem_idx), 500)
            ]
        ).numpy()
        has_name = np.array([named[j] is not None for j in rem_idx])
        m.update(
            clip_score_remaining=float(scores.mean()),
            clip_score_remaining_ci=bootstrap_ci(scores, seed=seed),
            remaining_samples=int(rem.sum()),
        )
        if has_name.any():
            acc = correct[rem_idx][has_name]
            m.update(
                clip_accuracy_remaining=float(acc.mean()), clip_accuracy_remaining_ci=bootstrap_ci(acc, seed=seed)
            )
    return m


def classifier_text_metrics(
    classifier,
    images: torch.Tensor,
    prompts: list[str],
    forgotten: torch.Tensor,
    candidates: list[str],
    forget_concepts: list[str],
    reference_stats=DEFAULT_REFERENCE_STATS,
    seed: int = 0,
) -> dict:
    """The image classifier's verdicts on samples of prompts that name one of its classes:
    classifier_forget_accuracy / classifier_accuracy_remaining, and (with reference features) FID,
    precision, recall, density and coverage of the remaining samples against real images of the classes they name,
    and per remaining prompt the mean pairwise distance of its samples' classifier features — the diversity checks
    that CLIP scores do not make."""
    judge = (
        classifier
        if isinstance(classifier, ImageClassifierJudge)
        else ImageClassifierJudge.from_pretrained(classifier)
    )
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
        m["per_prompt_diversity"] = {  # mean pairwise judge-feature distance among one prompt's samples
            p: mean_pairwise_distance(feats[[i for i, q in enumerate(prompts) if q == p]].numpy(), seed=seed)
            for p in dict.fromkeys(q for q, r in zip(prompts, rem) if r)
            if sum(q == p for q in prompts) > 1
        }
        if reference_stats:
            ref_f, ref_l = load_reference_features(reference_stats)
            classes = sorted({label_map[n] for n, r in zip(named, rem) if r})
            ref = ref_f[torch.isin(ref_l, torch.tensor(classes))].numpy()
            mu_r, sig_r = feature_statistics(ref)
            gen = feats[torch.from_numpy(rem)].numpy()
            precision, recall = precision_recall(ref, gen, seed=seed)
            density, coverage = density_coverage(ref, gen, seed=seed)
            m.update(
                fid_remaining=frechet_distance(*feature_statistics(gen), mu_r, sig_r),
                precision_remaining=precision,
                recall_remaining=recall,
                density_remaining=density,
                coverage_remaining=coverage,
            )
    return m


def evaluate_text_model(
    model,
    forget: str | None,
    override: str | None = None,
    clip=DEFAULT_CLIP,
    prompts: list[str] | None = None,
    num_samples_per_prompt: int = 100,
    num_forget_samples: int | None = None,
    batch_size: int = 100,
    seed: int = 0,
    progress: bool = True,
    template: str = "a photo of a {}",
    classifier=None,
) -> dict:
    """Sample a text-to-image model on forget and remaining prompts and measure it with CLIP (and, when the concepts
    are a `classifier`'s labels, with that classifier as a second judge).

    Args:
        model: a pipeline folder, Hub id or loaded pipeline (one-step or multi-step).
        forget: `"concept=PHRASE[,…]"` and/or `"prompts=FILE"`: what counts as forgotten.
        override: the override phrase, added to CLIP's candidate concepts when the model lists none.
        clip: a `CLIPJudge` or its folder (default: the shipped CLIP).
        prompts: the evaluation prompts (those naming a forgotten concept are forget prompts); default: one
            "a photo of a {concept}" per concept the model lists in its config, else the forget spec's prompts (or
            templates filled with the concept) and configs/prompts/remain-general.txt (16 of each at most).
        num_samples_per_prompt: samples of every remaining prompt; `num_forget_samples` (default: the same) of every
            forget prompt.
        batch_size, seed, progress: sampling in batches, batch k seeded `seed + k`.
        template: the CLIP prompt of a concept name.
        classifier: an `ImageClassifierJudge` whose labels are the concepts, or None.

    Returns:
        A dict of figures: clip_forget_detection, clip_score_remaining, clip_accuracy_remaining (with bootstrap 95%
        intervals), per_prompt_clip_accuracy, the classifier's figures when one is given, and what was measured.
    """
    pipe = load_pipeline(model)
    pipe.set_progress_bar_config(disable=True)
    concepts, prompt_file = parse_forget(forget) if forget else ([], None)
    candidates = list(
        dict.fromkeys(list(pipe.concepts) + concepts + ([override] if override and not pipe.concepts else []))
    )
    if prompts is not None:
        pattern = concept_pattern(concepts) if concepts else None
        forget_p = [p for p in prompts if pattern and pattern.search(p)]
        remain_p = [p for p in prompts if p not in forget_p]
    else:  # models without a concept list (e.g. Stable Diffusion): the forget spec's prompts and the general list
        file_prompts = (
            read_lines(prompt_file, "--forget prompts")
            if prompt_file
            else [t.format(c) for c in concepts for t in DEFAULT_TEMPLATES]
        )
        general = [] if pipe.concepts else read_lines(GENERAL_REMAIN_PROMPTS, "remaining prompts")
        forget_p, remain_p = evaluation_prompts(concepts, pipe.concepts, file_prompts, general, template)
    if not candidates:
        raise ValueError(
            "no concept names to detect: give --forget concept=… or a model whose config lists `concepts`"
        )
    n_forget = num_samples_per_prompt if num_forget_samples is None else num_forget_samples
    all_prompts = [p for p in forget_p for _ in range(n_forget)] + [
        p for p in remain_p for _ in range(num_samples_per_prompt)
    ]
    forgotten = torch.tensor([True] * (len(forget_p) * n_forget) + [False] * (len(remain_p) * num_samples_per_prompt))
    images, seconds = sample_prompts(pipe, all_prompts, batch_size, seed, progress)
    clip = clip if isinstance(clip, CLIPJudge) else CLIPJudge.from_pretrained(clip)
    m = text_metrics(clip, images, all_prompts, forgotten, candidates, concepts, template, seed)
    if classifier is not None:
        m.update(classifier_text_metrics(classifier, images, all_prompts, forgotten, candidates, concepts, seed=seed))
    m.update(
        kind="text",
        forget=concepts,
        forget_prompts=forget_p,
        remain_prompts=remain_p,
        samples_per_prompt=num_samples_per_prompt,
        num_forget_samples=n_forget,
        **sampling_record(model, pipe, len(all_prompts), seconds, seed, batch_size),
    )
    return m
