"""Concept inversion against the Fashion-MNIST default: can a learned class embedding bring "trouser" back?

    python -m bench.inversion        # ~30 min on a 2-core CPU

Every model of the relearning benchmark (bench/robustness.py: the teacher, the gold retrain without trouser, the
ESD-style fine-tune, the shipped SFD model with `--override auto`) is attacked by `sfd.evaluation.inversion`:
all weights frozen, one new embedding per class table learned from n = 1, 10, 100 real training images of trouser,
starting from trouser's own row; and, at n = 10, from the mean row of the other classes (an attacker who does not
reuse the erased row; on the teacher, the check that the attack can find trouser at all). Forget accuracy (share of 100
samples the classifier calls trouser, seed 1234) after 0, 25, 50, 100, 200 Adam steps (lr 0.05, batch 16,
attacker seed 0). Target: SFD's rate ≤ the gold model's + 10 points at every budget.
Writes bench/results/inversion.{json,md,png}.
"""

from __future__ import annotations

import argparse
import datetime as dt

from bench.common import PROJECT, RESULTS, RUNS, cached, slug, write_result
from bench.robustness import MODELS, NAMES, ensure_esd
from sfd.core.paths import DEFAULT_CLASSIFIER
from sfd.core.precision import describe_machine
from sfd.evaluation.inversion import inversion_curve
from sfd.evaluation.judges import ImageClassifierJudge
from sfd.evaluation.plots import plot_curves

TARGET_POINTS = 0.10


def attacks(model: str, images) -> dict:
    """Curve name → inversion settings; the teacher's own row draws trouser already: one class-row curve for it."""
    own = {f"n={n}": dict(n_images=n, init="class") for n in (images if model != "teacher" else images[1:2])}
    return own | {"n=10 from the mean row": dict(n_images=10, init="mean")}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--forget", default="class=trouser")
    p.add_argument("--images", type=int, nargs="+", default=[1, 10, 100])
    p.add_argument("--steps", default="0,25,50,100,200")
    p.add_argument("--learning_rate", type=float, default=5e-2)
    p.add_argument("--eval_samples", type=int, default=100)
    p.add_argument("--seed", type=int, default=1234, help="evaluation seed")
    p.add_argument("--attack_seed", type=int, default=0)
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=["teacher", "gold", "sfd", "esd"])
    p.add_argument("--out", default=str(RESULTS / "inversion"))
    args = p.parse_args(argv)
    judge = ImageClassifierJudge.from_pretrained(DEFAULT_CLASSIFIER)
    settings = dict(
        checkpoints=[int(s) for s in args.steps.split(",")],
        learning_rate=args.learning_rate,
        eval_samples=args.eval_samples,
        seed=args.attack_seed,
        eval_seed=args.seed,
        classifier=judge,
        progress=False,
    )
    curves = {}
    for model in args.models:
        path = MODELS[model]
        for name, attack in attacks(model, args.images).items():

            def compute(model=model, path=path, name=name, attack=attack):
                if model == "esd":
                    ensure_esd(PROJECT / path, args.forget)
                print(f"[invert] {model} {name}", flush=True)
                return inversion_curve(str(PROJECT / path), args.forget, **attack, **settings)

            # each curve is kept under bench/runs/inversion/ as it finishes, and reused by a rerun
            curves.setdefault(model, {})[name] = cached(RUNS / "inversion" / f"{model}-{slug(name)}.json", compute)
    record = {
        "date": dt.date.today().isoformat(),
        "forget": args.forget,
        "machine": describe_machine(),
        **{k: v for k, v in settings.items() if k not in ("classifier", "progress")},
        "models": {m: MODELS[m] for m in args.models},
        "curves": curves,
    }
    gaps = {
        name: max(s - g for s, g in zip(c["forget_accuracy"], curves["gold"][name]["forget_accuracy"]))
        for name, c in curves.get("sfd", {}).items()
        if "gold" in curves and name in curves["gold"]
    }
    record["sfd_minus_gold_max"] = gaps
    steps = settings["checkpoints"]
    lines = [
        "| model | attack | " + " | ".join(f"step {s}" for s in steps) + " | area |",
        "|" + "---|" * (len(steps) + 3),
    ]
    for model, named in curves.items():
        for name, c in named.items():
            rates = " | ".join(f"{v:.1%}" for v in c["forget_accuracy"])
            lines.append(f"| {NAMES[model]} | {name} | {rates} | {c['area']:.3f} |")
    verdict = "; ".join(
        f"{name}: {gap * 100:+.1f} points {'✅' if gap <= TARGET_POINTS else '❌'}" for name, gap in gaps.items()
    )
    plot = plot_curves(
        {f"{m} {n}": c for m, named in curves.items() for n, c in named.items()},
        RESULTS / "inversion.png",
        f"concept inversion of {args.forget}",
    )
    markdown = f"""# Concept inversion of `{args.forget}`

Forget accuracy (share of {args.eval_samples} samples the shipped classifier labels as the forgotten class, seed
{args.seed}) after the attacker's steps; every weight frozen, one learned embedding per class table (Adam lr
{args.learning_rate}, batch 16, attacker seed {args.attack_seed}); n = real training images of the class; the
embedding starts from the class's own row, or from the mean row of the other classes. Multi-step models sample with their
default steps; the SFD generator is attacked at σ_init through its one-step map. {describe_machine()}.

{chr(10).join(lines)}

Largest SFD − gold gap over the budgets (target ≤ +10 points): {verdict}.

![inversion curves]({plot.name})
"""
    print(markdown)
    write_result(args.out, record, markdown)


if __name__ == "__main__":
    main()
