"""The spread over seeds and the claims sections, on fake results with known numbers: aggregation (mean,
min–max), verdicts that hold, fail or flip, SEEDS.md / seeds.csv, and RESULTS.md beside the single run."""

from __future__ import annotations

import dataclasses

import fake_results as fake
import pytest

from gatoms.build import paths
from gatoms.build.tables import read_table
from gatoms.report import markdown as report
from gatoms.report import seeds
from gatoms.report.headline import CONCLUSIONS, HEADLINES, read_conclusions, read_headlines
from gatoms.report.results import load_results

PROFILE = "fake"


def seed1_metrics():
    """Seed 1: only 1 family pure in the top 50 (p 0.5), a rare family missed, bullets' base 0.5."""
    m04 = dataclasses.replace(fake.METRICS["04_coherence"], claims=fake.claims(top50=1, p50=0.5))
    m04.claims["rare"][0] = {**m04.claims["rare"][0], "found": False, "rank": None}
    m06 = fake.METRICS["06_steering"]
    m06 = dataclasses.replace(m06, behaviors={**m06.behaviors, "bullets": dataclasses.replace(
        m06.behaviors["bullets"], base=0.5)})
    return {"04_coherence": m04, "06_steering": m06}


@pytest.fixture
def three_seeds(tmp_artifacts):
    fake.write_profile(PROFILE)
    fake.write_profile(f"{PROFILE}@seed1", metrics=seed1_metrics())
    fake.write_profile(f"{PROFILE}@seed2")
    return seeds.write_seeds(PROFILE, [0, 1, 2])


def test_headlines_read_the_metrics():
    assert len({h.key for h in HEADLINES}) == len(HEADLINES)  # keys are unique CSV columns


def test_headlines_and_conclusions_of_one_run(tmp_artifacts):
    fake.write_profile(PROFILE)
    res = load_results(PROFILE)
    h = read_headlines(res)
    assert h["family_top50"] == 3 and h["family_p50"] == 0.004 and h["family_auroc"] == 0.8125
    assert h["t1_0.1_n_coh_gt_0_5"] == 2 and h["coh_gt_0_5"] == 2 and h["purity_response_median"] == 0.1
    assert h["ekfac_family_share"] == 0.7 and h["no_whitening_nuisance_share"] == 0.5 and h["kfac_family_share"] is None
    assert h["bullets_toward"] == 0.75 and h["bullets_steered"] == 1 and h["yes_no_steered"] == 0
    assert h["code_base"] is None and h["planted_rank"] is None  # not measured: None, never 0
    c = read_conclusions(res)
    assert c["task_types_beat_random"] and c["not_topics_not_instances"] and c["granularities"]
    assert c["whitening_moves_to_family"] and c["ekfac_beats_random_projection"] and c["rare_found"]
    assert c["planted_found"] is None and c["bullets_steered"] and c["yes_no_steered"] is False
    assert c["code_steered"] is None
    assert h["bullets_base_rate"] == 0.25 and c["base_rates_in_range"]  # fake rates: 0.25 … 0.6


def test_top_n_vs_random_is_not_measured_when_n_covers_the_dictionary(tmp_artifacts):
    """48 atoms (smol): "top-50" and "50 random atoms" are both the whole dictionary — no verdict either way."""
    cl = fake.claims()
    cl["found"]["family"]["vs_random"]["50"] = {"n": 48, "observed": 8, "random_mean": 8.0, "random_sd": 0.0,
                                                "p": 1.0, "n_draws": 1000}
    m04 = dataclasses.replace(fake.METRICS["04_coherence"], claims=cl)
    fake.write_profile(PROFILE, metrics={"04_coherence": m04})
    c = read_conclusions(load_results(PROFILE))
    assert c["task_types_beat_random"] is None and c["task_types_beat_random_top10"] is not None


def test_base_rates_out_of_range_are_reported(tmp_artifacts):
    """The world's design criterion (every fine-tuned base rate in [0.2, 0.8]) is a conclusion that can fail."""
    rates = {**fake.METRICS["00_finetune"].behavior_base_rates, "bullets": 0.12}
    low = dataclasses.replace(fake.METRICS["00_finetune"], behavior_base_rates=rates)
    fake.write_profile(PROFILE, metrics={"00_finetune": low})
    res = load_results(PROFILE)
    assert read_conclusions(res)["base_rates_in_range"] is False and read_headlines(res)["bullets_base_rate"] == 0.12
    md = report.write_report(PROFILE).read_text(encoding="utf-8")
    assert "lies in [0.2, 0.8] (the world's design; room to steer both ways). Result on this run: **does not hold**" in md


def test_aggregation_over_seeds(three_seeds):
    assert three_seeds == paths.figures(PROFILE) / "SEEDS.md"
    agg = seeds.load_seeds(PROFILE)
    assert agg["profiles"] == ["fake", "fake@seed1", "fake@seed2"]
    top50 = agg["headlines"]["family_top50"]
    assert top50["values"] == [3, 1, 3] and top50["mean"] == pytest.approx(7 / 3, abs=1e-4)
    assert (top50["min"], top50["max"], top50["n"]) == (1, 3, 3)
    assert agg["headlines"]["bullets_base"]["values"] == [0.25, 0.5, 0.25]
    assert agg["headlines"]["code_base"] == {"values": [None] * 3, "n": 0, "mean": None, "min": None, "max": None}
    v = {k: c["verdict"] for k, c in agg["conclusions"].items()}
    assert v["task_types_beat_random"] == "flips: yes in 2 of 3 seeds"
    assert v["rare_found"] == "flips: yes in 2 of 3 seeds"
    assert v["bullets_steered"] == "holds in every seed" and v["yes_no_steered"] == "fails in every seed"
    assert v["planted_found"] == "not measured"
    rows = {r["key"]: r for r in read_table(paths.figures(PROFILE) / "seeds.csv")}
    assert rows["family_top50"]["fake@seed1"] == "1" and rows["family_top50"]["min"] == "1"
    assert rows["t1_0.1_n_coh_gt_0_5"]["paper"] == "5"
    md = three_seeds.read_text(encoding="utf-8")
    assert "| the top-50 atoms by coherence cover" in md and "flips: yes in 2 of 3 seeds" in md
    assert "| family: pure in top-50 by coherence | discovery | — | 2.333 [1, 3] (n=3) | 3 | 1 | 3 |" in md


def test_verdict_names_partial_measurements():
    assert seeds.verdict([True, None, True]) == "holds in every seed (measured in 2 of 3 seeds)"
    assert seeds.verdict([False, False]) == "fails in every seed"
    assert seeds.verdict([None]) == "not measured"
    assert seeds.seed_profiles("tiny", [0, 1, 2]) == ["tiny", "tiny@seed1", "tiny@seed2"]


def test_results_show_the_spread_beside_the_single_run(three_seeds):
    md = report.write_report(PROFILE).read_text(encoding="utf-8")
    section = md.split("## Seeds", 1)[1]
    assert "(SEEDS.md)" in section and "| yes | flips: yes in 2 of 3 seeds |" in section
    assert "| family: pure in top-50 by coherence | — | 3 | 2.333 [1, 3] (n=3) |" in section
    assert "| α = 0.1: atoms coh > 0.5 | 5 | 2 | 2.000 [2, 2] (n=3) |" in section
    claims = md.split("## The paper's claims", 1)[1].split("\n## ", 1)[0]
    assert "Across seeds (3): **flips: yes in 2 of 3 seeds**" in claims
    table2 = md.split("## Table 2", 1)[1].split("\n## ", 1)[0]
    across = next(line for line in table2.splitlines() if line.startswith("**Across 3 seeds**"))
    assert "Yes/No classification — fails in every seed" in across and "Bulleted lists — holds in every seed" in across
    assert report.render_snapshot(PROFILE) == md  # the spread travels in the snapshot


def test_claims_section_says_where_a_claim_does_not_hold(tmp_artifacts):
    no = dataclasses.replace(fake.METRICS["04_coherence"], claims=fake.claims(top50=1, p50=0.5))
    fake.write_profile(PROFILE, metrics={"04_coherence": no})
    md = report.write_report(PROFILE).read_text(encoding="utf-8")
    claims = md.split("## The paper's claims", 1)[1].split("\n## ", 1)[0]
    assert ("Claim: the top-50 atoms by coherence cover more families with a ≥ 90%-pure atom than 50 random atoms "
            "(p < 0.05). Result on this run: **does not hold**.") in claims
    assert "| family | 50 | 1 | 1.250 ± 0.500 | 0.5000 |" in claims
    assert "| response | 0.050 | 0.100 | 0.200 | 0.200 |" in claims
    assert "| `ekfac` | 0.700 | 0.100 | 0.650 | 0.723 | 0.710 | 0.688 |" in claims
    assert "| 1000 | 0.310 | 0.480 | 0.260 | 0.310 | 0.320 | — |" in claims
    assert "backend `sklearn`, max_iter 100, 8 atoms, α = 0.1, seed 42 (the main run's dictionary settings)" in claims
    assert "`planted`: no 'planted' label" in claims and "Claim: the planted behaviour has a ≥ 90%-pure atom among the top 50. Result on this run: **not measured here**." in claims
    assert "*Not run*: one draw only" in md.split("## Seeds", 1)[1]
    assert {c.key for c in CONCLUSIONS} >= {"task_types_beat_random", "whitening_moves_to_family", "planted_found"}


def test_a_run_without_claims_says_how_to_get_them(tmp_artifacts):
    old = dataclasses.replace(fake.METRICS["04_coherence"], claims={})
    fake.write_profile(PROFILE, metrics={"04_coherence": old})
    md = report.write_report(PROFILE).read_text(encoding="utf-8")
    assert "`make coherence PROFILE=fake FORCE=1`" in md.split("## The paper's claims", 1)[1]


def test_smoke_seeds_read_every_headline_of_the_real_metrics(smoke_step, smoke_tree, monkeypatch):
    """One smoke seed through the real pipeline: every headline the steps measure is read back, and the
    claim metrics, the whitening rows and Table 2 are among them."""
    smoke_step("06_steering")
    from conftest import REPO

    monkeypatch.setenv("GATOMS_ROOT", str(REPO))
    monkeypatch.setenv("GATOMS_ARTIFACTS", str(smoke_tree / "artifacts"))
    monkeypatch.setenv("GATOMS_FIGURES", str(smoke_tree / "figures"))
    res = load_results("smoke")
    seeds.write_seeds("smoke", [0])
    agg = seeds.load_seeds("smoke")
    for h in HEADLINES:
        assert agg["headlines"][h.key]["values"] == [h.read(res)]
    measured = {k for k, a in agg["headlines"].items() if a["n"] == 1}
    assert {"t1_0.1_n_coh_gt_0_5", "family_top10", "family_random10", "family_p10", "purity_response_median",
            "mean_union_f1", "v_measure", "ekfac_family_share", "random_projection_family_share",
            "no_whitening_family_share", "bullets_base", "bullets_steered"} <= measured
    assert (paths.figures("smoke") / "SEEDS.md").exists() and (paths.figures("smoke") / "seeds.csv").exists()
