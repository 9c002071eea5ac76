"""Measure the default SFD run against its teacher with sfd-eval's code, and write JSON + a markdown table.

    python -m bench.default_run --model outputs/forget-trouser --forget "class=trouser"

Both models are sampled in this one process, with the same seeds and batch size, so timings are
comparable as ratios. Results go to bench/results/default-<forget>[-<tag>]-<date>.{json,md}.
`--reuse_teacher EARLIER.json` takes the teacher's figures from an earlier result with the same seed and sample
counts (the teacher's samples are the same; its timing is not, so no throughput ratio is given then).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

from bench.common import RESULTS, write_result
from sfd.core.paths import DEFAULT_CLASSIFIER, DEFAULT_TEACHER
from sfd.core.precision import describe_machine
from sfd.evaluation.evaluate_classes import evaluate_model
from sfd.evaluation.judges import ImageClassifierJudge


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--teacher", default=str(DEFAULT_TEACHER))
    p.add_argument("--forget", default="class=trouser")
    p.add_argument("--samples_per_class", type=int, default=200, help="remaining classes, both models")
    p.add_argument("--forget_samples", type=int, default=1000, help="forgotten class, SFD model")
    p.add_argument("--teacher_forget_samples", type=int, default=200)
    p.add_argument("--batch_size", type=int, default=100)
    p.add_argument("--seed", type=int, default=1234, help="evaluation seed (never used in training)")
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--tag", default="", help="added to the result's file name (e.g. the override compared)")
    p.add_argument("--reuse_teacher", help="an earlier result JSON of this script whose teacher figures to keep")
    args = p.parse_args(argv)
    earlier = reused_teacher(args) if args.reuse_teacher else None

    judge = ImageClassifierJudge.from_pretrained(DEFAULT_CLASSIFIER)
    common = dict(
        forget=args.forget,
        classifier=judge,
        batch_size=args.batch_size,
        seed=args.seed,
        num_samples_per_class=args.samples_per_class,
    )
    sfd = evaluate_model(args.model, num_forget_samples=args.forget_samples, **common)
    teacher = earlier or evaluate_model(args.teacher, num_forget_samples=args.teacher_forget_samples, **common)
    card = (
        json.loads((Path(args.model) / "training.json").read_text())
        if (Path(args.model) / "training.json").exists()
        else {}
    )
    result = {
        "date": dt.date.today().isoformat(),
        "machine": describe_machine(),
        "forget": args.forget,
        "seed": args.seed,
        "sfd": sfd,
        "teacher": teacher,
        "training": card,
        "teacher_from": args.reuse_teacher,
        "ratios": {
            "fid_remaining_sfd_over_teacher": sfd["fid_remaining"] / teacher["fid_remaining"],
            "remaining_accuracy_sfd_minus_teacher_pts": 100
            * (sfd["remaining_accuracy"] - teacher["remaining_accuracy"]),
            "throughput_sfd_over_teacher": None
            if earlier
            else sfd["images_per_second"] / teacher["images_per_second"],
        },
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = (
        f"default-{args.forget.split('=')[-1].replace(',', '_')}{'-' + args.tag if args.tag else ''}-{result['date']}"
    )
    write_result(out / f"{stem}", result, table(result, args))
    print(table(result, args))


def reused_teacher(args) -> dict:
    """The teacher's figures of an earlier result, refused unless it was measured with this run's settings."""
    path = Path(args.reuse_teacher)
    if not path.exists():
        raise SystemExit(f"--reuse_teacher: {path} not found")
    earlier = json.loads(path.read_text())
    t = earlier["teacher"]
    wanted = dict(
        forget=args.forget,
        seed=args.seed,
        batch_size=args.batch_size,
        num_samples_per_class=args.samples_per_class,
        num_forget_samples=args.teacher_forget_samples,
        model=args.teacher,
    )
    found = dict(
        forget=earlier["forget"],
        seed=t["seed"],
        batch_size=t["batch_size"],
        model=t["model"],
        num_samples_per_class=t["num_samples_per_class"],
        num_forget_samples=t["num_forget_samples"],
    )
    if found != wanted:
        raise SystemExit(f"--reuse_teacher: {path} was measured with {found}, this run asks for {wanted}")
    return t


def table(r: dict, args) -> str:
    s, t, q = r["sfd"], r["teacher"], r["ratios"]
    ci = lambda m, k: f"{m[k]:.4f} [{m[k + '_ci'][0]:.4f}, {m[k + '_ci'][1]:.4f}]"  # noqa: E731
    rows = [
        (
            "forget accuracy",
            f"{ci(s, 'forget_accuracy')} (n={s['num_forget_samples']})",
            f"{ci(t, 'forget_accuracy')} (n={t['num_forget_samples']})",
        ),
        (
            "remaining-class accuracy",
            f"{ci(s, 'remaining_accuracy')} (n={s['remaining_samples']})",
            f"{ci(t, 'remaining_accuracy')} (n={t['remaining_samples']})",
        ),
        (
            "FID, remaining classes",
            f"{s['fid_remaining']:.3f} [{s['fid_remaining_ci'][0]:.3f}, {s['fid_remaining_ci'][1]:.3f}]",
            f"{t['fid_remaining']:.3f} [{t['fid_remaining_ci'][0]:.3f}, {t['fid_remaining_ci'][1]:.3f}]",
        ),
        (
            "precision / recall, remaining classes",
            f"{s['precision_remaining']:.3f} / {s['recall_remaining']:.3f}",
            f"{t['precision_remaining']:.3f} / {t['recall_remaining']:.3f}",
        ),
        ("NFE per image", str(s["nfe_per_image"]), str(t["nfe_per_image"])),
        ("images/s (batch %d)" % args.batch_size, f"{s['images_per_second']:.1f}", f"{t['images_per_second']:.2f}"),
    ]
    override = r["training"].get("override", "?") + (
        " (auto)" if r["training"].get("override_chosen_by") == "auto" else ""
    )
    reused = r.get("teacher_from")
    teacher_note = f" Teacher figures taken from `{Path(reused).name}` (same seed and counts)." if reused else ""
    lines = [
        f"Forget `{r['forget']}` → override {override}: `{r['sfd']['model']}`, evaluation seed {r['seed']}, {r['date']}, "
        f"{r['machine']}.{teacher_note}",
        "",
        "| figure | SFD one-step | teacher multi-step |",
        "|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    lines += [
        "",
        f"- FID ratio SFD / teacher: {q['fid_remaining_sfd_over_teacher']:.3f}",
        f"- remaining accuracy, SFD − teacher: {q['remaining_accuracy_sfd_minus_teacher_pts']:+.2f} pts",
        "- sampling throughput, SFD / teacher: "
        + (
            "not measured (teacher figures reused)"
            if q["throughput_sfd_over_teacher"] is None
            else f"{q['throughput_sfd_over_teacher']:.1f}×"
        ),
    ]
    if r["training"]:
        lines.append(
            f"- SFD training wall time: {r['training']['train_seconds'] / 60:.1f} min ({r['training']['steps']} steps)"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
