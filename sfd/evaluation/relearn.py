"""Relearning attack: fine-tune released weights on a few real images and see whether a forgotten class comes back.

The attacker holds the released class-conditional pipeline and `n` real training images per attacked class
(Fashion-MNIST, or any `datasets` image-classification dataset with the model's class names). They fine-tune its
network (a UNet or a DiT; a latent model on the VAE's latents of the images) with the standard denoising loss of its
own noise schedule (DDPM, Ho et al. eq. 14, in the network's ε / v / x₀ parameterisation), for a multi-step model and
a one-step generator alike (the generator's network is a denoiser over the same timesteps), and sample it as
released. After each budget in `checkpoints` the forgotten classes are sampled and judged by the classifier.

The curve is the result: its area (mean forget accuracy over the budget) and the steps needed to cross
a forget accuracy (linear between checkpoints). Attacking the forgotten classes is the relearning
attack; attacking remaining classes only (`benign=True`) is the resurgence test.
"""

from __future__ import annotations

import copy
import os
import time
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..core.loading import load_pipeline
from ..core.losses import denoising_loss, sampling_level_loss
from ..core.sampling import sample_classes
from ..core.spec import ForgetSpec, resolve_classes
from ..data.image_datasets import dataset_name, load_images
from ..pipelines import ClassConditionalDiffusionPipeline, OneStepClassConditionalPipeline
from ..pipelines.denoiser import scheduler_of_family
from .judges import ImageClassifierJudge, classify

DEFAULT_CHECKPOINTS = (0, 10, 25, 50, 100, 200)


def attacker_images(
    pool: tuple[torch.Tensor, torch.Tensor],
    class_ids: Sequence[int],
    n_per_class: int,
    seed: int = 0,
    label_map: dict[int, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`n_per_class` images of each generator class id drawn with `seed` from `pool` (images in [-1, 1],
    dataset labels); `label_map` maps generator ids to dataset labels (identity when None)."""
    x, y = pool
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for c in class_ids:
        rows = np.flatnonzero(y.numpy() == (label_map or {}).get(c, c))
        if len(rows) < n_per_class:
            raise ValueError(f"only {len(rows)} images of class {c} to attack with; asked for {n_per_class}")
        pick = torch.from_numpy(rng.choice(rows, n_per_class, replace=False))
        xs.append(x[pick])
        ys.append(torch.full((n_per_class,), c))
    return torch.cat(xs), torch.cat(ys)


def dataset_label_map(
    id2label: dict[int, str], classes: Sequence[int], class_names: Sequence[str], dataset: str
) -> dict[int, int]:
    """The dataset's label of each of the model's `classes`, matched by name, case-insensitively: the full label or
    one of its comma-separated synonyms ("tench" for "tench, Tinca tinca")."""
    index = {name.strip().lower(): i for i, name in enumerate(class_names)}
    mapping = {}
    for c in classes:
        names = [id2label[c], *id2label[c].split(",")]
        found = [index[n.strip().lower()] for n in names if n.strip().lower() in index]
        if not found:
            raise ValueError(
                f"dataset {dataset!r} has no class named {id2label[c]!r}; its classes: {', '.join(class_names)}. The "
                "attacker's images must come from a dataset with the model's class names"
            )
        mapping[c] = found[0]
    return mapping


def attack_pool(pipe, dataset: str | None, image_column=None, label_column=None):
    """The attacker's training split, at the model's image size and channels: (images in [-1, 1], labels, names)."""
    size, channels = pipe.image_format()
    return load_images(dataset, "train", None, image_column, label_column, size, channels)


def check_budgets(checkpoints: Sequence[int], n_images: int) -> list[int]:
    """The attack budgets, sorted; at least one step count ≥ 0 and one image per attacked class."""
    checkpoints = sorted(set(int(c) for c in checkpoints))
    if not checkpoints or checkpoints[0] < 0:
        raise ValueError(f"checkpoints must be step counts ≥ 0, e.g. 0,10,25,50,100,200; got {checkpoints}")
    if n_images < 1:
        raise ValueError(f"the attacker needs at least one image per attacked class, got n_images={n_images}")
    return checkpoints


def attack_target(model, forget: str, classifier=None):
    """(the released class-conditional pipeline, the parsed `forget` spec, the judge, generator id → judge id)."""
    pipe = load_pipeline(model)
    if not isinstance(pipe, (ClassConditionalDiffusionPipeline, OneStepClassConditionalPipeline)):
        raise ValueError(
            f"the relearning attack fine-tunes class-conditional models; {type(pipe).__name__} is not one (a "
            'text-to-image model can be attacked by concept inversion: sfd-attack invert --forget "concept=NAME")'
        )
    pipe.set_progress_bar_config(disable=True)
    spec = ForgetSpec.parse(forget, None, pipe.id2label)
    judge = as_judge(classifier)
    return pipe, spec, judge, judge.match_labels(spec.id2label)


def as_judge(classifier=None) -> ImageClassifierJudge:
    """A classifier judge, its folder, or None for the shipped classifier."""
    if isinstance(classifier, ImageClassifierJudge):
        return classifier
    return ImageClassifierJudge.from_pretrained(*([classifier] if classifier else []))


def in_network_space(pipe, x: torch.Tensor, seed: int) -> torch.Tensor:
    """Images in [-1, 1] as the network sees them (the VAE's latents for a latent model), float32 on the CPU."""
    with torch.no_grad():
        return pipe.encode_images(x.to(pipe.device), torch.Generator(pipe.device).manual_seed(seed)).float().cpu()


def attack_loss(pipe, at_sampling_level: bool, condition=None):
    """The attacker's loss of a batch (x₀, labels, generator) on `pipe`'s current network: at σ_init through the
    one-step map (`sampling_level_loss`, the one level a one-step generator is sampled at) or the schedule's denoising
    loss over all timesteps; `condition` turns a batch's labels into the network's condition (default: the labels)."""
    condition = condition or (lambda c: c)
    if at_sampling_level:
        denoiser, sigma = pipe.generator_network(), pipe.config.sigma_init
        return lambda x0, c, g: sampling_level_loss(denoiser, sigma, x0, condition(c), g)
    scheduler = scheduler_of_family(pipe.scheduler.config)  # its training parameterisation (DDPM family or EDM)
    network = pipe.network
    return lambda x0, c, g: denoising_loss(network, scheduler, x0, condition(c), g)


def attacker_latents(pipe, attacked, n_images, seed, label_map, pool=None, dataset=None, image_column=None,
                     label_column=None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """`n_images` real images of each attacked class in the network's space (the VAE's latents for a latent model),
    from `pool` (labelled as the judge labels) or the training split of `dataset` (matched by class name)."""
    if pool is not None:
        x, y = attacker_images(pool, attacked, n_images, seed, label_map)
    else:
        images, labels, names = attack_pool(pipe, dataset, image_column, label_column)
        pool_map = dataset_label_map(pipe.id2label, attacked, names, dataset) if dataset else label_map
        x, y = attacker_images((images, labels), attacked, n_images, seed, pool_map)
    return in_network_space(pipe, x, seed), y  # a latent model is attacked on the VAE's latents of the images


def attack_loop(
    loss_fn, opt, x, y, checkpoints, batch_size: int, gen, measure, desc: str, progress: bool, network=None
):
    """The attacker's Adam steps on batches of (x, y), `measure()` after each budget in `checkpoints`; returns the
    measurements. `network` (if given) trains in train mode and is measured in eval mode."""
    rates, step = [], 0
    bar = tqdm(total=checkpoints[-1], desc=desc, disable=not progress)
    for budget in checkpoints:
        if network is not None:
            network.train()
        while step < budget:
            idx = torch.randint(len(x), (min(batch_size, len(x)),), generator=gen)
            loss = loss_fn(x[idx], y[idx], gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}")
        if network is not None:
            network.eval()
        with torch.no_grad():
            rates.append(measure())
    bar.close()
    return rates


def forget_rates(
    pipe,
    judge: ImageClassifierJudge,
    class_ids: Sequence[int],
    label_map: dict[int, int],
    n: int,
    seed: int,
    batch_size: int = 100,
    **call_kwargs,
) -> list[float]:
    """Share of `n` samples of each class that the judge labels as that class."""
    labels = [c for c in class_ids for _ in range(n)]
    images, _ = sample_classes(pipe, labels, batch_size=batch_size, seed=seed, progress=False, **call_kwargs)
    pred = classify(judge, images)[0].argmax(-1)
    hit = (pred == torch.tensor([label_map[c] for c in labels])).float().view(len(class_ids), n)
    return hit.mean(1).tolist()


def area_under_curve(steps: Sequence[int], values: Sequence[float]) -> float:
    """Mean of the curve over the budget: ∫ acc d(step) / max step (trapezoids)."""
    s, v = np.asarray(steps, float), np.asarray(values, float)
    return float(np.trapezoid(v, s) / s[-1]) if s[-1] > 0 else float(v[0])


def steps_to_reach(steps: Sequence[int], values: Sequence[float], level: float) -> float | None:
    """First step at which the curve reaches `level` (linear between checkpoints); None if it never does."""
    for i, (s, v) in enumerate(zip(steps, values)):
        if v >= level:
            if i == 0:
                return float(s)
            s0, v0 = steps[i - 1], values[i - 1]
            return float(s0 + (level - v0) / (v - v0) * (s - s0))
    return None


def relearn_curve(
    model,
    forget: str,
    n_images: int = 10,
    checkpoints: Sequence[int] = DEFAULT_CHECKPOINTS,
    attack: str | None = None,
    benign: bool = False,
    learning_rate: float = 1e-4,
    batch_size: int = 16,
    eval_samples: int = 100,
    seed: int = 0,
    eval_seed: int = 1234,
    classifier=None,
    num_inference_steps: int | None = None,
    pool=None,
    at_sampling_level: bool = False,
    progress: bool = True,
    dataset: str | None = None,
    image_column: str | None = None,
    label_column: str | None = None,
) -> dict:
    """Relearning attack: fine-tune a copy of `model`'s UNet on a few real images and measure the forget accuracy of
    every class in `forget` after each budget of steps.

    Args:
        model: the attacked pipeline (folder or loaded; multi-step or one-step). It is not modified.
        forget: `"class=NAME[,NAME…]"`, the erased classes whose return is measured.
        n_images: real images per attacked class.
        checkpoints: the budgets (steps, increasing) at which to measure.
        attack: `"class=…"`, the classes the attacker holds images of (e.g. one fold of a layered erasure); default:
            the forgotten classes, or with `benign=True` every remaining class (the resurgence test).
        learning_rate, batch_size: the attacker's Adam and batch.
        eval_samples: samples per forgotten class at each budget, drawn with `eval_seed`.
        seed: the attacker's image choice and noise.
        classifier: the judge (default: the shipped classifier).
        num_inference_steps: multi-step models: sampler steps (default: the pipeline's own).
        pool: the attacker's (images, labels) to draw from, labelled as the judge labels; default: the training split
            of `dataset`.
        at_sampling_level: one-step generators only, the adaptive attacker: the denoising loss at σ_init alone, the
            one noise level the released generator is ever evaluated at, instead of over all timesteps.
        progress: show a progress bar.
        dataset, image_column, label_column: the attacker's images (see `sfd.data.image_datasets`): a `datasets`
            image-classification dataset whose class names are the model's; default: Fashion-MNIST.

    Returns:
        A dict with the curve: `steps`, `forget_accuracy` per step, its `area` and `steps_to_50pct` (None when never
        reached), and what was attacked.
    """
    checkpoints = check_budgets(checkpoints, n_images)
    if attack is not None and benign:
        raise ValueError("pass either attack classes or benign=True, not both")
    pipe, spec, judge, label_map = attack_target(model, forget, classifier)
    if at_sampling_level and "sigma_init" not in pipe.config:
        raise ValueError(
            "at_sampling_level attacks a one-step generator (sampled at σ_init); this model samples in many steps"
        )
    if attack is not None:
        attacked = resolve_classes(attack.partition("=")[2].split(","), spec.id2label, "--attack")
    else:
        attacked = list(spec.remaining if benign else spec.forget)
    x, y = attacker_latents(pipe, attacked, n_images, seed, label_map, pool, dataset, image_column, label_column)

    component = pipe.network_component  # "unet", or "transformer" for a DiT
    released = pipe.network
    unet = copy.deepcopy(released).float()
    setattr(pipe, component, unet)
    loss_fn = attack_loss(pipe, at_sampling_level)  # on the copy
    opt = torch.optim.Adam(unet.parameters(), lr=learning_rate)
    gen = torch.Generator().manual_seed(seed)
    call = {} if num_inference_steps is None else {"num_inference_steps": num_inference_steps}
    start = time.time()
    measure = lambda: forget_rates(pipe, judge, spec.forget, label_map, eval_samples, eval_seed, **call)  # noqa: E731
    try:
        rates = attack_loop(loss_fn, opt, x, y, checkpoints, batch_size, gen, measure, "relearn", progress, unet)
    finally:
        setattr(pipe, component, released)
    per_class = {spec.id2label[c]: [r[i] for r in rates] for i, c in enumerate(spec.forget)}
    mean = [float(np.mean(r)) for r in rates]
    return {
        "model": str(model) if isinstance(model, (str, os.PathLike)) else type(pipe).__name__,
        "dataset": dataset_name(dataset) if pool is None else "given pool",
        "forget": spec.describe()["forget"],
        "attacked": [spec.id2label[c] for c in attacked],
        "benign": benign,
        "at_sampling_level": at_sampling_level,
        "images_per_class": n_images,
        "learning_rate": learning_rate,
        "batch_size": min(batch_size, len(x)),
        "seed": seed,
        "eval_seed": eval_seed,
        "eval_samples": eval_samples,
        "num_inference_steps": num_inference_steps,
        "steps": checkpoints,
        "forget_accuracy": mean,
        "per_class_forget_accuracy": per_class,
        "area": area_under_curve(checkpoints, mean),
        "steps_to_50pct": steps_to_reach(checkpoints, mean, 0.5),
        "seconds": time.time() - start,
    }
