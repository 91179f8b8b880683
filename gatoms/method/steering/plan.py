"""What step 06 generates, and at which α: the directions of each behaviour, their budgeted α, and the
generation jobs.

Per behaviour b (atom vector v_b, budgeted α*_b):

============================  =========================================  ======================================
variant                       α                                          answers
============================  =========================================  ======================================
the atom                      every grid α and α*_b, both signs          b's prompts (dev + test), capability
the oracle atom (labels)      its own α*, both signs                     b's prompts, capability
preconditioned unprojection   α*_b, both signs                           b's test prompts
each null direction           α*_b (and ``null_alphas``), both signs     b's test inviting prompts
composition                   each part at its own α*                    the parts' test prompts, capability
============================  =========================================  ======================================

The clean adapter answers everything once, first (its answers to the neutral prompts are what the KL is
measured against). Nulls cost the most (kinds × n_null × 2 × test inviting prompts per behaviour); they
run only where the headline is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from gatoms.lm.adapters import Variant
from gatoms.method.steering.budget import Budget, budget_alpha
from gatoms.method.steering.config import SteeringConfig, parse_composition
from gatoms.method.steering.nulls import null_candidates, null_directions
from gatoms.method.steering.splits import Item
from gatoms.method.steering.variants import composition_variant, match_norm, variant_name

Job = tuple[Variant, list[Item]]


@dataclass
class Directions:
    """Every direction step 06 steers with, keyed by behaviour."""

    atom: dict[str, torch.Tensor]
    """b → the chosen atom unprojected, (D,)."""
    oracle: dict[str, torch.Tensor] = field(default_factory=dict)
    """b → the label-chosen atom unprojected, for behaviours where it is another atom."""
    preconditioned: dict[str, torch.Tensor] = field(default_factory=dict)
    """b → the preconditioned unprojection of the chosen atom, rescaled to its norm."""
    nulls: dict[str, list[tuple[str, torch.Tensor]]] = field(default_factory=dict)
    """b → [(kind label ``random:3`` / ``subspace:0`` / ``atoms:212``, direction)]."""


def build_directions(proj: Any, atoms: np.ndarray, choices: dict[str, Any], oracle: dict[str, Any],
                     table: Sequence[Any], labels: dict[str, np.ndarray], cfg: SteeringConfig) -> Directions:
    """Unproject the chosen atoms (and the oracle's, the preconditioned variant) and draw every null.
    ``labels[b]`` (N,) marks the documents whose response shows b (the detector's view), which keeps
    atoms about b out of b's ``atoms`` null."""
    layout = proj.layout
    d = Directions({b: proj.unproject(atoms[ch.atom]) for b, ch in choices.items()})
    d.oracle = {b: proj.unproject(atoms[ch.atom]) for b, ch in oracle.items() if ch.atom != choices[b].atom}
    if cfg.preconditioned:
        d.preconditioned = {b: match_norm(proj.unproject(atoms[ch.atom], preconditioned=True), d.atom[b])
                            for b, ch in choices.items()}
    for i, (b, ch) in enumerate(choices.items()):
        exclude = {ch.atom} | ({oracle[b].atom} if b in oracle else set())
        cands = null_candidates(table, labels[b], sorted(exclude), cfg.min_share)
        d.nulls[b] = [pair for kind in cfg.null_kinds
                      for pair in null_directions(kind, d.atom[b], layout, cfg.n_null, cfg.seed * 1009 + i, proj,
                                                  atoms, cands)]
    return d


def budgets(kl: Callable[[torch.Tensor, float], float], directions: dict[str, torch.Tensor], budget: float,
            cfg: SteeringConfig) -> dict[str, Budget]:
    """b → the budgeted α of ``directions[b]`` (``kl(v, signed α)`` on the dev neutral prompts)."""
    return {b: budget_alpha(lambda a, v=v: kl(v, a), budget, cfg.alphas, cfg.budget_steps)
            for b, v in directions.items()}


def _pm(b: str, v: torch.Tensor, alphas: Sequence[float], kind: str) -> list[Variant]:
    return [Variant(variant_name(b, kind, s * a), b, v, s * a, kind) for a in alphas for s in (+1, -1)]


def plan_jobs(items: Sequence[Item], capability: Sequence[Item], d: Directions, budget: dict[str, Budget],
              oracle_budget: dict[str, Budget], cfg: SteeringConfig,
              own: dict[str, Sequence[str]] | None = None) -> list[Job]:
    """Every generation job after the clean pass (see the module docstring). ``own[b]`` names the held-out
    families that invite behaviour b: b's variants are not graded on them (capability is measured on prompts
    that are not the behaviour's)."""
    own = own or {}

    def graded(behaviors: Sequence[str]) -> list[Item]:
        skip = {f for b in behaviors for f in own.get(b, ())}
        return [i for i in capability if i.doc is None or i.doc.family not in skip]

    jobs: list[Job] = []
    for b, v in d.atom.items():
        mine = [i for i in items if i.behavior == b]
        test = [i for i in mine if i.split == "test"]
        a_star = budget[b].alpha
        grid = sorted(set(cfg.alphas) | {a_star})
        jobs += [(x, mine + graded([b])) for x in _pm(b, v, grid, "atom")]
        if b in d.oracle:
            jobs += [(x, mine + graded([b])) for x in _pm(b, d.oracle[b], [oracle_budget[b].alpha], "oracle")]
        if b in d.preconditioned:
            jobs += [(x, test) for x in _pm(b, d.preconditioned[b], [a_star], "preconditioned")]
        inviting = [i for i in test if i.kind == "inviting"]
        null_grid = sorted(set(cfg.null_alphas) | {a_star})
        for label, u in d.nulls.get(b, []):
            jobs += [(x, inviting) for x in _pm(b, u, null_grid, label)]
    parts = [(b, s, budget[b].alpha, d.atom[b]) for b, s in parse_composition(cfg.composition) if b in d.atom]
    if len(parts) > 1:
        comp = composition_variant(parts)
        jobs.append((comp, [i for i in items if i.split == "test" and i.behavior in {p[0] for p in parts}]
                     + graded([p[0] for p in parts])))
    return jobs


def damage_variants(jobs: Sequence[Job]) -> list[Variant]:
    """The variants whose KL and held-out loss are measured on the test split: every one but the nulls."""
    return [v for v, _ in jobs if ":" not in v.kind]


def export_jobs(jobs: Sequence[Job], clean_dir: Any, out_root: Any, layout: Any, everything: bool) -> list[Job]:
    """Write each atom's variants as peft adapter folders under ``out_root/<behaviour>/<name>`` (with
    ``everything``, every variant — the vLLM backend serves folders only — the others under
    ``out_root/controls/``); returns the jobs with the written variants' paths."""
    from pathlib import Path

    from gatoms.lm.adapters import export_variants

    out, root = [], Path(out_root)
    for v, items in jobs:
        if v.kind == "atom" or everything:
            folder = root / str(v.behavior) if v.kind == "atom" else root / "controls"
            (v,) = export_variants(clean_dir, folder, layout, [v])
        out.append((v, items))
    return out
