"""A small, fully known set of step artifacts for testing the report and the atlas without running the
pipeline: metrics in the schemas the steps write, an atom table, training documents, steering
generations and runner records. Written through the real :class:`gatoms.build.store.StepStore`.
"""

from __future__ import annotations

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
from gatoms.method.steering.metrics import BestCell, CompositionPart, CurvePoint, SteeredAtom, SteeringMetrics
from gatoms.method.steering.nulls import NullResult

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

def claims(top50: int = 3, p50: float = 0.004, nuisance_rank: int | None = 2) -> dict[str, Any]:
    """Step 04's claim metrics (:func:`gatoms.method.claims.discovery_claims`) with known values."""
    def vs(n: int, observed: int, mean: float, p: float) -> dict[str, Any]:
        return {"n": n, "observed": observed, "random_mean": mean, "random_sd": 0.5, "p": p, "n_draws": 1000}

    return {
        "labels": ["family", "fmt", "nuisance", "topic"],
        "skipped": {"planted": "no 'planted' label with value '1' in the documents"},
        "found": {"family": {"vs_random": {"10": vs(8, 2, 1.5, 0.3), "50": vs(8, top50, 1.25, p50),
                                           "100": vs(8, 3, 3.0, 1.0)}, "auroc": 0.8125, "n_pure_atoms": 3, "n_values": 3},
                  "topic": {"vs_random": {"10": vs(8, 0, 0.5, 1.0), "50": vs(8, 1, 1.0, 0.6),
                                          "100": vs(8, 1, 1.0, 1.0)}, "auroc": 0.4375, "n_pure_atoms": 1, "n_values": 4}},
        "granularity": {"family": {"q25": 0.5, "median": 0.75, "q75": 0.9, "mean": 0.7, "spearman_coherence": 0.81},
                        "topic": {"q25": 0.2, "median": 0.3, "q75": 0.4, "mean": 0.3, "spearman_coherence": -0.1},
                        "response": {"q25": 0.05, "median": 0.1, "q75": 0.2, "mean": 0.15, "spearman_coherence": 0.2}},
        "union_f1": [{"family": f, "n_docs": 10, "n_atoms": 2, "precision": 0.8, "recall": 0.9, "f1": 0.8471}
                     for f in FAMILIES],
        "mean_union_f1": 0.8471,
        "partition": {"nmi": 0.7231, "homogeneity": 0.9, "completeness": 0.6, "v_measure": 0.72},
        "rare": [{"family": "code", "n_docs": 10, "share_of_docs": 0.3333, "found": True, "rank": 3},
                 {"family": "arithmetic", "n_docs": 10, "share_of_docs": 0.3333, "found": True, "rank": 1}],
        "nuisance": {"n_docs": 9, "rank": nuisance_rank, "in_top": {"10": nuisance_rank is not None},
                     "n_pure_atoms": 1, "n_pure_in_top": {"10": 1, "50": 1, "100": 1}},
    }


def method_alignment(family: float, nuisance: float) -> dict[str, float]:
    """05's per-row label alignment columns."""
    return {"family_share": family, "family_ami": round(family - 0.05, 4), "nuisance_share": nuisance,
            "nuisance_ami": round(nuisance / 2, 4), "v_measure": round(family + 0.01, 4)}


def steered_atom(**changes: Any) -> SteeredAtom:
    """A steered behaviour's record (bullets, atom 7, steered), with ``changes``."""
    values = dict(atom=7, coherence=0.402, chosen_by="detector", share=1.0, accepted=True, alpha=2.0,
                  budget_reached=True, kl_dev=0.03, n=4, base=0.25, base_ci=[0.05, 0.7], toward=0.75,
                  toward_ci=[0.3, 0.95], away=0.0, away_ci=[0.0, 0.49], signed=0.375, signed_ci=[0.125, 0.5],
                  symmetric=0.125, symmetric_ci=[-0.125, 0.375], toward_shift=0.5, toward_shift_ci=[0.25, 0.75],
                  away_shift=-0.25, away_shift_ci=[-0.5, 0.0], control_base=0.0, control_toward=0.05,
                  control_away=0.0, degenerate_toward=0.0, degenerate_away=0.0, intact=True, kl=0.035,
                  capability=0.8, capability_clean=0.81, ppl_ratio=1.01, intact_reasons=[], significant=True,
                  beats_nulls=True, steered=True, verdict="steered",
                  nulls={"random": NullResult("random", 3, 0.375, 0.25, 100.0, 0.0, -0.1, 0.1, [-0.1, 0.0, 0.1],
                                              ["random:0", "random:1", "random:2"], [0.004])},
                  best_toward=BestCell(2.0, 0.75, [0.3, 0.95], 0.8, True),
                  best_away=BestCell(-1.0, 0.0, [0.0, 0.49], 0.0, True),
                  best_toward_any=BestCell(2.0, 0.75, [0.3, 0.95], 0.8, True),
                  best_away_any=BestCell(-1.0, 0.0, [0.0, 0.49], 0.0, True),
                  curve=[CurvePoint(a, r, [max(0.0, r - 0.3), min(1.0, r + 0.3)], 0.0, 0.01 * abs(a), 0.8, True)
                         for a, r in ((-2.0, 0.0), (-1.0, 0.0), (0.0, 0.25), (1.0, 0.5), (2.0, 0.75))],
                  preconditioned={"signed": 0.125, "signed_ci": [0.0, 0.25], "toward": 0.5, "away": 0.25, "kl": 0.02})
    values.update(changes)
    return SteeredAtom(**values)


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
        families_recovered=3, n_families=3, nmi=0.7231, purity_top50=0.6875, mean_best_f1=0.55, claims=claims()),
    "05_ablations": AblationsMetrics(
        seconds=30.0,
        sparsity={"0.01": {"median_docs_per_atom": 27.0, "n_coh_gt_0_5": 1, "n_coh_gt_0_1": 6},
                  "0.1": {"median_docs_per_atom": 7.5, "n_coh_gt_0_5": 2, "n_coh_gt_0_1": 5},
                  "1.0": {"median_docs_per_atom": 0.0, "n_coh_gt_0_5": 0, "n_coh_gt_0_1": 0}},
        methods={"no_whitening": {"families_recovered": 1, "nmi": 0.3012, "purity_top50": 0.41,
                                  **method_alignment(0.3, 0.5)},
                 "ekfac": {"families_recovered": 3, "nmi": 0.7231, "purity_top50": 0.6875, **method_alignment(0.7, 0.1)},
                 "random_projection": {"families_recovered": 0, "nmi": 0.2, "purity_top50": 0.35,
                                       **method_alignment(0.2, 0.6)},
                 "kmeans": {"families_recovered": 2, "nmi": 0.5556, "purity_top50": 0.5}},
        damping={"0.001": {"nmi": 0.7, **method_alignment(0.65, 0.12)}, "0.1": {"nmi": 0.7231, **method_alignment(0.7, 0.1)},
                 "1000": {"nmi": 0.31, **method_alignment(0.31, 0.48)}},
        fit_settings={"backend": "sklearn", "max_iter": 100, "n_atoms": N_ATOMS, "alpha": 0.1, "seed": 42,
                      "same_as_main_run": True}),
    "06_steering": SteeringMetrics(
        seconds=240.0,
        behaviors={"bullets": steered_atom(), "yes_no": steered_atom(
            atom=2, coherence=0.655, alpha=12.5, base=0.5, toward=0.25, away=0.0, signed=0.125,
            signed_ci=[-0.05, 0.3], symmetric=-0.375, symmetric_ci=[-0.5, -0.25], toward_shift=-0.25,
            away_shift=-0.5, intact=False, capability=0.6, intact_reasons=["capability 60% vs clean 81%"],
            significant=False, beats_nulls=False, steered=False,
            verdict="not steered: not intact at the budgeted α (capability 60% vs clean 81%)",
            nulls={"random": NullResult("random", 3, 0.125, 0.5, 50.0, 0.1, 0.0, 0.2, [0.0, 0.1, 0.2],
                                        ["random:0", "random:1", "random:2"], [0.01])},
            best_toward=None, best_away=BestCell(-2.0, 0.25, [0.1, 0.5], 0.3, True),
            best_toward_any=BestCell(1.0, 0.75, [0.4, 0.9], 0.8, False),
            best_away_any=BestCell(-2.0, 0.25, [0.1, 0.5], 0.3, True))},
        oracle={"bullets": steered_atom(chosen_by="fmt", same_atom=True),
                "yes_no": steered_atom(atom=3, chosen_by="fmt", alpha=4.0, signed=0.2, signed_ci=[0.1, 0.3])},
        composition={"bullets": CompositionPart("toward", 2.0, 0.25, 0.75, 0.6, [0.4, 0.77]),
                     "refusal": CompositionPart("away", 1.0, 0.5, 0.1, 0.2, [0.1, 0.35])},
        composition_intact=False, composition_kl=0.09, steered=["bullets"], not_steered=["yes_no"],
        goals={"bullets moves >= 14pp at the budgeted α, model intact": True,
               "yes_no beats every null at the budgeted α": False},
        alphas=[1.0, 2.0], kl_budget=0.03, kl_budget_rule="finetune", history="The budget was changed after a first run.", kl_max=0.06,
        intact_rule="KL ≤ 0.06 and capability within 5 points", null_kinds=["random"], n_null=3, grader="world",
        capability_clean=0.81, n_capability=110, finetune_kl=0.031,
        n_prompts={"dev_inviting": 4, "dev_control": 2, "test_inviting": 8, "test_control": 4}),
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
                recs.append({"behavior": b, "kind": kind, "alpha": alpha, "prompt_kind": "inviting", "split": "test",
                             "prompt_id": f"{b}-{j}", "prompt": f"p{j}", "response": "r", "detected": bool(hit)})
            # controls and dev prompts never count in the atlas curve (test inviting prompts only)
            recs.append({"behavior": b, "kind": kind, "alpha": alpha, "prompt_kind": "control", "split": "test",
                         "prompt_id": f"{b}-c", "prompt": "c", "response": "r", "detected": True})
            recs.append({"behavior": b, "kind": kind, "alpha": alpha, "prompt_kind": "inviting", "split": "dev",
                         "prompt_id": f"{b}-d", "prompt": "d", "response": "r", "detected": True})
    return recs


def atom_rows() -> list[AtomRow]:
    docs = documents()
    return [AtomRow(rank=rank, atom=atom, coherence=coh, active_docs=n, family=fam, family_share=share,
                    top_fmt="plain", top_fmt_share=1.0, words="alpha beta", example_prompt=f"example for {atom}",
                    description=desc, top_doc_ids=tuple(docs[i].doc_id for i in top), top_docs=tuple(top))
            for rank, atom, coh, n, fam, share, desc, top in ATOMS]


def write_profile(profile: str, steps: tuple[str, ...] = paths.STEPS, runs: bool = True,
                  metrics: dict[str, StepMetrics] | None = None) -> None:
    """Write the fake artifacts of ``steps`` (in pipeline order) for ``profile`` under $GATOMS_ARTIFACTS;
    ``metrics`` replaces some steps' :data:`METRICS` (another seed's numbers)."""
    metrics = {**METRICS, **(metrics or {})}
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
        store.write_metrics(metrics[step])
        if runs:
            write_json(paths.run_record(profile, step), {
                "step": step, "profile": profile, "status": "ok", "seconds": metrics[step].seconds + 4.0,
                "peak_rss_mib": 512.0 + 100 * paths.STEPS.index(step), "peak_rss_source": "getrusage",
                "peak_gpu_mib": None,
                "host": {"cpus": 2, "ram_gib": 23.4, "platform": "Linux", "gpu": None, "torch": "2.13.0"}})
