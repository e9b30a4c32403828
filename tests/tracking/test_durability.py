"""Real processes: kill -9, SIGTERM, concurrent writers, spool replay, read-only and full stores."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from keel.entities import RunStatus
from keel.errors import StoreReadOnlyError
from keel.ids import new_id
from keel.store.metrics import chunks_from_points
from keel.store.sql import SqlStore
from keel.tracking.spool import SpoolRecord, spool_prefix
from keel.tracking.writer import MetricWriter
from tests.conftest import run_python

LOGGER = """
import json, sys, time, keel
run = keel.start_run(experiment="durability")
print(json.dumps({"run_id": run.run_id}), flush=True)
step = 0
while True:
    keel.log_metric("m", float(step), step=step)
    step += 1
    if step % 1000 == 0:
        time.sleep(0.001)
"""


def _start_logger(cwd: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-c", LOGGER],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "KEEL_SYSTEM_METRICS": "false", **env},
    )
    line = process.stdout.readline()
    if not line:
        raise AssertionError(process.stderr.read())
    return process, json.loads(line)["run_id"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def tracking_env(request, project, tmp_path):
    if request.param == "sqlite":
        return {}
    return {"KEEL_TRACKING_URI": request.getfixturevalue("postgres_url")}


@pytest.mark.slow
def test_kill_9_loses_nothing_logged_200ms_before_and_duplicates_nothing(project, tracking_env):
    for _ in range(3):
        process, run_id = _start_logger(project, tracking_env)
        time.sleep(1.0)
        killed_at_ms = time.time() * 1000
        process.send_signal(signal.SIGKILL)
        process.wait()
        # the next process that opens the store recovers the spool and marks the run CRASHED
        result = run_python(
            "import json, keel\n"
            f"c = keel.Client(); h = c.get_metric_history({run_id!r}, 'm')\n"
            f"print(json.dumps({{'steps': h.steps.tolist(), 'ts': h.timestamps.tolist(),"
            f" 'status': c.get_run({run_id!r}).status.value}}))",
            project,
            env=tracking_env,
        )
        data = json.loads(result.stdout)
        steps, stamps = np.array(data["steps"]), np.array(data["ts"])
        assert len(steps) > 1000
        assert len(np.unique(steps)) == len(steps), "a replayed batch was stored twice"
        # every point logged >= 200 ms before the kill is there: steps are consecutive from 0
        assert np.array_equal(steps, np.arange(len(steps))), "a gap: points were lost"
        old_enough = stamps <= killed_at_ms - 200
        assert old_enough.sum() > 0 and old_enough[: old_enough.sum()].all()
        assert data["status"] == "CRASHED"
    assert list((project / ".keel" / "spool").glob("*.spool")) == []


def test_sigterm_flushes_and_marks_killed(project):
    process, run_id = _start_logger(project, {})
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == -signal.SIGTERM
    store = SqlStore(f"sqlite:///{project / '.keel' / 'keel.db'}", crash_check=False)
    run = store.get_run(run_id)
    assert run.status is RunStatus.KILLED and run.end_time is not None
    steps = store.get_metric_history(run_id, "m").steps
    assert len(steps) > 100 and np.array_equal(steps, np.arange(len(steps)))
    store.close()


def test_failed_script_records_traceback_without_with_block(project):
    result = run_python(
        "import keel\nkeel.start_run(name='plain')\nkeel.log_metric('x', 1.0)\n"
        "raise RuntimeError('bad data')\n",
        project,
        check=False,
    )
    assert result.returncode == 1
    store = SqlStore(f"sqlite:///{project / '.keel' / 'keel.db'}", crash_check=False)
    (run,) = store.search_runs(None)
    assert run.status is RunStatus.FAILED and "RuntimeError: bad data" in run.traceback
    assert run.metrics["x"].value == 1.0
    store.close()


WRITER = """
import sys, keel
with keel.start_run(experiment="concurrent", name=f"w{sys.argv[1]}") as run:
    for step in range(20000):
        keel.log_metric("m", step * 0.5, step=step)
        if step % 5000 == 0:
            keel.log_param(f"p{step}", step)
print(run.run_id)
"""


@pytest.mark.slow
@pytest.mark.parametrize("writers", [8])
def test_concurrent_writer_processes(project, tracking_env, writers):
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(i)],
            cwd=project,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "KEEL_SYSTEM_METRICS": "false", **tracking_env},
        )
        for i in range(writers)
    ]
    outputs = [p.communicate(timeout=240) for p in processes]
    assert [p.returncode for p in processes] == [0] * writers, [err for _, err in outputs]
    assert all("Traceback" not in err and "WARNING" not in err for _, err in outputs)
    url = tracking_env.get("KEEL_TRACKING_URI", f"sqlite:///{project / '.keel' / 'keel.db'}")
    store = SqlStore(url, crash_check=False)
    for out, _ in outputs:
        run_id = out.strip()
        history = store.get_metric_history(run_id, "m")
        assert np.array_equal(history.steps, np.arange(20000))
        assert store.get_run(run_id).status is RunStatus.FINISHED
    store.close()


def _take_over(spool_dir: Path, store: SqlStore) -> int:
    """What the next keel process does with the spools of dead ones: its writer adopts them and
    sends them to the store. Returns the points taken over."""
    writer = MetricWriter(store, spool_dir, flush_interval=0.05, commit_interval=0.5, heartbeat_interval=10)
    writer.close()
    return writer.adopted[1]


def _write_spool(directory: Path, url: str, records: list[SpoolRecord], torn: bool = False) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{spool_prefix(url)}-99999-{new_id()[:8]}.spool"
    data = b"".join(r.encode() for r in records)
    if torn:
        data += records[0].encode()[:-7]
    path.write_bytes(data)
    return path


def test_spool_replay_is_exactly_once_and_stops_at_a_torn_record(tmp_path):
    url = f"sqlite:///{tmp_path / 'keel.db'}"
    store = SqlStore(url)
    exp = store.create_experiment("e").experiment_id
    run = store.create_run(exp, "r")
    records = [
        SpoolRecord(new_id(), run.run_id, chunks_from_points([("m", float(i), i, i)])) for i in range(5)
    ]
    store.write_metric_batch(records[0].batch_id, run.run_id, records[0].chunks)  # committed earlier
    spool_dir = tmp_path / "spool"
    _write_spool(spool_dir, url, records, torn=True)
    assert _take_over(spool_dir, store) == 5  # the torn copy at the end is not a record
    assert list(store.get_metric_history(run.run_id, "m").steps) == [0, 1, 2, 3, 4]
    _write_spool(spool_dir, url, records)  # the same batches again
    assert _take_over(spool_dir, store) == 5
    assert list(store.get_metric_history(run.run_id, "m").steps) == [0, 1, 2, 3, 4]  # none twice
    assert list(spool_dir.iterdir()) == []
    # a spool for another store is left alone
    other = _write_spool(spool_dir, "sqlite:///elsewhere.db", records)
    assert _take_over(spool_dir, store) == 0 and other.exists()
    store.close()


def test_spool_of_a_live_process_is_not_touched(tmp_path):
    from keel.tracking.spool import Spool

    url = f"sqlite:///{tmp_path / 'keel.db'}"
    store = SqlStore(url)
    run = store.create_run(store.create_experiment("e").experiment_id, "r")
    live = Spool(tmp_path / "spool", url)  # holds the lock, like a running writer
    live.append(SpoolRecord(new_id(), run.run_id, chunks_from_points([("m", 1.0, 0, 0)])))
    assert _take_over(tmp_path / "spool", store) == 0
    assert live.path.exists()
    live.close(remove=False)
    store.close()


def test_read_only_store_gives_a_clear_error_and_stays_intact(tmp_path):
    path = tmp_path / "keel.db"
    store = SqlStore(f"sqlite:///{path}")
    run = store.create_run(store.create_experiment("e").experiment_id, "r")
    store.log_params(run.run_id, {"a": 1})
    store.close()
    read_only = SqlStore(f"sqlite:///file:{path}?mode=ro&uri=true", crash_check=False)
    assert read_only.get_run(run.run_id).params == {"a": "1"}
    with pytest.raises(StoreReadOnlyError, match="read-only"):
        read_only.log_params(run.run_id, {"b": 2})
    read_only.close()
    again = SqlStore(f"sqlite:///{path}")
    assert again.get_run(run.run_id).params == {"a": "1"}
    with again.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    again.close()


def test_full_disk_gives_a_clear_error_and_stays_intact(tmp_path):
    from sqlalchemy import event

    path = tmp_path / "keel.db"
    store = SqlStore(f"sqlite:///{path}")
    run = store.create_run(store.create_experiment("e").experiment_id, "r")
    store.log_params(run.run_id, {"kept": "yes"})
    with store.engine.connect() as c:
        pages = c.exec_driver_sql("PRAGMA page_count").scalar()

    @event.listens_for(store.engine, "connect")
    def _cap(dbapi_connection, _record):  # the database may not grow: SQLite reports a full disk
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages + 2}")

    store.engine.dispose()
    big = {f"k{i}": "x" * 60_000 for i in range(20)}
    with pytest.raises(StoreReadOnlyError, match="full"):
        store.log_params(run.run_id, big)
    event.remove(store.engine, "connect", _cap)
    store.engine.dispose()
    assert store.get_run(run.run_id).params == {"kept": "yes"}  # the failed batch left nothing behind
    with store.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    store.close()


def test_training_script_survives_an_unwritable_store(project, tmp_path):
    """Points stay in the spool while the store cannot be written, and land once it can."""
    result = run_python(
        "import keel, sqlalchemy as sa\n"
        "from sqlalchemy import event\n"
        "with keel.start_run() as run:\n"
        "    store = keel.Client().store\n"
        "    calls = []\n"
        "    original = store.write_metric_batch\n"
        "    def failing(*a, **k):\n"
        "        calls.append(1)\n"
        "        if len(calls) < 3:\n"
        "            raise sa.exc.OperationalError('x', {}, Exception('database is locked'))\n"
        "        return original(*a, **k)\n"
        "    store.write_metric_batch = failing\n"
        "    for i in range(1000):\n"
        "        keel.log_metric('m', i, step=i)\n"
        "print(run.run_id, len(calls))\n",
        project,
    )
    run_id, calls = result.stdout.split()
    assert int(calls) >= 3
    store = SqlStore(f"sqlite:///{project / '.keel' / 'keel.db'}", crash_check=False)
    assert len(store.get_metric_history(run_id, "m")) == 1000
    store.close()
