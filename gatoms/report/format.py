"""Numbers as the report prints them: percentages, percentage points, counts, durations, memory."""

from __future__ import annotations

import math
from typing import Any

from gatoms.report.paper import LOST


def pct(x: Any) -> str:
    """A fraction as a whole percentage (``0.39`` → ``39%``); ``lost``/None pass through."""
    if x is None or x == LOST:
        return "—" if x is None else LOST
    return f"{100 * float(x):.0f}%"


def pp(x: Any, base: Any) -> str:
    """The signed difference of two fractions in percentage points (``+12pp``)."""
    if x is None or base is None or LOST in (x, base):
        return "—"
    return f"{100 * (float(x) - float(base)):+.0f}pp"


def num(x: Any, digits: int = 3) -> str:
    """A number for a table: ints with thousands separators, floats with ``digits`` decimals."""
    if x is None:
        return "—"
    if x == LOST or isinstance(x, str):
        return str(x)
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float) and math.isfinite(x) and x.is_integer() and abs(x) >= 1000:
        return f"{int(x):,}"
    return f"{x:.{digits}f}"


def seconds(x: Any) -> str:
    """Wall time for humans: ``41.2 s``, ``3.5 min``, ``1.2 h``."""
    if x is None:
        return "—"
    x = float(x)
    if x < 120:
        return f"{x:.1f} s"
    if x < 7200:
        return f"{x / 60:.1f} min"
    return f"{x / 3600:.2f} h"


def mib(x: Any) -> str:
    if x is None:
        return "—"
    x = float(x)
    return f"{x / 1024:.2f} GiB" if x >= 1024 else f"{x:.0f} MiB"
