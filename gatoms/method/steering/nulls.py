"""Nulls at matched α: what an atom's effect is worth against directions that are not that atom.

Three kinds (:data:`gatoms.method.steering.config.NULL_KINDS`), each drawn ``n`` times per behaviour and
steered exactly like the atom (same α, both signs, same prompts):

- ``random`` — Gaussian over the whole LoRA space with the atom vector's norm in every module. Most of it
  falls outside the k eigen-directions per module that atoms live in, so it is the weakest null.
- ``subspace`` — Gaussian in the whitened top-k space (the space of the atoms), unprojected with the same
  :class:`gatoms.method.ekfac.Projection` and rescaled to the atom's norm in every module.
- ``atoms`` — other atoms of the dictionary, unprojected like the atom: drawn without replacement from
  the atoms with active documents whose top documents do not show the behaviour (detector share below
  ``min_share``), so a second atom of the same behaviour is not counted against the first.

The atom's signed effect is then placed in each null's distribution of signed effects at the same α: the
empirical p-value (1 + #{null ≥ atom}) / (1 + n) and the percentile (share of null effects below it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from gatoms.lm.layout import Layout
from gatoms.method.steering.config import NULL_KINDS
from gatoms.method.steering.variants import random_direction


def _generator(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), *map(int, keys)]))


def match_module_norms(u: torch.Tensor, v: torch.Tensor, layout: Layout) -> torch.Tensor:
    """``u`` rescaled module by module to ``v``'s norm in each module (a module where either is zero: 0)."""
    out = torch.zeros(layout.n_params, dtype=torch.float32)
    for m in layout:
        s = layout.slice(m)
        nu, nv = float(u[s].double().norm()), float(v[s].double().norm())
        if nu > 0 and nv > 0:
            out[s] = (u[s].double() * (nv / nu)).float()
    return out


def null_directions(kind: str, v: torch.Tensor, layout: Layout, n: int, seed: int, proj: Any = None,
                    atoms: np.ndarray | None = None, candidates: Sequence[int] = ()) -> list[tuple[str, torch.Tensor]]:
    """``n`` null directions of ``kind`` for the atom vector ``v`` (D,), as (label, direction) pairs; the label
    is ``kind:draw`` (``random:3``, ``subspace:0``) or, for other atoms, ``atoms:<atom id>``.

    ``subspace`` needs ``proj`` (the Projection the atoms are unprojected with); ``atoms`` needs ``proj``,
    the dictionary ``atoms`` (n_atoms, M·k) and ``candidates`` (atom ids allowed as nulls; at most that many
    are drawn). Seeded: the same seed gives the same directions.
    """
    if kind not in NULL_KINDS:
        raise ValueError(f"unknown null kind {kind!r}; kinds are {', '.join(NULL_KINDS)}")
    rng = _generator(seed, NULL_KINDS.index(kind))
    if kind == "random":
        seeds = rng.integers(0, 2**31 - 1, size=n)
        return [(f"random:{j}", random_direction(v, layout, int(s))) for j, s in enumerate(seeds)]
    if proj is None:
        raise ValueError(f"the {kind!r} null needs the Projection the atoms are unprojected with")
    if kind == "subspace":
        z = rng.standard_normal((n, proj.dim))  # (n, M·k)
        z /= np.linalg.norm(z, axis=1, keepdims=True)
        us = proj.unproject(z) if n else torch.zeros(0, layout.n_params)  # (n, D)
        return [(f"subspace:{j}", match_module_norms(us[j], v, layout)) for j in range(n)]
    if atoms is None:
        raise ValueError("the 'atoms' null needs the dictionary's atoms")
    pool = np.asarray(sorted(candidates), dtype=int)
    picked = rng.choice(pool, size=min(n, len(pool)), replace=False) if len(pool) else pool
    return [(f"atoms:{int(j)}", proj.unproject(np.asarray(atoms[int(j)]))) for j in picked]


def null_candidates(table: Sequence[Any], labels: np.ndarray, exclude: Sequence[int], min_share: float) -> list[int]:
    """Atom ids for the ``atoms`` null of one behaviour: atoms with active documents, not in ``exclude``,
    whose top documents show the behaviour (``labels`` (N,) bool) less often than ``min_share``."""
    out = []
    for r in table:
        if r.atom in exclude or r.active_docs < 2 or not r.top_docs:
            continue
        if float(np.mean(labels[np.asarray(r.top_docs)])) < min_share:
            out.append(int(r.atom))
    return out


@dataclass(frozen=True)
class NullResult:
    """The atom's signed effect against one null at the same α."""

    kind: str
    n: int
    """Null directions drawn."""
    atom_effect: float
    p_value: float
    """(1 + #{null effect ≥ atom effect}) / (1 + n): small when the atom steers more than any null does."""
    percentile: float
    """Share of null effects strictly below the atom's, in percent."""
    median: float
    lo: float
    """5th percentile of the null effects."""
    hi: float
    """95th percentile of the null effects."""
    effects: list[float] = field(default_factory=list)
    """Every null direction's signed effect, in draw order."""
    labels: list[str] = field(default_factory=list)
    """Which direction each is (``random:3``, ``subspace:0``, ``atoms:212``)."""
    kl: list[float] = field(default_factory=list)
    """KL on the dev neutral prompts of the first few draws, max over the signs (their damage; the atom's
    there is the budget)."""

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def null_test(kind: str, atom_effect: float, effects: Sequence[float], labels: Sequence[str] = (),
              kl: Sequence[float] = ()) -> NullResult:
    """Place ``atom_effect`` among the null ``effects`` (larger = more steering in the named direction)."""
    e = np.asarray(effects, dtype=np.float64)
    if e.size == 0:
        nan = float("nan")
        return NullResult(kind, 0, float(atom_effect), nan, nan, nan, nan, nan, [], list(labels), list(kl))
    return NullResult(kind, int(e.size), float(atom_effect), float((1 + (e >= atom_effect).sum()) / (1 + e.size)),
                      float(100 * (e < atom_effect).mean()), float(np.median(e)), float(np.percentile(e, 5)),
                      float(np.percentile(e, 95)), [float(x) for x in e], list(labels), [float(x) for x in kl])
