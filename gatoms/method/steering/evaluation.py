"""Running the steering evaluation and turning detector hits into rates, Table 2 rows and summaries."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from gatoms.build.metrics import StepMetrics
from gatoms.build.tables import write_table
from gatoms.lm.adapters import Variant
from gatoms.method.stats import Rate
from gatoms.method.steering.choice import AtomChoice

KINDS: tuple[str, ...] = ("inviting", "control", "all")
"""Prompt sets a rate is reported on: prompts that invite the behaviour, neutral controls, both."""

RateKey = tuple[str, str, float, str]
"""(behavior, kind of direction, signed α, prompt set) — e.g. ("bullets", "atom", 2.0, "inviting")."""


def rates(records: Iterable[dict[str, Any]], field: str = "detected") -> dict[RateKey, Rate]:
    """Detector hits → rates per (behavior, direction kind, signed α, prompt set).

    A record is one response: {behavior (of the prompt), kind ("clean"/"atom"/"random0"/…),
    alpha (signed), prompt_kind ("inviting"/"control"), detected (bool)}. The clean responses count for
    every direction kind at α = 0. Composition records are skipped (see :func:`composition_rates`).
    ``field`` counts another boolean of the records instead, e.g. ``ran_on`` (the breakage curve).
    """
    counts: dict[RateKey, list[int]] = {}
    recs = [r for r in records if r["kind"] != "composition"]
    kinds = sorted({r["kind"] for r in recs if r["kind"] != "clean"})
    for r in recs:
        owners = kinds if r["kind"] == "clean" else [r["kind"]]
        for owner in owners:
            for pk in (r["prompt_kind"], "all"):
                c = counts.setdefault((r["behavior"], owner, float(r["alpha"]), pk), [0, 0])
                c[0] += bool(r[field])
                c[1] += 1
    return {k: Rate(*v) for k, v in counts.items()}


def curve(table: dict[RateKey, Rate], behavior: str, kind: str, prompt_kind: str) -> dict[float, Rate]:
    """Signed α → rate for one behaviour, direction kind and prompt set (α = 0 is the clean adapter)."""
    return {a: r for (b, k, a, p), r in sorted(table.items()) if b == behavior and k == kind and p == prompt_kind}


def best(curve_: dict[float, Rate], sign: int) -> tuple[float, Rate]:
    """The α of one sign with the highest rate (toward, sign +1) or lowest (away, −1); ties → smaller |α|."""
    items = [(a, r) for a, r in curve_.items() if np.sign(a) == sign]
    if not items:
        raise ValueError(f"no variant with sign {sign:+d} in the curve")
    items.sort(key=lambda t: (-sign * t[1].rate, abs(t[0])))
    return items[0]


def table2_rows(table: dict[RateKey, Rate], choices: dict[str, AtomChoice],
                broken: dict[RateKey, Rate] | None = None) -> list[dict[str, Any]]:
    """The Table 2 analogue: per behaviour and prompt set, base, best toward and best away with intervals.

    With ``broken`` (:func:`rates` of ``ran_on``), each best cell also records the share of responses that
    ran to the token limit at its α, and whether that variant broke the model (not :func:`intact`).
    """
    rows = []
    for b, ch in choices.items():
        for pk in KINDS:
            c = curve(table, b, "atom", pk)
            if 0.0 not in c:
                continue
            base = c[0.0]
            at, rt = best(c, +1)
            aa, ra = best(c, -1)
            rows.append({
                "behavior": b, "prompts": pk, "atom": ch.atom, "coherence": round(ch.coherence, 4), "n": base.n,
                "base": base.rate, "base_lo": base.ci[0], "base_hi": base.ci[1],
                "toward": rt.rate, "toward_lo": rt.ci[0], "toward_hi": rt.ci[1],
                "toward_dpp": 100 * (rt.rate - base.rate), "toward_alpha": at,
                "away": ra.rate, "away_lo": ra.ci[0], "away_hi": ra.ci[1],
                "away_dpp": 100 * (ra.rate - base.rate), "away_alpha": abs(aa),
            })
            if broken is not None:
                bc = curve(broken, b, "atom", pk)
                ok = intact(bc)
                rows[-1].update({"toward_ran_on": bc[at].rate, "toward_broken": at not in ok,
                                 "away_ran_on": bc[aa].rate, "away_broken": aa not in ok})
    return rows


def random_shifts(table: dict[RateKey, Rate], behavior: str, prompt_kind: str = "inviting") -> dict[str, float]:
    """Largest rise, largest fall and largest |shift| from the clean rate over every random direction and α."""
    base = table[(behavior, "atom", 0.0, prompt_kind)].rate
    shifts = [r.rate - base for (b, k, a, p), r in table.items()
              if b == behavior and k.startswith("random") and p == prompt_kind and a != 0]
    if not shifts:
        return {"max_rise": float("nan"), "max_fall": float("nan"), "max_abs": float("nan")}
    return {"max_rise": max(0.0, max(shifts)), "max_fall": max(0.0, -min(shifts)),
            "max_abs": max(abs(s) for s in shifts)}


def composition_rates(records: Iterable[dict[str, Any]], behavior: str) -> dict[str, Rate]:
    """Rates on one behaviour's prompts (inviting / control / all) for the composition variant."""
    counts: dict[str, list[int]] = {}
    for r in records:
        if r["kind"] == "composition" and r["behavior"] == behavior:
            for pk in (r["prompt_kind"], "all"):
                c = counts.setdefault(pk, [0, 0])
                c[0] += bool(r["detected"])
                c[1] += 1
    return {k: Rate(*v) for k, v in counts.items()}


def evaluate(backend: Any, jobs: Sequence[tuple[Variant, Sequence[Any]]], detect: Callable[[str, str], bool],
             ran_on: Callable[[str], bool] | None = None) -> list[dict[str, Any]]:
    """Generate every job's responses and run the prompt's behaviour detector on each.

    ``jobs`` pairs a variant with evaluation prompts (objects with behavior, kind, prompt, prompt_id).
    Returns one record per response: variant, kind, behavior (the prompt's), alpha (signed), prompt_id,
    prompt_kind, sample, prompt, response, detected, and ran_on (``ran_on(response)``: the response hit
    the token limit without ending its turn — a sign of a broken model; False without ``ran_on``).
    """
    answers = backend.generate([(v, [p.prompt for p in ps]) for v, ps in jobs])
    records = []
    for (v, ps), per_prompt in zip(jobs, answers):
        for p, samples in zip(ps, per_prompt):
            for i, text in enumerate(samples):
                records.append({
                    "variant": v.name, "kind": v.kind, "behavior": p.behavior, "alpha": float(v.alpha),
                    "prompt_id": p.prompt_id, "prompt_kind": p.kind, "sample": i,
                    "prompt": p.prompt, "response": text, "detected": bool(detect(p.behavior, text)),
                    "ran_on": bool(ran_on(text)) if ran_on else False,
                })
    return records


def intact(broken: dict[float, Rate], max_extra: float = 0.25) -> set[float]:
    """The α whose share of ran-on responses is at most ``max_extra`` above the clean adapter's."""
    return {a for a, r in broken.items() if r.rate <= broken[0.0].rate + max_extra}


def behavior_summary(table: dict[RateKey, Rate], choice: AtomChoice, prompt_kind: str = "inviting",
                     broken: dict[RateKey, Rate] | None = None) -> dict[str, Any]:
    """One behaviour's entry of metrics.json: rates on ``prompt_kind`` prompts, as fractions.

    With ``broken`` (:func:`rates` of ``ran_on``), also the ran-on share per α and the best toward / away
    among the *intact* variants (:func:`intact`): a move that needs a broken model is not steering.
    """
    b = choice.behavior
    c = curve(table, b, "atom", prompt_kind)
    base = c[0.0].rate
    at, rt = best(c, +1)
    aa, ra = best(c, -1)
    shifts = random_shifts(table, b, prompt_kind)
    atom_max = max(abs(r.rate - base) for a, r in c.items() if a != 0)
    out = {
        "atom": choice.atom, "coherence": choice.coherence, "base": base,
        "best_toward": rt.rate, "best_toward_alpha": at, "best_away": ra.rate, "best_away_alpha": abs(aa),
        "random_max_shift": shifts["max_abs"],
        "atom_max_shift": atom_max,
        "beats_random": bool(atom_max > shifts["max_abs"]) if not math.isnan(shifts["max_abs"]) else None,
        "share": choice.share, "accepted": choice.accepted, "chosen_by": choice.method,
    }
    if broken is not None:
        bc = curve(broken, b, "atom", prompt_kind)
        ok = intact(bc)
        ci = {a: r for a, r in c.items() if a in ok}
        out["ran_on"] = {f"{a:g}": r.rate for a, r in bc.items()}
        for name, sign in (("toward", +1), ("away", -1)):
            if any(np.sign(a) == sign for a in ci):
                a, r = best(ci, sign)
                out[f"best_{name}_intact"], out[f"best_{name}_intact_alpha"] = r.rate, abs(a)
            else:
                out[f"best_{name}_intact"], out[f"best_{name}_intact_alpha"] = base, None
    pre = curve(table, b, "preconditioned", prompt_kind)
    if len(pre) > 1:
        pa, pr = best(pre, +1)
        qa, qr = best(pre, -1)
        out["preconditioned"] = {"best_toward": pr.rate, "best_toward_alpha": pa,
                                 "best_away": qr.rate, "best_away_alpha": abs(qa)}
    return out


def goal_check(behaviors: dict[str, dict[str, Any]], min_move: float = 0.14) -> dict[str, bool]:
    """The issue's goals on the tiny profile: every behaviour moves ≥ 14 pp one way; bullets rises
    ≥ 30 pp toward and falls to ≤ 5% away; every atom beats its random-direction control."""
    moves = {b: max(m["best_toward"] - m["base"], m["base"] - m["best_away"]) >= min_move for b, m in behaviors.items()}
    out = {f"{b} moves >= {100 * min_move:.0f}pp": ok for b, ok in moves.items()}
    if "bullets" in behaviors:
        m = behaviors["bullets"]
        out["bullets rises >= 30pp toward"] = m["best_toward"] - m["base"] >= 0.30
        out["bullets falls to <= 5% away"] = m["best_away"] <= 0.05
    for b, m in behaviors.items():
        out[f"{b} beats random directions"] = bool(m.get("beats_random"))
    for b, m in behaviors.items():  # stricter than the issue asks: the move must not need a broken model
        if "best_toward_intact" in m:
            move = max(m["best_toward_intact"] - m["base"], m["base"] - m["best_away_intact"])
            out[f"{b} moves >= {100 * min_move:.0f}pp with the model intact"] = move >= min_move
    return out


def write_table2(rows: list[dict[str, Any]], csv_path: Path, md_path: Path) -> None:
    """Table 2 rows → CSV (the source, full precision) and a Markdown rendering of it; a best cell at an
    α where the model breaks is marked †."""
    if not rows:
        raise ValueError("no rows to write")

    def pct(key: str) -> Callable[[dict[str, Any]], str]:
        def cell(r: dict[str, Any]) -> str:
            mark = " †" if r.get(key + "_broken") else ""
            return f"{100 * r[key]:.0f}% [{100 * r[key + '_lo']:.0f}, {100 * r[key + '_hi']:.0f}]{mark}"
        return cell

    markdown = [("Behaviour", lambda r: r["behavior"]), ("Prompts", lambda r: r["prompts"]),
                ("Atom", lambda r: f"#{r['atom']}"), ("Coh.", lambda r: f"{r['coherence']:.3f}"),
                ("n", lambda r: r["n"]), ("Base", pct("base")), ("Best toward", pct("toward")),
                ("Δpp", lambda r: f"{r['toward_dpp']:+.0f}"), ("α", lambda r: f"{r['toward_alpha']:g}"),
                ("Best away", pct("away")), ("Δpp", lambda r: f"{r['away_dpp']:+.0f}"),
                ("α", lambda r: f"{r['away_alpha']:g}")]
    notes = (["† at that α the model is breaking: more than 25 points more of its responses run to the token "
              "limit without ending their turn than the clean adapter's."]
             if any(r.get("toward_broken") or r.get("away_broken") for r in rows) else [])
    write_table(rows, csv_path, md_path, markdown=markdown, notes=notes, float_format=".6g")


def controls_rows(summary: dict[str, dict[str, Any]], table: dict[RateKey, Rate]) -> list[dict[str, Any]]:
    """Per behaviour: the atom's largest shift, the random directions' largest rise and fall, and the exact
    against the preconditioned unprojection (inviting prompts)."""
    rows = []
    for b, m in summary.items():
        sh = random_shifts(table, b)
        pre = m.get("preconditioned", {})
        rows.append({"behavior": b, "atom": m["atom"], "base": m["base"], "atom_max_shift": m["atom_max_shift"],
                     "random_max_rise": sh["max_rise"], "random_max_fall": sh["max_fall"],
                     "random_max_shift": sh["max_abs"], "beats_random": m["beats_random"],
                     "exact_toward": m["best_toward"], "exact_away": m["best_away"],
                     "preconditioned_toward": pre.get("best_toward", float("nan")),
                     "preconditioned_away": pre.get("best_away", float("nan"))})
    return rows


def write_controls_table(rows: list[dict[str, Any]], csv_path: Path, md_path: Path) -> None:
    """The controls table: CSV (4 significant digits) and Markdown in percent."""
    def pc(key: str) -> Callable[[dict[str, Any]], str]:
        return lambda r: f"{r[key]:.0%}"

    markdown = [("Behaviour", lambda r: r["behavior"]), ("Atom", lambda r: f"#{r['atom']}"), ("Base", pc("base")),
                ("Atom max shift", lambda r: f"{100 * r['atom_max_shift']:.0f} pp"),
                ("Random max rise / fall", lambda r: f"{100 * r['random_max_rise']:.0f} / "
                                                     f"{100 * r['random_max_fall']:.0f} pp"),
                ("Beats random", lambda r: r["beats_random"]),
                ("Exact ↑ / ↓", lambda r: f"{r['exact_toward']:.0%} / {r['exact_away']:.0%}"),
                ("Preconditioned ↑ / ↓", lambda r: f"{r['preconditioned_toward']:.0%} / {r['preconditioned_away']:.0%}")]
    write_table(rows, csv_path, md_path, markdown=markdown, float_format=".4g")


def composition_alphas(table: dict[RateKey, Rate], broken: dict[RateKey, Rate], parts: Sequence[tuple[str, int]],
                       alphas: Sequence[float]) -> list[tuple[str, int, float]]:
    """For each (behaviour, sign) of a composition: the α at which that atom alone did best in that direction
    on its inviting prompts among the variants that left the model intact (the smallest α if none did)."""
    out = []
    for b, sign in parts:
        ok = intact(curve(broken, b, "atom", "inviting"))
        c = {a: r for a, r in curve(table, b, "atom", "inviting").items() if a in ok}
        alpha = best(c, sign)[0] if any(np.sign(a) == sign for a in c) else sign * min(alphas)
        out.append((b, sign, abs(alpha)))
    return out


# ---- what step 06 records ---------------------------------------------------------------------------
@dataclass
class SteeringMetrics(StepMetrics):
    """Step 06's ``metrics.json``."""

    step: ClassVar[str] = "06_steering"
    behaviors: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Behaviour → :func:`behavior_summary` (rates on its inviting prompts, as fractions)."""
    composition: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Behaviour → its rate alone and with the other atoms of the composition."""
    goals: dict[str, bool] = field(default_factory=dict)
    alphas: list[float] = field(default_factory=list)
    n_responses: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    backend: str = "transformers"
    prompts: str = "world"
