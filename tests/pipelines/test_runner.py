from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from keel.pipelines import (
    FolderSink,
    MemoryCache,
    StepFailedError,
    load_output,
    pipeline,
    run_graph,
    step,
)
from tests.pipelines import _work


@step
def make_array(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.float64)


@step
def mean(values: np.ndarray) -> float:
    return float(values.mean())


@pipeline
def arrays(n: int = 10) -> object:
    data = make_array(n)
    return mean(data), data


def test_records_timing_hashes_and_persisted_outputs(tmp_path: Path) -> None:
    sink = FolderSink(tmp_path / "sink")
    result = run_graph(arrays.build(), sink=sink)
    assert result.ok and result.failed == {}
    average, data = result.outputs
    assert average == 4.5
    assert isinstance(data, np.ndarray) and not isinstance(data, np.memmap)  # passed directly inline
    record = result.nodes["make_array"]
    assert record.status == "done" and record.attempts == 1 and not record.cache_hit
    assert record.started is not None and record.ended is not None and record.ended >= record.started
    assert record.wall_s >= 0 and record.cpu_s >= 0 and (record.peak_rss or 0) > 0
    assert record.cache_key is None  # no cache given
    sha = record.outputs["output"]
    assert len(sha) == 64 and sink.index[("make_array", "output")] == sha
    stored = load_output(sink.open(sha))
    assert isinstance(stored, np.memmap)
    np.testing.assert_array_equal(stored, np.arange(10.0))


def test_second_run_is_served_from_cache(tmp_path: Path) -> None:
    sink, cache = FolderSink(tmp_path / "sink"), MemoryCache()
    first = run_graph(arrays.build(), sink=sink, cache=cache)
    second = run_graph(arrays.build(), sink=sink, cache=cache)
    assert second.status == {"make_array": "cached", "mean": "cached"}
    assert second.nodes["mean"].outputs == first.nodes["mean"].outputs
    average, data = second.outputs
    assert average == 4.5 and isinstance(data, np.memmap)  # loaded from the sink, memory-mapped
    assert "[cached ]" in second.render_text()
    assert "cached" in second.render_svg()


@pytest.mark.parametrize("executor", ["inline", "process"])
def test_a_failure_skips_dependants_and_keeps_the_rest(executor: str, tmp_path: Path) -> None:
    sink = FolderSink(tmp_path / "sink")
    result = run_graph(_work.partly_failing.build(), executor=executor, sink=sink, max_workers=2)  # type: ignore[arg-type]
    assert result.status == {"boom": "failed", "add_one": "done", "add_one_2": "done", "add_one_3": "skipped"}
    assert not result.ok
    assert "ValueError: boom on 1" in result.failed["boom"]
    assert "Traceback" in result.failed["boom"]
    assert "upstream step `boom` failed" in (result.nodes["add_one_3"].error or "")
    assert result.value("add_one_2") == 3
    assert load_output(sink.open(result.nodes["add_one_2"].outputs["output"])) == 3
    with pytest.raises(StepFailedError, match="add_one_3"):
        result.outputs  # noqa: B018


@pytest.mark.parametrize("executor", ["inline", "process"])
def test_retries_rescue_a_flaky_step(executor: str) -> None:
    @pipeline
    def flaky_flow(key: str = "") -> object:
        return _work.flaky(4, key)

    _work.CALLS.clear()
    result = run_graph(flaky_flow.build(key=f"{executor}-1"), executor=executor, retry_backoff=0.01)  # type: ignore[arg-type]
    assert result.ok, result.failed
    assert result.outputs == 40
    assert result.nodes["flaky"].attempts == 2


def test_retries_run_out(monkeypatch: pytest.MonkeyPatch) -> None:
    @step(retries=1)
    def always(x: int) -> int:
        raise RuntimeError("still broken")

    @pipeline
    def broken() -> object:
        return always(1)

    begun = time.perf_counter()
    result = run_graph(broken.build(), retry_backoff=0.05)
    assert time.perf_counter() - begun >= 0.05
    assert result.nodes["always"].attempts == 2
    assert "try 2 of 2" in result.failed["always"]


def test_process_executor_runs_in_workers_and_enforces_timeouts() -> None:
    @pipeline
    def timed() -> object:
        return _work.slow(5.0), _work.pid(1), _work.slow(0.01)

    result = run_graph(timed.build(), executor="process", max_workers=2)
    assert result.status == {"slow": "failed", "pid": "done", "slow_2": "done"}
    assert "StepTimeoutError" in result.failed["slow"] and "0.5 s" in result.failed["slow"]
    import os

    assert result.value("pid") != os.getpid()


def test_process_executor_refuses_steps_it_cannot_import() -> None:
    @step
    def local(x: int) -> int:
        return x

    @pipeline
    def flow() -> object:
        return local(1), _work.add_one(1)

    result = run_graph(flow.build(), executor="process", max_workers=1)
    assert result.status == {"local": "failed", "add_one": "done"}
    assert "must be importable" in result.failed["local"]


def test_unmaterializable_output_fails_the_step_clearly(tmp_path: Path) -> None:
    import threading

    @step
    def lock(x: int) -> object:
        return threading.Lock()

    @pipeline
    def flow() -> object:
        return lock(1)

    result = run_graph(flow.build(), sink=FolderSink(tmp_path / "sink"))
    assert "output `output` of step `lock`" in result.failed["lock"]


@pytest.mark.slow
def test_process_pool_runs_independent_steps_at_the_same_time_in_workers() -> None:
    """Independent steps run concurrently, in worker processes. (The speed-up itself is measured by
    benchmarks/pipelines, not by a timed test.)"""
    result = run_graph(_work.four_naps.build(seconds=1.0), executor="process", max_workers=2)
    assert result.ok
    pids = set(result.outputs)
    assert len(pids) == 2 and os.getpid() not in pids
    spans = sorted((r.started, r.ended) for r in result.nodes.values())
    assert any(
        later_start < earlier_end
        for (_, earlier_end), (later_start, _) in zip(spans, spans[1:], strict=False)
    )


def test_a_worker_that_dies_fails_its_step_and_the_rest_completes() -> None:
    from tests.pipelines._work import with_dying_worker

    result = run_graph(with_dying_worker.build(n=2), executor="process", max_workers=1)
    assert "did not come back" in result.failed["die"] or "worker" in result.failed["die"]
    assert result.value("add_one") == 3


def test_a_step_wrapped_under_another_name_runs_in_the_pool():
    from tests.pipelines._work import tripled

    result = run_graph(tripled.build(n=3), executor="process", max_workers=2)
    assert result.ok, result.failed
    assert result.outputs == [0, 3, 6]
