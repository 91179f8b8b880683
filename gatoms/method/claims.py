"""Metrics that test the paper's discovery claims against ground-truth labels (notebooks 04 and 05).

Each claim of the paper becomes a number that could come out against it:

1. *High-coherence atoms are task types* (:func:`coherence_vs_random`, :func:`coherence_auroc`): how many
   families have a ≥ 90%-pure atom among the top-N atoms by coherence, against N atoms drawn at random
   (seeded draws → mean and the empirical p-value (1 + #draws ≥ observed) / (1 + draws)); the AUROC of
   coherence for "this atom is ≥ 90% pure".
2. *Task types, not topics, not instances* (:func:`granularity_profile`): per atom, the top-20 purity by
   family and by topic and the share of its most common response string (identical documents); their
   quartiles over the most coherent atoms and their Spearman correlation with coherence.
3. *Multiple granularities* (:func:`union_f1`, :func:`partition_scores`): per family, the F1 of the union
   of the atoms whose majority family it is; homogeneity, completeness and V-measure of the strongest-atom
   assignment besides NMI.
4. *Whitening is essential* (:func:`label_alignment`, used by 05): how much of each label's entropy
   (family, nuisance, topic, …) the strongest-atom assignment carries, and its chance-adjusted MI.
5. *Rare and unasked behaviours* (:func:`value_rank`, :func:`rare_families`): the coherence rank of the
   first atom whose top-20 documents are ≥ 90% one label value (the planted behaviour), and whether the
   smallest families are found at all.

Labels are generic: a column is any per-document list of values (None = unknown, left out); a claim
whose label is missing is skipped with a note (``skipped``), never reported as a number.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from gatoms.method.atoms import ACTIVE_THRESHOLD
from gatoms.method.coherence import top_documents_all
from gatoms.method.discovery import strongest_atom

MIN_PURITY = 0.9
"""An atom is *pure* for a label when at least this share of its labelled top documents share one value."""


def encode(values: Sequence[str | None]) -> tuple[np.ndarray, list[str]]:
    """(N,) integer ids of ``values`` (-1 for None) and the sorted distinct values."""
    names = sorted({v for v in values if v is not None})
    index = {v: i for i, v in enumerate(names)}
    return np.array([index[v] if v is not None else -1 for v in values], dtype=np.int64), names


def label_columns(documents: Sequence[Any]) -> dict[str, list[str | None]]:
    """Every ground-truth label of the documents as a column: ``family``, ``fmt`` and each key of their
    ``labels`` (a document without it gets None); columns with no known value are left out."""
    cols: dict[str, list[str | None]] = {"family": [d.family for d in documents], "fmt": [d.fmt for d in documents]}
    for name in sorted({k for d in documents for k in (d.labels or {})}):
        cols[name] = [(d.labels or {}).get(name) for d in documents]
    return {k: v for k, v in cols.items() if any(x is not None for x in v)}


def coherence_order(coherence: np.ndarray) -> np.ndarray:
    """Atom ids by coherence, highest first (ties by atom id)."""
    coherence = np.asarray(coherence, dtype=np.float64)
    return np.lexsort((np.arange(coherence.size), -coherence))


def top_shares(tops: Sequence[np.ndarray], y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per atom, over its labelled top documents: (share of the most common value (K,), that value's id
    (K,)); NaN and -1 for an atom with no labelled top document. Ties go to the lowest id."""
    share = np.full(len(tops), np.nan)
    major = np.full(len(tops), -1, dtype=np.int64)
    for j, t in enumerate(tops):
        lab = y[np.asarray(t, dtype=np.int64)]
        lab = lab[lab >= 0]
        if lab.size:
            counts = np.bincount(lab)
            major[j] = int(np.argmax(counts))
            share[j] = counts[major[j]] / lab.size
    return share, major


def pure_values(share: np.ndarray, major: np.ndarray, min_purity: float = MIN_PURITY) -> np.ndarray:
    """(K,) the value an atom is pure for (share ≥ ``min_purity``), else -1."""
    return np.where(np.nan_to_num(share, nan=0.0) >= min_purity, major, -1)


def count_found(pure: np.ndarray, atoms: np.ndarray) -> np.ndarray:
    """Distinct values with a pure atom among ``atoms``: (..., N) atom ids → (...) counts."""
    atoms = np.asarray(atoms, dtype=np.int64)
    lab = pure[atoms]  # (..., N)
    n_values = int(pure.max()) + 1 if pure.size and pure.max() >= 0 else 0
    if n_values == 0:
        return np.zeros(atoms.shape[:-1], dtype=np.int64)
    flat = lab.reshape(-1, lab.shape[-1])
    seen = np.zeros((flat.shape[0], n_values + 1), dtype=bool)
    seen[np.arange(flat.shape[0])[:, None], np.where(flat >= 0, flat, n_values)] = True
    return seen[:, :n_values].sum(axis=1).reshape(atoms.shape[:-1])


def coherence_vs_random(coherence: np.ndarray, pure: np.ndarray, ns: Sequence[int] = (10, 50, 100),
                        n_draws: int = 1000, seed: int = 0) -> dict[str, dict[str, float]]:
    """For each N: values found among the top-N atoms by coherence vs among N atoms drawn at random.

    Returns ``str(N)`` → observed, random_mean, random_sd, p (empirical, one-sided: how often a random
    draw finds at least as many), n_draws, n (N capped at the number of atoms)."""
    K = len(pure)
    order = coherence_order(coherence)
    rng = np.random.default_rng(seed)
    draws = np.argsort(rng.random((n_draws, K)), axis=1)  # (draws, K): a random order per draw
    out = {}
    for n in ns:
        m = min(int(n), K)
        observed = int(count_found(pure, order[:m]))
        rand = count_found(pure, draws[:, :m])
        out[str(n)] = {"n": m, "observed": observed, "random_mean": round(float(rand.mean()), 3),
                       "random_sd": round(float(rand.std()), 3),
                       "p": round(float((1 + (rand >= observed).sum()) / (1 + n_draws)), 4), "n_draws": n_draws}
    return out


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for the boolean ``positive`` (ties count half); NaN when
    one class is empty. The Mann–Whitney U statistic through average ranks."""
    from scipy.stats import rankdata

    scores, positive = np.asarray(scores, dtype=np.float64), np.asarray(positive, dtype=bool)
    n1, n0 = int(positive.sum()), int((~positive).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(scores)
    return float((r[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def coherence_auroc(coherence: np.ndarray, share: np.ndarray, min_purity: float = MIN_PURITY) -> float:
    """AUROC of coherence for "≥ ``min_purity`` pure" over the atoms with labelled top documents."""
    keep = ~np.isnan(share)
    return auroc(np.asarray(coherence)[keep], share[keep] >= min_purity)


def quartiles(x: np.ndarray) -> dict[str, float]:
    """q25, median, q75 and mean of the finite values of ``x`` (NaN when there are none)."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if not x.size:
        return {"q25": float("nan"), "median": float("nan"), "q75": float("nan"), "mean": float("nan")}
    q = np.quantile(x, [0.25, 0.5, 0.75])
    return {"q25": round(float(q[0]), 4), "median": round(float(q[1]), 4), "q75": round(float(q[2]), 4),
            "mean": round(float(x.mean()), 4)}


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman correlation over the pairs where both are finite (NaN if fewer than 3 or constant)."""
    from scipy.stats import spearmanr

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3 or np.ptp(a[keep]) == 0 or np.ptp(b[keep]) == 0:
        return float("nan")
    return round(float(spearmanr(a[keep], b[keep]).statistic), 4)


def granularity_profile(coherence: np.ndarray, shares: dict[str, np.ndarray], n_atoms: int = 50) -> dict[str, Any]:
    """For each kind of share (``family``, ``topic``, ``response``, …; per atom): its quartiles over the
    ``n_atoms`` most coherent atoms and its Spearman correlation with coherence over all atoms."""
    top = coherence_order(coherence)[:n_atoms]
    return {name: {**quartiles(s[top]), "spearman_coherence": spearman(coherence, s)} for name, s in shares.items()}


def union_f1(codes: sp.spmatrix | np.ndarray, major: np.ndarray, y: np.ndarray, names: Sequence[str],
             threshold: float = ACTIVE_THRESHOLD) -> list[dict[str, Any]]:
    """Per family: the atoms whose majority family it is, and precision/recall/F1 of the union of their
    active documents against the family's (labelled documents only)."""
    C = sp.csc_matrix(codes)
    labelled = y >= 0
    out = []
    for f, name in enumerate(names):
        atoms = np.flatnonzero(major == f)
        docs = np.zeros(C.shape[0], dtype=bool)
        for j in atoms:
            lo, hi = C.indptr[j], C.indptr[j + 1]
            docs[C.indices[lo:hi][np.abs(C.data[lo:hi]) > threshold]] = True
        docs &= labelled
        fam = y == f
        tp = int((docs & fam).sum())
        p = tp / docs.sum() if docs.sum() else 0.0
        r = tp / fam.sum() if fam.sum() else 0.0
        out.append({"family": name, "n_docs": int(fam.sum()), "n_atoms": int(atoms.size), "precision": round(p, 4),
                    "recall": round(r, 4), "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0})
    return out


def partition_scores(assignment: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """NMI, homogeneity, completeness and V-measure of ``assignment`` (strongest atom, -1 = none) against
    the label ids ``y`` over the labelled documents (scikit-learn)."""
    from sklearn.metrics import homogeneity_completeness_v_measure, normalized_mutual_info_score

    keep = y >= 0
    if not keep.any():
        return {"nmi": float("nan"), "homogeneity": float("nan"), "completeness": float("nan"), "v_measure": float("nan")}
    h, c, v = homogeneity_completeness_v_measure(y[keep], assignment[keep])
    return {"nmi": round(float(normalized_mutual_info_score(y[keep], assignment[keep])), 4),
            "homogeneity": round(float(h), 4), "completeness": round(float(c), 4), "v_measure": round(float(v), 4)}


def label_alignment(codes: sp.spmatrix | np.ndarray, columns: dict[str, Sequence[str | None]],
                    threshold: float = ACTIVE_THRESHOLD) -> dict[str, dict[str, float]]:
    """Per label: how much of it the strongest-atom assignment carries — ``share`` (MI / H(label), the
    fraction of the label's entropy explained: comparable between a binary nuisance and 20 families),
    ``ami`` (mutual information adjusted for chance: 0 for a random assignment) and ``nmi``."""
    from sklearn.metrics import adjusted_mutual_info_score, mutual_info_score, normalized_mutual_info_score

    a = strongest_atom(codes, threshold)
    out = {}
    for name, values in columns.items():
        y, _ = encode(values)
        keep = y >= 0
        if not keep.any():
            continue
        yk, ak = y[keep], a[keep]
        p = np.bincount(yk) / yk.size
        h = float(-(p[p > 0] * np.log(p[p > 0])).sum())
        mi = float(mutual_info_score(yk, ak))
        out[name] = {"share": round(mi / h, 4) if h > 0 else float("nan"),
                     "ami": round(float(adjusted_mutual_info_score(yk, ak)), 4),
                     "nmi": round(float(normalized_mutual_info_score(yk, ak)), 4)}
    return out


def value_rank(share: np.ndarray, major: np.ndarray, value: int, coherence: np.ndarray,
               min_purity: float = MIN_PURITY) -> int | None:
    """Coherence rank (1 = most coherent) of the first atom pure for ``value``; None if no atom is."""
    pure = pure_values(share, major, min_purity)
    for rank, j in enumerate(coherence_order(coherence).tolist(), start=1):
        if pure[j] == value:
            return rank
    return None


def rare_families(share: np.ndarray, major: np.ndarray, y: np.ndarray, names: Sequence[str],
                  coherence: np.ndarray, n_rare: int = 3, min_purity: float = MIN_PURITY) -> list[dict[str, Any]]:
    """The ``n_rare`` smallest families (by labelled documents; ties by name): their size, whether some
    atom is ≥ ``min_purity`` pure for them, and the coherence rank of the first such atom."""
    counts = np.bincount(y[y >= 0], minlength=len(names))
    order = sorted(range(len(names)), key=lambda f: (counts[f], names[f]))[:n_rare]
    out = []
    for f in order:
        rank = value_rank(share, major, f, coherence, min_purity)
        out.append({"family": names[f], "n_docs": int(counts[f]), "share_of_docs": round(counts[f] / counts.sum(), 4),
                    "found": rank is not None, "rank": rank})
    return out


def response_column(documents: Sequence[Any]) -> list[str | None]:
    """Each document's response text, whitespace-normalised: identical responses share one value."""
    return [" ".join(d.response.split()) for d in documents]


def discovery_claims(codes: sp.spmatrix | np.ndarray, coherence: np.ndarray, columns: dict[str, Sequence[str | None]],
                     responses: Sequence[str | None] | None = None, ns: Sequence[int] = (10, 50, 100),
                     n_draws: int = 1000, seed: int = 0, top_n: int = 20, n_profile: int = 50, n_rare: int = 3,
                     planted: str = "planted", nuisance: str = "nuisance",
                     threshold: float = ACTIVE_THRESHOLD) -> dict[str, Any]:
    """Every claim metric of one decomposition (see the module docstring) as JSON data.

    ``columns``: label name → per-row values (:func:`label_columns`); ``family`` drives claims 1, 3 and 5,
    ``topic`` joins claim 1 and 2, ``planted``/``nuisance`` (value "1") claim 5. A claim whose label is
    missing is named in ``skipped`` with the reason."""
    coherence = np.asarray(coherence, dtype=np.float64)
    tops = top_documents_all(codes, top_n, threshold)
    out: dict[str, Any] = {"labels": sorted(columns), "skipped": {}, "found": {}}
    shares: dict[str, np.ndarray] = {}
    if "family" not in columns:
        out["skipped"]["family"] = "no family labels: claims 1, 3 and 5 not measured"
    for name in ("family", "topic"):
        if name not in columns:
            out["skipped"].setdefault(name, f"no {name} label in the documents")
            continue
        y, _ = encode(columns[name])
        share, major = top_shares(tops, y)
        shares[name] = share
        pure = pure_values(share, major)
        out["found"][name] = {"vs_random": coherence_vs_random(coherence, pure, ns, n_draws, seed),
                              "auroc": round(coherence_auroc(coherence, share), 4),
                              "n_pure_atoms": int((pure >= 0).sum()), "n_values": int(y.max() + 1)}
    if responses is not None:
        shares["response"] = top_shares(tops, encode(responses)[0])[0]
    out["granularity"] = granularity_profile(coherence, shares, n_profile)
    if "family" in columns:
        y, names = encode(columns["family"])
        share, major = top_shares(tops, y)
        out["union_f1"] = union_f1(codes, major, y, names, threshold)
        out["mean_union_f1"] = round(float(np.mean([r["f1"] for r in out["union_f1"]])), 4)
        out["partition"] = partition_scores(strongest_atom(codes, threshold), y)
        out["rare"] = rare_families(share, major, y, names, coherence, n_rare)
    for name in (planted, nuisance):
        if name not in columns or "1" not in encode(columns[name])[1]:
            out["skipped"][name] = f"no {name!r} label with value '1' in the documents"
            continue
        y, names = encode(columns[name])
        share, major = top_shares(tops, y)
        rank = value_rank(share, major, names.index("1"), coherence)
        top = coherence_order(coherence)
        pure1 = pure_values(share, major) == names.index("1")
        out[name] = {"n_docs": int((y == names.index("1")).sum()), "rank": rank,
                     "in_top": {str(n): bool(rank is not None and rank <= n) for n in ns},
                     "n_pure_atoms": int(pure1.sum()),
                     "n_pure_in_top": {str(n): int(pure1[top[:n]].sum()) for n in ns}}
    return out
