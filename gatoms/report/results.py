"""Reading what the pipeline wrote, for the report and the atlas: :class:`Results`, and its snapshot
``figures/<profile>/results.json`` (committed beside RESULTS.md, so the report can be re-rendered and
checked without the artifacts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gatoms.build import paths
from gatoms.build.metrics import StepMetrics
from gatoms.build.store import StepStore, read_json
from gatoms.lm.finetune import FinetuneMetrics
from gatoms.method.ablations import AblationsMetrics
from gatoms.method.atoms import AtomsMetrics
from gatoms.method.coherence import AtomRow, CoherenceMetrics, read_atom_table
from gatoms.method.ekfac import EkfacMetrics
from gatoms.method.gradients.extract import ExtractMetrics
from gatoms.method.steering.metrics import SteeringMetrics

METRICS: dict[str, type[StepMetrics]] = {cls.step: cls for cls in (
    FinetuneMetrics, ExtractMetrics, EkfacMetrics, AtomsMetrics, CoherenceMetrics, AblationsMetrics,
    SteeringMetrics)}
"""Step → the dataclass its ``metrics.json`` holds."""


@dataclass
class Results:
    """Everything the report and the atlas read about one profile; ``None`` where a step has not run."""

    profile: str
    metrics: dict[str, StepMetrics | None]
    """Step → its metrics (None: not run or incomplete)."""
    runs: dict[str, dict[str, Any] | None]
    """Step → the runner's ``<step>.run.json`` (None: not run through the runner)."""
    configs: dict[str, dict[str, Any] | None]
    """Step → the config stored in its sidecar (None: not run)."""
    atom_table: list[AtomRow] | None
    """``04_coherence/atom_table.csv`` (None: not written)."""
    figures: list[str] = field(default_factory=list)
    """PNG files in ``figures/<profile>/`` (names), sorted."""
    seeds: dict[str, Any] | None = None
    """The spread over seeds (``figures/<profile>/seeds.json``, :mod:`gatoms.report.seeds`; None: not run)."""

    def ran(self, step: str) -> bool:
        return self.metrics.get(step) is not None

    def to_json(self) -> dict[str, Any]:
        """Everything the report reads, as JSON data (``figures/<profile>/results.json``)."""
        return {"profile": self.profile,
                "metrics": {s: (m.to_json() if m is not None else None) for s, m in self.metrics.items()},
                "runs": self.runs, "configs": self.configs,
                "atom_table": [r.to_json() for r in self.atom_table] if self.atom_table is not None else None,
                "figures": self.figures, "seeds": self.seeds}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Results:
        metrics = {s: (METRICS[s].from_json(m, where=f"results.json: {s}") if m is not None else None)
                   for s, m in data["metrics"].items()}
        table = data.get("atom_table")
        rows = [AtomRow(**{**r, "top_doc_ids": tuple(r["top_doc_ids"])}) for r in table] if table is not None else None
        return cls(data["profile"], metrics, data["runs"], data["configs"], rows, list(data.get("figures") or []),
                   data.get("seeds"))


def load_results(profile: str) -> Results:
    """Read the metrics, runner records, sidecar configs and atom table of ``profile``, tolerating gaps (a
    step that has not run is None); a ``metrics.json`` of the wrong shape is an error naming the file."""
    metrics: dict[str, StepMetrics | None] = {}
    configs: dict[str, dict[str, Any] | None] = {}
    runs: dict[str, dict[str, Any] | None] = {}
    for step in paths.STEPS:
        store = StepStore(profile, step)
        if (store.dir / paths.METRICS).exists() and (store.dir / paths.CONFIG).exists():
            metrics[step] = METRICS[step].from_json(store.metrics(), where=str(store.dir / paths.METRICS))
            configs[step] = store.config
        else:
            metrics[step] = configs[step] = None
        record = paths.run_record(profile, step)
        runs[step] = read_json(record) if record.exists() else None
    table_path = StepStore(profile, "04_coherence").path(paths.ATOM_TABLE)
    atom_table = read_atom_table(table_path) if metrics["04_coherence"] and table_path.exists() else None
    figs = sorted(p.name for p in paths.figures(profile).glob("*.png"))
    from gatoms.report.seeds import load_seeds

    return Results(profile, metrics, runs, configs, atom_table, figs, load_seeds(profile))


def snapshot_file(profile: str) -> Path:
    """``figures/<profile>/results.json``: the inputs the report was rendered from (committed with it)."""
    return paths.figures(profile) / "results.json"


def load_snapshot(profile: str) -> Results:
    path = snapshot_file(profile)
    if not path.exists():
        raise FileNotFoundError(f"no {path}; `make report PROFILE={profile}` writes it beside RESULTS.md")
    return Results.from_json(read_json(path))
