"""Tables: one writer for every table a step or notebook writes — a CSV (the source, full precision) and a
Markdown rendering of it, both written atomically — and one Markdown table formatter for the report.

    write_table(rows, paths.figure(profile, "table1_sparsity", "csv"), paths.figure(profile, "table1_sparsity", "md"))
    write_figure_table(profile, "table1_sparsity", rows)                  # the same, by name
    write_table(rows, csv, md, markdown=[("Behaviour", lambda r: r["behavior"]), ...], notes=["† …"])
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gatoms.build import paths
from gatoms.build.store import write_text

Cell = Callable[[dict[str, Any]], Any]
"""A Markdown column: the cell of one row."""


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None) -> str:
    """A Markdown table; ``align`` is one character per column (``l``/``r``), right for all but the first
    by default. ``None`` cells print as ``—``; pipes and newlines in cells are escaped."""
    align = align or "l" + "r" * (len(header) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _plain(value: Any) -> str:
    """A stored value as a Markdown cell: floats to 3 decimals, None/NaN empty."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def write_table(rows: Sequence[dict[str, Any]], csv_path: Path, md_path: Path | None = None,
                columns: Sequence[str] | None = None, markdown: Sequence[tuple[str, Cell]] | None = None,
                notes: Sequence[str] = (), float_format: str | None = None, align: str | None = None) -> None:
    """Write ``rows`` as CSV (``columns``, default the first row's keys; floats as Python prints them, or
    with ``float_format`` such as ``".6g"``) and, if ``md_path``, as Markdown: the same columns, or the
    ``markdown`` (header, cell function) pairs, then ``notes`` as paragraphs."""
    columns = list(columns or (rows[0].keys() if rows else []))
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (format(v, float_format) if float_format and isinstance(v, float) else v)
                    for k, v in r.items()})
    write_text(Path(csv_path), buf.getvalue())
    if md_path is None:
        return
    cols = list(markdown) if markdown is not None else [(c, (lambda r, c=c: _plain(r.get(c)))) for c in columns]
    md = markdown_table([h for h, _ in cols], [[f(r) for _, f in cols] for r in rows], align or "l" * len(cols))
    write_text(Path(md_path), md + "\n" + "".join(f"\n{n}\n" for n in notes))


def write_figure_table(profile: str, name: str, rows: Sequence[dict[str, Any]], **kwargs: Any) -> Path:
    """:func:`write_table` to ``figures/<profile>/<name>.csv`` and ``.md``; returns the CSV's path."""
    csv_path = paths.figure(profile, name, "csv")
    write_table(rows, csv_path, paths.figure(profile, name, "md"), **kwargs)
    return csv_path


def read_table(csv_path: Path) -> list[dict[str, str]]:
    """Rows of a CSV written by :func:`write_table` (values as strings)."""
    with open(csv_path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
