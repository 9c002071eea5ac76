"""The default command on other classes than trouser, and other overrides: does forgetting hold?

    python -m bench.other_classes [--cases shirt:auto shirt shirt:bag shirt+negative pullover pullover:trouser …]

A case is `CLASS:auto` (the default command: the teacher chooses the override), `CLASS:far` (a random override among
the teacher's farther half of the remaining classes), `CLASS` (`--override random`),
`CLASS:OVERRIDE` (a fixed override) or `CLASS+negative` (random override with
`--negative_forget_class`). Each case trains with `sfd/train.py`
under bench/runs/other-<case>/ (skipped when that folder already holds a finished model) and is measured
with sfd-eval's code at the evaluation seed: 1,000 samples of the forgotten class, 100 per remaining class.
The forget-accuracy floor is what a perfect eraser would score with this judge (README, "Other classes").
Writes bench/results/other-classes.{json,md}, keeping the rows of earlier cases not measured in this call.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from bench.common import PROJECT, RESULTS, RUNS, write_result
from sfd.core.paths import DEFAULT_CLASSIFIER
from sfd.core.spec import CHOOSERS
from sfd.evaluation.evaluate_classes import evaluate_model
from sfd.evaluation.judges import ImageClassifierJudge

DEFAULT_CASES = [
    "trouser",
    "sneaker",
    "bag",
    "shirt",
    "shirt+negative",
    "shirt:bag",
    "pullover",
    "pullover:trouser",
    "dress",
    "dress:sandal",
    "shirt:auto",
    "trouser:auto",
    "bag:auto",
    "coat:auto",
    "pullover:auto",
]


def parse_case(case: str) -> tuple[str, str, bool]:
    """(forgotten class, override: "random", "auto", "far" or a class name, negative_forget_class)."""
    negative = case.endswith("+negative")
    name, _, override = case.removesuffix("+negative").partition(":")
    return name, override or "random", negative


def train(case: str, runs: Path) -> Path:
    name, override, negative = parse_case(case)
    out = runs / f"other-{case.replace(':', '-to-').replace('+', '-').replace('/', '_')}"
    if not (out / "model_index.json").exists():
        cmd = [
            sys.executable,
            "sfd/train.py",
            "--forget",
            f"class={name}",
            "--output_dir",
            str(out),
            "--overwrite_output_dir",
            "--override",
            override if override in CHOOSERS + ("random",) else f"class={override}",
        ] + (["--negative_forget_class"] if negative else [])
        subprocess.run(cmd, check=True, cwd=PROJECT)
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", nargs="+", default=DEFAULT_CASES)
    p.add_argument("--seed", type=int, default=1234, help="evaluation seed (never used in training)")
    p.add_argument("--runs", default=str(RUNS))
    args = p.parse_args(argv)
    judge = ImageClassifierJudge.from_pretrained(DEFAULT_CLASSIFIER)
    out = RESULTS / "other-classes"
    kept = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").exists() else {}
    rows = [r for r in kept.get("rows", []) if kept.get("seed") == args.seed and r["case"] not in args.cases]
    for case in args.cases:
        model = train(case, Path(args.runs))
        name, override, negative = parse_case(case)
        training = json.loads((model / "training.json").read_text())
        chosen = None if override == "random" else training["override"]  # `auto`: the class the run chose
        if training.get("override_pool"):  # `far` (or a named pool): the classes drawn from
            chosen = "random among " + ", ".join(training["override_pool"])
        # the floor's override is the one the run recorded in training.json (evaluate_model reads it)
        m = evaluate_model(
            model,
            forget=f"class={name}",
            classifier=judge,
            num_samples_per_class=100,
            num_forget_samples=1000,
            seed=args.seed,
            progress=False,
        )
        rows.append(
            {
                "case": case,
                "forget": name,
                "override": f"{override} → {chosen}" if override in CHOOSERS else chosen or "random",
                "negative_forget_class": negative,
                "steps": training["steps"],
                "mixed_precision": training.get("mixed_precision", "bf16"),
                **{
                    k: m[k]
                    for k in (
                        "forget_accuracy",
                        "forget_accuracy_ci",
                        "forget_accuracy_floor",
                        "remaining_accuracy",
                        "fid_remaining",
                        "recall_remaining",
                    )
                },
            }
        )
        print(rows[-1])
    lines = [
        f"| {r['forget']} | {r['override']}{' + negative guidance' if r['negative_forget_class'] else ''} | "
        f"**{r['forget_accuracy']:.1%}** [{r['forget_accuracy_ci'][0]:.1%}, {r['forget_accuracy_ci'][1]:.1%}] | "
        f"{r['forget_accuracy_floor']:.2%} | {r['remaining_accuracy']:.1%} | {r['fid_remaining']:.2f} | "
        f"{r['recall_remaining']:.2f} | {r.get('mixed_precision', 'bf16')} |"
        for r in rows
    ]
    write_result(
        out,
        {"seed": args.seed, "rows": rows},
        "# Forgetting other classes\n\n"
        f"`python -m bench.other_classes`: `sfd/train.py --forget class=NAME` with the defaults ({rows[0]['steps']} "
        f"iterations), the override as listed (`auto` is the default; "
        "`far` draws it per sample among the farther half of `auto`'s ranking, the classes listed); "
        f"evaluation seed {args.seed}, 1,000 samples of the forgotten class and "
        "100 per remaining class, judged by `assets/classifier`. Floor: the forget accuracy a perfect eraser would "
        "score, i.e. the share of real test images of the override class(es) the classifier calls by the forgotten "
        "name. FID and recall are against the real test images of that run's remaining classes (so they compare "
        "within a class, not across classes). Autocast: the run's `mixed_precision` (the rows measured before "
        "`auto` became the default ran bf16 on an AVX-512 machine; `no` is fp32, what `auto` picks on an AVX2 CPU).\n\n"
        "| forgotten | override | forget accuracy [95%] | floor | remaining acc. | FID (remaining) | recall | autocast |\n"
        "|---|---|---|---|---|---|---|---|\n" + "\n".join(lines) + "\n",
    )


if __name__ == "__main__":
    main()
