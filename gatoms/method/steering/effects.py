"""Signed and symmetric effects of steering, with paired bootstrap intervals over prompts.

At step size α, per prompt i (hits y ∈ {0, 1}, or the mean over samples):

    signed    e_i = (y_i(+α) − y_i(−α)) / 2          what steering *toward* does that steering *away* does not
    symmetric s_i = (y_i(+α) + y_i(−α)) / 2 − y_i(0)  what both signs do alike: breaking the model moves this

A behaviour that both signs suppress (the model breaking either way) has a large negative symmetric part
and a signed part near 0; steering in the named direction shows as a positive signed part (toward raises
the rate, away lowers it). Intervals resample the prompts with replacement (the same resample for every
statistic, hence paired), seeded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def per_prompt(records: Iterable[dict[str, Any]], behavior: str, kind: str, alphas: Sequence[float],
               prompt_kind: str = "inviting", split: str = "test", field: str = "detected") -> tuple[list[str], np.ndarray]:
    """Prompt ids and the (n_prompts, len(alphas)) matrix of each prompt's mean ``field`` at each signed α of
    one direction (α = 0: the clean adapter's records). Every prompt must have been answered at every α."""
    want = {float(a): j for j, a in enumerate(alphas)}
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, np.ndarray] = {}
    for r in records:
        if r["prompt_kind"] != prompt_kind or r["split"] != split or r["behavior"] != behavior:
            continue
        a = float(r["alpha"])
        if (a == 0.0 and r["kind"] != "clean") or (a != 0.0 and r["kind"] != kind) or a not in want:
            continue
        pid = r["prompt_id"]
        if pid not in sums:
            sums[pid], counts[pid] = np.zeros(len(alphas)), np.zeros(len(alphas))
        sums[pid][want[a]] += float(r[field])
        counts[pid][want[a]] += 1
    if not sums:
        raise ValueError(f"no {split} {prompt_kind} records of {behavior}/{kind} at α {list(alphas)}")
    ids = sorted(sums)
    c = np.stack([counts[i] for i in ids])
    if (c == 0).any():
        missing = [ids[i] for i in np.nonzero((c == 0).any(1))[0]][:3]
        raise ValueError(f"{behavior}/{kind}: prompts without an answer at some α of {list(alphas)}: {missing}")
    return ids, np.stack([sums[i] for i in ids]) / c


def bootstrap_ci(values: np.ndarray, n_boot: int, seed: int, level: float = 0.95) -> np.ndarray:
    """Percentile intervals of the column means of ``values`` (n, s), resampling rows (paired): (s, 2)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] == 0:
        raise ValueError(f"values must be (n ≥ 1, s), got shape {values.shape}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, values.shape[0], size=(n_boot, values.shape[0]))  # (B, n)
    means = values[idx].mean(axis=1)  # (B, s)
    tail = 100 * (1 - level) / 2
    return np.percentile(means, [tail, 100 - tail], axis=0).T


@dataclass(frozen=True)
class Effect:
    """One direction at one step size α on one prompt set: rates and effects with paired intervals."""

    alpha: float
    n: int
    """Prompts."""
    base: float
    toward: float
    """Rate at +α (θ − α·v)."""
    away: float
    """Rate at −α (θ + α·v)."""
    signed: float
    """mean((y(+α) − y(−α)) / 2)."""
    signed_ci: tuple[float, float]
    symmetric: float
    """mean((y(+α) + y(−α)) / 2 − y(0))."""
    symmetric_ci: tuple[float, float]
    toward_shift: float
    """rate(+α) − base."""
    toward_ci: tuple[float, float]
    away_shift: float
    """rate(−α) − base."""
    away_ci: tuple[float, float]

    def significant(self) -> bool:
        """The signed effect's interval lies above 0: steering in the named direction."""
        return self.signed_ci[0] > 0

    def to_json(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def effect(y_plus: np.ndarray, y_minus: np.ndarray, y_base: np.ndarray, alpha: float, n_boot: int, seed: int,
           level: float = 0.95) -> Effect:
    """The :class:`Effect` of per-prompt hits at +α, −α and α = 0 (each (n,), the same prompts in order)."""
    y_plus, y_minus, y_base = (np.asarray(y, dtype=np.float64) for y in (y_plus, y_minus, y_base))
    if not (y_plus.shape == y_minus.shape == y_base.shape) or y_plus.ndim != 1:
        raise ValueError("y_plus, y_minus and y_base must be (n,) over the same prompts")
    stats = np.stack([(y_plus - y_minus) / 2, (y_plus + y_minus) / 2 - y_base, y_plus - y_base, y_minus - y_base], 1)
    ci = bootstrap_ci(stats, n_boot, seed, level)
    m = stats.mean(0)
    pair = [(float(lo), float(hi)) for lo, hi in ci]
    return Effect(float(alpha), len(y_base), float(y_base.mean()), float(y_plus.mean()), float(y_minus.mean()),
                  float(m[0]), pair[0], float(m[1]), pair[1], float(m[2]), pair[2], float(m[3]), pair[3])


def effect_of(records: Sequence[dict[str, Any]], behavior: str, kind: str, alpha: float, n_boot: int, seed: int,
              level: float = 0.95, prompt_kind: str = "inviting", split: str = "test") -> Effect:
    """:func:`effect` of one direction kind of ``behavior`` at ±``alpha`` from the evaluation records."""
    _, y = per_prompt(records, behavior, kind, (alpha, -alpha, 0.0), prompt_kind, split)
    return effect(y[:, 0], y[:, 1], y[:, 2], alpha, n_boot, seed, level)


def signed_effect(records: Sequence[dict[str, Any]], behavior: str, kind: str, alpha: float,
                  prompt_kind: str = "inviting", split: str = "test") -> float:
    """The signed effect alone (no interval): mean over prompts of (y(+α) − y(−α)) / 2."""
    _, y = per_prompt(records, behavior, kind, (alpha, -alpha), prompt_kind, split)
    return float(((y[:, 0] - y[:, 1]) / 2).mean())
