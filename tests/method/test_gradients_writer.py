"""The background row writer: the same file as writing in the caller, errors raised in the caller, and an
extraction killed while rows are queued resumes to the bit-identical result."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from gatoms.build import paths
from gatoms.method.gradients.writer import RowWriter

REPO = Path(__file__).resolve().parents[2]


def batches(n: int = 200, d: int = 33, seed: int = 0):
    """Shuffled batches of (ascending row indices, uint16 rows), as the extractor hands them over."""
    g = np.random.default_rng(seed)
    perm, out, s = g.permutation(n), [], 0
    while s < n:
        b = int(g.integers(1, 17))
        idx = np.sort(perm[s: s + b])
        out.append((idx, g.integers(0, 2**16, (len(idx), d), dtype=np.uint16)))
        s += b
    return out


@pytest.mark.parametrize("depth", [1, 3])
def test_background_rows_equal_the_synchronous_ones(tmp_path, depth):
    files = {}
    for background in (False, True):
        path = tmp_path / f"{background}.npy"
        mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint16, shape=(200, 33))
        with RowWriter(mm, depth=depth, background=background) as w:
            for i, (idx, rows) in enumerate(batches()):
                w.write(idx, rows)
                if i % 5 == 0:
                    w.flush()
        del mm
        files[background] = path.read_bytes()
    assert files[True] == files[False]
    want = np.zeros((200, 33), dtype=np.uint16)
    for idx, rows in batches():
        want[idx] = rows
    np.testing.assert_array_equal(np.load(tmp_path / "True.npy"), want)


def test_a_writing_error_is_raised_in_the_caller(tmp_path):
    mm = np.lib.format.open_memmap(tmp_path / "g.npy", mode="w+", dtype=np.uint16, shape=(10, 4))
    w = RowWriter(mm)
    w.write([0, 1], np.zeros((2, 4), dtype=np.float32))  # wrong dtype: fails in the thread
    with pytest.raises(RuntimeError, match="writing gradient rows failed"):
        w.flush()
    w.write([2], np.ones((1, 4), dtype=np.uint16))  # the writer keeps working after reporting it
    w.close()
    assert np.load(tmp_path / "g.npy")[2].tolist() == [1, 1, 1, 1]
    with pytest.raises(ValueError, match="depth"):
        RowWriter(mm, depth=0)


KILLED_RUN = """
import os, signal, sys
sys.path[:0] = [{repo!r}, {tests!r}]
from lora_fixtures import random_docs, tiny_lora_model
from gatoms.method.gradients import ExtractConfig, extract_gradients
from gatoms.method.gradients import writer

calls = {{"n": 0}}
write = writer.RowWriter.write

def write_then_die(self, idx, rows):
    write(self, idx, rows)
    calls["n"] += 1
    if calls["n"] == {kill_at}:  # rows queued, maybe half in the file: killed with no chance to clean up
        os.kill(os.getpid(), signal.SIGKILL)

writer.RowWriter.write = write_then_die
extract_gradients(tiny_lora_model("gemma3"), random_docs(30, seed=5), {out!r},
                  ExtractConfig(batch_tokens=96, checkpoint_seconds=0.0, device="cpu", dtype="bfloat16"), progress=False)
"""


@pytest.mark.integration
def test_an_extraction_killed_mid_write_resumes_bit_identical(tmp_path):
    from lora_fixtures import random_docs, tiny_lora_model

    from gatoms.method.gradients import ExtractConfig, extract_gradients, open_gradients

    cfg = ExtractConfig(batch_tokens=96, checkpoint_seconds=0.0, device="cpu", dtype="bfloat16")
    model, docs = tiny_lora_model("gemma3"), random_docs(30, seed=5)
    extract_gradients(model, docs, tmp_path / "full", cfg, progress=False)
    script = KILLED_RUN.format(repo=str(REPO), tests=str(REPO / "tests"), kill_at=4, out=str(tmp_path / "cut"))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert (tmp_path / "cut" / (paths.GRADS + ".part")).exists() and not (tmp_path / "cut" / paths.GRADS).exists()
    resumed = extract_gradients(model, docs, tmp_path / "cut", cfg, progress=False)
    assert 0 < resumed.resumed_batches < 4  # continued from the last checkpoint, before the queued rows
    a, b = open_gradients(tmp_path / "full"), open_gradients(tmp_path / "cut")
    np.testing.assert_array_equal(a.rows(slice(None)), b.rows(slice(None)))
    fa, fb = a.factors(), b.factors()
    assert all(np.array_equal(fa.A[k].numpy(), fb.A[k].numpy()) for k in fa.A)
