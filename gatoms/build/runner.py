"""Run pipeline steps: each step is a notebook executed by papermill with parameters from a profile.

``python -m gatoms run 01_extract --profile tiny [--force]`` (what ``make extract`` calls) validates the
whole profile, executes ``notebooks/01_extract.ipynb`` into ``artifacts/<profile>/notebooks/``, prints
one progress line per step with its elapsed time, and records the step's resources next to the executed
notebook in ``<step>.run.json`` (read by :mod:`gatoms.report` for the paper's Table 3)::

    {"step": "01_extract", "profile": "tiny", "status": "ok", "seconds": 41.2,
     "peak_rss_mib": 812.4, "peak_rss_source": "getrusage", "peak_gpu_mib": null,
     "host": {"cpus": 2, "ram_gib": 23.4, "platform": "Linux-...", "gpu": null, "torch": "2.13.0"}}

``seconds`` is the wall time of the whole notebook run, kernel start and imports included (the step's
own ``metrics.json`` ``seconds`` counts its compute only). ``peak_rss_mib`` is the peak resident memory
of the papermill kernel: ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` after the kernel exits when that
rose during the step (exact; always the case when a process runs one step, as ``make`` does), else the
highest value sampled every 0.2 s while it ran (the kernel's ``VmHWM`` high-water mark on Linux).
``peak_gpu_mib`` is the highest GPU memory ``nvidia-smi`` reported for the kernel, sampled each second,
or ``None`` without ``nvidia-smi``.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import platform
import resource
import shutil
import subprocess
import sys
import threading
import time
from typing import Any

from gatoms.build import config, paths
from gatoms.build.store import write_json

log = logging.getLogger(__name__)

MIB = 1024 * 1024


def run_step(step: str, profile: str, force: bool = False, kernel: str | None = None) -> float:
    """Execute one step's notebook under papermill; returns its wall time in seconds.

    Writes ``artifacts/<profile>/notebooks/<step>.run.json`` (wall time, peak memory, host) whether the
    step succeeds or fails; a failed step raises ``SystemExit(1)`` after naming the executed notebook.
    """
    import papermill as pm

    if step not in paths.STEPS:
        raise config.ConfigError(f"unknown step {step!r}; steps are {', '.join(paths.STEPS)}")
    config.validate_profile(profile)
    params = config.step_parameters(profile, step, force=force)
    out = paths.executed_notebook(profile, step)
    out.parent.mkdir(parents=True, exist_ok=True)
    record = paths.run_record(profile, step)
    record.unlink(missing_ok=True)
    print(f"[gatoms] {step:<13} profile={profile:<8} started", file=sys.stderr, flush=True)
    rss_before = children_maxrss_mib()
    t0 = time.perf_counter()
    status = "ok"
    with PeakMemory() as peak:
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
            status = f"failed: {e.ename}: {e.evalue}"
    dt = time.perf_counter() - t0
    rss_after = children_maxrss_mib()
    if rss_after > rss_before:
        rss, source = rss_after, "getrusage"
    else:  # an earlier step of this process peaked higher: getrusage can't see this one's peak
        rss, source = peak.rss_mib, "sampled"
    write_json(record, {
        "step": step,
        "profile": profile,
        "status": status,
        "seconds": round(dt, 3),
        "peak_rss_mib": round(rss, 1),
        "peak_rss_source": source,
        "peak_gpu_mib": peak.gpu_mib,
        "host": host_info(),
    })
    if status != "ok":
        print(f"[gatoms] {step:<13} profile={profile:<8} FAILED after {dt:6.1f}s: {status[8:]}\n"
              f"         executed notebook with the traceback: {out}", file=sys.stderr, flush=True)
        raise SystemExit(1)
    print(f"[gatoms] {step:<13} profile={profile:<8} done in {dt:6.1f}s (peak memory {rss:,.0f} MiB)",
          file=sys.stderr, flush=True)
    return dt


def children_maxrss_mib() -> float:
    """``ru_maxrss`` of this process's waited-for children, in MiB (Linux reports KiB, macOS bytes)."""
    maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return maxrss / MIB if sys.platform == "darwin" else maxrss / 1024


class PeakMemory:
    """Samples the peak memory of this process's descendants (the kernel) on a background thread.

    ``rss_mib``: the highest of each descendant's ``VmHWM`` (Linux; ``rss`` elsewhere) and of the summed
    RSS of all descendants, over the samples. ``gpu_mib``: the highest summed GPU memory ``nvidia-smi``
    reports for the descendants, or ``None`` when there is no ``nvidia-smi``.
    """

    def __init__(self, interval: float = 0.2, gpu_interval: float = 1.0):
        self.interval = interval
        self.gpu_interval = gpu_interval
        self.rss_mib = 0.0
        self.gpu_mib: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gatoms-peak-memory", daemon=True)
        self._nvidia_smi = shutil.which("nvidia-smi")

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        import psutil

        me = psutil.Process()
        last_gpu = 0.0
        while True:
            try:
                procs = me.children(recursive=True)
            except psutil.Error:
                procs = []
            total = 0.0
            for p in procs:
                try:
                    rss = p.memory_info().rss / MIB
                except psutil.Error:
                    continue
                total += rss
                self.rss_mib = max(self.rss_mib, rss, _vm_hwm_mib(p.pid))
            self.rss_mib = max(self.rss_mib, total)
            now = time.monotonic()
            if self._nvidia_smi and procs and now - last_gpu >= self.gpu_interval:
                last_gpu = now
                gpu = _gpu_mib({p.pid for p in procs}, self._nvidia_smi)
                if gpu is not None:
                    self.gpu_mib = max(self.gpu_mib or 0.0, gpu)
            if self._stop.wait(self.interval):
                return


def _vm_hwm_mib(pid: int) -> float:
    """The peak resident set size (``VmHWM``) of a living process on Linux, in MiB; 0 elsewhere."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def _gpu_mib(pids: set[int], nvidia_smi: str) -> float | None:
    """Summed GPU memory of ``pids`` as ``nvidia-smi`` reports it, in MiB (None if it can't say)."""
    try:
        out = subprocess.run(
            [nvidia_smi, "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    total = 0.0
    for line in out.stdout.splitlines():
        parts = [x.strip() for x in line.split(",")]
        if len(parts) == 2 and parts[0].isdigit() and int(parts[0]) in pids:
            try:
                total += float(parts[1])
            except ValueError:
                continue
    return total


def host_info() -> dict[str, Any]:
    """The machine a step ran on: CPU count, RAM, platform, GPU name (via ``nvidia-smi``), torch version."""
    import psutil

    gpu = None
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=10)
            names = [n.strip() for n in out.stdout.splitlines() if n.strip()]
            gpu = f"{len(names)} × {names[0]}" if names else None
        except (OSError, subprocess.SubprocessError):
            gpu = None
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = None
    return {
        "cpus": os.cpu_count(),
        "ram_gib": round(psutil.virtual_memory().total / 1024**3, 1),
        "platform": platform.platform(),
        "gpu": gpu,
        "torch": torch_version,
    }
