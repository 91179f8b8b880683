"""A small, fully known set of step artifacts for testing the report and the atlas without running the
pipeline: metrics in the schemas the steps write, an atom table, training documents, steering
generations and runner records. Written through the real :class:`gatoms.build.store.StepStore`.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from typing import Any

from gatoms.build import paths
from gatoms.build.metrics import StepMetrics
from gatoms.build.store import StepStore, write_json
from gatoms.data.documents import Document, write_jsonl
from gatoms.lm.finetune import FinetuneMetrics
from gatoms.method.ablations import AblationsMetrics
from gatoms.method.atoms import AtomsMetrics
from gatoms.method.coherence import AtomRow, CoherenceMetrics, write_atom_table
from gatoms.method.ekfac import EkfacMetrics
from gatoms.method.gradients import RowIndex
from gatoms.method.gradients.extract import ExtractMetrics
from gatoms.method.steering.evaluation import SteeringMetrics

FAMILIES = ("arithmetic", "code", "yes_no_qa")
N_DOCS = 30
N_ATOMS = 8
TRICKY = 'What does </script><script>alert("x")</script> do & <b>why</b>? | pipe'
"""A prompt that would break a page that pastes data into HTML unescaped."""

ATOMS = [
    # rank, atom, coherence, active_docs, family, share, description, top_docs
    (1, 5, 0.812, 14, "arithmetic", 0.9, "arithmetic (90% of top-20)", [0, 3, 6, 9]),
    (2, 2, 0.655, 11, "yes_no_qa", 0.8, "yes_no_qa (80% of top-20)", [2, 5, 8]),
    (3, 7, 0.402, 9, "code", 0.7, "code (70% of top-20)", [1, 4, 7, 10]),
    (4, 0, 0.188, 20, "code", 0.45, "code | mixed: def return", [13, 16, 11]),
    (5, 3, 0.121, 6, "arithmetic", 0.5, "zebra distinctive words", [12, 15]),
    (6, 1, 0.090, 4, "yes_no_qa", 0.4, "yes_no_qa (40% of top-20)", [14, 17]),
    (7, 6, 0.0, 1, None, None, "dead atom", [18]),
    (8, 4, 0.0, 0, None, None, "dead atom", []),
]

METRICS: dict[str, StepMetrics] = {
    "00_finetune": FinetuneMetrics(
        seconds=101.5, n_finetune_docs=N_DOCS, n_task_families=len(FAMILIES), trainable_params=4096,
        n_lora_modules=8, base_final_loss=2.5, lora_final_loss=0.75,
        heldout={"arithmetic": 0.9, "code": 0.5, "yes_no_qa": 1.0},
        behavior_base_rates={"yes_no": 0.45, "code": 0.3, "refusal": 0.5, "bullets": 0.25, "numbered": 0.6},
        behavior_control_rates={"yes_no": 0.05, "code": 0.0, "refusal": 0.1, "bullets": 0.0, "numbered": 0.02}),
    "01_extract": ExtractMetrics(seconds=12.25, n_docs=N_DOCS, n_params=4096, n_modules=8, docs_per_second=2.45,
                                 dtype="float32"),
    "02_ekfac": EkfacMetrics(seconds=3.0, k=10, projected_dim=80, eigen_mode="ekfac", fisher="true",
                             energy_kept=0.913),
    "03_atoms": AtomsMetrics(seconds=7.5, backend="sklearn", n_atoms=N_ATOMS, alpha=0.1, median_docs_per_atom=7.5,
                             objective=12.3456),
    "04_coherence": CoherenceMetrics(
        seconds=2.0, n_coh_gt_0_5=2, n_coh_gt_0_1=5,
        top_atoms=[{"atom": a, "coherence": c, "active_docs": n, "description": d} for _, a, c, n, _, _, d, _ in ATOMS[:5]],
        families_recovered=3, n_families=3, nmi=0.7231, purity_top50=0.6875),
    "05_ablations": AblationsMetrics(
        seconds=30.0,
        sparsity={"0.01": {"median_docs_per_atom": 27.0, "n_coh_gt_0_5": 1, "n_coh_gt_0_1": 6},
                  "0.1": {"median_docs_per_atom": 7.5, "n_coh_gt_0_5": 2, "n_coh_gt_0_1": 5},
                  "1.0": {"median_docs_per_atom": 0.0, "n_coh_gt_0_5": 0, "n_coh_gt_0_1": 0}},
        methods={"no_whitening": {"families_recovered": 1, "nmi": 0.3012, "purity_top50": 0.41},
                 "kmeans": {"families_recovered": 2, "nmi": 0.5556, "purity_top50": 0.5}}),
    "06_steering": SteeringMetrics(
        seconds=240.0,
        behaviors={
            "bullets": {"atom": 7, "coherence": 0.402, "base": 0.25, "best_toward": 0.75, "best_toward_alpha": 2.0,
                        "best_away": 0.0, "best_away_alpha": 1.0, "random_max_shift": 0.05, "beats_random": True,
                        "preconditioned": {"best_toward": 0.5, "best_toward_alpha": 5.0, "best_away": 0.25,
                                           "best_away_alpha": 10.0}},
            "yes_no": {"atom": 2, "coherence": 0.655, "base": 0.5, "best_toward": 0.75, "best_toward_alpha": 1.0,
                       "best_away": 0.25, "best_away_alpha": 2.0, "random_max_shift": 0.0}},
        goals={"bullets moves >= 14pp": True, "yes_no beats random directions": False},
        composition={
            "bullets": {"direction": "toward", "alpha": 2.0, "base": 0.25, "alone": 0.75, "combined": 0.6,
                        "combined_ci": [0.4, 0.77]},
            "refusal": {"direction": "away", "alpha": 1.0, "base": 0.5, "alone": 0.1, "combined": 0.2,
                        "combined_ci": [0.1, 0.35]}}),
}
"""The metrics each step "wrote" (``seconds`` included, so write_metrics keeps them)."""

CONFIGS: dict[str, dict[str, Any]] = {
    "00_finetune": {"world": {"seed": 0}, "model": {"name_or_path": "embedded", "num_layers": 2, "hidden_size": 64},
                    "finetune": {"lora_r": 8}},
    "04_coherence": {"top_n": 20},
}
"""The configs the steps "were made with" (what their sidecars store)."""

# Steering generations: behaviour → signed α → detected flags on the inviting prompts (4 per variant).
STEERING = {
    "bullets": {0.0: [1, 0, 0, 0], 1.0: [1, 1, 0, 0], 2.0: [1, 1, 1, 0], -1.0: [0, 0, 0, 0], -2.0: [0, 0, 0, 0]},
    "yes_no": {0.0: [1, 1, 0, 0], 1.0: [1, 1, 1, 0], 2.0: [1, 1, 0, 0], -1.0: [1, 1, 0, 0], -2.0: [1, 0, 0, 0]},
}


def documents() -> list[Document]:
    docs = [Document(f"d{i:03d}", f"prompt {i} about {FAMILIES[i % len(FAMILIES)]}", f"response {i}",
                     FAMILIES[i % len(FAMILIES)], "plain") for i in range(N_DOCS)]
    docs[4] = dataclasses.replace(docs[4], prompt=TRICKY)
    return docs


def generations() -> list[dict[str, Any]]:
    recs = []
    for b, curve in STEERING.items():
        for alpha, flags in curve.items():
            kind = "clean" if alpha == 0 else "atom"
            for j, hit in enumerate(flags):
                recs.append({"behavior": b, "kind": kind, "alpha": alpha, "prompt_kind": "inviting",
                             "prompt": f"p{j}", "response": "r", "detected": bool(hit)})
            # controls never count in the atlas curve (inviting prompts only)
            recs.append({"behavior": b, "kind": kind, "alpha": alpha, "prompt_kind": "control",
                         "prompt": "c", "response": "r", "detected": True})
    return recs


def atom_rows() -> list[AtomRow]:
    docs = documents()
    return [AtomRow(rank=rank, atom=atom, coherence=coh, active_docs=n, family=fam, family_share=share,
                    top_fmt="plain", top_fmt_share=1.0, words="alpha beta", example_prompt=f"example for {atom}",
                    description=desc, top_doc_ids=tuple(docs[i].doc_id for i in top), top_docs=tuple(top))
            for rank, atom, coh, n, fam, share, desc, top in ATOMS]


TABLE2_ALL = [
    # behavior, n, base, toward, toward_alpha, away, away_alpha (over inviting + control prompts)
    ("bullets", 100, 0.33, 0.94, 2.0, 0.0, 1.0),
    ("yes_no", 100, 0.39, 0.51, 1.0, 0.0, 2.0),
]


def write_table2_csv(path) -> None:
    """06_steering's table2_steering.csv: one row per behaviour and prompt set, with Wilson intervals."""
    cols = ["behavior", "prompts", "atom", "coherence", "n", "base", "base_lo", "base_hi", "toward", "toward_lo",
            "toward_hi", "toward_dpp", "toward_alpha", "away", "away_lo", "away_hi", "away_dpp", "away_alpha"]
    atoms = {b: m["atom"] for b, m in METRICS["06_steering"].behaviors.items()}
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for b, n, base, tw, ta, aw, aa in TABLE2_ALL:
            for prompts in ("inviting", "all"):
                w.writerow([b, prompts, atoms[b], 0.5, n, base, base - 0.1, base + 0.1, tw, tw - 0.05,
                            min(1.0, tw + 0.05), 100 * (tw - base), ta, aw, 0.0, aw + 0.04, 100 * (aw - base), aa])


def write_profile(profile: str, steps: tuple[str, ...] = paths.STEPS, runs: bool = True) -> None:
    """Write the fake artifacts of ``steps`` (in pipeline order) for ``profile`` under $GATOMS_ARTIFACTS."""
    for step in steps:
        store = StepStore.open(profile, step, config=CONFIGS.get(step, {"fake": step}))
        if step == "00_finetune":
            write_jsonl(store.path(paths.TRAIN_DOCS), documents())
        elif step == "01_extract":
            docs = documents()
            RowIndex([d.doc_id for d in docs], [d.family for d in docs], [d.fmt for d in docs], [5] * len(docs),
                     [3] * len(docs)).write(store.path(paths.ROWS))
        elif step == "04_coherence":
            write_atom_table(atom_rows(), store.path(paths.ATOM_TABLE))
        elif step == "06_steering":
            with open(store.path(paths.GENERATIONS), "w") as f:
                for r in generations():
                    f.write(json.dumps(r) + "\n")
        if step == "06_steering":
            write_table2_csv(paths.figure(profile, "table2_steering", "csv"))
        store.write_metrics(METRICS[step])
        if runs:
            write_json(paths.run_record(profile, step), {
                "step": step, "profile": profile, "status": "ok", "seconds": METRICS[step].seconds + 4.0,
                "peak_rss_mib": 512.0 + 100 * paths.STEPS.index(step), "peak_rss_source": "getrusage",
                "peak_gpu_mib": None,
                "host": {"cpus": 2, "ram_gib": 23.4, "platform": "Linux", "gpu": None, "torch": "2.13.0"}})
