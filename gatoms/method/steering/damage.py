"""The damage side of step 06, measured by forward passes: the KL of each variant from the clean adapter on
neutral prompts and its held-out loss (:class:`gatoms.lm.divergence.Divergence`), on the dev split (for
the budgeted α) and the test split (for intact)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from gatoms.lm.adapters import Variant
from gatoms.lm.divergence import Damage, Divergence
from gatoms.method.steering.splits import Item

log = logging.getLogger(__name__)


def divergences(model: Any, tokenizer: Any, layout: Any, clean_records: Sequence[dict[str, Any]],
                capability: Sequence[Item], max_tokens: int, batch_size: int) -> dict[str, Divergence]:
    """``dev`` and ``test`` :class:`Divergence`: the control prompts of that split teacher-forced with the
    clean adapter's answers (``clean_records``) and, for test, the capability documents' own responses
    (held-out loss)."""
    out = {}
    for split in ("dev", "test"):
        neutral = [(r["prompt"], r["response"]) for r in clean_records
                   if r["kind"] == "clean" and r["prompt_kind"] == "control" and r["split"] == split and r["sample"] == 0]
        heldout = [(i.prompt, i.doc.response) for i in capability if i.doc is not None] if split == "test" else []
        out[split] = Divergence(model, tokenizer, layout, neutral, heldout, max_tokens, batch_size)
        log.info("%s divergence: %d neutral prompts, %d held-out documents", split, len(neutral), len(heldout))
    return out


def measure_damage(div: Divergence, variants: Sequence[Variant]) -> dict[str, Damage]:
    """Variant name → its :class:`Damage` (``clean`` included: KL 0 and the clean held-out loss)."""
    out = {"clean": div.measure(None, 0.0)}
    for v in variants:
        if v.name not in out:
            out[v.name] = div.measure(v.direction, v.alpha)
    return out


def null_damage(div: Divergence, jobs: Sequence[tuple[Variant, Any]], n_per_kind: int) -> dict[str, Damage]:
    """Variant name → :class:`Damage` for the first ``n_per_kind`` null directions of each kind and behaviour
    (measured on ``div``: the dev neutral prompts, where the atom's KL is the budget)."""
    seen: dict[tuple[str | None, str], list[str]] = {}
    picked = []
    for v, _ in jobs:
        if ":" not in v.kind:
            continue
        kind, label = v.kind.split(":", 1)
        drawn = seen.setdefault((v.behavior, kind), [])
        if label not in drawn:
            drawn.append(label)
        if drawn.index(label) < n_per_kind:
            picked.append(v)
    out = measure_damage(div, picked)
    out.pop("clean")
    return out


def finetune_kl(div: Divergence) -> float:
    """The KL of the clean adapter from the base model on ``div``'s neutral prompts: the adapter removed
    (θ' = θ − 1·θ = 0, so B·A = 0), for the scale of every other KL."""
    theta = div.layout.flatten(div.clean).float()
    return div.measure(theta, 1.0).kl


def resolve_budget(rule: float | str, dev: Divergence) -> float:
    """The KL budget in nats per token: ``rule`` itself, or for ``finetune`` the fine-tuning's own KL on the
    dev neutral prompts (:func:`finetune_kl`)."""
    if rule == "finetune":
        kl = finetune_kl(dev)
        if not kl > 0:
            raise ValueError("the fine-tuning did not move the neutral prompts (KL 0); set steering.kl_budget to a number")
        return kl
    return float(rule)
