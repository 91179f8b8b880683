"""Is whitening essential? The damping sweep and a plain random projection (notebook ``05_ablations``).

The paper argues that dividing the EKFAC coordinates by sqrt(eig + ε) is what lets atoms find behaviours
rather than high-energy directions. Two controls on the same gradients, with the same dictionary settings
as every other ablation row:

- **damping sweep**: EKFAC whitening with ε = f × the module's mean eigenvalue for each f of
  ``ablations.dampings`` (ε → 0: full whitening, every kept direction equally loud; ε → ∞: no whitening,
  the raw top-k coordinates up to a constant);
- **random projection**: the raw gradients times a seeded Gaussian (D, P) matrix, P the pipeline's
  projected dimension, no eigenbasis at all (:func:`random_projection`).

Each setting is scored by how much of each label (family, the planted nuisance, topic, …) the
strongest-atom assignment carries (:func:`gatoms.method.claims.label_alignment`): whitening that works
moves atoms from the nuisance to the family.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from gatoms.method.ekfac import normalize_rows

log = logging.getLogger(__name__)

ALIGNMENT_LABELS = ("family", "nuisance", "topic", "fmt")
"""Labels whose alignment with the atoms is a column of the ablation tables (when the documents have them)."""


def random_projection(reader: Any, dim: int, seed: int = 0, chunk_rows: int = 512) -> np.ndarray:
    """(N, dim) unit rows of the raw gradients (N, D) times a Gaussian (D, dim) matrix drawn from
    ``seed`` (float32), read ``chunk_rows`` rows at a time; a zero row is an error naming it."""
    N, D = (int(s) for s in reader.shape)
    G = np.random.default_rng(seed).standard_normal((D, dim), dtype=np.float32) / np.float32(np.sqrt(dim))  # (D, P)
    Z = np.empty((N, dim), dtype=np.float32)
    for lo in range(0, N, chunk_rows):
        idx = np.arange(lo, min(N, lo + chunk_rows))
        rows = reader.rows(idx) if hasattr(reader, "rows") else reader[idx]
        Z[idx] = np.asarray(rows, dtype=np.float32) @ G
    return normalize_rows(Z, getattr(reader, "doc_ids", None))


def alignment_columns(alignment: dict[str, dict[str, float]]) -> dict[str, float]:
    """Table columns of :func:`~gatoms.method.claims.label_alignment`: ``<label>_share`` and ``<label>_ami``
    for every label of :data:`ALIGNMENT_LABELS` the documents have."""
    out = {}
    for label in ALIGNMENT_LABELS:
        if label in alignment:
            out[f"{label}_share"] = alignment[label]["share"]
            out[f"{label}_ami"] = alignment[label]["ami"]
    return out


def damping_rows(fits: Any, columns: dict[str, list[str | None]]) -> list[dict[str, Any]]:
    """The damping sweep: one row per factor of ``ablations.dampings`` (EKFAC whitening, relative ε)."""
    from gatoms.method.ablations import method_row

    rows = []
    for f in fits.cfg.dampings:
        codes, coh = fits.timed(f"damping={f:g}", fits.fit, fits.atoms_cfg.alpha, "ekfac", float(f))
        row = method_row("ekfac", codes, coh, columns)
        rows.append({"damping": float(f), **{k: v for k, v in row.items() if k not in ("method", "label")}})
    return rows
