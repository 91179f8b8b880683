"""Coherence against a direct computation, streaming against in-memory, the atom table, and the
Figure 1 map's labels sitting on their own atoms."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from gatoms.build.store import ArtifactError
from gatoms.build.tables import read_table, write_table
from gatoms.data.documents import Document
from gatoms.method.coherence import CoherenceConfig, atom_table, score_coherence, top_documents
from gatoms.method.gradients.storage import align as align_documents


def direct_coherence(grads: np.ndarray, codes: np.ndarray, top_n: int = 20, thr: float = 1e-6) -> np.ndarray:
    """The paper's definition with plain loops."""
    out = []
    for j in range(codes.shape[1]):
        active = [n for n in range(codes.shape[0]) if abs(codes[n, j]) > thr]
        top = sorted(active, key=lambda n: (-abs(codes[n, j]), n))[:top_n]
        if len(top) < 2:
            out.append(0.0)
            continue
        sims = []
        for a in top:
            for b in top:
                if a != b:
                    ga, gb = grads[a].astype(np.float64), grads[b].astype(np.float64)
                    sims.append(ga @ gb / (np.linalg.norm(ga) * np.linalg.norm(gb)))
        out.append(float(np.mean(sims)))
    return np.array(out)


def random_problem(N=60, D=40, K=7, seed=0):
    rng = np.random.default_rng(seed)
    grads = rng.standard_normal((N, D)).astype(np.float32) + np.repeat(rng.standard_normal((3, D)), N // 3, 0)
    codes = rng.standard_normal((N, K)) * (rng.random((N, K)) < 0.4)
    codes[:, 5] = 0.0  # an unused atom
    codes[:, 6] = 0.0
    codes[3, 6] = 0.7  # a single active document
    return grads.astype(np.float32), codes.astype(np.float32)


def test_coherence_equals_the_direct_computation():
    grads, codes = random_problem()
    got = score_coherence(grads, sp.csr_matrix(codes), top_n=20)
    np.testing.assert_allclose(got, direct_coherence(grads, codes), atol=1e-6)
    assert got[5] == 0.0 and got[6] == 0.0


class CountingReader:
    """A gradient reader over a memmap that counts how often each entry is read, and the largest block."""

    def __init__(self, mm):
        self.mm, self.reads, self.largest = mm, np.zeros(mm.shape, dtype=np.int64), 0

    @property
    def shape(self):
        return self.mm.shape

    def columns(self, idx, start, stop):
        idx = np.asarray(idx)
        self.reads[idx[:, None], np.arange(start, stop)[None, :]] += 1
        block = np.asarray(self.mm[idx, start:stop], dtype=np.float32)
        self.largest = max(self.largest, block.nbytes)
        return block


def test_memmap_streamed_coherence_reads_each_needed_row_once(tmp_path):
    from gatoms.method.coherence import top_documents_all

    grads, codes = random_problem(N=90, D=8192, K=12, seed=1)
    np.save(tmp_path / "g.npy", grads)
    reader = CountingReader(np.load(tmp_path / "g.npy", mmap_mode="r"))
    budget = 2**20  # 1 MiB: a block of all the needed rows holds far fewer than 8,192 columns
    streamed = score_coherence(reader, sp.csr_matrix(codes), top_n=20, max_bytes=budget)
    np.testing.assert_allclose(streamed, direct_coherence(grads, codes), atol=1e-6)
    np.testing.assert_allclose(streamed, score_coherence(grads, sp.csr_matrix(codes)), atol=1e-9)
    needed = np.unique(np.concatenate([t for t in top_documents_all(sp.csr_matrix(codes), 20) if t.size >= 2]))
    assert np.all(reader.reads[needed] == 1)  # every entry of every needed row exactly once
    assert reader.reads.sum() == needed.size * 8192  # and nothing else
    assert 0 < reader.largest <= budget


def test_zero_gradient_has_cosine_zero():
    grads = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0]], dtype=np.float32)
    codes = sp.csr_matrix(np.array([[1.0], [0.9], [0.8]], dtype=np.float32))
    assert score_coherence(grads, codes, top_n=3)[0] == pytest.approx((1 + 1 + 0 + 0 + 0 + 0) / 6)


def test_top_documents_by_abs_code_then_row():
    codes = sp.csr_matrix(np.array([[0.5], [-0.9], [0.5], [1e-7], [0.0], [0.2]], dtype=np.float32))
    assert top_documents(codes, 0, n=3).tolist() == [1, 0, 2]
    assert top_documents(codes, 0, n=10).tolist() == [1, 0, 2, 5]  # 1e-7 is not active


def docs_for(families, fmts):
    return [Document(doc_id=f"d{i}", prompt=f"question {i} about {f}",
                     response=f"{f} answer {'alpha' if f == 'math' else 'beta'} {i}", family=f, fmt=m)
            for i, (f, m) in enumerate(zip(families, fmts))]


def test_atom_table_describes_every_atom_without_a_human():
    families = ["math"] * 6 + ["code"] * 6
    fmts = ["plain"] * 6 + ["code"] * 6
    docs = docs_for(families, fmts)
    codes = np.zeros((12, 3), dtype=np.float32)
    codes[:6, 0] = np.arange(6, 0, -1)  # atom 0: the math documents
    codes[6:, 1] = 1.0  # atom 1: the code documents
    coherence = np.array([0.2, 0.8, 0.0])
    table = atom_table(sp.csr_matrix(codes), coherence, docs, top_n=4)
    assert [r.atom for r in table] == [1, 0, 2] and [r.rank for r in table] == [1, 2, 3]
    code_row, math_row, empty = table
    assert code_row.family == "code" and code_row.family_share == 1.0
    assert code_row.top_fmt == "code" and code_row.active_docs == 6
    assert math_row.top_docs == (0, 1, 2, 3) and math_row.top_doc_ids == ("d0", "d1", "d2", "d3")
    assert math_row.example_prompt == "question 0 about math"
    assert "alpha" in math_row.words.split() and "beta" in code_row.words.split()
    assert math_row.description.startswith("math (100%)")
    assert empty.active_docs == 0 and empty.description == "(no active documents)" and empty.top_doc_ids == ()


def test_align_documents_orders_by_gradient_rows_and_names_missing():
    docs = docs_for(["a", "b"], ["plain", "plain"])
    assert [d.doc_id for d in align_documents(docs, ["d1", "d0"])] == ["d1", "d0"]
    with pytest.raises(ArtifactError, match="make extract"):
        align_documents(docs, ["d0", "zz"])


def test_write_table_csv_and_markdown(tmp_path):
    rows = [{"rank": 1, "atom": 4, "coherence": 0.5, "description": "a | b"}]
    write_table(rows, tmp_path / "t.csv", tmp_path / "t.md")
    assert read_table(tmp_path / "t.csv") == [{"rank": "1", "atom": "4", "coherence": "0.5", "description": "a | b"}]
    md = (tmp_path / "t.md").read_text().splitlines()
    assert md[0] == "| rank | atom | coherence | description |" and md[1] == "| --- | --- | --- | --- |"
    assert md[2] == "| 1 | 4 | 0.500 | a \\| b |"


def test_atom_map_labels_sit_on_their_own_atoms(method="pca"):
    """The authors' map attached labels by list position; ours puts '#j' at atom j's point."""
    from gatoms.report.figures import atom_coordinates, figure1

    rng = np.random.default_rng(0)
    atoms = rng.standard_normal((40, 16))
    coherence = rng.random(40)
    xy = atom_coordinates(atoms, method=method, seed=0)
    assert xy.shape == (40, 2)
    top = np.argsort(-coherence)[:5]  # labelled atoms, deliberately not in index order
    fig = figure1(coherence, xy, {int(j): f"#{int(j)}" for j in top})
    ax = fig.axes[1]
    anns = [c for c in ax.get_children() if c.__class__.__name__ == "Annotation"]
    assert len(anns) == 5
    for a in anns:
        j = int(a.get_text().lstrip("#"))
        assert a.xy == pytest.approx(tuple(xy[j])), f"label of atom {j} is not at its point"
    scatter = ax.collections[0].get_offsets()
    np.testing.assert_allclose(np.asarray(scatter), xy)  # point j of the scatter is atom j


def test_config_errors():
    with pytest.raises(ValueError, match="coherence.top_n"):
        CoherenceConfig(top_n=1)
    with pytest.raises(ValueError, match="map_method"):
        CoherenceConfig(map_method="umap")


def test_notebook_04_coherence_runs_on_smoke(smoke_step, smoke_tree):
    from gatoms.build import paths
    from gatoms.method.atoms import load_dictionary
    from gatoms.method.gradients import open_gradients

    store = smoke_step("04_coherence")
    m = store.metrics()
    assert {"seconds", "n_coh_gt_0_5", "n_coh_gt_0_1", "top_atoms", "families_recovered", "n_families", "nmi",
            "purity_top50"} <= set(m)
    d = load_dictionary(smoke_step("03_atoms"))
    coh = store.load_npy(paths.COHERENCE)
    table = read_table(store.path(paths.ATOM_TABLE))
    assert len(table) == d.n_atoms and [int(r["atom"]) for r in table][:3] == [a["atom"] for a in m["top_atoms"][:3]]
    # the stored coherence of the top atom is the direct computation on its top documents' raw gradients
    top = m["top_atoms"][0]["atom"]
    reader = open_gradients(smoke_step("01_extract").dir)
    idx = top_documents(d.codes, top, 20)
    G = reader.rows(np.sort(idx)).astype(np.float64)
    G /= np.linalg.norm(G, axis=1, keepdims=True)
    S = G @ G.T
    assert coh[top] == pytest.approx((S.sum() - np.trace(S)) / (len(idx) * (len(idx) - 1)), abs=1e-6)
    figures = smoke_tree / "figures" / "smoke"
    assert (figures / "fig1_atoms.png").exists() and (figures / "table4_atoms.md").exists()
