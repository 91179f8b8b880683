"""Our dictionary solver (backend ``torch``): the objective of scikit-learn's, solved by exact block
minimisations that stream the rows of X from a memmap, on CPU or GPU.

It alternates: codes given atoms — a lasso per row, solved by cyclic coordinate descent on the Gram
matrix ``G = D Dᵀ``, vectorised over the rows of a chunk, coordinates in blocks whose effect on the other
coordinates is one matrix product, warm-started from the previous pass's codes; atoms given codes — one
block-coordinate pass over the atoms using ``A = CᵀC`` and ``B = CᵀX`` accumulated over the chunks (each
atom is the exact minimiser on the unit sphere). Unused atoms are re-seeded with the worst-reconstructed
rows. Stops when the relative decrease of the objective falls below ``tol`` or after ``max_iter`` passes
over the data. Memory O(chunk·P + K·P + K² + nnz(C)), so N can exceed RAM.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
import torch

from gatoms.method.atoms.rows import n_rows as _n_rows
from gatoms.method.atoms.rows import rows as _rows

if TYPE_CHECKING:
    from gatoms.method.atoms.dictionary import AtomsConfig

log = logging.getLogger(__name__)


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


def learn_torch(X: Any, cfg: AtomsConfig) -> tuple[np.ndarray, sp.csr_matrix, int, list[float]]:
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
