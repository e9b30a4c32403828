"""Cache look-ups in batches, small outputs built in memory, cached outputs loaded only when read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keel
from keel.pipelines import pipeline, register_materializer, run_graph, step, unregister_materializer
from keel.pipelines.materializers import encode_small_output, save_output
from keel.pipelines.runner import FolderSink, MemoryCache


@step
def square(x: int) -> int:
    return x * x


@step
def total(values: list[int]) -> int:
    return sum(values)


@pipeline
def fan(n: int = 50):
    return total(square.map(list(range(n))))


class CountingCache(MemoryCache):
    def __init__(self) -> None:
        super().__init__()
        self.single = 0
        self.batches: list[int] = []

    def get(self, key: str) -> Any:
        self.single += 1
        return super().get(key)

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        self.batches.append(len(keys))
        return {key: self.entries[key] for key in keys if key in self.entries}


def test_map_branches_are_looked_up_in_one_batch(tmp_path):
    cache, sink = CountingCache(), FolderSink(tmp_path / "out")
    first = run_graph(fan.build(n=50), sink=sink, cache=cache)
    assert first.ok and first.outputs == sum(i * i for i in range(50))
    assert cache.batches == [50] and cache.single == 1  # the branches at once, then `total`
    again = run_graph(fan.build(n=50), sink=sink, cache=cache)
    assert again.outputs == first.outputs
    assert all(record.cache_hit for record in again.nodes.values())
    assert cache.batches == [50, 50]


def test_a_chain_is_looked_up_step_by_step(tmp_path):
    cache, sink = CountingCache(), FolderSink(tmp_path / "out")

    @pipeline
    def chain():
        return square(square(square(2)))

    assert run_graph(chain.build(), sink=sink, cache=cache).outputs == 256
    assert cache.batches == [] and cache.single == 3


def test_small_values_built_in_memory_match_what_save_output_writes(tmp_path):
    for value in [1, 2.5, float("nan"), "text", [1, {"a": None}], {"inf": float("inf")}, True, None]:
        files = encode_small_output(value, 1 << 16)
        assert files is not None
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        save_output(value, folder)
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == files
    assert encode_small_output((1, 2), 1 << 16) is None  # tuples go elsewhere (pickle)
    assert encode_small_output("x" * 100, 10) is None  # over the limit: the folder path


LOADS: list[str] = []


class Token:
    def __init__(self, text: str):
        self.text = text


class TokenMaterializer:
    name = "token"

    def can_handle(self, obj: object) -> bool:
        return isinstance(obj, Token)

    def save(self, obj: Token, folder: Path) -> dict[str, object]:
        (folder / "token.txt").write_text(obj.text)
        return {}

    def load(self, folder: Path, metadata: dict[str, object]) -> Token:
        LOADS.append((folder / "token.txt").read_text())
        return Token((folder / "token.txt").read_text())


@step
def start() -> Token:
    return Token("a")


@step
def grow(token: Token) -> Token:
    return Token(token.text + "b")


@pipeline
def tokens():
    return grow(grow(grow(start())))


def test_a_fully_cached_run_loads_only_what_the_pipeline_returns(project):
    register_materializer(TokenMaterializer())
    try:
        assert tokens.run({}).outputs.text == "abbb"
        LOADS.clear()
        again = tokens.run({})
        assert all(record.cache_hit for record in again.nodes.values())
        assert LOADS == []  # nothing loaded yet
        assert again.outputs.text == "abbb"
        assert LOADS == ["abbb"]  # only the returned output
    finally:
        unregister_materializer("token")


def test_manifests_written_in_the_background_are_all_stored(project):
    result = fan.run({"n": 30})
    client = keel.Client()
    artifacts = [a for a in client.list_artifacts(result.run_id) if a.name.startswith("steps/")]
    assert len(artifacts) == 31
    for artifact in artifacts:  # each blob is there and verifies
        assert client._context.artifacts.read_bytes(artifact.sha256)
