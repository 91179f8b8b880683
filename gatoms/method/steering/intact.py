"""Intact = capability kept: a steered variant is judged on what it does *off* its behaviour.

- **KL** from the clean adapter on the test neutral prompts (:class:`gatoms.lm.divergence.Divergence`)
  at most ``kl_intact`` × the KL budget (nats per token);
- with a grader (the synthetic world: :func:`gatoms.world.is_correct` on held-out documents of the
  deterministic families): the share answered right at most ``max_capability_drop`` below the clean
  adapter's;
- without one (real data): held-out perplexity at most ``max_ppl_ratio`` times the clean adapter's.

Short garbage, empty answers and another family's template all lower the capability score or raise the
KL; running to the token limit is not the test.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any



@dataclass(frozen=True)
class IntactRule:
    """The thresholds of intact (from the steering config) and whether a grader exists."""

    kl_max: float
    max_capability_drop: float
    max_ppl_ratio: float
    graded: bool
    """True: capability (answers graded) decides with the KL; False: held-out perplexity does."""

    @classmethod
    def from_config(cls, cfg: Any, graded: bool, budget: float) -> IntactRule:
        """The rule of a steering config whose KL budget resolved to ``budget``."""
        return cls(cfg.kl_intact * budget, cfg.max_capability_drop, cfg.max_ppl_ratio, graded)

    def describe(self) -> str:
        second = (f"held-out deterministic answers right at most {100 * self.max_capability_drop:.0f} points "
                  "below the clean adapter's" if self.graded else
                  f"held-out perplexity at most {self.max_ppl_ratio:g}× the clean adapter's")
        return f"KL from the clean adapter on the test neutral prompts ≤ {self.kl_max:.3g} nats/token and {second}"


@dataclass(frozen=True)
class Intactness:
    """The verdict on one variant (or the worse of a ± pair)."""

    intact: bool
    kl: float
    """KL on the test neutral prompts (nats per token)."""
    capability: float | None
    """Share of the graded held-out documents answered right (None without a grader)."""
    capability_drop: float | None
    """Clean share minus this one (positive = worse)."""
    ppl_ratio: float
    """Held-out perplexity ÷ the clean adapter's (NaN without held-out documents)."""
    reasons: tuple[str, ...] = ()
    """What failed (empty when intact)."""

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "reasons": list(self.reasons)}


def judge(rule: IntactRule, kl: float, nll: float, clean_nll: float, capability: float | None = None,
          clean_capability: float | None = None) -> Intactness:
    """Whether a variant with this KL, held-out loss and capability keeps the model intact."""
    reasons = []
    if not kl <= rule.kl_max:
        reasons.append(f"KL {kl:.3g} > {rule.kl_max:g}")
    ratio = math.exp(nll - clean_nll) if math.isfinite(nll) and math.isfinite(clean_nll) else float("nan")
    drop = None
    if rule.graded:
        if capability is None or clean_capability is None:
            raise ValueError("a graded intact rule needs the capability of the variant and of the clean adapter")
        drop = clean_capability - capability
        if drop > rule.max_capability_drop + 1e-12:
            reasons.append(f"capability {100 * capability:.0f}% vs clean {100 * clean_capability:.0f}%")
    elif not ratio <= rule.max_ppl_ratio:
        reasons.append(f"held-out perplexity ×{ratio:.3g} > ×{rule.max_ppl_ratio:g}")
    return Intactness(not reasons, float(kl), capability, drop, ratio, tuple(reasons))


def worse(a: Intactness, b: Intactness) -> Intactness:
    """The verdict on a ± pair: intact only if both are; the larger KL, drop and ratio."""
    def mx(x: float | None, y: float | None) -> float | None:
        return None if x is None or y is None else max(x, y)

    return Intactness(a.intact and b.intact, max(a.kl, b.kl),
                      None if a.capability is None or b.capability is None else min(a.capability, b.capability),
                      mx(a.capability_drop, b.capability_drop),
                      max(a.ppl_ratio, b.ppl_ratio) if math.isfinite(a.ppl_ratio) and math.isfinite(b.ppl_ratio)
                      else float("nan"),
                      tuple(dict.fromkeys(a.reasons + b.reasons)))


def capability(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Variant name → {held-out document id: share of its answers graded correct} (capability records)."""
    sums: dict[str, dict[str, list[float]]] = {}
    for r in records:
        if r["prompt_kind"] == "capability" and r["correct"] is not None:
            c = sums.setdefault(r["variant"], {}).setdefault(r["prompt_id"], [0.0, 0.0])
            c[0] += bool(r["correct"])
            c[1] += 1
    return {v: {d: k / n for d, (k, n) in docs.items()} for v, docs in sums.items()}


def paired_capability(graded: dict[str, dict[str, float]], name: str) -> tuple[float, float, int] | None:
    """(share right for variant ``name``, the clean adapter's share on the same documents, documents) —
    None when the variant has no graded answers."""
    mine, clean = graded.get(name), graded.get("clean", {})
    if not mine:
        return None
    missing = sorted(set(mine) - set(clean))
    if missing:
        raise ValueError(f"{name}: held-out documents {missing[:3]} have no graded clean answer to compare with")
    return (sum(mine.values()) / len(mine), sum(clean[d] for d in mine) / len(mine), len(mine))
