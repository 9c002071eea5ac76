"""Robust forgetting on the Fashion-MNIST default: relearning attacks, resurgence, layered erasure.

    python -m bench.robustness                 # both parts (~1 h on a 2-core CPU)
    python -m bench.robustness --part relearn  # teacher, gold, ESD-style, SFD against the relearning attack
    python -m bench.robustness --part layered  # one-shot vs layered SFD erasure of three classes

relearn: every model is fine-tuned by `sfd.evaluation.relearn.relearn_curve` on n = 10 and n = 100 real training
images of the forgotten class, and (resurgence) on 10 images of each remaining class; the one-step SFD
model also by the adaptive attacker (the denoising loss at its sampling level σ_init only); its forget accuracy
is measured after 0, 10, 25, 50, 100, 200 steps. Summaries: the curve's area and the steps to reach 50% of
the teacher's rate (the teacher at step 0).
layered: SFD erases `--layered_forget` once (one stage) and in `--layers` stages (`sfd.training.layered`), same total
budget; both are measured by `evaluate_model`, then attacked with n = 10 images of every proper subset of
the folds; the figure is the best forget accuracy reached on the folds left out (Layered Unlearning's
fold-by-fold matrix).
Writes bench/results/robustness-<part>-<date>.{json,md,png}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
from pathlib import Path

from bench.common import PROJECT, RESULTS, RUNS, write_result
from sfd.core.paths import DEFAULT_CLASSIFIER
from sfd.core.precision import CHOICES, resolve_mixed_precision

RUNS = RUNS
MODELS = {
    "teacher": "assets/teacher",
    "gold": "assets/gold-trouser",
    "esd": "bench/runs/esd",
    "sfd": "assets/sfd-trouser",
}
# the representation check and concept inversion also measure SFD with the other override choices and the contrastive
# term's trial, each trained on trouser by `ensure_model` when it is not on disk
ERASERS = MODELS | {
    "sfd-far": "bench/runs/other-trouser-to-far",
    "sfd-random": "bench/runs/other-trouser",
    "sfd-contrastive": "bench/runs/contrastive-w1",
}
NAMES = {
    "teacher": "Teacher (multi-step)",
    "gold": "Gold retrain (multi-step)",
    "esd": "ESD-style (multi-step)",
    "sfd": "SFD (one step)",
    "sfd-far": "SFD, `--override far` (one step)",
    "sfd-random": "SFD, `--override random` (one step)",
    "sfd-contrastive": "SFD, contrastive weight 1.0 (one step)",
    "oneshot": "SFD, one-shot",
    "layered": "SFD, layered",
}


def attack_settings(args) -> dict:
    return dict(
        checkpoints=[int(s) for s in args.steps.split(",")],
        learning_rate=args.learning_rate,
        eval_samples=args.eval_samples,
        seed=args.attack_seed,
        eval_seed=args.seed,
        progress=False,
    )


def ensure_esd(path: Path, forget: str) -> None:
    """The ESD-style baseline of bench/run.py, trained by this script when that run is not on disk."""
    if not (path / "model_index.json").exists():
        from sfd.baselines.esd import esd_finetune

        esd_finetune("assets/teacher", forget, output_dir=str(path))


def ensure_model(name: str, forget: str = "class=trouser") -> Path:
    """The folder of eraser `name` (of `ERASERS`, which forget trouser), trained first when it is not on disk: the
    ESD-style baseline as above, SFD `far` / `random` with bench/other_classes.py's recipe (the defaults otherwise),
    the contrastive trial with `contrastive_weight=1.0`."""
    if forget.replace(" ", "").lower() != "class=trouser":
        raise SystemExit(f"the benchmark's erasers forget trouser; {forget!r} would measure them on another class")
    path = PROJECT / ERASERS[name]
    if name == "esd":
        ensure_esd(path, "class=trouser")
    elif name in ("sfd-far", "sfd-random"):
        from bench.other_classes import train

        train("trouser:far" if name == "sfd-far" else "trouser", path.parent)
    elif name == "sfd-contrastive" and not (path / "model_index.json").exists():
        from sfd import forget

        forget(forget="class=trouser", output_dir=str(path), contrastive_weight=1.0, overwrite_output_dir=True)
    return path


def relearn_part(args, judge, previous: dict) -> dict:
    """Every model's curves; those in `previous` (an earlier record with the same settings) are kept."""
    from sfd.evaluation.relearn import relearn_curve, steps_to_reach

    kw = dict(attack_settings(args), classifier=judge)
    attacks = {f"n={n}": dict(n_images=n) for n in args.images} | {"benign n=10": dict(n_images=10, benign=True)}
    adaptive = {f"n={n} at σ_init": dict(n_images=n, at_sampling_level=True) for n in args.images}  # one-step only
    curves, measured_on = {}, {}
    for model, path in MODELS.items():
        for name, attack in (attacks | adaptive if model == "sfd" else attacks).items():
            done = previous.get("curves", {}).get(model, {}).get(name)
            if done is None:
                if model == "esd":
                    ensure_esd(PROJECT / path, args.forget)
                print(f"[relearn] {model} {name}", flush=True)
                done = relearn_curve(str(PROJECT / path), args.forget, **attack, **kw)
                measured_on[model] = dt.date.today().isoformat()
            else:
                measured_on.setdefault(model, previous.get("measured_on", {}).get(model, previous["date"]))
            curves.setdefault(model, {})[name] = done
    teacher_rate = curves["teacher"][f"n={args.images[0]}"]["forget_accuracy"][0]
    for model in curves.values():
        for c in model.values():
            c["steps_to_half_teacher_rate"] = steps_to_reach(c["steps"], c["forget_accuracy"], teacher_rate / 2)
    return {"teacher_rate": teacher_rate, "models": MODELS, "curves": curves, "measured_on": measured_on}


def relearn_markdown(record: dict, plot: str) -> str:
    steps = next(iter(next(iter(record["curves"].values())).values()))["steps"]
    lines = [
        "| model | attack | " + " | ".join(f"{s}" for s in steps) + " | area | steps to 50% of teacher |",
        "|" + "---|" * (len(steps) + 4),
    ]
    for model, curves in record["curves"].items():
        for name, c in curves.items():
            reach = c["steps_to_half_teacher_rate"]
            lines.append(
                f"| {NAMES[model]} | {name} | "
                + " | ".join(f"{v:.1%}" for v in c["forget_accuracy"])
                + f" | {c['area']:.3f} | {'> ' + str(steps[-1]) if reach is None else f'{reach:.0f}'} |"
            )
    return (
        f"## Relearning attack\n\nForget accuracy of `{record['forget']}` (share of its samples the classifier labels "
        f"as it) after the attacker's fine-tuning steps; {record['eval_samples']} samples per budget, seed "
        f"{record['seed']}; attacker seed {record['attack_seed']}, Adam lr {record['learning_rate']}, batch 16. "
        f'n = real images of the forgotten class; benign = 10 images of each remaining class only; "at σ_init": '
        f"the adaptive attacker of a one-step generator (denoising loss at its sampling level only). Teacher's rate: "
        f"{record['teacher_rate']:.1%}.{_measured_on(record)}\n\n"
        + "\n".join(lines)
        + f"\n\n![relearning curves]({plot})\n"
    )


def _measured_on(record: dict) -> str:
    """A note naming each model's measurement date when a record mixes dates (rows carried over with --reuse)."""
    dates = record.get("measured_on", {})
    if len(set(dates.values())) <= 1:
        return ""
    return " Measured on: " + ", ".join(f"{NAMES[m]} {d}" for m, d in dates.items()) + " (earlier rows carried over)."


def train_erasure(name: str, args) -> Path:
    import sfd

    out = RUNS / f"{name}-{args.layers}"
    if not (out / "model_index.json").exists():
        sfd.forget(
            forget=args.layered_forget,
            layers=args.layers if name == "layered" else 1,
            output_dir=str(out),
            max_train_steps=args.layered_steps,
            mixed_precision=args.mixed_precision,
            overwrite_output_dir=True,
            validation_steps=0,
        )
    return out


def layered_part(args, judge) -> dict:
    from sfd.evaluation.evaluate_classes import evaluate_model
    from sfd.evaluation.relearn import relearn_curve
    from sfd.training.layered import split_folds

    classes = args.layered_forget.partition("=")[2].split(",")
    folds = split_folds(classes, args.layers)
    subsets = [s for k in range(1, len(folds)) for s in itertools.combinations(range(len(folds)), k)]
    record = {"folds": folds, "models": {}}
    for name in ("oneshot", "layered"):
        out = train_erasure(name, args)
        seconds = json.loads((out / "training.json").read_text())["train_seconds"]
        if name == "layered":
            seconds += sum(
                json.loads((d / "training.json").read_text())["train_seconds"]
                for d in sorted((out / "stages").iterdir())
            )
        m = evaluate_model(
            str(out), args.layered_forget, classifier=judge, num_samples_per_class=100, seed=args.seed, progress=False
        )
        matrix = []
        for subset in subsets:
            attacked = [c for i in subset for c in folds[i]]
            left_out = [c for i, f in enumerate(folds) if i not in subset for c in f]
            print(f"[layered] {name}: attack {attacked}", flush=True)
            c = relearn_curve(
                str(out),
                args.layered_forget,
                n_images=10,
                attack="class=" + ",".join(attacked),
                classifier=judge,
                **attack_settings(args),
            )
            per = c["per_class_forget_accuracy"]
            left = [sum(per[n][k] for n in left_out) / len(left_out) for k in range(len(c["steps"]))]
            hit = [sum(per[n][k] for n in attacked) / len(attacked) for k in range(len(c["steps"]))]
            matrix.append(
                {
                    "attacked": attacked,
                    "left_out": left_out,
                    "best_left_out": max(left),
                    "left_out_curve": left,
                    "attacked_curve": hit,
                    "steps": c["steps"],
                }
            )
        record["models"][name] = {
            "path": str(out.relative_to(PROJECT)),
            "train_seconds": seconds,
            "metrics": {k: v for k, v in m.items() if k != "features_remaining"},
            "matrix": matrix,
        }
    return record


def _cell(entry: dict) -> str:
    left, hit = entry["left_out_curve"], entry["attacked_curve"]
    return f"{left[0]:.0%} → {max(left):.0%} (attacked: {hit[0]:.0%} → {max(hit):.0%})"


def layered_markdown(record: dict) -> str:
    rows = ["| model | forget acc. | remaining acc. | FID (remaining) | unlearning time |", "|---|---|---|---|---|"]
    for name, r in record["models"].items():
        m = r["metrics"]
        per_class = ", ".join(f"{c} {m['per_class_accuracy'][c]:.0%}" for fold in record["folds"] for c in fold)
        rows.append(
            f"| {NAMES[name]} | {m['forget_accuracy']:.2%} ({per_class}) | {m['remaining_accuracy']:.2%} | "
            f"{m['fid_remaining']:.2f} | {r['train_seconds'] / 60:.1f} min |"
        )
    first = next(iter(record["models"].values()))["matrix"]
    head = "| attacker holds | left out | " + " | ".join(NAMES[n] for n in record["models"]) + " |"
    matrix = [head, "|" + "---|" * (2 + len(record["models"]))]
    for i, cell in enumerate(first):
        matrix.append(
            f"| {', '.join(cell['attacked'])} | {', '.join(cell['left_out'])} | "
            + " | ".join(_cell(r["matrix"][i]) for r in record["models"].values())
            + " |"
        )
    return (
        f"## Layered erasure\n\n`{record['forget']}` erased by SFD in one stage and in {len(record['folds'])} stages "
        f"(folds {record['folds']}), {record['steps']} steps in all each, {record['mixed_precision']} autocast; "
        f"measured on 100 samples per class, seed {record['seed']}.\n\n"
        + "\n".join(rows)
        + "\n\nRelearning one part: the attacker fine-tunes on 10 real images of each class of a proper subset of "
        "the folds (200 steps). Cell: forget accuracy on the folds left out before the attack → the best it reaches "
        "during the attack; in brackets the same for the attacked classes.\n\n" + "\n".join(matrix) + "\n"
    )


def plot_relearn(record: dict, path: Path) -> None:
    from sfd.evaluation.plots import plot_curves

    series = {
        f"{NAMES[m]}, {a}": c
        for m, cs in record["curves"].items()
        for a, c in cs.items()
        if not a.startswith("benign")
    }
    plot_curves(series, path, f"relearning {record['forget']}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=["relearn", "layered", "all"], default="all")
    p.add_argument("--forget", default="class=trouser")
    p.add_argument("--images", type=int, nargs="+", default=[10, 100])
    p.add_argument("--steps", default="0,10,25,50,100,200")
    p.add_argument("--learning_rate", type=float, default=1e-4)
    p.add_argument("--eval_samples", type=int, default=100)
    p.add_argument("--attack_seed", type=int, default=0)
    p.add_argument("--seed", type=int, default=1234, help="evaluation seed")
    p.add_argument("--layered_forget", default="class=trouser,sandal,bag")
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--layered_steps", type=int, default=600, help="SFD budget of each erasure (split over the stages)")
    p.add_argument(
        "--mixed_precision", default="auto", choices=CHOICES, help="auto: bf16 where the device runs it natively"
    )
    p.add_argument(
        "--reuse",
        nargs="?",
        const="today",
        default=None,
        metavar="RECORD_JSON",
        help="keep curves already measured with the same settings: today's record, or the given earlier one",
    )
    p.add_argument(
        "--remeasure",
        nargs="+",
        default=[],
        choices=sorted(MODELS),
        help="with --reuse: measure these models again (e.g. sfd after the shipped model was retrained)",
    )
    args = p.parse_args(argv)
    if args.remeasure and not args.reuse:
        p.error("--remeasure only makes sense with --reuse (without it every model is measured anyway)")
    if args.reuse not in (None, "today") and not Path(args.reuse).exists():
        p.error(f"--reuse: {args.reuse} not found")
    args.mixed_precision = resolve_mixed_precision(args.mixed_precision)  # recorded resolved
    from sfd.evaluation.judges import ImageClassifierJudge

    judge = ImageClassifierJudge.from_pretrained(DEFAULT_CLASSIFIER)
    out = RESULTS
    date = dt.date.today().isoformat()
    common = {
        "date": date,
        "forget": args.forget,
        "seed": args.seed,
        "attack_seed": args.attack_seed,
        "learning_rate": args.learning_rate,
        "eval_samples": args.eval_samples,
    }
    if args.part in ("relearn", "all"):
        stem = out / f"robustness-relearn-{date}"
        previous = {}
        if args.reuse == "today" and stem.with_suffix(".json").exists():
            previous = json.loads(stem.with_suffix(".json").read_text())
        elif args.reuse not in (None, "today"):
            previous = json.loads(Path(args.reuse).read_text())
        if any(previous.get(k) != v for k, v in common.items() if k != "date"):
            previous = {}  # measured with other settings: nothing to keep
        for model in args.remeasure:
            previous.get("curves", {}).pop(model, None)
        record = {**common, **relearn_part(args, judge, previous)}
        plot_relearn(record, stem.with_suffix(".png"))
        write_result(stem, record, relearn_markdown(record, stem.with_suffix(".png").name))
        print(stem.with_suffix(".md").read_text())
    if args.part in ("layered", "all"):
        record = {
            **common,
            "forget": args.layered_forget,
            "steps": args.layered_steps,
            "mixed_precision": args.mixed_precision,
            **layered_part(args, judge),
        }
        stem = out / f"robustness-layered-{date}"
        write_result(stem, record, layered_markdown(record))
        print(stem.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
