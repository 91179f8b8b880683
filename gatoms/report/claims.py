"""RESULTS.md sections that test the paper's claims against the labels and show the spread over seeds.

Read from step 04's ``claims`` (:func:`gatoms.method.claims.discovery_claims`), step 05's rows and
``figures/<profile>/seeds.json``; every verdict is a :data:`gatoms.report.headline.CONCLUSIONS` test, said
plainly when the claim does not hold, and marked as flipping when it flips between seeds.
"""

from __future__ import annotations

from typing import Any

from gatoms.build.tables import markdown_table as md_table
from gatoms.report.format import num
from gatoms.report.headline import CONCLUSIONS, HEADLINES, dig
from gatoms.report.seeds import seeds_verdict, spread

PAPER_CLAIMED = "claimed, not measured (no labels)"


def verdict(res: Any, key: str) -> str:
    """This run's verdict on a conclusion, and across seeds when ``make seeds`` has run."""
    c = next(c for c in CONCLUSIONS if c.key == key)
    v = c.test(res)
    result = "not measured here" if v is None else "holds" if v else "does not hold"
    text = f"Claim: {c.claim}. Result on this run: **{result}**."
    across = seeds_verdict(res.seeds, key, at_least=1)
    if across:
        text += f" Across seeds ({len(res.seeds['profiles'])}): **{across}**."
    return text


def _task_types(cl: dict[str, Any], res: Any) -> str:
    rows = []
    for label, f in cl.get("found", {}).items():
        for n, v in f["vs_random"].items():
            rows.append([label, n, num(v["observed"]), f"{num(v['random_mean'])} ± {num(v['random_sd'])}", num(v["p"], 4)])
    text = ("Values (families, topics) with a ≥ 90%-pure atom (top-20 documents) among the top-N atoms by "
            "coherence, against N atoms drawn at random (seeded; p = (1 + draws finding as many) / (1 + draws)).\n\n")
    text += md_table(["Label", "N", "Top-N by coherence", "N random atoms (mean ± sd)", "p"], rows, "lrrrr")
    auc = [f"{label} {num(f['auroc'])} ({f['n_pure_atoms']} pure atoms)" for label, f in cl.get("found", {}).items()]
    text += f"\n\nAUROC of coherence for \"≥ 90% pure\": {'; '.join(auc) or '—'}. Paper: {PAPER_CLAIMED}."
    return text + "\n\n" + verdict(res, "task_types_beat_random_top10") + " " + verdict(res, "task_types_beat_random")


def _granularity(cl: dict[str, Any], res: Any) -> str:
    rows = [[kind, num(g["q25"]), num(g["median"]), num(g["q75"]), num(g["spearman_coherence"])]
            for kind, g in cl.get("granularity", {}).items()]
    text = ("Per atom, over its top-20 documents: the share of the most common family, topic and response "
            "string (a share near 1 by response = copies of one document: an instance, not a type); quartiles "
            "over the top-50 atoms by coherence, and Spearman's ρ with coherence over all atoms.\n\n")
    text += md_table(["Share of the most common", "q25", "median", "q75", "ρ with coherence"], rows, "lrrrr")
    return text + f"\n\nPaper: {PAPER_CLAIMED}.\n\n" + verdict(res, "not_topics_not_instances")


def _granularities(cl: dict[str, Any], res: Any, m04: Any) -> str:
    if "union_f1" not in cl:
        return "*Not measured*: no family labels."
    rows = [[r["family"], num(r["n_docs"]), num(r["n_atoms"]), num(r["precision"]), num(r["recall"]), num(r["f1"])]
            for r in cl["union_f1"]]
    p = cl.get("partition", {})
    text = ("Per family, the union of the atoms whose majority family (top-20 documents) it is, against the "
            "family's documents.\n\n")
    text += md_table(["Family", "Docs", "Atoms", "Union precision", "Union recall", "Union F1"], rows, "lrrrrr")
    text += (f"\n\nMean union F1 {num(cl.get('mean_union_f1'))} vs best single atom {num(m04.mean_best_f1)}. "
             f"Strongest atom vs family: NMI {num(p.get('nmi'))}, homogeneity {num(p.get('homogeneity'))}, "
             f"completeness {num(p.get('completeness'))}, V-measure {num(p.get('v_measure'))}. Paper: {PAPER_CLAIMED}.")
    return text + "\n\n" + verdict(res, "granularities")


def _whitening(res: Any) -> str:
    m05 = res.metrics.get("05_ablations")
    if m05 is None:
        return "*Not run*: `make ablations`."
    labels = [k[:-6] for k in next(iter(m05.methods.values()), {}) if k.endswith("_share")]
    head = ["Setting", *(f"{lab} share" for lab in labels), "family AMI", "NMI", "V-measure", "purity top-50"]

    def line(name: str, v: dict[str, Any]) -> list[str]:
        return [name, *(num(v.get(f"{lab}_share")) for lab in labels), num(v.get("family_ami")), num(v.get("nmi")),
                num(v.get("v_measure")), num(v.get("purity_top50"))]

    text = ("How much of each label the strongest-atom assignment carries: share = MI(atom; label) / H(label); "
            f"AMI adjusts for chance. Every fit: {_settings(m05)}.\n\n")
    text += md_table(head, [line(f"`{m}`", v) for m, v in m05.methods.items()], "l" + "r" * (len(head) - 1))
    if m05.damping:
        text += "\n\nDamping sweep of the EKFAC whitening (ε = factor × mean eigenvalue):\n\n"
        text += md_table(["ε factor", *head[1:]], [line(k, v)[0:] for k, v in m05.damping.items()], "r" * len(head))
    text += f"\n\nPaper: argued (§3.2), not measured.\n\n{verdict(res, 'whitening_moves_to_family')} "
    return text + verdict(res, "ekfac_beats_random_projection")


def _settings(m05: Any) -> str:
    s = m05.fit_settings or {}
    if not s:
        return f"backend `{m05.fit_backend}`"
    same = "the main run's dictionary settings" if s.get("same_as_main_run") else "not the main run's settings"
    return (f"backend `{s.get('backend')}`, max_iter {s.get('max_iter')}, {s.get('n_atoms')} atoms, α = {s.get('alpha')}, "
            f"seed {s.get('seed')} ({same})")


def _rare(cl: dict[str, Any], res: Any) -> str:
    parts = []
    for name in ("planted", "nuisance"):
        if name in cl:
            v = cl[name]
            parts.append(f"`{name}` = 1 ({num(v['n_docs'])} documents): first ≥ 90% atom at coherence rank "
                         f"{num(v['rank'])}; pure atoms in the top-N: "
                         + ", ".join(f"{n}: {k}" for n, k in v["n_pure_in_top"].items()) + ".")
    text = " ".join(parts) or "No planted label in the documents."
    if cl.get("rare"):
        text += "\n\n" + md_table(["Smallest families", "Docs", "Share of docs", "≥ 90%-pure atom", "Its coherence rank"],
                                  [[r["family"], num(r["n_docs"]), num(r["share_of_docs"]), "yes" if r["found"] else "**no**",
                                    num(r["rank"])] for r in cl["rare"]], "lrrrr")
    return text + f"\n\n{verdict(res, 'planted_found')} {verdict(res, 'rare_found')}"


def section_claims(res: Any, not_run: str) -> str:
    """"The paper's claims, tested": claims 1–5 of issue 11 with their verdicts."""
    m04 = res.metrics.get("04_coherence")
    if m04 is None:
        return not_run
    cl = m04.claims or {}
    if not cl:
        return ("*Not measured*: this run's `04_coherence` predates the claim metrics — rebuild it with "
                f"`make coherence PROFILE={res.profile} FORCE=1`.")
    skipped = "; ".join(f"`{k}`: {v}" for k, v in cl.get("skipped", {}).items())
    parts = ["Each claim of the paper as a number that could come out against it. Labels in the documents: "
             + ", ".join(f"`{lab}`" for lab in cl.get("labels", [])) + "." + (f" Skipped — {skipped}." if skipped else ""),
             "### 1. High-coherence atoms are task types", _task_types(cl, res),
             "### 2. Task types, not topics, not instances", _granularity(cl, res),
             "### 3. Multiple granularities", _granularities(cl, res, m04),
             "### 4. Whitening is essential", _whitening(res),
             "### 5. Rare and unasked behaviours", _rare(cl, res),
             "### 6. Demoted: families recovered",
             f"\"Families recovered\" (best single atom F1 ≥ 0.5: {num(m04.families_recovered)} of "
             f"{num(m04.n_families)}) measures the dictionary's granularity more than discovery; it stays a column of "
             "the ground-truth tables, not a headline."]
    return "\n\n".join(parts)


def section_seeds(res: Any) -> str:
    """The spread over seeds beside this run's numbers, and which conclusions hold in every seed."""
    if not res.seeds:
        return (f"*Not run*: one draw only. `make seeds PROFILE={res.profile}` runs the pipeline under several seeds "
                "(world, model and dictionary together) and writes SEEDS.md; until then no number here says how "
                "much it moves between draws.")
    s = res.seeds
    text = f"Seeds: {', '.join(f'`{p}`' for p in s['profiles'])} ([SEEDS.md](SEEDS.md)).\n\n"
    text += md_table(["Conclusion", "This run", "Across seeds"],
                     [[c.claim, {None: "—", True: "yes", False: "no"}[c.test(res)], s["conclusions"].get(c.key, {}).get(
                         "verdict", "—")] for c in CONCLUSIONS], "lll")
    text += "\n\nA conclusion that flips between seeds is not a finding.\n\n"
    text += md_table(["Number", "Paper", "This run", "Mean [min, max] over seeds"],
                     [[h.label, "—" if h.paper is None else str(h.paper), num(h.read(res)),
                       spread(s["headlines"].get(h.key))] for h in HEADLINES if dig(res, h.step) is not None], "lrrr")
    return text
