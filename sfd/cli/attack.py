"""sfd-attack: try to bring an erased class back.

    sfd-attack relearn --model OUT_DIR --forget "class=trouser" --images 10 --report REPORT_DIR
    sfd-attack relearn --model OUT_DIR --forget "class=trouser" --benign      # resurgence test

    sfd-attack invert --model OUT_DIR --forget "class=trouser" --images 1 10 100   # concept inversion
    sfd-attack invert --model T2I_DIR --forget "concept=sneaker" --images 10        # … with a new token

`relearn` fine-tunes a copy of the model on a few real images of the forgotten class (or of the remaining
classes only, `--benign`) with the standard denoising loss and reports the forget accuracy after each
budget of steps, its area and the steps needed to pass 50% (see `sfd.evaluation.relearn`). `invert` keeps every
weight frozen and learns a new embedding for the forgotten class from the images, or a new token for a text-to-image
model's forgotten concept (see `sfd.evaluation.inversion`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..core.spec import SpecError
from ..evaluation.inversion import DEFAULT_INVERSION_STEPS, INITS, inversion_curve
from ..evaluation.plots import plot_curves
from ..evaluation.relearn import DEFAULT_CHECKPOINTS, relearn_curve


def _common_arguments(r, default_steps, default_lr: float) -> None:
    """What both attacks take: the model, the class, the attacker's images and budgets, the judge, the report."""
    r.add_argument("--model", required=True, help="pipeline folder (multi-step or one-step)")
    r.add_argument(
        "--forget",
        required=True,
        help='the erased class(es), e.g. "class=trouser" (invert, text models: "concept=NAME")',
    )
    r.add_argument(
        "--images", type=int, nargs="+", default=[10], help="real images per attacked class (one curve each)"
    )
    r.add_argument("--steps", default=",".join(map(str, default_steps)), help="budgets at which to measure")
    r.add_argument("--learning_rate", type=float, default=default_lr)
    r.add_argument("--batch_size", type=int, default=16)
    r.add_argument("--eval_samples", type=int, default=100, help="samples per forgotten class at each budget")
    r.add_argument(
        "--num_inference_steps",
        type=int,
        default=None,
        help="multi-step models: sampler steps (default: the pipeline's own)",
    )
    r.add_argument("--classifier", default=None, help="judge (default: assets/classifier)")
    r.add_argument(
        "--dataset",
        default=None,
        help="the attacker's images: a datasets image-classification dataset (Hub id, imagefolder or save_to_disk "
        "folder) with the model's class names (default: Fashion-MNIST)",
    )
    r.add_argument("--image_column", default=None, help="--dataset's image column (default: the only Image one)")
    r.add_argument("--label_column", default=None, help="--dataset's label column (default: the only ClassLabel one)")
    r.add_argument("--seed", type=int, default=0, help="attacker's image choice and noise")
    r.add_argument("--eval_seed", type=int, default=1234)
    r.add_argument("--report", default=None, help="folder for <attack>.json, <attack>.md and <attack>.png")


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="sfd-attack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("relearn", help="fine-tune on real images of the forgotten class and measure its return")
    _common_arguments(r, DEFAULT_CHECKPOINTS, 1e-4)
    r.add_argument("--attack", default=None, help="classes the attacker holds images of (default: the forgotten ones)")
    r.add_argument("--benign", action="store_true", help="attack with remaining classes only (resurgence test)")
    r.add_argument(
        "--at_sampling_level",
        action="store_true",
        help="one-step generators: the adaptive attacker, "
        "whose denoising loss is taken at σ_init only (the level the generator is sampled at)",
    )
    i = sub.add_parser("invert", help="learn a new class embedding (weights frozen) that draws the forgotten class")
    _common_arguments(i, DEFAULT_INVERSION_STEPS, 5e-2)
    i.add_argument(
        "--init",
        choices=INITS,
        default="class",
        help="the embedding's start: the class's own row (step 0 = the released model) or the mean of the other "
        "rows; text models: the concept's token rows or the vocabulary's mean",
    )
    i.add_argument(
        "--clip",
        default=None,
        help="text models: judge with this CLIP folder (default: the classifier when it names the concept, else "
        "assets/clip)",
    )
    return p.parse_args(argv)


def curves_table(curves: list[dict]) -> str:
    steps = curves[0]["steps"]
    head = "| images | attacked | " + " | ".join(f"step {s}" for s in steps) + " | area | steps to 50% |"
    lines = [head, "|" + "---|" * (len(steps) + 4)]
    for c in curves:
        reach = "not reached" if c["steps_to_50pct"] is None else f"{c['steps_to_50pct']:.0f}"
        lines.append(
            f"| {c['images_per_class']} | {', '.join(c['attacked'])} | "
            + " | ".join(f"{v:.1%}" for v in c["forget_accuracy"])
            + f" | {c['area']:.3f} | {reach} |"
        )
    return "\n".join(lines)


def attack_call(args, n_images: int) -> dict:
    """One curve of the chosen attack for `n_images` images per attacked class."""
    kw = dict(
        n_images=n_images,
        checkpoints=parse_steps(args.steps),
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        eval_samples=args.eval_samples,
        seed=args.seed,
        eval_seed=args.eval_seed,
        classifier=args.classifier,
        num_inference_steps=args.num_inference_steps,
        dataset=args.dataset,
        image_column=args.image_column,
        label_column=args.label_column,
    )
    if args.command == "invert":
        return inversion_curve(args.model, args.forget, init=args.init, clip=args.clip, **kw)
    return relearn_curve(
        args.model,
        args.forget,
        attack=args.attack,
        benign=args.benign,
        at_sampling_level=args.at_sampling_level,
        **kw,
    )


def parse_steps(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise SystemExit(f"sfd-attack: error: --steps takes step counts separated by commas, got {text!r}") from None


def main(argv=None) -> None:
    args = parse_args(argv)
    curves = []
    for n in args.images:
        try:
            curves.append(attack_call(args, n))
        except (SpecError, FileNotFoundError, ValueError) as err:
            raise SystemExit(f"sfd-attack: error: {err}") from None
    table = curves_table(curves)
    print(table)
    if args.report:
        out = Path(args.report)
        out.mkdir(parents=True, exist_ok=True)
        name = args.command
        (out / f"{name}.json").write_text(json.dumps(curves, indent=1))
        if name == "invert":
            kind = "concept inversion"
        else:
            kind = "benign (remaining classes)" if args.benign else "relearning"
        plot = plot_curves(
            {f"n={c['images_per_class']}": c for c in curves}, out / f"{name}.png", f"{kind} attack on {args.model}"
        )
        (out / f"{name}.md").write_text(
            f"# sfd-attack {name}: {args.model}\n\nForgotten: {curves[0]['forget']}; "
            f"{args.eval_samples} samples per forgotten class per budget, seed "
            f"{args.eval_seed}; attacker seed {args.seed}, lr {args.learning_rate}.\n\n"
            f"{table}\n\n![curve]({plot.name})\n"
        )
        print(f"report written to {out}")


if __name__ == "__main__":
    main()
