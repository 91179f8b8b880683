"""Where the gradients live: an (N, D) ``.npy`` memmap in a storage dtype, its metadata, and the row index.

    grads.npy    (N, D) rows in document order; float32 | float16 | bfloat16 stored as uint16
    grads.json   layout, doc ids, dtype, n_params, n_modules, fingerprint of the inputs
    rows.csv     row → doc id, family, fmt, extra labels, prompt and response token counts

:class:`GradientReader` never opens a ``.part`` file; it reads only the rows asked for, as float32.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from gatoms.build import paths
from gatoms.build.store import ArtifactError
from gatoms.build.tables import write_table
from gatoms.data.documents import Document
from gatoms.lm.layout import Layout
from gatoms.method.ekfac.factors import Factors

STORAGE_DTYPES: dict[str, np.dtype] = {
    "float32": np.dtype("<f4"),
    "float16": np.dtype("<f2"),
    "bfloat16": np.dtype("<u2"),  # the upper 16 bits of a float32, viewed as uint16
}
FP16_MAX = 65504.0

def to_storage(rows: torch.Tensor, dtype: str) -> np.ndarray:
    """(B, D) float32 tensor → numpy array in the storage dtype (bfloat16 as its uint16 bit pattern)."""
    if dtype == "float32":
        return rows.float().cpu().numpy()
    if dtype == "float16":
        big = rows.abs().max().item() if rows.numel() else 0.0
        if big > FP16_MAX:
            raise ValueError(f"a gradient entry of magnitude {big:.3g} overflows float16; use extract.dtype: bfloat16")
        return rows.half().cpu().numpy()
    return rows.bfloat16().view(torch.int16).cpu().numpy().view(np.uint16)


def from_storage(block: np.ndarray, dtype: str) -> np.ndarray:
    """Stored rows → float32 (exact for every storage dtype)."""
    if dtype == "bfloat16":
        out = np.asarray(block, dtype=np.uint16).astype(np.uint32)
        out <<= 16
        return out.view(np.float32)
    return np.array(block, dtype=np.float32)  # a copy: never a view into the read-only memmap


class GradientReader:
    """Read-only access to a completed ``grads.npy`` + ``grads.json`` (never a ``.part``).

    ``rows(idx)`` reads only the requested rows and returns float32; ``chunks()`` iterates over row
    blocks so that peak memory stays ~chunk × D whatever N is. Rows are read with positional reads
    (``os.preadv``), never through the memory map, so reading all of a file larger than RAM keeps this
    process's resident memory at the chunk it holds; ``bytes_read`` counts what was read.
    """

    def __init__(self, step_dir: Path):
        step_dir = Path(step_dir)
        if step_dir.name.endswith(".part") or step_dir.name == paths.GRADS:
            if step_dir.name.endswith(".part"):
                raise ValueError(f"refusing to read an incomplete file {step_dir}; re-run the extraction to finish it")
            step_dir = step_dir.parent
        self.dir = step_dir
        grads, meta = step_dir / paths.GRADS, step_dir / paths.GRADS_META
        if not grads.exists():
            part = grads.with_name(grads.name + ".part")
            hint = (f" (only the incomplete {part.name} is there: re-run `make extract` to resume it)"
                    if part.exists() else " (build it with `make extract`)")
            raise FileNotFoundError(f"no {grads}{hint}")
        if not meta.exists():
            raise FileNotFoundError(f"no {meta} beside {grads}; the extraction did not complete")
        self.meta = json.loads(meta.read_text())
        self.layout = Layout.from_json(self.meta["layout"])
        self.doc_ids: list[str] = list(self.meta["doc_ids"])
        self.dtype: str = self.meta["dtype"]
        self._mm = np.load(grads, mmap_mode="r")
        if self._mm.shape != (len(self.doc_ids), self.layout.n_params):
            raise ValueError(f"{grads} has shape {self._mm.shape} but {meta.name} describes "
                             f"({len(self.doc_ids)}, {self.layout.n_params}); the files do not belong together")
        if self._mm.dtype != STORAGE_DTYPES[self.dtype]:
            raise ValueError(f"{grads} stores {self._mm.dtype} but {meta.name} says {self.dtype}")
        self._fd = os.open(grads, os.O_RDONLY)
        self._offset, self._row_bytes = int(self._mm.offset), self._mm.dtype.itemsize * self._mm.shape[1]
        self.bytes_read = 0
        """Bytes of stored rows read so far (each row read counts every time it is read)."""

    def __del__(self):
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)
            self._fd = None

    def _slab(self, start: int, stop: int) -> np.ndarray:
        """Rows start … stop-1 as stored, read with positional reads into a fresh buffer (no mapping: the
        file's pages never count toward this process's memory, and threads may read concurrently)."""
        out = np.empty((max(stop - start, 0), self._mm.shape[1]), dtype=self._mm.dtype)
        self._read_into(out.reshape(-1), self._offset + start * self._row_bytes)
        return out

    def _read_into(self, buf: np.ndarray, pos: int) -> None:
        """Fill the contiguous array ``buf`` with the file's bytes from offset ``pos`` (positional reads)."""
        view, done = memoryview(buf.view(np.uint8)), 0
        while done < len(view):
            got = os.preadv(self._fd, [view[done:]], pos + done)
            if got <= 0:
                raise OSError(f"{self.dir / paths.GRADS}: short read at byte {pos + done}; the file is truncated")
            done += got
        self.bytes_read += done

    def _gather(self, idx: np.ndarray) -> np.ndarray:
        """Rows ``idx`` (ascending) as stored: one read per run of consecutive rows."""
        out = np.empty((len(idx), self._mm.shape[1]), dtype=self._mm.dtype)
        breaks = np.flatnonzero(np.diff(idx) != 1) + 1
        for run in np.split(np.arange(len(idx)), breaks):
            if run.size:
                out[run[0]: run[-1] + 1] = self._slab(int(idx[run[0]]), int(idx[run[-1]]) + 1)
        return out

    @property
    def shape(self) -> tuple[int, int]:
        return self._mm.shape

    def __len__(self) -> int:
        return self._mm.shape[0]

    @property
    def itemsize(self) -> int:
        """Bytes per stored entry (2 for bfloat16 / float16, 4 for float32)."""
        return self._mm.dtype.itemsize

    def rows(self, idx) -> np.ndarray:
        """Rows ``idx`` (int, slice, or index array) as float32: (D,) for an int, else (n, D)."""
        if isinstance(idx, slice):
            start, stop, step = idx.indices(len(self))
            block = self._slab(start, stop) if step == 1 else self._gather(np.arange(start, stop, step))
        else:
            arr = np.asarray(idx)
            if arr.ndim == 0:
                return from_storage(self._gather(np.arange(len(self))[[int(arr)]])[0], self.dtype)
            block = self._gather(np.sort(np.arange(len(self))[arr.reshape(-1)])) if arr.size else self._mm[:0]
            if arr.size:
                block = block[np.argsort(np.argsort(arr.reshape(-1), kind="stable"), kind="stable")]
        return from_storage(block, self.dtype)

    def columns(self, idx, start: int, stop: int) -> np.ndarray:
        """Columns start … stop-1 of rows ``idx`` (any order) as float32 (len(idx), stop - start): one
        positional read per row, so a few rows' slice of a wide file costs only those bytes."""
        idx = np.arange(len(self))[np.asarray(idx, dtype=np.int64).reshape(-1)]
        start, stop, _ = slice(start, stop).indices(self._mm.shape[1])
        width, item = max(stop - start, 0), self._mm.dtype.itemsize
        out = np.empty((len(idx), width), dtype=self._mm.dtype)
        for r, row in enumerate(idx.tolist()):
            self._read_into(out[r], self._offset + row * self._row_bytes + start * item)
        return from_storage(out, self.dtype)

    def default_chunk(self, budget_bytes: int = 128 * 2**20) -> int:
        return max(1, budget_bytes // (4 * max(1, self.layout.n_params)))

    def chunks(self, chunk_rows: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (start row, (n, D) float32 block) over all rows."""
        c = chunk_rows or self.default_chunk()
        for s in range(0, len(self), c):
            yield s, self.rows(slice(s, min(s + c, len(self))))

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        return self.chunks()

    def check(self, layout: Layout | None = None, doc_ids: Sequence[str] | None = None) -> None:
        """Raise ValueError if the stored layout or documents differ from the given ones."""
        if layout is not None:
            self.layout.check_matches(layout, what="stored gradients")
        if doc_ids is not None and list(doc_ids) != self.doc_ids:
            diff = next((i for i, (a, b) in enumerate(zip(doc_ids, self.doc_ids)) if a != b), min(len(doc_ids), len(self.doc_ids)))
            raise ValueError(f"document mismatch with the stored gradients at row {diff}: "
                             f"{len(doc_ids)} given, {len(self.doc_ids)} stored; rebuild with `make extract FORCE=1`")

    def factors(self) -> Factors:
        return Factors.load(self.dir / paths.FACTORS)


def open_gradients(step_dir: Path) -> GradientReader:
    """A :class:`GradientReader` over ``step_dir/grads.npy`` (refuses ``.part`` files)."""
    return GradientReader(step_dir)


# ---- the row index: which document each row is ------------------------------------------------------
ROW_COLUMNS = ("row", "doc_id", "family", "fmt", "n_prompt_tokens", "n_response_tokens")


@dataclass
class RowIndex:
    """Row n of the gradients (and of Z, X and the codes) is document ``doc_ids[n]``: its identity, its
    labels and its token counts, written by step 01 beside ``grads.npy`` as ``rows.csv``."""

    doc_ids: list[str]
    families: list[str | None]
    fmts: list[str | None]
    n_prompt_tokens: list[int]
    n_response_tokens: list[int]
    labels: dict[str, list[str | None]] = field(default_factory=dict)
    """Further label columns (a document's ``labels``), name → one value per row."""

    def __len__(self) -> int:
        return len(self.doc_ids)

    @classmethod
    def from_documents(cls, docs: Sequence[Document], encoded: Sequence, max_length: int) -> RowIndex:
        """The index of documents and their encodings (row order), token counts after truncation."""
        if [d.doc_id for d in docs] != [e.doc_id for e in encoded]:
            raise ValueError("documents and encoded documents are not in the same order")
        n_resp = [sum(t != -100 for t in e.labels[:max_length]) for e in encoded]
        n_prompt = [min(len(e.input_ids), max_length) - r for e, r in zip(encoded, n_resp)]
        names = sorted({k for d in docs for k in d.labels})
        return cls([d.doc_id for d in docs], [d.family for d in docs], [d.fmt for d in docs], n_prompt, n_resp,
                   {k: [d.labels.get(k) for d in docs] for k in names})

    def write(self, path: Path) -> None:
        """``rows.csv`` (atomic): the fixed columns, then one column per label (empty = no label)."""
        rows = [{"row": n, "doc_id": doc_id, "family": self.families[n] or "", "fmt": self.fmts[n] or "",
                 "n_prompt_tokens": self.n_prompt_tokens[n], "n_response_tokens": self.n_response_tokens[n],
                 **{f"label:{k}": v[n] or "" for k, v in self.labels.items()}} for n, doc_id in enumerate(self.doc_ids)]
        write_table(rows, path, columns=[*ROW_COLUMNS, *(f"label:{k}" for k in self.labels)])

    @classmethod
    def read(cls, path: Path) -> RowIndex:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no row index {path}; rebuild the gradients with `make extract`")
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        if rows and [int(r["row"]) for r in rows] != list(range(len(rows))):
            raise ValueError(f"{path}: rows are not numbered 0 … {len(rows) - 1} in order")
        names = [c[len("label:"):] for c in (rows[0] if rows else {}) if c.startswith("label:")]
        return cls([r["doc_id"] for r in rows], [r["family"] or None for r in rows], [r["fmt"] or None for r in rows],
                   [int(r["n_prompt_tokens"]) for r in rows], [int(r["n_response_tokens"]) for r in rows],
                   {k: [r[f"label:{k}"] or None for r in rows] for k in names})

    def label(self, name: str) -> list[str | None]:
        """One label column: ``family``, ``fmt`` or a further label."""
        if name == "family":
            return self.families
        if name == "fmt":
            return self.fmts
        if name not in self.labels:
            raise KeyError(f"no label {name!r} in the row index; labels: family, fmt, {', '.join(self.labels)}")
        return self.labels[name]


def align(documents: Sequence[Document], doc_ids: Sequence[str]) -> list[Document]:
    """The documents in the order of the gradient rows (``doc_ids``); raises naming missing ids."""
    by_id = {d.doc_id: d for d in documents}
    missing = [i for i in doc_ids if i not in by_id]
    if missing:
        raise ArtifactError(f"{len(missing)} gradient rows have no document (e.g. {missing[:3]}); "
                            "the gradients and train.jsonl come from different runs — rebuild with `make extract`")
    return [by_id[i] for i in doc_ids]


def load_rows(profile: str) -> list[Document]:
    """The fine-tuning documents of a profile in the order of its gradient rows (row n ↔ document n):
    the one way every later step, the report and the atlas join rows to documents."""
    from gatoms.build.store import StepStore
    from gatoms.lm.sources import load_documents

    index = RowIndex.read(StepStore.read(profile, "01_extract").path(paths.ROWS))
    return align(load_documents(profile, "train"), index.doc_ids)
