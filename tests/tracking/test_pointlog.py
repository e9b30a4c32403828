"""The point log (ADR 012): framing a reader can check after a crash, growth, threads, batch ids."""

from __future__ import annotations

import logging
import os
import threading

import numpy as np

from keel.store.sql import SqlStore
from keel.tracking.pointlog import HEADER_SIZE, POINT_SIZE, PointLog, adopt_point_logs
from keel.tracking.spool import spool_prefix
from keel.tracking.writer import MetricWriter
from tests.conftest import run_python

RUN = "a" * 32


def _die(point_log: PointLog) -> None:
    """What kill -9 does to a point log: its lock goes, its files and mapped bytes stay."""
    os.close(point_log._fd)
    point_log._fd = -1


def _steps(records, key: str = "m") -> list[int]:
    steps: list[int] = []
    for record in records:
        for chunk in record.chunks:
            if chunk.key == key:
                steps += np.frombuffer(chunk.steps, "<i8").tolist()
    return steps


def test_threads_logging_at_once_across_segments_lose_and_repeat_nothing(tmp_path):
    log = PointLog(tmp_path, "store", segment_bytes=HEADER_SIZE + 100 * POINT_SIZE)
    keys = [log.add_key(RUN, f"t{i}") for i in range(4)]
    log.add_run(RUN)

    def work(kid: int) -> None:
        for step in range(5000):
            log.append(kid, float(step), step, 1000 + step)

    threads = [threading.Thread(target=work, args=(kid,)) for kid in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(log.segments) == 200  # 20,000 points, 100 a segment: grown as it filled
    _die(log)
    (dead,) = adopt_point_logs(tmp_path, "store")
    assert dead.runs == {RUN} and dead.pid == os.getpid()
    for i in range(4):
        assert _steps(dead.records, f"t{i}") == list(range(5000))
    assert dead.last_seen[RUN] == 1000 + 4999
    assert list(tmp_path.iterdir()) == []  # every file of the dead log is gone once taken


def test_a_torn_last_point_is_refused_by_its_crc(tmp_path, caplog):
    log = PointLog(tmp_path, "store")
    kid = log.add_key(RUN, "m")
    for step in range(10):
        log.append(kid, 0.5, step, 7)
    # the process died while copying the 10th point: its last bytes never arrived
    end = log.mm.tell()
    log.mm[end - 6 : end] = bytes(6)
    _die(log)
    with caplog.at_level(logging.WARNING, logger="keel.spool"):
        (dead,) = adopt_point_logs(tmp_path, "store")
    assert _steps(dead.records) == list(range(9))
    assert any("torn point" in r.getMessage() for r in caplog.records)


def test_a_live_log_is_left_alone_and_an_ended_run_is_not_reported(tmp_path):
    log = PointLog(tmp_path, "store")
    log.add_run(RUN)
    log.add_run("b" * 32)
    log.add_run("b" * 32, ended=True)
    log.append(log.add_key(RUN, "m"), 1.0, 0, 0)
    assert list(adopt_point_logs(tmp_path, "store")) == []  # its owner holds the lock
    assert list(adopt_point_logs(tmp_path, "other-store")) == []
    _die(log)
    (dead,) = adopt_point_logs(tmp_path, "store")
    assert dead.runs == {RUN}


def test_a_batch_in_flight_when_the_process_died_is_not_stored_twice(tmp_path):
    """The dead writer had sent a range but not noted it committed: the adopter cuts the same range
    under the same batch id, which the store already has."""
    url = f"sqlite:///{tmp_path / 'keel.db'}"
    store = SqlStore(url)
    run = store.create_run(store.create_experiment("e").experiment_id, "r").run_id
    log = PointLog(tmp_path / "spool", spool_prefix(url))
    log.add_run(run)
    kid = log.add_key(run, "m")
    for step in range(100):
        log.append(kid, float(step), step, 0)
    (record,) = log.take()  # noted in flight in the segment's header ...
    assert store.write_metric_batch(record.batch_id, run, record.chunks)  # ... and stored
    for step in range(100, 150):  # and more, never sent
        log.append(kid, float(step), step, 0)
    _die(log)
    adopter = MetricWriter(
        store, tmp_path / "spool", flush_interval=0.05, commit_interval=10, heartbeat_interval=60
    )
    adopter.close()
    assert adopter.adopted == (0, 150)
    assert np.array_equal(store.get_metric_history(run, "m").steps, np.arange(150))
    assert list((tmp_path / "spool").iterdir()) == []
    assert store.get_run(run).status.value == "CRASHED"  # its process died with the run RUNNING
    store.close()


def test_no_room_for_a_segment_keeps_logging_in_memory_with_a_warning(project):
    """A segment cannot be reserved (here: a file size limit, as a full disk would): log_metric goes
    on with points in memory, warns, and the points still reach the store."""
    result = run_python(
        "import resource, signal, keel\n"
        "keel.Client()  # the store exists (2 MiB once migrated)\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (3 << 20, 3 << 20))  # and may grow, a segment not\n"
        "with keel.start_run() as run:\n"
        "    for step in range(1000):\n"
        "        keel.log_metric('m', float(step), step=step)\n"
        "print(run.run_id)\n",
        project,
    )
    assert "cannot map a spool segment" in result.stderr and "in memory only" in result.stderr
    store = SqlStore(f"sqlite:///{project / '.keel' / 'keel.db'}", crash_check=False)
    assert np.array_equal(store.get_metric_history(result.stdout.strip(), "m").steps, np.arange(1000))
    store.close()


def test_small_and_large_ranges_make_the_same_batches(tmp_path, caplog):
    """A short process groups its few points without numpy; the chunks must be the same bytes."""
    from keel.tracking import pointlog

    log = PointLog(tmp_path, "store")
    keys = {log.add_key(RUN, "b"): (RUN, "b"), log.add_key("c" * 32, "a"): ("c" * 32, "a")}
    kids = list(keys)
    for step in range(40):
        log.append(kids[step % 3 % 2], float(step) / 3, step, 10_000 - step)
    log.append(99, 1.0, 0, 0)  # an unknown key id: skipped by both, with a warning
    segment = log.segments[0]
    data = bytes(segment.mm[HEADER_SIZE : HEADER_SIZE + 41 * POINT_SIZE])
    keys_now = dict(log.keys)

    def as_tuples(records):
        return [(r.batch_id, r.run_id, [vars_of(c) for c in r.chunks]) for r in records]

    def vars_of(chunk):
        return (chunk.key, chunk.steps, chunk.timestamps, chunk.values, chunk.count, chunk.min_step,
                chunk.max_step)  # fmt: skip

    small = pointlog.batches(segment.id, HEADER_SIZE, data, keys_now)
    try:
        pointlog._SMALL = 0
        large = pointlog.batches(segment.id, HEADER_SIZE, data, keys_now)
    finally:
        pointlog._SMALL = 512
    assert as_tuples(small) == as_tuples(large)
    assert [r.run_id for r in small] == [RUN, "c" * 32] and small[0].chunks[0].count == 27
    assert caplog.text.count("unknown key id 99") == 2
    log.close(remove=True)


def test_a_short_process_does_not_import_numpy(project):
    """Importing numpy costs a first run more than all the rest of keel's start (issue 11)."""
    result = run_python(
        "import sys, keel\nkeel.start_run(experiment='short')\nkeel.log_metric('x', 2.0)\n"
        "keel.end_run()\nkeel.flush()\nprint('numpy' in sys.modules)\n",
        project,
    )
    assert result.stdout.strip() == "False"
