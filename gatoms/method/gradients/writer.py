"""Rows into ``grads.npy.part`` from a background thread, so the accelerator never waits on the disk.

:class:`RowWriter` takes a batch's rows (already in the storage dtype, in host memory) and returns at
once; a thread writes them into the ``.npy`` memory map while the next batch computes. The queue is
bounded (``depth`` batches), so a slow disk slows the extraction instead of filling the RAM. An error
in the thread is raised in the caller at its next ``write``/``flush``/``close``. ``flush`` returns only
when every queued row is written and flushed to the file — the extractor calls it before each resume
checkpoint, so a checkpoint never counts a row that is not on disk: a run killed mid-write, re-run,
rewrites the rows after its last checkpoint and ends bit-identical to an uninterrupted run.
``background=False`` writes in the caller (the reference the tests compare against).

Usage::

    with RowWriter(mm) as w:
        w.write(rows_idx, stored_rows)     # (B,) ascending row numbers, (B, D) storage-dtype array
        w.flush()                          # before a checkpoint
"""

from __future__ import annotations

import queue
import threading

import numpy as np


class RowWriter:
    """Writes (row indices, rows) into an (N, D) memmap, in a thread unless ``background=False``."""

    def __init__(self, mm: np.ndarray, depth: int = 2, background: bool = True):
        if depth < 1:
            raise ValueError(f"depth must be ≥ 1, got {depth}")
        self.mm = mm
        self.background = background
        self._error: BaseException | None = None
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._run, name="gatoms-row-writer", daemon=True)
            self._thread.start()

    def _store(self, idx: np.ndarray, rows: np.ndarray) -> None:
        if rows.shape != (len(idx), self.mm.shape[1]) or rows.dtype != self.mm.dtype:
            raise ValueError(f"rows {rows.shape} {rows.dtype} do not fit the file's ({len(idx)}, {self.mm.shape[1]}) "
                             f"{self.mm.dtype}")
        if len(idx) and np.all(np.diff(idx) == 1):
            self.mm[int(idx[0]): int(idx[-1]) + 1] = rows  # one contiguous slab
        else:
            self.mm[idx] = rows

    def _run(self) -> None:
        while True:
            item = self._q.get()
            try:
                if item is None:
                    return
                if self._error is None:  # after an error, drain without writing
                    self._store(*item)
            except BaseException as e:  # raised in the caller
                self._error = e
            finally:
                self._q.task_done()

    def _raise(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise RuntimeError(f"writing gradient rows failed: {err}") from err

    def write(self, idx, rows: np.ndarray) -> None:
        """Queue rows ``idx`` (ascending) for writing; returns at once unless ``depth`` batches wait."""
        self._raise()
        idx = np.asarray(idx, dtype=np.int64)
        if not self.background:
            self._store(idx, rows)
            return
        self._q.put((idx, rows))

    def flush(self) -> None:
        """Every queued row written and the memmap flushed to the file (then raise any writing error)."""
        if self.background:
            self._q.join()
        self._raise()
        self.mm.flush()

    def close(self, discard: bool = False) -> None:
        """Stop the thread: after writing what is queued, or (``discard``, after an error elsewhere)
        without waiting for it to reach the file."""
        if self._thread is not None:
            if discard:
                self._error = self._error or _Discarded()
            self._q.put(None)
            self._thread.join()
            self._thread = None
        if discard:
            self._error = None
            return
        self.flush()

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(discard=exc_type is not None)


class _Discarded(Exception):
    """Marks the queue as abandoned: the thread drains it without writing."""
