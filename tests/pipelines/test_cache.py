from __future__ import annotations

import importlib
import math
import os
import sys
import textwrap
import uuid
from pathlib import Path
from types import ModuleType

import pytest

from keel.pipelines import FolderSink, MemoryCache, cache_key, explain, run_graph, source_hashes

HELPERS = """
def normalize(rows):
    return [r / 10 for r in rows]

def ping(n):
    return 0 if n <= 0 else pong(n - 1)

def pong(n):
    return 0 if n <= 0 else ping(n - 1)
"""

STEPS = """
from keel.pipelines import pipeline, step
from {pkg} import helpers
from {pkg}.helpers import normalize


@step
def load(n):
    return list(range(n))


@step
def train(data, lr=0.1):
    helpers.ping(3)
    return sum(normalize(data)) * lr{suffix}


@pipeline
def flow(n=5, lr=0.1):
    return train(load(n), lr=lr)
"""


class Project:
    """A throwaway package whose modules the tests rewrite to change source."""

    def __init__(self, root: Path) -> None:
        self.pkg = f"cachepkg_{uuid.uuid4().hex[:8]}"
        self.folder = root / self.pkg
        self.folder.mkdir()
        (self.folder / "__init__.py").write_text("")
        self.version = 0

    def write(self, helpers: str = HELPERS, suffix: str = "") -> ModuleType:
        self.version += 1
        (self.folder / "helpers.py").write_text(textwrap.dedent(helpers))
        (self.folder / "steps.py").write_text(STEPS.format(pkg=self.pkg, suffix=suffix))
        for name in ("helpers.py", "steps.py"):  # a new mtime, so stale bytecode is never used
            os.utime(self.folder / name, (1_000_000 + self.version, 1_000_000 + self.version))
        for name in [m for m in sys.modules if m.startswith(self.pkg + ".")]:
            del sys.modules[name]
        importlib.invalidate_caches()
        return importlib.import_module(f"{self.pkg}.steps")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    return Project(tmp_path)


def test_source_hashes_follow_local_helpers_and_survive_mutual_recursion(project: Project) -> None:
    module = project.write()
    hashes = source_hashes(module.train)
    names = {key.partition(":")[2] for key in hashes}
    assert names == {"train", "normalize", "ping", "pong"}  # not sum, not keel's step
    assert all(len(value) == 64 for value in hashes.values())


def test_params_hash_canonically() -> None:
    def fn(x: int) -> int:
        return x

    a = cache_key(fn, {"b": [1, 2], "a": math.nan, "c": {"y": 1, "x": 2}}, {}, {"python": "3.11"})
    b = cache_key(fn, {"c": {"x": 2, "y": 1}, "a": math.nan, "b": [1, 2]}, {}, {"python": "3.11"})
    assert a.digest == b.digest and len(a.digest) == 64
    assert cache_key(fn, {"a": 1}, {}).digest != cache_key(fn, {"a": 1.0}, {}).digest
    assert cache_key(fn, {"a": 0.1}, {}).digest != cache_key(fn, {"a": 0.1 + 2**-55}, {}).digest
    assert cache_key(fn, {}, {"data": "0" * 64}).digest != cache_key(fn, {}, {"data": "1" * 64}).digest
    assert explain(a.components, b.components) == []


def run(module: ModuleType, sink: FolderSink, cache: MemoryCache, **params: object) -> dict[str, object]:
    result = run_graph(module.flow.build(**params), sink=sink, cache=cache)
    assert result.ok, result.failed
    return {"result": result, "status": result.status}


def why(cache: MemoryCache, before: object, after: object, node: str) -> list[str]:
    old = before.nodes[node].components  # type: ignore[attr-defined]
    new = after.nodes[node].components  # type: ignore[attr-defined]
    return explain(old, new)


def test_cache_hits_and_misses_with_reasons(project: Project, tmp_path: Path) -> None:
    sink, cache = FolderSink(tmp_path / "sink"), MemoryCache()
    module = project.write()
    first = run(module, sink, cache)
    assert first["status"] == {"load": "done", "train": "done"}
    assert first["result"].outputs == pytest.approx(0.1)  # type: ignore[attr-defined]

    second = run(module, sink, cache)
    assert second["status"] == {"load": "cached", "train": "cached"}
    record = second["result"].nodes["train"]  # type: ignore[attr-defined]
    assert record.cache_hit and record.cache_key == first["result"].nodes["train"].cache_key  # type: ignore[attr-defined]
    assert second["result"].outputs == pytest.approx(0.1)  # type: ignore[attr-defined]

    # a helper's source changes: only the step that calls it reruns
    module = project.write(helpers=HELPERS.replace("r / 10", "r / 20"))
    third = run(module, sink, cache)
    assert third["status"] == {"load": "cached", "train": "done"}
    assert why(cache, second["result"], third["result"], "train") == ["source of helper `normalize` changed"]

    # a helper reached through mutual recursion changes too
    module = project.write(helpers=HELPERS.replace("r / 10", "r / 20").replace("else pong", "else  pong"))
    fourth = run(module, sink, cache)
    assert fourth["status"]["train"] == "done"
    assert why(cache, third["result"], fourth["result"], "train") == ["source of helper `ping` changed"]

    # the step's own source changes
    module = project.write(
        helpers=HELPERS.replace("r / 10", "r / 20").replace("else pong", "else  pong"), suffix=" + 0"
    )
    fifth = run(module, sink, cache)
    assert fifth["status"] == {"load": "cached", "train": "done"}
    assert why(cache, fourth["result"], fifth["result"], "train") == ["source of step `train` changed"]

    # a param changes
    sixth = run(module, sink, cache, lr=0.2)
    assert sixth["status"] == {"load": "cached", "train": "done"}
    assert why(cache, fifth["result"], sixth["result"], "train") == ["param lr: 0.1 → 0.2"]

    # an input changes (load's param changes, so train's input hash does)
    seventh = run(module, sink, cache, n=6, lr=0.2)
    assert seventh["status"] == {"load": "done", "train": "done"}
    assert why(cache, sixth["result"], seventh["result"], "train") == ["input `data` changed"]
    assert why(cache, sixth["result"], seventh["result"], "load") == ["param n: 5 → 6"]

    # and everything the same again is a full hit
    assert run(module, sink, cache, n=6, lr=0.2)["status"] == {"load": "cached", "train": "cached"}


def test_environment_is_part_of_the_key(project: Project, tmp_path: Path) -> None:
    module = project.write()
    sink, cache = FolderSink(tmp_path / "sink"), MemoryCache()
    a = run_graph(module.flow.build(), sink=sink, cache=cache, environment={"python": "3.11"})
    b = run_graph(module.flow.build(), sink=sink, cache=cache, environment={"python": "3.12"})
    assert b.status == {"load": "done", "train": "done"}
    assert explain(a.nodes["load"].components or {}, b.nodes["load"].components or {}) == [
        'environment python: "3.11" → "3.12"'
    ]


def test_cache_false_always_runs(tmp_path: Path) -> None:
    from tests.pipelines import _work

    sink, cache = FolderSink(tmp_path / "sink"), MemoryCache()
    graph = _work.four_spins.build(iterations=10)
    run_graph(graph, sink=sink, cache=cache)
    again = run_graph(_work.four_spins.build(iterations=10), sink=sink, cache=cache)
    assert again.status["spin"] == "done" and again.status["collect"] == "cached"


def test_cache_needs_a_sink() -> None:
    from keel.errors import InvalidInputError
    from tests.pipelines import _work

    with pytest.raises(InvalidInputError, match="sink"):
        run_graph(_work.four_spins.build(), cache=MemoryCache())


def test_the_store_cache_answers_only_its_projects_entries(tmp_path: Path) -> None:
    """A step cached by a pipeline of project beta is no hit for a pipeline of project alpha (nor
    for a reader of both through a server): each takes only its own project's outputs."""
    from keel.entities import StepRun
    from keel.pipelines.tracking import StoreCache
    from keel.store.sql import SqlStore

    store = SqlStore(f"sqlite:///{tmp_path / 'keel.db'}")
    key = "c" * 64
    for project in ("beta", "alpha"):
        run = store.create_run(store.create_experiment("e", project=project).experiment_id, "r").run_id
        pipeline_run = store.create_pipeline_run(run, "p", params={}, graph={})
        step = StepRun(node="n", step="n", status="done", cache_key=key, outputs={"out": f"{project}-sha"})
        store.record_step_runs(pipeline_run, [step])
    assert StoreCache(store, "alpha").get(key) == {"out": "alpha-sha"}
    assert StoreCache(store, "beta").get(key) is None  # alpha's entry replaced beta's: a miss
    assert StoreCache(store).get_many([key]) == {key: {"out": "alpha-sha"}}
    store.close()


MULTILINE = """
def normalize(rows):
    return [
        r / 10
        for r in rows
    ]  # trailing comment on the last line

def ping(n):
    return 0 if n <= 0 else pong(n - 1)

def pong(n):
    return 0 if n <= 0 else ping(n - 1)
"""


def test_a_change_on_a_functions_last_continued_line_changes_its_hash(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Function sources come from the code's line table, not ``inspect.getsource`` (whose tokenizer
    costs a cached process more than its lookups): every line the code spans must still count."""
    import inspect

    def refuse(obj: object) -> str:
        raise AssertionError(f"inspect.getsource({obj!r}) called for a function")

    monkeypatch.setattr(inspect, "getsource", refuse)
    before = source_hashes(project.write(helpers=MULTILINE).train)
    after = source_hashes(
        project.write(helpers=MULTILINE.replace("for r in rows", "for r in rows[1:]")).train
    )
    closing = source_hashes(
        project.write(helpers=MULTILINE.replace("]  # trailing", "][:1]  # trailing")).train
    )
    changed = [key for key in before if before[key] != after[key]]
    assert [key.partition(":")[2] for key in changed] == ["normalize"]
    assert closing[changed[0]] not in (before[changed[0]], after[changed[0]])  # the closing line counts
    assert before == source_hashes(project.write(helpers=MULTILINE).train)  # stable when unchanged
