"""ADR 012 with real processes: a point is safe from kill -9 when ``log_metric`` returns, even on a
saturated machine, and a process that is already running takes over a dead one within a second."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_python

#: logs in a loop; after each call returns, notes its step in a mapped file (that outlives it)
LOGGER = """
import mmap, struct, sys, keel
run = keel.start_run(experiment="durability")
keel.flush()  # the run is in the store (its creation no longer waits for the store to open)
with open(sys.argv[1], "r+b") as f:
    returned = mmap.mmap(f.fileno(), 8)
print(run.run_id, flush=True)
step = 0
while True:
    keel.log_metric("m", float(step), step=step)
    struct.pack_into("<q", returned, 0, step)
    step += 1
"""

HOG = "import sys, time\nend = time.monotonic() + float(sys.argv[1])\nwhile time.monotonic() < end: pass\n"


def _start_logger(cwd: Path, report: Path, script: str = LOGGER) -> tuple[subprocess.Popen[str], str]:
    """Start ``script`` (it notes returned steps in ``report``); its first line of output."""
    report.write_bytes(struct.pack("<q", -1))
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(report)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "KEEL_SYSTEM_METRICS": "false"},
    )
    line = process.stdout.readline()
    if not line:
        raise AssertionError(process.stderr.read())
    return process, line.strip()


def _kill(process: subprocess.Popen[str], report: Path) -> int:
    """kill -9 the logger; the last step whose log_metric call had returned."""
    process.send_signal(signal.SIGKILL)
    process.wait()
    (step,) = struct.unpack("<q", report.read_bytes())
    return int(step)


@pytest.mark.slow
def test_kill_9_on_a_saturated_machine_loses_no_point_whose_call_returned(project, tmp_path):
    # the logger starts first: the test is about points logged on a saturated machine, not about
    # how long a starved process takes to open its store
    process, run_id = _start_logger(project, tmp_path / "returned")
    hogs = [
        subprocess.Popen([sys.executable, "-c", HOG, "12"], stdout=subprocess.DEVNULL)
        for _ in range(2 * (os.cpu_count() or 1))
    ]
    try:
        time.sleep(2.5)
        returned = _kill(process, tmp_path / "returned")
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert returned > 100
    result = run_python(
        "import json, keel\n"
        f"c = keel.Client(); h = c.get_metric_history({run_id!r}, 'm')\n"
        f"print(json.dumps({{'steps': h.steps.tolist(), 'status': c.get_run({run_id!r}).status.value}}))",
        project,
    )
    data = json.loads(result.stdout)
    steps = np.array(data["steps"])
    assert len(np.unique(steps)) == len(steps), "a batch was stored twice"
    assert np.array_equal(steps, np.arange(len(steps))), "a gap: points were lost"
    assert len(steps) > returned, f"step {returned} had returned, only {len(steps)} points are stored"
    assert data["status"] == "CRASHED"
    assert list((project / ".keel" / "spool").glob("*.seg")) == []


#: a notebook: it logged something (its writer is running), then reads a training run that dies
READER = """
import json, subprocess, sys, time, keel
from keel.errors import NotFoundError
keel.start_run(experiment="notebook")
keel.log_metric("x", 1.0)
client = keel.Client()
logger = json.loads(sys.argv[1])
child = subprocess.Popen(logger["argv"], stdout=subprocess.PIPE, text=True)
run_id = child.stdout.readline().strip()
time.sleep(1.0)
deadline = time.monotonic() + 30
while True:  # the child queues its run's creation; it lands once its store opened (ADR 013)
    try:
        client.get_run(run_id)  # a read just before the death: the next look is a second away at most
        break
    except NotFoundError:
        if time.monotonic() > deadline:
            child.kill()
            raise
        time.sleep(0.05)
child.kill()
child.wait()
killed = time.monotonic()
with open(logger["report"], "rb") as f:
    returned = int.from_bytes(f.read(8), "little", signed=True)
while True:
    steps = client.get_metric_history(run_id, "m").steps
    status = client.get_run(run_id).status.value
    waited = time.monotonic() - killed
    if (len(steps) > returned and status == "CRASHED") or waited > 10:
        break
    time.sleep(0.02)
print(json.dumps({"steps": steps.tolist(), "status": status, "waited": waited, "returned": returned}))
"""


@pytest.mark.slow
def test_a_running_process_takes_over_a_dead_one_within_a_second(project, tmp_path):
    report = tmp_path / "returned"
    report.write_bytes(struct.pack("<q", -1))
    logger = {"argv": [sys.executable, "-c", LOGGER, str(report)], "report": str(report)}
    result = run_python(
        f"import sys; sys.argv = ['-', {json.dumps(logger)!r}]\n" + READER, project, timeout=60
    )
    data = json.loads(result.stdout)
    steps = np.array(data["steps"])
    assert data["returned"] > 100
    assert data["status"] == "CRASHED"
    assert np.array_equal(steps, np.arange(len(steps))) and len(steps) > data["returned"]
    assert data["waited"] < 1.5, f"took {data['waited']:.2f} s"


@pytest.mark.slow
def test_the_server_takes_over_a_dead_training_process_on_its_machine(project, tmp_path):
    """A training script logs straight to the store that ``keel server`` (or ``keel ui``) serves,
    from the same project, and dies: the server's periodic look recovers its points and run."""
    from keel.config import Settings
    from keel.entities import RunStatus
    from keel.errors import NotFoundError
    from keel.server.testing import LiveServer
    from keel.store.base import default_locations
    from keel.store.sql import SqlStore

    report = tmp_path / "returned"
    process, run_id = _start_logger(project, report)
    url = default_locations(Settings.load())[0]  # the store the script found: the server's too
    with LiveServer(tmp_path / "server", auth=False, store_url=url):
        returned = _kill(process, report)
        killed = time.monotonic()
        store = SqlStore(url, crash_check=False)  # reads the database: takes over nothing itself
        run = None
        while time.monotonic() - killed < 10:
            try:
                run = store.get_run(run_id)
            except NotFoundError:  # its creation was still queued (ADR 013): the server creates it
                run = None
            if (
                run is not None
                and run.status is RunStatus.CRASHED
                and len(store.get_metric_history(run_id, "m")) > returned
            ):
                break
            time.sleep(0.05)
        waited = time.monotonic() - killed
        steps = store.get_metric_history(run_id, "m").steps
        store.close()
    assert run is not None and run.status is RunStatus.CRASHED, "the run never landed or never crashed"
    assert np.array_equal(steps, np.arange(len(steps))) and len(steps) > returned
    assert waited < 1.5, f"took {waited:.2f} s"


#: forks a child that outlives it (like a data loader worker), then logs in a loop
FORKER = """
import mmap, os, struct, sys, time, keel
run = keel.start_run(experiment="fork")
keel.log_metric("m", 0.0, step=0)
child = os.fork()
if child == 0:
    time.sleep(60)
    os._exit(0)
with open(sys.argv[1], "r+b") as f:
    returned = mmap.mmap(f.fileno(), 8)
print(run.run_id, child, flush=True)
step = 1
while True:
    keel.log_metric("m", float(step), step=step)
    struct.pack_into("<q", returned, 0, step)
    step += 1
"""


@pytest.mark.slow
def test_a_forked_child_that_outlives_its_parent_does_not_hide_the_parents_death(project, tmp_path):
    report = tmp_path / "returned"
    process, line = _start_logger(project, report, FORKER)
    run_id, child = line.split()
    try:
        time.sleep(0.5)
        returned = _kill(process, report)
        result = run_python(
            "import json, keel\n"
            f"c = keel.Client(); h = c.get_metric_history({run_id!r}, 'm')\n"
            f"print(json.dumps({{'steps': h.steps.tolist(), 'status': c.get_run({run_id!r}).status.value}}))",
            project,
        )
    finally:
        os.kill(int(child), signal.SIGKILL)  # the child still holds what it inherited until here
    data = json.loads(result.stdout)
    steps = np.array(data["steps"])
    assert np.array_equal(steps, np.arange(len(steps))) and len(steps) > returned
    assert data["status"] == "CRASHED"
