"""What FID a perfect generator would score with this judge and reference: real Fashion-MNIST *training* images measured like samples.

    python -m bench.real_data_floor [--forget "class=trouser"] [--samples_per_class 100 200 300] [--seeds 1234 99]

The FID of the remaining classes is taken against the real *test* images (assets/fid_reference.safetensors) in the
classifier's feature space, from a few hundred samples per class. Real training images of the same classes, drawn at
random in the same counts, are what a generator that matched the data exactly would give: their FID is the floor of
that estimator (its small-sample bias plus the train/test difference), the number to read the teacher's and the
one-step model's FIDs against. Writes bench/results/real-data-floor.{json,md}.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from bench.common import RESULTS, write_result
from sfd.core.paths import DEFAULT_CLASSIFIER
from sfd.core.precision import describe_machine
from sfd.core.spec import ForgetSpec, SpecError
from sfd.data.fashion_mnist import load_fashion_mnist
from sfd.evaluation.evaluate_classes import class_metrics
from sfd.evaluation.judges import ImageClassifierJudge, classify
from sfd.evaluation.reference import load_reference


def draw_real(x: torch.Tensor, y: torch.Tensor, classes, n_per_class: int, seed: int):
    """`n_per_class` random training images of each class (in [0, 1], like a pipeline's output) and their labels."""
    gen = torch.Generator().manual_seed(seed)
    picks = [torch.nonzero(y == c).flatten() for c in classes]
    picks = [idx[torch.randperm(len(idx), generator=gen)[:n_per_class]] for idx in picks]
    index = torch.cat(picks)
    return (x[index] + 1) / 2, y[index]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--forget", default="class=trouser", help="its classes are left out, as in the FID of a model")
    p.add_argument("--samples_per_class", type=int, nargs="+", default=[100, 200, 300])
    p.add_argument("--seeds", type=int, nargs="+", default=[1234, 99])
    p.add_argument("--out", default=str(RESULTS / "real-data-floor"))
    args = p.parse_args(argv)
    judge = ImageClassifierJudge.from_pretrained(DEFAULT_CLASSIFIER)
    try:  # the dataset's ids are the classifier's
        spec = ForgetSpec.parse(args.forget, "random", judge.id2label)
    except SpecError as err:
        raise SystemExit(f"real_data_floor: {err}") from None
    label_map = judge.match_labels(spec.id2label)
    ref = load_reference()
    x, y = load_fashion_mnist("train")
    rows = []
    for n in args.samples_per_class:
        for seed in args.seeds:
            images, labels = draw_real(x, y, spec.remaining, n, seed)
            probs, feats = classify(judge, images)
            m = class_metrics(probs, feats, labels, spec, label_map, ref["features"], ref["labels"], seed)
            rows.append(
                {
                    "samples_per_class": n,
                    "samples": len(labels),
                    "seed": seed,
                    **{
                        k: m[k]
                        for k in (
                            "fid_remaining",
                            "fid_remaining_ci",
                            "remaining_accuracy",
                            "precision_remaining",
                            "recall_remaining",
                        )
                    },
                }
            )
            print(rows[-1])
    out = Path(args.out)
    lines = [
        f"| {r['samples_per_class']} ({r['samples']:,}) | {r['seed']} | {r['fid_remaining']:.3f} "
        f"[{r['fid_remaining_ci'][0]:.2f}, {r['fid_remaining_ci'][1]:.2f}] | {r['remaining_accuracy']:.1%} | "
        f"{r['precision_remaining']:.2f} | {r['recall_remaining']:.2f} |"
        for r in rows
    ]
    write_result(
        out,
        {"machine": describe_machine(), "forget": args.forget, "rows": rows},
        "# The FID floor: real training images measured like samples\n\n"
        f"`python -m bench.real_data_floor`: random Fashion-MNIST training images of the classes that remain after "
        f"`--forget {args.forget}`, measured by sfd-eval's code against the real test images (the FID reference) "
        "in `assets/classifier`'s feature space. A generator that matched the data exactly would score these.\n\n"
        "| per class (in all) | seed | FID [95%] | classifier accuracy | precision | recall |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(lines) + "\n",
    )


if __name__ == "__main__":
    main()
