"""Step 06's tables (CSV, the source, and Markdown): Table 2 at the budgeted α, the nulls, the curves, and
sampled steered outputs per α."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gatoms.build.tables import write_table
from gatoms.method.steering.metrics import BestCell, SteeredAtom


def _pct(x: float | None) -> str:
    return "—" if x is None or x != x else f"{100 * x:.0f}%"


def _pp(x: float, ci: Sequence[float]) -> str:
    return f"{100 * x:+.0f} [{100 * ci[0]:+.0f}, {100 * ci[1]:+.0f}]"


def _best(c: BestCell | None) -> str:
    return "—" if c is None else f"{_pct(c.rate)} (α {c.alpha:+.3g}){'' if c.intact else ' †'}"


def table2_rows(behaviors: dict[str, SteeredAtom], oracle: dict[str, SteeredAtom]) -> list[dict[str, Any]]:
    """One row per behaviour (``row`` = ``atom``) and per oracle row (``row`` = ``oracle``)."""
    rows = []
    for which, group in (("atom", behaviors), ("oracle", oracle)):
        for b, m in group.items():
            r = {"behavior": b, "row": which, "chosen_by": m.chosen_by, "atom": m.atom, "same_atom": m.same_atom,
                 "coherence": m.coherence, "alpha": m.alpha, "budget_reached": m.budget_reached, "kl_dev": m.kl_dev,
                 "kl": m.kl, "n": m.n}
            for key in ("base", "toward", "away", "signed", "symmetric", "toward_shift", "away_shift"):
                ci = getattr(m, key + "_ci")
                r.update({key: getattr(m, key), key + "_lo": ci[0], key + "_hi": ci[1]})
            for kind, n in m.nulls.items():
                r.update({f"p_{kind}": n.p_value, f"percentile_{kind}": n.percentile})
            r.update({"control_base": m.control_base, "control_toward": m.control_toward,
                      "control_away": m.control_away, "degenerate_toward": m.degenerate_toward,
                      "degenerate_away": m.degenerate_away, "capability": m.capability,
                      "capability_clean": m.capability_clean, "ppl_ratio": m.ppl_ratio, "intact": m.intact,
                      "significant": m.significant, "beats_nulls": m.beats_nulls, "steered": m.steered})
            for name in ("best_toward", "best_away"):
                c = getattr(m, name)
                r.update({f"{name}_alpha": c.alpha if c else None, name: c.rate if c else None})
            rows.append(r)
    return rows


def write_table2(behaviors: dict[str, SteeredAtom], oracle: dict[str, SteeredAtom], csv_path: Path,
                 md_path: Path) -> None:
    """Table 2 at the budgeted α: CSV (every number) and a Markdown rendering of the main columns."""
    rows = table2_rows(behaviors, oracle)
    if not rows:
        raise ValueError("no rows to write")
    columns = list(dict.fromkeys(k for r in rows for k in r))  # oracle rows have no null columns
    src = {("atom", b): m for b, m in behaviors.items()} | {("oracle", b): m for b, m in oracle.items()}

    def col(f: Callable[[SteeredAtom], str]) -> Callable[[dict[str, Any]], str]:
        return lambda r: f(src[(r["row"], r["behavior"])])

    markdown = [("Behaviour", lambda r: r["behavior"] + (" (oracle: labels)" if r["row"] == "oracle" else "")),
                ("Atom", col(lambda m: f"#{m.atom}")), ("α*", col(lambda m: f"{m.alpha:.3g}")),
                ("Base", col(lambda m: _pct(m.base))), ("Toward", col(lambda m: _pct(m.toward))),
                ("Away", col(lambda m: _pct(m.away))), ("Signed pp", col(lambda m: _pp(m.signed, m.signed_ci))),
                ("Symmetric pp", col(lambda m: _pp(m.symmetric, m.symmetric_ci))),
                ("Null pct.", col(lambda m: " / ".join(f"{n.percentile:.0f}" for n in m.nulls.values()) or "—")),
                ("KL", col(lambda m: f"{m.kl:.3f}")), ("Intact", col(lambda m: "yes" if m.intact else "no")),
                ("Steered", col(lambda m: "yes" if m.steered else "no")),
                ("Best intact ↑ (dev α)", col(lambda m: _best(m.best_toward))),
                ("Best intact ↓ (dev α)", col(lambda m: _best(m.best_away)))]
    kinds = next((list(m.nulls) for m in behaviors.values() if m.nulls), [])
    notes = ["Rates on the test inviting prompts at ±α* (the budgeted α); signed = (r(+α*) − r(−α*)) / 2 and "
             "symmetric = mean(r(±α*)) − base, per prompt, with paired bootstrap intervals. Null pct.: the "
             f"percentile of the atom's signed effect among the nulls' ({' / '.join(kinds) or 'none run'}). "
             "Best intact: the α of the grid (or α*) with the best dev rate among intact variants, its test rate."]
    write_table(rows, csv_path, md_path, columns=columns, markdown=markdown, notes=notes, float_format=".6g")


def null_rows(behaviors: dict[str, SteeredAtom]) -> list[dict[str, Any]]:
    """Per behaviour and null kind: the atom's signed effect, the null distribution, p and percentile, KL."""
    rows = []
    for b, m in behaviors.items():
        for kind, n in m.nulls.items():
            rows.append({"behavior": b, "null": kind, "n": n.n, "alpha": m.alpha, "atom_effect": n.atom_effect,
                         "null_median": n.median, "null_5": n.lo, "null_95": n.hi, "null_max": max(n.effects, default=None),
                         "p_value": n.p_value, "percentile": n.percentile, "atom_kl_dev": m.kl_dev,
                         "null_kl_median": sorted(n.kl)[len(n.kl) // 2] if n.kl else None})
    return rows


def write_null_table(behaviors: dict[str, SteeredAtom], csv_path: Path, md_path: Path) -> None:
    rows = null_rows(behaviors)
    if not rows:
        return
    markdown = [("Behaviour", lambda r: r["behavior"]), ("Null", lambda r: r["null"]), ("n", lambda r: r["n"]),
                ("Atom signed pp", lambda r: f"{100 * r['atom_effect']:+.1f}"),
                ("Null median [5, 95] pp", lambda r: f"{100 * r['null_median']:+.1f} [{100 * r['null_5']:+.1f}, "
                                                     f"{100 * r['null_95']:+.1f}]"),
                ("p", lambda r: f"{r['p_value']:.3f}"), ("Percentile", lambda r: f"{r['percentile']:.0f}"),
                ("KL on dev: atom / null median", lambda r: f"{r['atom_kl_dev']:.3f} / " + (
                    f"{r['null_kl_median']:.3f}" if r["null_kl_median"] is not None else "—"))]
    write_table(rows, csv_path, md_path, markdown=markdown, float_format=".6g")


def curve_rows(behaviors: dict[str, SteeredAtom]) -> list[dict[str, Any]]:
    return [{"behavior": b, "alpha": p.alpha, "budgeted": abs(p.alpha) == m.alpha, "rate": p.rate, "lo": p.ci[0],
             "hi": p.ci[1], "degenerate": p.degenerate, "kl": p.kl, "capability": p.capability, "intact": p.intact}
            for b, m in behaviors.items() for p in m.curve]


def write_curve_table(behaviors: dict[str, SteeredAtom], csv_path: Path, md_path: Path) -> None:
    write_table(curve_rows(behaviors), csv_path, md_path, float_format=".6g")


def samples(records: Sequence[dict[str, Any]], behavior: str, n: int, seed: int,
            kinds: tuple[str, ...] = ("clean", "atom")) -> list[dict[str, Any]]:
    """Up to ``n`` test inviting responses of one behaviour per signed α (clean and atom variants), drawn
    with a seeded generator: what the model actually says at each step size."""
    by_alpha: dict[float, list[dict[str, Any]]] = {}
    for r in records:
        if r["behavior"] == behavior and r["kind"] in kinds and r["prompt_kind"] == "inviting" and r["split"] == "test":
            by_alpha.setdefault(float(r["alpha"]), []).append(r)
    rng = random.Random(f"{seed}-{behavior}")
    out = []
    for a in sorted(by_alpha):
        group = sorted(by_alpha[a], key=lambda r: (r["prompt_id"], r["sample"]))
        for r in rng.sample(group, min(n, len(group))):
            out.append({"behavior": behavior, "alpha": a, "prompt": r["prompt"], "response": r["response"],
                        "detected": r["detected"], "degenerate": r["degenerate"]})
    return out


def write_samples(records: Sequence[dict[str, Any]], behaviors: Sequence[str], n: int, seed: int, csv_path: Path,
                  md_path: Path) -> list[dict[str, Any]]:
    """:func:`samples` of every behaviour as a table (line breaks shown as ↵ in the Markdown); returns the rows."""
    rows = [s for b in behaviors for s in samples(records, b, n, seed)]
    if rows:
        markdown = [("Behaviour", lambda r: r["behavior"]), ("α", lambda r: f"{r['alpha']:+.3g}"),
                    ("Prompt", lambda r: r["prompt"]), ("Response", lambda r: r["response"].replace("\n", " ↵ ")),
                    ("Detected", lambda r: "yes" if r["detected"] else "no"),
                    ("Loop", lambda r: "yes" if r["degenerate"] else "")]
        write_table(rows, csv_path, md_path, markdown=markdown)
    return rows
