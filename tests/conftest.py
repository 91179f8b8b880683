"""Shared fixtures: seeding, temporary artifact trees, and the smoke pipeline run once per session.

``smoke_step("03_atoms")`` runs the smoke profile's notebooks 00 → 03 with papermill (each once per
test session, in order) into a temporary artifacts tree and returns that step's :class:`StepStore`.

The tests mirror the package (``tests/build`` … ``tests/report``) and every test belongs to one tier,
which ``make test`` selects explicitly (``-m "unit or integration or e2e"``):

- ``unit`` — no model (the default of a test that is neither of the others);
- ``integration`` — builds or trains a tiny model, or runs a subprocess: a test marked
  ``@pytest.mark.integration``, or any test of a module that sets ``TIER = "integration"``;
- ``e2e`` — runs the smoke pipeline's notebooks (any test that uses ``smoke_step``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from gatoms.build import paths
from gatoms.build.seed import seed_everything

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helpers: lora_fixtures, fake_results

TIERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(config, items):
    """Give every test exactly one tier: e2e if it uses the smoke pipeline, else integration if it or its
    module says so, else unit."""
    for item in items:
        marked = [t for t in TIERS if item.get_closest_marker(t)]
        if len(marked) > 1:
            raise pytest.UsageError(f"{item.nodeid} has several tiers {marked}; give it one")
        if "smoke_step" in getattr(item, "fixturenames", ()):
            if marked and marked != ["e2e"]:
                raise pytest.UsageError(f"{item.nodeid} uses the smoke pipeline: it is e2e, not {marked}")
            tier = "e2e"
        else:
            tier = marked[0] if marked else getattr(item.module, "TIER", "unit")
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.module.__name__}: TIER must be one of {TIERS}, got {tier!r}")
        if not marked:
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(autouse=True)
def _seeded():
    seed_everything(0, deterministic=False)
    yield


@pytest.fixture
def tmp_artifacts(tmp_path, monkeypatch):
    """Point artifacts/ and figures/ at a temporary folder for one test."""
    monkeypatch.setenv("GATOMS_ROOT", str(REPO))
    monkeypatch.setenv("GATOMS_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.setenv("GATOMS_FIGURES", str(tmp_path / "figures"))
    return tmp_path


@pytest.fixture(scope="session")
def smoke_tree(tmp_path_factory):
    """A temporary artifacts/figures tree shared by every smoke-pipeline test of the session."""
    base = tmp_path_factory.mktemp("smoke")
    return base


@pytest.fixture(scope="session")
def smoke_step(smoke_tree):
    """Run smoke-profile steps on demand (with their upstream steps), once each per session."""
    from gatoms.build.runner import run_step
    from gatoms.build.store import StepStore

    done: dict[str, StepStore] = {}
    env = {
        "GATOMS_ROOT": str(REPO),
        "GATOMS_ARTIFACTS": str(smoke_tree / "artifacts"),
        "GATOMS_FIGURES": str(smoke_tree / "figures"),
    }

    def run(step: str) -> StepStore:
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            for s in paths.STEPS[: paths.STEPS.index(step) + 1]:
                if s not in done:
                    run_step(s, "smoke")
                    done[s] = StepStore.read("smoke", s)
            return done[step]
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    return run
