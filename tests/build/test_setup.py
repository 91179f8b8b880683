"""The environment `make` builds: torch 2.13.0 for the CPU, no CUDA wheels (`nvidia-*`) pulled in by an
unpinned dependency, and `transformers` importable with that torch."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys

import pytest

TIER = "integration"  # builds or trains a tiny model, or runs a subprocess (tests/conftest.py)

cpu_machine_only = pytest.mark.skipif(
    shutil.which("nvidia-smi") is not None,
    reason="this machine has nvidia-smi: a CUDA torch and its nvidia-* wheels are expected here "
           "(the Makefile applies the same rule), so the CPU-build checks do not apply",
)


@cpu_machine_only
def test_no_nvidia_packages_installed():
    names = sorted({(d.metadata["Name"] or "").lower() for d in importlib.metadata.distributions()})
    nvidia = [n for n in names if n.startswith("nvidia-") or n.startswith("nvidia_")]
    assert nvidia == [], f"CUDA wheels in the environment ({sys.prefix}): {nvidia}; install torch==2.13.0 (CPU) first"


def test_torch_is_the_pinned_build():
    import torch

    assert torch.__version__.split("+")[0] == "2.13.0", torch.__version__
    assert importlib.metadata.version("torch").split("+")[0] == "2.13.0"


@cpu_machine_only
def test_torch_is_the_cpu_build():
    import torch

    assert torch.version.cuda is None, f"torch was built for CUDA {torch.version.cuda}; the CPU wheel is expected here"


def test_no_torchvision_or_torchaudio():
    """An unpinned torchvision/torchaudio pulls another torch (and CUDA) in; nothing needs them."""
    names = {(d.metadata["Name"] or "").lower() for d in importlib.metadata.distributions()}
    assert not names & {"torchvision", "torchaudio"}


def test_transformers_imports_with_this_torch():
    # a fresh interpreter: an incompatible torch/transformers pair fails at import time
    code = "import transformers, peft, torch; from transformers import Gemma3ForCausalLM; print(transformers.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]


def test_package_is_installed_editable_with_its_templates():
    import gatoms
    from gatoms.report import atlas

    assert atlas.TEMPLATE.exists(), "gatoms/templates/atlas.html must ship with the package"
    assert importlib.metadata.version("gatoms") == gatoms.__version__
