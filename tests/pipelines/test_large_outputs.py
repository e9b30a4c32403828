"""Large outputs are stored by a background thread while later steps run on the value in memory.

Their identity in downstream cache keys is derived from the producing step's key, so nothing waits
for their content hash; lineage and the step records still carry the content hash."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

import keel
from keel.pipelines import pipeline, register_materializer, run_graph, step, unregister_materializer
from keel.pipelines.runner import DEFER_BYTES, FolderSink, MemoryCache

ROWS = DEFER_BYTES // 8 + 1024  # float64 rows: just over the threshold
CALLS: list[str] = []


@step
def make(rows: int) -> np.ndarray:
    CALLS.append("make")
    return np.arange(rows, dtype="float64")


@step
def shift(x: np.ndarray) -> np.ndarray:
    CALLS.append("shift")
    return x + 1


@step
def mutate(x: np.ndarray) -> float:
    x += 1  # in place: not allowed on a value that is being stored
    return float(x[0])


@step
def first(x: np.ndarray) -> float:
    CALLS.append("first")
    return float(x[0])


@pipeline
def chain(rows: int = ROWS, steps: int = 3):
    x = make(rows)
    for _ in range(steps):
        x = shift(x)
    return first(x), x


@pipeline
def mutating(rows: int = ROWS):
    return mutate(make(rows))


def test_large_outputs_are_stored_with_content_hashes_and_lineage(project):
    CALLS.clear()
    result = chain.run({})
    head, array = result.outputs
    assert head == 3.0 and array[-1] == ROWS + 2 and CALLS == ["make", "shift", "shift", "shift", "first"]
    store = keel.Client().store
    steps = {s.node: s for s in store.get_pipeline_run(result.pipeline_run_id).steps}
    made = steps["make"].outputs["output"]
    # the content hash is recorded, and the identity downstream keys used is a different, derived one
    assert made["sha256"] != made["identity"]
    assert steps["shift"].inputs["x"] == made["sha256"]
    # the manifest is stored under its content hash and names the array file
    manifest = keel.Client()._context.artifacts.read_bytes(made["sha256"])
    assert b"array.npy" in manifest and hashlib.sha256(manifest).hexdigest() == made["sha256"]
    edges = store.lineage(made["sha256"])
    assert {(e.run_id, e.direction) for e in edges} >= {(result.run_id, "output")}


def test_a_rerun_hits_the_cache_for_large_outputs_and_their_readers(project):
    chain.run({})
    CALLS.clear()
    again = chain.run({})
    assert CALLS == []
    assert all(record.cache_hit for record in again.nodes.values())
    head, array = again.outputs
    assert head == 3.0 and array[-1] == ROWS + 2


def test_values_being_stored_are_read_only(project):
    result = mutating.run({})
    assert not result.ok
    assert "read-only" in result.failed["mutate"]


def test_deferred_storage_without_a_cache(tmp_path):
    CALLS.clear()
    result = run_graph(chain.build(), sink=FolderSink(tmp_path / "out"))
    assert result.ok and CALLS.count("shift") == 3
    assert all(len(record.outputs["output"]) == 64 for record in result.nodes.values())
    # every stored folder is really there
    sink = FolderSink(tmp_path / "out")
    assert all(Path(sink.open(r.outputs["output"])).is_dir() for r in result.nodes.values())


def test_memory_cache_keeps_identities(tmp_path):
    cache, sink = MemoryCache(), FolderSink(tmp_path / "out")
    run_graph(chain.build(), sink=sink, cache=cache)
    CALLS.clear()
    again = run_graph(chain.build(), sink=sink, cache=cache)
    assert CALLS == [] and again.ok
    entries = [entry for entry in cache.entries.values() if "identity" in entry["output"]]
    assert entries and all(e["output"]["identity"] != e["output"]["sha256"] for e in entries)


class Blob:
    """Large enough to be deferred; its materializer fails while storing."""

    nbytes = DEFER_BYTES


class FailingMaterializer:
    name = "failing-blob"

    def can_handle(self, obj: object) -> bool:
        return isinstance(obj, Blob)

    def save(self, obj: object, folder: Path) -> dict[str, object]:
        raise OSError("disk full (simulated by the materializer)")

    def load(self, folder: Path, metadata: dict[str, object]) -> object:
        return Blob()


@step
def blob() -> Blob:
    return Blob()


@step
def use(b: Blob) -> int:
    return 1


@pipeline
def blobs():
    return use(blob())


@pytest.fixture
def failing_materializer():
    register_materializer(FailingMaterializer())
    yield
    unregister_materializer("failing-blob")


def test_a_background_store_failure_fails_its_step(project, failing_materializer):
    result = blobs.run({})
    assert not result.ok
    assert "could not be stored" in result.failed["blob"] and "disk full" in result.failed["blob"]
    record = keel.Client().store.get_pipeline_run(result.pipeline_run_id)
    assert record.status == "failed"
