"""What `--override auto` chooses for every class of the embedded teacher, checked against the judge.

    python -m bench.override_choice

For each class as the forgotten one: the remaining class the teacher finds least like it (sfd.training.override_choice,
data-free: teacher samples and the teacher's own denoising loss, seed 0 as in training), the forget-accuracy floor
of that choice (real test images of the chosen class the classifier calls by the forgotten name), and, for
comparison, the judge's own best choice (lowest floor) and the floor of `random`. The judge is not used to choose.
Writes bench/results/override-choice.{json,md}.
"""

from __future__ import annotations

import time
from dataclasses import replace

from bench.common import RESULTS, write_result
from sfd.core.precision import describe_machine
from sfd.core.spec import ForgetSpec
from sfd.evaluation.judges import ImageClassifierJudge
from sfd.evaluation.reference import forget_accuracy_floor, load_reference_predictions
from sfd.pipelines import ClassConditionalDiffusionPipeline, Denoiser
from sfd.training.conditioning import teacher_sigma_range
from sfd.training.config import load_config
from sfd.training.override_choice import choose_override


def main() -> None:
    cfg = load_config()
    pipe = ClassConditionalDiffusionPipeline.from_pretrained(cfg.teacher)
    pipe.set_progress_bar_config(disable=True)
    denoiser = Denoiser(pipe.unet, pipe.scheduler.config, null_class_id=pipe.null_class_id)
    lo, hi = teacher_sigma_range(pipe)
    sigma_min, sigma_max = max(cfg.sigma_min, lo), min(cfg.sigma_max, hi)
    judge = ImageClassifierJudge.from_pretrained(cfg.classifier)
    label_map = judge.match_labels(pipe.id2label)
    reference = load_reference_predictions()
    rows = []
    for forgotten in sorted(pipe.id2label):
        name = pipe.id2label[forgotten]
        spec = ForgetSpec.parse(f"class={name}", "auto", pipe.id2label)
        start = time.perf_counter()
        chosen, distances = choose_override(pipe, denoiser, spec, sigma_min, sigma_max, seed=cfg.seed)
        seconds = time.perf_counter() - start
        floors = {c: forget_accuracy_floor(*reference, replace(spec, override=c), label_map) for c in spec.remaining}
        best = min(floors, key=floors.get)
        rows.append(
            {
                "forget": name,
                "auto": pipe.id2label[chosen],
                "auto_floor": floors[chosen],
                "judge_best": pipe.id2label[best],
                "judge_best_floor": floors[best],
                "random_floor": forget_accuracy_floor(*reference, replace(spec, auto=False), label_map),
                "distances": distances,
                "seconds": seconds,
            }
        )
        print(rows[-1], flush=True)
    out = RESULTS / "override-choice"
    lines = [
        f"| {r['forget']} | {r['auto']} | {r['auto_floor']:.2%} | {r['judge_best']} | {r['judge_best_floor']:.2%} | "
        f"{r['random_floor']:.2%} | {r['seconds']:.0f} |"
        for r in rows
    ]
    write_result(
        out,
        {"machine": describe_machine(), "rows": rows},
        "# What `--override auto` chooses\n\n"
        f"`python -m bench.override_choice` on {describe_machine()}: for each forgotten class, the remaining class "
        "the embedded teacher finds least like it (`sfd.training.override_choice`: 32 teacher samples of the forgotten class, "
        "the teacher's denoising loss under each remaining class over 8 σ, seed 0), with the floor of that choice: "
        "the share of real test images of the chosen class `assets/classifier` calls by the forgotten name. The "
        "judge's lowest-floor class and the floor of `random` are shown for comparison; the judge plays no part in "
        "the choice. Seconds: the choice's cost (teacher sampling and scoring).\n\n"
        "| forgotten | auto's choice | its floor | judge's best | its floor | floor of random | seconds |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(lines) + "\n",
    )
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
