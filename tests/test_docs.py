"""The documentation a user reads: its links resolve, the README stays a manual, its commands exist."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "results" / "README.md"]
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(doc):
    broken = []
    for target in LINK.findall(doc.read_text()):
        if re.match(r"[a-z]+://|mailto:|#", target):
            continue
        path = (doc.parent / target.split("#")[0]).resolve()
        if not path.exists():
            broken.append(target)
    assert broken == []


def test_the_readme_is_a_manual_of_at_most_300_lines():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 300
    for heading in (
        "## Install",
        "## Quick start",
        "## Choosing the override",
        "## Options",
        "## Results",
        "## How it works",
        "## Known limitations",
        "## Citation",
        "## License",
    ):
        assert heading in text


def test_the_readme_names_only_modules_that_exist():
    text = (ROOT / "README.md").read_text()
    for module in set(re.findall(r"python -m ((?:sfd|bench)(?:\.\w+)+)", text)):
        assert (ROOT / Path(*module.split("."))).with_suffix(".py").exists(), module
    for module in set(re.findall(r"from (sfd(?:\.\w+)*) import", text)):
        parts = module.split(".")
        folder = ROOT / ("pipelines" if parts[:2] == ["sfd", "pipelines"] else Path(*parts))
        assert (
            folder.exists() or folder.with_suffix(".py").exists() or (ROOT / Path(*parts)).with_suffix(".py").exists()
        ), module
