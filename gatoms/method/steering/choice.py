"""Choosing the atom of each behaviour from the atom table — never a hard-coded id."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gatoms.data.behaviors import BEHAVIORS
from gatoms.method.coherence import AtomRow
from gatoms.method.stats import wilson


def labels_from_fmt(fmts: Sequence[str | None], behaviors: Sequence[str] = BEHAVIORS) -> dict[str, np.ndarray]:
    """Per behaviour, which documents carry it by their format label: ``fmt == behavior``. # (N,) bool"""
    if any(f is None for f in fmts):
        raise ValueError("some documents have no fmt label; choose atoms with the detector (choose_by: detector)")
    arr = np.asarray(fmts, dtype=object)
    return {b: arr == b for b in behaviors}


def labels_from_detector(
    responses: Sequence[str], detect: Callable[[str, str], bool], behaviors: Sequence[str] = BEHAVIORS
) -> dict[str, np.ndarray]:
    """Per behaviour, which documents' responses the behaviour's detector flags. # (N,) bool"""
    return {b: np.fromiter((bool(detect(b, r)) for r in responses), dtype=bool, count=len(responses))
            for b in behaviors}


@dataclass(frozen=True)
class AtomChoice:
    """Why an atom was chosen for a behaviour."""

    behavior: str
    atom: int
    coherence: float
    share: float
    """Fraction of the atom's top documents that show the behaviour."""
    n_top: int
    n_match: int
    lower: float
    """Lower Wilson bound of ``share`` (the ranking key: it favours 18/20 over 1/1)."""
    method: str
    """``fmt`` or ``detector``."""
    accepted: bool
    """share ≥ min_share."""
    runner_up: int | None = None
    runner_up_share: float | None = None
    description: str = ""

    def reason(self) -> str:
        why = (f"atom {self.atom}: {self.n_match}/{self.n_top} of its top documents are {self.behavior} "
               f"(by {self.method}; share {self.share:.2f}, Wilson lower {self.lower:.2f}), "
               f"coherence {self.coherence:.3f}")
        if self.runner_up is not None:
            why += f"; runner-up atom {self.runner_up} (share {self.runner_up_share:.2f})"
        if not self.accepted:
            why += " — WEAK: below min_share"
        return why

    def to_json(self) -> dict[str, Any]:
        return {**{k: getattr(self, k) for k in self.__dataclass_fields__}, "reason": self.reason()}


def choose_atoms(
    table: Sequence[AtomRow],
    labels: dict[str, np.ndarray],
    method: str,
    min_share: float = 0.5,
    n_top: int | None = None,
) -> dict[str, AtomChoice]:
    """For each behaviour in ``labels``, the atom whose top documents most reliably show it.

    ``labels[b]`` (N,) bool says which documents show behaviour b (:func:`labels_from_fmt` or
    :func:`labels_from_detector`); ``table`` rows list each atom's top documents as row indices. Atoms
    are ranked by the lower Wilson bound of the share of their top documents (first ``n_top`` of them)
    that show the behaviour, ties broken by coherence then by atom id. Atoms without active documents
    are skipped.
    """
    candidates = [r for r in table if r.top_docs and r.active_docs > 0]
    if not candidates:
        raise ValueError("the atom table has no atom with active documents; did dictionary learning fail?")
    out = {}
    for b, has in labels.items():
        has = np.asarray(has, dtype=bool)
        scored = []
        for r in candidates:
            docs = np.asarray(r.top_docs[:n_top] if n_top else r.top_docs)
            if docs.max() >= len(has):
                raise ValueError(f"atom {r.atom} lists document {docs.max()} but there are {len(has)} documents")
            k = int(has[docs].sum())
            lo, _ = wilson(k, len(docs))
            scored.append((lo, r.coherence, -r.atom, k, len(docs), r))
        scored.sort(key=lambda t: t[:3], reverse=True)
        lo, _, _, k, n, r = scored[0]
        ru = scored[1] if len(scored) > 1 else None
        out[b] = AtomChoice(
            behavior=b, atom=r.atom, coherence=r.coherence, share=k / n, n_top=n, n_match=k, lower=lo,
            method=method, accepted=k / n >= min_share,
            runner_up=ru[5].atom if ru else None, runner_up_share=(ru[3] / ru[4]) if ru else None,
            description=r.description,
        )
    return out


def choose(table: Sequence[AtomRow], docs: Sequence[Any], choose_by: str = "detector", oracle: bool = True,
           min_share: float = 0.5) -> tuple[dict[str, AtomChoice], dict[str, AtomChoice], dict[str, np.ndarray]]:
    """Each behaviour's atom (``choose_by``: ``detector`` — unsupervised, from the training responses — or
    ``fmt`` — the format labels), the label-chosen oracle atoms (when ``oracle``, the choice is the
    detector's and every document has a label; else empty), and the detector's labels (N,) per behaviour."""
    from gatoms.data.behaviors import detect

    det = labels_from_detector([d.response for d in docs], detect)
    labelled = all(d.fmt is not None for d in docs)
    if choose_by == "fmt":
        return choose_atoms(table, labels_from_fmt([d.fmt for d in docs]), "fmt", min_share), {}, det
    main = choose_atoms(table, det, "detector", min_share)
    extra = (choose_atoms(table, labels_from_fmt([d.fmt for d in docs]), "fmt", min_share)
             if oracle and labelled else {})
    return main, extra, det
