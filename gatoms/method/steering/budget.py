"""α fixed in advance by a behaviour-independent rule: the step size at which the steered model reaches a
fixed KL budget on neutral prompts.

For an atom's direction v, f(α) = max(KL(θ − α·v), KL(θ + α·v)) — the larger of the two signs' KL from the
clean adapter on the dev neutral prompts. The budgeted α* is the largest α found with f(α*) ≤ budget:
the grid is walked upwards until f crosses the budget, then the bracket [lo, hi] is bisected
geometrically ``steps`` times and α* = lo. Below the grid the bracket is halved down until f is under the
budget; above it, doubled up to 16× the grid's top (the budget never reached there is reported). f need
not be monotone; the rule finds a crossing and records every evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_DOUBLINGS = 4
MAX_HALVINGS = 12


@dataclass(frozen=True)
class Budget:
    """The budgeted α of one direction and how it was found."""

    alpha: float
    """α*: the largest α found with max(KL(+α), KL(−α)) ≤ budget."""
    kl: float
    """max(KL(+α*), KL(−α*)) on the prompts the rule saw (dev)."""
    budget: float
    reached: bool
    """False when even the largest α tried stays under the budget (α* is then that α)."""
    trace: list[tuple[float, float, float]] = field(default_factory=list)
    """Every evaluation in order: (α, KL(+α), KL(−α))."""

    def to_json(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "kl": self.kl, "budget": self.budget, "reached": self.reached,
                "trace": [list(t) for t in self.trace]}


def budget_alpha(kl: Callable[[float], float], budget: float, grid: Sequence[float], steps: int) -> Budget:
    """α* for a direction whose KL at signed α is ``kl(α)`` (θ − α·v; α > 0 toward, < 0 away)."""
    if budget <= 0 or not grid or steps < 1:
        raise ValueError("need budget > 0, a non-empty grid and steps ≥ 1")
    trace: list[tuple[float, float, float]] = []
    seen: dict[float, float] = {}

    def f(a: float) -> float:
        if a not in seen:
            up, down = kl(a), kl(-a)
            trace.append((a, up, down))
            seen[a] = max(up, down)
        return seen[a]

    lo, hi = 0.0, None
    for a in sorted(grid):
        if f(a) > budget:
            hi = a
            break
        lo = a
    if hi is None:  # the grid never reaches the budget: look above it
        a = lo
        for _ in range(MAX_DOUBLINGS):
            a *= 2
            if f(a) > budget:
                hi = a
                break
            lo = a
        if hi is None:
            return Budget(lo, seen[lo], budget, False, trace)
    if lo == 0.0:  # even the smallest grid α is over: look below it
        a = hi
        for _ in range(MAX_HALVINGS):
            a /= 2
            if f(a) <= budget:
                lo = a
                break
            hi = a
        if lo == 0.0:
            raise ValueError(f"the KL stays above the budget {budget} down to α = {a:g}; is the budget too small?")
    for _ in range(steps):
        mid = math.sqrt(lo * hi)
        if f(mid) <= budget:
            lo = mid
        else:
            hi = mid
    return Budget(lo, seen[lo], budget, True, trace)
