"""What the fine-tuned model does before anything is steered: the held-out check per task family and the
behaviours' base rates (step 00, and the capability check of step 06).

Both generate greedily (:func:`gatoms.lm.generation.generate`) and score with functions they are given,
so they work for the synthetic world (its grader, :func:`gatoms.world.is_correct`) and for real data.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence

from torch import nn

from gatoms.data.behaviors import BEHAVIORS, rate
from gatoms.data.documents import Document, EvalPrompt
from gatoms.lm.generation import generate

DETERMINISTIC_SUMMARY = ("arithmetic", "factual_qa", "yes_no")
"""The families whose held-out mean the report shows as the model's competence."""


def heldout_check(model: nn.Module, tokenizer, docs: Sequence[Document], grade: Callable[[Document, str], bool],
                  max_new_tokens: int, batch_size: int = 64) -> tuple[dict[str, float], list[str]]:
    """Family → fraction of ``docs`` whose greedy answer ``grade`` accepts, and the answers (doc order)."""
    answers = generate(model, tokenizer, [d.prompt for d in docs], max_new_tokens, batch_size)
    per_family: dict[str, list[bool]] = collections.defaultdict(list)
    for d, a in zip(docs, answers):
        per_family[d.family or "(none)"].append(bool(grade(d, a)))
    return {fam: round(sum(v) / len(v), 4) for fam, v in per_family.items()}, answers


def behavior_rates(model: nn.Module, tokenizer, prompts: Sequence[EvalPrompt], max_new_tokens: int,
                   batch_size: int = 64) -> tuple[dict[str, float], list[str]]:
    """Behaviour → the share of its prompts (among ``prompts``) whose greedy answer shows it; the answers."""
    answers = generate(model, tokenizer, [p.prompt for p in prompts], max_new_tokens, batch_size)
    rates = {b: round(rate(b, [a for p, a in zip(prompts, answers) if p.behavior == b]), 4) for b in BEHAVIORS
             if any(p.behavior == b for p in prompts)}
    return rates, answers


def deterministic_mean(heldout: dict[str, float]) -> float | None:
    """Mean held-out score over :data:`DETERMINISTIC_SUMMARY` (None if none of them was checked)."""
    vals = [heldout[f] for f in DETERMINISTIC_SUMMARY if f in heldout]
    return round(sum(vals) / len(vals), 4) if vals else None
