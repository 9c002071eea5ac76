"""What the benchmark scripts share: where results and runs go, and writing a result as JSON beside its table."""

from __future__ import annotations

import json
from pathlib import Path

from sfd.core.io import write_text_atomic

BENCH = Path(__file__).resolve().parent
PROJECT = BENCH.parent
RESULTS = BENCH / "results"
RUNS = BENCH / "runs"


def write_result(stem: str | Path, record: dict, markdown: str) -> Path:
    """`stem`.json (the record) and `stem`.md (its table), each written atomically; returns the table's path."""
    stem = Path(stem)
    write_text_atomic(stem.with_name(stem.name + ".json"), json.dumps(record, indent=1, default=str) + "\n")
    write_text_atomic(stem.with_name(stem.name + ".md"), markdown.rstrip() + "\n")
    return stem.with_name(stem.name + ".md")
