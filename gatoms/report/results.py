"""Reading what the pipeline wrote, for the report and the atlas: :class:`Results`, and its snapshot
``figures/<profile>/results.json`` (committed beside RESULTS.md, so the report can be re-rendered and
checked without the artifacts)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gatoms.build import paths
from gatoms.build.store import StepStore, read_json
from gatoms.method.coherence import read_atom_table


# ---- reading what the pipeline wrote ------------------------------------------------------------------
@dataclass
class Results:
    """Everything the report and the atlas read about one profile; ``None`` where a step has not run."""

    profile: str
    metrics: dict[str, dict[str, Any] | None]
    """Step → its ``metrics.json`` (None: not run or incomplete)."""
    runs: dict[str, dict[str, Any] | None]
    """Step → the runner's ``<step>.run.json`` (None: not run through the runner)."""
    configs: dict[str, dict[str, Any] | None]
    """Step → the config stored in its sidecar (None: not run)."""
    atom_table: list[dict[str, Any]] | None
    """Rows of ``04_coherence/atom_table.csv`` with numbers parsed (None: not written)."""
    figures: list[str] = field(default_factory=list)
    """PNG files in ``figures/<profile>/`` (names), sorted."""

    def ran(self, step: str) -> bool:
        return self.metrics.get(step) is not None

    def to_json(self) -> dict[str, Any]:
        """Everything :func:`render` reads, as JSON data (``figures/<profile>/results.json``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Results:
        return cls(**data)


def load_results(profile: str) -> Results:
    """Read the metrics, runner records, sidecar configs and atom table of ``profile``, tolerating gaps."""
    metrics: dict[str, dict[str, Any] | None] = {}
    configs: dict[str, dict[str, Any] | None] = {}
    runs: dict[str, dict[str, Any] | None] = {}
    for step in paths.STEPS:
        store = StepStore(profile, step)
        if (store.dir / paths.METRICS).exists() and (store.dir / paths.CONFIG).exists():
            metrics[step] = store.metrics()
            configs[step] = store.config
        else:
            metrics[step] = configs[step] = None
        record = paths.run_record(profile, step)
        runs[step] = read_json(record) if record.exists() else None
    table_path = StepStore(profile, "04_coherence").path(paths.ATOM_TABLE)
    atom_table = ([r.to_json() for r in read_atom_table(table_path)]
                  if metrics["04_coherence"] and table_path.exists() else None)
    figs = sorted(p.name for p in paths.figures(profile).glob("*.png"))
    return Results(profile, metrics, runs, configs, atom_table, figs)


def snapshot_file(profile: str) -> Path:
    """``figures/<profile>/results.json``: the inputs the report was rendered from (committed with it)."""
    return paths.figures(profile) / "results.json"


def load_snapshot(profile: str) -> Results:
    path = snapshot_file(profile)
    if not path.exists():
        raise FileNotFoundError(f"no {path}; `make report PROFILE={profile}` writes it beside RESULTS.md")
    return Results.from_json(read_json(path))
