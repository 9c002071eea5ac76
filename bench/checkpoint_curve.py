"""Forget accuracy, remaining accuracy and FID of the EMA generator at every checkpoint of an SFD run.

    python -m bench.checkpoint_curve --run outputs/forget-trouser-3x --template outputs/forget-trouser

`--template` is any exported one-step model of the same teacher (its UNet and scheduler configs are
reused); each checkpoint's EMA weights (ema.safetensors, in parameter order) replace its UNet weights,
and the run's own sigma_init (checkpoints/run.json) replaces the template's.
Writes bench/results/curve-<run name>.{json,md}; run it again while training goes on to add the
checkpoints written since (older ones are pruned by `checkpoints_total_limit`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.common import RESULTS, write_result
from sfd.core.paths import DEFAULT_CLASSIFIER
from sfd.evaluation.evaluate_classes import evaluate_model
from sfd.evaluation.judges import ImageClassifierJudge
from sfd.pipelines import OneStepClassConditionalPipeline
from sfd.training.trainer import copy_checkpoint_ema


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True)
    p.add_argument("--template", required=True)
    p.add_argument("--forget", default="class=trouser")
    p.add_argument("--samples_per_class", type=int, default=100)
    p.add_argument("--forget_samples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1234)
    args = p.parse_args(argv)
    judge = ImageClassifierJudge.from_pretrained(DEFAULT_CLASSIFIER)
    out = RESULTS
    name = Path(args.run).name
    previous = out / f"curve-{name}.json"  # checkpoints are pruned during a run: keep rows measured earlier
    rows = json.loads(previous.read_text())["rows"] if previous.exists() else []
    done = {r["step"] for r in rows}
    run_config = json.loads(Path(args.run, "checkpoints", "run.json").read_text()).get("config", {})
    ckpts = sorted(Path(args.run, "checkpoints").glob("checkpoint-*"), key=lambda c: int(c.name.split("-")[-1]))
    for ckpt in (c for c in ckpts if int(c.name.split("-")[-1]) not in done):
        pipe = OneStepClassConditionalPipeline.from_pretrained(args.template)
        if "sigma_init" in run_config:
            pipe.register_to_config(sigma_init=float(run_config["sigma_init"]))
        copy_checkpoint_ema(ckpt, pipe.unet.parameters())
        m = evaluate_model(
            pipe,
            forget=args.forget,
            classifier=judge,
            num_samples_per_class=args.samples_per_class,
            num_forget_samples=args.forget_samples,
            seed=args.seed,
            progress=False,
        )
        rows.append(
            {
                "step": int(ckpt.name.split("-")[-1]),
                **{
                    k: m[k]
                    for k in (
                        "forget_accuracy",
                        "remaining_accuracy",
                        "fid_remaining",
                        "precision_remaining",
                        "recall_remaining",
                    )
                },
            }
        )
        print(rows[-1], flush=True)
    rows.sort(key=lambda r: r["step"])
    md = [
        f"`{args.run}`: EMA generator at each checkpoint; {args.samples_per_class} samples per remaining class, "
        f"{args.forget_samples} of the forgotten class, seed {args.seed}.",
        "",
        "| step | forget accuracy | remaining accuracy | FID (remaining) | precision | recall |",
        "|---|---|---|---|---|---|",
    ]
    md += [
        f"| {r['step']} | {r['forget_accuracy']:.4f} | {r['remaining_accuracy']:.4f} | {r['fid_remaining']:.3f} | "
        f"{r['precision_remaining']:.3f} | {r['recall_remaining']:.3f} |"
        for r in rows
    ]
    write_result(
        out / f"curve-{name}",
        {
            "run": args.run,
            "seed": args.seed,
            "rows": rows,
            "samples_per_class": args.samples_per_class,
            "forget_samples": args.forget_samples,
        },
        "\n".join(md) + "\n",
    )


if __name__ == "__main__":
    main()
