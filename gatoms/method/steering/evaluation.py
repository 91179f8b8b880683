"""Running the steering evaluation: generate every job's answers, score them, and count rates.

A record is one response: ``variant`` (name), ``kind`` (``clean``, ``atom``, ``oracle``, ``preconditioned``,
``composition`` or a null ``random:3`` / ``subspace:0`` / ``atoms:212``), ``behavior`` (the prompt's, or
for a capability document the variant's), ``alpha`` (signed; 0 for the clean adapter), ``prompt_id``,
``prompt_kind`` (``inviting``, ``control``, ``capability``), ``split`` (``dev``/``test``), ``sample``,
``prompt``, ``response``, ``detected`` (the prompt's behaviour detector; None for capability documents),
``correct`` (the grader's verdict on a capability document; None otherwise) and ``degenerate``
(:func:`gatoms.data.behaviors.degenerate`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from gatoms.data.behaviors import degenerate, detect
from gatoms.data.documents import Document
from gatoms.lm.adapters import Variant
from gatoms.method.stats import Rate
from gatoms.method.steering.splits import Item

KINDS: tuple[str, ...] = ("inviting", "control")
"""Evaluation prompt kinds: prompts that invite the behaviour, neutral controls."""

RateKey = tuple[str, str, float, str]
"""(behavior, direction kind, signed α, prompt kind) — e.g. ("bullets", "atom", 2.0, "inviting")."""


def evaluate(backend: Any, jobs: Sequence[tuple[Variant, Sequence[Item]]],
             grade: Callable[[Document, str], bool] | None = None) -> list[dict[str, Any]]:
    """Generate every job's responses (one ``backend.generate`` call) and score each (see the module
    docstring for the record). ``grade`` scores capability items; without it they are not graded."""
    answers = backend.generate([(v, [i.prompt for i in items]) for v, items in jobs])
    records = []
    for (v, items), per_item in zip(jobs, answers):
        for item, samples in zip(items, per_item):
            for s, text in enumerate(samples):
                capability = item.kind == "capability"
                records.append({
                    "variant": v.name, "kind": v.kind, "behavior": v.behavior if capability else item.behavior,
                    "alpha": float(v.alpha), "prompt_id": item.prompt_id, "prompt_kind": item.kind,
                    "split": item.split, "sample": s, "prompt": item.prompt, "response": text,
                    "detected": None if capability else bool(detect(item.behavior, text)),
                    "correct": bool(grade(item.doc, text)) if capability and grade is not None else None,
                    "degenerate": degenerate(text),
                })
    return records


def rates(records: Iterable[dict[str, Any]], field: str = "detected", split: str | None = "test") -> dict[RateKey, Rate]:
    """Hits → rates per (behavior, direction kind, signed α, prompt kind), on ``split`` (None: both).

    The clean adapter's records count for every direction kind at α = 0; capability and composition
    records are left out. ``field`` counts another boolean of the records, e.g. ``degenerate``.
    """
    counts: dict[RateKey, list[int]] = {}
    recs = [r for r in records if r["prompt_kind"] in KINDS and r["kind"] != "composition"
            and (split is None or r["split"] == split)]
    kinds = sorted({r["kind"] for r in recs if r["kind"] != "clean"})
    for r in recs:
        for owner in (kinds if r["kind"] == "clean" else [r["kind"]]):
            c = counts.setdefault((r["behavior"], owner, float(r["alpha"]), r["prompt_kind"]), [0, 0])
            c[0] += bool(r[field])
            c[1] += 1
    return {k: Rate(*v) for k, v in counts.items()}


def curve(table: dict[RateKey, Rate], behavior: str, kind: str, prompt_kind: str = "inviting") -> dict[float, Rate]:
    """Signed α → rate for one behaviour, direction kind and prompt kind (α = 0 is the clean adapter)."""
    return {a: r for (b, k, a, p), r in sorted(table.items()) if b == behavior and k == kind and p == prompt_kind}


def best(curve_: dict[float, Rate], sign: int) -> tuple[float, Rate]:
    """The α of one sign with the highest rate (toward, sign +1) or lowest (away, −1); ties → smaller |α|."""
    items = [(a, r) for a, r in curve_.items() if np.sign(a) == sign]
    if not items:
        raise ValueError(f"no variant with sign {sign:+d} in the curve")
    items.sort(key=lambda t: (-sign * t[1].rate, abs(t[0])))
    return items[0]


def composition_rates(records: Iterable[dict[str, Any]], behavior: str, split: str = "test") -> dict[str, Rate]:
    """Rates on one behaviour's prompts (inviting / control) for the composition variant."""
    counts: dict[str, list[int]] = {}
    for r in records:
        if r["kind"] == "composition" and r["behavior"] == behavior and r["prompt_kind"] in KINDS \
                and r["split"] == split:
            c = counts.setdefault(r["prompt_kind"], [0, 0])
            c[0] += bool(r["detected"])
            c[1] += 1
    return {k: Rate(*v) for k, v in counts.items()}
