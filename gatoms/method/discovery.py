"""Ground-truth discovery metrics — what the paper could not measure (notebooks 04 and 05).

With a task family known for every training document, a decomposition (atoms, k-means clusters, PCA
components: anything that gives codes (N, K) and a coherence per component) is scored by:

- per family, the best-matching atom: precision, recall and F1 of the atom's active documents
  (|code| > threshold) against the family's documents; the best atom is the one with the highest F1;
- ``families_recovered``: families whose best F1 is at least ``min_f1`` (0.5);
- ``purity_top50``: for the 50 most coherent atoms, the share of their top-20 documents (by |code|)
  that belong to those documents' majority family, averaged over the atoms;
- ``nmi``: normalised mutual information between each document's strongest atom (argmax |code|; -1
  when it has no active code) and its family;
- ``families_in_top50``: families that make up at least 90% of the top-20 documents of at least one
  of the 50 most coherent atoms — the paper's claim that the high-coherence atoms *are* task types,
  which a family split over many sub-atoms (high precision, low recall) fails on F1 but meets here.

Documents whose family is None are left out of every metric. :func:`planted_problem` makes a toy with
known answers (for tests and the benchmark).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from gatoms.method.atoms import ACTIVE_THRESHOLD
from gatoms.method.coherence import top_documents_all


def _labels(families: Sequence[str | None]) -> tuple[np.ndarray, list[str]]:
    """(N,) integer family ids (-1 for None) and the sorted family names."""
    names = sorted({f for f in families if f is not None})
    index = {f: i for i, f in enumerate(names)}
    return np.array([index.get(f, -1) if f is not None else -1 for f in families], dtype=np.int64), names


def family_matches(codes: sp.spmatrix | np.ndarray, families: Sequence[str | None],
                   threshold: float = ACTIVE_THRESHOLD) -> list[dict[str, Any]]:
    """For every family, its best atom by F1 of the atom's active documents against the family.

    Returns one dict per family (sorted by name): family, n_docs, atom, active_docs, precision,
    recall, f1. Ties go to the lower atom id; a family no atom touches gets atom -1 and zeros.
    """
    y, names = _labels(families)
    C = sp.csr_matrix(codes)
    if C.shape[0] != y.size:
        raise ValueError(f"{y.size} family labels for {C.shape[0]} code rows")
    labelled = y >= 0
    active = sp.csr_matrix(((np.abs(C.data) > threshold).astype(np.float64), C.indices, C.indptr), shape=C.shape)
    active = active[labelled]  # (N_labelled, K)
    onehot = sp.csr_matrix((np.ones(labelled.sum()), (np.arange(labelled.sum()), y[labelled])),
                           shape=(int(labelled.sum()), len(names)))
    inter = np.asarray((active.T @ onehot).todense())  # (K, F): |A_j ∩ F_f|
    n_active = np.asarray(active.sum(axis=0)).ravel()  # (K,) labelled active documents per atom
    n_family = np.asarray(onehot.sum(axis=0)).ravel()  # (F,)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(n_active[:, None] > 0, inter / n_active[:, None], 0.0)
        recall = np.where(n_family[None, :] > 0, inter / n_family[None, :], 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    out = []
    for f, name in enumerate(names):
        j = int(np.argmax(f1[:, f])) if f1.shape[0] else -1
        if j < 0 or f1[j, f] == 0:
            out.append({"family": name, "n_docs": int(n_family[f]), "atom": -1, "active_docs": 0,
                        "precision": 0.0, "recall": 0.0, "f1": 0.0})
            continue
        out.append({"family": name, "n_docs": int(n_family[f]), "atom": j, "active_docs": int(n_active[j]),
                    "precision": float(precision[j, f]), "recall": float(recall[j, f]), "f1": float(f1[j, f])})
    return out


def strongest_atom(codes: sp.spmatrix | np.ndarray, threshold: float = ACTIVE_THRESHOLD) -> np.ndarray:
    """(N,) the atom with the largest |code| for each document (lowest id on ties); -1 if none active."""
    C = sp.csr_matrix(codes)
    out = np.full(C.shape[0], -1, dtype=np.int64)
    for i in range(C.shape[0]):
        lo, hi = C.indptr[i], C.indptr[i + 1]
        if hi == lo:
            continue
        v, idx = np.abs(C.data[lo:hi]), C.indices[lo:hi]
        if v.max() <= threshold:
            continue
        best = np.flatnonzero(v == v.max())
        out[i] = int(idx[best].min())
    return out


def nmi(codes: sp.spmatrix | np.ndarray, families: Sequence[str | None], threshold: float = ACTIVE_THRESHOLD) -> float:
    """NMI (arithmetic normalisation) between strongest atom and family over labelled documents."""
    from sklearn.metrics import normalized_mutual_info_score

    y, _ = _labels(families)
    keep = y >= 0
    if keep.sum() == 0:
        return float("nan")
    return float(normalized_mutual_info_score(y[keep], strongest_atom(codes, threshold)[keep]))


def purity_top(codes: sp.spmatrix | np.ndarray, coherence: np.ndarray, families: Sequence[str | None],
               n_atoms: int = 50, top_n: int = 20, threshold: float = ACTIVE_THRESHOLD) -> float:
    """Mean over the ``n_atoms`` most coherent atoms (with labelled top documents) of the share of
    their top-``top_n`` labelled documents that are in the majority family."""
    y, _ = _labels(families)
    tops = top_documents_all(codes, top_n, threshold)
    order = np.lexsort((np.arange(len(tops)), -np.asarray(coherence, dtype=np.float64)))
    shares = []
    for j in order[:n_atoms]:
        lab = [int(v) for v in y[tops[j]] if v >= 0]
        if lab:
            shares.append(Counter(lab).most_common(1)[0][1] / len(lab))
    return float(np.mean(shares)) if shares else float("nan")


def families_in_top(codes: sp.spmatrix | np.ndarray, coherence: np.ndarray, families: Sequence[str | None],
                     n_atoms: int = 50, top_n: int = 20, min_share: float = 0.9,
                     threshold: float = ACTIVE_THRESHOLD) -> list[str]:
    """Families that are at least ``min_share`` of the top-``top_n`` labelled documents of one of the
    ``n_atoms`` most coherent atoms (sorted names)."""
    y, names = _labels(families)
    tops = top_documents_all(codes, top_n, threshold)
    order = np.lexsort((np.arange(len(tops)), -np.asarray(coherence, dtype=np.float64)))
    found = set()
    for j in order[:n_atoms]:
        lab = [int(v) for v in y[tops[j]] if v >= 0]
        if lab:
            f, count = Counter(lab).most_common(1)[0]
            if count / len(lab) >= min_share:
                found.add(names[f])
    return sorted(found)


def discovery_metrics(codes: sp.spmatrix | np.ndarray, coherence: np.ndarray,
                      families: Sequence[str | None], n_top_atoms: int = 50, top_n: int = 20,
                      min_f1: float = 0.5, threshold: float = ACTIVE_THRESHOLD) -> dict[str, Any]:
    """All ground-truth metrics of one decomposition: families_recovered, n_families, nmi,
    purity_top50, families_in_top50, mean_best_f1 and the per-family matches."""
    matches = family_matches(codes, families, threshold)
    in_top = families_in_top(codes, coherence, families, n_top_atoms, top_n, 0.9, threshold)
    return {
        "families_recovered": int(sum(m["f1"] >= min_f1 for m in matches)),
        "n_families": len(matches),
        "nmi": nmi(codes, families, threshold),
        "purity_top50": purity_top(codes, coherence, families, n_top_atoms, top_n, threshold),
        "mean_best_f1": float(np.mean([m["f1"] for m in matches])) if matches else float("nan"),
        "families_in_top50": len(in_top),
        "per_family": matches,
    }


# ---- a planted toy with known answers ---------------------------------------------------------------
@dataclass
class Planted:
    """A toy decomposition problem: each document is a noisy copy of its family's direction."""

    grads: np.ndarray  # (N, D) raw "gradients"
    X: np.ndarray  # (N, P) unit rows of a random projection of grads
    families: list[str]  # (N,) family name per document
    directions: np.ndarray  # (F, D) unit family directions


def planted_problem(n_docs: int = 600, n_families: int = 6, dim: int = 256, proj_dim: int = 64,
                    noise: float = 0.3, seed: int = 0) -> Planted:
    """Families of documents around orthogonal-ish directions; X is their random projection."""
    rng = np.random.default_rng(seed)
    dirs = rng.standard_normal((n_families, dim))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    y = np.arange(n_docs) % n_families
    rng.shuffle(y)
    scale = 1.0 + 0.5 * rng.random(n_docs)
    grads = dirs[y] * scale[:, None] + noise * rng.standard_normal((n_docs, dim)) / np.sqrt(dim)
    proj = rng.standard_normal((dim, proj_dim)) / np.sqrt(proj_dim)
    Z = grads @ proj
    X = Z / np.linalg.norm(Z, axis=1, keepdims=True)
    return Planted(grads=grads.astype(np.float32), X=X.astype(np.float32),
                   families=[f"family_{int(i)}" for i in y], directions=dirs.astype(np.float32))


def family_rows(discovery: dict[str, Any], coherence: np.ndarray, table: Sequence[Any]) -> list[dict[str, Any]]:
    """The per-family table of :func:`discovery_metrics` with each best atom's coherence and rank."""
    rank = {r.atom: r.rank for r in table}
    rows = []
    for m in discovery["per_family"]:
        row = {**m, "coherence": round(float(coherence[m["atom"]]), 4) if m["atom"] >= 0 else 0.0,
               "rank": rank.get(m["atom"], "")}
        for k in ("precision", "recall", "f1"):
            row[k] = round(row[k], 3)
        rows.append(row)
    return rows
