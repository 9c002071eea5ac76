"""sfd-eval: how much a model still draws the forgotten classes or concepts, and how well the rest.

    sfd-eval --model OUT_DIR [--reference TEACHER_DIR] --forget "class=trouser" --report REPORT_DIR
    sfd-eval --model OUT_DIR --forget "concept=sneaker" --report REPORT_DIR        # text-to-image models

Class models are judged by an image classifier (forget accuracy, its floor, UA, remaining accuracy, FID,
precision / recall against real images; optionally CLIP and the alignment with a gold retrain); text-to-image
models by CLIP (forget detection, CLIP score) and, where the prompts name its classes, by the classifier.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..core.loading import load_pipeline
from ..core.metrics import diversity_ratios
from ..core.paths import DEFAULT_CLASSIFIER, DEFAULT_CLIP, DEFAULT_REFERENCE_STATS, SECOND_CLASSIFIER
from ..core.prompts import read_lines
from ..core.spec import ForgetSpec
from ..evaluation import plots
from ..evaluation.evaluate_classes import evaluate_model, gold_samples
from ..evaluation.evaluate_text import evaluate_text_model
from ..evaluation.judges import CLIPJudge, ImageClassifierJudge
from ..evaluation.reference import make_reference
from ..evaluation.report import write_report
from ..evaluation.representation import check_representation_request, representation_metrics
from ..pipelines import OneStepTextToImagePipeline, TextToImageDiffusionPipeline


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="pipeline folder or Hub id to measure")
    p.add_argument("--reference", default=None, help="second model (e.g. the teacher) measured the same way")
    p.add_argument("--forget", default=None, help='e.g. "class=trouser"; without it every class counts as remaining')
    p.add_argument(
        "--override",
        default=None,
        help='for the floor: "class=NAME", "class=A,B" (a pool) or "random" '
        "(default: what the model's training.json records, else random)",
    )
    p.add_argument("--classifier", default=str(DEFAULT_CLASSIFIER))
    p.add_argument(
        "--second_classifier",
        default=None,
        help="class models: a second, independently trained judge whose per-class accuracy is reported beside the "
        "first's, with the classes where they disagree by > 10 points (default: the shipped "
        "assets/classifier-convnext when --classifier is the shipped one; 'none' to skip)",
    )
    p.add_argument("--reference_stats", default=str(DEFAULT_REFERENCE_STATS))
    p.add_argument("--clip", default=str(DEFAULT_CLIP), help="CLIP model for the CLIP check ('none' to skip)")
    p.add_argument(
        "--num_samples_per_class", type=int, default=100, help="per class (per prompt for text-to-image models)"
    )
    p.add_argument(
        "--num_forget_samples",
        type=int,
        default=None,
        help="samples per forgotten class / forget prompt (default: as above)",
    )
    p.add_argument(
        "--prompts",
        default=None,
        help="text-to-image: evaluation prompts, one per line (default: "
        "'a photo of a {concept}' per concept the model lists, else the forget prompts)",
    )
    p.add_argument(
        "--gold",
        default=None,
        help="class models: a model retrained without the forgotten classes; "
        "adds the FID between the two models' remaining-class samples and the per-class accuracy gap",
    )
    p.add_argument(
        "--representation",
        action="store_true",
        help="class models, one forgotten class: also measure what the weights still represent of it (a linear probe "
        "on the middle block's features of real images, and the judge-space separation of its samples)",
    )
    p.add_argument("--batch_size", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--report", default=None, help="folder for metrics.json and report.md")
    p.add_argument(
        "--make-reference",
        dest="make_reference",
        nargs="?",
        const="",
        default=None,
        metavar="IMAGE_DIR",
        help="write FID reference features to --reference_stats: of IMAGE_DIR/<class>/*.png, of --dataset, or "
        "without either of the Fashion-MNIST test set",
    )
    p.add_argument(
        "--dataset",
        default=None,
        help="with --make-reference: an image-classification dataset (Hub id such as uoft-cs/cifar10, imagefolder "
        "or save_to_disk folder) whose --split gives the reference images; its class names must be the classifier's",
    )
    p.add_argument("--split", default="test", help="with --dataset: the split (default test, else validation)")
    p.add_argument("--image_column", default=None, help="with --dataset: its image column (default: found by type)")
    p.add_argument("--label_column", default=None, help="with --dataset: its label column (default: found by type)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.make_reference is not None:
        if args.make_reference and args.dataset:
            raise SystemExit("--make-reference takes an image folder or --dataset, not both")
        path = make_reference(
            args.classifier,
            args.reference_stats,
            image_dir=args.make_reference or None,
            dataset=args.dataset,
            split=args.split,
            image_column=args.image_column,
            label_column=args.label_column,
        )
        print(f"wrote {path}")
        return
    if not args.model:
        raise SystemExit("sfd-eval needs --model (or --make-reference)")
    if args.reference_stats.lower() == "none":
        args.reference_stats = None
    if args.representation:
        if is_text_to_image(args.model):
            raise SystemExit("sfd-eval: error: --representation measures class-conditional models")
        try:
            check_representation_request(args.forget)
        except ValueError as err:
            raise SystemExit(f"sfd-eval: error: {err}") from None
    elif args.dataset:
        raise SystemExit("--dataset names the reference images of --make-reference (or of --representation)")
    if is_text_to_image(args.model):
        return main_text(args)
    kw = dict(
        second_classifier=second_judge(args.second_classifier, args.classifier),
        forget=args.forget,
        override=args.override,
        classifier=ImageClassifierJudge.from_pretrained(args.classifier),
        reference_stats=args.reference_stats,
        num_samples_per_class=args.num_samples_per_class,
        batch_size=args.batch_size,
        seed=args.seed,
        num_forget_samples=args.num_forget_samples,
        clip=None if args.clip.lower() == "none" else CLIPJudge.from_pretrained(args.clip),
    )
    if args.gold:
        kw["gold"] = gold_samples(
            args.gold,
            args.forget,
            args.seed,
            **{
                k: v
                for k, v in kw.items()
                if k not in ("forget", "seed", "reference_stats", "clip", "second_classifier")
            },
            progress=True,
        )
    metrics = evaluate_model(args.model, **kw)
    reference = evaluate_model(args.reference, **kw) if args.reference else None
    if args.representation:
        for model, record in ((args.model, metrics), (args.reference, reference)):
            if record is not None:
                record["representation"] = representation_metrics(
                    model, args.forget, kw["classifier"], args.seed, dataset=args.dataset
                )
    print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, dict)}, indent=1))
    if args.report:
        write_report(metrics, Path(args.report), reference, report_pictures(args, metrics, reference))
        print(f"report written to {args.report}")


def second_judge(path: str | None, first: str):
    """The second judge: the given folder (which must exist), else the shipped one when present and the first judge
    is the shipped classifier (both know the Fashion-MNIST classes); 'none' skips."""
    if path is not None and path.lower() == "none":
        return None
    if path is None:
        shipped_first = Path(first).resolve() == DEFAULT_CLASSIFIER.resolve()
        return (
            ImageClassifierJudge.from_pretrained(SECOND_CLASSIFIER)
            if shipped_first and SECOND_CLASSIFIER.is_dir()
            else None
        )
    if not Path(path).exists() and "/" not in path.strip("./"):
        raise SystemExit(f"sfd-eval: error: --second_classifier {path}: no such folder")
    return ImageClassifierJudge.from_pretrained(path)


def is_text_to_image(model) -> bool:
    index = Path(model) / "model_index.json"
    if index.exists():
        return "text_encoder" in json.loads(index.read_text())
    return isinstance(load_pipeline(model), (OneStepTextToImagePipeline, TextToImageDiffusionPipeline))


def main_text(args) -> None:
    """sfd-eval on text-to-image models: CLIP forget detection and CLIP score (plus the classifier, when
    the model's concepts are its classes)."""
    if args.gold:
        raise SystemExit("sfd-eval: error: --gold is for class-conditional models (a retrain without the classes)")
    clip = CLIPJudge.from_pretrained(args.clip)
    kw = dict(
        forget=args.forget,
        override=args.override,
        clip=clip,
        num_samples_per_prompt=args.num_samples_per_class,
        num_forget_samples=args.num_forget_samples,
        batch_size=args.batch_size,
        seed=args.seed,
        prompts=read_lines(args.prompts, "--prompts") if args.prompts else None,
    )
    pipe = load_pipeline(args.model)
    if args.classifier.lower() != "none" and pipe.concepts:
        judge = ImageClassifierJudge.from_pretrained(args.classifier)
        try:
            judge.match_labels(dict(enumerate(pipe.concepts)))
            kw["classifier"] = judge
        except ValueError:
            pass  # the classifier does not know these concepts: CLIP only
    metrics = evaluate_text_model(pipe, **kw)
    metrics["model"] = args.model
    reference = ref_pipe = None
    if args.reference:
        ref_pipe = load_pipeline(args.reference)
        reference = evaluate_text_model(ref_pipe, **kw)
        reference["model"] = args.reference
    print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}, indent=1))
    if args.report:
        pictures = {}
        if args.reference:
            out = Path(args.report)
            out.mkdir(parents=True, exist_ok=True)
            prompts = metrics["forget_prompts"] + metrics["remain_prompts"]
            pictures["Samples: reference (left) and model (right), same seeds"] = plots.before_after_prompts(
                pipe,
                ref_pipe,
                prompts,
                len(metrics["forget_prompts"]),
                out / "before_after.png",
                seed=args.seed,
                concepts=pipe.concepts or metrics["forget"],
            )
            ratios = diversity_ratios(
                metrics.get("per_prompt_diversity", {}), reference.get("per_prompt_diversity", {})
            )
            prompt = ratios.get("diversity_ratio_worst_condition", metrics["remain_prompts"][0])
            title = f"16 seeds of {prompt!r}: reference (top) and model (bottom)"
            pictures[title] = plots.seed_grid(pipe, ref_pipe, prompt, out / "seeds.png", seed=args.seed)
        pictures.update(training_pictures(args.model, Path(args.report)))
        write_report(metrics, Path(args.report), reference, pictures)
        print(f"report written to {args.report}")


def report_pictures(args, metrics: dict, reference: dict | None) -> dict:
    out = Path(args.report)
    out.mkdir(parents=True, exist_ok=True)
    pics = {
        "Per-class accuracy": plots.per_class_bars(
            metrics, reference, metrics["forget"], out / "per_class_accuracy.png"
        )
    }
    if args.reference:
        model, ref = load_pipeline(args.model), load_pipeline(args.reference)
        for p in (model, ref):
            p.set_progress_bar_config(disable=True)
        spec = ForgetSpec.parse(args.forget or None, args.override, model.id2label)
        pics["Samples: reference (left) and model (right), same seeds"] = plots.before_after_grid(
            model, ref, spec.id2label, spec.forget, out / "before_after.png", seed=args.seed
        )
    pics.update(training_pictures(args.model, out))
    return pics


def training_pictures(model, out: Path) -> dict:
    """Curves from a training folder's logs/metrics.jsonl: the forget rate, and ψ's tracking of the generator."""
    log = Path(str(model), "logs", "metrics.jsonl")
    if not log.exists():
        return {}
    out.mkdir(parents=True, exist_ok=True)
    return {
        "Forget rate during training": plots.forget_rate_curve(log, out / "forget_rate.png"),
        "Fake score's denoising error on generator samples over the teacher's": plots.psi_tracking_curve(
            log, out / "psi_tracking.png"
        ),
    }


if __name__ == "__main__":
    main()
