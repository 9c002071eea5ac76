"""What the weights still represent of a forgotten class (`sfd-eval --representation`).

Erasure that only reroutes the output can leave the concept intact inside the network, which is what makes
relearning cheap. Two measurements, for any class-conditional model (multi-step or one-step):

- **Linear probe.** Real test images x of the forgotten class and of the others are noised, x + σε, and passed
  through the network under the unconditional label (the null class; the first class without one); its middle block's
  activations, averaged over space, are the features. A logistic-regression probe trained on half of them tells the
  forgotten class from the others; its accuracy on the other half (balanced, chance 0.5) says how linearly the
  weights still separate the concept at that σ.
- **Judge separation.** The model's own samples of the forgotten label, in the judge's embedding space: their mean
  distance to the real forgotten class's centroid over the distance to the nearest remaining class's centroid
  (> 1: the samples sit nearer another class than the forgotten one).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..core.features import middle_features
from ..core.loading import load_pipeline
from ..core.sampling import sample_classes
from ..core.spec import ForgetSpec
from ..data.image_datasets import load_images
from ..pipelines import Denoiser
from ..pipelines.networks import null_class_of
from .judges import classify
from .relearn import dataset_label_map

PROBE_SIGMAS = (0.5, 2.5)
PROBE_IMAGES = 200  # per side: forgotten class / the others


@torch.no_grad()
def probe_features(pipe, x0: torch.Tensor, sigma: float, seed: int, batch_size: int = 100) -> torch.Tensor:
    """Spatially averaged middle-block activations of the network on x0 + σε under the unconditional label."""
    network = pipe.network
    device = next(network.parameters()).device
    null = null_class_of(network.config, len(pipe.id2label))
    label = 0 if null is None else null
    denoiser = Denoiser(network, pipe.scheduler.config)
    gen = torch.Generator().manual_seed(seed)
    feats = []
    with middle_features(network) as captured:
        for chunk in x0.split(batch_size):
            noise = torch.randn(chunk.shape, generator=gen)
            x = pipe.encode_images(chunk.to(device), torch.Generator(device).manual_seed(seed))
            x = x + sigma * noise.to(device)
            captured.clear()
            denoiser(x, sigma, torch.full((len(chunk),), label, device=device))
            feats.append(captured[0])
    return torch.cat(feats).cpu()


def probe_accuracy(train_x, train_y, test_x, test_y, l2: float = 1e-3, steps: int = 200) -> float:
    """Held-out accuracy of an L2-regularised logistic regression (LBFGS) on standardised features."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    a, b = (train_x - mean) / std, (test_x - mean) / std
    w = torch.zeros(a.shape[1], requires_grad=True)
    bias = torch.zeros((), requires_grad=True)
    opt = torch.optim.LBFGS([w, bias], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(a @ w + bias, train_y.float()) + l2 * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float(((b @ w + bias > 0).long() == test_y).float().mean())


def balanced_real_images(forget: int, n: int, seed: int, images):
    """`n` real images (x, y) of the forgotten class and `n` of the others, labels 1 / 0, shuffled."""
    x, y = images
    gen = torch.Generator().manual_seed(seed)
    pos, neg = torch.nonzero(y == forget).flatten(), torch.nonzero(y != forget).flatten()
    pos, neg = pos[torch.randperm(len(pos), generator=gen)[:n]], neg[torch.randperm(len(neg), generator=gen)[:n]]
    index = torch.cat([pos, neg])
    labels = torch.cat([torch.ones(len(pos)), torch.zeros(len(neg))]).long()
    order = torch.randperm(len(index), generator=gen)
    return x[index[order]], labels[order]


def judge_separation(judge, samples, real_x, real_y, forget: int, label_map: dict) -> dict:
    """Mean judge-space distance of the samples to the forgotten class's real centroid and to the nearest remaining
    class's centroid, and their ratio."""
    _, sample_feats = classify(judge, samples)
    _, real_feats = classify(judge, (real_x + 1) / 2)
    centroids = {c: real_feats[real_y == label_map[c]].mean(0) for c in label_map}
    dist = {c: float((sample_feats - m).norm(dim=1).mean()) for c, m in centroids.items()}
    nearest = min((c for c in dist if c != forget), key=dist.get)
    return {
        "distance_to_forgotten_centroid": dist[forget],
        "nearest_remaining_class": nearest,
        "distance_to_nearest_remaining_centroid": dist[nearest],
        "separation": dist[forget] / dist[nearest],
    }


def check_representation_request(forget: str | None) -> None:
    """`--representation` measures one forgotten class (before anything is sampled)."""
    if not forget:
        raise ValueError("--representation measures a forgotten class: pass --forget class=NAME")
    if not forget.strip().lower().startswith("class=") or "," in forget:
        raise ValueError(
            f"--representation measures one forgotten class of a class model, e.g. class=trouser; got {forget!r}"
        )


def representation_metrics(
    model, forget: str, judge, seed: int = 0, n: int = PROBE_IMAGES, samples: int = 100, pool=None, dataset=None
) -> dict:
    """The linear-probe accuracy per σ and the judge separation of `model` for the one class in `forget`. Real
    images: `pool` (in [-1, 1], at the model's size, with the judge's labels), else the test split of `dataset` (a
    `datasets` image-classification dataset with the model's class names), else Fashion-MNIST's."""
    check_representation_request(forget)
    pipe = load_pipeline(model)
    pipe.set_progress_bar_config(disable=True)
    spec = ForgetSpec.parse(forget, None, pipe.id2label, allow_auto=False)
    (f,) = spec.forget  # one class: check_representation_request
    label_map = judge.match_labels(spec.id2label)
    if pool is None:
        size, channels = pipe.image_format()
        images, labels, names = load_images(dataset, "test", image_size=size, channels=channels)
        if dataset:  # the dataset's labels, matched by name, relabelled as the judge labels them
            to_dataset = dataset_label_map(spec.id2label, sorted(spec.id2label), names, dataset)
            relabel = torch.full((len(names),), -1, dtype=torch.long)
            for c, d in to_dataset.items():
                relabel[d] = label_map[c]
            labels = relabel[labels]
        pool = (images, labels)
    x, y = balanced_real_images(label_map[f], n, seed, pool)
    half = len(x) // 2
    probe = {}
    for sigma in PROBE_SIGMAS:
        feats = probe_features(pipe, x, sigma, seed)
        probe[f"probe_accuracy_sigma_{sigma:g}"] = probe_accuracy(feats[:half], y[:half], feats[half:], y[half:])
    images, _ = sample_classes(pipe, [f] * samples, seed=seed, progress=False)
    separation = judge_separation(judge, images, *pool, f, label_map)
    separation["nearest_remaining_class"] = spec.id2label[separation["nearest_remaining_class"]]
    return {"forget": spec.forget_names, "probe_images_per_side": n, **probe, **separation}
