"""The GPU figures: the class default at a long budget and the text-to-image config, trained and measured on one
CUDA GPU in about 10 minutes.

    python -m bench.gpu_check                       # both; --only class | t2i
    python -m bench.gpu_check --class_steps 4000 --class_batch 256

Trains `sfd/train.py --forget "class=trouser"` (the class defaults, longer and with a larger batch) and
`configs/t2i-sneaker.yaml` (same changes), then measures each against its teacher with the project's judges: forget
accuracy, remaining accuracy, FID ratio, recall, diversity ratio, the largest per-class drop by each judge (class);
CLIP forget detection, CLIP score ratio, diversity ratio, recall ratio (text). Writes
bench/results/gpu-check.{json,md}. On a machine without CUDA it stops at once: the CPU figures are the other
benchmarks' business.
"""

from __future__ import annotations

import argparse
import time

import torch

from bench.common import PROJECT, RESULTS, RUNS, write_result

SEED = 1234  # the evaluation seed


def require_cuda() -> None:
    if not torch.cuda.is_available():
        raise SystemExit(
            "bench.gpu_check measures the GPU figures and needs a CUDA GPU (torch.cuda.is_available() is False "
            "here); on a CPU use `python -m bench.run` and `python -m bench.t2i_fidelity`"
        )


def timed_run(name: str, steps: int, batch: int, **options) -> tuple:
    """One SFD run at a long budget under bench/runs/gpu-check/NAME, validated and checkpointed four times; its folder
    and its wall time in seconds."""
    import sfd

    out = RUNS / "gpu-check" / name
    started = time.time()
    sfd.forget(
        output_dir=str(out),
        overwrite_output_dir=True,
        max_train_steps=steps,
        train_batch_size=batch,
        validation_steps=steps // 4,
        checkpointing_steps=steps // 4,
        seed=SEED,
        **options,
    )
    return out, time.time() - started


def class_check(args) -> dict:
    from sfd.core.metrics import diversity_ratios
    from sfd.core.paths import DEFAULT_TEACHER, SECOND_CLASSIFIER
    from sfd.evaluation.evaluate_classes import evaluate_model
    from sfd.evaluation.report import per_class_damage

    out, train_seconds = timed_run("class-trouser", args.class_steps, args.class_batch, forget="class=trouser")
    second = SECOND_CLASSIFIER if SECOND_CLASSIFIER.is_dir() else None
    kw = dict(forget="class=trouser", num_samples_per_class=args.samples, seed=SEED, second_classifier=second)
    model, teacher = evaluate_model(out, **kw), evaluate_model(DEFAULT_TEACHER, **kw)
    row = {k: model.get(k) for k in ("forget_accuracy", "remaining_accuracy", "fid_remaining", "recall_remaining")}
    row.update(
        teacher_remaining_accuracy=teacher["remaining_accuracy"],
        fid_ratio=model["fid_remaining"] / teacher["fid_remaining"],
        recall_ratio=model["recall_remaining"] / teacher["recall_remaining"],
        train_minutes=train_seconds / 60,
        steps=args.class_steps,
        batch=args.class_batch,
    )
    row.update(diversity_ratios(model["per_class_diversity"], teacher["per_class_diversity"]))
    row.update(per_class_damage(model, teacher))
    return row


def text_check(args) -> dict:
    from sfd.core.metrics import diversity_ratios
    from sfd.core.paths import DEFAULT_CLASSIFIER
    from sfd.evaluation.evaluate_text import evaluate_text_model

    config = PROJECT / "configs" / "t2i-sneaker.yaml"
    out, train_seconds = timed_run("t2i-sneaker", args.t2i_steps, args.t2i_batch, config=config)
    kw = dict(
        forget="concept=sneaker",
        override="sandal",
        classifier=str(DEFAULT_CLASSIFIER),
        num_samples_per_prompt=args.samples,
        seed=SEED,
        progress=False,
    )
    model, teacher = evaluate_text_model(out, **kw), evaluate_text_model(PROJECT / "assets" / "t2i-teacher", **kw)
    row = {k: model.get(k) for k in ("clip_forget_detection", "clip_score_remaining", "recall_remaining")}
    row.update(
        clip_score_ratio=model["clip_score_remaining"] / teacher["clip_score_remaining"],
        recall_ratio=model["recall_remaining"] / teacher["recall_remaining"],
        train_minutes=train_seconds / 60,
        steps=args.t2i_steps,
        batch=args.t2i_batch,
    )
    row.update(diversity_ratios(model["per_prompt_diversity"], teacher["per_prompt_diversity"]))
    row.pop("diversity_ratio", None)
    return row


def markdown(record: dict) -> str:
    lines = [f"GPU check on {record['device']}, seed {SEED}, {record['samples']} samples per class / prompt.", ""]
    for name, row in record["checks"].items():
        lines += [f"## {name}", "", "| figure | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in row.items()]
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=["class", "t2i"], default=None)
    p.add_argument("--class_steps", type=int, default=3000)
    p.add_argument("--class_batch", type=int, default=128)
    p.add_argument("--t2i_steps", type=int, default=2000)
    p.add_argument("--t2i_batch", type=int, default=64)
    p.add_argument("--samples", type=int, default=200, help="samples per class / prompt of each measurement")
    args = p.parse_args(argv)
    require_cuda()
    checks = {"class": class_check, "t2i": text_check}
    record = {"device": torch.cuda.get_device_name(0), "samples": args.samples, "checks": {}}
    for name, check in checks.items():
        if args.only in (None, name):
            record["checks"][name] = check(args)
            print(name, record["checks"][name], flush=True)
    print(write_result(RESULTS / "gpu-check", record, markdown(record)))


if __name__ == "__main__":
    main()
