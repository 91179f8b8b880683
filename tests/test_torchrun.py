"""Scale-out: ``torchrun --nproc_per_node 2`` (gloo, CPU) writes the same gradients as one process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import torch
from lora_fixtures import random_docs, tiny_lora_model

from gatoms.gradients import ExtractConfig, extract_gradients, open_gradients

TESTS = Path(__file__).resolve().parent
WORKER = textwrap.dedent(
    """
    import sys
    import torch.distributed as dist
    sys.path.insert(0, {tests!r})
    from lora_fixtures import random_docs, tiny_lora_model
    from gatoms.gradients import ExtractConfig, extract_gradients

    dist.init_process_group("gloo")
    for fisher in (False, True):
        res = extract_gradients(tiny_lora_model("gemma3"), random_docs(26, seed=11), f"{out}/two-{{fisher}}",
                                ExtractConfig(batch_tokens=96, device="cpu", fisher=fisher), progress=False)
        assert res.n_docs == 26
    dist.destroy_process_group()
    """
)


def test_two_processes_equal_one(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(tests=str(TESTS), out=str(tmp_path)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node", "2", str(script)],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    for fisher in (False, True):  # empirical: one pass; true Fisher: a second, sampled pass
        extract_gradients(tiny_lora_model("gemma3"), random_docs(26, seed=11), tmp_path / f"one-{fisher}",
                          ExtractConfig(batch_tokens=96, device="cpu", fisher=fisher), progress=False)
        one, two = open_gradients(tmp_path / f"one-{fisher}"), open_gradients(tmp_path / f"two-{fisher}")
        assert one.doc_ids == two.doc_ids and one.layout == two.layout
        # Every row is computed in the same batch as in one process: bit-identical.
        np.testing.assert_array_equal(one.rows(slice(None)), two.rows(slice(None)))
        # Factor sums are added per rank, then across ranks: float64 sums in another order.
        f1, f2 = one.factors(), two.factors()
        assert f1.n_tokens == f2.n_tokens and f1.fisher == f2.fisher
        for name in f1.A:
            torch.testing.assert_close(f1.A[name], f2.A[name], rtol=1e-6, atol=0)
            torch.testing.assert_close(f1.S[name], f2.S[name], rtol=1e-6, atol=1e-12)
