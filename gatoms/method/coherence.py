"""Coherence of atoms and the atom table (paper §3.4, Eq. 3, Table 4; notebook ``04_coherence``).

Coherence of atom j (exactly the paper's): its active documents are those with |C[n, j]| > 1e-6; take
the top 20 of them by |C[n, j]|; coherence is the mean off-diagonal entry of the cosine-similarity
matrix of their **raw, unprojected** D-dimensional gradients. Fewer than 2 active documents → 0.
A zero gradient (a document with no response token) has cosine 0 with everything.

:func:`score_coherence` reads each row that some atom needs exactly once (atoms share documents), in
blocks of columns of at most ``max_bytes``, so peak memory does not grow with N × D.

The atom table describes every atom without a human: coherence, active documents, the majority task
family and response format of its top documents (when labels exist), the distinctive words of their
responses (TF-IDF against the whole corpus), one example prompt, and a one-line description built
from those.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch

from gatoms.build.metrics import StepMetrics
from gatoms.build.tables import write_table
from gatoms.data.documents import Document
from gatoms.method.atoms import ACTIVE_THRESHOLD, docs_per_atom

log = logging.getLogger(__name__)


@dataclass
class CoherenceConfig:
    """Coherence scoring, the atom table and Figure 1 (notebook ``04_coherence``; section ``coherence``)."""

    top_n: int = 20
    """Top active documents per atom whose raw gradients are compared (paper: 20)."""
    active_threshold: float = ACTIVE_THRESHOLD
    """A document is active on an atom when |code| exceeds this (paper: 1e-6)."""
    n_table: int = 50
    """Atoms in the Table 4 analogue (paper: 50)."""
    n_words: int = 6
    """Distinctive words per atom in the table."""
    max_bytes: int = 256 * 2**20
    """Raw-gradient rows held in memory at once, in bytes (bounds peak memory; at least one atom's
    top_n rows are always read together)."""
    map_method: str = "tsne"
    """2-D map of the atoms for Figure 1: "tsne" or "pca"."""
    n_labels: int = 10
    """Top atoms (by coherence) labelled on the map."""
    seed: int = 0
    """Random state of the t-SNE map and of the random-atom draws of the claim metrics."""
    claim_ns: tuple[int, ...] = (10, 50, 100)
    """Claim metrics: the top-N atoms by coherence compared with N random atoms (issue 11: 10, 50, 100)."""
    n_draws: int = 1000
    """Claim metrics: random draws of N atoms for the null (p-value resolution 1 / (1 + n_draws))."""
    n_rare: int = 3
    """Claim metrics: the smallest families checked for a pure atom."""

    def __post_init__(self) -> None:
        self.claim_ns = tuple(int(n) for n in self.claim_ns)
        if not self.claim_ns or any(n < 1 for n in self.claim_ns):
            raise ValueError(f"coherence.claim_ns must be a non-empty list of positive integers, got {self.claim_ns}")
        if int(self.n_draws) < 100:
            raise ValueError(f"coherence.n_draws must be >= 100 (p-values need draws), got {self.n_draws!r}")
        if int(self.n_rare) < 0:
            raise ValueError(f"coherence.n_rare must be >= 0, got {self.n_rare!r}")
        for name in ("top_n", "n_table", "n_words", "n_labels"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"coherence.{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.top_n < 2:
            raise ValueError(f"coherence.top_n must be >= 2 (a pair is needed for a cosine), got {self.top_n}")
        if not self.active_threshold >= 0:
            raise ValueError(f"coherence.active_threshold must be >= 0, got {self.active_threshold!r}")
        if self.max_bytes < 2**20:
            raise ValueError(f"coherence.max_bytes must be at least 1 MiB, got {self.max_bytes}")
        if self.map_method not in ("tsne", "pca"):
            raise ValueError(f"coherence.map_method must be 'tsne' or 'pca', got {self.map_method!r}")


# ---- top documents ----------------------------------------------------------------------------------
def _top_of_column(rows: np.ndarray, vals: np.ndarray, n: int, threshold: float) -> np.ndarray:
    keep = np.abs(vals) > threshold
    rows, vals = rows[keep], np.abs(vals[keep])
    order = np.lexsort((rows, -vals))  # by |code| descending, ties by row index
    return rows[order[:n]].astype(np.int64)


def top_documents(codes: sp.spmatrix | np.ndarray, atom: int, n: int = 20,
                  threshold: float = ACTIVE_THRESHOLD) -> np.ndarray:
    """Row indices of the ``n`` documents with the largest |code| on ``atom`` among its active ones
    (|code| > threshold), largest first; ties broken by row index."""
    col = sp.csc_matrix(codes)[:, atom]
    return _top_of_column(col.indices, col.data, n, threshold)


def top_documents_all(codes: sp.spmatrix | np.ndarray, n: int = 20,
                      threshold: float = ACTIVE_THRESHOLD) -> list[np.ndarray]:
    """:func:`top_documents` for every atom (one conversion to CSC)."""
    csc = sp.csc_matrix(codes)
    return [_top_of_column(csc.indices[csc.indptr[j]: csc.indptr[j + 1]],
                           csc.data[csc.indptr[j]: csc.indptr[j + 1]], n, threshold)
            for j in range(csc.shape[1])]


# ---- coherence --------------------------------------------------------------------------------------
def mean_offdiag_cosine(G: np.ndarray) -> float:
    """Mean off-diagonal cosine similarity of the rows of G (n, D); zero rows have cosine 0."""
    n = G.shape[0]
    if n < 2:
        return 0.0
    G = np.asarray(G, dtype=np.float64)
    norms = np.linalg.norm(G, axis=1)
    U = G / np.where(norms > 0, norms, 1.0)[:, None]
    S = U @ U.T
    return float((S.sum() - np.trace(S)) / (n * (n - 1)))


def score_coherence(reader: Any, codes: sp.spmatrix | np.ndarray, top_n: int = 20,
                    threshold: float = ACTIVE_THRESHOLD, max_bytes: int = 256 * 2**20) -> np.ndarray:
    """(K,) coherence of every atom (see the module docstring).

    ``reader``: the raw gradients (N, D) — a :class:`gatoms.method.gradients.GradientReader` or an
    array/memmap. Every row some atom needs (the union of their top documents: atoms share documents) is
    read exactly once, in blocks of columns sized so that a block of all those rows fits ``max_bytes``:
    each atom's Gram matrix (batched matrix products over many atoms at once) and each row's squared norm
    are accumulated block by block (float32 products, float64 sums), so memory is bounded by ``max_bytes``
    whatever N and D are.
    """
    tops = top_documents_all(codes, top_n, threshold)
    coherence = np.zeros(len(tops), dtype=np.float64)
    scored = [j for j, t in enumerate(tops) if t.size >= 2]  # fewer than 2 active documents: coherence 0
    if not scored:
        return coherence
    union = np.unique(np.concatenate([tops[j] for j in scored]))  # ascending row numbers
    n_max = max(tops[j].size for j in scored)
    L = np.zeros((len(scored), n_max), dtype=np.int64)  # each atom's rows as positions in the union, padded
    mask = np.zeros((len(scored), n_max), dtype=bool)
    for a, j in enumerate(scored):
        L[a, : tops[j].size], mask[a, : tops[j].size] = np.searchsorted(union, tops[j]), True
    D = int(reader.shape[1])
    item = int(getattr(reader, "itemsize", 4))  # bytes per stored entry, read beside each float32 block
    width = max(1, min(D, max_bytes // ((8 + item) * len(union))))  # the block, as read and gathered per atom
    batch = max(1, len(union) // n_max)  # atoms per batched product: their gathered rows ≈ one block
    gram = np.zeros((len(scored), n_max, n_max))
    sq = np.zeros(len(union))
    Lt = torch.from_numpy(L)
    for c0 in range(0, D, width):
        B = _columns(reader, union, c0, min(c0 + width, D))  # (U, b) float32
        sq += np.einsum("ij,ij->i", B, B, dtype=np.float64)
        Bt = torch.from_numpy(B)
        for a0 in range(0, len(scored), batch):
            Ga = Bt[Lt[a0: a0 + batch]]  # (atoms, n_max, b)
            gram[a0: a0 + batch] += torch.bmm(Ga, Ga.transpose(1, 2)).numpy()
    norms = np.sqrt(sq)[L] * mask  # (atoms, n_max); padding → 0
    safe = np.where(norms > 0, norms, 1.0)
    S = np.where(norms[:, :, None] * norms[:, None, :] > 0, gram / (safe[:, :, None] * safe[:, None, :]), 0.0)
    n = mask.sum(1)
    diag = np.einsum("aii->a", S)
    coherence[scored] = (S.sum((1, 2)) - diag) / (n * (n - 1))
    return coherence


def _columns(reader: Any, rows: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Columns start … stop-1 of ``rows`` (ascending) as float32, from a gradient reader or an array."""
    if hasattr(reader, "columns"):
        return reader.columns(rows, start, stop)
    return np.asarray(reader[rows, start:stop], dtype=np.float32)


# ---- the atom table ---------------------------------------------------------------------------------
def distinctive_words(texts: Sequence[str], groups: Sequence[np.ndarray], n_words: int = 6) -> list[list[str]]:
    """For each group of row indices: the ``n_words`` terms with the highest mean TF-IDF over the
    group's texts, IDF computed over the whole corpus ``texts`` (English stop words removed)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(stop_words="english", sublinear_tf=True, token_pattern=r"(?u)\b\w[\w'-]*\w\b|\b\w\b")
    try:
        T = vec.fit_transform([t or "" for t in texts])  # (N, V)
    except ValueError:  # empty vocabulary
        return [[] for _ in groups]
    vocab = np.asarray(vec.get_feature_names_out())
    out = []
    for g in groups:
        if len(g) == 0:
            out.append([])
            continue
        score = np.asarray(T[np.asarray(g)].mean(axis=0)).ravel()
        best = np.lexsort((vocab, -score))[:n_words]
        out.append([str(vocab[i]) for i in best if score[i] > 0])
    return out


def _majority(labels: list[str | None]) -> tuple[str | None, float]:
    known = [x for x in labels if x is not None]
    if not known:
        return None, float("nan")
    counts = Counter(known)
    top = max(sorted(counts), key=lambda k: counts[k])  # deterministic on ties
    return top, counts[top] / len(labels)


def describe(family: str | None, family_share: float, fmt: str | None, fmt_share: float,
             words: list[str]) -> str:
    """A one-line automatic description of an atom from its top documents."""
    parts = []
    if family is not None:
        parts.append(f"{family} ({family_share:.0%})")
    if fmt is not None and fmt not in ("plain", family):
        parts.append(f"{fmt} format ({fmt_share:.0%})")
    if words:
        parts.append("words: " + ", ".join(words[:4]))
    return "; ".join(parts) if parts else "(no active documents)"


def atom_table(codes: sp.spmatrix | np.ndarray, coherence: np.ndarray, documents: Sequence[Document],
               top_n: int = 20, threshold: float = ACTIVE_THRESHOLD, n_words: int = 6) -> list[AtomRow]:
    """One row per atom, sorted by coherence (rank 1 = most coherent; ties by atom id).

    ``documents`` are the documents of the code rows, in row order (:func:`gatoms.method.gradients.load_rows`);
    each atom's top documents are recorded by their ids. Label columns are empty where documents have no
    labels.
    """
    coherence = np.asarray(coherence, dtype=np.float64)
    K = coherence.shape[0]
    tops = top_documents_all(codes, top_n, threshold)
    active = docs_per_atom(codes, threshold)
    if len(documents) != sp.csr_matrix(codes).shape[0]:
        raise ValueError(f"{len(documents)} documents for {codes.shape[0]} code rows; align them first")
    words = distinctive_words([d.response for d in documents], tops, n_words)
    order = np.lexsort((np.arange(K), -coherence))
    table = []
    for rank, j in enumerate(order.tolist(), start=1):
        t = tops[j]
        fam, fam_share, fmt, fmt_share, example = None, float("nan"), None, float("nan"), ""
        if t.size:
            fam, fam_share = _majority([documents[i].family for i in t])
            fmt, fmt_share = _majority([documents[i].fmt for i in t])
            example = documents[int(t[0])].prompt
        table.append(AtomRow(
            rank=rank, atom=j, coherence=round(float(coherence[j]), 6), active_docs=int(active[j]),
            family=fam, family_share=_share(fam_share), top_fmt=fmt, top_fmt_share=_share(fmt_share),
            words=" ".join(words[j]), example_prompt=" ".join(example.split())[:160],
            description=describe(fam, fam_share, fmt, fmt_share, words[j]) if t.size else "(no active documents)",
            top_doc_ids=tuple(documents[int(i)].doc_id for i in t), top_docs=tuple(int(i) for i in t)))
    return table


def _share(x: float) -> float | None:
    return None if x != x else round(float(x), 4)


@dataclass(frozen=True)
class AtomRow:
    """One row of ``atom_table.csv``: an atom, its coherence and its automatic description."""

    rank: int
    atom: int
    coherence: float
    active_docs: int
    family: str | None = None
    """Majority task family of its top documents (None without labels)."""
    family_share: float | None = None
    top_fmt: str | None = None
    """Majority response format of its top documents."""
    top_fmt_share: float | None = None
    words: str = ""
    """Distinctive words of its top documents' responses (TF-IDF)."""
    example_prompt: str = ""
    description: str = ""
    top_doc_ids: tuple[str, ...] = ()
    """Its top documents by |code|, largest first, by document id (what the file stores)."""
    top_docs: tuple[int, ...] = ()
    """The same documents as gradient rows (from the row index when read back)."""

    def to_json(self) -> dict[str, Any]:
        """The CSV row as data (``top_doc_ids`` a list; the row numbers are not stored)."""
        out = dataclasses.asdict(self)
        out.pop("top_docs")
        out["top_doc_ids"] = list(self.top_doc_ids)
        return out


ATOM_TABLE_COLUMNS = tuple(f.name for f in dataclasses.fields(AtomRow) if f.name != "top_docs")


def write_atom_table(table: Sequence[AtomRow], path: Path) -> None:
    """``atom_table.csv`` (atomic): one line per atom, top documents as space-separated ids."""
    rows = [{**r.to_json(), "top_doc_ids": " ".join(r.top_doc_ids)} for r in table]
    write_table(rows, path, columns=ATOM_TABLE_COLUMNS)


def read_atom_table(path: Path, doc_ids: Sequence[str] | None = None) -> list[AtomRow]:
    """The one reader of ``atom_table.csv``. With ``doc_ids`` (the row index's, in row order) each atom's
    top documents are also given as rows (``top_docs``); an id that is not a row is an error."""
    import csv

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no atom table {path}; build it with `make coherence`")
    row_of = {d: n for n, d in enumerate(doc_ids)} if doc_ids is not None else None
    out = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = set(ATOM_TABLE_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}; rebuild with `make coherence FORCE=1`")
        for r in reader:
            ids = tuple((r["top_doc_ids"] or "").split())
            rows: tuple[int, ...] = ()
            if row_of is not None:
                unknown = [i for i in ids if i not in row_of]
                if unknown:
                    raise ValueError(f"{path}: atom {r['atom']} lists documents {unknown[:3]} that are not rows of "
                                     "the gradients; the atom table and the gradients come from different runs")
                rows = tuple(row_of[i] for i in ids)
            out.append(AtomRow(
                rank=int(r["rank"]), atom=int(r["atom"]), coherence=float(r["coherence"]),
                active_docs=int(r["active_docs"]), family=r["family"] or None,
                family_share=float(r["family_share"]) if r["family_share"] else None, top_fmt=r["top_fmt"] or None,
                top_fmt_share=float(r["top_fmt_share"]) if r["top_fmt_share"] else None, words=r["words"],
                example_prompt=r["example_prompt"], description=r["description"], top_doc_ids=ids, top_docs=rows))
    return out


# ---- what step 04 records ---------------------------------------------------------------------------
@dataclass
class CoherenceMetrics(StepMetrics):
    """Step 04's ``metrics.json``: the paper's coherence counts, the top of the atom table, and — where
    documents carry family labels — the ground-truth discovery metrics."""

    step: ClassVar[str] = "04_coherence"
    n_coh_gt_0_5: int = 0
    """Atoms with coherence > 0.5 (the paper: 5 of 500)."""
    n_coh_gt_0_1: int = 0
    """Atoms with coherence > 0.1 (the paper: 43)."""
    top_atoms: list[dict[str, Any]] = field(default_factory=list)
    """The first ``n_table`` rows of the atom table: atom, coherence, active_docs, description."""
    families_recovered: int | None = None
    """Families whose best single atom has F1 ≥ 0.5 (None without labels)."""
    n_families: int = 0
    nmi: float | None = None
    purity_top50: float | None = None
    mean_best_f1: float | None = None
    families_in_top50: int | None = None
    claims: dict[str, Any] = field(default_factory=dict)
    """The claim metrics (:func:`gatoms.method.claims.discovery_claims`): top-N atoms vs random draws,
    AUROC, purity by family/topic/response, union F1, V-measure, planted and rare ranks, what was skipped."""


def summarize(coherence: np.ndarray, table: Sequence[AtomRow], n_table: int,
              discovery: dict[str, Any] | None = None, claims: dict[str, Any] | None = None) -> CoherenceMetrics:
    """Step 04's metrics; ``discovery`` is :func:`gatoms.method.discovery.discovery_metrics` (None
    without labels), ``claims`` :func:`gatoms.method.claims.discovery_claims`."""
    gt = discovery or {}

    def r4(x: Any) -> float | None:
        return None if x is None else round(float(x), 4)

    return CoherenceMetrics(
        n_coh_gt_0_5=int((coherence > 0.5).sum()), n_coh_gt_0_1=int((coherence > 0.1).sum()),
        top_atoms=[{"atom": r.atom, "coherence": r.coherence, "active_docs": r.active_docs,
                    "description": r.description} for r in table[:n_table]],
        families_recovered=gt.get("families_recovered"), n_families=gt.get("n_families", 0),
        nmi=r4(gt.get("nmi")), purity_top50=r4(gt.get("purity_top50")), mean_best_f1=r4(gt.get("mean_best_f1")),
        families_in_top50=gt.get("families_in_top50"), claims=dict(claims or {}))
