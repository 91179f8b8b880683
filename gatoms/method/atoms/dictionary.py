"""Sparse dictionary learning on the projected gradients (paper §3.3, Eq. 2; notebook ``03_atoms``).

Given unit rows X (N, P), find atoms D (K, P) with unit-norm rows and sparse codes C (N, K) that
minimise ``½‖X − C D‖²_F + α‖C‖₁``. Two backends solve it:

- ``sklearn`` (default, the paper's): scikit-learn's ``MiniBatchDictionaryLearning(n_components, alpha,
  batch_size=256, max_iter=100, transform_algorithm="lasso_lars", transform_alpha=alpha,
  random_state=seed)``; codes ``C = transform(X)``. Holds X in memory.
- ``torch``: our solver of the same objective, on CPU or GPU, streaming ``chunk_rows`` rows at a time
  from the ``.npy`` memmap (:mod:`gatoms.method.atoms.solver`); it alternates exact block
  minimisations, so the objective never goes up.

After either backend every atom is oriented so that the mean code of its top documents (by |code|)
is positive (:func:`orient_signs`; the flips are recorded in ``Dictionary.signs``): "toward" an atom then
means "a training step on its documents".

Usage::

    d = learn_dictionary(np.load("X.npy", mmap_mode="r"), AtomsConfig(backend="torch"))
    save_dictionary(store, d); d = load_dictionary(store)
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch

from gatoms.build import paths
from gatoms.build.metrics import StepMetrics
from gatoms.method.atoms.rows import n_rows as _n_rows
from gatoms.method.atoms.rows import rows as _rows

log = logging.getLogger(__name__)

BACKENDS = ("sklearn", "torch")
ACTIVE_THRESHOLD = 1e-6
"""A code with |c| above this counts as active (the paper's 1e-6; §3.4): the one place it is spelled."""
@dataclass
class AtomsConfig:
    """Dictionary learning (notebook ``03_atoms``; profile section ``atoms``)."""

    backend: str = "sklearn"
    """"sklearn" (the paper's MiniBatchDictionaryLearning) or "torch" (our streaming solver)."""
    n_atoms: int = 500
    """Number of atoms K (paper: 500)."""
    alpha: float = 0.1
    """L1 penalty α of ½‖X − CD‖² + α‖C‖₁ (paper: 0.1; rows of X are unit so α ≥ 1 zeroes every code)."""
    batch_size: int = 256
    """sklearn: mini-batch size (paper: 256)."""
    max_iter: int = 100
    """sklearn: epochs (paper: 100; its early stopping usually ends sooner). torch: passes over X."""
    seed: int = 42
    """Random state (paper: 42): sklearn's random_state; torch's choice of initial rows."""
    device: str = "cpu"
    """torch: "cpu", "cuda", "cuda:1", … (sklearn always runs on the CPU)."""
    chunk_rows: int = 4096
    """torch: rows of X read and coded at a time (bounds memory; larger is faster)."""
    tol: float = 1e-4
    """torch: stop when a pass lowers the objective by less than this fraction."""
    cd_tol: float = 1e-5
    """torch: coordinate descent on a chunk stops when no code moves by more than this."""
    cd_max_sweeps: int = 5
    """torch: coordinate-descent sweeps per chunk in each pass (warm-started, so few suffice); the
    final pass, which produces the returned codes, runs up to ``cd_final_sweeps``."""
    cd_final_sweeps: int = 20
    """torch: coordinate-descent sweeps allowed in the final coding pass (warm-started too)."""
    sign_top_n: int = 20
    """Orient each atom so that the mean code of its top-n documents by |code| is positive."""

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"atoms.backend must be one of {BACKENDS}, got {self.backend!r}")
        for name in ("n_atoms", "batch_size", "max_iter", "chunk_rows", "cd_max_sweeps", "cd_final_sweeps",
                     "sign_top_n"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"atoms.{name} must be a positive integer, got {getattr(self, name)!r}")
        if not self.alpha >= 0:
            raise ValueError(f"atoms.alpha must be >= 0 (paper: 0.1), got {self.alpha!r}")
        if not (self.tol >= 0 and self.cd_tol > 0):
            raise ValueError(f"atoms.tol must be >= 0 and atoms.cd_tol > 0, got {self.tol}, {self.cd_tol}")
        if self.backend == "sklearn" and self.device != "cpu":
            raise ValueError(f"atoms.device={self.device!r} needs backend 'torch'; sklearn runs on the CPU")
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"atoms.device must be 'cpu' or 'cuda[:i]', got {self.device!r}")


@dataclass
class Dictionary:
    """A learned dictionary: unit-norm atoms, sparse codes, and how it was made."""

    atoms: np.ndarray  # (K, P) float32, unit rows
    codes: sp.csr_matrix  # (N, K) float32
    alpha: float
    objective: float
    """½‖X − CD‖²_F + α‖C‖₁ at the returned atoms and codes."""
    signs: np.ndarray  # (K,) int8: +1 kept, -1 flipped by orient_signs
    backend: str = "sklearn"
    n_iter: int = 0
    """Passes over the data (sklearn: its n_iter_; torch: alternations)."""
    history: list[float] = field(default_factory=list)
    """torch: the objective after each pass."""

    @property
    def n_atoms(self) -> int:
        return int(self.atoms.shape[0])

    def docs_per_atom(self, threshold: float = ACTIVE_THRESHOLD) -> np.ndarray:
        """(K,) number of documents with |code| > threshold on each atom."""
        return docs_per_atom(self.codes, threshold)


# ---- objective and small helpers --------------------------------------------------------------------
def objective(X: Any, codes: sp.spmatrix | np.ndarray, atoms: np.ndarray, alpha: float,
              chunk_rows: int = 4096) -> float:
    """½‖X − C D‖²_F + α‖C‖₁, computed directly chunk by chunk (float64 accumulation)."""
    codes = sp.csr_matrix(codes)
    atoms = np.asarray(atoms, dtype=np.float64)
    if codes.shape != (_n_rows(X), atoms.shape[0]):
        raise ValueError(f"codes {codes.shape} do not match X rows {_n_rows(X)} × atoms {atoms.shape[0]}")
    total = 0.0
    for s in range(0, _n_rows(X), chunk_rows):
        e = min(s + chunk_rows, _n_rows(X))
        r = _rows(X, s, e).astype(np.float64) - codes[s:e] @ atoms
        total += 0.5 * float((r * r).sum())
    return total + alpha * float(np.abs(codes.data).sum())


def docs_per_atom(codes: sp.spmatrix, threshold: float = ACTIVE_THRESHOLD) -> np.ndarray:
    """(K,) number of rows with |code| > threshold per column."""
    c = sp.csr_matrix(codes)
    return np.bincount(c.indices[np.abs(c.data) > threshold], minlength=c.shape[1]).astype(np.int64)


def orient_signs(atoms: np.ndarray, codes: sp.spmatrix, top_n: int = 20,
                 threshold: float = ACTIVE_THRESHOLD) -> tuple[np.ndarray, sp.csr_matrix, np.ndarray]:
    """Flip atoms (and their code columns) so their top-``top_n`` documents' mean code is positive.

    Returns ``(atoms, codes, signs)`` with ``signs[j] = -1`` where atom j was flipped. X ≈ C D is
    unchanged; atoms without active documents keep their sign.
    """
    csc = sp.csc_matrix(codes, dtype=np.float32, copy=True)
    signs = np.ones(csc.shape[1], dtype=np.int8)
    for j in range(csc.shape[1]):
        v = csc.data[csc.indptr[j]: csc.indptr[j + 1]]
        v = v[np.abs(v) > threshold]
        if v.size == 0:
            continue
        top = v[np.argsort(-np.abs(v), kind="stable")[:top_n]]
        if top.mean() < 0:
            signs[j] = -1
    csc = csc @ sp.diags(signs.astype(np.float32))
    out = (np.asarray(atoms, dtype=np.float32) * signs[:, None]).astype(np.float32)
    return out, sp.csr_matrix(csc, dtype=np.float32), signs


def _normalise_atoms(atoms: np.ndarray, codes: sp.csr_matrix) -> tuple[np.ndarray, sp.csr_matrix]:
    """Rescale atoms to unit norm and their code columns by the old norm (C D unchanged)."""
    norms = np.linalg.norm(atoms, axis=1).astype(np.float64)
    safe = np.where(norms > 0, norms, 1.0)
    codes = sp.csr_matrix(codes @ sp.diags(safe), dtype=np.float32)
    return (atoms / safe[:, None]).astype(np.float32), codes


# ---- the sklearn backend ----------------------------------------------------------------------------
def _learn_sklearn(X: Any, cfg: AtomsConfig) -> tuple[np.ndarray, sp.csr_matrix, int]:
    from sklearn.decomposition import MiniBatchDictionaryLearning

    Xa = np.asarray(X, dtype=np.float32) if not hasattr(X, "rows") else _rows(X, 0, _n_rows(X))
    model = MiniBatchDictionaryLearning(
        n_components=cfg.n_atoms, alpha=cfg.alpha, batch_size=cfg.batch_size, max_iter=cfg.max_iter,
        transform_algorithm="lasso_lars", transform_alpha=cfg.alpha, random_state=cfg.seed,
    )
    model.fit(Xa)
    codes = sp.csr_matrix(model.transform(Xa), dtype=np.float32)
    log.info("sklearn: %d epochs, %d mini-batch steps", model.n_iter_, model.n_steps_)
    return model.components_.astype(np.float32), codes, int(model.n_iter_)


# ---- entry point ------------------------------------------------------------------------------------
def learn_dictionary(X: Any, cfg: AtomsConfig) -> Dictionary:
    """Learn K unit-norm atoms and sparse codes for X (N, P) — array, memmap, or reader with ``.rows``.

    Returns a sign-oriented :class:`Dictionary` whose ``objective`` is evaluated directly.
    """
    if len(X.shape) != 2:
        raise ValueError(f"X must be 2-D (N, P), got shape {tuple(X.shape)}")
    if _n_rows(X) < 2:
        raise ValueError(f"need at least 2 rows of X to learn a dictionary, got {_n_rows(X)}")
    torch.manual_seed(cfg.seed)
    history: list[float] = []
    if cfg.backend == "sklearn":
        atoms, codes, n_iter = _learn_sklearn(X, cfg)
    else:
        from gatoms.method.atoms.solver import learn_torch

        atoms, codes, n_iter, history = learn_torch(X, cfg)
    atoms, codes = _normalise_atoms(atoms, codes)
    atoms, codes, signs = orient_signs(atoms, codes, cfg.sign_top_n)
    codes.eliminate_zeros()
    obj = objective(X, codes, atoms, cfg.alpha)
    log.info("%s: objective %.4f, %d nonzero codes", cfg.backend, obj, codes.nnz)
    return Dictionary(atoms=atoms, codes=codes, alpha=float(cfg.alpha), objective=obj, signs=signs,
                      backend=cfg.backend, n_iter=n_iter, history=history)


# ---- saving and loading -----------------------------------------------------------------------------
def save_dictionary(store: Any, d: Dictionary) -> None:
    """Write ``atoms.safetensors`` (atoms, signs + metadata) and ``codes.npz`` (CSR) atomically."""
    meta = {"alpha": repr(d.alpha), "objective": repr(d.objective), "backend": d.backend,
            "n_iter": str(d.n_iter), "history": json.dumps(d.history)}
    store.save_tensors(paths.ATOMS, {"atoms": torch.from_numpy(np.ascontiguousarray(d.atoms)),
                                     "signs": torch.from_numpy(d.signs.astype(np.int8))}, metadata=meta)
    with store.atomic(paths.CODES) as tmp:
        with open(tmp, "wb") as f:
            sp.save_npz(f, sp.csr_matrix(d.codes))


def load_dictionary(where: Any) -> Dictionary:
    """Load a dictionary from a StepStore or a step folder (``artifacts/<profile>/03_atoms``)."""
    from safetensors import safe_open

    folder = Path(where.dir if hasattr(where, "dir") else where)
    atoms_path, codes_path = folder / paths.ATOMS, folder / paths.CODES
    for p in (atoms_path, codes_path):
        if not p.exists():
            raise FileNotFoundError(f"{p} does not exist; build it with `make atoms`")
    with safe_open(str(atoms_path), framework="pt") as f:
        meta = f.metadata() or {}
        atoms = f.get_tensor("atoms").numpy().astype(np.float32)
        signs = f.get_tensor("signs").numpy().astype(np.int8)
    codes = sp.load_npz(codes_path).tocsr().astype(np.float32)
    return Dictionary(atoms=atoms, codes=codes, alpha=float(meta.get("alpha", "nan")),
                      objective=float(meta.get("objective", "nan")), signs=signs,
                      backend=meta.get("backend", "?"), n_iter=int(meta.get("n_iter", 0)),
                      history=json.loads(meta.get("history", "[]")))


# ---- what step 03 records ---------------------------------------------------------------------------
@dataclass
class AtomsMetrics(StepMetrics):
    """Step 03's ``metrics.json``."""

    step: ClassVar[str] = "03_atoms"
    backend: str = "sklearn"
    n_atoms: int = 0
    alpha: float = 0.0
    """The sparsity penalty α."""
    median_docs_per_atom: float = 0.0
    """Median over atoms of their active documents (the paper's Table 1 column)."""
    objective: float = 0.0
    """½‖X − CD‖²_F + α‖C‖₁ of the saved dictionary and codes."""
    n_docs: int = 0
    dim: int = 0
    """P, the width of X."""
    n_iter: int = 0
    """Passes over the data (sklearn: its epochs)."""
    atoms_used: int = 0
    """Atoms with at least one active document."""
    mean_atoms_per_doc: float = 0.0


def summarize(d: Dictionary) -> AtomsMetrics:
    """Step 03's metrics of a learned dictionary."""
    counts = d.docs_per_atom()
    per_doc = np.diff(d.codes.indptr)
    return AtomsMetrics(backend=d.backend, n_atoms=d.n_atoms, alpha=d.alpha,
                        median_docs_per_atom=float(np.median(counts)), objective=round(float(d.objective), 6),
                        n_docs=int(d.codes.shape[0]), dim=int(d.atoms.shape[1]), n_iter=int(d.n_iter),
                        atoms_used=int((counts > 0).sum()), mean_atoms_per_doc=round(float(per_doc.mean()), 4))
