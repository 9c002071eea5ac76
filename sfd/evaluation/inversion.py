"""Concept inversion: recover a forgotten class by learning a new class embedding while every weight stays frozen.

After Pham et al. (ICLR 2024, "Circumventing Concept Erasure Methods for Text-to-Image Generative Models"): an eraser
that only reroutes the forgotten class's input can be bypassed by finding another input that draws it. The attacker
holds the released class-conditional pipeline and `n` real images of the forgotten class, and optimises one new
embedding vector e per class-embedding table (a `UNet2DModel`'s `class_embedding`; each DiT block's label table),
used wherever the forgotten class's id is given (its own row is the starting point, so step 0 is the released model):

    min_e  E_{x ∈ images, t, ε} ‖target − network(x_t, t, c = e)‖²   (the schedule's own denoising loss),

for a multi-step model; a one-step generator G(z) = D(σ_init·z, σ_init, c) is attacked at the one σ it is evaluated
at, through the full one-step map: min_e E ‖D(x + σ_init·ε, σ_init, e) − x‖². After each budget the class is sampled
with the learned embedding and judged, as in the relearning attack (`relearn`). A text-to-image model is attacked
with a new token instead (`token_inversion`).
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..core.loading import load_pipeline
from ..core.sampling import sample_prompts
from ..core.tokens import PLACEHOLDER, PlaceholderToken, placeholder_prompts
from ..pipelines.prompt_encoding import encode_prompts
from .relearn import (
    area_under_curve,
    attack_loop,
    attack_loss,
    attack_target,
    attacker_latents,
    check_budgets,
    forget_rates,
    steps_to_reach,
)
from .token_inversion import EVAL_PROMPT, concept_images, concept_judge, concept_of, with_own_text_modules

DEFAULT_INVERSION_STEPS = (0, 25, 50, 100, 200)


def class_embedding_tables(network) -> list[nn.Embedding]:
    """The embedding tables a class id is looked up in: a UNet2DModel's `class_embedding`, each DiT block's label
    table."""
    from diffusers.models.embeddings import LabelEmbedding

    tables = [m.embedding_table for m in network.modules() if isinstance(m, LabelEmbedding)]
    table = getattr(network, "class_embedding", None)
    if isinstance(table, nn.Embedding):
        tables.append(table)
    if not tables:
        raise ValueError(f"{type(network).__name__} has no class-embedding table to invert")
    return tables


INITS = ("class", "mean")


@contextmanager
def inverted_class(network, class_id: int, init: str = "class", classes: Sequence[int] = ()):
    """Within the block, class id `class_id` is looked up as learnable vectors, one per table, yielded; they start
    from the class's own rows (`init="class"`) or from the mean row of `classes` (`"mean"`: an attacker who does not
    use the erased row passes the other classes). Every weight of `network` stays as it is."""
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; expected one of {INITS}")
    tables = class_embedding_tables(network)
    rows = [class_id] if init == "class" else list(classes)
    vectors = [nn.Parameter(t.weight[rows].detach().float().mean(0).clone()) for t in tables]

    def hook_for(vector):
        def replace(module, inputs, output):
            hit = (inputs[0] == class_id).unsqueeze(-1)
            return torch.where(hit, vector.to(output.dtype), output)

        return replace

    handles = [t.register_forward_hook(hook_for(v)) for t, v in zip(tables, vectors)]
    try:
        yield vectors
    finally:
        for h in handles:
            h.remove()


def inversion_curve(
    model,
    forget: str,
    n_images: int = 10,
    checkpoints: Sequence[int] = DEFAULT_INVERSION_STEPS,
    learning_rate: float = 5e-2,
    batch_size: int = 16,
    eval_samples: int = 100,
    seed: int = 0,
    eval_seed: int = 1234,
    classifier=None,
    num_inference_steps: int | None = None,
    pool=None,
    dataset: str | None = None,
    image_column: str | None = None,
    label_column: str | None = None,
    init: str = "class",
    progress: bool = True,
    clip=None,
) -> dict:
    """Concept inversion of one forgotten class or concept: the forget accuracy after each budget of embedding steps.

    Args:
        model: the attacked pipeline (folder or loaded; multi-step or one-step; class-conditional or text-to-image).
            Its weights are not modified (a loaded text-to-image pipeline's tokenizers and encoders are copied).
        forget: `"class=NAME"` (`"concept=NAME"` for a text-to-image model), the one erased class to recover.
        n_images: the attacker's real images of it.
        checkpoints: the budgets (steps, increasing) at which to measure.
        learning_rate, batch_size: the attacker's Adam on the embedding vectors, and batch.
        eval_samples, eval_seed: samples of the class at each budget, and their seed.
        seed: the attacker's image choice and noise.
        classifier: the judge (default: the shipped classifier; for a text model, when it names the concept and
            takes the model's image channels).
        num_inference_steps: multi-step models: sampler steps (default: the pipeline's own).
        pool, dataset, image_column, label_column: the attacker's images, as for `relearn.relearn_curve` (for a text
            model `pool` is (images, labels, class names) and the concept is matched by name).
        init: where the embedding starts: the class's own row ("class", step 0 is the released model) or the mean
            row of the other classes ("mean"); for a text model the concept's own token rows or the vocabulary's mean.
        progress: show a progress bar.
        clip: text-to-image models: a CLIP judge (or its folder) to judge the samples with instead of the classifier;
            default: the classifier when it can judge the concept, else the shipped CLIP.

    Returns:
        A dict with the curve: `steps`, `forget_accuracy` per step, its `area` and `steps_to_50pct`, the norm of the
        learned embedding's change, and the settings.
    """
    checkpoints = check_budgets(checkpoints, n_images)
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; expected one of {INITS}")
    name = str(model) if isinstance(model, (str, os.PathLike)) else None
    pipe = load_pipeline(model)
    images = dict(n_images=n_images, seed=seed, pool=pool, dataset=dataset, image_column=image_column,
                  label_column=label_column)  # fmt: skip
    call = {} if num_inference_steps is None else {"num_inference_steps": num_inference_steps}
    start = time.time()
    text = hasattr(pipe, "text_pairs")
    gen = torch.Generator().manual_seed(seed)  # the attacker's batches, noise (and a text model's templates)
    judging = dict(classifier=classifier, clip=clip, eval_samples=eval_samples, eval_seed=eval_seed, call=call)
    with (token_attack if text else class_attack)(pipe if name or not text else with_own_text_modules(pipe), forget,
          init, images, gen, **judging) as attack:  # fmt: skip
        initial = [v.detach().clone() for v in attack.vectors]
        opt = torch.optim.Adam(attack.vectors, lr=learning_rate)
        x, y = attack.x, attack.y
        rates = attack_loop(attack.loss, opt, x, y, checkpoints, batch_size, gen, attack.measure, "invert", progress)
        moved = float(sum((v.detach() - v0).norm() ** 2 for v, v0 in zip(attack.vectors, initial)) ** 0.5)
    one_step = "sigma_init" in pipe.config
    return {
        "model": name or type(pipe).__name__,
        "attack": f"concept inversion{', new token' if text else ''}{' (one-step: at σ_init)' if one_step else ''}",
        "forget": attack.names,
        "attacked": attack.names,
        "judge": attack.judged_by,
        "images_per_class": n_images,
        "learning_rate": learning_rate,
        "init": init,
        "batch_size": min(batch_size, len(x)),
        "seed": seed,
        "eval_seed": eval_seed,
        "eval_samples": eval_samples,
        "num_inference_steps": num_inference_steps,
        "embedding_tables": len(attack.vectors),
        "embedding_change_norm": moved,
        "steps": checkpoints,
        "forget_accuracy": rates,
        "area": area_under_curve(checkpoints, rates),
        "steps_to_50pct": steps_to_reach(checkpoints, rates, 0.5),
        "mean_forget_accuracy": float(np.mean(rates)),
        "seconds": time.time() - start,
    }


@dataclass
class Attack:
    """What the attacker optimises and how a budget is judged: the learnable `vectors`, the attacker's images `x`
    (with labels `y`) in the network's space, the `loss` of a batch, `measure()` (the forget accuracy now), the
    attacked `names` and the judge's description."""

    vectors: list
    x: torch.Tensor
    y: torch.Tensor
    loss: Callable
    measure: Callable[[], float]
    names: list
    judged_by: str


@contextmanager
def frozen(network):
    """Within the block no weight of `network` learns (only the attacker's vectors do); its `requires_grad` flags are
    restored afterwards."""
    flags = [p.requires_grad for p in network.parameters()]
    network.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(network.parameters(), flags):
            p.requires_grad_(flag)


@contextmanager
def class_attack(pipe, forget, init, images, gen, classifier, clip, eval_samples, eval_seed, call):
    """A class-conditional model: one vector per class-embedding table for the forgotten id (`inverted_class`);
    judged by the classifier; `gen` is unused (the batches and noise are drawn by the loop)."""
    if clip is not None:
        raise ValueError("--clip judges text-to-image models; a class-conditional model is judged by its classifier")
    pipe, spec, judge, label_map = attack_target(pipe, forget, classifier)
    if len(spec.forget) != 1:
        raise ValueError(f"concept inversion recovers one class at a time; {forget!r} names {len(spec.forget)}")
    target = spec.forget[0]
    n, seed = images.pop("n_images"), images.pop("seed")
    x, y = attacker_latents(pipe, [target], n, seed, label_map, **images)
    others = [c for c in sorted(spec.id2label) if c != target]  # "mean": the erased row left out
    measure = lambda: forget_rates(pipe, judge, [target], label_map, eval_samples, eval_seed, **call)[0]  # noqa: E731
    with frozen(pipe.network), inverted_class(pipe.network, target, init, others) as vectors:
        loss = attack_loss(pipe, "sigma_init" in pipe.config)
        yield Attack(vectors, x, y, loss, measure, spec.describe()["forget"], "classifier")


@contextmanager
def token_attack(pipe, forget, init, images, gen, classifier, clip, eval_samples, eval_seed, call):
    """A text-to-image model: a new word (`PlaceholderToken`, one row per text encoder; `pipe` gains it), in prompt
    templates drawn with `gen`; "a photo of a PLACEHOLDER" judged by `token_inversion.concept_judge`."""
    concept = concept_of(forget)
    if pipe.tokenizer is None:
        raise ValueError("concept inversion of a text-to-image model needs its tokenizer to add the learned token")
    pipe.set_progress_bar_config(disable=True)
    rate, judged_by = concept_judge(pipe, concept, classifier, clip)
    x = concept_images(pipe, concept, **images)
    token = PlaceholderToken(pipe, start=concept if init == "class" else None)
    condition = lambda c: encode_prompts(pipe, placeholder_prompts(len(c), gen)).float()  # noqa: E731
    loss = attack_loss(pipe, "sigma_init" in pipe.config, condition)
    prompts = [EVAL_PROMPT.format(PLACEHOLDER)] * eval_samples
    measure = lambda: rate(sample_prompts(pipe, prompts, 100, eval_seed, False, **call)[0])  # noqa: E731
    with frozen(pipe.network):  # the network may be the caller's (shared by `with_own_text_modules`)
        yield Attack(token.rows, x, torch.zeros(len(x)), loss, measure, [concept], judged_by)
