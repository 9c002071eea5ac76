"""The files `sfd-eval --report` writes: metrics.json and report.md (a table of the model beside its reference)."""

from __future__ import annotations

import json
from pathlib import Path

from ..core.metrics import diversity_ratios

_REPORT_COLUMNS = {
    "class": [
        ("forget_accuracy", "forget accuracy"),
        ("forget_accuracy_floor", "forget floor"),
        ("unlearning_accuracy", "UA"),
        ("remaining_accuracy", "remaining acc."),
        ("remaining_accuracy_second", "remaining acc. (2nd judge)"),
        ("fid_remaining", "FID (remaining)"),
        ("precision_remaining", "precision"),
        ("recall_remaining", "recall"),
        ("density_remaining", "density"),
        ("coverage_remaining", "coverage"),
        ("clip_forget_detection", "CLIP forget detection"),
        ("clip_score", "CLIP score"),
        ("fid_to_gold", "FID to gold"),
        ("accuracy_gap_to_gold_mean_pts", "acc. gap to gold (pts, mean)"),
        ("images_per_second", "images/s"),
        ("nfe_per_image", "NFE"),
    ],
    "text": [
        ("clip_forget_detection", "CLIP forget detection"),
        ("clip_score_remaining", "CLIP score (remaining)"),
        ("clip_accuracy_remaining", "CLIP accuracy (remaining)"),
        ("classifier_forget_accuracy", "classifier forget acc."),
        ("classifier_accuracy_remaining", "classifier acc. (remaining)"),
        ("fid_remaining", "FID (remaining)"),
        ("precision_remaining", "precision (remaining)"),
        ("recall_remaining", "recall (remaining)"),
        ("density_remaining", "density"),
        ("coverage_remaining", "coverage"),
        ("images_per_second", "images/s"),
        ("nfe_per_image", "NFE"),
    ],
}


_RATIOS = {
    "class": ("fid_remaining", "FID (remaining) model / reference"),
    "text": ("clip_score_remaining", "CLIP score (remaining) model / reference"),
}


def write_report(metrics: dict, report_dir: Path, reference: dict | None = None, pictures: dict | None = None) -> None:
    report_dir.mkdir(parents=True, exist_ok=True)
    kind = metrics.get("kind", "class")
    flat = {**metrics, **{f"reference_{k}": v for k, v in (reference or {}).items()}}
    key, label = _RATIOS[kind]
    if reference and metrics.get(key) is not None and reference.get(key):
        flat[f"{key}_ratio"] = metrics[key] / reference[key]
    per_condition = "per_class_diversity" if kind == "class" else "per_prompt_diversity"
    diversity = diversity_ratios(metrics.get(per_condition, {}), (reference or {}).get(per_condition, {}))
    flat.update(diversity)
    damage = per_class_damage(metrics, reference) if kind == "class" else {}
    flat.update(damage)
    (report_dir / "metrics.json").write_text(json.dumps(flat, indent=2))
    rows = [("model", metrics)] + ([("reference", reference)] if reference else [])
    cols = [c for c in _REPORT_COLUMNS[kind] if any(m.get(c[0]) is not None for _, m in rows)]  # measured ones
    lines = ["| | " + " | ".join(c[1] for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, m in rows:
        lines.append(f"| {name} | " + " | ".join(_fmt(m.get(k), m.get(k + "_ci")) for k, _ in cols) + " |")
    ratio = f"\n{label}: **{flat[key + '_ratio']:.3f}**\n" if f"{key}_ratio" in flat else ""
    if diversity:
        ratio += (
            f"\nDiversity (mean pairwise judge-feature distance within a {'class' if kind == 'class' else 'prompt'}) "
            f"model / reference: mean "
            f"**{diversity['diversity_ratio_mean']:.3f}**, worst {diversity['diversity_ratio_worst']:.3f} "
            f"({diversity['diversity_ratio_worst_condition']})\n"
        )
    ratio += damage_lines(damage, metrics.get("judges_disagree"))
    ratio += representation_lines(rows)
    unit = "class" if kind == "class" else "prompt"
    n = metrics.get("num_samples_per_class", metrics.get("samples_per_prompt"))
    (report_dir / "report.md").write_text(
        f"# sfd-eval report\n\nForgotten: {metrics['forget']}; {n} samples per {unit}, "
        f"seed {metrics['seed']}; intervals are bootstrap 95%.\n\n"
        + "\n".join(lines)
        + "\n"
        + ratio
        + "".join(f"\n## {title}\n\n![{title}]({Path(p).name})\n" for title, p in (pictures or {}).items() if p)
    )


JUDGES = {"": "judge", "_second": "second judge"}  # per_class_accuracy{suffix}: the judge that measured it


def per_class_damage(metrics: dict, reference: dict | None) -> dict:
    """By each judge: the remaining class drawn worst and, against the reference, the class that lost most accuracy
    (in points)."""
    out = {}
    forgotten = set(metrics.get("forget") or [])
    for suffix in JUDGES:
        acc = {k: v for k, v in (metrics.get(f"per_class_accuracy{suffix}") or {}).items() if k not in forgotten}
        if not acc:
            continue
        worst = min(acc, key=acc.get)
        out[f"worst_class{suffix}"], out[f"worst_class_accuracy{suffix}"] = worst, acc[worst]
        ref = (reference or {}).get(f"per_class_accuracy{suffix}") or {}
        drops = {k: 100 * (ref[k] - v) for k, v in acc.items() if k in ref}
        if drops:
            largest = max(drops, key=drops.get)
            out[f"largest_drop_class{suffix}"], out[f"largest_drop_pts{suffix}"] = largest, drops[largest]
    return out


def representation_lines(rows) -> str:
    """`--representation`: the probe accuracies and the judge separation of each measured model."""
    measured = [(name, m["representation"]) for name, m in rows if m.get("representation")]
    if not measured:
        return ""
    keys = [k for k in measured[0][1] if k.startswith("probe_accuracy")]
    head = " | ".join(k.replace("probe_accuracy_sigma_", "probe acc. σ=") for k in keys)
    lines = [f"| | {head} | separation | nearest remaining class |", "|---" * (len(keys) + 3) + "|"]
    for name, r in measured:
        probes = " | ".join(f"{r[k]:.3f}" for k in keys)
        lines.append(f"| {name} | {probes} | {r['separation']:.2f} | {r['nearest_remaining_class']} |")
    return (
        "\n## What the weights represent\n\nLinear probe (balanced, chance 0.5) on the middle block's features of "
        f"{measured[0][1]['probe_images_per_side']} + {measured[0][1]['probe_images_per_side']} real images "
        "(forgotten class / others), half to train; separation: the forgotten label's samples' judge-space distance "
        "to the forgotten class's real centroid over that to the nearest remaining class's (> 1: nearer another "
        "class).\n\n" + "\n".join(lines) + "\n"
    )


def damage_lines(damage: dict, disagree: dict | None) -> str:
    lines = []
    for suffix, judge in JUDGES.items():
        if f"worst_class{suffix}" not in damage:
            continue
        line = f"By the {judge}: worst class {damage[f'worst_class{suffix}']} ({damage[f'worst_class_accuracy{suffix}']:.1%})"
        if f"largest_drop_class{suffix}" in damage:
            line += (
                f", largest drop vs the reference {damage[f'largest_drop_pts{suffix}']:.1f} pts "
                f"({damage[f'largest_drop_class{suffix}']})"
            )
        lines.append(line + ".")
    if disagree:
        flagged = ", ".join(f"{k} ({100 * a:.0f}% vs {100 * b:.0f}%)" for k, (a, b) in disagree.items())
        lines.append(f"**The two judges disagree by more than 10 points on**: {flagged}.")
    return "".join(f"\n{line}\n" for line in lines)


def _fmt(v, ci=None) -> str:
    if v is None:
        return "–"
    s = f"{v:.4g}" if isinstance(v, float) else str(v)
    return s + (f" [{ci[0]:.3g}, {ci[1]:.3g}]" if ci else "")
