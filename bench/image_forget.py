"""How often `--forget "image=PATH"` picks the class the image shows: one test image at a time, every class.

    python -m bench.image_forget [--teacher assets/teacher] [--per_class 20] [--seed 0]

Fashion-MNIST *test* images (never seen by the teacher, not used to choose any setting), `--per_class` of each class
drawn with `--seed`, each ranked alone by the teacher's own denoising loss under every class
(`sfd.training.image_forget.rank_classes_for_images`, the settings `--forget image=` uses: the training σ range of
the defaults, 32 noise draws per σ). Reports top-1 accuracy per class, the relative margin to the runner-up, and how
often a small margin (the warning) marks a wrong choice. Writes bench/results/image-forget.{json,md}.
"""

from __future__ import annotations

import argparse
import time

import torch
from tqdm.auto import tqdm

from bench.common import RESULTS, write_result
from sfd.core.paths import DEFAULT_TEACHER
from sfd.core.precision import describe_machine
from sfd.data.fashion_mnist import load_fashion_mnist
from sfd.pipelines import ClassConditionalDiffusionPipeline, Denoiser
from sfd.training.conditioning import teacher_sigma_range
from sfd.training.config import TrainingConfig
from sfd.training.image_forget import NOISE_DRAWS, SMALL_MARGIN, rank_classes_for_images


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", default=str(DEFAULT_TEACHER))
    p.add_argument("--per_class", type=int, default=20)
    p.add_argument("--seed", type=int, default=0, help="which test images")
    p.add_argument("--out", default=str(RESULTS / "image-forget"))
    args = p.parse_args(argv)

    pipe = ClassConditionalDiffusionPipeline.from_pretrained(args.teacher)
    denoiser = Denoiser(pipe.network.eval(), pipe.scheduler.config)
    defaults = TrainingConfig()
    lo, hi = teacher_sigma_range(args.teacher)
    sigma_range = (max(defaults.sigma_min, lo), min(defaults.sigma_max, hi))
    x, y = load_fashion_mnist("test")
    gen = torch.Generator().manual_seed(args.seed)
    rows, started = [], time.time()
    picks = [(c, int(i)) for c in sorted(pipe.id2label) for i in torch.nonzero(y == c).flatten()[
        torch.randperm(int((y == c).sum()), generator=gen)[: args.per_class]
    ]]  # fmt: skip
    for c, i in tqdm(picks, desc="images"):
        ranking = rank_classes_for_images(pipe, denoiser, x[i : i + 1], *sigma_range, seed=args.seed)
        (best, d1), (second, d2) = ranking[:2]
        rows.append({"index": i, "label": c, "chosen": best, "runner_up": second, "margin": (d2 - d1) / d1})
    seconds = time.time() - started

    names = pipe.id2label
    per_class = {names[c]: sum(r["chosen"] == c for r in rows if r["label"] == c) / args.per_class for c in names}
    correct = [r for r in rows if r["chosen"] == r["label"]]
    wrong = [r for r in rows if r["chosen"] != r["label"]]
    warned = [r for r in rows if r["margin"] < SMALL_MARGIN]

    def median(group):
        return round(float(torch.tensor([r["margin"] for r in group]).median()), 3) if group else None

    summary = {
        "top1_accuracy": len(correct) / len(rows),
        "median_margin_correct": median(correct),
        "median_margin_wrong": median(wrong),
        "warned": len(warned),
        "warned_wrong": sum(r["chosen"] != r["label"] for r in warned),
        "wrong_not_warned": sum(r["margin"] >= SMALL_MARGIN for r in wrong),
    }
    record = {
        "teacher": args.teacher,
        "images": "Fashion-MNIST test split",
        "per_class": args.per_class,
        "seed": args.seed,
        "noise_draws": NOISE_DRAWS,
        "sigma_range": sigma_range,
        "small_margin": SMALL_MARGIN,
        "seconds": seconds,
        "machine": describe_machine(),
        **summary,
        "per_class_accuracy": per_class,
        "confusions": {f"{names[r['label']]} → {names[r['chosen']]}": 0 for r in wrong},
        "rows": rows,
    }
    for r in wrong:
        record["confusions"][f"{names[r['label']]} → {names[r['chosen']]}"] += 1
    table = "\n".join(f"| {n} | {a:.0%} |" for n, a in per_class.items())
    confusions = ", ".join(f"{k} ×{v}" for k, v in sorted(record["confusions"].items(), key=lambda kv: -kv[1]))
    markdown = f"""# `--forget image=`: the class the teacher sees in one test image

{args.teacher}; {args.per_class} Fashion-MNIST test images per class (seed {args.seed}), each ranked alone by the
teacher's denoising loss under every class ({NOISE_DRAWS} noise draws per σ, 8 σ in [{sigma_range[0]:.3g},
{sigma_range[1]:.3g}]); {seconds / len(rows):.1f} s per image on {describe_machine()}.

**Top-1: {summary["top1_accuracy"]:.1%}** of {len(rows)} images. Median relative margin to the runner-up:
{summary["median_margin_correct"]} when right, {summary["median_margin_wrong"]} when wrong. The small-margin
warning (< {SMALL_MARGIN:.0%}) fired on {summary["warned"]} images, {summary["warned_wrong"]} of them wrong;
{summary["wrong_not_warned"]} wrong choices had no warning.

| class | top-1 |
|---|---|
{table}

Confusions (true → chosen): {confusions or "none"}.
"""
    print(markdown)
    write_result(args.out, record, markdown)


if __name__ == "__main__":
    main()
