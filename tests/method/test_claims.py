"""The claim metrics on planted toys where the answer is known, and the fast paths against slow loops."""

from __future__ import annotations


import numpy as np
import pytest
import scipy.sparse as sp

from gatoms.method import claims
from gatoms.method.discovery import family_matches


def slow_found(pure: np.ndarray, atoms) -> int:
    return len({int(pure[j]) for j in atoms if pure[j] >= 0})


def test_count_found_matches_a_loop():
    rng = np.random.default_rng(0)
    pure = rng.integers(-1, 6, size=40)
    atoms = np.argsort(rng.random((25, 40)), axis=1)[:, :12]
    assert claims.count_found(pure, atoms).tolist() == [slow_found(pure, a) for a in atoms]
    assert claims.count_found(np.full(5, -1), np.arange(5)) == 0


def test_coherence_ranking_that_surfaces_task_types_beats_random():
    """10 of 100 atoms are pure, one per family, and coherence ranks them first: the top 10 find all 10
    families, random draws find 10 × 10/100 = 1 on average and never 10, so p = 1/(1+draws)."""
    K, F = 100, 10
    pure = np.full(K, -1)
    pure[:F] = np.arange(F)
    coherence = np.linspace(1, 0, K)
    out = claims.coherence_vs_random(coherence, pure, ns=(10, 100), n_draws=2000, seed=0)
    assert out["10"]["observed"] == 10 and out["10"]["p"] == pytest.approx(1 / 2001, abs=1e-4)
    assert out["10"]["random_mean"] == pytest.approx(1.0, abs=0.1)
    assert out["100"] == {**out["100"], "observed": 10, "random_mean": 10.0, "p": 1.0}  # every atom: no contest
    # the reverse ranking puts the pure atoms last: nothing found in the top 10, p = 1
    rev = claims.coherence_vs_random(-coherence, pure, ns=(10,), n_draws=500, seed=0)["10"]
    assert rev["observed"] == 0 and rev["p"] == 1.0


def test_random_null_matches_a_slow_loop_with_the_same_draws():
    rng = np.random.default_rng(3)
    pure = rng.integers(-1, 4, size=30)
    coh = rng.random(30)
    out = claims.coherence_vs_random(coh, pure, ns=(5,), n_draws=300, seed=7)["5"]
    draws = np.argsort(np.random.default_rng(7).random((300, 30)), axis=1)[:, :5]
    rand = [slow_found(pure, d) for d in draws]
    obs = slow_found(pure, claims.coherence_order(coh)[:5])
    assert out["observed"] == obs and out["random_mean"] == pytest.approx(np.mean(rand), abs=1e-3)
    assert out["p"] == pytest.approx((1 + sum(r >= obs for r in rand)) / 301, abs=1e-4)
    assert claims.coherence_vs_random(coh, pure, ns=(5,), n_draws=300, seed=7) == {"5": out}  # seeded


def test_auroc_against_pair_counting_and_sklearn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    s = rng.integers(0, 5, size=60).astype(float)  # many ties
    y = rng.random(60) < 0.4
    pairs = [(a > b) + 0.5 * (a == b) for a in s[y] for b in s[~y]]
    assert claims.auroc(s, y) == pytest.approx(np.mean(pairs)) == pytest.approx(roc_auc_score(y, s))
    assert claims.auroc(np.array([3.0, 2.0, 1.0]), np.array([True, True, False])) == 1.0
    assert np.isnan(claims.auroc(s, np.zeros(60, bool)))


def test_top_shares_and_purity():
    y = np.array([0, 0, 1, 1, -1, 2])
    tops = [np.array([0, 1, 2]), np.array([4]), np.array([2, 3, 5, 4]), np.array([], dtype=np.int64)]
    share, major = claims.top_shares(tops, y)
    np.testing.assert_allclose(share[[0, 2]], [2 / 3, 2 / 3])
    assert np.isnan(share[1]) and np.isnan(share[3]) and major.tolist() == [0, -1, 1, -1]
    assert claims.pure_values(share, major, 0.6).tolist() == [0, -1, 1, -1]
    assert claims.coherence_auroc(np.array([0.9, 0.0, 0.1, 0.5]), share, 0.6) != claims.coherence_auroc(
        np.array([0.9, 0.0, 0.1, 0.5]), share, 0.9)  # all impure at 0.9: NaN


def split_family_codes():
    """Family a (docs 0-39) split over 4 pure sub-atoms, family b (40-79) one atom."""
    fams = ["a"] * 40 + ["b"] * 40
    C = np.zeros((80, 5))
    for k in range(4):
        C[10 * k: 10 * (k + 1), k] = 1.0
    C[40:, 4] = 1.0
    return fams, sp.csr_matrix(C)


def test_union_of_sub_atoms_recovers_a_split_family():
    fams, C = split_family_codes()
    y, names = claims.encode(fams)
    tops = claims.top_documents_all(C, 20)
    _, major = claims.top_shares(tops, y)
    rows = {r["family"]: r for r in claims.union_f1(C, major, y, names)}
    assert rows["a"] == {"family": "a", "n_docs": 40, "n_atoms": 4, "precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert {r["family"]: round(r["f1"], 3) for r in family_matches(C, fams)}["a"] == 0.4  # best single atom
    # homogeneity 1 (every atom pure), completeness < 1 (a split over 4)
    p = claims.partition_scores(claims.strongest_atom(C), y)
    assert p["homogeneity"] == pytest.approx(1.0) and p["completeness"] < 0.7
    assert p["v_measure"] == pytest.approx(2 * p["homogeneity"] * p["completeness"] / (p["homogeneity"] + p["completeness"]),
                                           abs=1e-3)


def test_label_alignment_tells_a_nuisance_atom_from_a_family_atom():
    """Two decompositions of the same documents: one assigns by nuisance, one by family."""
    rng = np.random.default_rng(0)
    n = 400
    fam = rng.integers(0, 4, n)
    nuis = (rng.random(n) < 0.3).astype(int)
    cols = {"family": [f"f{v}" for v in fam], "nuisance": [str(v) for v in nuis]}
    by_family = sp.csr_matrix((np.ones(n), (np.arange(n), fam)), shape=(n, 4))
    by_nuisance = sp.csr_matrix((np.ones(n), (np.arange(n), nuis)), shape=(n, 4))
    a, b = claims.label_alignment(by_family, cols), claims.label_alignment(by_nuisance, cols)
    assert a["family"]["share"] == pytest.approx(1.0) and a["nuisance"]["share"] < 0.05
    assert b["nuisance"]["share"] == pytest.approx(1.0) and b["family"]["share"] < 0.05
    assert a["nuisance"]["ami"] < 0.02 and b["nuisance"]["ami"] == pytest.approx(1.0)


def test_planted_behaviour_and_rare_families_ranks():
    # 6 atoms; atom 3 is pure for planted=1 and ranks 2nd by coherence; family "r" (rare) has one pure atom
    # ranked 4th; family "s" (rare) none.
    docs_fam = ["a"] * 50 + ["b"] * 50 + ["r"] * 5 + ["s"] * 6
    planted = ["0"] * 111
    for i in range(60, 70):
        planted[i] = "1"
    N = len(docs_fam)
    C = np.zeros((N, 6))
    C[:50, 0] = 1
    C[50:60, 1] = 1
    C[60:70, 3] = 1
    C[100:105, 4] = 1
    C[105:, 5] = 1
    C[:3, 5] = 2  # atom 5's top docs: 3 of a, 6 of s → impure
    coh = np.array([0.9, 0.1, 0.05, 0.8, 0.3, 0.2])  # ranks: 0, 3, 4, 5, 1, 2
    cols = {"family": docs_fam, "planted": planted}
    out = claims.discovery_claims(sp.csr_matrix(C), coh, cols, ns=(1, 2, 5), n_draws=50)
    assert out["planted"]["rank"] == 2 and out["planted"]["in_top"] == {"1": False, "2": True, "5": True}
    assert out["planted"]["n_docs"] == 10
    rare = {r["family"]: r for r in out["rare"]}
    assert rare["r"]["found"] and rare["r"]["rank"] == 3 and not rare["s"]["found"] and rare["s"]["rank"] is None
    assert [r["family"] for r in out["rare"]] == ["r", "s", "a"]
    assert "topic" in out["skipped"] and "nuisance" in out["skipped"] and "family" not in out["skipped"]


def test_granularity_profile_separates_instances_from_task_types():
    """Atoms whose top documents are copies of one response (instances) vs atoms of one family with
    distinct responses (task types): the response share tells them apart, family purity does not."""
    n_atoms, top = 10, 20
    fams, resp, rows, cols = [], [], [], []
    for j in range(n_atoms):
        for i in range(top):
            rows.append(len(fams))
            cols.append(j)
            fams.append(f"f{j % 5}")
            resp.append("copy" if j < 5 else f"r{j}-{i}")
    C = sp.csr_matrix((np.linspace(2, 1, len(rows)), (rows, cols)), shape=(len(fams), n_atoms))
    coh = np.arange(n_atoms, 0, -1) / n_atoms  # instances rank first
    out = claims.discovery_claims(C, coh, {"family": fams}, responses=resp, n_draws=10, n_profile=10)
    g = out["granularity"]
    assert g["family"]["median"] == 1.0 and g["response"]["q25"] == pytest.approx(1 / top)
    assert g["response"]["q75"] == 1.0 and g["response"]["spearman_coherence"] > 0.8
    assert np.isnan(g["family"]["spearman_coherence"])  # constant purity: no correlation
    assert set(out["skipped"]) == {"topic", "planted", "nuisance"}


def test_label_columns_take_any_label_and_drop_empty_ones():
    from gatoms.data.documents import Document

    docs = [Document("a", "p", "r", "fam1", "plain", labels={"topic": "paris", "nuisance": "1"}),
            Document("b", "p", "r", "fam2", None, labels={"topic": "rome"})]
    cols = claims.label_columns(docs)
    assert cols == {"family": ["fam1", "fam2"], "fmt": ["plain", None], "nuisance": ["1", None],
                    "topic": ["paris", "rome"]}
    assert "fmt" not in claims.label_columns([Document("c", "p", "r", "f")])
