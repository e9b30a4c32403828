"""A training script never stops for a tracking server that is away (ADR 008).

Real processes against a real server that is not started yet, killed with -9 mid-run, or away for
the whole script: the run, its params, tags, artifacts, dataset input, model (with registration),
metrics and final status all reach the server once it is back, exactly once and in order.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from keel.server.testing import LiveServer

SCRIPT = textwrap.dedent(
    """
    import json, os, pathlib, sys, time
    import keel
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    go = pathlib.Path(sys.argv[1])     # created by the test once the server is away
    back = pathlib.Path(sys.argv[2])   # created by the test once the server may be reached
    report = {}
    with keel.start_run(experiment="offline", params={"lr": 0.1}, tags={"team": "a"}) as run:
        report["run_id"] = run.run_id
        print("started", flush=True)
        while not go.exists():
            time.sleep(0.02)
        started = time.monotonic()
        keel.log_param("layers", 3)
        keel.set_tag("stage", "outage")
        for i in range(500):
            keel.log_metric("loss", 1.0 / (i + 1), step=i)
        weights = pathlib.Path("weights.bin")
        weights.write_bytes(np.random.default_rng(0).bytes(300_000))
        report["weights"] = keel.log_artifact(weights)[0].sha256
        weights.unlink()  # the queued upload kept its own copy
        keel.log_text("hello from the outage", "notes/readme.txt")
        keel.log_dict({"nan": float("nan"), "inf": float("inf")}, "config.json")
        frame = pd.DataFrame({"x": np.arange(50.0), "y": np.arange(50) % 2})
        keel.log_input(frame, name="train")
        model = LogisticRegression().fit(frame[["x"]].to_numpy(), frame["y"].to_numpy())
        info = keel.log_model(model, "model", registered_model_name="offline-model")
        report["model_version"] = info.version
        report["logging_seconds"] = time.monotonic() - started
        print(json.dumps(report), flush=True)
        while not back.exists():
            time.sleep(0.05)
        for i in range(500, 1000):
            keel.log_metric("loss", 1.0 / (i + 1), step=i)
    print("done", flush=True)
    """
)


def _env(server: LiveServer, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "KEEL_TRACKING_URI": f"http://:{server.token}@127.0.0.1:{server.port}",
        "KEEL_SYSTEM_METRICS": "false",
        "KEEL_HEARTBEAT_INTERVAL": "1",
        **extra,
    }


def _start(server: LiveServer, folder: Path, **extra: str) -> subprocess.Popen[str]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "keel.toml").write_text('project = "default"\n')
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(folder / "go"), str(folder / "back")],
        cwd=folder,
        env=_env(server, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _check_server_has_everything(server: LiveServer, folder: Path, report: dict) -> None:
    import keel

    client = keel.Client(tracking_uri=f"http://:{server.token}@127.0.0.1:{server.port}")
    run = client.get_run(report["run_id"])
    assert run.status.value == "FINISHED"
    assert client.get_experiment(run.experiment_id).name == "offline"
    assert dict(run.params) == {"lr": "0.1", "layers": "3"}
    assert run.tags["team"] == "a" and run.tags["stage"] == "outage"
    history = client.get_metric_history(run.run_id, "loss")
    assert np.array_equal(history.steps, np.arange(1000))  # none lost, none twice
    assert np.allclose(history.values, 1.0 / (np.arange(1000) + 1))
    assert client.read_artifact(run.run_id, "notes/readme.txt") == b"hello from the outage"
    weights = client.read_artifact(run.run_id, "weights.bin")
    assert hashlib.sha256(weights).hexdigest() == report["weights"] and len(weights) == 300_000
    config = json.loads(client.read_artifact(run.run_id, "config.json"))
    assert math.isnan(config["nan"]) and config["inf"] == math.inf
    assert [d.name for d in client.list_inputs(run.run_id)] == ["train"]
    versions = client.list_model_versions("offline-model")
    assert [(v.version, v.run_id) for v in versions] == [(1, run.run_id)]  # registered exactly once
    model = client.load_model("models:/offline-model/1")
    assert model.predict(np.array([[40.0]])).shape == (1,)
    spool = folder / ".keel" / "spool"
    left = [p.name for p in spool.rglob("*") if p.is_file()] if spool.exists() else []
    assert left == [], f"the spool still holds {left}"


@pytest.mark.slow
@pytest.mark.parametrize("outage", ["before-start", "mid-run"])
def test_the_script_goes_on_while_the_server_is_away(tmp_path, outage):
    server = LiveServer(tmp_path / "server", standby=True)
    if outage == "mid-run":
        server.start()
    folder = tmp_path / "script"
    script = _start(server, folder)
    try:
        assert script.stdout.readline() == "started\n", script.stderr.read()  # type: ignore[union-attr]
        if outage == "mid-run":
            server.kill()
        (folder / "go").write_text("")
        line = script.stdout.readline()  # type: ignore[union-attr]
        assert line, script.stderr.read()  # type: ignore[union-attr]
        report = json.loads(line)
        # nothing waited for the server beyond the client's first retries (~6 s)
        assert report["logging_seconds"] < 20
        assert report["model_version"] is None  # the registration waits in the outbox
        server.start()
        (folder / "back").write_text("")
        out, err = script.communicate(timeout=120)
        assert script.returncode == 0, err
        assert out.strip().endswith("done")
        assert "Traceback" not in err
        _check_server_has_everything(server, folder, report)
    finally:
        if script.poll() is None:
            script.kill()
        server.stop()


@pytest.mark.slow
def test_a_script_that_ends_before_the_server_returns_leaves_everything_for_keel_sync(tmp_path):
    server = LiveServer(tmp_path / "server")
    folder = tmp_path / "script"
    folder.mkdir()
    (folder / "go").write_text("")
    (folder / "back").write_text("")  # the script does not wait: it ends while the server is away
    started = time.monotonic()
    script = _start(server, folder, KEEL_OFFLINE_WAIT="2")
    out, err = script.communicate(timeout=120)
    assert script.returncode == 0, err
    assert time.monotonic() - started < 60
    report = json.loads(out.splitlines()[1])
    assert "keel sync" in err  # the script said where its data waits and how to send it
    spool = folder / ".keel" / "spool"
    assert list(spool.glob("*.outbox")) and list(spool.glob("*.seg"))  # points wait in the point log

    keel_cli = [str(Path(sys.executable).parent / "keel")]
    away = subprocess.run(
        [*keel_cli, "sync", "--timeout", "1"], cwd=folder, env=_env(server), capture_output=True, text=True
    )
    assert away.returncode == 1 and "still away" in away.stderr
    assert list(spool.glob("*.outbox"))  # nothing was lost by the failed attempt

    server.start()
    try:
        done = subprocess.run(
            [*keel_cli, "sync"], cwd=folder, env=_env(server), capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert "1000 metric points" in done.stdout
        _check_server_has_everything(server, folder, report)
        again = subprocess.run(
            [*keel_cli, "sync"], cwd=folder, env=_env(server), capture_output=True, text=True
        )
        assert again.returncode == 0 and "nothing was waiting" in again.stdout
    finally:
        server.stop()
