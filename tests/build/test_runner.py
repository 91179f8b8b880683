"""The runner's resource record (Table 3): peak memory of a child process, by getrusage and by sampling."""

from __future__ import annotations

import os
import subprocess
import sys

from gatoms.build.runner import PeakMemory, host_info

TIER = "integration"  # builds or trains a tiny model, or runs a subprocess (tests/conftest.py)

ALLOC = "import time; x = b'\\x01' * ({mib} * 2**20); time.sleep({sleep})"


def test_sampled_peak_sees_a_child_allocation(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")  # no nvidia-smi: no GPU reading at all
    with PeakMemory(interval=0.05) as peak:
        subprocess.run([sys.executable, "-c", ALLOC.format(mib=300, sleep=1.0)], check=True)
    assert 300 <= peak.rss_mib < 1000
    assert peak.gpu_mib is None


GPU_SMI = """#!/bin/sh
# reports 321 MiB for the pid the child wrote to its file, 999 MiB for a process that is not ours
case "$1" in
  --query-compute-apps=*) [ -s {pidfile} ] && printf '%s, 321\\n1, 999\\n' "$(cat {pidfile})" ;;
  *) exit 1 ;;
esac
"""


def test_sampled_gpu_peak_counts_only_the_kernels_processes(tmp_path, monkeypatch):
    pidfile = tmp_path / "child.pid"
    smi = tmp_path / "nvidia-smi"
    smi.write_text(GPU_SMI.format(pidfile=pidfile))
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    child = f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(1.0)"
    with PeakMemory(interval=0.05, gpu_interval=0.05) as peak:
        subprocess.run([sys.executable, "-c", child], check=True)
    assert peak.gpu_mib == 321.0


def test_getrusage_peak_of_a_fresh_process_is_its_childs():
    """What `python -m gatoms run` records: in a process that ran one child, ru_maxrss is that child's peak."""
    code = (
        "import subprocess, sys; from gatoms.build.runner import children_maxrss_mib\n"
        f"before = children_maxrss_mib()\n"
        f"subprocess.run([sys.executable, '-c', {ALLOC.format(mib=250, sleep=0)!r}], check=True)\n"
        "print(before, children_maxrss_mib())"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    before, after = map(float, out.split())
    assert before == 0.0
    assert 250 <= after < 800


def test_host_info_describes_the_machine():
    h = host_info()
    assert h["cpus"] >= 1 and h["ram_gib"] > 0 and h["platform"]
    assert h["torch"].startswith("2.")


FAKE_SMI = """#!/bin/sh
case "$1" in
  --query-compute-apps=*) printf '123, 500\\n456, 250\\n789, 1000\\nNo running processes found\\n' ;;
  --query-gpu=*) printf 'NVIDIA H100 80GB HBM3\\nNVIDIA H100 80GB HBM3\\n' ;;
  *) exit 1 ;;
esac
"""


def test_gpu_memory_and_name_from_nvidia_smi(tmp_path, monkeypatch):
    """On a GPU machine: the kernel's GPU memory is summed over its processes; the GPUs are named."""
    from gatoms.build import runner

    smi = tmp_path / "nvidia-smi"
    smi.write_text(FAKE_SMI)
    smi.chmod(0o755)
    assert runner._gpu_mib({123, 456}, str(smi)) == 750.0
    assert runner._gpu_mib({999}, str(smi)) == 0.0
    assert runner._gpu_mib({123}, str(tmp_path / "missing")) is None
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert host_info()["gpu"] == "2 × NVIDIA H100 80GB HBM3"
