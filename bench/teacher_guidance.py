"""Pick the teacher's default classifier-free guidance on a selection seed (not the evaluation seed).

    python -m bench.teacher_guidance --scales 1 1.5 2 3

Writes bench/results/teacher-guidance.{json,md}: class accuracy and FID (all classes) per scale.
"""

from __future__ import annotations

import argparse

from bench.common import RESULTS, write_result
from sfd.core.paths import DEFAULT_CLASSIFIER, DEFAULT_TEACHER
from sfd.evaluation.evaluate_classes import evaluate_model
from sfd.evaluation.judges import ImageClassifierJudge
from sfd.pipelines import ClassConditionalDiffusionPipeline


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", default=str(DEFAULT_TEACHER))
    p.add_argument("--scales", type=float, nargs="+", default=[1.0, 1.5, 2.0, 3.0])
    p.add_argument("--samples_per_class", type=int, default=50)
    p.add_argument("--seed", type=int, default=99, help="selection seed, distinct from evaluation seeds")
    args = p.parse_args(argv)
    judge = ImageClassifierJudge.from_pretrained(DEFAULT_CLASSIFIER)
    rows = []
    for g in args.scales:
        pipe = ClassConditionalDiffusionPipeline.from_pretrained(args.teacher)
        pipe.register_to_config(default_guidance_scale=g)
        m = evaluate_model(
            pipe,
            forget=None,
            classifier=judge,
            num_samples_per_class=args.samples_per_class,
            seed=args.seed,
            progress=False,
        )
        rows.append(
            {
                "guidance_scale": g,
                "class_accuracy": m["remaining_accuracy"],
                "fid": m["fid_remaining"],
                "images_per_second": m["images_per_second"],
            }
        )
        print(rows[-1], flush=True)
    out = RESULTS
    out.mkdir(parents=True, exist_ok=True)
    md = [
        f"Teacher guidance selection: {args.samples_per_class} samples per class, seed {args.seed}.",
        "",
        "| guidance | class accuracy | FID (all classes) | images/s |",
        "|---|---|---|---|",
    ]
    md += [
        f"| {r['guidance_scale']} | {r['class_accuracy']:.3f} | {r['fid']:.2f} | {r['images_per_second']:.1f} |"
        for r in rows
    ]
    write_result(
        out / "teacher-guidance",
        {"seed": args.seed, "samples_per_class": args.samples_per_class, "rows": rows},
        "\n".join(md) + "\n",
    )


if __name__ == "__main__":
    main()
