"""What matters: the sparsity sweep, the preconditioning ablation and two baselines (notebook
``05_ablations``; the paper's Table 1, and the measurements the paper argued but did not show).

- Sparsity (Table 1 analogue): the dictionary at each α of ``alphas`` — median active documents per
  atom, atoms with coherence > 0.5 and > 0.1.
- Preconditioning, same dictionary settings on differently projected gradients:
  ``no_whitening`` (the same top-k EKFAC coordinates, not divided by sqrt(eig + ε)), ``kfac`` (KFAC
  eigenvalues λ_S ⊗ λ_A choose and whiten the coordinates — the reference code), ``ekfac`` (ours).
- Whitening controls (:mod:`gatoms.method.whitening`): a damping sweep of the EKFAC whitening
  (``dampings``) and ``random_projection``, a seeded Gaussian projection of the raw gradients to the same
  dimension with no eigenbasis; every row reports how much of each label (family, nuisance, topic) its
  strongest-atom assignment carries.
- Baselines on the same X as ``ekfac``: ``kmeans`` (clusters as atoms, as GradientSpace does: a
  document's code is its cosine to its own centroid, zero elsewhere) and ``pca`` (principal components
  as atoms; each document keeps only its ``pca_nonzeros`` largest |scores|, so that "active documents"
  means something for a dense method).

- Dictionary size: the α of the atoms section with each ``n_atoms`` of ``atom_counts`` — the ground-truth
  metrics depend strongly on it (with many atoms a family splits into several pure sub-atoms, the
  paper's "multiple granularities", and no single atom recalls the whole family).

Every method is scored with the same coherence (raw gradients) and ground-truth metrics
(:mod:`gatoms.method.discovery`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from gatoms.build.metrics import StepMetrics
from gatoms.method.atoms import (ACTIVE_THRESHOLD, BACKENDS, AtomsConfig, Dictionary, docs_per_atom, learn_dictionary,
                                 orient_signs)
from gatoms.method.coherence import CoherenceConfig, score_coherence
from gatoms.method.ekfac import Projection, normalize_rows

log = logging.getLogger(__name__)

METHODS = ("no_whitening", "kfac", "ekfac", "random_projection", "kmeans", "pca")
"""Every method the ablation can compare; ``ekfac`` is the paper's pipeline as we run it."""
PRECONDITIONING: dict[str, dict[str, Any]] = {
    "no_whitening": {"eigen_mode": "ekfac", "whiten": False},
    "kfac": {"eigen_mode": "kfac", "whiten": True},
    "ekfac": {"eigen_mode": "ekfac", "whiten": True},
}
"""The projection settings (changes of the recorded :class:`~gatoms.method.ekfac.ProjectionSettings`) of
each preconditioning method."""
LABELS = {"no_whitening": "no whitening", "kfac": "KFAC", "ekfac": "EKFAC (ours)",
          "random_projection": "random projection (no EKFAC)",
          "kmeans": "k-means (GradientSpace)", "pca": "PCA components"}


@dataclass
class AblationsConfig:
    """Sparsity sweep, preconditioning ablation and baselines (notebook ``05_ablations``)."""

    alphas: tuple[float, ...] = (0.01, 0.1, 1.0)
    """α values of the sparsity sweep (paper's Table 1: 0.01, 0.1, 1.0)."""
    methods: tuple[str, ...] = METHODS
    """Methods compared on the ground-truth metrics (subset of no_whitening, kfac, ekfac, random_projection,
    kmeans, pca)."""
    dampings: tuple[float, ...] = ()
    """Damping sweep of the EKFAC whitening: ε = each factor × the module's mean eigenvalue (issue 11:
    1e-3 … 1e3); empty = no sweep. The factor of step 02 reuses its X."""
    backend: str | None = None
    """Dictionary backend of the sweep and ablation fits (None = the atoms section's)."""
    max_iter: int | None = None
    """max_iter of those fits (None = the atoms section's)."""
    device: str | None = None
    """torch device of those fits (None = the atoms section's; ignored by sklearn)."""
    n_components: int | None = None
    """k-means clusters and PCA components (None = atoms.n_atoms)."""
    pca_nonzeros: int | None = None
    """PCA: scores kept per document (None = the dictionary's mean active atoms per document, rounded up)."""
    atom_counts: tuple[int, ...] = ()
    """Dictionary sizes of the size sweep (same α and backend as the other fits); empty = no sweep."""
    kmeans_n_init: int = 1
    """k-means restarts (scikit-learn KMeans n_init)."""
    seed: int = 0
    """Random state of k-means and PCA."""

    def __post_init__(self) -> None:
        self.alphas = tuple(float(a) for a in self.alphas)
        self.methods = tuple(self.methods)
        if not self.alphas or any(not a >= 0 for a in self.alphas):
            raise ValueError(f"ablations.alphas must be a non-empty list of α >= 0, got {self.alphas}")
        unknown = sorted(set(self.methods) - set(METHODS))
        if unknown:
            raise ValueError(f"ablations.methods: unknown {unknown}; choose from {list(METHODS)}")
        if self.backend is not None and self.backend not in BACKENDS:
            raise ValueError(f"ablations.backend must be null or one of {BACKENDS}, got {self.backend!r}")
        for name in ("max_iter", "n_components", "pca_nonzeros"):
            v = getattr(self, name)
            if v is not None and int(v) < 1:
                raise ValueError(f"ablations.{name} must be a positive integer or null (default), got {v!r}")
        self.dampings = tuple(float(f) for f in self.dampings)
        if any(not f > 0 for f in self.dampings):
            raise ValueError(f"ablations.dampings must be positive factors of the mean eigenvalue, got {self.dampings}")
        self.atom_counts = tuple(int(k) for k in self.atom_counts)
        if any(k < 1 for k in self.atom_counts):
            raise ValueError(f"ablations.atom_counts must be positive integers, got {self.atom_counts}")
        if self.kmeans_n_init < 1:
            raise ValueError(f"ablations.kmeans_n_init must be >= 1, got {self.kmeans_n_init}")

    def atoms_config(self, atoms_cfg: Any, alpha: float | None = None, n_atoms: int | None = None) -> Any:
        """The dictionary settings of the ablation fits: the atoms section's with this section's
        backend/max_iter overrides (and ``alpha``)."""
        changes: dict[str, Any] = {}
        if self.backend is not None:
            changes["backend"] = self.backend
        if self.device is not None:
            changes["device"] = self.device
        if changes.get("backend", atoms_cfg.backend) == "sklearn":
            changes["device"] = "cpu"
        if self.max_iter is not None:
            changes["max_iter"] = self.max_iter
        if alpha is not None:
            changes["alpha"] = float(alpha)
        if n_atoms is not None:
            changes["n_atoms"] = int(n_atoms)
        import dataclasses

        return dataclasses.replace(atoms_cfg, **changes)


# ---- rows of the tables -----------------------------------------------------------------------------
def sparsity_row(alpha: float, codes: sp.spmatrix, coherence: np.ndarray) -> dict[str, Any]:
    """One row of the Table 1 analogue."""
    counts = docs_per_atom(codes, ACTIVE_THRESHOLD)
    return {"alpha": float(alpha), "median_docs_per_atom": float(np.median(counts)),
            "atoms_used": int((counts > 0).sum()),
            "n_coh_gt_0_5": int((np.asarray(coherence) > 0.5).sum()),
            "n_coh_gt_0_1": int((np.asarray(coherence) > 0.1).sum())}


def method_row(method: str, codes: sp.spmatrix, coherence: np.ndarray,
               labels: dict[str, list[str | None]] | list[str | None]) -> dict[str, Any]:
    """One row of the methods table: the ground-truth metrics, the V-measure of the strongest atom
    against the family, how much of each label it carries (``<label>_share``, ``<label>_ami``:
    :func:`gatoms.method.whitening.alignment_columns`) and the coherence counts. ``labels``: label name
    → per-row values (a plain list is the family).

    Wall times are not table columns (tables must be identical across runs); they go to metrics.json."""
    from gatoms.method.claims import encode, label_alignment, partition_scores, strongest_atom
    from gatoms.method.discovery import discovery_metrics
    from gatoms.method.whitening import ALIGNMENT_LABELS, alignment_columns

    columns = labels if isinstance(labels, dict) else {"family": list(labels)}
    families = columns.get("family") or [None] * sp.csr_matrix(codes).shape[0]
    m = discovery_metrics(codes, coherence, families)
    counts = docs_per_atom(codes, ACTIVE_THRESHOLD)
    part = partition_scores(strongest_atom(codes), encode(families)[0])
    aligned = label_alignment(codes, {k: v for k, v in columns.items() if k in ALIGNMENT_LABELS})
    return {"method": method, "label": LABELS.get(method, method),
            "nmi": round(m["nmi"], 4), "v_measure": part["v_measure"], "homogeneity": part["homogeneity"],
            "completeness": part["completeness"], **alignment_columns(aligned),
            "purity_top50": round(m["purity_top50"], 4), "families_in_top50": m["families_in_top50"],
            "families_recovered": m["families_recovered"], "n_families": m["n_families"],
            "mean_best_f1": round(m["mean_best_f1"], 4),
            "n_coh_gt_0_5": int((coherence > 0.5).sum()), "n_coh_gt_0_1": int((coherence > 0.1).sum()),
            "median_docs_per_atom": float(np.median(counts))}


def size_row(n_atoms: int, codes: sp.spmatrix, coherence: np.ndarray,
             families: dict[str, list[str | None]] | list[str | None]) -> dict[str, Any]:
    """One row of the dictionary-size table: the ground-truth metrics at ``n_atoms`` atoms."""
    row = method_row("ekfac", codes, coherence, families)
    return {"n_atoms": int(n_atoms), **{k: v for k, v in row.items() if k not in ("method", "label")}}


# ---- baselines --------------------------------------------------------------------------------------
def kmeans_decomposition(X: np.ndarray, n_clusters: int, seed: int = 0,
                         n_init: int = 1) -> tuple[np.ndarray, sp.csr_matrix]:
    """k-means on the rows of X: (centroids (K, P) unit, codes (N, K)) where a document's only code
    is its cosine to its own centroid (floored at 1e-5 so every member counts as active).

    With fewer documents than clusters (e.g. 192 documents, 500 atoms) only ``N`` clusters are fitted;
    the codes keep ``n_clusters`` columns, the rest empty, as a dictionary's unused atoms are.

    Runs on one thread: scikit-learn's k-means++ with 500 clusters took 162 s on 2 threads of a busy
    2-core machine and 14 s on one (OpenMP workers spin-waiting against other processes unless
    OMP_WAIT_POLICY=PASSIVE, which the Makefile sets); one thread costs at most the core count on an
    idle machine.
    """
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    X = np.asarray(X, dtype=np.float32)
    with threadpool_limits(limits=1):
        km = KMeans(n_clusters=min(n_clusters, X.shape[0]), n_init=n_init, random_state=seed).fit(X)
    cent = np.zeros((n_clusters, X.shape[1]), dtype=np.float32)
    cent[: km.n_clusters] = km.cluster_centers_
    cent /= np.maximum(np.linalg.norm(cent, axis=1, keepdims=True), 1e-12)
    lab = km.labels_
    cos = np.einsum("np,np->n", X, cent[lab]) / np.maximum(np.linalg.norm(X, axis=1), 1e-12)
    codes = sp.csr_matrix((np.maximum(cos, 1e-5).astype(np.float32), (np.arange(X.shape[0]), lab)),
                          shape=(X.shape[0], n_clusters))
    return cent, codes


def pca_decomposition(X: np.ndarray, n_components: int, nonzeros: int,
                      seed: int = 0) -> tuple[np.ndarray, sp.csr_matrix]:
    """PCA of X: (components (K, P), codes (N, K)) keeping each document's ``nonzeros`` largest
    |scores|, signs oriented like the atoms' (top documents' mean score positive)."""
    from sklearn.decomposition import PCA

    X = np.asarray(X, dtype=np.float32)
    K = min(n_components, X.shape[0], X.shape[1])
    pca = PCA(n_components=K, random_state=seed, svd_solver="full").fit(X)
    S = pca.transform(X).astype(np.float32)  # (N, K)
    keep = np.argsort(-np.abs(S), axis=1, kind="stable")[:, :max(1, nonzeros)]
    rows = np.repeat(np.arange(S.shape[0]), keep.shape[1])
    codes = sp.csr_matrix((S[rows, keep.ravel()], (rows, keep.ravel())), shape=S.shape)
    comps, codes, _ = orient_signs(pca.components_.astype(np.float32), codes)
    return comps, codes


def mean_nonzeros(codes: sp.spmatrix) -> int:
    """Mean active atoms per document, rounded up (at least 1)."""
    c = sp.csr_matrix(codes)
    return max(1, int(np.ceil((np.abs(c.data) > ACTIVE_THRESHOLD).sum() / max(c.shape[0], 1))))


# ---- the figure -------------------------------------------------------------------------------------


# ---- running the ablations --------------------------------------------------------------------------
class Fits:
    """Every dictionary the ablations need, each learned once: (α, preconditioning) → (codes, coherence).

    The fit at the atoms section's α on step 02's own projection, with step 03's settings, *is* step 03's
    dictionary and step 04's coherence: it is reused, not re-learned. Other projections of the same
    gradients are the recorded projection under changed settings (:data:`PRECONDITIONING`).
    """

    def __init__(self, cfg: AblationsConfig, X: np.ndarray, proj: Projection, reader: Any, atoms_cfg: AtomsConfig,
                 coh_cfg: CoherenceConfig, base: Dictionary, base_coherence: np.ndarray):
        self.cfg, self.X, self.proj, self.reader = cfg, X, proj, reader
        self.atoms_cfg, self.coh_cfg = atoms_cfg, coh_cfg
        self.fit_cfg = cfg.atoms_config(atoms_cfg)
        self.reuse = self.fit_cfg == atoms_cfg
        self.base, self.base_coherence = base, base_coherence
        self.cache: dict[tuple[float, str, float | None], tuple[sp.csr_matrix, np.ndarray]] = {}
        self.timings: dict[str, float] = {}
        """Seconds per fit (recorded in metrics.json, never in the tables: they must repeat exactly)."""

    def coherence_of(self, codes: sp.spmatrix) -> np.ndarray:
        c = self.coh_cfg
        return score_coherence(self.reader, codes, c.top_n, c.active_threshold, c.max_bytes)

    def fit(self, alpha: float, method: str = "ekfac", damping: float | None = None) -> tuple[sp.csr_matrix, np.ndarray]:
        """Codes and coherence of the dictionary at ``alpha`` on X projected as ``method`` (and, if given,
        with relative damping ``damping``; ``random_projection``: :func:`gatoms.method.whitening.random_projection`)."""
        s = self.proj.settings
        if damping is not None and s.damping_mode == "relative" and float(damping) == s.damping:
            damping = None  # step 02's own damping: the same X
        key = (float(alpha), method, damping)
        if key in self.cache:
            return self.cache[key]
        if method == "random_projection":
            from gatoms.method.whitening import random_projection

            Xr = random_projection(self.reader, self.X.shape[1], self.cfg.seed)
            codes = learn_dictionary(Xr, self.cfg.atoms_config(self.atoms_cfg, alpha)).codes
            self.cache[key] = (codes, self.coherence_of(codes))
        else:
            changes = dict(PRECONDITIONING[method])
            if damping is not None:
                changes.update(damping=float(damping), damping_mode="relative")
            same_x = all(getattr(s, k) == v for k, v in changes.items())
            if same_x and self.reuse and alpha == self.atoms_cfg.alpha:
                self.cache[key] = (self.base.codes, self.base_coherence)  # exactly 03's and 04's
            else:
                Xm = self.X if same_x else normalize_rows(self.proj.with_settings(**changes).project(self.reader),
                                                          self.reader.doc_ids)
                codes = learn_dictionary(Xm, self.cfg.atoms_config(self.atoms_cfg, alpha)).codes
                self.cache[key] = (codes, self.coherence_of(codes))
        return self.cache[key]

    def timed(self, name: str, fn, *args):
        t0 = time.perf_counter()
        out = fn(*args)
        self.timings[name] = round(time.perf_counter() - t0, 2)
        return out


def sparsity_rows(fits: Fits, paper: dict[float, dict[str, Any]]) -> list[dict[str, Any]]:
    """The Table 1 analogue: one row per α of the sweep, the paper's numbers beside ours."""
    rows = []
    for alpha in fits.cfg.alphas:
        codes, coh = fits.timed(f"alpha={alpha}", fits.fit, alpha)
        row = sparsity_row(alpha, codes, coh)
        for k in ("median_docs_per_atom", "n_coh_gt_0_5", "n_coh_gt_0_1"):
            row[f"paper_{k}"] = paper.get(alpha, {}).get(k, "")
        rows.append(row)
    return rows


def method_rows(fits: Fits, families: dict[str, list[str | None]] | list[str | None]) -> list[dict[str, Any]]:
    """Preconditioning, the random projection and the baselines, scored against the labels."""
    cfg = fits.cfg
    n_comp = cfg.n_components or fits.fit_cfg.n_atoms
    rows = []
    for method in cfg.methods:
        t0 = time.perf_counter()
        if method in PRECONDITIONING or method == "random_projection":
            codes, coh = fits.fit(fits.atoms_cfg.alpha, method)
        elif method == "kmeans":
            codes = kmeans_decomposition(fits.X, n_comp, cfg.seed, cfg.kmeans_n_init)[1]
            coh = fits.coherence_of(codes)
        else:  # pca
            codes = pca_decomposition(fits.X, n_comp, cfg.pca_nonzeros or mean_nonzeros(fits.base.codes), cfg.seed)[1]
            coh = fits.coherence_of(codes)
        rows.append(method_row(method, codes, coh, families))
        fits.timings[method] = round(time.perf_counter() - t0, 2)
    return rows


def size_rows(fits: Fits, families: dict[str, list[str | None]] | list[str | None]) -> list[dict[str, Any]]:
    """The dictionary-size sweep, scored against the true families."""
    rows = []
    for n_atoms in fits.cfg.atom_counts:
        t0 = time.perf_counter()
        if fits.reuse and n_atoms == fits.atoms_cfg.n_atoms:
            codes, coh = fits.base.codes, fits.base_coherence  # exactly 03's dictionary
        else:
            codes = learn_dictionary(fits.X, fits.cfg.atoms_config(fits.atoms_cfg, n_atoms=n_atoms)).codes
            coh = fits.coherence_of(codes)
        rows.append(size_row(n_atoms, codes, coh, families))
        fits.timings[f"n_atoms={n_atoms}"] = round(time.perf_counter() - t0, 2)
    return rows


# ---- what step 05 records ---------------------------------------------------------------------------
@dataclass
class AblationsMetrics(StepMetrics):
    """Step 05's ``metrics.json``."""

    step: ClassVar[str] = "05_ablations"
    sparsity: dict[str, dict[str, Any]] = field(default_factory=dict)
    """α → median docs per atom and the coherence counts (Table 1)."""
    methods: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Method → its ground-truth metrics and coherence count."""
    fit_backend: str = "sklearn"
    dictionary_size: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Number of atoms → ground-truth metrics."""
    fit_seconds: dict[str, float] = field(default_factory=dict)
    damping: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Damping factor (× mean eigenvalue) → the label alignment and ground-truth metrics of its atoms."""
    fit_settings: dict[str, Any] = field(default_factory=dict)
    """The dictionary settings every fit of the step used (backend, max_iter, n_atoms, α, seed)."""


_KEEP = ("nmi", "v_measure", "homogeneity", "completeness", "purity_top50", "families_in_top50", "families_recovered",
         "mean_best_f1", "n_coh_gt_0_5", "n_coh_gt_0_1", "median_docs_per_atom")


def _kept(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k in _KEEP or k.endswith(("_share", "_ami"))}


def summarize(fits: Fits, sparsity: list[dict[str, Any]], methods: list[dict[str, Any]],
              sizes: list[dict[str, Any]], damping: list[dict[str, Any]] | None = None) -> AblationsMetrics:
    """Step 05's metrics from its tables."""
    f = fits.fit_cfg
    return AblationsMetrics(
        sparsity={str(r["alpha"]): {k: r[k] for k in ("median_docs_per_atom", "n_coh_gt_0_5", "n_coh_gt_0_1")}
                  for r in sparsity},
        methods={r["method"]: _kept(r) for r in methods},
        fit_backend=f.backend,
        dictionary_size={str(r["n_atoms"]): _kept(r) for r in sizes},
        fit_seconds=fits.timings,
        damping={f"{r['damping']:g}": _kept(r) for r in damping or []},
        fit_settings={"backend": f.backend, "max_iter": f.max_iter, "n_atoms": f.n_atoms, "alpha": f.alpha,
                      "seed": f.seed, "same_as_main_run": fits.reuse})
