"""Concept inversion against the Fashion-MNIST default: can a learned class embedding bring "trouser" back?

    python -m bench.inversion          # ~1 h on a 2-core CPU (each curve is cached under bench/runs/inversion/)
    python -m bench.inversion --text   # the text-to-image models: a new token against "sneaker"

Every model of the relearning benchmark (bench/robustness.py: the teacher, the gold retrain without trouser, the
ESD-style fine-tune, the shipped SFD model with `--override auto`), SFD with `--override far` and `random` and SFD with
the contrastive term (trained first when absent, `bench.robustness.ensure_model`) is attacked by `sfd.evaluation.inversion`:
all weights frozen, one new embedding per class table learned from n = 1, 10, 100 real training images of trouser,
starting from trouser's own row; and, at n = 10, from the mean row of the other classes (an attacker who does not
reuse the erased row; on the teacher, the check that the attack can find trouser at all). Forget accuracy (share of 100
samples the classifier calls trouser, seed 1234) after 0, 25, 50, 100, 200 Adam steps (lr 0.05, batch 16,
attacker seed 0). Target: SFD's rate ≤ the gold model's + 10 points at every budget.
Writes bench/results/inversion.{json,md,png}. `--text` attacks the embedded text teacher and the shipped SFD model
that forgot "sneaker" with a new token instead (`sfd.evaluation.token_inversion`, judged by the classifier) and writes
bench/results/inversion-text.{json,md,png}; no gold text model exists to compare with.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from bench.common import PROJECT, RESULTS, RUNS, cached, slug, write_result
from bench.robustness import ERASERS, NAMES, ensure_model
from sfd.core.paths import DEFAULT_CLASSIFIER
from sfd.core.precision import describe_machine
from sfd.evaluation.inversion import inversion_curve
from sfd.evaluation.judges import ImageClassifierJudge
from sfd.evaluation.plots import plot_curves

TARGET_POINTS = 0.10
CLASS_MODELS = ["teacher", "gold", "sfd", "esd", "sfd-far", "sfd-random", "sfd-contrastive"]
TEXT_MODELS = {"t2i-teacher": "assets/t2i-teacher", "sfd-t2i": "assets/sfd-t2i-sneaker"}
TEXT_NAMES = {"t2i-teacher": "Text teacher (multi-step)", "sfd-t2i": "SFD, sneaker → sandal (one step)"}


def attacks(model: str, images, text: bool = False) -> dict:
    """Curve name → inversion settings. A teacher's own row draws the class already: one class-row curve for the class
    teacher, none for the text teacher (whose curve from the vocabulary's mean shows the attack can find the concept)."""
    sizes = images if "teacher" not in model else [] if text else images[1:2]
    mean = "n=10 from the vocabulary's mean" if text else "n=10 from the mean row"
    return {f"n={n}": dict(n_images=n, init="class") for n in sizes} | {mean: dict(n_images=10, init="mean")}


def check_settings(curve: dict, cache, forget: str, attack: dict, settings: dict) -> None:
    """A cached curve must have been measured with this run's settings; else say which file to delete."""
    wanted = {
        "forget": [forget.partition("=")[2].strip()],
        "steps": settings["checkpoints"],
        "learning_rate": settings["learning_rate"],
        "eval_samples": settings["eval_samples"],
        "seed": settings["seed"],
        "eval_seed": settings["eval_seed"],
        "images_per_class": attack["n_images"],
        "init": attack["init"],
    }
    differ = [k for k, v in wanted.items() if str(curve.get(k)).lower() != str(v).lower()]
    if differ:
        raise SystemExit(f"{cache} was measured with other {', '.join(differ)}: delete it to measure it again")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", action="store_true", help="attack the text-to-image models (a new token)")
    p.add_argument("--forget", default=None, help='default: "class=trouser", with --text "concept=sneaker"')
    p.add_argument("--images", type=int, nargs="+", default=[1, 10, 100])
    p.add_argument("--steps", default="0,25,50,100,200")
    p.add_argument("--learning_rate", type=float, default=5e-2)
    p.add_argument("--eval_samples", type=int, default=100)
    p.add_argument("--seed", type=int, default=1234, help="evaluation seed")
    p.add_argument("--attack_seed", type=int, default=0)
    p.add_argument("--models", nargs="+", choices=CLASS_MODELS + list(TEXT_MODELS), default=None)
    p.add_argument("--out", default=None, help="default: bench/results/inversion[-text]")
    p.add_argument(
        "--from_cache", action="store_true", help="table only the curves already measured (under bench/runs/inversion)"
    )
    args = p.parse_args(argv)
    args.forget = args.forget or ("concept=sneaker" if args.text else "class=trouser")
    args.models = args.models or (list(TEXT_MODELS) if args.text else CLASS_MODELS)
    wrong = [m for m in args.models if (m in TEXT_MODELS) != args.text]
    if wrong:
        p.error(
            f"{', '.join(wrong)}: {'class' if args.text else 'text'} model(s); "
            + ("drop --text" if args.text else "add --text")
        )
    args.out = args.out or str(RESULTS / ("inversion-text" if args.text else "inversion"))
    paths, names = (TEXT_MODELS, TEXT_NAMES) if args.text else (ERASERS, NAMES)
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
        for name, attack in attacks(model, args.images, args.text).items():
            cache = RUNS / "inversion" / f"{model}-{slug(name)}.json"
            if args.from_cache and not cache.exists():
                print(f"[invert] {model} {name}: not measured yet, left out")
                continue

            def compute(model=model, name=name, attack=attack):
                path = PROJECT / paths[model] if args.text else ensure_model(model, args.forget)
                print(f"[invert] {model} {name}", flush=True)
                return inversion_curve(str(path), args.forget, **attack, **settings)

            # each curve is kept under bench/runs/inversion/ as it finishes, and reused by a rerun
            curve = cached(cache, compute)
            check_settings(curve, cache, args.forget, attack, settings)
            curves.setdefault(model, {})[name] = curve
    record = {
        "date": dt.date.today().isoformat(),
        "forget": args.forget,
        "machine": describe_machine(),
        **{k: v for k, v in settings.items() if k not in ("classifier", "progress")},
        "models": {m: paths[m] for m in args.models},
        "curves": curves,
    }
    gold = curves.get("gold", {})
    gaps = {  # every SFD model's largest excess over the gold model, per attack
        f"{model} {name}": max(s - g for s, g in zip(c["forget_accuracy"], gold[name]["forget_accuracy"]))
        for model, named in curves.items()
        if model.startswith("sfd") and model in ERASERS
        for name, c in named.items()
        if name in gold
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
            lines.append(f"| {names[model]} | {name} | {rates} | {c['area']:.3f} |")
    verdict = (
        "Largest SFD − gold gap over the budgets (target ≤ +10 points): "
        + "; ".join(
            f"{k}: {gap * 100:+.1f} points {'✅' if gap <= TARGET_POINTS else '❌'}" for k, gap in gaps.items()
        )
        + "."
        if gaps
        else "No gold model exists for the text models: the curves only."
        if args.text
        else "The gold model was not attacked: no gap to the target."
    )
    plot = plot_curves(
        {f"{m} {n}": c for m, named in curves.items() for n, c in named.items()},
        Path(args.out).with_suffix(".png"),
        f"concept inversion of {args.forget}",
    )
    learned = (
        "one learned token row per text encoder (the word in the templates of `sfd.core.prompts`); the row starts from "
        "the concept's own token rows, or from the vocabulary's mean; samples of \"a photo of a sfdconcept\""
        if args.text
        else "one learned embedding per class table; the embedding starts from the class's own row, or from the mean "
        "row of the other classes"
    )
    markdown = f"""# Concept inversion of `{args.forget}`

Forget accuracy (share of {args.eval_samples} samples the shipped classifier labels as the forgotten class, seed
{args.seed}) after the attacker's steps (Adam lr {args.learning_rate}, batch 16, attacker seed {args.attack_seed}),
every weight frozen: {learned}. n = real training images of the class. Multi-step models sample with their default
steps; SFD generators are attacked at σ_init through their one-step map. {describe_machine()}.

{chr(10).join(lines)}

{verdict}

![inversion curves]({plot.name})
"""
    print(markdown)
    write_result(args.out, record, markdown)


if __name__ == "__main__":
    main()
