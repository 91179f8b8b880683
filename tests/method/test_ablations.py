"""The ablation's baselines and tables on planted toys."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from gatoms.method.ablations import (AblationsConfig, kmeans_decomposition, mean_nonzeros, method_row,
                                     pca_decomposition, sparsity_row)
from gatoms.method.atoms import AtomsConfig
from gatoms.method.coherence import score_coherence
from gatoms.method.discovery import planted_problem
from gatoms.report.figures import plot_methods


def test_kmeans_with_more_clusters_than_documents():
    """192 documents and 500 atoms (the smol profile): N clusters fitted, the other columns unused."""
    X = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    cent, codes = kmeans_decomposition(X, 10, seed=0)
    assert codes.shape == (6, 10) and cent.shape == (10, 4)
    assert np.all(codes.getnnz(axis=1) == 1) and set(codes.indices) == set(range(6))  # every document its own
    assert np.allclose(np.linalg.norm(cent[:6], axis=1), 1) and not cent[6:].any()


def test_kmeans_finds_well_separated_families():
    p = planted_problem(n_docs=200, n_families=4, proj_dim=24, noise=0.2, seed=0)
    cent, codes = kmeans_decomposition(p.X, 4, seed=0, n_init=3)
    assert cent.shape == (4, 24) and codes.shape == (200, 4)
    assert (codes.getnnz(axis=1) == 1).all() and (codes.data > 0).all()  # one positive code per doc
    row = method_row("kmeans", codes, score_coherence(p.grads, codes), p.families)
    assert row["families_recovered"] == 4 and row["nmi"] == pytest.approx(1.0) and row["purity_top50"] == 1.0


def test_pca_keeps_the_largest_scores_per_document():
    from sklearn.decomposition import PCA

    p = planted_problem(n_docs=100, n_families=3, proj_dim=16, seed=1)
    comps, codes = pca_decomposition(p.X, 5, nonzeros=2, seed=0)
    assert comps.shape == (5, 16) and (codes.getnnz(axis=1) == 2).all()
    dense = np.abs(PCA(n_components=5, svd_solver="full").fit(p.X).transform(p.X))
    kept = np.abs(codes.toarray())
    for i in range(100):  # the kept entries are the two largest |scores| (signs may be flipped)
        np.testing.assert_allclose(np.sort(kept[i][kept[i] > 0]), np.sort(dense[i])[-2:], rtol=1e-4)


def test_sparsity_row_counts():
    codes = sp.csr_matrix(np.array([[1, 0, 0], [1, 1, 0], [1, 0, 0]], dtype=np.float32))
    row = sparsity_row(0.1, codes, np.array([0.6, 0.2, 0.0]))
    assert row == {"alpha": 0.1, "median_docs_per_atom": 1.0, "atoms_used": 2, "n_coh_gt_0_5": 1,
                   "n_coh_gt_0_1": 2}
    assert mean_nonzeros(codes) == 2  # 4 codes / 3 docs, rounded up


def test_atoms_config_overrides_only_what_is_set():
    base = AtomsConfig(backend="sklearn", n_atoms=50, max_iter=100)
    cfg = AblationsConfig(backend="torch", max_iter=None).atoms_config(base, alpha=0.01)
    assert (cfg.backend, cfg.max_iter, cfg.alpha, cfg.n_atoms) == ("torch", 100, 0.01, 50)
    assert AblationsConfig().atoms_config(base) == base


@pytest.mark.parametrize("bad", [{"methods": ["ica"]}, {"alphas": []}, {"backend": "spams"}, {"max_iter": 0}])
def test_config_errors(bad):
    with pytest.raises(ValueError, match="ablations\\."):
        AblationsConfig(**bad)


def test_plot_methods_draws_every_method():
    rows = [{"label": m, "families_recovered": 3, "n_families": 4, "nmi": 0.5, "purity_top50": 0.7}
            for m in ("a", "b")]
    fig = plot_methods(rows)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["a", "b"]


def test_notebook_05_ablations_runs_on_smoke(smoke_step, smoke_tree):
    from gatoms.build import paths

    store = smoke_step("05_ablations")
    m = store.metrics()
    assert set(m["sparsity"]) == {"0.01", "0.1", "1.0"}
    assert m["sparsity"]["1.0"] == {"median_docs_per_atom": 0.0, "n_coh_gt_0_5": 0, "n_coh_gt_0_1": 0}
    assert set(m["methods"]) == {"no_whitening", "kfac", "ekfac", "random_projection", "kmeans", "pca"}
    for r in m["methods"].values():
        assert {"families_recovered", "nmi", "v_measure", "purity_top50", "family_share", "family_ami"} <= set(r)
        assert 0 <= r["nmi"] <= 1 and r["v_measure"] == pytest.approx(r["nmi"], abs=1e-3)  # arithmetic NMI = V
    assert set(m["damping"]) == {"0.001", "0.1", "1000"}
    assert m["damping"]["0.1"] == m["methods"]["ekfac"]  # step 02's damping: the EKFAC row itself
    assert m["fit_settings"]["same_as_main_run"] and m["fit_settings"]["max_iter"] == 30
    assert (smoke_tree / "figures" / "smoke" / "fig_ablations.png").exists() and store.exists(paths.METHODS)


def test_random_projection_matches_a_dense_product_in_any_chunking():
    from gatoms.method.whitening import random_projection

    rng = np.random.default_rng(0)
    G = rng.standard_normal((23, 50)).astype(np.float32)  # (N, D) raw gradients
    X = random_projection(G, 8, seed=5, block=16)
    M = np.random.default_rng(5).standard_normal((50, 8), dtype=np.float32) / np.float32(np.sqrt(8))  # whole
    Z = G.astype(np.float64) @ M.astype(np.float64)
    np.testing.assert_allclose(X, Z / np.linalg.norm(Z, axis=1, keepdims=True), atol=1e-5)
    np.testing.assert_allclose(X, random_projection(G, 8, seed=5, block=4096), atol=1e-6)  # any block size
    assert not np.allclose(X, random_projection(G, 8, seed=6, block=16))

    class Columns:  # a reader with GradientReader's column reads: asked for every row of 16 columns at a time
        shape, asked = G.shape, []

        def columns(self, idx, lo, hi):
            self.asked.append((len(idx), lo, hi))
            return G[idx, lo:hi]

    reader = Columns()
    np.testing.assert_allclose(random_projection(reader, 8, seed=5, block=16), X, atol=1e-6)
    assert reader.asked == [(23, 0, 16), (23, 16, 32), (23, 32, 48), (23, 48, 50)]
    with pytest.raises(ValueError, match="zero"):
        random_projection(np.zeros((3, 50), np.float32), 8)


def test_method_row_reports_label_alignment_and_v_measure():
    p = planted_problem(n_docs=120, n_families=4, proj_dim=16, noise=0.2, seed=0)
    nuisance = [str(i % 2) for i in range(120)]
    codes = kmeans_decomposition(p.X, 4, seed=0, n_init=3)[1]
    row = method_row("kmeans", codes, score_coherence(p.grads, codes), {"family": p.families, "nuisance": nuisance})
    assert row["family_share"] == pytest.approx(1.0) and row["family_ami"] == pytest.approx(1.0)
    assert row["nuisance_share"] < 0.1 and row["v_measure"] == pytest.approx(1.0)
    assert "topic_share" not in row  # a label the documents lack is no column
    assert method_row("kmeans", codes, score_coherence(p.grads, codes), p.families)["family_share"] == row["family_share"]


def test_damping_config_is_validated():
    assert AblationsConfig(dampings=[1e-3, 1]).dampings == (0.001, 1.0)
    with pytest.raises(ValueError, match="ablations.dampings"):
        AblationsConfig(dampings=[0.0])
