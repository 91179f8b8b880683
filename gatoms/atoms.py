"""Sparse dictionary learning on the projected gradients (METHOD.md §3; notebook ``03_atoms``).

Given unit rows X (N, P), find atoms D (K, P) with unit-norm rows and sparse codes C (N, K) that
minimise ``½‖X − C D‖²_F + α‖C‖₁``. Two backends solve it:

- ``sklearn`` (default, the paper's): scikit-learn's ``MiniBatchDictionaryLearning(n_components, alpha,
  batch_size=256, max_iter=100, transform_algorithm="lasso_lars", transform_alpha=alpha,
  random_state=seed)``; codes ``C = transform(X)``. Holds X in memory.
- ``torch``: our solver of the same objective, on CPU or GPU, streaming ``chunk_rows`` rows at a time
  from the ``.npy`` memmap (memory O(chunk·P + K·P + K² + nnz(C)), so N can exceed RAM). It alternates
  exact block minimisations, so the objective never goes up:
  codes given atoms — a lasso per row, solved by cyclic coordinate descent on the Gram matrix
  ``G = D Dᵀ``, vectorised over the rows of a chunk, coordinates in blocks whose effect on the other
  coordinates is one matrix product, warm-started from the previous pass's codes; atoms given
  codes — one block-coordinate pass over the atoms using ``A = CᵀC`` and ``B = CᵀX`` accumulated
  over the chunks (each atom is the exact minimiser on the unit sphere). Unused atoms are re-seeded
  with the worst-reconstructed rows. Stops when the relative decrease of the objective falls below
  ``tol`` or after ``max_iter`` passes over the data.

After either backend every atom is oriented so that the mean code of its top documents (by |code|)
is positive (:func:`orient_signs`; the flips are recorded in ``Dictionary.signs``): "toward" an atom then
means "a training step on its documents".

Usage::

    d = learn_dictionary(np.load("X.npy", mmap_mode="r"), AtomsConfig(backend="torch"))
    save_dictionary(store, d); d = load_dictionary(store)
"""

from __future__ import annotations

import contextlib
import heapq
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from gatoms import paths

log = logging.getLogger(__name__)

BACKENDS = ("sklearn", "torch")
ACTIVE_THRESHOLD = 1e-6
"""A code with |c| above this counts as active (METHOD.md §4)."""


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
def _rows(X: Any, start: int, stop: int) -> np.ndarray:
    """Rows [start, stop) of an array, memmap or reader with ``.rows`` as float32."""
    if hasattr(X, "rows"):
        return np.array(X.rows(np.arange(start, stop)), dtype=np.float32)
    return np.array(X[start:stop], dtype=np.float32)  # a writable copy


def _n_rows(X: Any) -> int:
    return int(X.shape[0])


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


# ---- the torch backend ------------------------------------------------------------------------------
def encode_chunk(Q: torch.Tensor, G: torch.Tensor, alpha: float, C0: torch.Tensor | None = None,
                 tol: float = 1e-5, max_sweeps: int = 50) -> tuple[torch.Tensor, int]:
    """Lasso codes of a chunk of rows by cyclic coordinate descent on the Gram matrix.

    Solves ``min_c ½‖x − cD‖² + α‖c‖₁`` for every row at once, given only ``Q = X Dᵀ`` (n, K) and
    ``G = D Dᵀ`` (K, K). ``C0`` (n, K) warm-starts it. Every coordinate step is an exact minimisation,
    so the objective never rises, however few sweeps are allowed. Stops after a sweep in which no code
    moved by more than ``tol``. Returns the codes (n, K) and the number of sweeps. On the CPU it runs on
    one thread (its many small operations only lose from a thread pool).
    """
    if Q.device.type == "cpu":
        with _one_thread():  # the tiny per-coordinate ops only lose from a thread pool
            return _encode_chunk(Q, G, alpha, C0, tol, max_sweeps)
    return _encode_chunk(Q, G, alpha, C0, tol, max_sweeps)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _encode_chunk(Q: torch.Tensor, G: torch.Tensor, alpha: float, C0: torch.Tensor | None,
                  tol: float, max_sweeps: int, block: int = 32) -> tuple[torch.Tensor, int]:
    """Cyclic coordinate descent, coordinates taken in blocks of ``block``.

    Inside a block, coordinate j's exact update changes the residual correlations R = Q − C G of
    every coordinate; only the block's own columns are needed before the block ends, so those are
    updated at once (b × n) and the rest of R is brought up to date after the block with one matrix
    product ΔC_blockᵀ G_block — the same iterates as plain cyclic CD, with the bulk of the work in
    BLAS. Rows whose codes are all zero and stay zero cost nothing but that product.
    """
    n, K = Q.shape
    CT = (torch.zeros(K, n, dtype=Q.dtype, device=Q.device) if C0 is None
          else C0.to(Q.dtype).T.contiguous())  # (K, n)
    RT = Q.T.contiguous() if C0 is None else (Q - C0.to(Q.dtype) @ G).T.contiguous()  # (K, n)
    diag = G.diagonal().clamp_min(1e-12).tolist()
    shrink = torch.nn.functional.softshrink
    sweeps = 0
    for sweeps in range(1, max_sweeps + 1):
        moved = torch.zeros((), dtype=Q.dtype, device=Q.device)
        for b0 in range(0, K, block):
            b1 = min(b0 + block, K)
            Rb = RT[b0:b1].clone()  # (b, n): residual correlations of the block, kept current
            Cb = CT[b0:b1]  # (b, n) view: updated in place
            old = Cb.clone()
            Gb = G[b0:b1, b0:b1]  # (b, b)
            for i in range(b1 - b0):
                dj = diag[b0 + i]
                new = shrink(Rb[i] + Cb[i] * dj, alpha)
                if dj != 1.0:
                    new = new / dj
                delta = new - Cb[i]  # (n,)
                Rb.addr_(Gb[:, i], delta, alpha=-1.0)
                Cb[i] = new
            dC = Cb - old  # (b, n)
            RT.addmm_(G[:, b0:b1], dC, alpha=-1.0)  # R ← R − ΔC_block G_block (all K columns)
            moved = torch.maximum(moved, dC.abs().max())
        if float(moved) <= tol:
            break
    return CT.T.contiguous(), sweeps


def _chunk_stats(Xc: np.ndarray, Q: np.ndarray, C: sp.csr_matrix, G: np.ndarray,
                 alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-row loss ½‖x − cD‖² + α‖c‖₁ (n,), CᵀC (K, K) and CᵀX (K, P), in float64.

    Uses the sparsity of the codes (a few nonzeros per row): ‖x − cD‖² = ‖x‖² − 2c·q + c G cᵀ.
    """
    C = C.astype(np.float64)
    x2 = np.einsum("np,np->n", Xc, Xc, dtype=np.float64)
    cq = np.asarray(C.multiply(Q).sum(axis=1)).ravel()
    cgc = np.asarray(C.multiply(C @ G).sum(axis=1)).ravel()
    l1 = np.asarray(abs(C).sum(axis=1)).ravel()
    loss = 0.5 * x2 - cq + 0.5 * cgc + alpha * l1
    return loss, (C.T @ C).toarray(), np.asarray(C.T @ Xc.astype(np.float64))


def _to_csr(C: torch.Tensor) -> sp.csr_matrix:
    return sp.csr_matrix(C.cpu().numpy(), dtype=np.float32)


def _code_pass(X: Any, D: torch.Tensor, chunks: list[tuple[int, int]], codes: list, alpha: float,
               tol: float, max_sweeps: int) -> tuple[float, torch.Tensor, torch.Tensor, list, int]:
    """Code every chunk for atoms D (updating ``codes`` in place, warm-started from it).

    Returns the objective, A = CᵀC (K, K), B = CᵀX (K, P) in float64, a heap of the K
    worst-reconstructed rows as (loss, row), and the most CD sweeps any chunk needed.
    """
    K, dev = D.shape[0], D.device
    G = D @ D.T  # (K, K)
    G64 = G.double().cpu().numpy()
    A = np.zeros((K, K))
    B = np.zeros((K, D.shape[1]))
    total, sweeps, worst = 0.0, 0, []
    for i, (s, e) in enumerate(chunks):
        Xn = _rows(X, s, e)  # (n, P) float32
        Xc = torch.from_numpy(Xn).to(dev)
        Q = Xc @ D.T  # (n, K)
        C0 = None if codes[i] is None else torch.from_numpy(codes[i].toarray()).to(dev)
        C, sw = encode_chunk(Q, G, alpha, C0, tol, max_sweeps)  # (n, K)
        sweeps = max(sweeps, sw)
        codes[i] = _to_csr(C)
        # The sufficient statistics use the codes' sparsity, on the CPU (scipy).
        loss, a, b = _chunk_stats(Xn, Q.cpu().numpy(), codes[i], G64, alpha)
        total += float(loss.sum())
        A += a
        B += b
        for r in np.argsort(-loss, kind="stable")[:K].tolist():
            item = (float(loss[r]), s + r)
            if len(worst) < K:
                heapq.heappush(worst, item)
            elif item > worst[0]:
                heapq.heapreplace(worst, item)
    A_t = torch.from_numpy(A).to(dev)
    B_t = torch.from_numpy(B).to(dev)
    return total, A_t, B_t, worst, sweeps


def _update_atoms(X: Any, D: torch.Tensor, A: torch.Tensor, B: torch.Tensor, worst: list) -> torch.Tensor:
    """One cyclic pass of exact atom updates on the unit sphere; unused atoms get the worst rows."""
    if D.device.type == "cpu":
        with _one_thread():  # K small sequential updates: a thread pool only adds waiting
            return _update_atoms_inner(X, D, A, B, worst)
    return _update_atoms_inner(X, D, A, B, worst)


def _update_atoms_inner(X: Any, D: torch.Tensor, A: torch.Tensor, B: torch.Tensor, worst: list) -> torch.Tensor:
    Dd = D.double()  # (K, P)
    used = A.diagonal() > 1e-12
    for j in used.nonzero().squeeze(1).tolist():
        nz = A[j].nonzero().squeeze(1)  # atoms that share documents with atom j (few)
        u = B[j] - A[j, nz] @ Dd[nz] + A[j, j] * Dd[j]  # ∝ argmin over ‖d_j‖ = 1, other atoms fixed
        nu = u.norm()
        if nu > 1e-12:
            Dd[j] = u / nu
    unused = (~used).nonzero().squeeze(1).tolist()
    if unused:  # their codes are 0, so re-seeding them cannot raise the objective
        rows = [r for _, r in sorted(worst, reverse=True)][: len(unused)]
        new = torch.from_numpy(_read_rows(X, np.array(rows))).to(D.device).double()
        Dd[unused[: len(rows)]] = new / new.norm(dim=1, keepdim=True).clamp_min(1e-12)
        log.info("re-seeded %d unused atoms with the worst-reconstructed rows", len(rows))
    return Dd.float()


def _learn_torch(X: Any, cfg: AtomsConfig) -> tuple[np.ndarray, sp.csr_matrix, int, list[float]]:
    dev = torch.device(cfg.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"atoms.device={cfg.device!r} but CUDA is not available; use device: cpu")
    N, K, alpha = _n_rows(X), cfg.n_atoms, float(cfg.alpha)
    chunks = [(s, min(s + cfg.chunk_rows, N)) for s in range(0, N, cfg.chunk_rows)]
    rng = np.random.default_rng(cfg.seed)

    # Initial atoms: K distinct rows of X (with replacement only if K > N), normalised.
    init = np.sort(rng.choice(N, size=K, replace=K > N))
    D = torch.from_numpy(_read_rows(X, init)).to(dev)
    D = D + 1e-3 * torch.from_numpy(rng.standard_normal(D.shape).astype(np.float32)).to(dev)
    D = D / D.norm(dim=1, keepdim=True).clamp_min(1e-12)  # (K, P)

    codes: list[sp.csr_matrix | None] = [None] * len(chunks)
    history: list[float] = []
    for n_iter in range(1, cfg.max_iter + 1):
        t0 = time.perf_counter()
        total, A, B, worst, sweeps = _code_pass(X, D, chunks, codes, alpha, cfg.cd_tol, cfg.cd_max_sweeps)
        history.append(total)
        log.info("torch pass %d: objective %.4f (%d CD sweeps max, %.2fs)", n_iter, total, sweeps,
                 time.perf_counter() - t0)
        if len(history) > 1 and history[-2] - total <= cfg.tol * abs(total):
            break
        D = _update_atoms(X, D, A, B, worst)
    # Final codes for the final atoms, coordinate descent run to convergence.
    total, _, _, _, sweeps = _code_pass(X, D, chunks, codes, alpha, cfg.cd_tol, cfg.cd_final_sweeps)
    history.append(total)
    log.info("torch final coding: objective %.4f (%d CD sweeps max)", total, sweeps)
    codes_csr = sp.vstack([c for c in codes if c is not None], format="csr")
    return D.cpu().numpy(), codes_csr, n_iter, history


def _read_rows(X: Any, idx: np.ndarray) -> np.ndarray:
    """Rows ``idx`` (any order) of an array, memmap or reader, read in ascending order."""
    idx = np.asarray(idx, dtype=np.int64)
    order = np.argsort(idx, kind="stable")
    out = np.empty((idx.size, X.shape[1]), dtype=np.float32)
    sorted_idx = idx[order]
    out[order] = X.rows(sorted_idx) if hasattr(X, "rows") else X[sorted_idx]
    return out


def encode(X: Any, atoms: np.ndarray, alpha: float, chunk_rows: int = 4096, device: str = "cpu",
           tol: float = 1e-6, max_sweeps: int = 200) -> sp.csr_matrix:
    """Lasso codes (N, K) of rows X for fixed atoms (K, P): the torch backend's transform."""
    dev = torch.device(device)
    D = torch.from_numpy(np.asarray(atoms, dtype=np.float32)).to(dev)
    G = D @ D.T
    out = []
    for s in range(0, _n_rows(X), chunk_rows):
        Xc = torch.from_numpy(_rows(X, s, min(s + chunk_rows, _n_rows(X)))).to(dev)
        C, _ = encode_chunk(Xc @ D.T, G, alpha, None, tol, max_sweeps)
        out.append(_to_csr(C))
    return sp.vstack(out, format="csr")


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
        atoms, codes, n_iter, history = _learn_torch(X, cfg)
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
