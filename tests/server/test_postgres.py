"""keel server on PostgreSQL: two workers share one database; the audit chain holds under
concurrent appends and the database refuses edits to it."""

from __future__ import annotations

import subprocess
import threading
import time

import httpx
import pytest
import sqlalchemy as sa

from keel.ids import new_id
from keel.server.testing import LiveServer, free_port
from keel.store.metrics import Chunk
from keel.store.rest import RestStore
from tests.server.conftest import auth_headers


@pytest.mark.postgres
def test_two_workers_on_postgresql(postgres_url, tmp_path):
    with LiveServer(tmp_path / "pg", store_url=postgres_url, workers=2) as server:
        admin = RestStore(server.url, token=server.token)
        experiment = admin.create_experiment("pg").experiment_id
        run_id = admin.create_run(experiment, "r").run_id

        def write(offset: int) -> None:
            client = RestStore(server.url, token=server.token)
            for batch in range(10):
                steps = list(range(offset + batch * 100, offset + (batch + 1) * 100))
                chunk = Chunk.from_lists("x", steps, [1] * 100, [float(s) for s in steps])
                batch_id = new_id()
                assert client.write_metric_batch(batch_id, run_id, [chunk]) is True
                assert client.write_metric_batch(batch_id, run_id, [chunk]) is False  # a replay
            client.close()

        threads = [threading.Thread(target=write, args=(i * 1000,)) for i in range(4)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        history = admin.get_metric_history(run_id, "x")
        assert len(history) == 4000 and len(set(history.steps.tolist())) == 4000
        verdict = httpx.get(
            f"{server.url}/api/v1/admin/audit/verify", headers=auth_headers(server.token)
        ).json()
        assert verdict["ok"] and verdict["entries"] >= 82
        admin.close()
    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as c:
        c.exec_driver_sql("UPDATE audit_log SET actor = 'mallory' WHERE seq = 1")
    engine.dispose()


class PrivatePostgres:
    """A PostgreSQL cluster of our own in a temporary folder (never the machine's service), so a
    test can restart it at will."""

    def __init__(self, folder):
        import os
        import shutil

        self.initdb = shutil.which("initdb")
        self.pg_ctl = shutil.which("pg_ctl")
        if not self.initdb or not self.pg_ctl:
            pytest.skip("needs PostgreSQL's initdb and pg_ctl on PATH")
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        self.prefix = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
        if self.prefix:
            os.chown(folder, _nobody(), -1)
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        subprocess.run(
            [*self.prefix, self.pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.folder / "log"),
             "-w", *args],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip

    def start(self) -> None:
        if not self.data.exists():
            subprocess.run(
                [*self.prefix, self.initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust"],
                check=True, capture_output=True, timeout=300,
            )  # fmt: skip
        self._ctl("start")

    def restart(self, mode: str) -> None:
        self._ctl("-m", mode, "restart")

    def stop(self) -> None:
        self._ctl("-m", "fast", "stop")


def _nobody() -> int:
    import pwd

    return pwd.getpwnam("nobody").pw_uid


@pytest.mark.slow
def test_postgresql_restarts_during_ingest_lose_nothing(tmp_path):
    """The database crashes (immediate shutdown) and restarts under a writer: the server answers
    503 meanwhile, the client's spool keeps the points, and every point arrives exactly once."""
    import shutil
    import tempfile
    from pathlib import Path

    from tests.server.test_reliability import _check_history, _start_writer

    # not under pytest's tmp_path: PostgreSQL runs as 'nobody' when tests run as root
    folder = Path(tempfile.mkdtemp(prefix="keel-pg-"))
    database = PrivatePostgres(folder)
    try:
        database.start()
    except (subprocess.CalledProcessError, OSError) as exc:
        pytest.skip(f"cannot run a private PostgreSQL here: {exc}")
    try:
        with LiveServer(tmp_path / "server", store_url=database.url) as server:
            stop = tmp_path / "stop"
            writer = _start_writer(server, tmp_path / "writer", stop, limit=10**9)
            run_id = writer.stdout.readline().strip()  # type: ignore[union-attr]
            for mode in ("immediate", "fast", "immediate", "immediate", "fast"):
                time.sleep(1.0)
                database.restart(mode)
            time.sleep(1.0)
            stop.write_text("")
            out, err = writer.communicate(timeout=180)
            assert writer.returncode == 0, err
            logged = int(out.split()[-1])
            assert logged > 1000
            _check_history(server, run_id, logged)
            log = (server.folder / "server.log").read_text()
        # the restarts did hit requests: the server answered them 503 (logged) and clients retried
        assert "the metadata store" in log or "cannot write metrics" in err, log[-2000:]
    finally:
        try:
            database.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
