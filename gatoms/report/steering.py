"""Table 2 of the report: the paper's steering results beside ours, judged so that damage cannot pass for
steering — rates at each atom's budgeted α on test prompts, signed and symmetric effects with intervals,
the atom's place among the nulls, intactness, and a plain statement of what is steered and what is not.
Everything from ``06_steering``'s :class:`gatoms.method.steering.SteeringMetrics`."""

from __future__ import annotations

from typing import Any

from gatoms.build.tables import markdown_table as md_table
from gatoms.data.behaviors import BEHAVIORS
from gatoms.method.steering.metrics import BestCell, SteeringMetrics
from gatoms.report.format import num, pct, pp
from gatoms.report.paper import BEHAVIOR_NAMES, PAPER_TABLE2
from gatoms.report.seeds import seeds_verdict


def _ci_pp(x: float, ci: list[float]) -> str:
    return f"{100 * x:+.0f}pp [{100 * ci[0]:+.0f}, {100 * ci[1]:+.0f}]"


def _rate(x: float, ci: list[float]) -> str:
    return f"{pct(x)} [{pct(ci[0])}, {pct(ci[1])}]"


def _best(c: BestCell | None, base: float) -> list[str]:
    if c is None:
        return ["none intact", "—"]
    return [f"{pct(c.rate)} (α={c.alpha:+.3g}){'' if c.intact else ' †'}", pp(c.rate, base)]


def paper_table() -> str:
    rows = []
    for b in BEHAVIORS:
        p = PAPER_TABLE2[b]
        rows.append([BEHAVIOR_NAMES[b], f"#{p['atom']}", num(p["coherence"]), pct(p["base"]), pct(p["best_toward"]),
                     pp(p["best_toward"], p["base"]), pct(p["best_away"]), pp(p["best_away"], p["base"])])
    return md_table(["Behaviour", "Atom", "Coh.", "Base", "Best toward", "Δ", "Best away", "Δ"], rows)


def headline_table(m06: SteeringMetrics) -> str:
    kinds = m06.null_kinds
    rows = []
    for b in BEHAVIORS:
        m = m06.behaviors.get(b)
        if m is None:
            rows.append([BEHAVIOR_NAMES[b], "not measured"] + ["—"] * 9)
            continue
        rows.append([BEHAVIOR_NAMES[b], f"#{m.atom}", f"{m.alpha:.3g}", _rate(m.base, m.base_ci),
                     _rate(m.toward, m.toward_ci), _rate(m.away, m.away_ci), _ci_pp(m.signed, m.signed_ci),
                     _ci_pp(m.symmetric, m.symmetric_ci),
                     " / ".join(f"{m.nulls[k].percentile:.0f}" if k in m.nulls and m.nulls[k].n else "—" for k in kinds),
                     "yes" if m.intact else "no", "**yes**" if m.steered else "no"])
    header = ["Behaviour", "Atom", "α*", "Base", "Toward (+α*)", "Away (−α*)", "Signed effect", "Symmetric",
              f"Null percentile ({' / '.join(kinds)})", "Intact", "Steered"]
    return md_table(header, rows)


def statement(m06: SteeringMetrics) -> str:
    """Which behaviours are steered by this standard and which are not, and why, in words."""
    steered = [BEHAVIOR_NAMES.get(b, b) for b in m06.steered]
    lines = [f"**Steered by this standard: {', '.join(steered) if steered else 'none'}.** "
             f"Not steered: {', '.join(BEHAVIOR_NAMES.get(b, b) for b in m06.not_steered) or 'none'}."]
    for b in BEHAVIORS:
        m = m06.behaviors.get(b)
        if m is not None and not m.steered:
            lines.append(f"- {BEHAVIOR_NAMES[b]}: {m.verdict.removeprefix('not steered: ')}.")
    return "\n".join(lines)


def best_table(m06: SteeringMetrics) -> str:
    rows = []
    for b in BEHAVIORS:
        m = m06.behaviors.get(b)
        if m is None:
            continue
        rows.append([BEHAVIOR_NAMES[b], pct(m.base), *_best(m.best_toward, m.base), *_best(m.best_away, m.base),
                     *_best(m.best_toward_any, m.base)[:1], *_best(m.best_away_any, m.base)[:1]])
    return md_table(["Behaviour", "Base", "Best intact toward", "Δ", "Best intact away", "Δ",
                     "Best toward, any α", "Best away, any α"], rows)


def oracle_text(m06: SteeringMetrics) -> str:
    if not m06.oracle:
        return "No oracle row: the documents carry no format labels, or the atoms were chosen by them."
    if all(o.same_atom for o in m06.oracle.values()):
        return ("**Oracle (format labels).** The labels choose the same atom as the unsupervised detector for every "
                "behaviour; their rows are the ones above.")
    rows = []
    for b in BEHAVIORS:
        o = m06.oracle.get(b)
        if o is None:
            continue
        same = " (same atom)" if o.same_atom else ""
        rows.append([BEHAVIOR_NAMES[b], f"#{o.atom}{same}", f"{o.alpha:.3g}", pct(o.base), pct(o.toward),
                     pct(o.away), _ci_pp(o.signed, o.signed_ci), "yes" if o.intact else "no",
                     "yes" if o.significant and o.intact else "no"])
    return ("**Oracle: the atom the format labels would choose**, at its own budgeted α (no nulls run for it):\n\n"
            + md_table(["Behaviour", "Atom", "α*", "Base", "Toward", "Away", "Signed effect", "Intact",
                        "Significant and intact"], rows))


def null_table(m06: SteeringMetrics) -> str:
    rows = []
    for b in BEHAVIORS:
        m = m06.behaviors.get(b)
        for kind, n in (m.nulls.items() if m else []):
            if not n.n:
                continue
            kl = sorted(n.kl)[len(n.kl) // 2] if n.kl else None
            rows.append([BEHAVIOR_NAMES[b], kind, str(n.n), f"{100 * n.atom_effect:+.1f}pp",
                         f"{100 * n.median:+.1f}pp [{100 * n.lo:+.1f}, {100 * n.hi:+.1f}]", f"{n.p_value:.3f}",
                         f"{m.kl_dev:.3f} / {num(kl)}"])
    return md_table(["Behaviour", "Null", "n", "Atom's signed effect", "Nulls' median [5%, 95%]", "p",
                     "KL on dev: atom / null median"], rows)


def controls_text(m06: SteeringMetrics) -> str:
    parts = []
    pre = [[BEHAVIOR_NAMES[b], _ci_pp(m.signed, m.signed_ci), _ci_pp(p["signed"], p["signed_ci"]), num(m.kl),
            num(p["kl"])] for b in BEHAVIORS for m in [m06.behaviors.get(b)] if m for p in [m.preconditioned] if p]
    if pre:
        parts.append("Control: the *preconditioned* unprojection (÷ sqrt(eig + ε) instead of ×, rescaled to the same "
                     "norm) at the same ±α*, test inviting prompts:\n\n"
                     + md_table(["Behaviour", "Exact: signed", "Preconditioned: signed", "Exact: KL",
                                 "Preconditioned: KL"], pre))
    if m06.composition:
        rows = [[BEHAVIOR_NAMES.get(b, b), v.direction, f"{v.alpha:.3g}", pct(v.base), pct(v.alone),
                 f"{pct(v.combined)} [{pct(v.combined_ci[0])}, {pct(v.combined_ci[1])}]"]
                for b, v in m06.composition.items()]
        intact = {True: "intact", False: "**not intact**", None: "—"}[m06.composition_intact]
        parts.append(f"Composition — the atoms applied at once, each at its own α*; rates on each behaviour's test "
                     f"inviting prompts (the composite model: {intact}, KL {num(m06.composition_kl)}):\n\n"
                     + md_table(["Behaviour", "Direction", "α*", "Base", "That atom alone", "Both atoms together"],
                                rows))
    if m06.goals:
        met = sum(bool(v) for v in m06.goals.values())
        parts.append(f"Goals the project set for steering, each checked at the budgeted α with the model intact "
                     f"(none can be met by breaking the model): {met} of {len(m06.goals)} met.\n\n"
                     + md_table(["Goal", "Met"], [[g, "yes" if v else "no"] for g, v in m06.goals.items()], "ll"))
    return "\n\n".join(parts)


def setup_text(m06: SteeringMetrics) -> str:
    rule = ("the fine-tuning's own KL there: the clean adapter against the base model" if m06.kl_budget_rule ==
            "finetune" else "set in the profile")
    n = m06.n_prompts
    chosen = {m.chosen_by for m in m06.behaviors.values()}
    how = ("without labels (the behaviour detector on the training responses)" if chosen == {"detector"}
           else "by " + ", ".join(sorted(chosen)))
    return (f"**Ours, at each atom's budgeted α** — atoms chosen {how}; "
            f"α* is the largest α at which the worse sign's KL from the clean adapter on the dev neutral prompts stays "
            f"within {m06.kl_budget:.3g} nats/token ({rule}; fine-tuning KL on the test neutral prompts "
            f"{m06.finetune_kl:.3g}). Rates on the test split ({n.get('test_inviting', 0)} inviting prompts over the "
            f"five behaviours; {n.get('dev_inviting', 0)} dev inviting and {n.get('dev_control', 0)} dev control "
            f"prompts made every choice), Wilson 95% intervals; effects with paired bootstrap intervals over prompts. "
            f"Intact: {m06.intact_rule}"
            + (f" (clean: {pct(m06.capability_clean)} of {m06.n_capability} graded)." if m06.capability_clean
               is not None else ".")
            + f" Nulls: {m06.n_null} directions per kind at the same ±α*; steered = intact, signed interval above 0, "
              f"and p < {m06.significance:g} against every null."
            + (f"\n\n*How these settings came to be:* {m06.history}" if m06.history else ""))


def economies_text(m06: SteeringMetrics) -> str:
    """What the step's economies (its profile sizes) cost in rigour."""
    where = ("only at each atom's α*" if not m06.null_alphas else
             "at α* and at α = " + ", ".join(f"{a:g}" for a in m06.null_alphas))
    n = m06.n_prompts
    return ("**What the economies cost.** Nulls ran " + where + f" ({m06.n_null} per kind): the curve's other points "
            f"carry no null, and the smallest possible p-value is 1/{m06.n_null + 1}, so \"beats a null\" means "
            f"beating every one of its draws. Responses stop at {m06.max_new_tokens} tokens: the detectors read the "
            f"first lines, and a behaviour that would only appear later is missed, for atom and nulls alike. The KL "
            f"scores the first {m06.kl_tokens} positions of the clean adapter's own answers (teacher-forced), not "
            f"fresh generations. {n.get('dev_inviting', 0)} of {n.get('dev_inviting', 0) + n.get('test_inviting', 0)} "
            f"inviting prompts went to dev, so the test intervals are wider than on all prompts. Capability is graded "
            f"on {m06.n_capability} held-out documents: a drop of a few documents is within noise.")


def across_seeds(seeds: dict[str, Any] | None) -> str:
    """Each behaviour's "steered" verdict over the seeds of ``make seeds`` (empty when it has not run)."""
    found = [(b, v) for b in BEHAVIORS if (v := seeds_verdict(seeds, f"{b}_steered"))]
    if not found:
        return ""
    return (f"**Across {len(seeds['profiles'])} seeds** ([SEEDS.md](SEEDS.md)): "
            + "; ".join(f"{BEHAVIOR_NAMES.get(b, b)} — {v}" for b, v in found)
            + ". A behaviour steered in some seeds only is not a finding.")


def section_table2(m06: SteeringMetrics | None, not_run: str, seeds: dict[str, Any] | None = None) -> str:
    text = "**Paper** (rates over all 100 prompts: 60 inviting + 40 controls; best over α and both signs, no " \
           "intervals, no matched null, no check that the model was intact):\n\n" + paper_table() + "\n\n"
    if m06 is None:
        return text + not_run
    if not m06.behaviors:
        return text + "*`06_steering` recorded no behaviours.*"
    parts = [text + setup_text(m06), headline_table(m06), statement(m06), across_seeds(seeds),
             "**Best intact α of the grid** (α chosen on the dev prompts among intact variants — grid and α* — its "
             "rate on test; † = that variant is not intact; \"any α\": the same choice ignoring intactness):\n\n"
             + best_table(m06), oracle_text(m06),
             "**The atoms among their nulls** at ±α* (signed effects; p = (1 + #null ≥ atom) / (1 + n)):\n\n"
             + null_table(m06), controls_text(m06), economies_text(m06)]
    return "\n\n".join(p for p in parts if p)
