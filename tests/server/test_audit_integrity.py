"""What the audit log must withstand, against a live keel server: requests that change something
and then fail, a chain rewritten by someone with database access, control characters meant for an
administrator's terminal, and junk requests meant to flood it."""

from __future__ import annotations

import json
import time

import httpx
import sqlalchemy as sa
from typer.testing import CliRunner

from keel.cli import app
from keel.server.audit import AuditLog, row_hash
from keel.server.audit_key import ensure_key, load_key
from keel.server.testing import LiveServer
from keel.store.sql import SqlStore
from tests.server.conftest import auth_headers

MLFLOW = "/api/2.0/mlflow"


def _keel(*args: str):
    return CliRunner().invoke(app, list(args))


def _entries(server: LiveServer) -> list[dict]:
    answer = httpx.get(f"{server.url}/api/v1/admin/audit?limit=10000", headers=auth_headers(server.token))
    return answer.json()  # type: ignore[no-any-return]


def test_a_log_batch_that_fails_stores_nothing_and_is_audited(tmp_path):
    with (
        LiveServer(tmp_path / "s") as server,
        httpx.Client(base_url=server.url + MLFLOW, headers=auth_headers(server.token)) as http,
    ):
        experiment = http.post("/experiments/create", json={"name": "e"}).json()["experiment_id"]
        run_id = http.post("/runs/create", json={"experiment_id": experiment}).json()["run"]["info"]["run_id"]
        batch = {
            "run_id": run_id,
            "params": [{"key": "lr", "value": "0.1"}],
            "tags": [{"key": "team", "value": "a"}],
            "metrics": [{"key": "bad key!", "value": 1.0, "timestamp": 0, "step": 0}],
        }
        assert http.post("/runs/log-batch", json=batch).status_code == 400
        data = http.get("/runs/get", params={"run_id": run_id}).json()["run"]["data"]
        assert data.get("params", []) == [] and not any(t["key"] == "team" for t in data.get("tags", []))
        last = _entries(server)[-1]
        assert (last["actor"], last["action"], last["outcome"]) == ("admin", "POST /runs/log-batch", "failed")
        assert json.loads(last["detail"])["status"] == 400


def _rechain(store_url: str, key: bytes | None) -> None:
    """What someone with write access to the database can do: change an entry and recompute the
    chain after it, and the head."""
    engine = sa.create_engine(store_url)
    with engine.begin() as c:
        c.exec_driver_sql("DROP TRIGGER IF EXISTS audit_log_no_update")
        c.exec_driver_sql("UPDATE audit_log SET actor = 'mallory' WHERE seq = 1")
        previous = "0" * 64
        for row in c.execute(sa.text("SELECT * FROM audit_log ORDER BY seq")).all():
            fields = (row.seq, row.at, row.actor, row.action, row.target, row.outcome, row.detail)
            digest = row_hash(*fields, previous, key)
            c.execute(
                sa.text("UPDATE audit_log SET prev_hash = :p, hash = :h WHERE seq = :s"),
                {"p": previous, "h": digest, "s": row.seq},
            )
            previous = digest
        c.execute(sa.text("UPDATE audit_head SET hash = :h"), {"h": previous})
    engine.dispose()


def test_a_rewritten_chain_is_caught_by_the_key_and_by_an_exported_head(tmp_path):
    with LiveServer(tmp_path / "s") as server:
        for name in ("a", "b", "c"):
            httpx.post(
                f"{server.url}/api/v1/experiments", json={"name": name}, headers=auth_headers(server.token)
            )
    store = server.config.store_url
    head = _keel("audit", "head", "--store", store)
    assert head.exit_code == 0 and head.stdout.strip().startswith("3:")
    assert _keel("audit", "verify", "--store", store, "--head", head.stdout.strip()).exit_code == 0

    _rechain(store, None)  # without the key: a plain sha256 chain no longer passes
    rewritten = _keel("audit", "verify", "--store", store)
    assert rewritten.exit_code == 1 and "entry 1: was changed" in rewritten.output

    secret = load_key(f"{store.removeprefix('sqlite:///')}.secret")
    assert secret is not None and secret.keyed_from == 1
    _rechain(store, secret.secret)  # with the key too: only the exported head tells
    assert _keel("audit", "verify", "--store", store).exit_code == 0
    anchored = _keel("audit", "verify", "--store", store, "--head", head.stdout.strip())
    assert anchored.exit_code == 1 and "entry 3: differs from the exported head" in anchored.output


def test_entries_from_before_the_key_still_verify(tmp_path):
    store = SqlStore(f"sqlite:///{tmp_path / 'a.db'}", crash_check=False)
    plain = AuditLog(store.engine, store.url)
    for i in range(3):
        plain.append("a", "POST /x", f"/x/{i}")
    key = ensure_key(tmp_path / "a.secret", store.engine)
    assert key.keyed_from == 4 and ensure_key(tmp_path / "a.secret", store.engine) == key
    assert (tmp_path / "a.secret").stat().st_mode & 0o077 == 0  # the owner's only
    keyed = AuditLog(store.engine, store.url, key)
    keyed.append("a", "POST /x", "/x/3")
    assert keyed.verify() == (4, [])
    count, problems = plain.verify()  # without the key, the keyed entries cannot be vouched for
    assert count == 4 and [p.seq for p in problems] == [4] and "--secret-file" in problems[0].message
    assert "secret" not in repr(key).replace("secret=", "")  # the key never shows in a repr
    store.close()


def test_audit_list_escapes_control_characters(tmp_path):
    hostile = "\x1b[2J\x1b[31mroot\nseq 99 forged entry\r"
    with LiveServer(tmp_path / "s") as server:
        answer = httpx.post(f"{server.url}/api/v1/auth/login", json={"user": hostile, "password": "x"})
        assert answer.status_code == 401
    listed = _keel("audit", "list", "--store", server.config.store_url)
    assert listed.exit_code == 0
    assert "\x1b" not in listed.output and "\r" not in listed.output
    assert "\\x1b[2J" in listed.output and "\\n" in listed.output
    assert not any(line.lstrip("│ ").startswith("seq 99") for line in listed.output.splitlines())


def test_repeated_denials_are_folded_into_counted_rows(tmp_path):
    with LiveServer(tmp_path / "s", audit_fold_window_s=3.0) as server:
        junk = {"Authorization": "Bearer keel_0123456789abcdef_junk"}
        with httpx.Client(base_url=server.url, headers=junk) as client:
            for _ in range(30):
                assert client.get("/api/v1/experiments").status_code == 401
        time.sleep(5)  # the window ends, and its count is written within half a window
        denied = [e for e in _entries(server) if e["action"] == "GET /experiments"]
    assert 2 <= len(denied) <= 4  # a row per request before
    details = [json.loads(e["detail"]) for e in denied]
    assert sum(d.get("repeated", 1) for d in details) == 30
    assert all(d["client"] == "127.0.0.1" and d["status"] == 401 for d in details)
    assert _keel("audit", "verify", "--store", server.config.store_url).exit_code == 0
