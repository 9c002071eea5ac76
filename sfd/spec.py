"""What to forget and what to draw instead: `--forget "class=trouser,bag"`, `--override random|auto|class=…`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping, Sequence

import torch

RANDOM = "random"
AUTO = "auto"  # a fixed override the teacher chooses (sfd.override_choice), resolved once the teacher is loaded


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


def resolve_classes(items: Sequence[str], id2label: Mapping[int, str], what: str) -> list[int]:
    """Class names (case-insensitive) or integer ids → ids, with the valid names listed on error."""
    by_name = {name.lower(): idx for idx, name in id2label.items()}
    ids = []
    for item in items:
        if item.lstrip("-").isdigit():
            idx = int(item)
            if idx not in id2label:
                raise SpecError(f"{what}: class id {idx} out of range 0..{len(id2label) - 1}")
        elif item.lower() in by_name:
            idx = by_name[item.lower()]
        else:
            valid = ", ".join(f"{i}={n!r}" for i, n in sorted(id2label.items()))
            raise SpecError(f"{what}: unknown class {item!r}. Valid classes: {valid}")
        if idx not in ids:
            ids.append(idx)
    return ids


@dataclass(frozen=True)
class ForgetSpec:
    """Forgotten class ids and, for each, the override the teacher is asked to draw instead.

    `override` is a fixed class id, or None for a random remaining class per sample. With `auto` the override is
    a fixed class still to be chosen from the teacher (`override` None until `resolved`)."""

    forget: tuple[int, ...]
    override: int | None
    id2label: Mapping[int, str]
    auto: bool = False

    @classmethod
    def parse(cls, forget: str | None, override: str | None, id2label: Mapping[int, str],
              allow_auto: bool = True) -> "ForgetSpec":
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
        override_id = None
        if override is not None and override.strip().lower() == AUTO:
            if not allow_auto:
                raise SpecError("--override auto is chosen from the teacher during training; name the class the run "
                                "chose (its model card's 'Forgotten' line), e.g. --override class=bag")
            return cls(tuple(forget_ids), None, id2label, auto=True)
        if override is not None and override.strip().lower() != RANDOM:
            text = override if "=" in override else f"class={override}"
            _, o_items = _split_spec(text, "--override")
            if len(o_items) != 1:
                raise SpecError("--override takes one class (or 'random' / 'auto')")
            override_id = resolve_classes(o_items, id2label, "--override")[0]
            if override_id in forget_ids:
                raise SpecError(
                    f"--override {id2label[override_id]!r} is also being forgotten; pick a remaining class, 'random' "
                    "or 'auto'"
                )
        return cls(tuple(forget_ids), override_id, id2label)

    @property
    def remaining(self) -> tuple[int, ...]:
        return tuple(i for i in sorted(self.id2label) if i not in self.forget)

    @property
    def forget_names(self) -> list[str]:
        return [self.id2label[i] for i in self.forget]

    @property
    def needs_resolving(self) -> bool:
        return self.auto and self.override is None

    def resolved(self, override: int) -> "ForgetSpec":
        """An `auto` spec with its override chosen."""
        if override not in self.remaining:
            raise SpecError(f"the override must be a remaining class, got {self.id2label.get(override, override)!r}")
        return replace(self, override=override)

    def describe(self) -> dict:
        """What the run did: the forgotten names and the override (`auto` until it is chosen)."""
        override = (AUTO if self.needs_resolving else RANDOM) if self.override is None else self.id2label[self.override]
        return {"forget": self.forget_names, "override": override} | ({"override_chosen_by": AUTO} if self.auto else {})

    def request(self) -> dict:
        """What the user asked for (a resumed run must ask the same): like `describe`, with `auto` left unresolved."""
        return {"forget": self.forget_names, "override": AUTO if self.auto else self.describe()["override"]}

    def teacher_labels(self, labels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """c_teacher: the override for forgotten labels, the label itself otherwise."""
        forgotten = self.is_forgotten(labels)
        if self.needs_resolving:
            raise SpecError("--override auto has not been resolved: the teacher chooses it when it is loaded")
        if self.override is not None:
            replacement = torch.full_like(labels, self.override)
        else:
            remaining = torch.tensor(self.remaining, device=labels.device)
            pick = torch.randint(len(remaining), labels.shape, generator=generator, device="cpu").to(labels.device)
            replacement = remaining[pick]
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
