"""What to forget and what to draw instead: `--forget "class=trouser,bag"`, `--override auto|far|random|class=…`."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace
from typing import Mapping, Sequence

import torch

RANDOM = "random"
AUTO = (
    "auto"  # a fixed override the teacher chooses (sfd.training.override_choice), resolved once the teacher is loaded
)
FAR = "far"  # a random override per sample among the remaining classes the teacher finds farthest (sfd.training.override_choice)
CHOOSERS = (AUTO, FAR)


def override_text(desc: dict) -> str:
    """A `describe()` record's override in words: "sneaker", "random" or "random among [...]", and who chose it."""
    text = f"random among {desc['override_pool']}" if desc.get("override_pool") else str(desc["override"])
    chooser = desc.get("override_chosen_by")
    return text + (f" (chosen by the teacher: --override {chooser})" if chooser else "")


class SpecError(ValueError):
    """A forget / override specification that cannot be honoured; the message says what to do."""


def _split_spec(text: str, what: str) -> tuple[str, list[str]]:
    if "=" not in text:
        hint = f' (did you mean "class={text.strip()}"?)' if text.strip() else ""
        raise SpecError(f'{what} must look like "class=NAME[,NAME…]", got {text!r}{hint}')
    kind, _, body = text.partition("=")
    items = [s.strip() for s in body.split(",") if s.strip()]
    if not items:
        raise SpecError(f"{what} {text!r} names nothing after '='")
    return kind.strip().lower(), items


LISTED_CLASSES = 50  # an unknown name's error lists every class up to this many, else the closest names


def resolve_classes(items: Sequence[str], id2label: Mapping[int, str], what: str) -> list[int]:
    """Class names (case-insensitive; a full label or one of its comma-separated synonyms, as diffusers' DiTPipeline
    reads ImageNet's "tench, Tinca tinca") or integer ids → ids, with the valid names listed on error."""
    from ..pipelines.labels import names_of  # here: importing the pipelines loads diffusers

    by_label, by_synonym = {}, {}
    for idx, label in sorted(id2label.items()):
        by_label.setdefault(label.lower(), []).append(idx)
        for name in names_of(label):
            by_synonym.setdefault(name.lower(), []).append(idx)
    ids = []
    for item in items:
        key = item.lower()
        if item.lstrip("-").isdigit():
            idx = int(item)
            if idx not in id2label:
                raise SpecError(f"{what}: class id {idx} out of range 0..{len(id2label) - 1}")
            matches = [idx]
        else:
            matches = by_label.get(key) or by_synonym.get(key)  # a full label first, then a synonym
        if not matches:
            raise SpecError(f"{what}: unknown class {item!r}. {valid_classes(item, id2label, by_synonym)}")
        if len(matches) > 1:  # ImageNet has two classes called "crane"
            named = ", ".join(f"{i}={id2label[i]!r}" for i in matches)
            raise SpecError(f"{what}: {item!r} names several classes ({named}); give the class id")
        idx = matches[0]
        if idx not in ids:
            ids.append(idx)
    return ids


def valid_classes(item: str, id2label: Mapping[int, str], by_synonym: Mapping[str, list[int]]) -> str:
    """Every class for a short list; for a long one (ImageNet's 1000) the closest names and where to find the rest."""
    if len(id2label) <= LISTED_CLASSES:
        return "Valid classes: " + ", ".join(f"{i}={n!r}" for i, n in sorted(id2label.items()))
    close = difflib.get_close_matches(item.lower(), list(by_synonym), n=8, cutoff=0.6)
    near = ", ".join(f"{by_synonym[n][0]}={id2label[by_synonym[n][0]]!r}" for n in close)
    return (
        (f"Closest: {near}. " if near else "")
        + f"The teacher has {len(id2label)} classes (ids 0..{len(id2label) - 1}); their names are the id2label of "
        "its model_index.json (each comma-separated synonym works)"
    )


@dataclass(frozen=True)
class ForgetSpec:
    """Forgotten class ids and, for each, the override the teacher is asked to draw instead.

    `override` is a fixed class id, or None for a random class per sample drawn from `pool` (every remaining class
    when `pool` is empty). `chooser` ("auto", "far") leaves the choice to the teacher: `auto` a fixed class, `far` a
    pool, both unset until `resolved`."""

    forget: tuple[int, ...]
    override: int | None
    id2label: Mapping[int, str]
    chooser: str | None = None
    pool: tuple[int, ...] = ()

    @classmethod
    def parse(
        cls, forget: str | None, override: str | None, id2label: Mapping[int, str], allow_auto: bool = True
    ) -> "ForgetSpec":
        """`forget=None` means nothing is forgotten (every class counts as remaining, e.g. to measure a teacher).
        `allow_auto=False` where no teacher is at hand to choose the class (measuring a model)."""
        id2label = {int(k): v for k, v in id2label.items()}
        if not id2label:
            raise SpecError("the teacher has no class names (id2label) in its config: it is not class-conditional")
        if forget is None:
            return cls((), None, id2label)
        kind, items = _split_spec(forget, "--forget")
        if kind != "class":
            raise SpecError(f"--forget kind {kind!r} is not supported for class-conditional teachers; use class=NAME")
        forget_ids = resolve_classes(items, id2label, "--forget")
        if len(forget_ids) == len(id2label):
            raise SpecError("--forget names every class: nothing would remain to distil. Keep at least one class.")
        word = override.strip().lower() if override is not None else RANDOM
        if word in CHOOSERS:
            if not allow_auto:
                raise SpecError(
                    f"--override {word} is chosen from the teacher during training; name the class the "
                    "run chose (its model card's 'Forgotten' line), e.g. --override class=bag, or the "
                    "pool far chose, e.g. --override class=sneaker,bag"
                )
            return cls(tuple(forget_ids), None, id2label, chooser=word)
        if word == RANDOM:
            return cls(tuple(forget_ids), None, id2label)
        _, o_items = _split_spec(override if "=" in override else f"class={override}", "--override")
        override_ids = resolve_classes(o_items, id2label, "--override")
        clash = [id2label[i] for i in override_ids if i in forget_ids]
        if clash:
            raise SpecError(
                f"--override {clash[0]!r} is also being forgotten; pick remaining classes, 'auto', 'far' or 'random'"
            )
        if len(override_ids) == 1:
            return cls(tuple(forget_ids), override_ids[0], id2label)
        return cls(tuple(forget_ids), None, id2label, pool=tuple(override_ids))  # random among the named classes

    @property
    def remaining(self) -> tuple[int, ...]:
        return tuple(i for i in sorted(self.id2label) if i not in self.forget)

    @property
    def forget_names(self) -> list[str]:
        return [self.id2label[i] for i in self.forget]

    @property
    def needs_resolving(self) -> bool:
        return self.chooser is not None and self.override is None and not self.pool

    @property
    def override_classes(self) -> tuple[int, ...]:
        """The classes the override is drawn from: the fixed one, the pool, or every remaining class."""
        if self.needs_resolving:
            raise SpecError(
                f"--override {self.chooser} has not been resolved: the teacher chooses it when it is loaded"
            )
        return (self.override,) if self.override is not None else (self.pool or self.remaining)

    def resolved(self, override: int | None = None, pool: Sequence[int] = ()) -> "ForgetSpec":
        """An `auto` spec with its override chosen, or a `far` spec with its pool."""
        for c in ([override] if override is not None else []) + list(pool):
            if c not in self.remaining:
                raise SpecError(f"the override must be a remaining class, got {self.id2label.get(c, c)!r}")
        return replace(self, override=override, pool=tuple(pool))

    def describe(self) -> dict:
        """What the run did: the forgotten names and the override (`auto` / `far` until it is chosen); a pool is
        listed under "override_pool"."""
        if self.override is not None:
            override = self.id2label[self.override]
        else:
            override = self.chooser if self.needs_resolving else RANDOM
        return (
            {"forget": self.forget_names, "override": override}
            | ({"override_pool": [self.id2label[c] for c in self.pool]} if self.pool else {})
            | ({"override_chosen_by": self.chooser} if self.chooser else {})
        )

    def request(self) -> dict:
        """What the user asked for (a resumed run must ask the same): like `describe`, with a chooser unresolved."""
        if self.chooser:
            return {"forget": self.forget_names, "override": self.chooser}
        return self.describe()

    def teacher_labels(self, labels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """c_teacher: the override for forgotten labels, the label itself otherwise."""
        forgotten = self.is_forgotten(labels)
        classes = torch.tensor(self.override_classes, device=labels.device)
        if len(classes) == 1:
            replacement = classes.expand_as(labels)
        else:
            pick = torch.randint(len(classes), labels.shape, generator=generator, device="cpu").to(labels.device)
            replacement = classes[pick]
        return torch.where(forgotten, replacement, labels)

    def is_forgotten(self, labels: torch.Tensor) -> torch.Tensor:
        return torch.isin(labels, torch.tensor(self.forget, dtype=labels.dtype, device=labels.device))

    def sample_labels(self, n: int, forget_fraction: float | None, generator: torch.Generator | None = None):
        """A batch of conditions: `forget_fraction` of them forgotten (None, or nothing forgotten: uniform)."""
        if forget_fraction is None or not self.forget:
            return torch.randint(len(self.id2label), (n,), generator=generator)
        n_forget = int(round(n * forget_fraction))
        f = torch.tensor(self.forget)[torch.randint(len(self.forget), (n_forget,), generator=generator)]
        r = torch.tensor(self.remaining)[torch.randint(len(self.remaining), (n - n_forget,), generator=generator)]
        return torch.cat([f, r])
