"""The build graph: Make re-runs a step when its notebook, upstream step, profile or package sources
change, and only what comes after it; editing the report or atlas code re-runs no step; profiles never
share targets. Checked with ``make -n`` (dry run) on a throwaway copy of the Makefile whose artifacts
are up to date."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from gatoms.build import paths

REPO = Path(__file__).resolve().parents[2]
STEP_MODULE = "gatoms/world/builder.py"
REPORT = ["report", "atlas"]


@pytest.fixture
def built(tmp_path):
    """A copy of the Makefile in a tree where every artifact of profile ``tiny`` is newer than its inputs."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    files = ["pyproject.toml", "configs/tiny.yaml", "configs/smoke.yaml", STEP_MODULE, "gatoms/report/markdown.py",
             "gatoms/report/atlas.py", "gatoms/report/templates/atlas.html", "gatoms/report/figures.py"]
    files += [f"notebooks/{s}.ipynb" for s in paths.STEPS]
    t = 1_700_000_000
    for f in files:
        _touch(tmp_path / f, t)
    _touch(tmp_path / ".venv/bin/python", t + 1)
    _touch(tmp_path / ".venv/.gatoms-installed", t + 2)
    for i, step in enumerate(paths.STEPS):
        _touch(tmp_path / f"artifacts/tiny/{step}/metrics.json", t + 10 + i)
    for f in ("RESULTS.md", "atlas.html"):
        _touch(tmp_path / f"figures/tiny/{f}", t + 100)
    return tmp_path


def _touch(path: Path, mtime: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    os.utime(path, (mtime, mtime))


def would_run(tree: Path, *args: str) -> list[str]:
    """The steps (and report/atlas) ``make -n paper`` would run, in order."""
    out = subprocess.run(["make", "-n", "paper", *args], cwd=tree, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    ran = []
    for line in out.stdout.splitlines():
        words = line.split()
        if "gatoms" in words and "run" in words:
            ran.append(next(w for w in words if w in paths.STEPS))
        elif "gatoms" in words and ("report" in words or "atlas" in words):
            ran.append(words[words.index("gatoms") + 1])
    return ran


def test_up_to_date_build_runs_nothing(built):
    assert would_run(built) == []


@pytest.mark.parametrize("i", range(len(paths.STEPS)))
def test_editing_a_notebook_reruns_it_and_what_comes_after(built, i):
    step = paths.STEPS[i]
    ran = would_run(built, "-W", f"notebooks/{step}.ipynb")
    after = [s for s in paths.STEPS if s == step or _downstream(step, s)]
    assert ran == after + REPORT


def _downstream(step: str, other: str) -> bool:
    return any(u == step or _downstream(step, u) for u in paths.UPSTREAM[other])


def test_package_or_profile_change_reruns_every_step(built):
    everything = list(paths.STEPS) + REPORT
    assert would_run(built, "-W", STEP_MODULE) == everything
    assert would_run(built, "-W", "configs/tiny.yaml") == everything
    assert would_run(built, "-W", "gatoms/report/figures.py") == everything  # the steps draw the figures


def test_report_and_atlas_code_rerun_no_step(built):
    assert would_run(built, "-W", "gatoms/report/markdown.py") == REPORT
    assert would_run(built, "-W", "gatoms/report/templates/atlas.html") == REPORT


def test_makefile_rules_follow_the_step_table():
    """Each step's rule depends on its notebook, exactly its upstream steps of the step table, the profile
    and the package sources, and makes its named target; the report reads every step."""
    import re

    from gatoms.build import steps

    text = (REPO / "Makefile").read_text()
    for step in steps.TABLE:
        (rule,) = re.findall(rf"^\$\(ART\)/{step.name}/metrics\.json: (.*)$", text, re.M)
        deps = rule.split()
        assert deps[0] == f"notebooks/{step.name}.ipynb", (step.name, deps)
        assert "$(CFG)" in deps and "$(STEP_SRC)" in deps, (step.name, deps)
        upstream = [d.split("/")[1] for d in deps if d.startswith("$(ART)/")]
        assert tuple(upstream) == step.upstream, (step.name, upstream, step.upstream)
        assert re.search(rf"^{step.target}: \$\(ART\)/{step.name}/metrics\.json$", text, re.M), step.target
    (listed,) = re.findall(r"^STEP_METRICS := \$\(foreach s,([^,]+),", text, re.M)
    assert tuple(listed.split()) == steps.NAMES


def test_other_profiles_have_their_own_targets(built):
    assert would_run(built, "-W", "configs/smoke.yaml") == []
    assert would_run(built, "PROFILE=smoke")[:1] == ["00_finetune"]
    forced = subprocess.run(["make", "-n", "extract", "PROFILE=smoke", "FORCE=1"], cwd=built, capture_output=True,
                            text=True, timeout=60).stdout
    assert "run --profile smoke --force 00_finetune" in forced
