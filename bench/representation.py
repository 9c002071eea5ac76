"""Does what the weights represent predict relearning? `sfd-eval --representation`'s measurements beside each model's
relearning figure.

    python -m bench.representation      # ~5 min on a 2-core CPU

The models of the relearning benchmark (bench/robustness.py: teacher, gold retrain, ESD-style, the shipped SFD model
with `--override auto`) are measured by `sfd.evaluation.representation.representation_metrics` for trouser (200 + 200
real test images for the probe, 100 samples for the separation, seed 0); the relearning figure is the steps the
relearning attack (n = 10 real images) needed to pass 50% forget accuracy, read from
bench/results/robustness-relearn-2026-11-25.json (read from that file, not re-measured). Writes
bench/results/representation.{json,md}.
"""

from __future__ import annotations

import argparse
import json

from bench.common import PROJECT, RESULTS, write_result
from bench.robustness import MODELS, NAMES
from sfd.core.paths import DEFAULT_CLASSIFIER
from sfd.core.precision import describe_machine
from sfd.evaluation.judges import ImageClassifierJudge
from sfd.evaluation.representation import PROBE_SIGMAS, representation_metrics

RELEARN = RESULTS / "robustness-relearn-2026-11-25.json"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--forget", default="class=trouser")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(RESULTS / "representation"))
    args = p.parse_args(argv)
    judge = ImageClassifierJudge.from_pretrained(DEFAULT_CLASSIFIER)
    relearn = json.loads(RELEARN.read_text())["curves"]
    rows = {}
    for model, path in MODELS.items():
        if not (PROJECT / path / "model_index.json").exists():
            print(f"[representation] {model}: {path} is not on disk (bench/robustness.py trains it); skipped")
            continue
        print(f"[representation] {model}", flush=True)
        rows[model] = representation_metrics(str(PROJECT / path), args.forget, judge, args.seed)
        rows[model]["relearn_steps_to_50pct_n10"] = relearn[model]["n=10"]["steps_to_50pct"]
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
            f"{'–' if steps is None else f'{steps:.0f}'} |"
        )
    markdown = f"""# What the weights still represent of `{args.forget}`, beside relearning

Linear probe: balanced accuracy (chance 0.5) of a logistic regression on the middle block's spatially averaged
features of noised real test images (200 trouser + 200 others, half to train), under the null label. Separation: the
forgotten label's samples' mean judge-space distance to the real trouser centroid over that to the nearest remaining
class's centroid (> 1: nearer another class). Seed {args.seed}; relearning from `{RELEARN.name}`. {describe_machine()}.

{chr(10).join(lines)}
"""
    print(markdown)
    write_result(args.out, record, markdown)


if __name__ == "__main__":
    main()
