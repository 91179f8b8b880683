"""The per-module eigenbasis of the Kronecker factors, and its eigenvalues (KFAC or EKFAC).

Per module m, from the Kronecker factors that step 01 accumulated (A = E[a aᵀ], S = E[δ δᵀ]):

    A = Q_A diag(λ_A) Q_Aᵀ,  S = Q_S diag(λ_S) Q_Sᵀ       float64 eigh
    R_n = Q_Sᵀ G_n Q_A                                      (o, i) rotated gradient of document n
    eig[j,k] = Λ[j,k] = mean_n R_n[j,k]²                    eigen_mode "ekfac" (eigenvalue correction)
             = λ_S[j] · λ_A[k]                              eigen_mode "kfac"  (what the reference used)

Damping ε_m (used by the whitening, :mod:`.projection`). Default: *relative*, ε_m = 0.1 × mean of module
m's eigenvalues (kronfluence's heuristic). Whitening divides each retained coordinate by its standard
deviation, so every direction counts equally in dictionary learning; ε keeps directions whose eigenvalue
is ≈ 0 (numerically noisy) from being blown up, and a relative ε is invariant to the overall scale of the
loss and of each module. The top-k directions have the module's largest eigenvalues, far above the mean,
so ε barely changes them. The reference's choice, an absolute ε = 1e-6, is ``damping_mode="absolute",
damping=1e-6``.

Usage::

    basis = fit_eigenbasis(reader.factors(), reader.layout)
    basis = ekfac_eigenvalues(reader, basis)                     # one streaming pass over the rows
    proj = Projection(basis, ProjectionSettings(k=50))           # see gatoms.method.ekfac.projection
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gatoms.build.store import require_final, save_safetensors
from gatoms.lm.layout import Layout
from gatoms.lm.model import resolve_device
from gatoms.method.ekfac.factors import Factors

log = logging.getLogger(__name__)

EIGEN_MODES = ("ekfac", "kfac")
DAMPING_MODES = ("relative", "absolute")


@dataclass(frozen=True)
class ProjectionSettings:
    """How rows are projected; recorded in ``eigen.safetensors`` so downstream steps re-create it."""

    k: int = 50
    eigen_mode: str = "ekfac"
    whiten: bool = True
    damping: float = 0.1
    damping_mode: str = "relative"

    def __post_init__(self):
        if self.k < 1:
            raise ValueError(f"k must be ≥ 1, got {self.k}")
        if self.eigen_mode not in EIGEN_MODES:
            raise ValueError(f"eigen_mode must be one of {EIGEN_MODES}, got {self.eigen_mode!r}")
        if self.damping_mode not in DAMPING_MODES:
            raise ValueError(f"damping_mode must be one of {DAMPING_MODES}, got {self.damping_mode!r}")
        if not self.damping >= 0:
            raise ValueError(f"damping must be ≥ 0, got {self.damping}")


@dataclass
class EkfacConfig:
    """Settings of step 02_ekfac (section ``ekfac:`` of a profile)."""

    k: int = 50
    """Directions kept per module (top-k (j,k) pairs by eigenvalue); the paper: 50 → 136 × 50 = 6,800."""
    eigen_mode: str = "ekfac"
    """ekfac: Λ = mean over documents of R² (Grosse et al.; the paper's text). kfac: λ_S ⊗ λ_A (the
    reference code). Chooses the top-k directions and the whitening."""
    damping: float = 0.1
    """ε: with damping_mode relative, ε_m = damping × mean eigenvalue of module m (kronfluence's
    heuristic, 0.1); with absolute, ε = damping (the reference: 1e-6)."""
    damping_mode: str = "relative"
    """relative | absolute (see damping)."""
    whiten: bool = True
    """Divide each kept coordinate by sqrt(eig + ε). False keeps raw rotated coordinates (ablation)."""
    device: str = "cpu"
    """Where the rotations run (float32, accumulated in float64): cpu | cuda | auto."""
    chunk_rows: int = 0
    """Rows per streamed block (0 = as many as fit in 128 MiB of float32)."""

    def __post_init__(self):
        self.settings()  # validates k, modes, damping
        if not (self.device in ("cpu", "auto") or self.device.startswith("cuda")):
            raise ValueError(f"device must be cpu, auto, cuda or cuda:N, got {self.device!r}")
        if self.chunk_rows < 0:
            raise ValueError(f"chunk_rows must be ≥ 0, got {self.chunk_rows}")

    def settings(self) -> ProjectionSettings:
        return ProjectionSettings(self.k, self.eigen_mode, self.whiten, self.damping, self.damping_mode)


class Eigenbasis:
    """Per-module eigendecompositions of the Kronecker factors (+ the EKFAC eigenvalues once computed)."""

    def __init__(
        self,
        layout: Layout,
        q_a: dict[str, torch.Tensor],
        lam_a: dict[str, torch.Tensor],
        q_s: dict[str, torch.Tensor],
        lam_s: dict[str, torch.Tensor],
        ekfac: dict[str, torch.Tensor] | None = None,
        cols_a: dict[str, torch.Tensor] | None = None,
        cols_s: dict[str, torch.Tensor] | None = None,
    ):
        self.layout = layout
        self.q_a, self.lam_a, self.q_s, self.lam_s = q_a, lam_a, q_s, lam_s  # (i,i), (i,), (o,o), (o,)
        self.ekfac = ekfac  # name → (o, i) mean R², or None until ekfac_eigenvalues
        # A reduced basis (:meth:`reduced`) keeps only some eigenvector columns, in float32: q_a[name] is
        # (i, c) and cols_a[name] (c,) says which columns of the full Q_A they are (ascending); same for S.
        self.cols_a, self.cols_s = cols_a, cols_s

    @property
    def full(self) -> bool:
        """True when every eigenvector column is held (fitted); False for a :meth:`reduced` basis."""
        return self.cols_a is None

    def require_full(self, what: str) -> None:
        if not self.full:
            raise ValueError(f"{what} needs the full eigenbasis, but this one keeps only the eigenvector columns of "
                             "its top-k directions (as eigen.safetensors stores it); fit it again with "
                             "fit_eigenbasis(reader.factors(), reader.layout)")

    def columns(self, name: str, js: torch.Tensor, ks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(Q_S[:, js] (o, p), Q_A[:, ks] (i, p)): the eigenvectors of directions (js[p], ks[p])."""
        if self.full:
            return self.q_s[name][:, js], self.q_a[name][:, ks]
        return (self.q_s[name][:, _positions(self.cols_s[name], js, name)],
                self.q_a[name][:, _positions(self.cols_a[name], ks, name)])

    def reduced(self, k: int, modes: tuple[str, ...] | None = None) -> Eigenbasis:
        """The same basis keeping only the float32 eigenvector columns that the top-``k`` directions of
        every mode in ``modes`` use (default: kfac, and ekfac once computed) — all that ``project`` and
        ``unproject`` of those settings need; eigenvalues are kept in full."""
        modes = modes or (("ekfac", "kfac") if self.ekfac is not None else ("kfac",))
        tops = [self.topk(k, mode) for mode in modes]
        q_a, q_s, cols_a, cols_s = {}, {}, {}, {}
        for m in self.layout:
            idx = torch.cat([t[m.name] for t in tops])
            js, ks = torch.unique(idx // m.shape[1]), torch.unique(idx % m.shape[1])  # sorted
            qs, qa = self.columns(m.name, js, ks)
            q_s[m.name], q_a[m.name] = qs.float().contiguous(), qa.float().contiguous()
            cols_s[m.name], cols_a[m.name] = js, ks
        return Eigenbasis(self.layout, q_a, self.lam_a, q_s, self.lam_s, self.ekfac, cols_a, cols_s)

    def eigenvalues(self, mode: str) -> dict[str, torch.Tensor]:
        """name → (o, i) float64 eigenvalue of each (j, k) direction."""
        if mode == "kfac":
            return {m.name: torch.outer(self.lam_s[m.name], self.lam_a[m.name]) for m in self.layout}
        if mode == "ekfac":
            if self.ekfac is None:
                raise ValueError("EKFAC eigenvalues not computed: call ekfac_eigenvalues(reader, basis) first, "
                                 "or use eigen_mode='kfac'")
            return dict(self.ekfac)
        raise ValueError(f"eigen_mode must be one of {EIGEN_MODES}, got {mode!r}")

    def topk(self, k: int, mode: str) -> dict[str, torch.Tensor]:
        """name → (k,) flat indices j·i + k of the k largest eigenvalues, largest first (ties: lower index)."""
        out = {}
        for name, eig in self.eigenvalues(mode).items():
            if k > eig.numel():
                raise ValueError(f"k={k} exceeds the {eig.numel()} directions of module {name}; lower ekfac.k")
            out[name] = torch.sort(-eig.reshape(-1), stable=True).indices[:k]
        return out

    def epsilon(self, mode: str, damping: float, damping_mode: str) -> dict[str, float]:
        """name → ε_m (see the module docstring)."""
        if damping_mode == "absolute":
            return {m.name: float(damping) for m in self.layout}
        return {name: float(damping * eig.mean()) for name, eig in self.eigenvalues(mode).items()}

    # ---- storage ----------------------------------------------------------------------------------
    def tensors(self) -> dict[str, torch.Tensor]:
        """<module>.Q_A/.Q_S/.lam_A/.lam_S and, once computed, .Lambda (float64)."""
        out = {}
        for m in self.layout:
            n = m.name
            out |= {f"{n}.Q_A": self.q_a[n], f"{n}.lam_A": self.lam_a[n], f"{n}.Q_S": self.q_s[n],
                    f"{n}.lam_S": self.lam_s[n]}
            if self.ekfac is not None:
                out[f"{n}.Lambda"] = self.ekfac[n]
            if not self.full:
                out |= {f"{n}.cols_A": self.cols_a[n], f"{n}.cols_S": self.cols_s[n]}
        return out

    def save(self, path: Path, metadata: dict[str, str] | None = None, extra: dict | None = None) -> None:
        """safetensors with :meth:`tensors` (+ ``extra``) and the layout in the metadata."""
        meta = {"layout": json.dumps(self.layout.to_json()), **(metadata or {})}
        save_safetensors(path, self.tensors() | (extra or {}), metadata=meta)

    @classmethod
    def load(cls, path: Path) -> Eigenbasis:
        from safetensors import safe_open

        path = require_final(path)
        with safe_open(str(path), framework="pt") as f:
            layout = Layout.from_json(json.loads(f.metadata()["layout"]))
            keys = set(f.keys())
            names = [m.name for m in layout]

            def get(kind: str) -> dict[str, torch.Tensor]:
                return {n: f.get_tensor(f"{n}.{kind}") for n in names}

            ekfac = get("Lambda") if f"{names[0]}.Lambda" in keys else None
            reduced = f"{names[0]}.cols_A" in keys
            return cls(layout, get("Q_A"), get("lam_A"), get("Q_S"), get("lam_S"), ekfac,
                       get("cols_A") if reduced else None, get("cols_S") if reduced else None)


def _positions(cols: torch.Tensor, want: torch.Tensor, name: str) -> torch.Tensor:
    """Where the original column indices ``want`` sit in the ascending kept columns ``cols``."""
    pos = torch.searchsorted(cols, want).clamp_max(max(len(cols) - 1, 0))
    if len(cols) == 0 or not bool((cols[pos] == want).all()):
        raise ValueError(f"module {name}: a direction outside the eigenvector columns this reduced basis keeps; "
                         "it serves only the k and eigen modes it was saved for (refit the full eigenbasis "
                         "with fit_eigenbasis for others)")
    return pos


# ---- fitting ---------------------------------------------------------------------------------------
def fit_eigenbasis(factors: Factors, layout: Layout, dtype: torch.dtype = torch.float64) -> Eigenbasis:
    """float64 eigendecomposition of A_m and S_m of every module (eigenvalues clamped at 0), eigenvectors
    kept in ``dtype`` (float32 halves the ~5 GB of Gemma-3 4B's; the eigenvalues stay float64).

    A factor equal to one already decomposed (q_proj's and v_proj's lora_A read the same layer input, so
    their A are identical) reuses that decomposition: at Gemma-3 4B's shapes a 2,560² eigh is ~5–10 s."""
    q_a, lam_a, q_s, lam_s = {}, {}, {}, {}
    done: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}  # (shape, sha256 of the values) → (λ, Q)

    def eigh(F: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key = (tuple(F.shape), hashlib.sha256(F.contiguous().numpy().tobytes()).hexdigest())  # not F: 3 GB at 4B
        if key in done:
            return done[key][0].clone(), done[key][1].clone()  # copies: safetensors refuses shared storage
        lam, q = torch.linalg.eigh((F + F.T) / 2)
        done[key] = (lam.clamp_min(0), q.to(dtype))
        return done[key]

    for m in layout:
        if m.name not in factors.A or m.name not in factors.S:
            raise ValueError(f"the factors have no module {m.name}; they were made for another model")
        o, i = m.shape
        A, S = factors.A[m.name].double(), factors.S[m.name].double()
        if A.shape != (i, i) or S.shape != (o, o):
            raise ValueError(f"factor shapes {tuple(A.shape)}, {tuple(S.shape)} do not fit module {m.name} {m.shape}")
        lam_a[m.name], q_a[m.name] = eigh(A)
        lam_s[m.name], q_s[m.name] = eigh(S)
    return Eigenbasis(layout, q_a, lam_a, q_s, lam_s)


def blocks(rows, chunk_rows: int | None) -> Iterator[tuple[int, np.ndarray | torch.Tensor]]:
    """(start, (n, D) block) over a gradient reader (anything with ``chunks``), a numpy array/memmap or
    a tensor."""
    if hasattr(rows, "chunks"):
        yield from rows.chunks(chunk_rows or None)
        return
    if rows.ndim != 2:
        raise ValueError(f"rows must be (N, D), got shape {tuple(rows.shape)}")
    c = chunk_rows or max(1, (128 * 2**20) // (4 * max(1, rows.shape[1])))
    for s in range(0, rows.shape[0], c):
        yield s, rows[s : s + c]


def as_float64(block, device: torch.device) -> torch.Tensor:
    t = block if isinstance(block, torch.Tensor) else torch.from_numpy(np.asarray(block))
    return t.to(device=device, dtype=torch.float64)


def n_rows(rows) -> int:
    return len(rows) if hasattr(rows, "chunks") else rows.shape[0]


def check_rows(rows, layout: Layout) -> None:
    """A gradient reader must have been written with ``layout`` (arrays are checked by width)."""
    if hasattr(rows, "chunks"):  # a gradient reader (a tensor's .layout is something else)
        layout.check_matches(rows.layout, what="gradients")


def check_width(G: torch.Tensor, layout: Layout) -> None:
    if G.shape[1] != layout.n_params:
        raise ValueError(f"rows have {G.shape[1]} columns but the eigenbasis' layout has D = {layout.n_params}")


def ekfac_eigenvalues(rows, basis: Eigenbasis, chunk_rows: int | None = None, device: str | None = "cpu") -> Eigenbasis:
    """Λ_m = mean over documents of R_m² (one streaming pass); sets and returns ``basis.ekfac``."""
    check_rows(rows, basis.layout)
    basis.require_full("ekfac_eigenvalues")
    dev = resolve_device(device)
    Q = {m.name: (basis.q_s[m.name].to(dev), basis.q_a[m.name].to(dev)) for m in basis.layout}
    sums = {m.name: torch.zeros(m.shape, dtype=torch.float64, device=dev) for m in basis.layout}
    n = 0
    for _, block in blocks(rows, chunk_rows):
        G = as_float64(block, dev)  # (c, D)
        check_width(G, basis.layout)
        for m in basis.layout:
            qs, qa = Q[m.name]
            R = qs.T @ G[:, m.offset : m.offset + m.size].reshape(-1, *m.shape) @ qa  # (c, o, i)
            sums[m.name] += (R * R).sum(0)
        n += G.shape[0]
    if n == 0:
        raise ValueError("no rows to compute EKFAC eigenvalues from")
    basis.ekfac = {k: (v / n).cpu() for k, v in sums.items()}
    return basis
