"""Determinism: the smoke profile run twice on the same machine, into two separate trees, produces
byte-identical CSV tables (figures/<profile>/*.csv and the atom table)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from conftest import REPO

from gatoms.build import paths
from gatoms.build.runner import run_step


def tables(tree: Path) -> dict[str, bytes]:
    """Every CSV table of the smoke run in ``tree``: the figures' tables and the atom table."""
    found = {f"figures/{p.name}": p.read_bytes() for p in sorted((tree / "figures" / "smoke").glob("*.csv"))}
    atom_table = tree / "artifacts" / "smoke" / "04_coherence" / paths.ATOM_TABLE
    if atom_table.exists():
        found[f"artifacts/04_coherence/{paths.ATOM_TABLE}"] = atom_table.read_bytes()
    return found


def test_smoke_profile_twice_gives_identical_tables(smoke_step, smoke_tree, tmp_path, monkeypatch):
    smoke_step(paths.STEPS[-1])  # the session's first run (shared with the other smoke tests)
    monkeypatch.setenv("GATOMS_ROOT", str(REPO))
    monkeypatch.setenv("GATOMS_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.setenv("GATOMS_FIGURES", str(tmp_path / "figures"))
    for step in paths.STEPS:
        run_step(step, "smoke")
    first, second = tables(smoke_tree), tables(tmp_path)
    assert f"artifacts/04_coherence/{paths.ATOM_TABLE}" in first
    assert len(first) >= 3, f"expected the steps' CSV tables, found only {sorted(first)}"
    assert sorted(first) == sorted(second)
    differ = {name: differing_columns(first[name], second[name]) for name in first if first[name] != second[name]}
    assert differ == {}, (f"tables that differ between two runs of the smoke profile (file: columns): {differ}; "
                          "a table must not hold wall times or anything unseeded (times go in metrics.json)")


def differing_columns(a: bytes, b: bytes) -> list[str]:
    """The header names of the columns whose values differ between two versions of a CSV table."""
    ra = list(csv.reader(io.StringIO(a.decode())))
    rb = list(csv.reader(io.StringIO(b.decode())))
    if not ra or not rb or ra[0] != rb[0] or len(ra) != len(rb):
        return ["<header or row count>"]
    return [col for j, col in enumerate(ra[0])
            if any(x[j:j + 1] != y[j:j + 1] for x, y in zip(ra[1:], rb[1:]))]
