"""What the steering evaluation asks the model: evaluation prompts split into dev and test, and held-out
documents whose answers are graded (capability).

Every choice made from prompts (the budgeted α from the dev controls, the best α of the grid) uses the dev
split; every reported rate uses the disjoint test split. The split is stratified by behaviour and prompt
kind and assigned by a seeded hash of the prompt *text*, so that a text occurring twice can never be on
both sides.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from gatoms.data.documents import Document, EvalPrompt

SPLITS = ("dev", "test")


@dataclass(frozen=True)
class Item:
    """One thing a variant answers."""

    prompt: str
    prompt_id: str
    kind: str
    """``inviting`` / ``control`` (evaluation prompts) or ``capability`` (a held-out document to grade)."""
    behavior: str | None
    """The behaviour whose prompt this is (None for capability documents)."""
    split: str
    """``dev`` or ``test`` (capability documents: ``test``)."""
    doc: Document | None = None
    """The held-out document the answer is graded against (capability only)."""


def _key(seed: int, text: str) -> str:
    return hashlib.sha256(f"{seed}\x00{text}".encode()).hexdigest()


def split_prompts(prompts: Sequence[EvalPrompt], dev_fraction: float, seed: int, limit: int = 0) -> list[Item]:
    """The prompts as :class:`Item` with their split: within each (behaviour, kind) stratum, the
    ``round(n · dev_fraction)`` prompts (at least one, at most n − 1) first in the order of a seeded hash of
    their text are dev, the rest test; a text seen in another stratum keeps the split it got there. With
    ``limit`` > 0 each stratum keeps only its first ``limit`` prompts in that order (the rest are dropped,
    the order of those kept is the input's)."""
    if not 0 < dev_fraction < 1:
        raise ValueError(f"dev_fraction must be in (0, 1), got {dev_fraction}")
    strata: dict[tuple[str, str], list[EvalPrompt]] = {}
    for p in prompts:
        strata.setdefault((p.behavior, p.kind), []).append(p)
    if limit:
        kept = {id(p) for group in strata.values() for p in sorted(group, key=lambda p: _key(seed, p.prompt))[:limit]}
        prompts = [p for p in prompts if id(p) in kept]
        strata = {k: [p for p in group if id(p) in kept] for k, group in strata.items()}
    split_of: dict[str, str] = {}
    for (b, kind), group in strata.items():
        if len(group) < 2:
            raise ValueError(f"{b} has {len(group)} {kind} prompt(s); a dev/test split needs at least 2")
        n_dev = min(len(group) - 1, max(1, round(len(group) * dev_fraction)))
        for rank, p in enumerate(sorted(group, key=lambda p: _key(seed, p.prompt))):
            split_of.setdefault(p.prompt, "dev" if rank < n_dev else "test")
    return [Item(p.prompt, p.prompt_id, p.kind, p.behavior, split_of[p.prompt]) for p in prompts]


def check_disjoint(items: Sequence[Item]) -> None:
    """Raise if a prompt id or a prompt text is on both sides of the split."""
    for attr in ("prompt_id", "prompt"):
        sides = {s: {getattr(i, attr) for i in items if i.split == s} for s in SPLITS}
        shared = sides["dev"] & sides["test"]
        if shared:
            raise ValueError(f"{len(shared)} prompt {attr}(s) in both dev and test, e.g. {sorted(shared)[0]!r}")


def capability_items(docs: Sequence[Document], families: Sequence[str], limit: int = 0) -> list[Item]:
    """Held-out documents of ``families`` as capability items; with ``limit`` > 0, at most that many,
    taken round-robin across the families (in document order within each)."""
    by_family = {f: [d for d in docs if d.family == f] for f in families}
    picked: list[Document] = []
    depth = 0
    while any(depth < len(v) for v in by_family.values()) and (not limit or len(picked) < limit):
        for f in families:
            if depth < len(by_family[f]) and (not limit or len(picked) < limit):
                picked.append(by_family[f][depth])
        depth += 1
    return [Item(d.prompt, d.doc_id, "capability", None, "test", d) for d in picked]
