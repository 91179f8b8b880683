"""Dictionary learning: the torch solver against scikit-learn, its parts against direct computations,
sign orientation, saving and loading."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from gatoms.method.atoms import (AtomsConfig, Dictionary, encode, encode_chunk, learn_dictionary, load_dictionary,
                                 objective, orient_signs, save_dictionary)
from gatoms.method.discovery import planted_problem


def lasso_reference(x: np.ndarray, D: np.ndarray, alpha: float) -> np.ndarray:
    """One row's lasso by scikit-learn's LARS (the paper's transform)."""
    from sklearn.decomposition import sparse_encode

    return sparse_encode(x[None], D, algorithm="lasso_lars", alpha=alpha)[0]


def test_objective_is_the_direct_formula():
    rng = np.random.default_rng(0)
    X, C, D = rng.standard_normal((30, 7)), sp.random(30, 5, density=0.3, random_state=1), rng.standard_normal((5, 7))
    direct = 0.5 * np.sum((X - C.toarray() @ D) ** 2) + 0.1 * np.abs(C.toarray()).sum()
    assert objective(X, C, D, 0.1, chunk_rows=7) == pytest.approx(direct, rel=1e-6)  # X read as float32


def test_encode_chunk_matches_lars_and_warm_start_agrees():
    p = planted_problem(n_docs=80, proj_dim=24, seed=1)
    rng = np.random.default_rng(1)
    D = rng.standard_normal((12, 24)).astype(np.float32)
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    Dt, Xt = torch.from_numpy(D).double(), torch.from_numpy(p.X).double()
    C, _ = encode_chunk(Xt @ Dt.T, Dt @ Dt.T, 0.1, None, tol=1e-10, max_sweeps=1000)
    ref = np.stack([lasso_reference(x, D.astype(np.float64), 0.1) for x in p.X.astype(np.float64)])
    np.testing.assert_allclose(C.numpy(), ref, atol=1e-5)
    warm, _ = encode_chunk(Xt @ Dt.T, Dt @ Dt.T, 0.1, torch.from_numpy(ref + 0.05), tol=1e-10, max_sweeps=1000)
    np.testing.assert_allclose(warm.numpy(), ref, atol=1e-5)


def test_encode_streams_chunks_like_one_block():
    p = planted_problem(n_docs=50, proj_dim=16, seed=2)
    D = np.random.default_rng(2).standard_normal((8, 16)).astype(np.float32)
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    a, b = encode(p.X, D, 0.1, chunk_rows=7), encode(p.X, D, 0.1, chunk_rows=1000)
    np.testing.assert_allclose(a.toarray(), b.toarray(), atol=1e-5)


def test_torch_backend_reaches_sklearn_objective():
    """Same data, same α and K: ours must be no worse than scikit-learn's (paper settings) + 2%."""
    p = planted_problem(n_docs=150, n_families=6, proj_dim=24, noise=1.0, seed=3)
    cfg = dict(n_atoms=12, alpha=0.1, seed=0)
    ours = learn_dictionary(p.X, AtomsConfig(backend="torch", **cfg))
    theirs = learn_dictionary(p.X, AtomsConfig(backend="sklearn", **cfg))
    assert ours.objective <= 1.02 * theirs.objective, (ours.objective, theirs.objective)
    # the returned objective is evaluated directly, and the torch history never goes up
    assert ours.objective == pytest.approx(objective(p.X, ours.codes, ours.atoms, 0.1), rel=1e-9)
    assert all(b <= a * (1 + 1e-6) for a, b in zip(ours.history, ours.history[1:]))


@pytest.mark.parametrize("backend", ["torch", "sklearn"])
def test_dictionary_shapes_unit_atoms_and_oriented_signs(backend):
    p = planted_problem(n_docs=200, proj_dim=24, seed=4)
    d = learn_dictionary(p.X, AtomsConfig(backend=backend, n_atoms=10, alpha=0.1, max_iter=20, seed=1))
    assert d.atoms.shape == (10, 24) and d.atoms.dtype == np.float32
    assert d.codes.shape == (200, 10) and sp.isspmatrix_csr(d.codes)
    norms = np.linalg.norm(d.atoms, axis=1)
    np.testing.assert_allclose(norms[norms > 0], 1.0, atol=1e-5)
    csc = d.codes.tocsc()
    for j in range(10):
        v = csc[:, j].data
        if v.size:
            assert v[np.argsort(-np.abs(v), kind="stable")[:20]].mean() > 0


def test_orient_signs_flips_atom_and_codes_together():
    rng = np.random.default_rng(5)
    atoms = rng.standard_normal((3, 4)).astype(np.float32)
    codes = sp.csr_matrix(np.array([[-2.0, 1.0, 0.0], [-1.0, 0.5, 0.0], [0.1, -0.2, 0.0]], dtype=np.float32))
    a, c, signs = orient_signs(atoms, codes, top_n=2)
    assert signs.tolist() == [-1, 1, 1]  # atom 0's top-2 codes (-2, -1) were negative; atom 2 is unused
    np.testing.assert_allclose(a[0], -atoms[0])
    np.testing.assert_allclose(c.toarray() @ a, codes.toarray() @ atoms, atol=1e-6)  # CD unchanged
    assert c.toarray()[:2, 0].tolist() == [2.0, 1.0]


def test_alpha_one_zeroes_every_code_of_unit_rows():
    p = planted_problem(n_docs=60, proj_dim=16, seed=6)
    d = learn_dictionary(p.X, AtomsConfig(backend="torch", n_atoms=5, alpha=1.0, max_iter=5))
    assert d.docs_per_atom().sum() == 0 and d.objective == pytest.approx(0.5 * 60, rel=1e-5)


def test_streams_from_a_memmap(tmp_path):
    p = planted_problem(n_docs=120, proj_dim=16, seed=7)
    np.save(tmp_path / "X.npy", p.X)
    mm = np.load(tmp_path / "X.npy", mmap_mode="r")
    cfg = AtomsConfig(backend="torch", n_atoms=8, max_iter=10, chunk_rows=50)
    a, b = learn_dictionary(mm, cfg), learn_dictionary(p.X, cfg)
    np.testing.assert_allclose(a.atoms, b.atoms, atol=1e-6)
    assert a.objective == pytest.approx(b.objective, rel=1e-9)


def test_save_and_load_round_trip(tmp_artifacts):
    from gatoms.build.store import StepStore

    p = planted_problem(n_docs=50, proj_dim=16, seed=8)
    d = learn_dictionary(p.X, AtomsConfig(backend="torch", n_atoms=6, max_iter=5))
    store = StepStore("tiny", "03_atoms")
    store.dir.mkdir(parents=True)
    save_dictionary(store, d)
    e = load_dictionary(store.dir)
    assert isinstance(e, Dictionary)
    np.testing.assert_array_equal(e.atoms, d.atoms)
    np.testing.assert_array_equal(e.signs, d.signs)
    assert (e.codes != d.codes).nnz == 0
    assert e.objective == d.objective and e.alpha == d.alpha and e.backend == "torch"


@pytest.mark.parametrize("bad", [{"backend": "spams"}, {"alpha": -1}, {"n_atoms": 0},
                                 {"backend": "sklearn", "device": "cuda"}])
def test_config_errors_say_what_to_change(bad):
    with pytest.raises(ValueError, match="atoms\\."):
        AtomsConfig(**bad)


def test_notebook_03_atoms_runs_on_smoke(smoke_step):
    from gatoms.build import paths

    store = smoke_step("03_atoms")
    m = store.metrics()
    assert {"seconds", "backend", "n_atoms", "alpha", "median_docs_per_atom", "objective"} <= set(m)
    d = load_dictionary(store)
    X = smoke_step("02_ekfac").load_npy(paths.X)
    assert d.atoms.shape == (m["n_atoms"], X.shape[1]) and d.codes.shape == (X.shape[0], m["n_atoms"])
    assert m["objective"] == pytest.approx(objective(X, d.codes, d.atoms, m["alpha"]), rel=1e-6)
    assert m["objective"] < 0.5 * X.shape[0]  # better than no atoms at all
