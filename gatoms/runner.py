"""Run pipeline steps: each step is a notebook executed by papermill with parameters from a profile.

``python -m gatoms run 01_extract --profile tiny [--force]`` (what ``make extract`` calls) validates the
whole profile, executes ``notebooks/01_extract.ipynb`` into ``artifacts/<profile>/notebooks/`` and
prints one progress line per step with its elapsed time.
"""

from __future__ import annotations

import logging
import sys
import time

from gatoms import config, paths

log = logging.getLogger(__name__)


def run_step(step: str, profile: str, force: bool = False, kernel: str | None = None) -> float:
    """Execute one step's notebook under papermill; returns its wall time in seconds."""
    import papermill as pm

    if step not in paths.STEPS:
        raise config.ConfigError(f"unknown step {step!r}; steps are {', '.join(paths.STEPS)}")
    config.validate_profile(profile)
    params = config.step_parameters(profile, step, force=force)
    out = paths.executed_notebook(profile, step)
    out.parent.mkdir(parents=True, exist_ok=True)
    print(f"[gatoms] {step:<13} profile={profile:<8} started", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(
            str(paths.notebook(step)),
            str(out),
            parameters=params,
            cwd=str(paths.notebook(step).parent),
            kernel_name=kernel or "python3",
            progress_bar=False,
            log_output=False,
            report_mode=False,
        )
    except pm.PapermillExecutionError as e:
        dt = time.perf_counter() - t0
        print(f"[gatoms] {step:<13} profile={profile:<8} FAILED after {dt:6.1f}s: {e.ename}: {e.evalue}\n"
              f"         executed notebook with the traceback: {out}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    dt = time.perf_counter() - t0
    print(f"[gatoms] {step:<13} profile={profile:<8} done in {dt:6.1f}s", file=sys.stderr, flush=True)
    return dt
