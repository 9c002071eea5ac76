"""SFD against the methods a user would pick instead: same teacher, forget class, seeds and evaluator.

    python -m bench.run            # full: ~1.5 h on a 2-core CPU (the gold retrain is most of it)
    python -m bench.run --quick    # smoke version, a few minutes: short runs, few samples

Methods (all from the shipped Fashion-MNIST teacher, forgetting the same class):
  teacher       no forgetting, its default multi-step sampler (the fidelity baseline)
  sfd           this project, `sfd.forget` with the default config, one step
  sfd-2stage    plain SiD distillation on all classes, then SFD from it (half the steps each: same budget)
  esd           ESD-style data-free fine-tuning of the multi-step teacher (`sfd.baselines.esd`)
  gold          a teacher retrained from scratch without the class (same recipe and step budget)
Every training runs in its own process, timed, with its peak RSS read from the kernel (wait4);
every model is then measured in this process by sfd-eval's `evaluate_model` (same seed and batch).
Writes bench/results/<date>[-quick].{json,md} and the SFD forget-rate plot.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.common import BENCH, PROJECT, RESULTS, write_result
from sfd.core.paths import DEFAULT_CLASSIFIER, DEFAULT_TEACHER
from sfd.core.precision import describe_machine
from sfd.evaluation.evaluate_classes import evaluate_model, gold_samples
from sfd.evaluation.gold import GoldSamples
from sfd.evaluation.judges import ImageClassifierJudge
from sfd.evaluation.plots import forget_rate_curve
from sfd.training.config import load_config

DEFAULT_STEPS = load_config().max_train_steps  # the full plan measures the default command's budget
PLANS = {  # method: (full, quick) settings
    "sfd": ({"steps": DEFAULT_STEPS}, {"steps": 30}),
    "sfd-2stage": ({"steps": DEFAULT_STEPS // 2}, {"steps": 16}),  # per stage
    "esd": ({"steps": 300, "pool_size": 256}, {"steps": 20, "pool_size": 32}),
    "gold": ({"steps": 7000}, {"steps": 40}),
}


def run_measured(cmd: list[str], log: Path) -> dict:
    """Run `cmd` as a child process; its wall time and peak resident memory (from wait4's rusage)."""
    start = time.time()
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=PROJECT)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.time() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed; see {log}")
    return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024}


def train_commands(method: str, plan: dict, runs: Path, forget: str, quick: bool) -> list[list[str]]:
    py = sys.executable
    common = ["--validation_steps", str(max(plan["steps"] // (2 if quick else 6), 1)), "--overwrite_output_dir"]
    if quick:  # a smoke run: few validations, on few samples (the bound for --quick is 10 minutes on 2 cores)
        common += [
            "--train_batch_size",
            "8",
            "--validation_samples_per_class",
            "10",
            "--final_eval_samples_per_class",
            "20",
        ]
    if method == "sfd":
        return [
            [
                py,
                "sfd/train.py",
                "--forget",
                forget,
                "--output_dir",
                str(runs / "sfd"),
                "--max_train_steps",
                str(plan["steps"]),
                *common,
            ]
        ]
    if method == "sfd-2stage":
        stage1 = (
            f"import sfd; sfd.distill(output_dir={str(runs / 'sid-stage1')!r}, max_train_steps={plan['steps']}, "
            f"validation_steps=0, overwrite_output_dir=True" + (", train_batch_size=8)" if quick else ")")
        )
        return [
            [py, "-c", stage1],
            [
                py,
                "sfd/train.py",
                "--forget",
                forget,
                "--output_dir",
                str(runs / "sfd-2stage"),
                "--max_train_steps",
                str(plan["steps"]),
                "--init_generator",
                str(runs / "sid-stage1"),
                *common,
            ],
        ]
    if method == "esd":
        return [
            [
                py,
                "-c",
                f"from sfd.baselines.esd import esd_finetune; esd_finetune('assets/teacher', {forget!r}, "
                f"steps={plan['steps']}, pool_size={plan['pool_size']}, output_dir={str(runs / 'esd')!r}, progress=False)",
            ]
        ]
    if method == "gold":
        return [
            [
                py,
                "-m",
                "sfd.pretrain.teacher",
                "--exclude_class",
                forget.split("=", 1)[1],
                "--output_dir",
                str(runs / "gold"),
                "--work_dir",
                str(runs / "gold-state"),
                "--max_steps",
                str(plan["steps"]),
            ]
        ]
    raise ValueError(method)


def train(method: str, runs: Path, args, quick: bool) -> dict:
    """Train `method` in timed child processes (or reuse its record); its wall time and peak RSS."""
    if method == "teacher":
        return {"seconds": 0.0, "peak_rss_mb": None}
    plan = PLANS[method][quick]
    record = runs / f"{method}.training.json"
    if method in args.reuse and record.exists():
        return {**json.loads(record.read_text()), "reused": True}
    parts = [
        run_measured(cmd, runs / f"{method}.{i}.log")
        for i, cmd in enumerate(train_commands(method, plan, runs, args.forget, quick))
    ]
    training = {
        "seconds": sum(p["seconds"] for p in parts),
        "peak_rss_mb": max(p["peak_rss_mb"] for p in parts),
        **plan,
    }
    record.write_text(json.dumps(training, indent=1))
    return training


def _key(cached: dict) -> dict:
    """What a cached measurement was made with (older caches lack the gold key)."""
    return {"settings": cached["settings"], "gold": cached.get("gold")}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--forget", default="class=trouser")
    p.add_argument("--seed", type=int, default=1234, help="evaluation seed (never used in training or tuning)")
    p.add_argument("--methods", nargs="+", default=["teacher", "sfd", "sfd-2stage", "esd", "gold"])
    p.add_argument(
        "--reuse",
        nargs="*",
        default=[],
        help="methods whose finished run under --runs is not trained "
        "again (their training time and peak RSS are those recorded when they were trained, and their "
        "measurement is reused when it was made with the same seed and sample counts)",
    )
    p.add_argument("--runs", default=None, help="where trained models go (default: bench/runs[-quick])")
    p.add_argument("--results", default=str(RESULTS), help="where the tables go")
    args = p.parse_args(argv)

    quick = args.quick
    runs = Path(args.runs or BENCH / ("runs-quick" if quick else "runs"))
    runs.mkdir(parents=True, exist_ok=True)
    n_per_class, n_forget = (10, 30) if quick else (100, 1000)
    n_forget_multistep = n_forget if quick else 200  # multi-step models sample ~50x slower
    judge = ImageClassifierJudge.from_pretrained(DEFAULT_CLASSIFIER)
    model_dirs = {
        "teacher": DEFAULT_TEACHER,
        "sfd": runs / "sfd",
        "sfd-2stage": runs / "sfd-2stage",
        "esd": runs / "esd",
        "gold": runs / "gold",
    }
    trainings = {method: train(method, runs, args, quick) for method in args.methods}
    gold = None
    if "gold" in args.methods:  # every method is also measured against the gold model's samples (sfd.evaluation.gold)
        cached = runs / f"gold.samples-seed{args.seed}-n{n_per_class}.safetensors"
        if "gold" in args.reuse and cached.exists():
            gold = GoldSamples.load(cached)
        else:
            print("[gold] sampling the gold reference", flush=True)
            gold = gold_samples(
                str(model_dirs["gold"]),
                args.forget,
                args.seed,
                classifier=judge,
                num_samples_per_class=n_per_class,
                num_forget_samples=n_forget_multistep,
                progress=False,
            )
            gold.save(cached)
    results = {}
    for method in args.methods:
        one_step = method.startswith("sfd")
        settings = {
            "forget": args.forget,
            "seed": args.seed,
            "num_samples_per_class": n_per_class,
            "num_forget_samples": n_forget if one_step else n_forget_multistep,
        }
        cached = runs / f"{method}.metrics.json"
        wanted = {"settings": settings, "gold": gold.seed if gold else None}
        if method in args.reuse and cached.exists() and _key(json.loads(cached.read_text())) == wanted:
            m = json.loads(cached.read_text())["metrics"]
        else:
            print(f"[{method}] trained in {trainings[method]['seconds'] / 60:.1f} min; measuring", flush=True)
            m = evaluate_model(str(model_dirs[method]), classifier=judge, progress=False, gold=gold, **settings)
            cached.write_text(json.dumps({**wanted, "metrics": m}, indent=1))
        results[method] = {"training": trainings[method], "metrics": m}
    ratios = {}
    for method in ("sfd", "sfd-2stage"):
        name = method.replace("-", "_")
        if method in results and "teacher" in results:
            s, t = results[method]["metrics"], results["teacher"]["metrics"]
            ratios[f"fid_remaining_{name}_over_teacher"] = s["fid_remaining"] / t["fid_remaining"]
            ratios[f"throughput_{name}_over_teacher"] = s["images_per_second"] / t["images_per_second"]
        if method in results and "gold" in results:
            ratios[f"unlearning_time_{name}_over_gold_retrain"] = (
                results[method]["training"]["seconds"] / results["gold"]["training"]["seconds"]
            )
    date = dt.date.today().isoformat()
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    stem = date + ("-quick" if quick else "")
    record = {
        "date": date,
        "quick": quick,
        "forget": args.forget,
        "seed": args.seed,
        "samples_per_class": n_per_class,
        "forget_samples": n_forget,
        "forget_samples_multistep": n_forget_multistep,
        "machine": describe_machine(),
        "results": results,
        "ratios": ratios,
    }
    plot = forget_rate_curve(runs / "sfd" / "logs" / "metrics.jsonl", out / f"{stem}-sfd-forget-rate.png")
    print(write_result(out / stem, record, table(record, plot)).read_text())


def _with_ci(value: float, ci) -> str:
    return f"{value:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]"


def table(record: dict, plot: Path | None) -> str:
    names = {
        "teacher": "Teacher (DPM-Solver++, CFG)",
        "sfd": "SFD (one step)",
        "sfd-2stage": "SFD two-stage (one step)",
        "esd": "ESD-style fine-tune (multi-step)",
        "gold": "Gold retrain without the class (multi-step)",
    }
    head = (
        "| method | forget acc. | UA | remaining acc. | FID (remaining) [interval] | FID to gold [interval] | "
        "acc. gap to gold (pts, mean / max) | unlearning time | peak RSS | images/s | NFE |"
    )
    lines = [head, "|" + "---|" * 11]
    for method, r in record["results"].items():
        m, t = r["metrics"], r["training"]
        rss = "–" if t["peak_rss_mb"] is None else f"{t['peak_rss_mb']:.0f} MB"
        minutes = f"{t['seconds'] / 60:.1f} min" + (" (reused)" if t.get("reused") else "")
        to_gold = "–" if m.get("fid_to_gold") is None else _with_ci(m["fid_to_gold"], m["fid_to_gold_ci"])
        gap = (
            "–"
            if m.get("fid_to_gold") is None
            else (f"{m['accuracy_gap_to_gold_mean_pts']:.1f} / {m['accuracy_gap_to_gold_max_pts']:.1f}")
        )
        lines.append(
            f"| {names[method]} | {m['forget_accuracy']:.2%} | {m['unlearning_accuracy']:.2%} | "
            f"{m['remaining_accuracy']:.2%} | {_with_ci(m['fid_remaining'], m['fid_remaining_ci'])} | {to_gold} | {gap} | "
            f"{minutes} | {rss} | {m['images_per_second']:.1f} | {m['nfe_per_image']} |"
        )
    ratios = "\n".join(f"- {k.replace('_', ' ')}: **{v:.3g}**" for k, v in record["ratios"].items())
    floors = {r["metrics"].get("forget_accuracy_floor") for r in record["results"].values()} - {None}
    floor = (
        (
            f"\nForget-accuracy floor of the judge: {floors.pop():.2%} of real test images of the override classes are "
            "classified as the forgotten class (what a perfect eraser would score).\n"
        )
        if len(floors) == 1
        else ""
    )
    return (
        f"# Benchmark {record['date']}{' (quick)' if record['quick'] else ''}: forget `{record['forget']}`\n\n"
        f"`python -m bench.run{' --quick' if record['quick'] else ''}` on {record['machine']}. Evaluation seed "
        f"{record['seed']}; {record['samples_per_class']} samples per remaining class, {record['forget_samples']} of the "
        f"forgotten class ({record['forget_samples_multistep']} for the multi-step models); judged by `assets/classifier`; FID in its feature space against the real test images "
        f"of the remaining classes. FID to gold: between the method's and the gold model's remaining-class samples (gold "
        f"drawn with seed {record['seed'] + 1}, so the gold row is the sampling noise floor); accuracy gap: "
        f"|accuracy − gold's| per class, all classes. Unlearning time and peak RSS are those of the training process(es).\n\n"
        + "\n".join(lines)
        + f"\n{floor}\nRatios (same run, same machine):\n{ratios}\n"
        + (f"\n![SFD forget rate during training]({plot.name})\n" if plot else "")
    )


if __name__ == "__main__":
    main()
