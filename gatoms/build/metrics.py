"""Step metrics as data: every step records one dataclass in its ``metrics.json``.

Each step module defines its ``…Metrics`` (a subclass of :class:`StepMetrics`, one documented field per
number) and a ``summarize(...)`` that computes it; the notebook calls ``summarize`` and writes the result
with :meth:`gatoms.build.store.StepStore.write_metrics`; the report, the atlas and the tests read it back
with :meth:`StepMetrics.from_json`, so a key is spelled in one place. ``seconds`` (the step's compute
time) is added by the store when the step does not set it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

T = TypeVar("T", bound="StepMetrics")


class MetricsError(ValueError):
    """A ``metrics.json`` that does not match its step's metrics class."""


@dataclass
class StepMetrics:
    """What a step records; subclasses add their fields (with defaults, after ``seconds``)."""

    step: ClassVar[str] = ""
    """The step whose metrics these are (e.g. ``03_atoms``)."""
    seconds: float | None = None
    """Compute time of the step (from opening its store to writing its metrics)."""

    def to_json(self) -> dict[str, Any]:
        """The metrics as JSON data (tuples become lists, non-finite floats stay as they are)."""
        return json.loads(json.dumps(dataclasses.asdict(self), default=_jsonable))

    @classmethod
    def from_json(cls: type[T], data: dict[str, Any], where: str = "") -> T:
        """The metrics of a ``metrics.json``; a key the class does not know, or a missing field without a
        default, is an error that names the file and says how to rebuild it."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise MetricsError(f"{where or cls.__name__}: unknown metrics {unknown} for step {cls.step}; the "
                               f"artifacts were made by another version of gatoms — rebuild the step with FORCE=1")
        try:
            return cls(**data)
        except TypeError as e:
            raise MetricsError(f"{where or cls.__name__}: {e}; rebuild step {cls.step} with FORCE=1") from e


def _jsonable(x: Any) -> Any:
    if hasattr(x, "tolist"):
        return x.tolist()
    if hasattr(x, "item"):
        return x.item()
    raise TypeError(f"not JSON-serialisable: {type(x).__name__}")
