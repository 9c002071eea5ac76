"""What a text-to-image model must forget: `--forget "concept=…"` / `"prompts=FILE"`, the override
rewriting of each forget prompt, the remaining prompts and the teacher's negative prompt.

    --forget "concept=brad pitt" --override "a middle aged man"
    --forget "prompts=forget.txt" --override "rules=rewrite.txt"        # rules: `old -> new` per line
    --forget "concept=nude,naked;prompts=subjects.txt" --override ""    # "" deletes the concept
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from .spec import SpecError

logger = logging.getLogger(__name__)
DEFAULT_TEMPLATES = ("a photo of a {}", "a picture of a {}", "an image of a {}", "a {}")


def read_lines(path: str | Path, what: str) -> list[str]:
    """Non-empty, non-comment lines of a prompt file; a missing or empty file is a SpecError."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise SpecError(f"{what}: file not found: {path}")
    lines = [ln.strip() for ln in path.read_text().splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if not lines:
        raise SpecError(f"{what}: {path} holds no prompts (one per line; '#' starts a comment)")
    return lines


def concept_pattern(concepts: Sequence[str]) -> re.Pattern:
    """Any of the concepts as a whole phrase, case-insensitive (“shirt” does not match “t-shirt”)."""
    alternatives = "|".join(re.escape(c) for c in sorted(concepts, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])", re.IGNORECASE)


def tidy(prompt: str) -> str:
    prompt = re.sub(r"\s+", " ", prompt)
    return re.sub(r"\s+([,.;:!?])", r"\1", prompt).strip(" ,")


def parse_forget(text: str) -> tuple[list[str], str | None]:
    """`concept=A[,B…]` and/or `prompts=FILE`, joined by ';' → (concepts, prompt file)."""
    concepts, prompt_file = [], None
    for part in filter(None, (p.strip() for p in text.split(";"))):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or not value.strip():
            raise SpecError(f'--forget part {part!r} must look like "concept=PHRASE[,PHRASE…]" or "prompts=FILE"')
        if key == "concept":
            concepts += [c.strip() for c in value.split(",") if c.strip()]
        elif key == "prompts":
            prompt_file = value.strip()
        elif key == "class":
            raise SpecError(
                'this teacher is text-to-image: forget a concept (--forget "concept=sneaker"), not a class'
            )
        else:
            raise SpecError(f"--forget key {key!r} unknown for text-to-image teachers; use concept= and/or prompts=")
    if not concepts and prompt_file is None:
        raise SpecError('--forget names nothing: use "concept=PHRASE" and/or "prompts=FILE"')
    return concepts, prompt_file


@dataclass(frozen=True)
class Rewriter:
    """Forget prompt → override prompt: the concepts replaced by a phrase, or `old -> new` rules in order."""

    concepts: tuple[str, ...]
    phrase: str | None = None
    rules: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, override: str | None, concepts: Sequence[str]) -> "Rewriter":
        if (
            override is None
            or override.strip().lower() in ("random", "auto")
            or override.strip().lower().startswith("class=")
        ):
            raise SpecError(
                'text-to-image forgetting needs --override "PHRASE" (what to draw instead; "" deletes '
                'the concept) or --override "rules=FILE" (`old -> new` per line); random / auto / class= '
                "are for class-conditional teachers"
            )
        if override.strip().lower().startswith("rules="):
            rules = []
            for line in read_lines(override.split("=", 1)[1].strip(), "--override rules"):
                old, sep, new = line.partition("->")
                if not sep or not old.strip():
                    raise SpecError(f"--override rules: line {line!r} must look like `old -> new`")
                rules.append((old.strip(), new.strip()))
            return cls(tuple(concepts), None, tuple(rules))
        phrase = override.strip()
        if any(phrase.lower() == c.lower() for c in concepts):
            raise SpecError(f"--override {phrase!r} is the concept being forgotten; pick something else to draw")
        return cls(tuple(concepts), phrase)

    def __call__(self, prompt: str) -> str | None:
        """The override prompt, or None when nothing in `prompt` is rewritten."""
        if self.rules:
            out = prompt
            for old, new in self.rules:
                out = concept_pattern([old]).sub(new, out)
        elif self.concepts:
            out = concept_pattern(self.concepts).sub(self.phrase, prompt)
        else:  # a prompt file without a concept: the phrase is the whole override prompt
            out = self.phrase
        out = tidy(out)
        return out if out.lower() != prompt.lower() else None


@dataclass(frozen=True)
class PromptSpec:
    """Forget prompts paired with their override prompts, the remaining prompts, the negative prompt."""

    forget_prompts: tuple[str, ...]
    override_prompts: tuple[str, ...]
    remain_prompts: tuple[str, ...]
    concepts: tuple[str, ...]
    negative_prompt: str | None = None
    override_phrase: str | None = None  # the single phrase drawn instead, when there is one

    @classmethod
    def parse(
        cls,
        forget: str,
        override: str | None,
        remain_prompts: Sequence[str],
        negative_concepts: Sequence[str] | None = None,
        templates: Sequence[str] = DEFAULT_TEMPLATES,
    ) -> "PromptSpec":
        concepts, prompt_file = parse_forget(forget)
        rewrite = Rewriter.parse(override, concepts)
        pattern = concept_pattern(concepts) if concepts else None
        pool = list(dict.fromkeys(remain_prompts))
        if prompt_file is not None:
            forget_prompts = read_lines(prompt_file, "--forget prompts")
            if pattern is not None:
                missing = [p for p in forget_prompts if not pattern.search(p)]
                if len(missing) == len(forget_prompts):
                    raise SpecError(
                        f"concept {concepts} not found in any forget prompt of {prompt_file} "
                        f"(e.g. {forget_prompts[0]!r}); check the spelling or the file"
                    )
                if missing:
                    raise SpecError(
                        f"{len(missing)} forget prompt(s) of {prompt_file} lack the concept {concepts}, "
                        f"e.g. {missing[0]!r}: they could not be rewritten; fix them or use rules="
                    )
        elif any(pattern.search(p) for p in pool):
            forget_prompts = [p for p in pool if pattern.search(p)]
        else:
            forget_prompts = [t.format(c) for c in concepts for t in templates]
            logger.warning(
                f"the concept(s) {concepts} appear in none of the {len(pool)} remaining prompts; "
                f"forgetting the template prompts {forget_prompts[:2]}… (check the spelling, or pass prompts=FILE)"
            )
        forget_prompts = list(dict.fromkeys(forget_prompts))
        overrides = [rewrite(p) for p in forget_prompts]
        unchanged = [p for p, o in zip(forget_prompts, overrides) if o is None]
        if unchanged:
            raise SpecError(
                f"the override leaves {len(unchanged)} forget prompt(s) unchanged, e.g. {unchanged[0]!r}: "
                "the forgotten and the override prompt would coincide"
            )
        forget_set = {p.lower() for p in forget_prompts}
        remain = [p for p in pool if p.lower() not in forget_set and not (pattern and pattern.search(p))]
        if not remain:
            raise SpecError(
                "no remaining prompts are left once the forget prompts are removed; pass --remain_prompts FILE"
            )
        negative = ", ".join(negative_concepts) if negative_concepts else None
        return cls(
            tuple(forget_prompts), tuple(overrides), tuple(remain), tuple(concepts), negative, rewrite.phrase or None
        )

    def describe(self) -> dict:
        return {
            "forget": list(self.concepts) or [f"{len(self.forget_prompts)} prompts"],
            "override": self.override_phrase
            if self.override_phrase is not None
            else f"{len(set(self.override_prompts))} rewritten prompts",
            "forget_prompts": len(self.forget_prompts),
            "remain_prompts": len(self.remain_prompts),
            "negative_prompt": self.negative_prompt,
        }

    def request(self) -> dict:
        """What the user asked for (a resumed run must ask the same)."""
        return self.describe()

    def sample(self, n: int, forget_fraction: float | None, generator: torch.Generator | None = None):
        """(index, forgotten) of n prompts: `forget_fraction` of them forget prompts (None: 1/2, as the reference)."""
        frac = 0.5 if forget_fraction is None else forget_fraction
        n_forget = int(round(n * frac))
        f = torch.randint(len(self.forget_prompts), (n_forget,), generator=generator)
        r = torch.randint(len(self.remain_prompts), (n - n_forget,), generator=generator)
        return torch.cat([f, r]), torch.arange(n) < n_forget
