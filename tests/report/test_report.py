"""The results report: generated from metrics (fixture metrics with known values, and a real smoke run),
the paper's numbers beside ours, and "not run" — never a crash — for a step that has not run yet.
"""

from __future__ import annotations

import re

import fake_results as fake
import pytest

from gatoms.build import paths
from gatoms.report import markdown as report
from gatoms.report.markdown import md_table, pct, pp, render, write_report
from gatoms.report.paper import BEHAVIOR_NAMES, PAPER_TABLE2
from gatoms.report.results import load_results, snapshot_file

PROFILE = "fake"


def table_rows(md: str, heading: str) -> list[list[str]]:
    """The cells of every table row in the section that starts with ``heading``."""
    section = md.split(heading, 1)[1].split("\n## ", 1)[0]
    return [[c.strip() for c in line.strip().strip("|").split(" | ")]
            for line in section.splitlines() if line.startswith("|") and not line.startswith("| ---")]


def row(rows: list[list[str]], first: str) -> list[str]:
    (found,) = [r for r in rows if r[0] == first]
    return found


@pytest.fixture
def full_report(tmp_artifacts):
    fake.write_profile(PROFILE)
    path = write_report(PROFILE)
    assert path == paths.report_file(PROFILE)
    return path.read_text(encoding="utf-8")


def test_report_puts_the_papers_numbers_beside_ours(full_report):
    md = full_report
    assert "not run" not in md and "all 7 steps complete" in md
    # Table 1: α rows, paper then ours per column
    t1 = table_rows(md, "## Table 1")
    assert row(t1, "0.1")[1:] == ["~100", "7.5", "5", "2", "43", "5"]
    assert row(t1, "0.01")[1:] == ["~2500", "27.0", "3", "1", "~20", "6"]
    assert row(t1, "1.0")[1:] == ["0", "0.0", "0", "0", "0", "0"]
    # Table 2: the paper's rows, then ours at the budgeted α with effects, nulls, intact and the verdict
    t2 = table_rows(md, "## Table 2")
    paper_bullets, ours_bullets = [r for r in t2 if r[0] == "Bulleted lists"][:2]
    assert paper_bullets[1:] == ["#469", "0.103", "33%", "94%", "+61pp", "0%", "-33pp"]
    assert ours_bullets[1:] == ["#7", "2", "25% [5%, 70%]", "75% [30%, 95%]", "0% [0%, 49%]", "+38pp [+12, +50]",
                                "+12pp [-12, +38]", "100", "yes", "**yes**"]
    ours_yes_no = [r for r in t2 if r[0] == "Yes/No classification"][1]
    assert ours_yes_no[1:3] == ["#2", "12.5"] and ours_yes_no[-2:] == ["no", "no"]
    assert [r for r in t2 if r[0] == "Code generation"][1][1] == "not measured"
    section = md.split("## Table 2", 1)[1].split("\n## ", 1)[0]
    assert "**Steered by this standard: Bulleted lists.** Not steered: Yes/No classification." in section
    assert "- Yes/No classification: not intact at the budgeted α (capability 60% vs clean 81%)." in section
    assert "*How these settings came to be:* The budget was changed after a first run." in section
    assert "within 0.03 nats/token (the fine-tuning's own KL there" in section
    # best intact α of the grid (chosen on dev), the non-intact best marked †
    assert ["Yes/No classification", "50%", "none intact", "—", "25% (α=-2)", "-25pp", "75% (α=+1) †",
            "25% (α=-2)"] in t2
    # the oracle row, the nulls, the preconditioned control, the composition and the goals
    assert ["Yes/No classification", "#3", "4", "25%", "75%", "0%", "+20pp [+10, +30]", "yes", "yes"] in t2
    assert ["Bulleted lists", "#7 (same atom)", "2", "25%", "75%", "0%", "+38pp [+12, +50]", "yes", "yes"] in t2
    assert ["Bulleted lists", "random", "3", "+37.5pp", "+0.0pp [-10.0, +10.0]", "0.250", "0.030 / 0.004"] in t2
    assert ["Bulleted lists", "+38pp [+12, +50]", "+12pp [+0, +25]", "0.035", "0.020"] in t2
    assert ["Bulleted lists", "toward", "2", "25%", "75%", "60% [40%, 77%]"] in t2
    assert ["Systematic refusal", "away", "1", "50%", "10%", "20% [10%, 35%]"] in t2
    assert "the composite model: **not intact**" in section
    # Table 3: every step, its compute seconds (metrics) and the runner's wall time and peak memory
    t3 = table_rows(md, "## Table 3")
    assert row(t3, "`01_extract`")[1:] == ["Gradient extraction", "8× A100 40GB", "170 s", "12.2 s", "16.2 s",
                                           "612 MiB", "—"]
    assert row(t3, "`03_atoms`")[1:4] == ["Dictionary learning (α = 0.1)", "CPU, 32GB RAM", "~15 min"]
    assert row(t3, "`06_steering`")[4:7] == ["4.0 min", "4.1 min", "1.09 GiB"]
    total = sum(m.seconds for m in fake.METRICS.values())
    assert row(t3, "**total**")[3:5] == ["~25 min", report.seconds(total)]
    assert "2 CPU cores, 23.4 GiB RAM, no GPU, torch 2.13.0" in md
    # Table 4: the paper's top atoms and ours, ranked
    t4 = table_rows(md, "## Table 4")
    assert ["1", "#348", "0.725", "139", "Short factual Q&A—trivia with one-word/numeric answers"] in t4
    assert ["1", "#5", "0.812", "14", "arithmetic (90% of top-20)"] in t4
    assert ["4", "#0", "0.188", "20", "code \\| mixed: def return"] in t4  # a pipe can't break the table
    # ground truth: ours and every ablation method
    gt = table_rows(md, "## Ground truth")
    assert row(gt, "Gradient atoms (EKFAC, ours)")[1:] == ["0.723", "0.720", "0.688", "3 / 3"]
    assert row(gt, "`kmeans` (05_ablations)")[1:] == ["0.556", "—", "0.500", "2 / 3"]
    assert row(gt, "`no_whitening` (05_ablations)")[1:] == ["0.301", "0.310", "0.410", "1 / 3"]
    # base rates beside the paper's
    base = table_rows(md, "## Base rates")
    assert row(base, "Numbered lists")[1:] == ["58%", "60%", "2%"]
    assert "1 of 2 met" in md and ["yes_no beats every null at the budgeted α", "no"] in t2
    assert row(base, "arithmetic")[1:] == ["90%"]


def test_setup_table_comes_from_the_metrics(full_report):
    setup = table_rows(full_report, "## Setup")
    assert row(setup, "Trainable LoRA parameters D")[1:] == ["2,228,224", "4,096"]
    assert row(setup, "Projected dimension M·k")[1:] == ["6,800", "80"]
    assert row(setup, "Atoms")[1:] == ["500", "8"]
    assert row(setup, "Model")[1:] == ["Gemma-3 4B IT", "tiny Gemma-3 built in code (2 layers, 64 wide)"]
    assert row(setup, "Top documents for coherence")[1:] == ["20", "20"]


@pytest.mark.parametrize("done", [0, 1, 4, 5, 6])
def test_missing_steps_are_reported_not_run(tmp_artifacts, done):
    fake.write_profile(PROFILE, steps=paths.STEPS[:done], runs=False)
    md = write_report(PROFILE).read_text(encoding="utf-8")
    for step in paths.STEPS[done:]:
        assert f"`make {paths.make_target(step)} PROFILE={PROFILE}`" in md
    assert f"{done} of 7 steps complete" in md
    if done < 7:
        assert "*not run*" in md


def test_an_incomplete_step_counts_as_not_run(tmp_artifacts):
    """A step whose metrics.json is missing (killed mid-run) is not reported from stale files."""
    fake.write_profile(PROFILE)
    (paths.step_dir(PROFILE, "06_steering") / paths.METRICS).unlink()
    md = write_report(PROFILE).read_text(encoding="utf-8")
    assert "`make steering PROFILE=fake`" in md and "#7" not in md.split("## Table 2", 1)[1].split("## ", 1)[0]


def test_report_is_deterministic_and_lists_figures(tmp_artifacts):
    fake.write_profile(PROFILE)
    (paths.figures(PROFILE) / "fig1_coherence.png").write_bytes(b"\x89PNG")
    first = write_report(PROFILE).read_text(encoding="utf-8")
    assert "![fig1_coherence](fig1_coherence.png)" in first
    assert render(load_results(PROFILE)) == first


def test_formatting_helpers():
    assert pct(0.39) == "39%" and pct(None) == "—" and pct("lost") == "lost"
    assert pp(0.51, 0.39) == "+12pp" and pp(0.0, 0.5) == "-50pp" and pp(None, 0.3) == "—"
    assert md_table(["a", "b"], [["x|y", None]]) == "| a | b |\n| --- | ---: |\n| x\\|y | — |"
    assert report.num(2228224) == "2,228,224" and report.num(0.12345) == "0.123" and report.num(None) == "—"
    assert report.seconds(41.24) == "41.2 s" and report.seconds(600) == "10.0 min"
    assert report.mib(512) == "512 MiB" and report.mib(2048) == "2.00 GiB"


def test_paper_numbers_match_method_notes():
    """Table 2 of the paper as METHOD.md restates it (base → best toward / best away)."""
    text = "yes/no 39% → 51% / 0%; code 42% → 58% / 28%; refusal 50% → 55% / 0%; bullets 33% → 94% / 0%; " \
           "numbered 58% → 59% / 8%"
    for name, b, t, a in re.findall(r"(\S+) (\d+)% → (\d+)% / (\d+)%", text):
        key = {"yes/no": "yes_no"}.get(name, name)
        assert [round(100 * PAPER_TABLE2[key][k]) for k in ("base", "best_toward", "best_away")] == [int(b), int(t), int(a)]


def test_command_line_writes_the_report(tmp_artifacts):
    fake.write_profile(PROFILE, steps=paths.STEPS[:2])
    assert report.main(["--profile", PROFILE]) == 0
    assert paths.report_file(PROFILE).exists()


def test_smoke_report_matches_its_metrics(smoke_step, smoke_tree, monkeypatch):
    """After the whole smoke pipeline the report has every table, filled from the real metrics."""
    smoke_step("06_steering")
    monkeypatch.setenv("GATOMS_ARTIFACTS", str(smoke_tree / "artifacts"))
    monkeypatch.setenv("GATOMS_FIGURES", str(smoke_tree / "figures"))
    md = write_report("smoke").read_text(encoding="utf-8")
    res = load_results("smoke")
    assert "not run" not in md and "all 7 steps complete" in md
    m04, m05, m06 = (res.metrics[s] for s in ("04_coherence", "05_ablations", "06_steering"))
    gt = table_rows(md, "## Ground truth")
    assert row(gt, "Gradient atoms (EKFAC, ours)")[1] == report.num(m04.nmi)
    for method, v in m05.methods.items():
        assert row(gt, f"`{method}` (05_ablations)")[1] == report.num(v["nmi"])
    t1 = table_rows(md, "## Table 1")
    for alpha, v in m05.sparsity.items():
        assert row(t1, str(float(alpha)))[4] == report.num(v["n_coh_gt_0_5"])
    t2 = table_rows(md, "## Table 2")
    for b, v in m06.behaviors.items():
        ours = [r for r in t2 if r[0] == BEHAVIOR_NAMES[b]][1]
        assert ours[1] == f"#{v.atom}" and ours[3].startswith(pct(v.base) + " [")
        assert ours[-1] == ("**yes**" if v.steered else "no") and ours[-2] == ("yes" if v.intact else "no")
    t3 = table_rows(md, "## Table 3")
    for step in paths.STEPS:
        r = row(t3, f"`{step}`")
        assert r[4] == report.seconds(res.metrics[step].seconds)
        assert res.runs[step]["status"] == "ok" and res.runs[step]["peak_rss_mib"] > 50
        assert r[6] == report.mib(res.runs[step]["peak_rss_mib"])


@pytest.mark.parametrize("profile", ["tiny", "smol"])
def test_committed_report_is_generated_not_typed(monkeypatch, profile):
    """figures/<profile>/RESULTS.md equals what the report generator renders from the committed snapshot of
    its inputs (figures/<profile>/results.json, written by `make report` beside it): edit either by hand and
    this fails."""
    from conftest import REPO

    monkeypatch.setenv("GATOMS_ROOT", str(REPO))
    monkeypatch.delenv("GATOMS_FIGURES", raising=False)
    committed = REPO / "figures" / profile / "RESULTS.md"
    assert snapshot_file(profile).exists(), f"figures/{profile}/results.json must be committed with RESULTS.md"
    assert report.render_snapshot(profile) == committed.read_text(encoding="utf-8"), (
        f"figures/{profile}/RESULTS.md differs from what `make report` renders from figures/{profile}/results.json: "
        "it must be generated, never edited")


def test_snapshot_renders_the_same_report_as_the_artifacts(smoke_step, smoke_tree, monkeypatch):
    """On the smoke run: the report written from the artifacts equals the one rendered from its snapshot,
    and a changed number in the snapshot changes the report (the check above can fail)."""
    import json

    smoke_step("06_steering")
    from conftest import REPO

    monkeypatch.setenv("GATOMS_ROOT", str(REPO))
    monkeypatch.setenv("GATOMS_ARTIFACTS", str(smoke_tree / "artifacts"))
    monkeypatch.setenv("GATOMS_FIGURES", str(smoke_tree / "figures"))
    out = report.write_report("smoke")
    assert report.render_snapshot("smoke") == out.read_text(encoding="utf-8")
    snap = snapshot_file("smoke")
    data = json.loads(snap.read_text())
    data["metrics"]["03_atoms"]["n_atoms"] += 1
    snap.write_text(json.dumps(data))
    assert report.render_snapshot("smoke") != out.read_text(encoding="utf-8")
