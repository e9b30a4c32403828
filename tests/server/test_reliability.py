"""Reliability: a writer keeps logging while the server is killed (-9) and restarted again and
again; many writer processes log at once. Every acknowledged point arrives exactly once."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from keel.server.testing import LiveServer

WRITER = textwrap.dedent(
    """
    import os, sys, time, keel
    stop = sys.argv[1]
    limit = int(sys.argv[2])
    logged = 0
    with keel.start_run(experiment="reliability") as run:
        print(run.run_id, flush=True)
        while logged < limit and not os.path.exists(stop):
            for _ in range(200):
                keel.log_metric("x", float(logged) * 0.5, step=logged)
                logged += 1
            time.sleep(0.01)
    print(logged, flush=True)  # end_run flushed every point to the server
    """
)


def _start_writer(server: LiveServer, folder, stop, limit: int) -> subprocess.Popen[str]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "keel.toml").write_text('project = "default"\n')
    env = {
        **os.environ,
        "KEEL_TRACKING_URI": f"http://:{server.token}@127.0.0.1:{server.port}",
        "KEEL_SYSTEM_METRICS": "false",
        "KEEL_HEARTBEAT_INTERVAL": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(stop), str(limit)],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _check_history(server: LiveServer, run_id: str, count: int) -> None:
    from keel.store.sql import SqlStore

    store = SqlStore(server.config.store_url, crash_check=False)
    history = store.get_metric_history(run_id, "x")
    store.close()
    assert len(history) == count, f"{len(history)} points stored, {count} logged"
    assert np.array_equal(history.steps, np.arange(count))  # none lost, none twice
    assert np.array_equal(history.values, np.arange(count) * 0.5)


@pytest.mark.slow
def test_kill_9_and_restart_fifty_times_while_a_writer_streams(tmp_path):
    server = LiveServer(tmp_path / "server", standby=True).start()
    stop = tmp_path / "stop"
    writer = _start_writer(server, tmp_path / "writer", stop, limit=10**9)
    try:
        run_id = writer.stdout.readline().strip()  # type: ignore[union-attr]
        assert len(run_id) == 32, writer.stderr.read()  # type: ignore[union-attr]
        rng = random.Random(5)
        for _ in range(50):
            time.sleep(rng.uniform(0.05, 0.4))  # let some batches through, then pull the plug
            server.kill()
            time.sleep(rng.uniform(0.0, 0.2))
            server.start()
        stop.write_text("")
        out, err = writer.communicate(timeout=180)
        assert writer.returncode == 0, err
        logged = int(out.split()[-1])
        assert logged > 10_000
        _check_history(server, run_id, logged)
    finally:
        if writer.poll() is None:
            writer.kill()
        server.stop()


@pytest.mark.slow
def test_thirty_two_writer_processes_at_once(tmp_path):
    with LiveServer(tmp_path / "server") as server:
        stop = tmp_path / "never"
        writers = [_start_writer(server, tmp_path / f"w{i}", stop, limit=4000) for i in range(32)]
        results = [w.communicate(timeout=300) for w in writers]
        for writer, (out, err) in zip(writers, results, strict=True):
            assert writer.returncode == 0, err
            run_id, logged = out.split()
            assert int(logged) == 4000
            _check_history(server, run_id, 4000)


@pytest.mark.slow
def test_the_training_script_survives_a_server_that_is_away(tmp_path):
    """Points logged while the server is down wait in the spool and arrive once it is back."""
    server = LiveServer(tmp_path / "server").start()
    stop = tmp_path / "stop"
    writer = _start_writer(server, tmp_path / "writer", stop, limit=3000)
    try:
        run_id = writer.stdout.readline().strip()  # type: ignore[union-attr]
        server.kill()
        time.sleep(1.5)  # the script keeps logging into the spool meanwhile
        server.start()
        out, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
        _check_history(server, run_id, 3000)
    finally:
        if writer.poll() is None:
            writer.kill()
        server.stop()
