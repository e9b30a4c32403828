"""``keel ui`` as a real process: it serves the project's store, and refuses what it must not do."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import run_python, wait_for_http

KEEL = str(Path(sys.executable).with_name("keel"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_keel_ui_serves_the_project_store(project: Path) -> None:
    run_python(
        "import keel\nwith keel.start_run(experiment='served'):\n    keel.log_metric('m', 1.0)\n",
        project,
    )
    port = _free_port()
    env = {**os.environ, "KEEL_SYSTEM_METRICS": "false"}
    process = subprocess.Popen(
        [KEEL, "ui", "--port", str(port), "--no-browser"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        response = wait_for_http(process, f"http://127.0.0.1:{port}/", 30, follow_redirects=True)
        if response is None:
            raise AssertionError(process.stderr.read() if process.stderr else "no output")
        assert response.status_code == 200 and "served" in response.text
        assert str(response.url).endswith("/ui/")
    finally:
        process.terminate()
        process.wait(10)
    assert f"keel ui on http://127.0.0.1:{port}/ui/" in (process.stderr.read() if process.stderr else "")


def test_keel_ui_refuses_a_public_address_and_a_busy_port(project: Path) -> None:
    public = subprocess.run(
        [KEEL, "ui", "--host", "0.0.0.0", "--no-browser"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert public.returncode == 2 and "keel server" in public.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = subprocess.run(
            [KEEL, "ui", "--port", str(port), "--no-browser"],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert taken.returncode == 2 and "--port" in taken.stderr


def test_keel_ui_without_a_project_says_so_and_creates_no_store(tmp_path: Path) -> None:
    """The UI only reads: started in a folder without a project (say the home folder) it must not
    leave a ``.keel`` there for every project below to share."""
    folder = tmp_path / "home"
    folder.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "KEEL_TRACKING_URI"}
    result = subprocess.run(
        [KEEL, "ui", "--port", str(_free_port()), "--no-browser"],
        cwd=folder,
        env={**env, "HOME": str(folder)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "no keel project found from" in " ".join(result.stderr.split())
    assert not (folder / ".keel").exists()
