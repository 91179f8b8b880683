"""The results report: ``figures/<profile>/RESULTS.md``, generated from the steps' metrics, never typed.

    python -m gatoms.report --profile tiny        (what ``make report`` runs)

Puts the paper's numbers beside ours for its Table 1 (sparsity sweep), Table 2 (steering), Table 3 /
Appendix B (wall time and peak memory of every step, as measured by :mod:`gatoms.build.runner`), the top of
Table 4 / Appendix C (the atoms), and the ground-truth discovery metrics the paper could not measure.
Everything comes from ``artifacts/<profile>/<step>/metrics.json``, the runner's ``<step>.run.json``
records and ``04_coherence/atom_table.csv``; a step that has not run yet is reported as "not run" with
the make target that builds it, so the report can be written at any point of the pipeline.

The paper's numbers are the ones in ``shared/paper/gradient_atoms.txt``; cells its text extraction lost
(mathematical expressions) are marked "lost", never guessed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from gatoms.build import paths
from gatoms.build.store import write_text
from gatoms.build.tables import markdown_table as md_table
from gatoms.report.format import mib, num, pct, pp, seconds  # noqa: F401  (pp: re-exported for the tests)
from gatoms.data.behaviors import BEHAVIORS
from gatoms.report.paper import (BEHAVIOR_NAMES, PAPER_SETUP, PAPER_TABLE1, PAPER_TABLE2, PAPER_TABLE3,
                                 PAPER_TABLE3_TOTAL, PAPER_TABLE4)
from gatoms.report.claims import section_claims, section_seeds, verdict
from gatoms.report.steering import section_table2 as steering_section
from gatoms.report.results import Results, load_results, load_snapshot, snapshot_file

log = logging.getLogger(__name__)

NOT_RUN = "*not run*"

# ---- formatting -----------------------------------------------------------------------------------------
def not_run(res: Results, step: str) -> str:
    return (f"{NOT_RUN}: step `{step}` has no complete artifacts for profile `{res.profile}` — "
            f"build it with `make {paths.make_target(step)} PROFILE={res.profile}`.")


# ---- sections -----------------------------------------------------------------------------------------
def _of(m: Any, key: str) -> Any:
    return getattr(m, key) if m is not None else None


def setup_rows(res: Results) -> list[list[str]]:
    """The setup table's rows: what, the paper's value, this profile's."""
    m00, m01, m02, m03 = (res.metrics[s] for s in ("00_finetune", "01_extract", "02_ekfac", "03_atoms"))
    coh = res.configs.get("04_coherence") or {}
    return [
        ["Model", PAPER_SETUP["model"], _model_name(res)],
        ["Fine-tuning documents", num(PAPER_SETUP["n_finetune_docs"]), num(_of(m00, "n_finetune_docs"))],
        ["Task families (labels)", "unlabelled", num(_of(m00, "n_task_families"))],
        ["Trainable LoRA parameters D", num(PAPER_SETUP["trainable_params"]), num(_of(m00, "trainable_params"))],
        ["LoRA modules M", num(PAPER_SETUP["n_lora_modules"]), num(_of(m00, "n_lora_modules") or _of(m01, "n_modules"))],
        ["Documents with gradients N", num(PAPER_SETUP["n_finetune_docs"]), num(_of(m01, "n_docs"))],
        ["Eigen-directions per module k", num(PAPER_SETUP["k"]), num(_of(m02, "k"))],
        ["Projected dimension M·k", num(PAPER_SETUP["projected_dim"]), num(_of(m02, "projected_dim"))],
        ["Atoms", num(PAPER_SETUP["n_atoms"]), num(_of(m03, "n_atoms"))],
        ["Sparsity α", num(PAPER_SETUP["alpha"], 2), num(m03.alpha, 2) if m03 else "—"],
        ["Top documents for coherence", num(PAPER_SETUP["top_docs"]), num(coh.get("top_n"))],
    ]


def section_setup(res: Results) -> str:
    m00, m01, m02, m03 = (res.metrics[s] for s in ("00_finetune", "01_extract", "02_ekfac", "03_atoms"))
    text = md_table(["", "Paper", "Ours"], setup_rows(res), "lrr")
    details = []
    if m00:
        details.append(f"fine-tuning loss (response tokens) {num(m00.base_final_loss)} before LoRA → "
                       f"{num(m00.lora_final_loss)} after")
    if m01:
        details.append(f"gradients in {m01.dtype}, {num(m01.docs_per_second, 1)} documents/s")
    if m02:
        details.append(f"eigenvalues: {m02.eigen_mode}, Fisher: {m02.fisher}, "
                       f"energy kept by the top-k: {num(m02.energy_kept)}")
    if m03:
        details.append(f"dictionary backend `{m03.backend}`, objective {num(m03.objective, 4)}")
    if details:
        text += "\n\n" + "; ".join(details) + "."
    return text


def _model_name(res: Results) -> str:
    """The base model as 00_finetune's stored config names it (``embedded``: the tiny Gemma-3)."""
    cfg = res.configs.get("00_finetune")
    if not cfg:
        return "—"
    model = cfg.get("model") if isinstance(cfg.get("model"), dict) else cfg
    name = model.get("name_or_path")
    if name in (None, "embedded"):
        size = [f"{model[k]} {label}" for k, label in (("num_layers", "layers"), ("hidden_size", "wide"))
                if model.get(k) is not None]
        return "tiny Gemma-3 built in code" + (f" ({', '.join(size)})" if size else "")
    return f"`{name}`"


def section_table1(res: Results) -> str:
    m05, m04, m03 = res.metrics["05_ablations"], res.metrics["04_coherence"], res.metrics["03_atoms"]
    ours = {float(a): v for a, v in m05.sparsity.items()} if m05 else {}
    rows = []
    for alpha in sorted(set(PAPER_TABLE1) | set(ours)):
        p = PAPER_TABLE1.get(alpha, {})
        o = ours.get(alpha, {})
        rows.append([
            str(alpha),
            num(p.get("median_docs_per_atom")), num(o.get("median_docs_per_atom"), 1),
            num(p.get("n_coh_gt_0_5")), num(o.get("n_coh_gt_0_5")),
            num(p.get("n_coh_gt_0_1")), num(o.get("n_coh_gt_0_1")),
        ])
    header = ["α", "median docs/atom (paper)", "(ours)", "coh > 0.5 (paper)", "(ours)",
              "coh > 0.1 (paper)", "(ours)"]
    text = md_table(header, rows)
    text += (f"\n\nCounts of atoms out of {num(PAPER_SETUP['n_atoms'])} (paper) and "
             f"{num(m03.n_atoms if m03 else None)} (ours); the paper gives its medians approximately (~).")
    if not m05:
        text += "\n\n" + not_run(res, "05_ablations")
    if m04 and m03:
        text += (f"\n\nMain run (α = {num(m03.alpha, 2)}, `04_coherence`): "
                 f"{num(m04.n_coh_gt_0_5)} atoms with coherence > 0.5 and "
                 f"{num(m04.n_coh_gt_0_1)} with > 0.1; median "
                 f"{num(m03.median_docs_per_atom, 1)} active documents per atom.")
    return text


def section_table2(res: Results) -> str:
    return steering_section(res.metrics["06_steering"], not_run(res, "06_steering"), res.seeds)


def section_table3(res: Results) -> str:
    rows = []
    total_metrics = total_wall = 0.0
    for step in paths.STEPS:
        p = PAPER_TABLE3.get(step, {})
        m = res.metrics[step]
        r = res.runs[step] or {}
        if m:
            total_metrics += float(m.seconds or 0)
        if r.get("seconds") is not None:
            total_wall += float(r["seconds"])
        rows.append([
            f"`{step}`", p.get("task", "— (not timed)"), p.get("resources", "—"), p.get("time", "—"),
            seconds(m.seconds) if m else f"{NOT_RUN}: `make {paths.make_target(step)} PROFILE={res.profile}`",
            seconds(r.get("seconds")) if r else "—",
            mib(r.get("peak_rss_mib")) if r else "—",
            mib(r.get("peak_gpu_mib")) if r.get("peak_gpu_mib") else "—",
        ])
    rows.append(["**total**", "", "", PAPER_TABLE3_TOTAL, seconds(total_metrics),
                 seconds(total_wall) if total_wall else "—", "", ""])
    header = ["Step", "Paper: task", "Paper: resources", "Paper: time", "Ours: compute",
              "Ours: wall (with kernel start)", "Ours: peak RAM", "Ours: peak GPU memory"]
    text = md_table(header, rows, "llllrrrr")
    hosts = {_host_line(r["host"]) for r in res.runs.values() if r and r.get("host")}
    if hosts:
        text += "\n\nMeasured on: " + "; ".join(sorted(hosts)) + "."
    text += ("\n\n\"compute\": the step's own `seconds` in its `metrics.json` (from opening its artifacts to "
             "writing its metrics); \"wall\" and peak memory: the runner's record of the whole notebook "
             "(`artifacts/<profile>/notebooks/<step>.run.json`; peak resident memory of the notebook's "
             "kernel, from `getrusage`). The paper extracted gradients on 8 A100 GPUs and ran the other "
             "steps on a CPU with the memory it lists; it did not time fine-tuning, the ablations or steering.")
    return text


def _host_line(h: dict[str, Any]) -> str:
    gpu = h.get("gpu") or "no GPU"
    return f"{h.get('cpus', '?')} CPU cores, {h.get('ram_gib', '?')} GiB RAM, {gpu}, torch {h.get('torch', '?')}"


def section_table4(res: Results, top: int = 10) -> str:
    paper_rows = [[r["rank"], f"#{r['atom']}", num(r["coherence"]), num(r["active_docs"]), r["description"]]
                  for r in PAPER_TABLE4[:top]]
    text = "**Paper** (descriptions written by hand):\n\n"
    text += md_table(["Rank", "Atom", "Coherence", "Active docs", "Description"], paper_rows, "rrrrl")
    text += "\n\n**Ours** (descriptions generated: majority task family of the top-20 documents and its share, " \
            "else distinctive words):\n\n"
    if not res.atom_table:
        return text + not_run(res, "04_coherence")
    rows = [[r.rank, f"#{r.atom}", num(r.coherence), num(r.active_docs), r.description or "—"]
            for r in sorted(res.atom_table, key=lambda r: r.rank)[:top]]
    text += md_table(["Rank", "Atom", "Coherence", "Active docs", "Description"], rows, "rrrrl")
    text += "\n\nEvery atom, with its top documents: [the atom atlas](atlas.html) (open it from disk)."
    return text


def section_discovery(res: Results) -> str:
    m04, m05 = res.metrics["04_coherence"], res.metrics["05_ablations"]
    if not m04:
        return not_run(res, "04_coherence")
    text = ("The paper had no labels, so it could not say whether atoms recover the task families; the "
            "synthetic world has them. *NMI* and the *V-measure* compare each document's strongest atom with its "
            "family; *purity* is the mean majority-family share of the top-20 documents of the top-50 atoms; a "
            "family is *recovered* when some atom's active documents match it with F1 ≥ 0.5 (kept as a column, "
            "not a headline: it measures the dictionary's granularity). The claims themselves are tested in the "
            "next section.\n\n")
    part = (m04.claims or {}).get("partition", {})
    rows = [["Gradient atoms (EKFAC, ours)", num(m04.nmi), num(part.get("v_measure")), num(m04.purity_top50),
             _recovered(m04.families_recovered, m04.n_families)]]
    for method, v in (m05.methods if m05 else {}).items():
        rows.append([f"`{method}` (05_ablations)", num(v.get("nmi")), num(v.get("v_measure")),
                     num(v.get("purity_top50")), _recovered(v.get("families_recovered"), m04.n_families)])
    text += md_table(["Method", "NMI", "V-measure", "Purity (top 50)", "Families recovered"], rows, "lrrrr")
    sizes = m05.dictionary_size if m05 else {}
    if sizes:
        text += ("\n\nDictionary size (same α and X; `ablations.atom_counts`): with many atoms each family "
                 "splits into several precise sub-atoms, so no single atom recalls a whole family.\n\n")
        text += md_table(["Atoms", "NMI", "V-measure", "Purity (top 50)", "Mean best F1", "Families recovered",
                          "Median docs / atom"],
                         [[k, num(v.get("nmi")), num(v.get("v_measure")), num(v.get("purity_top50")),
                           num(v.get("mean_best_f1")), _recovered(v.get("families_recovered"), m04.n_families),
                           num(v.get("median_docs_per_atom"), 0)] for k, v in sizes.items()], "rrrrrrr")
    text += "\n\nPaper: — (no ground truth)."
    if not m05:
        text += "\n\nAblations and baselines: " + not_run(res, "05_ablations")
    return text


def _recovered(got: int | None, n: int | None) -> str:
    if got is None:
        return "—"
    return f"{got} / {n}" if n is not None else f"{got}"


def section_behaviors_base(res: Results) -> str:
    m00 = res.metrics["00_finetune"]
    if not m00:
        return not_run(res, "00_finetune")
    header = ["Behaviour", "Paper base rate (all 100 prompts)", "Ours (inviting prompts, greedy)"]
    rows = [[BEHAVIOR_NAMES[b], pct(PAPER_TABLE2[b]["base"]), pct(m00.behavior_base_rates.get(b))] for b in BEHAVIORS]
    if m00.behavior_control_rates:
        header.append("Ours (neutral controls)")
        for r, b in zip(rows, BEHAVIORS):
            r.append(pct(m00.behavior_control_rates.get(b)))
    text = md_table(header, rows) + "\n\n" + verdict(res, "base_rates_in_range")
    if m00.heldout:
        text += "\n\nHeld-out check of the fine-tuned model per task family (correct or in the right format):\n\n"
        text += md_table(["Task family", "Held-out"], [[fam, pct(v)] for fam, v in sorted(m00.heldout.items())])
    return text


def section_figures(res: Results) -> str:
    if not res.figures:
        return "*No figures yet.*"
    return "\n\n".join(f"![{name[:-4]}]({name})" for name in res.figures)


def render(res: Results, top: int = 10) -> str:
    """The whole report as Markdown."""
    done = [s for s in paths.STEPS if res.ran(s)]
    missing = [s for s in paths.STEPS if not res.ran(s)]
    status = f"all {len(paths.STEPS)} steps complete" if not missing else \
        f"{len(done)} of {len(paths.STEPS)} steps complete; not run: {', '.join(f'`{s}`' for s in missing)}"
    parts = [
        f"# Results — profile `{res.profile}`",
        f"Generated by `python -m gatoms.report --profile {res.profile}` (`make report PROFILE={res.profile}`) "
        f"from `artifacts/{res.profile}/*/metrics.json`; do not edit by hand. Status: {status}. The paper's "
        f"numbers are from *Gradient Atoms* (Gemma-3 4B IT); \"lost\" marks a number its text extraction "
        f"dropped.",
        "## Setup", section_setup(res),
        "## Table 1 — effect of the sparsity penalty α", section_table1(res),
        "## Table 2 — steering with atoms", section_table2(res),
        "## Base rates and held-out check of the fine-tuned model", section_behaviors_base(res),
        "## Table 3 — compute: wall time and peak memory of every step", section_table3(res),
        f"## Table 4 — the top {top} atoms by coherence", section_table4(res, top),
        "## Ground truth — does discovery recover the task families?", section_discovery(res),
        "## The paper's claims, tested against the labels", section_claims(res, not_run(res, "04_coherence")),
        "## Seeds — the spread, not one draw", section_seeds(res),
        "## Figures", section_figures(res),
    ]
    return "\n\n".join(parts).rstrip() + "\n"
def render_snapshot(profile: str, top: int = 10) -> str:
    """The report rendered from the committed snapshot alone (no artifacts needed): a committed
    ``RESULTS.md`` must equal this, which proves it was generated, not typed."""
    return render(load_snapshot(profile), top)


def write_report(profile: str, top: int = 10) -> Path:
    """Write ``figures/<profile>/RESULTS.md`` from the profile's artifacts, and beside it the snapshot of
    what it was rendered from (``results.json``); returns the report's path."""
    res = load_results(profile)
    out = paths.report_file(profile)
    write_text(snapshot_file(profile), json.dumps(res.to_json(), indent=1, default=str) + "\n")
    write_text(out, render(res, top))
    log.info("wrote %s (%d of %d steps complete)", out, sum(map(res.ran, paths.STEPS)), len(paths.STEPS))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gatoms.report", description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="tiny", help="profile whose artifacts to report (configs/<profile>.yaml)")
    ap.add_argument("--top", type=int, default=10, help="atoms shown in the Table 4 comparison")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out = write_report(args.profile, args.top)
    print(f"[gatoms] report       profile={args.profile:<8} {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
