"""The text-to-image side of concept inversion (`inversion`): a new word learned from real images of the erased concept.

Pham et al. (ICLR 2024) recover concepts erased from Stable Diffusion by textual inversion (Gal et al. 2023): a new
token whose embedding row, in every text encoder, is the only thing that learns (`core.tokens.PlaceholderToken`),

    min_e  E_{x ∈ images, t, ε, template} ‖target − network(x_t, t, text(template(PLACEHOLDER); e))‖²,

with the schedule's own denoising loss for a multi-step model and, for a one-step generator, the loss at σ_init
through its one-step map. The row starts from the erased concept's own token rows (for a one-token concept step 0 is
the released model's prompt for it) or from the vocabulary's mean. After each budget `EVAL_PROMPT` with the new word
is sampled and judged: by the image classifier when it can (its labels name the concept; the shipped classifier only
for images of its channel count), else by CLIP zero-shot among the model's concepts (or the general prompts).
"""

from __future__ import annotations

import copy

import torch

from ..core.paths import DEFAULT_CLIP, GENERAL_REMAIN_PROMPTS
from ..core.prompts import DEFAULT_TEMPLATES, parse_forget, read_lines
from ..data.image_datasets import dataset_name
from .judges import CLIPJudge, classify
from .relearn import as_judge, attack_pool, attacker_images, dataset_label_map, in_network_space

EVAL_PROMPT = DEFAULT_TEMPLATES[0]  # "a photo of a {}"


def concept_of(forget: str) -> str:
    """The one concept of a `concept=NAME` spec that inversion recovers."""
    concepts, prompt_file = parse_forget(forget)
    if len(concepts) != 1 or prompt_file:
        raise ValueError(f'concept inversion recovers one concept at a time: --forget "concept=NAME", got {forget!r}')
    return concepts[0]


def concept_judge(pipe, concept: str, classifier=None, clip=None):
    """A function: images in [0, 1] → the share of them the judge names `concept`, and the judge's description. The
    image classifier when no `clip` is given and its labels name the concept (the shipped one, the default, only for
    images with its channel count); else CLIP zero-shot between "a photo of a CONCEPT" and the model's other concepts
    (or the general prompts when it lists none)."""
    if clip is None:
        judge = as_judge(classifier)
        matched = judge.label_of(concept)
        channels = getattr(judge.model.config, "num_channels", None)
        if matched is not None and (classifier is not None or channels == pipe.image_format()[1]):
            rate = lambda images: float((classify(judge, images)[0].argmax(-1) == matched).float().mean())  # noqa: E731
            return rate, f"classifier label {judge.id2label[matched]!r}"
    clip = clip if isinstance(clip, CLIPJudge) else CLIPJudge.from_pretrained(clip or DEFAULT_CLIP)
    others = [EVAL_PROMPT.format(c) for c in pipe.concepts if c.lower() != concept.lower()]
    candidates = [EVAL_PROMPT.format(concept)] + (others or read_lines(GENERAL_REMAIN_PROMPTS, "general prompts"))
    rate = lambda images: float((clip.zero_shot(images, candidates) == 0).float().mean())  # noqa: E731
    return rate, f"CLIP zero-shot among {len(candidates)} prompts"


def concept_images(pipe, concept: str, n_images: int, seed: int, pool=None, dataset=None, image_column=None,
                   label_column=None) -> torch.Tensor:  # fmt: skip
    """`n_images` real images of the concept in the network's space, from `pool` = (images, labels, class names) or
    the training split of `dataset` (default: Fashion-MNIST), its class matched by name."""
    images, labels, names = pool if pool is not None else attack_pool(pipe, dataset, image_column, label_column)
    label = dataset_label_map({0: concept}, [0], names, dataset_name(dataset))[0]
    x, _ = attacker_images((images, labels), [0], n_images, seed, {0: label})
    return in_network_space(pipe, x, seed)


def with_own_text_modules(pipe):
    """A shallow copy of `pipe` whose tokenizers and text encoders are its own deep copies: a new word added to it
    leaves the caller's pipeline as it was, without copying the denoising network or the VAE."""
    clone = copy.copy(pipe)
    for tokenizer, encoder in pipe.text_pairs():
        for name, module in vars(pipe).items():
            if module is tokenizer or module is encoder:
                object.__setattr__(clone, name, copy.deepcopy(module))  # bypasses diffusers' config registration
    return clone
