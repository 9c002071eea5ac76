"""Does what the weights represent predict relearning? `sfd-eval --representation`'s measurements beside each model's
relearning figure.

    python -m bench.representation      # ~15 min on a 2-core CPU (more when models must be trained first)

The models of the relearning benchmark (bench/robustness.py: teacher, gold retrain, ESD-style, the shipped SFD model
with `--override auto`), SFD with `--override far` and `random` and SFD with the contrastive term (weight 1.0; trained
first when absent, `bench.robustness.ensure_model`) are measured by
`sfd.evaluation.representation.representation_metrics` for trouser (200 + 200 real test images for the probe, 100
samples for the separation, seed 0); the relearning figure is the steps the relearning attack (n = 10 real images)
needed to pass 50% forget accuracy: read from bench/results/robustness-relearn-2026-11-25.json for the models measured
there, measured with the same settings (`relearn_curve`, attacker seed 0, eval seed 1234, cached under
bench/runs/representation/) for the others. Writes bench/results/representation.{json,md}.
"""

from __future__ import annotations

import argparse
import json

from bench.common import RESULTS, RUNS, cached, write_result
from bench.robustness import ERASERS, NAMES, ensure_model
from sfd.core.paths import DEFAULT_CLASSIFIER
from sfd.core.precision import describe_machine
from sfd.evaluation.judges import ImageClassifierJudge
from sfd.evaluation.relearn import relearn_curve
from sfd.evaluation.representation import PROBE_SIGMAS, representation_metrics

RELEARN = RESULTS / "robustness-relearn-2026-11-25.json"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--forget", default="class=trouser")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--models", nargs="+", choices=list(ERASERS), default=list(ERASERS))
    p.add_argument("--out", default=str(RESULTS / "representation"))
    args = p.parse_args(argv)
    judge = ImageClassifierJudge.from_pretrained(DEFAULT_CLASSIFIER)
    recorded = json.loads(RELEARN.read_text())["curves"]
    rows = {}
    for model in args.models:
        path = ensure_model(model, args.forget)
        print(f"[representation] {model}", flush=True)
        rows[model] = cached(
            RUNS / "representation" / f"{model}-seed{args.seed}.json",
            lambda: representation_metrics(str(path), args.forget, judge, args.seed),
        )
        if model in recorded:
            curve, source = recorded[model]["n=10"], RELEARN.name
        else:
            curve = cached(
                RUNS / "representation" / f"relearn-{model}.json",
                lambda: relearn_curve(str(path), args.forget, n_images=10, classifier=judge, progress=False),
            )
            source = "measured"
        rows[model] |= {"relearn_steps_to_50pct_n10": curve["steps_to_50pct"], "relearn_source": source}
    record = {"forget": args.forget, "seed": args.seed, "machine": describe_machine(), "relearn_source": RELEARN.name}
    record["models"] = rows
    probes = " | ".join(f"probe acc. σ={s:g}" for s in PROBE_SIGMAS)
    lines = [f"| model | {probes} | separation | nearest remaining class | relearning: steps to 50% (n = 10) |"]
    lines.append("|---" * (len(PROBE_SIGMAS) + 4) + "|")
    for model, r in rows.items():
        values = " | ".join(f"{r[f'probe_accuracy_sigma_{s:g}']:.3f}" for s in PROBE_SIGMAS)
        steps = r["relearn_steps_to_50pct_n10"]
        lines.append(
            f"| {NAMES[model]} | {values} | {r['separation']:.2f} | {r['nearest_remaining_class']} | "
            f"{'> 200' if steps is None else f'{steps:.0f}'} |"
        )
    markdown = f"""# What the weights still represent of `{args.forget}`, beside relearning

Linear probe: balanced accuracy (chance 0.5) of a logistic regression on the middle block's spatially averaged
features of noised real test images (200 trouser + 200 others, half to train), under the null label. Separation: the
forgotten label's samples' mean judge-space distance to the real trouser centroid over that to the nearest remaining
class's centroid (> 1: nearer another class). Seed {args.seed}; relearning (attacker seed 0, 100 samples per budget,
seed 1234) from `{RELEARN.name}` where it was measured there, else measured with the same settings. {describe_machine()}.

{chr(10).join(lines)}
"""
    print(markdown)
    write_result(args.out, record, markdown)


if __name__ == "__main__":
    main()
