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


PROJECTION_BLOCK = 4096
"""Gradient coordinates per block of the random projection: the (D, dim) Gaussian matrix is drawn block by
block from one seeded stream and never exists whole (460,800 × 6,000 float32 would be 11 GB)."""


def random_projection(reader: Any, dim: int, seed: int = 0, block: int = PROJECTION_BLOCK) -> np.ndarray:
    """(N, dim) unit rows of the raw gradients (N, D) times the Gaussian (D, dim) matrix
    ``default_rng(seed).standard_normal((D, dim)) / sqrt(dim)`` (float32), accumulated over blocks of
    ``block`` gradient coordinates: successive draws from one stream are that matrix's rows in order, so
    the numbers do not depend on ``block``, and memory is one block of the matrix and of the gradients'
    columns whatever D. A zero row is an error naming it."""
    N, D = (int(s) for s in reader.shape)
    rng = np.random.default_rng(seed)
    Z = np.zeros((N, dim), dtype=np.float32)
    everyone = np.arange(N)
    for lo in range(0, D, block):
        hi = min(D, lo + block)
        cols = reader.columns(everyone, lo, hi) if hasattr(reader, "columns") else reader[:, lo:hi]
        G = rng.standard_normal((hi - lo, dim), dtype=np.float32) / np.float32(np.sqrt(dim))
        Z += np.asarray(cols, dtype=np.float32) @ G
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
