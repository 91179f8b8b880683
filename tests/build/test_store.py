"""The artifact store: a mismatched config is refused (naming FORCE), force clears, a ``.part`` is never
read, atomic writes leave nothing behind on an exception, ``metrics.json`` marks completion, and a
missing upstream step names the make target that builds it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gatoms.build import paths
from gatoms.build.store import PART, ArtifactError, StepStore, read_json, write_json, write_text

P = "unit"


@pytest.fixture
def root(tmp_path):
    return tmp_path / "artifacts"


def complete(root, step: str, config=None) -> StepStore:
    store = StepStore.open(P, step, config=config or {"x": 1}, root=root)
    store.write_metrics({"ok": True})
    return store


def test_same_config_reuses_the_folder(root):
    store = complete(root, "00_finetune")
    store.write_json("keep.json", {"a": 1})
    again = StepStore.open(P, "00_finetune", config={"x": 1}, root=root)
    assert again.read_json("keep.json") == {"a": 1}


def test_mismatched_config_is_refused_naming_the_change_and_force(root):
    complete(root, "00_finetune", {"x": 1, "lr": 0.1})
    with pytest.raises(ArtifactError) as e:
        StepStore.open(P, "00_finetune", config={"x": 1, "lr": 0.2}, root=root)
    msg = str(e.value)
    assert "config.lr: 0.1 → 0.2" in msg
    assert f"make finetune PROFILE={P} FORCE=1" in msg


def test_force_clears_the_old_artifacts(root):
    store = complete(root, "00_finetune", {"x": 1})
    store.write_json("old.json", {})
    forced = StepStore.open(P, "00_finetune", config={"x": 2}, force=True, root=root)
    assert not forced.exists("old.json")
    assert forced.config == {"x": 2}


def test_changed_upstream_is_refused_downstream(root):
    complete(root, "00_finetune", {"x": 1})
    complete(root, "01_extract", {"y": 1})
    StepStore.open(P, "00_finetune", config={"x": 2}, force=True, root=root).write_metrics({})
    with pytest.raises(ArtifactError, match=r"(?s)upstream\.00_finetune.*make extract PROFILE=unit FORCE=1"):
        StepStore.open(P, "01_extract", config={"y": 1}, root=root)


def test_metrics_json_marks_completion(root):
    store = StepStore.open(P, "00_finetune", config={}, root=root)
    with pytest.raises(ArtifactError, match="missing or incomplete"):
        StepStore.read(P, "00_finetune", root=root)
    store._t0 -= 12.5  # the step has been open for 12.5 s (plus the few µs since)
    metrics = store.write_metrics({"loss": 0.5})
    assert metrics["loss"] == 0.5 and 12.5 <= metrics["seconds"] < 13.5
    assert StepStore.read(P, "00_finetune", root=root).metrics() == metrics
    assert store.write_metrics({"seconds": 3.0})["seconds"] == 3.0  # a step's own timing wins
    # re-opening (a re-run) removes the mark until the step finishes again
    StepStore.open(P, "00_finetune", config={}, root=root)
    with pytest.raises(ArtifactError):
        StepStore.read(P, "00_finetune", root=root)


def test_write_metrics_keeps_a_given_seconds(root):
    store = StepStore.open(P, "00_finetune", config={}, root=root)
    assert store.write_metrics({"seconds": 12.5})["seconds"] == 12.5


def test_missing_upstream_names_the_make_target(root):
    with pytest.raises(ArtifactError, match=f"make finetune PROFILE={P}"):
        StepStore.open(P, "01_extract", config={}, root=root)
    complete(root, "00_finetune")
    complete(root, "01_extract")
    with pytest.raises(ArtifactError, match=f"make ekfac PROFILE={P}"):
        StepStore.open(P, "03_atoms", config={}, root=root)


def test_missing_artifact_names_the_make_target(root):
    complete(root, "00_finetune")
    s = StepStore.read(P, "00_finetune", root=root)
    with pytest.raises(ArtifactError, match=f"does not exist; build it with `make finetune PROFILE={P}`"):
        s.load_npy("nothing.npy")


def test_a_part_file_is_never_read(root):
    store = complete(root, "00_finetune")
    store.save_npy("x.npy", np.arange(3))
    (store.dir / ("y.npy" + PART)).write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match="incomplete"):
        store.load_npy("y.npy" + PART)
    with pytest.raises(ArtifactError, match="does not exist"):
        store.load_npy("y.npy")
    with pytest.raises(ArtifactError, match="incomplete"):
        read_json(store.dir / ("z.json" + PART))
    assert store.load_npy("x.npy").tolist() == [0, 1, 2]


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_atomic_write_leaves_nothing_on_an_exception(root, kind):
    store = complete(root, "00_finetune")
    with store.atomic("thing") as tmp:
        if kind == "folder":
            tmp.mkdir()
            (tmp / "a.txt").write_text("old")
        else:
            tmp.write_text("old")
    with pytest.raises(RuntimeError, match="killed"):
        with store.atomic("thing") as tmp:
            if kind == "folder":
                tmp.mkdir()
                (tmp / "a.txt").write_text("half")
            else:
                tmp.write_text("half")
            raise RuntimeError("killed")
    assert sorted(p.name for p in store.dir.iterdir() if p.name.endswith(PART)) == []
    old = store.path("thing") / "a.txt" if kind == "folder" else store.path("thing")
    assert old.read_text() == "old"


def test_atomic_write_that_wrote_nothing_is_an_error(root):
    store = complete(root, "00_finetune")
    with pytest.raises(ArtifactError, match="nothing was written"):
        with store.atomic("empty.npy"):
            pass


def test_arrays_tensors_and_json_round_trip(root):
    store = complete(root, "00_finetune")
    a = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    store.save_npy("a.npy", a)
    assert np.array_equal(store.load_npy("a.npy"), a) and isinstance(store.load_npy("a.npy"), np.memmap)
    t = {"w": torch.arange(6.0).reshape(2, 3)}
    store.save_tensors("t.safetensors", t)
    assert torch.equal(store.load_tensors("t.safetensors")["w"], t["w"])
    assert [p.name for p in store.dir.iterdir() if p.name.endswith(PART)] == []


def test_module_level_writers_are_atomic(tmp_path):
    write_json(tmp_path / "a.json", {"k": [1, 2]})
    write_text(tmp_path / "b.md", "# hi\n")
    assert json.loads((tmp_path / "a.json").read_text()) == {"k": [1, 2]}
    assert (tmp_path / "b.md").read_text() == "# hi\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.md"]


def test_sidecar_records_config_upstream_and_version(root):
    complete(root, "00_finetune", {"x": 1})
    store = StepStore.open(P, "01_extract", config={"y": (1, 2)}, root=root)
    side = store.sidecar
    assert side["config"] == {"y": [1, 2]}
    assert side["upstream"] == {"00_finetune": StepStore.read(P, "00_finetune", root=root).fingerprint()}
    assert side["version"] and "git_sha" in side


def test_step_dir_rejects_unknown_steps():
    with pytest.raises(ValueError, match="unknown step '07_x'"):
        paths.step_dir(P, "07_x")
