"""EKFAC eigenbasis, top-k projection and whitening (step 2 of METHOD.md), and the way back (§5).

Per module m, from the Kronecker factors of :mod:`gatoms.gradients` (A = E[a aᵀ], S = E[δ δᵀ]):

    A = Q_A diag(λ_A) Q_Aᵀ,  S = Q_S diag(λ_S) Q_Sᵀ       float64 eigh
    R_n = Q_Sᵀ G_n Q_A                                      (o, i) rotated gradient of document n
    eig[j,k] = Λ[j,k] = mean_n R_n[j,k]²                    eigen_mode "ekfac" (eigenvalue correction)
             = λ_S[j] · λ_A[k]                              eigen_mode "kfac"  (what the reference used)
    z_n,m = R_n[top-k (j,k) by eig] / sqrt(eig + ε_m)       whitening (whiten=True)
    z_n = concat_m z_n,m                                    (M·k,);   x_n = z_n / ‖z_n‖

Damping ε_m. Default: *relative*, ε_m = 0.1 × mean of module m's eigenvalues (kronfluence's
heuristic). Whitening divides each retained coordinate by its standard deviation, so every direction
counts equally in dictionary learning; ε keeps directions whose eigenvalue is ≈ 0 (numerically noisy)
from being blown up, and a relative ε is invariant to the overall scale of the loss and of each module.
The top-k directions have the module's largest eigenvalues, far above the mean, so ε barely changes
them. The reference's choice, an absolute ε = 1e-6, is ``damping_mode="absolute", damping=1e-6``.

:func:`unproject` maps a z-space vector (an atom) back to the flat D-dimensional LoRA vector: multiply by
sqrt(eig + ε) (undo the whitening), scatter into (o, i), v_m = Q_S U Q_Aᵀ — the exact inverse of the
projection on the retained subspace; ``preconditioned=True`` further applies (eig + ε)⁻¹ (divides by
sqrt(eig + ε) instead of multiplying), the natural-gradient direction.

Usage::

    basis = fit_eigenbasis(reader.factors(), reader.layout)
    basis = ekfac_eigenvalues(reader, basis)                     # one streaming pass over the rows
    basis.settings = ProjectionSettings(k=50)                    # recorded in eigen.safetensors
    Z = project(reader, basis)                                   # (N, M·k) float32
    v = unproject(Z[0], basis)                                   # (D,) in the flat LoRA order
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gatoms.gradients import Factors, GradientReader
from gatoms.layout import Layout
from gatoms.store import require_final, save_safetensors

log = logging.getLogger(__name__)

EIGEN_MODES = ("ekfac", "kfac")
DAMPING_MODES = ("relative", "absolute")


@dataclass
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
    """Where the float64 rotations run: cpu | cuda | auto."""
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
    """Per-module eigendecompositions of the Kronecker factors (+ optional EKFAC eigenvalues)."""

    def __init__(
        self,
        layout: Layout,
        q_a: dict[str, torch.Tensor],
        lam_a: dict[str, torch.Tensor],
        q_s: dict[str, torch.Tensor],
        lam_s: dict[str, torch.Tensor],
        ekfac: dict[str, torch.Tensor] | None = None,
        settings: ProjectionSettings | None = None,
    ):
        self.layout = layout
        self.q_a, self.lam_a, self.q_s, self.lam_s = q_a, lam_a, q_s, lam_s  # (i,i), (i,), (o,o), (o,)
        self.ekfac = ekfac  # name → (o, i) mean R², or None until ekfac_eigenvalues
        self.settings = settings or ProjectionSettings()

    # ---- eigenvalues and directions ---------------------------------------------------------------
    def eigenvalues(self, mode: str | None = None) -> dict[str, torch.Tensor]:
        """name → (o, i) float64 eigenvalue of each (j, k) direction."""
        mode = mode or self.settings.eigen_mode
        if mode == "kfac":
            return {m.name: torch.outer(self.lam_s[m.name], self.lam_a[m.name]) for m in self.layout}
        if mode == "ekfac":
            if self.ekfac is None:
                raise ValueError("EKFAC eigenvalues not computed: call ekfac_eigenvalues(reader, basis) first, or use eigen_mode='kfac'")
            return dict(self.ekfac)
        raise ValueError(f"eigen_mode must be one of {EIGEN_MODES}, got {mode!r}")

    def topk(self, k: int | None = None, mode: str | None = None) -> dict[str, torch.Tensor]:
        """name → (k,) flat indices j·i + k of the k largest eigenvalues, largest first (ties: lower index)."""
        k = k or self.settings.k
        out = {}
        for name, eig in self.eigenvalues(mode).items():
            if k > eig.numel():
                raise ValueError(f"k={k} exceeds the {eig.numel()} directions of module {name}; lower ekfac.k")
            out[name] = torch.sort(-eig.reshape(-1), stable=True).indices[:k]
        return out

    def epsilon(self, mode: str | None = None, damping: float | None = None, damping_mode: str | None = None) -> dict[str, float]:
        """name → ε_m (see the module docstring)."""
        damping = self.settings.damping if damping is None else damping
        damping_mode = damping_mode or self.settings.damping_mode
        if damping_mode == "absolute":
            return {m.name: float(damping) for m in self.layout}
        return {name: float(damping * eig.mean()) for name, eig in self.eigenvalues(mode).items()}

    # ---- storage ----------------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """safetensors: <module>.Q_A/.Q_S/.lam_A/.lam_S/.Lambda (float64) and .topk (int64, for the
        recorded settings); metadata: layout and settings as JSON."""
        tensors = {}
        top = self.topk() if (self.settings.eigen_mode == "kfac" or self.ekfac is not None) else {}
        for m in self.layout:
            n = m.name
            tensors |= {f"{n}.Q_A": self.q_a[n], f"{n}.lam_A": self.lam_a[n], f"{n}.Q_S": self.q_s[n], f"{n}.lam_S": self.lam_s[n]}
            if self.ekfac is not None:
                tensors[f"{n}.Lambda"] = self.ekfac[n]
            if n in top:
                tensors[f"{n}.topk"] = top[n]
        meta = {"layout": json.dumps(self.layout.to_json()), "settings": json.dumps(dataclasses.asdict(self.settings))}
        save_safetensors(path, tensors, metadata=meta)

    @classmethod
    def load(cls, path: Path) -> Eigenbasis:
        from safetensors import safe_open

        path = require_final(path)
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
            layout = Layout.from_json(json.loads(meta["layout"]))
            settings = ProjectionSettings(**json.loads(meta["settings"]))
            keys = set(f.keys())
            get = lambda n, s: f.get_tensor(f"{n}.{s}")  # noqa: E731
            names = [m.name for m in layout]
            basis = cls(
                layout,
                {n: get(n, "Q_A") for n in names}, {n: get(n, "lam_A") for n in names},
                {n: get(n, "Q_S") for n in names}, {n: get(n, "lam_S") for n in names},
                {n: get(n, "Lambda") for n in names} if f"{names[0]}.Lambda" in keys else None,
                settings,
            )
        return basis

    def resolve(self, **overrides) -> ProjectionSettings:
        """The recorded settings with the non-None overrides applied (validated)."""
        return dataclasses.replace(self.settings, **{k: v for k, v in overrides.items() if v is not None})


# ---- fitting ---------------------------------------------------------------------------------------
def fit_eigenbasis(factors: Factors, layout: Layout) -> Eigenbasis:
    """float64 eigendecomposition of A_m and S_m of every module (eigenvalues clamped at 0)."""
    q_a, lam_a, q_s, lam_s = {}, {}, {}, {}
    for m in layout:
        if m.name not in factors.A or m.name not in factors.S:
            raise ValueError(f"the factors have no module {m.name}; they were made for another model")
        o, i = m.shape
        A, S = factors.A[m.name].double(), factors.S[m.name].double()
        if A.shape != (i, i) or S.shape != (o, o):
            raise ValueError(f"factor shapes {tuple(A.shape)}, {tuple(S.shape)} do not fit module {m.name} {m.shape}")
        la, qa = torch.linalg.eigh((A + A.T) / 2)
        ls, qs = torch.linalg.eigh((S + S.T) / 2)
        q_a[m.name], lam_a[m.name] = qa, la.clamp_min(0)
        q_s[m.name], lam_s[m.name] = qs, ls.clamp_min(0)
    return Eigenbasis(layout, q_a, lam_a, q_s, lam_s)


def _device(spec: str | None) -> torch.device:
    if spec in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(spec)


def _blocks(rows, chunk_rows: int | None) -> Iterator[tuple[int, np.ndarray | torch.Tensor]]:
    """(start, (n, D) block) over a GradientReader, a numpy array/memmap or a tensor."""
    if isinstance(rows, GradientReader):
        yield from rows.chunks(chunk_rows or None)
        return
    if rows.ndim != 2:
        raise ValueError(f"rows must be (N, D), got shape {tuple(rows.shape)}")
    c = chunk_rows or max(1, (128 * 2**20) // (4 * max(1, rows.shape[1])))
    for s in range(0, rows.shape[0], c):
        yield s, rows[s : s + c]


def _as_tensor(block, device) -> torch.Tensor:
    t = block if isinstance(block, torch.Tensor) else torch.from_numpy(np.asarray(block))
    return t.to(device=device, dtype=torch.float64)


def _layout_of(rows) -> Layout | None:
    return rows.layout if isinstance(rows, GradientReader) else None


def ekfac_eigenvalues(rows, basis: Eigenbasis, chunk_rows: int | None = None, device: str | None = "cpu") -> Eigenbasis:
    """Λ_m = mean over documents of R_m² (one streaming pass); sets and returns ``basis.ekfac``."""
    layout = _layout_of(rows)
    if layout is not None:
        basis.layout.check_matches(layout, what="gradients")
    dev = _device(device)
    Q = {m.name: (basis.q_s[m.name].to(dev), basis.q_a[m.name].to(dev)) for m in basis.layout}
    sums = {m.name: torch.zeros(m.shape, dtype=torch.float64, device=dev) for m in basis.layout}
    n = 0
    for _, block in _blocks(rows, chunk_rows):
        G = _as_tensor(block, dev)  # (c, D)
        _check_width(G, basis.layout)
        for m in basis.layout:
            qs, qa = Q[m.name]
            R = qs.T @ G[:, m.offset : m.offset + m.size].reshape(-1, *m.shape) @ qa  # (c, o, i)
            sums[m.name] += (R * R).sum(0)
        n += G.shape[0]
    if n == 0:
        raise ValueError("no rows to compute EKFAC eigenvalues from")
    basis.ekfac = {k: (v / n).cpu() for k, v in sums.items()}
    return basis


def _check_width(G: torch.Tensor, layout: Layout) -> None:
    if G.shape[1] != layout.n_params:
        raise ValueError(f"rows have {G.shape[1]} columns but the eigenbasis' layout has D = {layout.n_params}")


# ---- projection ------------------------------------------------------------------------------------
class _Selection:
    """The retained directions of every module under some settings: columns of Q_S/Q_A and scales."""

    def __init__(self, basis: Eigenbasis, s: ProjectionSettings, device: torch.device):
        eig = basis.eigenvalues(s.eigen_mode)
        eps = basis.epsilon(s.eigen_mode, s.damping, s.damping_mode)
        top = basis.topk(s.k, s.eigen_mode)
        self.parts = []
        for m in basis.layout:
            idx = top[m.name]
            js, ks = idx // m.shape[1], idx % m.shape[1]
            e = eig[m.name].reshape(-1)[idx] + eps[m.name]
            if s.whiten and bool((e <= 0).any()):
                raise ValueError(f"module {m.name}: eig + ε ≤ 0 for a kept direction; use a positive damping")
            scale = e.rsqrt() if s.whiten else torch.ones_like(e)  # z = R[top] · scale
            self.parts.append((m, basis.q_s[m.name][:, js].to(device), basis.q_a[m.name][:, ks].to(device),
                               scale.to(device), e.to(device)))
        self.k = s.k


def _pairs(G: torch.Tensor, qs: torch.Tensor, qa: torch.Tensor) -> torch.Tensor:
    """R[j_p, k_p] = q_S[:, j_p]ᵀ G q_A[:, k_p] for each kept pair p. G (c, o, i), qs (o, k), qa (i, k) → (c, k).

    Contracts the larger side with a matmul first (an einsum over all three is several times slower)."""
    if G.shape[1] <= G.shape[2]:
        return ((G @ qa) * qs).sum(1)  # (c, o, k) → (c, k)
    return ((qs.T @ G) * qa.T).sum(2)  # (c, k, i) → (c, k)


def project(
    rows,
    basis: Eigenbasis,
    k: int | None = None,
    eigen_mode: str | None = None,
    whiten: bool | None = None,
    damping: float | None = None,
    damping_mode: str | None = None,
    chunk_rows: int | None = None,
    device: str | None = "cpu",
    return_energy: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Z (N, M·k) float32: per module the top-k rotated coordinates, whitened, concatenated.

    ``rows`` is a :class:`GradientReader` or an (N, D) array/tensor; streamed in chunks. Unset
    arguments take ``basis.settings``. Within a module, coordinates are ordered by decreasing eigenvalue.
    With ``return_energy``, also the (N,) fraction of each row's ‖g‖² kept by the (unwhitened) top-k.
    """
    s = basis.resolve(k=k, eigen_mode=eigen_mode, whiten=whiten, damping=damping, damping_mode=damping_mode)
    layout = _layout_of(rows)
    if layout is not None:
        basis.layout.check_matches(layout, what="gradients")
    dev = _device(device)
    sel = _Selection(basis, s, dev)
    N = rows.shape[0] if not isinstance(rows, GradientReader) else len(rows)
    Z = np.zeros((N, len(basis.layout) * s.k), dtype=np.float32)
    energy = np.zeros(N, dtype=np.float64)
    for start, block in _blocks(rows, chunk_rows):
        G = _as_tensor(block, dev)  # (c, D)
        _check_width(G, basis.layout)
        kept = torch.zeros(G.shape[0], dtype=torch.float64, device=dev)
        for mi, (m, qs, qa, scale, _) in enumerate(sel.parts):
            Gm = G[:, m.offset : m.offset + m.size].reshape(-1, *m.shape)  # (c, o, i)
            r = _pairs(Gm, qs, qa)  # (c, k)
            kept += (r * r).sum(1)
            Z[start : start + G.shape[0], mi * s.k : (mi + 1) * s.k] = (r * scale).cpu().numpy()
        total = (G * G).sum(1)
        energy[start : start + G.shape[0]] = (kept / total).cpu().numpy()
    return (Z, energy) if return_energy else Z


def normalize_rows(Z: np.ndarray, doc_ids: list[str] | None = None) -> np.ndarray:
    """X = Z / ‖Z‖ row-wise (float32). A zero row cannot be normalised: error naming the document."""
    norms = np.linalg.norm(Z.astype(np.float64), axis=1, keepdims=True)
    zero = np.flatnonzero(norms[:, 0] == 0)
    if zero.size:
        names = [doc_ids[i] for i in zero[:5]] if doc_ids else zero[:5].tolist()
        raise ValueError(f"{zero.size} projected row(s) are zero and cannot be normalised: {names}")
    return (Z / norms).astype(np.float32)


def unproject(
    z,
    basis: Eigenbasis,
    preconditioned: bool = False,
    k: int | None = None,
    eigen_mode: str | None = None,
    whiten: bool | None = None,
    damping: float | None = None,
    damping_mode: str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """A z-space vector (M·k,) — or a batch (n, M·k) — back to the flat LoRA order: (D,) or (n, D).

    Exact inverse of :func:`project` on the retained subspace: U[top-k] = z / scale (i.e. × sqrt(eig + ε)
    when whitened), v_m = Q_S U Q_Aᵀ. ``preconditioned=True`` additionally divides by (eig + ε): the
    natural-gradient direction (for whitened z: divide by sqrt(eig + ε) instead of multiplying).
    """
    s = basis.resolve(k=k, eigen_mode=eigen_mode, whiten=whiten, damping=damping, damping_mode=damping_mode)
    sel = _Selection(basis, s, torch.device("cpu"))
    zt = torch.as_tensor(np.asarray(z) if not isinstance(z, torch.Tensor) else z).to(torch.float64)
    single = zt.ndim == 1
    zt = zt.reshape(1, -1) if single else zt
    M = len(basis.layout)
    if zt.shape[1] != M * s.k:
        raise ValueError(f"z has length {zt.shape[1]}, expected M·k = {M}·{s.k} = {M * s.k}")
    out = torch.zeros(zt.shape[0], basis.layout.n_params, dtype=torch.float64)
    for mi, (m, qs, qa, scale, e) in enumerate(sel.parts):
        u = zt[:, mi * s.k : (mi + 1) * s.k] / scale  # (n, k) rotated coordinates R[top]
        if preconditioned:
            u = u / e
        v = torch.einsum("op,np,ip->noi", qs, u, qa)  # (n, o, i) = Q_S U Q_Aᵀ
        out[:, m.offset : m.offset + m.size] = v.reshape(zt.shape[0], -1)
    out = out.to(dtype)
    return out[0] if single else out


def energy_curve(rows, basis: Eigenbasis, ks: list[int], eigen_mode: str | None = None,
                 chunk_rows: int | None = None, device: str | None = "cpu") -> np.ndarray:
    """(N, len(ks)) fraction of each row's ‖g‖² kept by the top-k directions of every module, per k."""
    mode = eigen_mode or basis.settings.eigen_mode
    return energy_curves(rows, basis, ks, (mode,), chunk_rows, device)[mode]


def energy_curves(rows, basis: Eigenbasis, ks: list[int], modes: tuple[str, ...] = EIGEN_MODES,
                  chunk_rows: int | None = None, device: str | None = "cpu") -> dict[str, np.ndarray]:
    """:func:`energy_curve` for several eigenvalue modes' choices of directions, in one pass over the rows."""
    orders = {mode: basis.topk(max(ks), mode) for mode in modes}
    dev = _device(device)
    N = rows.shape[0] if not isinstance(rows, GradientReader) else len(rows)
    out = {mode: np.zeros((N, len(ks))) for mode in modes}
    cols = [kk - 1 for kk in ks]
    for start, block in _blocks(rows, chunk_rows):
        G = _as_tensor(block, dev)
        _check_width(G, basis.layout)
        kept = {mode: torch.zeros(G.shape[0], len(ks), dtype=torch.float64, device=dev) for mode in modes}
        for m in basis.layout:
            R = basis.q_s[m.name].to(dev).T @ G[:, m.offset : m.offset + m.size].reshape(-1, *m.shape) @ basis.q_a[m.name].to(dev)
            R2 = R.reshape(R.shape[0], -1) ** 2  # (c, o·i)
            for mode in modes:
                kept[mode] += R2[:, orders[mode][m.name].to(dev)].cumsum(1)[:, cols]
        total = (G * G).sum(1, keepdim=True)
        for mode in modes:
            out[mode][start : start + G.shape[0]] = (kept[mode] / total).cpu().numpy()
    return out
