"""Concept inversion of a text-to-image model: a new word learned from real images of the erased concept.

Pham et al. (ICLR 2024) recover concepts erased from Stable Diffusion by textual inversion (Gal et al. 2023): a new
token `PLACEHOLDER` whose embedding row, in every text encoder, is the only thing that learns,

    min_e  E_{x ∈ images, t, ε, template} ‖target − network(x_t, t, text(template(PLACEHOLDER); e))‖²,

with the schedule's own denoising loss for a multi-step model and, for a one-step generator, the loss at σ_init
through its one-step map (as `inversion` does for class embeddings). The row starts from the erased concept's own
token rows (`init="class"`; for a one-token concept step 0 is the released model's prompt for it) or from the mean of
the vocabulary (`"mean"`). After each budget "a photo of a PLACEHOLDER" is sampled and judged: by the image
classifier when its labels name the concept, else by CLIP, zero-shot among the model's concepts (or the general
prompts when it lists none).
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import torch

from ..core.losses import denoising_loss, sampling_level_loss
from ..core.paths import DEFAULT_CLIP, GENERAL_REMAIN_PROMPTS
from ..core.prompts import DEFAULT_TEMPLATES, parse_forget, read_lines
from ..core.sampling import sample_prompts
from ..core.tokens import PLACEHOLDER, add_placeholder_token, placeholder_rows
from ..data.image_datasets import dataset_name
from ..pipelines.denoiser import scheduler_of_family
from ..pipelines.prompt_encoding import encode_prompts
from .judges import CLIPJudge, ImageClassifierJudge, classify
from .relearn import area_under_curve, attack_loop, attack_pool, attacker_images, dataset_label_map, steps_to_reach


def concept_of(forget: str) -> str:
    """The one concept of a `concept=NAME` spec that inversion recovers."""
    concepts, prompt_file = parse_forget(forget)
    if len(concepts) != 1 or prompt_file:
        raise ValueError(f'concept inversion recovers one concept at a time: --forget "concept=NAME", got {forget!r}')
    return concepts[0]


def concept_judge(pipe, concept: str, classifier=None, clip=None):
    """A function: images in [0, 1] → the share of them the judge names `concept`, and the judge's description. The
    image classifier (default: the shipped one) when its labels name the concept and no `clip` is given; else CLIP
    zero-shot between "a photo of a CONCEPT" and the model's other concepts (or the general prompts)."""
    if clip is None:
        judge = (
            classifier
            if isinstance(classifier, ImageClassifierJudge)
            else ImageClassifierJudge.from_pretrained(*([classifier] if classifier else []))
        )
        matched = judge.label_of(concept)
        if matched is not None:
            rate = lambda images: float((classify(judge, images)[0].argmax(-1) == matched).float().mean())  # noqa: E731
            return rate, f"classifier label {judge.id2label[matched]!r}"
    clip = clip if isinstance(clip, CLIPJudge) else CLIPJudge.from_pretrained(clip or DEFAULT_CLIP)
    template = DEFAULT_TEMPLATES[0]
    others = [template.format(c) for c in pipe.concepts if c.lower() != concept.lower()]
    candidates = [template.format(concept)] + (others or read_lines(GENERAL_REMAIN_PROMPTS, "general prompts"))
    rate = lambda images: float((clip.zero_shot(images, candidates) == 0).float().mean())  # noqa: E731
    return rate, f"CLIP zero-shot among {len(candidates)} prompts"


def concept_images(pipe, concept: str, n_images: int, seed: int, pool=None, dataset=None, image_column=None,
                   label_column=None) -> torch.Tensor:  # fmt: skip
    """`n_images` real images of the concept in the network's space, from `pool` = (images, labels, class names) or
    the training split of `dataset` (default: Fashion-MNIST), its class matched by name."""
    images, labels, names = pool if pool is not None else attack_pool(pipe, dataset, image_column, label_column)
    label = dataset_label_map({0: concept}, [0], names, dataset_name(dataset))[0]
    x, _ = attacker_images((images, labels), [0], n_images, seed, {0: label})
    with torch.no_grad():
        return pipe.encode_images(x.to(pipe.device), torch.Generator(pipe.device).manual_seed(seed)).float().cpu()


def token_inversion_curve(
    pipe,
    model_name: str,
    forget: str,
    n_images: int,
    checkpoints: Sequence[int],
    learning_rate: float,
    batch_size: int,
    eval_samples: int,
    seed: int,
    eval_seed: int,
    classifier=None,
    clip=None,
    num_inference_steps: int | None = None,
    pool=None,
    dataset: str | None = None,
    image_column: str | None = None,
    label_column: str | None = None,
    init: str = "class",
    progress: bool = True,
) -> dict:
    """Concept inversion of the loaded text-to-image pipeline `pipe` (it gains the learned token; see
    `inversion.inversion_curve` for the arguments; `pool` is (images, labels, class names) and `clip` a CLIP judge or
    folder to judge with instead of the classifier)."""
    concept = concept_of(forget)
    if pipe.tokenizer is None:
        raise ValueError("concept inversion of a text-to-image model needs its tokenizer to add the learned token")
    pipe.set_progress_bar_config(disable=True)
    measure_rate, judged_by = concept_judge(pipe, concept, classifier, clip)
    x = concept_images(pipe, concept, n_images, seed, pool, dataset, image_column, label_column)
    weights = add_placeholder_token(pipe, start=concept if init == "class" else None)
    initial = placeholder_rows(pipe)
    network = pipe.network.requires_grad_(False)
    one_step = "sigma_init" in pipe.config
    gen = torch.Generator().manual_seed(seed)

    def condition(n: int) -> torch.Tensor:  # the learned word in a random template per image
        picks = torch.randint(len(DEFAULT_TEMPLATES), (n,), generator=gen).tolist()
        return encode_prompts(pipe, [DEFAULT_TEMPLATES[i].format(PLACEHOLDER) for i in picks]).float()

    if one_step:
        denoiser, sigma = pipe.generator_network(), pipe.config.sigma_init
        loss_fn = lambda x0, _, g: sampling_level_loss(denoiser, sigma, x0, condition(len(x0)), g)  # noqa: E731
    else:
        scheduler = scheduler_of_family(pipe.scheduler.config)
        loss_fn = lambda x0, _, g: denoising_loss(network, scheduler, x0, condition(len(x0)), g)  # noqa: E731
    call = {} if num_inference_steps is None else {"num_inference_steps": num_inference_steps}
    prompts = [DEFAULT_TEMPLATES[0].format(PLACEHOLDER)] * eval_samples
    measure = lambda: measure_rate(sample_prompts(pipe, prompts, 100, eval_seed, False, **call)[0])  # noqa: E731
    opt = torch.optim.Adam(weights, lr=learning_rate)
    start = time.time()
    rates = attack_loop(
        loss_fn, opt, x, torch.zeros(len(x)), checkpoints, batch_size, gen, measure, "invert", progress
    )
    moved = float(sum((r - r0).norm() ** 2 for r, r0 in zip(placeholder_rows(pipe), initial)) ** 0.5)
    return {
        "model": model_name,
        "attack": "concept inversion, new token" + (" (one-step: at σ_init)" if one_step else ""),
        "forget": [concept],
        "attacked": [concept],
        "judge": judged_by,
        "images_per_class": n_images,
        "learning_rate": learning_rate,
        "init": init,
        "batch_size": min(batch_size, len(x)),
        "seed": seed,
        "eval_seed": eval_seed,
        "eval_samples": eval_samples,
        "num_inference_steps": num_inference_steps,
        "embedding_tables": len(weights),
        "embedding_change_norm": moved,
        "steps": list(checkpoints),
        "forget_accuracy": rates,
        "area": area_under_curve(checkpoints, rates),
        "steps_to_50pct": steps_to_reach(checkpoints, rates, 0.5),
        "mean_forget_accuracy": float(np.mean(rates)),
        "seconds": time.time() - start,
    }
