"""Top-k projection and whitening (paper §3.2, Eq. 1), and the way back to LoRA directions (§3.5).

With an :class:`~gatoms.method.ekfac.eigenbasis.Eigenbasis` and :class:`ProjectionSettings`:

    z_n,m = R_n[top-k (j,k) by eig] / sqrt(eig + ε_m)       whitening (whiten=True)
    z_n = concat_m z_n,m                                    (M·k,);   x_n = z_n / ‖z_n‖

:meth:`Projection.unproject` maps a z-space vector (an atom) back to the flat D-dimensional LoRA vector:
multiply by sqrt(eig + ε) (undo the whitening), scatter into (o, i), v_m = Q_S U Q_Aᵀ — the exact inverse
of the projection on the retained subspace; ``preconditioned=True`` further applies (eig + ε)⁻¹ (divides
by sqrt(eig + ε) instead of multiplying), the natural-gradient direction.

Usage::

    proj = Projection(basis, ProjectionSettings(k=50))
    Z = proj.project(reader)                                     # (N, M·k) float32
    proj.save(store.path(paths.EIGEN))                           # the basis and the settings
    v = Projection.load(path).unproject(Z[0])                    # (D,) in the flat LoRA order
    raw = proj.with_settings(whiten=False).project(reader)       # an ablation: same basis, other settings
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from gatoms.build.metrics import StepMetrics
from gatoms.build.store import require_final
from gatoms.lm.layout import Layout
from gatoms.lm.model import resolve_device
from gatoms.method.ekfac.eigenbasis import (EIGEN_MODES, Eigenbasis, ProjectionSettings, as_float64, blocks,
                                            check_rows, check_width, n_rows)


class Projection:
    """An eigenbasis with one choice of settings: which directions are kept and how they are scaled."""

    def __init__(self, basis: Eigenbasis, settings: ProjectionSettings | None = None):
        self.basis = basis
        self.settings = settings or ProjectionSettings()
        s = self.settings
        eig = basis.eigenvalues(s.eigen_mode)
        eps = basis.epsilon(s.eigen_mode, s.damping, s.damping_mode)
        self.top = basis.topk(s.k, s.eigen_mode)
        self.parts: list[tuple] = []  # per module: (spec, q_S[:, js] (o, k), q_A[:, ks] (i, k), scale (k,), eig + ε (k,))
        for m in basis.layout:
            idx = self.top[m.name]
            js, ks = idx // m.shape[1], idx % m.shape[1]
            e = eig[m.name].reshape(-1)[idx] + eps[m.name]
            if s.whiten and bool((e <= 0).any()):
                raise ValueError(f"module {m.name}: eig + ε ≤ 0 for a kept direction; use a positive damping")
            scale = e.rsqrt() if s.whiten else torch.ones_like(e)  # z = R[top] · scale
            qs, qa = basis.columns(m.name, js, ks)
            self.parts.append((m, qs.double(), qa.double(), scale, e))

    @property
    def layout(self) -> Layout:
        return self.basis.layout

    @property
    def dim(self) -> int:
        """M·k, the length of a projected row."""
        return len(self.layout) * self.settings.k

    def with_settings(self, **changes) -> Projection:
        """The same eigenbasis under other settings (``dataclasses.replace`` of these ones)."""
        return Projection(self.basis, dataclasses.replace(self.settings, **changes))

    # ---- storage ----------------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """``eigen.safetensors``: the eigenbasis reduced to the float32 eigenvector columns that the top-k
        directions of both eigen modes use (:meth:`Eigenbasis.reduced`), the settings (metadata) and the
        kept indices (.topk)."""
        self.basis.reduced(self.settings.k).save(path, metadata={"settings": json.dumps(dataclasses.asdict(self.settings))},
                        extra={f"{n}.topk": t for n, t in self.top.items()})

    @classmethod
    def load(cls, path: Path) -> Projection:
        """The projection step 02 recorded (its eigenbasis and settings)."""
        from safetensors import safe_open

        with safe_open(str(require_final(path)), framework="pt") as f:
            settings = ProjectionSettings(**json.loads(f.metadata()["settings"]))
        return cls(Eigenbasis.load(path), settings)

    # ---- the two directions -----------------------------------------------------------------------
    def project(self, rows, chunk_rows: int | None = None, device: str | None = "cpu",
                return_energy: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Z (N, M·k) float32: per module the top-k rotated coordinates, scaled, concatenated.

        ``rows`` is a gradient reader or an (N, D) array/tensor; streamed in chunks. Within a module,
        coordinates are ordered by decreasing eigenvalue. With ``return_energy``, also the (N,) fraction
        of each row's ‖g‖² kept by the (unwhitened) top-k.
        """
        check_rows(rows, self.layout)
        dev = resolve_device(device)
        parts = [(m, qs.to(dev), qa.to(dev), scale.to(dev)) for m, qs, qa, scale, _ in self.parts]
        k = self.settings.k
        N = n_rows(rows)
        Z = np.zeros((N, self.dim), dtype=np.float32)
        energy = np.zeros(N, dtype=np.float64)
        for start, block in blocks(rows, chunk_rows):
            G = as_float64(block, dev)  # (c, D)
            check_width(G, self.layout)
            kept = torch.zeros(G.shape[0], dtype=torch.float64, device=dev)
            for mi, (m, qs, qa, scale) in enumerate(parts):
                r = _pairs(G[:, m.offset : m.offset + m.size].reshape(-1, *m.shape), qs, qa)  # (c, k)
                kept += (r * r).sum(1)
                Z[start : start + G.shape[0], mi * k : (mi + 1) * k] = (r * scale).cpu().numpy()
            energy[start : start + G.shape[0]] = (kept / (G * G).sum(1)).cpu().numpy()
        return (Z, energy) if return_energy else Z

    def unproject(self, z, preconditioned: bool = False, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """A z-space vector (M·k,) — or a batch (n, M·k) — back to the flat LoRA order: (D,) or (n, D).

        Exact inverse of :meth:`project` on the retained subspace: U[top-k] = z / scale (× sqrt(eig + ε)
        when whitened), v_m = Q_S U Q_Aᵀ. ``preconditioned=True`` additionally divides by (eig + ε): the
        natural-gradient direction (for whitened z: divide by sqrt(eig + ε) instead of multiplying).
        """
        zt = torch.as_tensor(np.asarray(z) if not isinstance(z, torch.Tensor) else z).to(torch.float64)
        single = zt.ndim == 1
        zt = zt.reshape(1, -1) if single else zt
        k = self.settings.k
        if zt.shape[1] != self.dim:
            raise ValueError(f"z has length {zt.shape[1]}, expected M·k = {len(self.layout)}·{k} = {self.dim}")
        out = torch.zeros(zt.shape[0], self.layout.n_params, dtype=torch.float64)
        for mi, (m, qs, qa, scale, e) in enumerate(self.parts):
            u = zt[:, mi * k : (mi + 1) * k] / scale  # (n, k) rotated coordinates R[top]
            if preconditioned:
                u = u / e
            v = torch.einsum("op,np,ip->noi", qs, u, qa)  # (n, o, i) = Q_S U Q_Aᵀ
            out[:, m.offset : m.offset + m.size] = v.reshape(zt.shape[0], -1)
        out = out.to(dtype)
        return out[0] if single else out


def _pairs(G: torch.Tensor, qs: torch.Tensor, qa: torch.Tensor) -> torch.Tensor:
    """R[j_p, k_p] = q_S[:, j_p]ᵀ G q_A[:, k_p] for each kept pair p. G (c, o, i), qs (o, k), qa (i, k) → (c, k).

    Contracts the larger side with a matmul first (an einsum over all three is several times slower)."""
    if G.shape[1] <= G.shape[2]:
        return ((G @ qa) * qs).sum(1)  # (c, o, k) → (c, k)
    return ((qs.T @ G) * qa.T).sum(2)  # (c, k, i) → (c, k)


def normalize_rows(Z: np.ndarray, doc_ids: list[str] | None = None) -> np.ndarray:
    """X = Z / ‖Z‖ row-wise (float32). A zero row cannot be normalised: error naming the document."""
    norms = np.linalg.norm(Z.astype(np.float64), axis=1, keepdims=True)
    zero = np.flatnonzero(norms[:, 0] == 0)
    if zero.size:
        names = [doc_ids[i] for i in zero[:5]] if doc_ids else zero[:5].tolist()
        raise ValueError(f"{zero.size} projected row(s) are zero and cannot be normalised: {names}")
    return (Z / norms).astype(np.float32)


def energy_curves(rows, basis: Eigenbasis, ks: list[int], modes: tuple[str, ...] = EIGEN_MODES,
                  chunk_rows: int | None = None, device: str | None = "cpu") -> dict[str, np.ndarray]:
    """mode → (N, len(ks)) fraction of each row's ‖g‖² kept by the top-k directions of every module (by
    that mode's eigenvalues), per k, in one pass over the rows."""
    basis.require_full("energy_curves")
    orders = {mode: basis.topk(max(ks), mode) for mode in modes}
    dev = resolve_device(device)
    N = n_rows(rows)
    out = {mode: np.zeros((N, len(ks))) for mode in modes}
    cols = [kk - 1 for kk in ks]
    for start, block in blocks(rows, chunk_rows):
        G = as_float64(block, dev)
        check_width(G, basis.layout)
        kept = {mode: torch.zeros(G.shape[0], len(ks), dtype=torch.float64, device=dev) for mode in modes}
        for m in basis.layout:
            Gm = G[:, m.offset : m.offset + m.size].reshape(-1, *m.shape)
            R = basis.q_s[m.name].to(dev).T @ Gm @ basis.q_a[m.name].to(dev)
            R2 = R.reshape(R.shape[0], -1) ** 2  # (c, o·i)
            for mode in modes:
                kept[mode] += R2[:, orders[mode][m.name].to(dev)].cumsum(1)[:, cols]
        total = (G * G).sum(1, keepdim=True)
        for mode in modes:
            out[mode][start : start + G.shape[0]] = (kept[mode] / total).cpu().numpy()
    return out


# ---- what step 02 records ---------------------------------------------------------------------------
@dataclass
class EkfacMetrics(StepMetrics):
    """Step 02's ``metrics.json``."""

    step: ClassVar[str] = "02_ekfac"
    k: int = 0
    """Directions kept per module."""
    projected_dim: int = 0
    """M·k, the width of Z and X."""
    eigen_mode: str = "ekfac"
    fisher: str = "empirical"
    energy_kept: float = 0.0
    """Mean over documents of the fraction of ‖g‖² in the kept directions (the recorded eigen_mode's)."""
    energy_kept_kfac_choice: float = 0.0
    """The same with the directions KFAC eigenvalues would keep."""
    topk_overlap_ekfac_kfac: float = 0.0
    """Mean over modules of the share of the top-k directions EKFAC and KFAC choose alike."""
    whiten: bool = True
    damping: float = 0.1
    damping_mode: str = "relative"
    n_docs: int = 0
    n_modules: int = 0


def topk_overlap(basis: Eigenbasis, k: int) -> float:
    """Mean over modules of |top-k by EKFAC ∩ top-k by KFAC| / k."""
    top = {mode: basis.topk(k, mode) for mode in EIGEN_MODES}
    return float(np.mean([len(set(top["ekfac"][m.name].tolist()) & set(top["kfac"][m.name].tolist())) / k
                          for m in basis.layout]))


def summarize(proj: Projection, energy: np.ndarray, energy_at_k: dict[str, float], fisher: str) -> EkfacMetrics:
    """Step 02's metrics: ``energy`` (N,) kept per document, ``energy_at_k`` mode → its mean at k."""
    s = proj.settings
    return EkfacMetrics(k=s.k, projected_dim=proj.dim, eigen_mode=s.eigen_mode, fisher=fisher,
                        energy_kept=round(float(energy.mean()), 4),
                        energy_kept_kfac_choice=round(energy_at_k["kfac"], 4),
                        topk_overlap_ekfac_kfac=round(topk_overlap(proj.basis, s.k), 4), whiten=s.whiten,
                        damping=s.damping, damping_mode=s.damping_mode, n_docs=len(energy),
                        n_modules=len(proj.layout))
