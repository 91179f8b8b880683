"""figures/COMPARISON.md: the paper and the profiles side by side, rendered from the snapshots alone."""

from __future__ import annotations

import dataclasses

import fake_results as fake

from gatoms.report import compare
from gatoms.report import markdown as report


def _two_profiles():
    fake.write_profile("one")
    report.write_report("one")
    rates = {**fake.METRICS["00_finetune"].behavior_base_rates, "bullets": 0.05}
    fake.write_profile("two", steps=("00_finetune", "01_extract", "02_ekfac", "03_atoms", "04_coherence"),
                       metrics={"00_finetune": dataclasses.replace(fake.METRICS["00_finetune"],
                                                                   behavior_base_rates=rates)})
    report.write_report("two")


def test_profiles_side_by_side_with_the_paper(tmp_artifacts):
    _two_profiles()
    md = compare.write_comparison(["one", "two", "absent"]).read_text(encoding="utf-8")
    assert "Not compared (no snapshot; run `make paper PROFILE=<name>`): `absent`." in md
    assert "| Model | Gemma-3 4B IT |" in md and "| Atoms | 500 |" in md
    # one column per profile, in order, with the paper's value first
    assert "| bullets: fine-tuned greedy rate on its inviting prompts (00) | base rates | 0.33 | 0.250 | 0.050 |" in md
    assert "| main run: atoms coh > 0.5 | Table 1 | 5 | 2 | 2 |" in md
    # steering ran on `one` only: `two` says not measured, never 0
    assert "| bullets: toward | Table 2 | 0.94 | 0.750 | — |" in md
    base = next(line for line in md.splitlines() if line.startswith("| every behaviour's fine-tuned greedy rate"))
    assert base.endswith("| yes | no |")


def test_the_comparison_is_the_snapshots_and_nothing_else(tmp_artifacts):
    """Rendered from results.json alone: the same text with the artifacts deleted, and a changed number in a
    snapshot changes it."""
    import json
    import shutil

    from gatoms.build import paths
    from gatoms.report.results import snapshot_file

    _two_profiles()
    before = compare.render_profiles(["one", "two"])
    shutil.rmtree(paths.artifacts("one"))
    shutil.rmtree(paths.artifacts("two"))
    assert compare.render_profiles(["one", "two"]) == before
    snap = json.loads(snapshot_file("two").read_text())
    snap["metrics"]["04_coherence"]["n_coh_gt_0_5"] = 7
    snapshot_file("two").write_text(json.dumps(snap))
    assert "| main run: atoms coh > 0.5 | Table 1 | 5 | 2 | 7 |" in compare.render_profiles(["one", "two"])


def test_committed_comparison_is_generated_not_typed(monkeypatch):
    """figures/COMPARISON.md equals what `make compare` renders from the committed snapshots."""
    from conftest import REPO

    monkeypatch.setenv("GATOMS_ROOT", str(REPO))
    monkeypatch.delenv("GATOMS_FIGURES", raising=False)
    committed = REPO / "figures" / "COMPARISON.md"
    assert committed.exists(), "figures/COMPARISON.md must be committed (make compare)"
    assert compare.render_profiles(compare.PROFILES) == committed.read_text(encoding="utf-8"), (
        "figures/COMPARISON.md differs from what `make compare` renders from figures/*/results.json")
