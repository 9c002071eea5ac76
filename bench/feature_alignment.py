"""Where does the forgotten label point inside the generator? The contrastive term's own quantities, measured.

    python -m bench.feature_alignment      # ~2 min on a 2-core CPU

The contrastive term (`sfd.training.contrastive`) pulls the generator's pooled middle-block features under the
forgotten label towards the teacher's under the override and pushes them from the teacher's under the forgotten
label, at the generator's input σ_init·z. This script measures, for the one-step SFD models of
bench/representation.py (`auto`, `far`, `random`, the contrastive trial) and the gold retrain (a reference), on 256
noises z (seed 0) at σ_init = 2.5: the per-row cosine between the model's features under trouser and the frozen
teacher's under each class; the nearest other teacher class; L_con (τ 0.1) with the override as its positive (the
run's override from its training.json; for a per-sample override, the nearest class of its pool; for the gold
retrain, the nearest class); and, as the scale of "aligned", the mean cosine of the model's features under each
remaining class with the teacher's under the same class. Beside it, each model's relearning steps from
bench/results/representation.json.
Writes bench/results/feature-alignment.{json,md}.
"""

from __future__ import annotations

import argparse
import json

import torch

from bench.common import PROJECT, RESULTS, write_result
from bench.robustness import ERASERS, NAMES
from sfd.core.loading import load_pipeline
from sfd.core.precision import describe_machine
from sfd.core.spec import ForgetSpec
from sfd.pipelines import Denoiser
from sfd.training.contrastive import contrastive_loss, teacher_features

MODELS = ["gold", "sfd", "sfd-far", "sfd-random", "sfd-contrastive"]


def class_features(pipe, x: torch.Tensor, sigma: float, classes) -> dict[int, torch.Tensor]:
    """Pooled middle-block features of the network at (x, σ) under each class (unguided), as the contrastive term
    reads the teacher's."""
    denoiser = Denoiser(pipe.network, pipe.scheduler.config)
    return {c: teacher_features(denoiser, pipe.network, x, sigma, torch.full((len(x),), c)) for c in classes}


def override_class(path, id2label: dict, target: int, cos: dict) -> int:
    """The class the run bound the forgotten label to (its training.json), or, for a per-sample override (`far`,
    `random`) or a model without one (the gold retrain), the class of that pool nearest in `cos`."""
    training = path / "training.json"
    record = json.loads(training.read_text()) if training.exists() else {}
    ids = {v: k for k, v in id2label.items()}
    if record.get("override") in ids:
        return ids[record["override"]]
    pool = [ids[n] for n in record.get("override_pool") or []] or [c for c in id2label if c != target]
    return max(pool, key=cos.get)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--forget", default="class=trouser")
    p.add_argument("--sigma", type=float, default=2.5, help="the generators' σ_init")
    p.add_argument("--noises", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=0.1)
    args = p.parse_args(argv)
    teacher = load_pipeline(str(PROJECT / "assets/teacher"))
    spec = ForgetSpec.parse(args.forget, None, teacher.id2label)
    target, classes = spec.forget[0], sorted(teacher.id2label)
    size, channels = teacher.image_format()
    z = torch.randn(args.noises, channels, size, size, generator=torch.Generator().manual_seed(args.seed))
    x = args.sigma * z
    reference = class_features(teacher, x, args.sigma, classes)
    relearn = json.loads((RESULTS / "representation.json").read_text())["models"]
    rows = {}
    for model in MODELS:
        path = PROJECT / ERASERS[model]
        if not (path / "model_index.json").exists():
            print(f"[alignment] {model}: {path} is not on disk; skipped")
            continue
        own = class_features(load_pipeline(str(path)), x, args.sigma, classes)
        cos = {c: float(torch.cosine_similarity(own[target], reference[c], dim=-1).mean()) for c in classes}
        nearest = max((c for c in classes if c != target), key=cos.get)
        positive = override_class(path, teacher.id2label, target, cos)
        kept = [float(torch.cosine_similarity(own[c], reference[c], dim=-1).mean()) for c in classes if c != target]
        rows[model] = {
            "cosine_to_teacher_class": {teacher.id2label[c]: round(v, 4) for c, v in cos.items()},
            "nearest_class": teacher.id2label[nearest],
            "override": teacher.id2label[positive],
            "contrastive_loss": float(
                contrastive_loss(own[target], reference[positive], reference[target], args.temperature)
            ),
            "kept_classes_mean_cosine": sum(kept) / len(kept),
            "relearn_steps_to_50pct_n10": relearn.get(model, {}).get("relearn_steps_to_50pct_n10"),
        }
    name = teacher.id2label[target]
    lines = [
        f"| model | cos to teacher's {name} | nearest other teacher class (cos) | override (cos) | L_con | kept classes: "
        "cos to teacher's same class | relearning: steps to 50% (n = 10) |",
        "|---|---|---|---|---|---|---|",
    ]
    for model, r in rows.items():
        steps = r["relearn_steps_to_50pct_n10"]
        lines.append(
            f"| {NAMES[model]} | {r['cosine_to_teacher_class'][name]:.3f} | {r['nearest_class']} "
            f"({r['cosine_to_teacher_class'][r['nearest_class']]:.3f}) | {r['override']} "
            f"({r['cosine_to_teacher_class'][r['override']]:.3f}) | {r['contrastive_loss']:.3f} | "
            f"{r['kept_classes_mean_cosine']:.3f} | {'> 200' if steps is None else f'{steps:.0f}'} |"
        )
    record = {"forget": args.forget, "sigma": args.sigma, "noises": args.noises, "seed": args.seed, "models": rows}
    markdown = f"""# Where the forgotten label points inside each model (`{args.forget}`)

Per-row cosine between each model's pooled middle-block features under {name} and the frozen teacher's under each
class, at the generator input σ·z (σ = {args.sigma}, {args.noises} noises, seed {args.seed}); L_con is the contrastive
term (τ = {args.temperature}) with the teacher's features under the override as its positive (a per-sample override:
the nearest class of its pool; the gold retrain: the nearest class) and under {name} as its negative.
"Kept classes": the same cosine for every remaining label against the teacher's same label (how aligned a kept class
is). Relearning from `representation.json`. {describe_machine()}.

{chr(10).join(lines)}
"""
    print(markdown)
    write_result(RESULTS / "feature-alignment", record, markdown)


if __name__ == "__main__":
    main()
