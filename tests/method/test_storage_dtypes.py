"""What half-precision storage of grads.npy does to step 02's projection and step 04's coherence, against
float32 storage of the same rows. bfloat16 keeps 8 significant bits, float16 11. Stated tolerances,
about 3× what was measured on planted low-rank rows (bfloat16: Λ 5e-4, Z 1.4e-3, coherence 2e-5;
float16: Λ 6e-5, Z 1.9e-4, coherence 2e-6):

    bfloat16   EKFAC Λ within 0.2% (relative, Frobenius, worst module), Z within 0.5%, coherence ±1e-4
    float16    Λ within 0.02%,                                          Z within 0.05%, coherence ±1e-5

Z is compared with the directions float32 storage keeps (a perturbed Λ could swap two near-tied ones).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from test_ekfac_stream import rel, synthetic

from gatoms.build import paths
from gatoms.method.coherence import score_coherence
from gatoms.method.ekfac import Projection, ProjectionSettings, fit_eigenbasis, fit_projection
from gatoms.method.gradients import STORAGE_DTYPES, open_gradients, to_storage

TOLERANCE = {"bfloat16": (2e-3, 5e-3, 1e-4), "float16": (2e-4, 5e-4, 1e-5)}  # Λ, Z, coherence


def stored(tmp_path, rows: np.ndarray, layout, dtype: str):
    """rows written as step 01 writes them (grads.npy in the storage dtype + grads.json), then opened."""
    out = tmp_path / dtype
    out.mkdir()
    np.save(out / paths.GRADS, to_storage(torch.from_numpy(rows), dtype))
    assert np.load(out / paths.GRADS, mmap_mode="r").dtype == STORAGE_DTYPES[dtype]
    meta = {"layout": layout.to_json(), "doc_ids": [f"d{n}" for n in range(len(rows))], "dtype": dtype}
    (out / paths.GRADS_META).write_text(json.dumps(meta))
    return open_gradients(out)


@pytest.mark.parametrize("dtype", sorted(TOLERANCE))
def test_half_storage_stays_within_the_stated_tolerance_of_float32(tmp_path, dtype):
    layout, rows, factors = synthetic(n=120, seed=7)
    tol_lam, tol_z, tol_coh = TOLERANCE[dtype]
    settings = ProjectionSettings(k=5)
    ref = fit_projection(stored(tmp_path, rows, layout, "float32"), fit_eigenbasis(factors, layout), settings)
    half = stored(tmp_path, rows, layout, dtype)
    fit = fit_projection(half, fit_eigenbasis(factors, layout), settings)
    lam = {m.name: (fit.projection.basis.ekfac[m.name], ref.projection.basis.ekfac[m.name]) for m in layout}
    assert max(rel(a.numpy(), b.numpy()) for a, b in lam.values()) <= tol_lam
    # the projection itself, with the same (float32-storage) directions kept
    same_dirs = Projection(ref.projection.basis, settings)
    assert rel(same_dirs.project(half), ref.Z) <= tol_z
    codes = sp.csr_matrix(np.abs(ref.Z[:, :12]) * (np.abs(ref.Z[:, :12]) > 0.8))  # some atoms' documents
    coh_ref = score_coherence(open_gradients(tmp_path / "float32"), codes)
    assert np.max(np.abs(score_coherence(half, codes) - coh_ref)) <= tol_coh

