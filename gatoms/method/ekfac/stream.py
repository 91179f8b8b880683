"""Step 02 at scale: the EKFAC eigenvalues, the projection and the energy curves in the fewest passes.

:func:`fit_projection` gives what ``ekfac_eigenvalues`` + ``energy_curves`` + ``Projection.project``
(twice, whitened and raw) give, reading the rows once or twice instead of four times:

    pass 1   full rotation R = Q_Sᵀ G Q_A of every row (float32, one matrix product per module for the
             whole chunk): Λ += R², the KFAC-order energy curve (its order is known before any row),
             and, for eigen_mode kfac, Z itself — one pass does it all
    pass 2   (eigen_mode ekfac: the top-k needs Λ of every row first) only the kept coordinates and those
             of the EKFAC-order energy curve, from the eigenvector columns they use: Z and the energy

The raw (unwhitened) Z is Z / scale, no pass of its own. The next chunk is read by a background thread
while this one is rotated, so reading and arithmetic overlap. The float64 functions of
:mod:`.eigenbasis` and :mod:`.projection` are the reference these are tested against (``tests/method``).

Usage::

    fit = fit_projection(reader, fit_eigenbasis(reader.factors(), reader.layout), settings, ks=[1, 10, 50])
    fit.Z, fit.energy, fit.curves["ekfac"], fit.projection.save(path)
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from gatoms.lm.model import resolve_device
from gatoms.method.ekfac.eigenbasis import Eigenbasis, ProjectionSettings, blocks, check_rows, check_width, n_rows
from gatoms.method.ekfac.projection import Projection


@dataclass
class ProjectionFit:
    """What :func:`fit_projection` returns."""

    projection: Projection
    """The eigenbasis (with Λ) under the settings asked for."""
    Z: np.ndarray
    """(N, M·k) float32 whitened (or not, per the settings) projection."""
    energy: np.ndarray
    """(N,) fraction of each row's ‖g‖² in the kept directions."""
    curves: dict[str, np.ndarray]
    """mode → (N, len(ks)) fraction of ‖g‖² kept by the top-k of each k in ``ks`` (that mode's order)."""
    passes: int = 0
    """Passes over the rows (1 or 2)."""
    seconds: list[float] = field(default_factory=list)
    """Wall time of each pass."""

    @property
    def Z_raw(self) -> np.ndarray:
        """The unwhitened rotated coordinates R[top-k] (N, M·k) float32."""
        scale = np.concatenate([p[3].numpy() for p in self.projection.parts])
        return (self.Z / scale.astype(np.float32)).astype(np.float32)


def fit_projection(rows, basis: Eigenbasis, settings: ProjectionSettings, ks: Sequence[int] = (),
                   modes: Sequence[str] = ("ekfac", "kfac"), chunk_rows: int | None = None,
                   device: str | None = "cpu") -> ProjectionFit:
    """Λ (set on ``basis``), Z, per-row energy and energy curves of ``rows`` in one or two passes.

    ``rows``: a gradient reader or an (N, D) array; ``basis``: a full eigenbasis (``fit_eigenbasis``);
    ``ks``: the k of the energy curves of each mode in ``modes`` (none: no curves). ``basis`` gets its
    EKFAC eigenvalues and, when a second pass runs, keeps afterwards only the eigenvector columns that
    the top-k directions of both modes use (:meth:`Eigenbasis.reduced`; ~2.5 GB freed at Gemma-3 4B)."""
    check_rows(rows, basis.layout)
    basis.require_full("fit_projection")
    dev = resolve_device(device)
    ks, N = list(ks), n_rows(rows)
    want = {"kfac": "kfac" in modes and bool(ks), "ekfac": "ekfac" in modes and bool(ks)}
    kfac_top = basis.topk(max([settings.k, *ks]), "kfac")
    if ks and max(ks) > min(m.size for m in basis.layout):
        raise ValueError(f"energy curve k = {max(ks)} exceeds the smallest module's {min(m.size for m in basis.layout)} directions")
    curves = {mode: np.zeros((N, len(ks))) for mode in modes if ks}
    norms = np.zeros(N)
    t0 = time.perf_counter()
    one_pass = settings.eigen_mode == "kfac"
    proj = Projection(basis, settings) if one_pass else None
    Z = np.zeros((N, len(basis.layout) * settings.k), dtype=np.float32)
    energy = np.zeros(N)
    sums = {m.name: torch.zeros(m.shape, dtype=torch.float64) for m in basis.layout}
    Q = {m.name: (basis.q_s[m.name].to(dev, torch.float32), basis.q_a[m.name].to(dev, torch.float32))
         for m in basis.layout}
    for start, G in _prefetched(rows, chunk_rows, dev, basis.layout):
        sl = slice(start, start + G.shape[0])
        norms[sl] = (G.double() ** 2).sum(1).cpu().numpy()
        kept_k = torch.zeros(G.shape[0], len(ks), dtype=torch.float64, device=dev)
        for mi, m in enumerate(basis.layout):
            R = _rotate(G[:, m.offset: m.offset + m.size].reshape(-1, *m.shape), *Q[m.name]).reshape(G.shape[0], -1)
            R2 = R * R  # (c, o·i)
            sums[m.name] += R2.sum(0).double().reshape(m.shape).cpu()
            if want["kfac"]:
                kept_k += R2[:, kfac_top[m.name].to(dev)].double().cumsum(1)[:, [k - 1 for k in ks]]
            if one_pass:
                top = proj.top[m.name].to(dev)
                r = R[:, top].double()
                energy[sl] += (r * r).sum(1).cpu().numpy()
                Z[sl, mi * settings.k:(mi + 1) * settings.k] = (r * proj.parts[mi][3].to(dev)).cpu().numpy()
        if want["kfac"]:
            curves["kfac"][sl] = kept_k.cpu().numpy()
    if N == 0:
        raise ValueError("no rows to compute EKFAC eigenvalues from")
    basis.ekfac = {k: v / N for k, v in sums.items()}
    del Q
    seconds = [time.perf_counter() - t0]
    if not one_pass or want["ekfac"]:
        proj = proj or Projection(basis, settings)
        e_curve = _second_pass(rows, proj, ks if want["ekfac"] else [], chunk_rows, dev, Z, energy, one_pass)
        if want["ekfac"]:
            curves["ekfac"] = e_curve
        seconds.append(time.perf_counter() - t0 - seconds[0])
    safe = np.where(norms > 0, norms, 1.0)
    for mode in curves:
        curves[mode] = curves[mode] / safe[:, None]
    return ProjectionFit(proj, Z, energy / safe, curves, len(seconds), seconds)


def _second_pass(rows, proj: Projection, ks: list[int], chunk_rows: int | None, dev: torch.device,
                 Z: np.ndarray, energy: np.ndarray, have_z: bool) -> np.ndarray:
    """The kept coordinates (into Z and energy, unless ``have_z``) and the EKFAC-order energy curve."""
    basis, k = proj.basis, proj.settings.k
    order = basis.topk(max([k, *ks]), "ekfac") if ks else proj.top
    reduced, sel = basis.reduced(k), []
    for m in basis.layout:  # gather what pass 2 needs, then free the module's full eigenvectors at once
        sel.append(_pair_groups(m, basis, order[m.name] if ks else proj.top[m.name], dev))
        basis.q_a[m.name], basis.q_s[m.name] = reduced.q_a[m.name], reduced.q_s[m.name]
    basis.cols_a, basis.cols_s = reduced.cols_a, reduced.cols_s  # now the reduced basis throughout
    curve = np.zeros((Z.shape[0], len(ks)))
    pick = [kk - 1 for kk in ks]
    for start, G in _prefetched(rows, chunk_rows, dev, basis.layout):
        sl = slice(start, start + G.shape[0])
        kept = torch.zeros(G.shape[0], len(ks), dtype=torch.float64, device=dev)
        for mi, (m, q_small, by_a, groups, n_pairs) in enumerate(sel):
            Gm = G[:, m.offset: m.offset + m.size].reshape(-1, *m.shape)
            # the small side rotated: Q_Sᵀ G (c, o, i), or (G Q_A)ᵀ (c, i, o); rows H[:, s] then contiguous
            H = q_small.T @ Gm if by_a else (Gm @ q_small).transpose(1, 2).contiguous()
            r = torch.empty(G.shape[0], n_pairs, dtype=torch.float32, device=dev)
            for s_, p, cols in groups:  # the pairs (s_, ·): one product with just their large-side columns
                r[:, p] = H[:, s_, :] @ cols
            r = r.double()
            if ks:
                kept += (r * r).cumsum(1)[:, pick]
            if not have_z:
                rk = r[:, :k]
                energy[sl] += (rk * rk).sum(1).cpu().numpy()
                Z[sl, mi * k:(mi + 1) * k] = (rk * proj.parts[mi][3].to(dev)).cpu().numpy()
        curve[sl] = kept.cpu().numpy()
    return curve


def _pair_groups(m, basis: Eigenbasis, idx: torch.Tensor, dev: torch.device) -> tuple:
    """How pass 2 computes R at the pairs ``idx`` (flat j·i + k) of module m without the full rotation.

    R[j, k] = (Q_Sᵀ G)[j, :] · Q_A[:, k] = Q_S[:, j] · (G Q_A)[:, k]. LoRA modules have one small side (r):
    rotate that side fully (cheap), then, for each of its r indices, one matrix product with only the
    large-side eigenvector columns of the pairs that use it: 2·max(o, i) flops per pair and row, instead
    of a product with every column any pair uses for all r indices (measured 1.1–1.5× faster per module
    for the top-1,000 pairs of Gemma-3 4B's shapes; the gathers, not the flops, then dominate)."""
    o, i = m.shape
    by_a = i >= o  # the small side is j (rows of G): group the pairs by j, take Q_A's columns
    js, kk = idx // i, idx % i
    small, large = (js, kk) if by_a else (kk, js)
    q_small = (basis.q_s if by_a else basis.q_a)[m.name].to(dev, torch.float32)
    q_large = (basis.q_a if by_a else basis.q_s)[m.name]
    groups = []
    for s_ in torch.unique(small).tolist():
        p = torch.nonzero(small == s_).squeeze(1)
        groups.append((s_, p.to(dev), q_large[:, large[p]].to(dev, torch.float32).contiguous()))
    return m, q_small, by_a, groups, len(idx)


def _rotate(G: torch.Tensor, qs: torch.Tensor, qa: torch.Tensor) -> torch.Tensor:
    """R = Q_Sᵀ G Q_A for a chunk G (c, o, i): the large side as one (c·o, i) or (o, c·i) matrix product."""
    c, o, i = G.shape
    if i >= o:
        return qs.T @ (G.reshape(c * o, i) @ qa).reshape(c, o, i)
    T = (qs.T @ G.transpose(0, 1).reshape(o, c * i)).reshape(o, c, i).transpose(0, 1)  # (c, o, i)
    return T @ qa


def _prefetched(rows, chunk_rows: int | None, dev: torch.device, layout) -> Iterator[tuple[int, torch.Tensor]]:
    """(start, (c, D) float32 tensor) over the rows, the next chunk read by a thread while this one is used."""
    q: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for start, block in blocks(rows, chunk_rows):
                t = block if isinstance(block, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(block))
                if not put((start, t.to(torch.float32))):
                    return
            put(None)
        except BaseException as e:  # handed to the consumer, raised there
            put(e)

    thread = threading.Thread(target=read, name="gatoms-prefetch", daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            start, t = item
            check_width(t, layout)
            yield start, t.to(dev)
    finally:
        stop.set()
        thread.join()
