"""Reading rows of X, whatever holds them: an array, a memmap, or a reader with ``.rows``."""

from __future__ import annotations

from typing import Any

import numpy as np


def rows(X: Any, start: int, stop: int) -> np.ndarray:
    """Rows [start, stop) of an array, memmap or reader with ``.rows`` as float32."""
    if hasattr(X, "rows"):
        return np.array(X.rows(np.arange(start, stop)), dtype=np.float32)
    return np.array(X[start:stop], dtype=np.float32)  # a writable copy


def n_rows(X: Any) -> int:
    return int(X.shape[0])
