"""From the evaluation's records to step 06's numbers: each behaviour's atom at its budgeted α (effects with
intervals, nulls, intactness, the verdict), its best intact α of the grid (chosen on dev, measured on
test), its curve, the oracle rows, the composition and the goals."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gatoms.lm.divergence import Damage
from gatoms.method.stats import Rate
from gatoms.method.steering.budget import Budget
from gatoms.method.steering.choice import AtomChoice
from gatoms.method.steering.config import SteeringConfig, parse_composition
from gatoms.method.steering.effects import effect_of, signed_effect
from gatoms.method.steering.evaluation import composition_rates, curve, rates
from gatoms.method.steering.intact import Intactness, IntactRule, capability, judge, paired_capability, worse
from gatoms.method.steering.metrics import BestCell, CompositionPart, CurvePoint, SteeredAtom
from gatoms.method.steering.nulls import null_test
from gatoms.method.steering.plan import Directions
from gatoms.method.steering.variants import variant_name


@dataclass
class Evaluation:
    """Everything the summaries read: the records (indexed), the damage of each measured variant and the
    clean adapter's reference numbers."""

    records: list[dict[str, Any]]
    damage: dict[str, Damage]
    """Variant name → its KL and held-out loss on the test neutral prompts / held-out documents."""
    rule: IntactRule
    cfg: SteeringConfig

    def __post_init__(self) -> None:
        self.by: dict[tuple[str | None, str], list[dict[str, Any]]] = defaultdict(list)
        for r in self.records:
            self.by[(r["behavior"], r["kind"])].append(r)
        self.graded = capability(self.records)
        clean = self.graded.get("clean")
        self.capability_clean = sum(clean.values()) / len(clean) if clean and self.rule.graded else None
        self.test, self.dev = rates(self.records, split="test"), rates(self.records, split="dev")
        self.degenerate = rates(self.records, "degenerate", split="test")

    def of(self, b: str, kind: str) -> list[dict[str, Any]]:
        """The clean records and ``kind``'s records of behaviour b."""
        return self.by[(b, "clean")] + self.by[(b, kind)]

    def intactness(self, name: str) -> Intactness:
        """The intact verdict on one variant: its capability against the clean adapter's on the same held-out
        documents (a graded rule needs its capability records)."""
        d, clean = self.damage[name], self.damage["clean"]
        cap = paired_capability(self.graded, name) if self.rule.graded else None
        return judge(self.rule, d.kl, d.nll, clean.nll, cap[0] if cap else None, cap[1] if cap else None)

    def clean_capability(self, name: str) -> float | None:
        """The clean adapter's share right on the documents variant ``name`` was graded on."""
        cap = paired_capability(self.graded, name) if self.rule.graded else None
        return cap[1] if cap else None

    def pair(self, b: str, kind: str, alpha: float) -> Intactness:
        return worse(self.intactness(variant_name(b, kind, alpha)), self.intactness(variant_name(b, kind, -alpha)))


def _ci(r: Rate) -> list[float]:
    return [float(x) for x in r.ci]


def _atom_row(ev: Evaluation, b: str, kind: str, choice: AtomChoice, budget: Budget, seed: int) -> SteeredAtom:
    cfg = ev.cfg
    a = budget.alpha
    e = effect_of(ev.of(b, kind), b, kind, a, cfg.n_boot, seed, 1 - cfg.significance)
    inv, ctl = curve(ev.test, b, kind, "inviting"), curve(ev.test, b, kind, "control")
    deg = curve(ev.degenerate, b, kind, "inviting")
    it = ev.pair(b, kind, a)
    return SteeredAtom(
        atom=choice.atom, coherence=choice.coherence, chosen_by=choice.method, share=choice.share,
        accepted=choice.accepted, alpha=a, budget_reached=budget.reached, kl_dev=budget.kl, n=e.n,
        base=inv[0.0].rate, base_ci=_ci(inv[0.0]), toward=inv[a].rate, toward_ci=_ci(inv[a]), away=inv[-a].rate,
        away_ci=_ci(inv[-a]), signed=e.signed, signed_ci=list(e.signed_ci), symmetric=e.symmetric,
        symmetric_ci=list(e.symmetric_ci), toward_shift=e.toward_shift, toward_shift_ci=list(e.toward_ci),
        away_shift=e.away_shift, away_shift_ci=list(e.away_ci),
        control_base=ctl[0.0].rate if 0.0 in ctl else float("nan"),
        control_toward=ctl[a].rate if a in ctl else float("nan"),
        control_away=ctl[-a].rate if -a in ctl else float("nan"),
        degenerate_toward=deg[a].rate, degenerate_away=deg[-a].rate, intact=it.intact, kl=it.kl,
        capability=it.capability, capability_clean=ev.clean_capability(variant_name(b, kind, a)), ppl_ratio=it.ppl_ratio,
        intact_reasons=list(it.reasons), significant=e.significant(), beats_nulls=None, steered=False, verdict="")


def _nulls(ev: Evaluation, b: str, row: SteeredAtom, d: Directions) -> None:
    by_kind: dict[str, list[str]] = {}
    for label, _ in d.nulls.get(b, []):
        by_kind.setdefault(label.split(":", 1)[0], []).append(label)
    for kind in ev.cfg.null_kinds:
        labels = by_kind.get(kind, [])
        effects = [signed_effect(ev.by[(b, lab)], b, lab, row.alpha) for lab in labels]
        kls = [max(ev.damage[variant_name(b, lab, s * row.alpha)].kl for s in (1, -1)) for lab in labels
               if variant_name(b, lab, row.alpha) in ev.damage]
        row.nulls[kind] = null_test(kind, row.signed, effects, labels, kls)
    ps = [n.p_value for n in row.nulls.values() if n.n > 0]
    row.beats_nulls = bool(all(p < ev.cfg.significance for p in ps)) if ps else None


def _verdict(row: SteeredAtom, significance: float) -> None:
    why = []
    if not row.intact:
        why.append("not intact at the budgeted α (" + "; ".join(row.intact_reasons) + ")")
    if not row.significant:
        why.append(f"signed effect {100 * row.signed:+.0f}pp, interval [{100 * row.signed_ci[0]:+.0f}, "
                   f"{100 * row.signed_ci[1]:+.0f}] includes 0 or lies below it")
    for kind, n in row.nulls.items():
        if n.n > 0 and not n.p_value < significance:
            why.append(f"does not beat the {kind} null (p = {n.p_value:.2f}, percentile {n.percentile:.0f})")
    row.steered = bool(row.intact and row.significant and row.beats_nulls is not False)
    row.verdict = "steered" if row.steered else "not steered: " + "; ".join(why)


def _best(ev: Evaluation, b: str, sign: int, intact_only: bool) -> BestCell | None:
    dev, test = curve(ev.dev, b, "atom", "inviting"), curve(ev.test, b, "atom", "inviting")
    cands = []
    for a in dev:
        if np.sign(a) != sign:
            continue
        ok = ev.intactness(variant_name(b, "atom", a)).intact
        if ok or not intact_only:
            cands.append((-sign * dev[a].rate, abs(a), a, ok))
    if not cands:
        return None
    _, _, a, ok = min(cands)
    return BestCell(alpha=a, rate=test[a].rate, ci=_ci(test[a]), dev_rate=dev[a].rate, intact=ok)


def _curve(ev: Evaluation, b: str) -> list[CurvePoint]:
    inv, deg = curve(ev.test, b, "atom", "inviting"), curve(ev.degenerate, b, "atom", "inviting")
    out = []
    for a, r in inv.items():
        name = variant_name(b, "atom", a)
        it = ev.intactness(name)
        out.append(CurvePoint(alpha=a, rate=r.rate, ci=_ci(r), degenerate=deg[a].rate, kl=it.kl,
                              capability=it.capability, intact=it.intact))
    return out


def summarize_behaviors(ev: Evaluation, choices: dict[str, AtomChoice], budgets: dict[str, Budget],
                        d: Directions) -> dict[str, SteeredAtom]:
    """Behaviour → its atom's :class:`SteeredAtom` (nulls, verdict, best cells, curve, preconditioned)."""
    out = {}
    for i, (b, ch) in enumerate(choices.items()):
        row = _atom_row(ev, b, "atom", ch, budgets[b], ev.cfg.seed * 1009 + i)
        _nulls(ev, b, row, d)
        _verdict(row, ev.cfg.significance)
        row.best_toward, row.best_away = _best(ev, b, +1, True), _best(ev, b, -1, True)
        row.best_toward_any, row.best_away_any = _best(ev, b, +1, False), _best(ev, b, -1, False)
        row.curve = _curve(ev, b)
        if b in d.preconditioned:
            e = effect_of(ev.of(b, "preconditioned"), b, "preconditioned", row.alpha, ev.cfg.n_boot,
                          ev.cfg.seed * 1009 + i, 1 - ev.cfg.significance)
            kl = max(ev.damage[variant_name(b, "preconditioned", s * row.alpha)].kl for s in (1, -1))
            row.preconditioned = {"signed": e.signed, "signed_ci": list(e.signed_ci), "toward": e.toward,
                                  "away": e.away, "kl": kl}
        out[b] = row
    return out


def summarize_oracle(ev: Evaluation, oracle: dict[str, AtomChoice], budgets: dict[str, Budget],
                     main: dict[str, SteeredAtom], d: Directions) -> dict[str, SteeredAtom]:
    """Behaviour → the label-chosen atom's row (the main row's numbers when it is the same atom)."""
    out = {}
    for i, (b, ch) in enumerate(oracle.items()):
        if b not in d.oracle:
            row = SteeredAtom(**{**main[b].__dict__, "nulls": {}, "best_toward": None, "best_away": None,
                                 "best_toward_any": None, "best_away_any": None, "curve": [], "preconditioned": {}})
            row.chosen_by, row.share, row.same_atom = ch.method, ch.share, True
        else:
            row = _atom_row(ev, b, "oracle", ch, budgets[b], ev.cfg.seed * 1009 + 100 + i)
            _verdict(row, ev.cfg.significance)
        out[b] = row
    return out


def summarize_composition(ev: Evaluation, budgets: dict[str, Budget]) -> tuple[dict[str, CompositionPart],
                                                                             bool | None, float | None]:
    """Each part of the composition alone and combined; whether the composition is intact; its KL."""
    names = [v for v in ev.damage if v.startswith("composition-")]
    if not names:
        return {}, None, None
    parts = {}
    for b, s in parse_composition(ev.cfg.composition):
        if b not in budgets:
            continue
        a = budgets[b].alpha
        c = curve(ev.test, b, "atom", "inviting")
        comb = composition_rates(ev.by[(b, "composition")], b)["inviting"]
        parts[b] = CompositionPart(direction="toward" if s > 0 else "away", alpha=a, base=c[0.0].rate,
                                   alone=c[s * a].rate, combined=comb.rate, combined_ci=_ci(comb))
    it = ev.intactness(names[0])
    return parts, it.intact, it.kl


def goals(behaviors: dict[str, SteeredAtom], min_move: float = 0.14) -> dict[str, bool]:
    """The project's steering goals, each at the budgeted α with the model intact: every behaviour moves ≥ 14
    pp one way; bullets rises ≥ 30 pp toward and falls to ≤ 5% away; every atom beats every null."""
    out = {}
    for b, m in behaviors.items():
        out[f"{b} moves >= {100 * min_move:.0f}pp at the budgeted α, model intact"] = bool(
            m.intact and max(m.toward_shift, -m.away_shift) >= min_move)
    if "bullets" in behaviors:
        m = behaviors["bullets"]
        out["bullets rises >= 30pp toward at the budgeted α, model intact"] = bool(m.intact and m.toward_shift >= 0.30)
        out["bullets falls to <= 5% away at the budgeted α, model intact"] = bool(m.intact and m.away <= 0.05)
    for b, m in behaviors.items():
        if m.beats_nulls is not None:
            out[f"{b} beats every null at the budgeted α"] = bool(m.beats_nulls)
    return out


def prompt_counts(items: Sequence[Any]) -> dict[str, int]:
    """``dev_inviting`` … ``test_control`` → number of evaluation prompts."""
    out: dict[str, int] = {}
    for i in items:
        if i.kind != "capability":
            out[f"{i.split}_{i.kind}"] = out.get(f"{i.split}_{i.kind}", 0) + 1
    return dict(sorted(out.items()))
