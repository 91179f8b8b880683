"""Step 02 at scale: the streamed float32 passes and the reduced eigenbasis against the float64 reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gatoms.lm.layout import Layout
from gatoms.method.ekfac import (Eigenbasis, Factors, Projection, ProjectionSettings, ekfac_eigenvalues, energy_curves,
                                 fit_eigenbasis)
from gatoms.method.ekfac.stream import fit_projection

SHAPES = [("l0.q_proj.lora_A.default", (4, 24)), ("l0.q_proj.lora_B.default", (20, 4)),
          ("l1.v_proj.lora_A.default", (4, 24)), ("l1.v_proj.lora_B.default", (12, 4))]
KS = [1, 3, 10, 40]


def synthetic(n: int = 64, seed: int = 0) -> tuple[Layout, np.ndarray, Factors]:
    """Rows with a planted low-rank part plus noise, and Kronecker factors from per-token vectors."""
    g = np.random.default_rng(seed)
    layout = Layout.from_shapes(SHAPES)
    rows = g.standard_normal((n, 3)) @ g.standard_normal((3, layout.n_params)) + 0.3 * g.standard_normal((n, layout.n_params))
    A, S = {}, {}
    for m in layout:
        a = g.standard_normal((200, m.shape[1])) * np.linspace(2, 0.1, m.shape[1])
        d = g.standard_normal((200, m.shape[0])) * np.linspace(1, 0.2, m.shape[0])
        A[m.name], S[m.name] = torch.from_numpy(a.T @ a / 200), torch.from_numpy(d.T @ d / 200)
    return layout, rows.astype(np.float32), Factors(A=A, S=S, n_tokens=200, fisher="empirical")


def rel(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.parametrize("mode", ["ekfac", "kfac"])
@pytest.mark.parametrize("chunk", [None, 7])
def test_streamed_passes_equal_the_separate_float64_passes(mode, chunk):
    layout, rows, factors = synthetic()
    settings = ProjectionSettings(k=5, eigen_mode=mode)
    fit = fit_projection(rows, fit_eigenbasis(factors, layout), settings, ks=KS, chunk_rows=chunk)
    ref_basis = ekfac_eigenvalues(rows, fit_eigenbasis(factors, layout))  # the float64 reference, pass by pass
    for m in layout:
        torch.testing.assert_close(fit.projection.basis.ekfac[m.name], ref_basis.ekfac[m.name], rtol=1e-5, atol=0)
    ref = Projection(ref_basis, settings)
    Z, energy = ref.project(rows, return_energy=True)
    assert fit.passes == 2  # the EKFAC-order curve (and an EKFAC top-k) needs Λ of every row first
    assert not fit.projection.basis.full  # pass 2 freed the eigenvectors no projection of k = 5 uses
    other = "kfac" if mode == "ekfac" else "ekfac"
    assert rel(fit.projection.project(rows), Z) < 1e-5
    assert rel(fit.projection.with_settings(eigen_mode=other).project(rows), ref.with_settings(eigen_mode=other).project(rows)) < 1e-5
    assert rel(fit.Z, Z) < 1e-5 and rel(fit.energy, energy) < 1e-5
    assert rel(fit.Z_raw, ref.with_settings(whiten=False).project(rows)) < 1e-5
    for name, curve in energy_curves(rows, ref_basis, KS).items():
        assert rel(fit.curves[name], curve) < 1e-5
    if mode == "kfac":  # KFAC's order is known before any row: Λ, Z and its curve in one pass
        one = fit_projection(rows, fit_eigenbasis(factors, layout), settings, ks=KS, modes=("kfac",), chunk_rows=chunk)
        assert one.passes == 1 and rel(one.Z, Z) < 1e-5 and rel(one.curves["kfac"], fit.curves["kfac"]) < 1e-12


def test_reduced_eigenvectors_give_the_same_z_and_the_same_unprojected_vectors(tmp_path):
    layout, rows, factors = synthetic(seed=1)
    basis = ekfac_eigenvalues(rows, fit_eigenbasis(factors, layout))
    for mode in ("ekfac", "kfac"):
        full = Projection(basis, ProjectionSettings(k=6, eigen_mode=mode))
        small = Projection(basis.reduced(6), full.settings)
        assert not small.basis.full and all(small.basis.q_a[m.name].shape[1] <= 12 for m in layout)
        Z = full.project(rows)
        assert rel(small.project(rows), Z) <= 1e-6
        assert rel(small.unproject(Z[:5], dtype=torch.float64), full.unproject(Z[:5], dtype=torch.float64)) <= 1e-6
    full.save(tmp_path / "eigen.safetensors")  # saved reduced, float32 columns
    loaded = Projection.load(tmp_path / "eigen.safetensors")
    assert not loaded.basis.full and loaded.basis.q_a[layout.modules[0].name].dtype == torch.float32
    assert rel(loaded.project(rows), full.project(rows)) <= 1e-6
    assert rel(loaded.with_settings(eigen_mode="ekfac", whiten=False).project(rows),
               full.with_settings(eigen_mode="ekfac", whiten=False).project(rows)) <= 1e-6
    reloaded = Eigenbasis.load(tmp_path / "eigen.safetensors")
    assert reloaded.cols_a is not None and reloaded.ekfac is not None


def test_a_reduced_basis_refuses_directions_it_does_not_hold():
    layout, rows, factors = synthetic(seed=2)
    small = ekfac_eigenvalues(rows, fit_eigenbasis(factors, layout)).reduced(3)
    with pytest.raises(ValueError, match="outside the eigenvector columns"):
        Projection(small, ProjectionSettings(k=30))
    with pytest.raises(ValueError, match="full eigenbasis"):
        energy_curves(rows, small, [1, 2])
    with pytest.raises(ValueError, match="full eigenbasis"):
        fit_projection(rows, small, ProjectionSettings(k=3))


def test_prefetch_errors_reach_the_caller():
    layout, rows, factors = synthetic(seed=3)

    class Broken:
        layout = Layout.from_shapes(SHAPES)
        shape = rows.shape

        def __len__(self):
            return rows.shape[0]

        def chunks(self, chunk_rows=None):
            yield 0, rows[:8]
            raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        fit_projection(Broken(), fit_eigenbasis(factors, layout), ProjectionSettings(k=3))


def test_identical_factors_share_one_decomposition():
    layout, rows, factors = synthetic(seed=4)
    a, b = layout.modules[0].name, layout.modules[2].name  # both (4, 24): give them the same A
    factors.A[b] = factors.A[a].clone()
    basis = fit_eigenbasis(factors, layout)
    assert torch.equal(basis.q_a[a], basis.q_a[b])  # decomposed once (the same eigenvectors, not only up to sign)
    lam, q = torch.linalg.eigh(factors.A[b].double())
    torch.testing.assert_close(basis.lam_a[b], lam.clamp_min(0))
    torch.testing.assert_close(basis.q_a[b].abs(), q.abs())
