"""Reading and writing step artifacts — the one place that does.

A step's folder ``artifacts/<profile>/<NN_step>/`` holds:

- ``config.json`` — the sidecar: the step's config, its upstream steps' fingerprints, the gatoms
  version and git sha. A re-run with a different config (or over different upstream artifacts) is
  refused with a message that names the difference and how to force (``make <target> FORCE=1``).
- files written atomically: to ``<name>.part`` first, renamed when complete. Readers never open a
  ``.part``; only a step's own resume logic may.
- ``metrics.json`` — written last; its presence marks the step complete for downstream steps.

Usage in a notebook::

    store = StepStore.open(profile, "02_ekfac", config=cfg, force=force)
    grads = store.upstream("01_extract")          # raises, naming `make extract`, if missing
    with store.atomic(paths.Z) as tmp: np.save(tmp, z)
    store.write_metrics({...})                     # adds "seconds" since open()
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from gatoms import __version__
from gatoms.build import paths
from gatoms.build.config import to_dict
from gatoms.build.metrics import StepMetrics

log = logging.getLogger(__name__)

PART = ".part"


class ArtifactError(RuntimeError, ValueError):
    """A missing, incomplete or mismatched artifact; the message says which make target fixes it."""


def _jsonable(config: Any) -> Any:
    if config is None:
        return {}
    if hasattr(config, "__dataclass_fields__"):
        return to_dict(config)
    return json.loads(json.dumps(config, default=str))


def fingerprint(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def git_sha() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=paths.root(), capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(set(old) | set(new)):
            out += _diff(old.get(k, "<absent>"), new.get(k, "<absent>"), f"{prefix}{k}.")
        return out
    return [] if old == new else [f"{prefix.rstrip('.')}: {old!r} → {new!r}"]


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (``.part`` then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + PART)
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    """Write a text file atomically (``.part`` then rename), e.g. a report or an HTML page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + PART)
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def save_safetensors(path: Path, tensors: dict[str, Any], metadata: dict[str, str] | None = None) -> Path:
    """Write tensors to a safetensors file atomically (``.part`` then rename)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + PART)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    return path


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield ``<final>.part`` to write to; on success rename it to ``final``.

    Works for files and folders (e.g. ``save_pretrained``). On an exception the ``.part`` is removed and
    the old ``final``, if any, is left untouched.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(final.name + PART)
    if tmp.is_dir():
        shutil.rmtree(tmp)
    elif tmp.exists():
        tmp.unlink()
    try:
        yield tmp
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise
    if not tmp.exists():
        raise ArtifactError(f"nothing was written to {tmp}")
    if final.is_dir():
        shutil.rmtree(final)
    os.replace(tmp, final)


def require_final(path: Path) -> Path:
    """``path`` itself, refusing a ``.part`` (an incomplete file is never read)."""
    path = Path(path)
    if path.name.endswith(PART):
        raise ArtifactError(f"refusing to read an incomplete file {path}")
    return path


def read_json(path: Path) -> Any:
    if path.name.endswith(PART):
        raise ArtifactError(f"refusing to read an incomplete file {path}")
    return json.loads(path.read_text())


class StepStore:
    """The artifacts of one step of one profile."""

    def __init__(self, profile: str, step: str, root: Path | None = None):
        self.profile = profile
        self.step = step
        self.dir = (root / profile / step) if root is not None else paths.step_dir(profile, step)
        self._root = root
        self._t0 = time.perf_counter()

    # ---- opening ----------------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        profile: str,
        step: str,
        config: Any = None,
        force: bool = False,
        root: Path | None = None,
    ) -> StepStore:
        """Open a step for writing.

        Checks upstream steps are complete, then compares ``config`` (and upstream fingerprints) with
        the sidecar already there: equal → reuse the folder (a resumable step picks up its ``.part``
        files); different → :class:`ArtifactError` unless ``force``, which clears the folder first.
        """
        store = cls(profile, step, root)
        upstream = {u: store.upstream(u).fingerprint() for u in paths.UPSTREAM.get(step, ())}
        record = {"step": step, "config": _jsonable(config), "upstream": upstream}
        sidecar = store.dir / paths.CONFIG
        if sidecar.exists():
            old = read_json(sidecar)
            old_record = {k: old.get(k) for k in record}
            if old_record != record:
                if not force:
                    changes = "\n  ".join(_diff(old_record, record)) or "(unreadable sidecar)"
                    raise ArtifactError(
                        f"{store.dir} was made with a different config or upstream:\n  {changes}\n"
                        f"Refusing to mix them. Rebuild with `make {paths.make_target(step)} "
                        f"PROFILE={profile} FORCE=1` (or force=True in the notebook), or delete the folder."
                    )
                log.warning("config changed; force=True: clearing %s", store.dir)
                shutil.rmtree(store.dir)
        elif force and store.dir.exists():
            shutil.rmtree(store.dir)
        store.dir.mkdir(parents=True, exist_ok=True)
        # Any rerun invalidates completion until metrics.json is written again.
        (store.dir / paths.METRICS).unlink(missing_ok=True)
        write_json(sidecar, {**record, "version": __version__, "git_sha": git_sha(),
                             "fingerprint": fingerprint(record)})
        store._t0 = time.perf_counter()
        return store

    def upstream(self, step: str) -> StepStore:
        """A completed upstream step of the same profile, for reading."""
        up = StepStore(self.profile, step, self._root)
        up.require_complete()
        return up

    @classmethod
    def read(cls, profile: str, step: str, root: Path | None = None) -> StepStore:
        """A completed step, for reading (raises naming the make target if it is not complete)."""
        store = cls(profile, step, root)
        store.require_complete()
        return store

    def require_complete(self) -> None:
        if not (self.dir / paths.METRICS).exists() or not (self.dir / paths.CONFIG).exists():
            raise ArtifactError(
                f"step {self.step} of profile {self.profile!r} is missing or incomplete ({self.dir}); "
                f"build it with `make {paths.make_target(self.step)} PROFILE={self.profile}`"
            )

    # ---- sidecar ----------------------------------------------------------------------------------
    @property
    def sidecar(self) -> dict[str, Any]:
        return read_json(self.dir / paths.CONFIG)

    @property
    def config(self) -> dict[str, Any]:
        """The config that made this step's artifacts (as stored)."""
        return self.sidecar["config"]

    def fingerprint(self) -> str:
        return self.sidecar["fingerprint"]

    # ---- files ------------------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        """The final path of an artifact (never a ``.part``)."""
        return self.dir / name

    def exists(self, name: str) -> bool:
        return self.path(name).exists()

    def atomic(self, name: str):
        """:func:`atomic_path` of the artifact ``name``: yield ``<name>.part``, rename it when complete."""
        return atomic_path(self.path(name))

    def write_json(self, name: str, obj: Any) -> Path:
        write_json(self.path(name), obj)
        return self.path(name)

    def read_json(self, name: str) -> Any:
        return read_json(self._existing(name))

    def save_npy(self, name: str, array: np.ndarray) -> Path:
        with self.atomic(name) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, array)
        return self.path(name)

    def load_npy(self, name: str, mmap: bool = True) -> np.ndarray:
        return np.load(self._existing(name), mmap_mode="r" if mmap else None)

    def save_tensors(self, name: str, tensors: dict[str, Any], metadata: dict[str, str] | None = None) -> Path:
        return save_safetensors(self.path(name), tensors, metadata)

    def load_tensors(self, name: str) -> dict[str, Any]:
        from safetensors.torch import load_file

        return load_file(str(self._existing(name)))

    def _existing(self, name: str) -> Path:
        p = self.path(name)
        if name.endswith(PART):
            raise ArtifactError(f"refusing to read an incomplete file {p}")
        if not p.exists():
            raise ArtifactError(
                f"{p} does not exist; build it with `make {paths.make_target(self.step)} PROFILE={self.profile}`"
            )
        return p

    # ---- completion -------------------------------------------------------------------------------
    def elapsed(self) -> float:
        return time.perf_counter() - self._t0

    def write_metrics(self, metrics: StepMetrics | dict[str, Any]) -> dict[str, Any]:
        """Write ``metrics.json`` last: the step's metrics (its :class:`~gatoms.build.metrics.StepMetrics`, or
        a dict), with ``seconds`` (wall time since :meth:`open`) when the step did not set it."""
        data = metrics.to_json() if isinstance(metrics, StepMetrics) else dict(metrics)
        if data.get("seconds") is None:
            data["seconds"] = round(self.elapsed(), 3)
        data = {"seconds": data.pop("seconds"), **data}
        self.write_json(paths.METRICS, data)
        if isinstance(metrics, StepMetrics):
            metrics.seconds = data["seconds"]
        return data

    def metrics(self) -> dict[str, Any]:
        return self.read_json(paths.METRICS)


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes (hex), read in 1 MiB blocks: pins downloaded sources and caches."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
