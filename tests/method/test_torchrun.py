"""Scale-out: ``torchrun --nproc_per_node 2`` (gloo, CPU) writes the same gradients as one process.

Bit-equality is a property of one thread setting: a float32 matmul on another number of threads sums in
another order. So the one-process reference runs in a subprocess under the same ``OMP_NUM_THREADS=1``
as the two torchrun workers, whatever the test process itself uses.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import torch

from gatoms.method.gradients import open_gradients

TIER = "integration"  # builds or trains a tiny model, or runs a subprocess (tests/conftest.py)
TESTS = Path(__file__).resolve().parents[1]  # where lora_fixtures lives
WORKER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    import torch, torch.distributed as dist
    from lora_fixtures import random_docs, tiny_lora_model
    from gatoms.method.gradients import ExtractConfig, extract_gradients

    assert torch.get_num_threads() == 1, torch.get_num_threads()
    distributed = {distributed!r}
    if distributed:
        dist.init_process_group("gloo")
    for fisher in (False, True):
        res = extract_gradients(tiny_lora_model("gemma3"), random_docs(26, seed=11), f"{out}/{{fisher}}",
                                ExtractConfig(batch_tokens=96, device="cpu", fisher=fisher), progress=False)
        assert res.n_docs == 26
    if distributed:
        dist.destroy_process_group()
    """
)
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _run(tmp_path: Path, name: str, launcher: list[str], distributed: bool) -> Path:
    script = tmp_path / f"{name}.py"
    out = tmp_path / name
    script.write_text(WORKER.format(tests=str(TESTS), out=str(out), distributed=distributed))
    proc = subprocess.run([*launcher, str(script)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **ONE_THREAD})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_two_processes_equal_one(tmp_path):
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    two = _run(tmp_path, "two", [torchrun, "--standalone", "--nproc_per_node", "2"], distributed=True)
    one = _run(tmp_path, "one", [sys.executable], distributed=False)

    for fisher in (False, True):  # empirical: one pass; true Fisher: a second, sampled pass
        r1, r2 = open_gradients(one / str(fisher)), open_gradients(two / str(fisher))
        assert r1.doc_ids == r2.doc_ids and r1.layout == r2.layout and len(r1) == 26
        # Every row is computed in the same batch, on one thread, as in one process: bit-identical.
        rows = r1.rows(slice(None))
        assert np.abs(rows).max() > 0
        np.testing.assert_array_equal(rows, r2.rows(slice(None)))
        # Factor sums are added per rank, then across ranks: float64 sums in another order.
        f1, f2 = r1.factors(), r2.factors()
        assert f1.n_tokens == f2.n_tokens and f1.fisher == f2.fisher == ("true" if fisher else "empirical")
        for name in f1.A:
            torch.testing.assert_close(f1.A[name], f2.A[name], rtol=1e-6, atol=0)
            torch.testing.assert_close(f1.S[name], f2.S[name], rtol=1e-6, atol=1e-12)
