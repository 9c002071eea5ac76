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


def cached(path: Path, compute) -> dict:
    """The JSON record at `path`, computed by `compute()` and written there (atomically) the first time."""
    if path.exists():
        return json.loads(path.read_text())
    record = compute()
    write_text_atomic(path, json.dumps(record, indent=1, default=str))
    return record


def slug(name: str) -> str:
    """A folder name for a row's name: lower-case ASCII words joined by hyphens."""
    words = "".join(c if c.isascii() and c.isalnum() else " " for c in name.lower()).split()
    return "-".join(words)
