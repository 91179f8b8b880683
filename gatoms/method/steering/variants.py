"""Steering directions and the variants made from them (paper §4.3).

An atom d (a unit vector in the whitened EKFAC space, M·k entries) is unprojected by
:meth:`gatoms.method.ekfac.Projection.unproject` into v ∈ R^D, a direction of the flat LoRA parameters.
Steering perturbs the LoRA factors A and B separately:

    θ' = θ − s·α·v          s = +1 "toward" (a training step on the atom's top documents), −1 "away"

so the change of the effective weight B·A is bilinear in α. For each atom this gives 2·len(alphas)
steered adapters plus the clean one (11 variants for the paper's grid 0.5, 1, 2, 5, 10). The controls:
the nulls (:mod:`.nulls`), the preconditioned unprojection rescaled to the same norm, and several atoms at
once.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from gatoms.lm.adapters import Variant
from gatoms.lm.layout import Layout


def variant_name(behavior: str, kind: str, alpha: float) -> str:
    """``bullets-toward-2``, ``bullets-random1-away-0.5``, …; filesystem- and vLLM-safe."""
    if alpha == 0:
        return "clean"
    direction = "toward" if alpha > 0 else "away"
    prefix = behavior if kind == "atom" else f"{behavior}-{kind.replace(':', '')}"
    return f"{prefix}-{direction}-{abs(alpha):g}"


def clean_variant() -> Variant:
    return Variant(name="clean", kind="clean")


def steering_variants(
    behavior: str, v: torch.Tensor, alphas: Sequence[float], kind: str = "atom", clean: bool = True
) -> list[Variant]:
    """The clean adapter (if ``clean``) then θ − α·v (toward) and θ + α·v (away) for every α."""
    out = [clean_variant()] if clean else []
    for a in alphas:
        for s in (+1, -1):
            alpha = s * float(a)
            out.append(Variant(variant_name(behavior, kind, alpha), behavior, v, alpha, kind))
    return out


# ---- directions ------------------------------------------------------------------------------------


def module_norms(v: torch.Tensor, layout: Layout) -> dict[str, float]:
    """Frobenius norm of the vector's block in every module."""
    return {k: float(b.norm()) for k, b in layout.unflatten(v.detach().float()).items()}


def random_direction(v: torch.Tensor, layout: Layout, seed: int) -> torch.Tensor:
    """A Gaussian direction rescaled to the same norm as ``v`` in every module (the random control)."""
    g = torch.Generator().manual_seed(int(seed))
    blocks = {}
    for m in layout:
        target = float(v[layout.slice(m)].float().norm())
        r = torch.randn(m.size, generator=g, dtype=torch.float64)
        blocks[m.name] = (r * (target / float(r.norm()))).float().reshape(m.shape) if target > 0 else torch.zeros(m.shape)
    return layout.flatten(blocks)


def match_norm(v: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``v`` rescaled to the global norm of ``reference`` (so that α means the same step length)."""
    n = float(v.float().norm())
    if n == 0:
        raise ValueError("cannot rescale a zero vector")
    return v.float() * (float(reference.float().norm()) / n)


def composition_variant(parts: Sequence[tuple[str, int, float, torch.Tensor]]) -> Variant:
    """Several atoms at once: θ' = θ − Σ s_b·α_b·v_b, from (behavior, sign, α, v_b) parts."""
    direction = sum(s * a * v.float() for _, s, a, v in parts)
    name = "composition-" + "+".join(f"{b}-{'toward' if s > 0 else 'away'}-{a:g}" for b, s, a, _ in parts)
    return Variant(name=name, behavior=None, direction=direction, alpha=1.0, kind="composition")
