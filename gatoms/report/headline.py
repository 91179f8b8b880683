"""The headline numbers and conclusions, named once: what SEEDS.md aggregates across seeds and what
RESULTS.md shows beside the single run.

A :class:`Headline` is one number read from a profile's :class:`~gatoms.report.results.Results` (a path
into a step's ``metrics.json``); a :class:`Conclusion` is a yes/no reading of the paper's claims from the
same results (None when what it needs was not measured). Across seeds a conclusion *holds* (yes in every
seed), *fails* (no in every seed) or *flips* — and a flipping conclusion is reported as such, never as a
finding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gatoms.data.behaviors import BEHAVIORS
from gatoms.report.paper import PAPER_TABLE1, PAPER_TABLE2

ALPHAS = (0.01, 0.1, 1.0)
"""The sparsity sweep's α (the paper's Table 1)."""
NS = (10, 50, 100)
"""Top-N atoms of the claim metrics."""
WHITENING = ("no_whitening", "kfac", "ekfac", "random_projection")
"""Rows of the whitening ablation whose label alignment is a headline."""


def dig(res: Any, step: str, *keys: str) -> Any:
    """``res.metrics[step]`` as JSON, then ``[k1][k2]…``; None where anything is missing."""
    m = res.metrics.get(step)
    if m is None:
        return None
    x: Any = m.to_json()
    for k in keys:
        if isinstance(x, dict) and k in x:
            x = x[k]
        else:
            return None
    return x


@dataclass(frozen=True)
class Headline:
    """One headline number: ``key`` (a CSV column), how to read it, and the paper's value where it has one."""

    key: str
    label: str
    step: str
    path: tuple[str, ...]
    paper: Any = None
    group: str = ""
    """The table it belongs to (Table 1, discovery, whitening, Table 2)."""

    def read(self, res: Any) -> float | int | None:
        """The number in ``res`` (a flag as 1/0; None where it was not measured)."""
        v = dig(res, self.step, *self.path)
        if isinstance(v, (bool, int)):
            return int(v)
        return float(v) if isinstance(v, float) and v == v else None  # NaN: not measured


def _headlines() -> tuple[Headline, ...]:
    out: list[Headline] = []
    for a in ALPHAS:
        p = PAPER_TABLE1.get(a, {})
        for k, what in (("median_docs_per_atom", "median docs/atom"), ("n_coh_gt_0_5", "atoms coh > 0.5"),
                        ("n_coh_gt_0_1", "atoms coh > 0.1")):
            out.append(Headline(f"t1_{a:g}_{k}", f"α = {a:g}: {what}", "05_ablations", ("sparsity", str(a), k),
                                p.get(k), "Table 1"))
    out += [Headline("coh_gt_0_5", "main run: atoms coh > 0.5", "04_coherence", ("n_coh_gt_0_5",), 5, "Table 1"),
            Headline("coh_gt_0_1", "main run: atoms coh > 0.1", "04_coherence", ("n_coh_gt_0_1",), 43, "Table 1")]
    for label in ("family", "topic"):
        for n in NS:
            base = ("claims", "found", label, "vs_random", str(n))
            out += [Headline(f"{label}_top{n}", f"{label}: pure in top-{n} by coherence", "04_coherence",
                             (*base, "observed"), group="discovery"),
                    Headline(f"{label}_random{n}", f"{label}: pure in {n} random atoms (mean)", "04_coherence",
                             (*base, "random_mean"), group="discovery"),
                    Headline(f"{label}_p{n}", f"{label}: p (top-{n} vs random)", "04_coherence", (*base, "p"),
                             group="discovery")]
        out.append(Headline(f"{label}_auroc", f"{label}: AUROC of coherence for ≥ 90% pure", "04_coherence",
                            ("claims", "found", label, "auroc"), group="discovery"))
    for kind in ("family", "topic", "response"):
        out.append(Headline(f"purity_{kind}_median", f"top-50 atoms: median purity by {kind}", "04_coherence",
                            ("claims", "granularity", kind, "median"), group="discovery"))
    out += [Headline("mean_union_f1", "mean union-of-atoms F1 per family", "04_coherence", ("claims", "mean_union_f1"),
                     group="discovery"),
            Headline("v_measure", "V-measure (strongest atom vs family)", "04_coherence",
                     ("claims", "partition", "v_measure"), group="discovery"),
            Headline("nmi", "NMI (strongest atom vs family)", "04_coherence", ("nmi",), group="discovery"),
            Headline("families_recovered", "families recovered (best atom F1 ≥ 0.5)", "04_coherence",
                     ("families_recovered",), group="discovery"),
            Headline("planted_rank", "planted behaviour: coherence rank of first ≥ 90% atom", "04_coherence",
                     ("claims", "planted", "rank"), group="discovery")]
    for m in WHITENING:
        for label in ("family", "nuisance", "topic"):
            out.append(Headline(f"{m}_{label}_share", f"{m}: share of {label} entropy in the atoms", "05_ablations",
                                ("methods", m, f"{label}_share"), group="whitening"))
    for b in BEHAVIORS:
        out.append(Headline(f"{b}_base_rate", f"{b}: fine-tuned greedy rate on its inviting prompts (00)", "00_finetune",
                            ("behavior_base_rates", b), PAPER_TABLE2.get(b, {}).get("base"), "base rates"))
    for b in BEHAVIORS:
        p = PAPER_TABLE2.get(b, {})
        for k in ("base", "toward", "away", "signed", "steered"):
            out.append(Headline(f"{b}_{k}", f"{b}: {k}", "06_steering", ("behaviors", b, k),
                                p.get({"toward": "best_toward", "away": "best_away"}.get(k, k)), "Table 2"))
    return tuple(out)


HEADLINES: tuple[Headline, ...] = _headlines()
"""Every headline number, in report order."""


@dataclass(frozen=True)
class Conclusion:
    """A yes/no reading of one of the paper's claims from a profile's results."""

    key: str
    claim: str
    test: Callable[[Any], bool | None]


def _lt(a: Any, b: Any) -> bool | None:
    return None if a is None or b is None else bool(a < b)


def _share(res: Any, method: str, label: str) -> Any:
    return dig(res, "05_ablations", "methods", method, f"{label}_share")


def _task_types_beat_random(n: int) -> Callable[[Any], bool | None]:
    """Top-n by coherence vs n random atoms at p < 0.05; not measured where the dictionary has no more than
    n atoms (top-n and "n random" are then the same atoms, and the test cannot fail or pass)."""
    def test(res: Any) -> bool | None:
        v = dig(res, "04_coherence", "claims", "found", "family", "vs_random", str(n))
        if v is None or v.get("p") is None or (v.get("n", n) < n and not v.get("random_sd")):
            return None  # capped at every atom: each "random" draw is the whole dictionary
        return bool(v["p"] < 0.05)
    return test


def _not_topics_not_instances(res: Any) -> bool | None:
    g = dig(res, "04_coherence", "claims", "granularity") or {}
    fam, resp = (g.get(k, {}).get("median") for k in ("family", "response"))
    if fam is None or resp is None:
        return None
    topic = g.get("topic", {}).get("median")
    return bool(resp < 0.5 and (topic is None or fam > topic))


def _granularities(res: Any) -> bool | None:
    u, b = dig(res, "04_coherence", "claims", "mean_union_f1"), dig(res, "04_coherence", "mean_best_f1")
    return None if u is None or b is None else bool(u > b and u >= 0.5)


def _whitening_moves_to_family(res: Any) -> bool | None:
    fam = _lt(_share(res, "no_whitening", "family"), _share(res, "ekfac", "family"))
    nuis = _lt(_share(res, "ekfac", "nuisance"), _share(res, "no_whitening", "nuisance"))
    if fam is None:
        return None
    return fam and (nuis is None or nuis)


def _planted_found(res: Any) -> bool | None:
    if dig(res, "04_coherence", "claims", "planted") is None:
        return None
    return bool(dig(res, "04_coherence", "claims", "planted", "in_top", "50"))


def _rare_found(res: Any) -> bool | None:
    rare = dig(res, "04_coherence", "claims", "rare")
    return None if not rare else all(r["found"] for r in rare)


BASE_RATE_RANGE = (0.2, 0.8)
"""The world's design criterion: every behaviour's greedy rate on its inviting prompts, after fine-tuning,
lies in this range (room to steer both ways)."""


def _base_rates_in_range(res: Any) -> bool | None:
    rates = dig(res, "00_finetune", "behavior_base_rates")
    if not rates:
        return None
    lo, hi = BASE_RATE_RANGE
    return all(lo <= rates[b] <= hi for b in BEHAVIORS if b in rates)


def _steered(b: str) -> Callable[[Any], bool | None]:
    def test(res: Any) -> bool | None:
        v = dig(res, "06_steering", "behaviors", b, "steered")
        return None if v is None else bool(v)
    return test


CONCLUSIONS: tuple[Conclusion, ...] = (
    Conclusion("task_types_beat_random_top10", "the top-10 atoms by coherence cover more families with a ≥ 90%-pure "
               "atom than 10 random atoms (p < 0.05)", _task_types_beat_random(10)),
    Conclusion("task_types_beat_random", "the top-50 atoms by coherence cover more families with a ≥ 90%-pure atom "
               "than 50 random atoms (p < 0.05)", _task_types_beat_random(50)),
    Conclusion("not_topics_not_instances", "the top-50 atoms are task types: median family purity above median topic "
               "purity, and most top documents are not copies of one response", _not_topics_not_instances),
    Conclusion("granularities", "families are recovered by the union of their atoms (mean union F1 ≥ 0.5 and above "
               "the best single atom's)", _granularities),
    Conclusion("whitening_moves_to_family", "EKFAC whitening carries more of the family (and less of the nuisance) "
               "than no whitening", _whitening_moves_to_family),
    Conclusion("ekfac_beats_random_projection", "EKFAC whitening carries more of the family than a random projection",
               lambda res: _lt(_share(res, "random_projection", "family"), _share(res, "ekfac", "family"))),
    Conclusion("planted_found", "the planted behaviour has a ≥ 90%-pure atom among the top 50", _planted_found),
    Conclusion("rare_found", "every one of the smallest families has a ≥ 90%-pure atom", _rare_found),
    Conclusion("base_rates_in_range", "every behaviour's fine-tuned greedy rate on its inviting prompts lies in "
               f"[{BASE_RATE_RANGE[0]:g}, {BASE_RATE_RANGE[1]:g}] (the world's design; room to steer both ways)",
               _base_rates_in_range),
    *(Conclusion(f"{b}_steered", f"{b} is steered (budgeted α, beats nulls, intact)", _steered(b)) for b in BEHAVIORS),
)
"""Every conclusion the report draws, in report order."""


def read_headlines(res: Any) -> dict[str, float | None]:
    """Every headline number of one profile's results."""
    return {h.key: h.read(res) for h in HEADLINES}


def read_conclusions(res: Any) -> dict[str, bool | None]:
    """Every conclusion of one profile's results."""
    return {c.key: c.test(res) for c in CONCLUSIONS}
