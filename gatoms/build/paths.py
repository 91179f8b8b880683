"""Every artifact path, spelled once.

Layout::

    artifacts/<profile>/<NN_step>/<file>      step outputs (+ config.json sidecar, metrics.json)
    artifacts/<profile>/notebooks/<NN_step>.ipynb   executed notebooks
    figures/<profile>/<name>.{png,pdf,csv,md}  figures and tables (committed for the default profile)

``$GATOMS_ARTIFACTS`` and ``$GATOMS_FIGURES`` move the two trees (the tests point them at temporary
folders so that they never touch the committed figures). The repository root is ``$GATOMS_ROOT`` if set, else the nearest folder above the working directory
that holds ``configs/`` and ``notebooks/`` (so notebooks run from ``notebooks/`` find it), else the
working directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from gatoms.build import steps
from gatoms.build.steps import (  # noqa: F401 (the artifact file names, re-exported)
    ADAPTER,
    ATOM_TABLE,
    ATOMS,
    BASE_MODEL,
    BUDGETS,
    CHOICES,
    CODES,
    COHERENCE,
    CONFIG,
    EIGEN,
    EVAL_PROMPTS,
    EXTRACT_CHECKPOINT,
    FACTORS,
    GENERATIONS,
    GRADS,
    GRADS_META,
    HELDOUT_DOCS,
    LOSS_CURVE,
    METHODS,
    METRICS,
    ROWS,
    SPARSITY,
    STEERED,
    TOKENIZER,
    TRAIN_DOCS,
    X,
    Z,
)

STEPS: tuple[str, ...] = steps.NAMES
"""The pipeline's steps in order (from the step table, :mod:`gatoms.build.steps`); each is a notebook
``notebooks/<step>.ipynb`` and a make target named after it without the number."""

UPSTREAM: dict[str, tuple[str, ...]] = {s.name: s.upstream for s in steps.TABLE}
"""Direct upstream steps whose artifacts each step reads."""


def root() -> Path:
    """The repository root (see module docstring)."""
    env = os.environ.get("GATOMS_ROOT")
    if env:
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for d in (here, *here.parents):
        if (d / "configs").is_dir() and (d / "notebooks").is_dir():
            return d
    return here


def config_file(profile: str) -> Path:
    """``configs/<profile>.yaml``."""
    return root() / "configs" / f"{profile}.yaml"


def notebook(step: str) -> Path:
    return root() / "notebooks" / f"{step}.ipynb"


def artifacts(profile: str) -> Path:
    """``artifacts/<profile>/`` (``$GATOMS_ARTIFACTS/<profile>/`` if set, e.g. by the tests)."""
    base = os.environ.get("GATOMS_ARTIFACTS")
    return (Path(base) if base else root() / "artifacts") / profile


def step_dir(profile: str, step: str) -> Path:
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}; steps are {', '.join(STEPS)}")
    return artifacts(profile) / step


def executed_notebook(profile: str, step: str) -> Path:
    return artifacts(profile) / "notebooks" / f"{step}.ipynb"


def run_record(profile: str, step: str) -> Path:
    """``artifacts/<profile>/notebooks/<step>.run.json``: the runner's wall time and peak memory of a step."""
    return artifacts(profile) / "notebooks" / f"{step}.run.json"


def report_file(profile: str) -> Path:
    """``figures/<profile>/RESULTS.md``: the results report (written by :mod:`gatoms.report`)."""
    return figures(profile) / "RESULTS.md"


def atlas_file(profile: str) -> Path:
    """``figures/<profile>/atlas.html``: the atom atlas (written by :mod:`gatoms.report.atlas`)."""
    return figures(profile) / "atlas.html"


def figures_root() -> Path:
    """``figures/`` (``$GATOMS_FIGURES`` when set): one folder per profile, and the comparison of them."""
    base = os.environ.get("GATOMS_FIGURES")
    return Path(base) if base else root() / "figures"


def figures(profile: str) -> Path:
    """``figures/<profile>/`` (created on demand)."""
    d = figures_root() / profile
    d.mkdir(parents=True, exist_ok=True)
    return d


def figure(profile: str, name: str, ext: str = "png") -> Path:
    """``figures/<profile>/<name>.<ext>``, e.g. ``figure("tiny", "fig1_coherence")``."""
    return figures(profile) / f"{name}.{ext}"


def make_target(step: str) -> str:
    """The make target that builds a step: ``01_extract`` → ``extract``."""
    return steps.step(step).target
