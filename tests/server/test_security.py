"""Security of keel server, tested against a live server on 127.0.0.1."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import httpx
import pytest

from keel.server.testing import LiveServer, free_port
from tests.server.conftest import auth_headers

MiB = 1 << 20
KEEL = [sys.executable, "-c", "from keel.cli import main; main()"]

_FILL = {
    "run_id": "0" * 32,
    "experiment_id": "999999",
    "sha256": "a" * 64,
    "version": "1",
    "pipeline_run_id": "999999",
}


def _fill(path: str) -> str:
    return re.sub(r"\{([a-z_]+)(:[a-z]+)?\}", lambda m: _FILL.get(m.group(1), "x"), path)


def _route_table(server: LiveServer) -> list[tuple[str, str, str]]:
    """(method, concrete path, policy scope) for every route the server has (ids in paths are
    filled with well-formed ids of records that do not exist)."""
    from keel.server.app import create_app
    from keel.server.policy import policy_of, walk_routes

    app = create_app(server.config)
    table = []
    for path, methods, route in walk_routes(app.routes):
        scope = policy_of(route)[0]
        for method in sorted(methods - {"HEAD"} if len(methods) > 1 else methods):
            table.append((method, _fill(path), scope))
    assert len(table) > 40
    return table


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LiveServer(tmp_path_factory.mktemp("secure"), max_body_bytes=1 * MiB) as live:
        yield live


@pytest.fixture(scope="module")
def admin(server):
    with httpx.Client(base_url=server.url, headers=auth_headers(server.token), timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def run_id(admin):
    experiment = admin.post("/api/v1/experiments", json={"name": "secure"}).json()
    return admin.post(
        "/api/v1/runs", json={"experiment_id": experiment["experiment_id"], "name": "r"}
    ).json()["run_id"]


# -- deny by default, walked over the whole route table ----------------------------------------
def test_anonymous_requests_are_refused_on_every_route(server):
    anonymous = httpx.Client(base_url=server.url)
    for method, path, scope in _route_table(server):
        response = anonymous.request(method, path, json={} if method != "GET" else None)
        if scope == "public":
            assert response.status_code != 401, (method, path)
            continue
        assert response.status_code == 401, (method, path, response.status_code, response.text[:200])
        assert response.headers.get("www-authenticate", "").startswith("Bearer")


def test_tokens_without_the_scope_are_refused_on_every_route(server):
    reader = httpx.Client(base_url=server.url, headers=auth_headers(server.make_token("read", "default")))
    outsider = httpx.Client(
        base_url=server.url, headers=auth_headers(server.make_token("admin", "elsewhere"))
    )
    checked = 0
    for method, path, scope in _route_table(server):
        if scope in ("public", "authenticated", "read"):
            continue
        body = {} if method != "GET" else None
        response = reader.request(method, path, json=body)
        assert response.status_code == 403, (method, path, scope, response.status_code, response.text[:200])
        if scope != "admin" and path.startswith("/api/v1/") and path.count("/") == 3:
            # routes naming no record, so the project comes from the body (default "default")
            response = outsider.request(method, path, json=body)
            assert response.status_code in (403, 400), (method, path, scope, response.status_code)
        checked += 1
    assert checked > 20


def test_malformed_json_is_a_400_on_every_route_with_a_body(server):
    headers = {**auth_headers(server.token), "Content-Type": "application/json"}
    client = httpx.Client(base_url=server.url, headers=headers)
    for method, path, _scope in _route_table(server):
        if method in ("GET", "HEAD", "DELETE") or "/artifacts/" in path and method == "PUT":
            continue
        for bad in (b"{bad", b'{"a": [1, 2', b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000):
            response = client.request(method, path, content=bad)
            assert response.status_code == 400, (
                method,
                path,
                bad[:10],
                response.status_code,
                response.text[:200],
            )


# -- projects, scopes, revocation, expiry ------------------------------------------------------
def test_scopes_and_projects(server, admin, run_id):
    writer = auth_headers(server.make_token("write", "default"))
    promoter = auth_headers(server.make_token("promote", "default"))
    other = auth_headers(server.make_token("admin", "other"))
    url = server.url + "/api/v1"
    assert (
        httpx.post(f"{url}/runs/{run_id}/params", json={"params": {"a": 1}}, headers=writer).status_code
        == 200
    )
    # an admin of another project: the run reads as missing there
    assert httpx.get(f"{url}/runs/{run_id}", headers=other).status_code == 404
    # a record may name only bytes its writer sent (or may read): the writer uploads them
    sha = _upload(httpx.Client(base_url=server.url, headers=writer), b"model bytes")
    assert httpx.post(f"{url}/models", json={"name": "m"}, headers=writer).status_code == 200
    version = httpx.post(
        f"{url}/models/m/versions", json={"artifact_sha256": sha, "flavor": "sklearn"}, headers=writer
    )
    assert version.status_code == 200, version.text
    alias = {"version": 1}
    assert httpx.put(f"{url}/models/m/aliases/champion", json=alias, headers=writer).status_code == 403
    assert httpx.put(f"{url}/models/m/aliases/champion", json=alias, headers=promoter).status_code == 200
    # a role smaller than the token's scope wins
    capped = auth_headers(server.make_token("admin", "default", role="read"))
    assert (
        httpx.post(f"{url}/runs/{run_id}/params", json={"params": {"b": 1}}, headers=capped).status_code
        == 403
    )
    # listing shows only readable projects
    admin_h = auth_headers(server.token)
    httpx.post(f"{url}/experiments", json={"name": "hidden", "project": "other"}, headers=admin_h)
    names = {e["name"] for e in httpx.get(f"{url}/experiments", headers=writer).json()}
    assert "secure" in names and "hidden" not in names
    hidden = httpx.get(
        f"{url}/experiments/by-name", params={"name": "hidden", "project": "other"}, headers=admin_h
    )
    hidden_id = hidden.json()["experiment_id"]
    hidden_run = httpx.post(
        f"{url}/runs", json={"experiment_id": hidden_id, "name": "h"}, headers=admin_h
    ).json()
    found = {r["run_id"] for r in httpx.post(f"{url}/runs/search", json={}, headers=writer).json()["runs"]}
    assert run_id in found and hidden_run["run_id"] not in found
    everything = httpx.post(f"{url}/runs/search", json={}, headers=admin_h).json()["runs"]
    assert hidden_run["run_id"] in {r["run_id"] for r in everything}
    refused = httpx.post(f"{url}/runs/search", json={"experiment_ids": [hidden_id]}, headers=writer)
    assert refused.status_code == 404  # as for an experiment that does not exist


def test_revocation_is_immediate_on_every_worker(tmp_path):
    with LiveServer(tmp_path / "two", workers=2) as server:
        admin = auth_headers(server.token)
        created = httpx.post(
            f"{server.url}/api/v1/admin/tokens", json={"user": "admin", "scope": "read"}, headers=admin
        ).json()
        token = auth_headers(created["token"])
        for _ in range(10):  # both workers have verified (and remembered) it
            assert httpx.get(f"{server.url}/api/v1/experiments", headers=token).status_code == 200
        token_id = created["info"]["token_id"]
        assert httpx.delete(f"{server.url}/api/v1/admin/tokens/{token_id}", headers=admin).status_code == 200
        for _ in range(10):
            assert httpx.get(f"{server.url}/api/v1/experiments", headers=token).status_code == 401


def test_expired_tokens_are_refused(server):
    created = httpx.post(
        f"{server.url}/api/v1/admin/tokens",
        json={"user": "admin", "scope": "read", "expires_in_s": 1},
        headers=auth_headers(server.token),
    ).json()
    headers = auth_headers(created["token"])
    assert httpx.get(f"{server.url}/api/v1/experiments", headers=headers).status_code == 200
    time.sleep(1.1)
    assert httpx.get(f"{server.url}/api/v1/experiments", headers=headers).status_code == 401
    wrong = created["token"][:-4] + "AAAA"
    assert httpx.get(f"{server.url}/api/v1/experiments", headers=auth_headers(wrong)).status_code == 401


def test_tokens_are_stored_hashed(server):
    import sqlalchemy as sa

    from keel.store import schema as t
    from keel.store.sql import SqlStore

    store = SqlStore(server.config.store_url, crash_check=False)
    with store.engine.connect() as c:
        hashes = c.execute(sa.select(t.api_tokens.c.secret_hash)).scalars().all()
    store.close()
    secret = server.token.split("_", 2)[2]
    assert hashes and all(h.startswith("$argon2") for h in hashes)
    assert not any(secret in h for h in hashes)


# -- browser sessions: login throttling, CSRF --------------------------------------------------
def test_login_throttling_and_csrf(server, run_id):
    from keel.server.auth import AuthStore
    from keel.store.sql import SqlStore

    store = SqlStore(server.config.store_url, crash_check=False)
    auth = AuthStore(store.engine)
    auth.create_user("ada", password="correct horse battery")
    auth.set_role("ada", "default", "write")
    auth.create_user("bob", password="correct horse battery")
    store.close()
    url = server.url + "/api/v1/auth/login"
    for _ in range(5):
        assert httpx.post(url, json={"user": "bob", "password": "wrong password!"}).status_code == 401
    throttled = httpx.post(url, json={"user": "bob", "password": "correct horse battery"})
    assert throttled.status_code == 429 and "too many failed logins" in throttled.json()["message"]

    with httpx.Client(base_url=server.url) as browser:
        login = browser.post("/api/v1/auth/login", json={"user": "ada", "password": "correct horse battery"})
        assert login.status_code == 200
        cookie = login.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        csrf = login.json()["csrf_token"]
        assert browser.get(f"/api/v1/runs/{run_id}").status_code == 200  # reads need no CSRF token
        change = {"tags": {"from": "browser"}}
        assert browser.post(f"/api/v1/runs/{run_id}/tags", json=change).status_code == 403
        assert (
            browser.post(f"/api/v1/runs/{run_id}/tags", json=change, headers={"X-Keel-CSRF": "x"}).status_code
            == 403
        )
        ok = browser.post(f"/api/v1/runs/{run_id}/tags", json=change, headers={"X-Keel-CSRF": csrf})
        assert ok.status_code == 200
        forged = browser.post(
            f"/api/v1/runs/{run_id}/tags",
            json=change,
            headers={"X-Keel-CSRF": csrf, "Origin": "https://evil.example"},
        )
        assert forged.status_code == 403
        assert browser.post("/api/v1/auth/logout", headers={"X-Keel-CSRF": csrf}).status_code == 200
        assert browser.get(f"/api/v1/runs/{run_id}").status_code == 401


# -- Host, Origin, cross-site ------------------------------------------------------------------
@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1.evil.example", "[::2]:1"])
def test_foreign_host_headers_are_refused(server, host):
    response = httpx.get(
        f"{server.url}/api/v1/experiments", headers={**auth_headers(server.token), "Host": host}
    )
    assert response.status_code == 400 and "does not serve the host" in response.json()["message"]


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "https://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}],
)
def test_cross_site_changes_are_refused(server, run_id, headers):
    response = httpx.post(
        f"{server.url}/api/v1/runs/{run_id}/tags",
        json={"tags": {"x": "y"}},
        headers={**auth_headers(server.token), **headers},
    )
    assert response.status_code == 403
    same = {"Origin": server.url}
    assert (
        httpx.post(
            f"{server.url}/api/v1/runs/{run_id}/tags",
            json={"tags": {"x": "y"}},
            headers={**auth_headers(server.token), **same},
        ).status_code
        == 200
    )


# -- artifacts: paths never reach storage ------------------------------------------------------
def _upload(client: httpx.Client, data: bytes) -> str:
    import hashlib

    sha = hashlib.sha256(data).hexdigest()
    response = client.put(f"/api/v1/artifacts/{sha}", content=data)
    assert response.status_code == 200, response.text
    return sha


TRAVERSALS = [
    "../../../etc/passwd",
    "..%2f..%2f..%2fetc%2fpasswd",
    "%2e%2e/%2e%2e/etc/passwd",
    "%252e%252e%252fetc%252fpasswd",
    "..%5c..%5cetc%5cpasswd",
    "..\\..\\etc\\passwd",
    "a" * 64 + ";x=../../etc/passwd",
    "a" * 64 + "%3b/../../etc/passwd",
    "a" * 64 + "%23/../../../etc/passwd",
    "a" * 64 + "%00",
    "%00" + "a" * 63,
    "/etc/passwd",
    "%2fetc%2fpasswd",
    "....//....//etc/passwd",
    "A" * 64,
    "a" * 63,
    "a" * 65,
    "secret.txt",
    "../secret.txt",
]


@pytest.mark.parametrize("method", ["GET", "PUT", "HEAD"])
def test_path_traversal_on_artifact_routes_is_refused(server, admin, method):
    (server.folder / "secret.txt").write_text("TOP SECRET")
    for attempt in TRAVERSALS:
        raw = f"{server.url}/api/v1/artifacts/{attempt}"
        response = admin.request(method, httpx.URL(raw), content=b"TOP SECRET" if method == "PUT" else None)
        assert response.status_code in (400, 404, 405), (method, attempt, response.status_code)
        assert b"TOP SECRET" not in response.content and b"root:" not in response.content
    # raw bytes on the wire, beyond what a URL parser lets through
    raw_paths = [
        b"/api/v1/artifacts/../../etc/passwd",
        b"/api/v1/artifacts/..\\..\\secret.txt",
        b"/api/v1/artifacts/%2e%2e%2fsecret.txt#frag",
        b"/api/v1/../v1/artifacts/" + b"a" * 64,
    ]
    for raw_path in raw_paths:
        assert _raw_get(server.port, raw_path, server.token).startswith((b"HTTP/1.1 400", b"HTTP/1.1 404"))
    stored = [p for p in (server.folder / "server-artifacts").rglob("*") if p.is_file()]
    assert not any(p.read_bytes() == b"TOP SECRET" for p in stored)


def _raw_get(port: int, path: bytes, token: str) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token.encode()
            + b"\r\nConnection: close\r\n\r\n"
        )  # fmt: skip
        sock.settimeout(10)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_client_chosen_storage_locations_are_refused(server, admin, run_id):
    wrong = admin.put("/api/v1/artifacts/" + "b" * 64, content=b"not those bytes")
    assert wrong.status_code == 400 and "hash to" in wrong.json()["message"]
    assert not list((server.folder / "server-artifacts").rglob("b" * 64))
    sha = _upload(admin, b"payload")
    for name in ("../escape.txt", "/etc/passwd", "a\\b", "C:/x", "a/../../b", "nul\x00.txt"):
        body = {"artifacts": [{"name": name, "sha256": sha, "size": 7, "media_type": "text/plain"}]}
        response = admin.post(f"/api/v1/runs/{run_id}/artifacts", json=body)
        assert response.status_code == 400, (name, response.text)
    for extra in ({"path": "/tmp/x"}, {"uri": "file:///etc"}, {"artifact_uri": "s3://evil/"}):
        body = {
            "artifacts": [{"name": "ok.txt", "sha256": sha, "size": 7, "media_type": "text/plain", **extra}]
        }
        assert admin.post(f"/api/v1/runs/{run_id}/artifacts", json=body).status_code == 400
        assert (
            admin.post("/api/v1/experiments", json={"name": "x-" + next(iter(extra)), **extra}).status_code
            == 400
        )
    lying = {"artifacts": [{"name": "ok.txt", "sha256": sha, "size": 999, "media_type": "text/plain"}]}
    assert admin.post(f"/api/v1/runs/{run_id}/artifacts", json=lying).status_code == 400
    unknown = {"artifacts": [{"name": "ok.txt", "sha256": "c" * 64, "size": 7, "media_type": "text/plain"}]}
    assert admin.post(f"/api/v1/runs/{run_id}/artifacts", json=unknown).status_code == 400


def test_downloads_are_verified(server, admin):
    sha = _upload(admin, b"original bytes")
    assert admin.get(f"/api/v1/artifacts/{sha}").content == b"original bytes"
    blob = next((server.folder / "server-artifacts").rglob(sha))
    blob.chmod(0o644)
    blob.write_bytes(b"tampered bytes")
    response = admin.get(f"/api/v1/artifacts/{sha}")
    assert response.status_code == 500 and response.json()["error"]["type"] == "ArtifactCorruptedError"
    assert b"tampered" not in response.content


# -- limits, nesting, NaN ----------------------------------------------------------------------
def test_oversized_deep_and_special_inputs(server, admin, run_id):
    big = admin.post(f"/api/v1/runs/{run_id}/tags", json={"tags": {"x": "y" * (2 * MiB)}})
    assert big.status_code == 413 and "max_body_bytes" in big.json()["message"]
    assert big.json()["error"]["limit"] == MiB
    chunked = admin.post(
        f"/api/v1/runs/{run_id}/tags",
        content=iter([b'{"tags": {"x": "', b"y" * (2 * MiB), b'"}}']),
        headers={"Content-Type": "application/json"},
    )
    assert chunked.status_code == 413
    deep = admin.post(
        f"/api/v1/runs/{run_id}/tags",
        content="[" * 65 + "]" * 65,
        headers={"Content-Type": "application/json"},
    )
    assert deep.status_code == 400 and "max_json_depth" in deep.json()["message"]
    long_value = admin.post(f"/api/v1/runs/{run_id}/params", json={"params": {"p": "v" * 70_000}})
    assert long_value.status_code == 413 and long_value.json()["error"]["type"] == "LimitExceededError"
    special = [float("nan"), float("inf"), float("-inf"), -0.0, 5e-324]
    batch = {"batch_id": "special", "chunks": [{"key": "s", "steps": [0, 1, 2, 3, 4], "timestamps": [1] * 5,
                                                 "values": special}]}  # fmt: skip
    sent = admin.post(
        f"/api/v1/runs/{run_id}/metrics/batches",
        content=json.dumps(batch),
        headers={"Content-Type": "application/json"},
    )
    assert sent.status_code == 200
    values = json.loads(admin.get(f"/api/v1/runs/{run_id}/metrics/history", params={"key": "s"}).content)[
        "values"
    ]
    import math

    assert math.isnan(values[0]) and values[1:3] == [math.inf, -math.inf]
    assert math.copysign(1, values[3]) == -1 and values[4] == 5e-324
    bad_chunk = {
        "batch_id": "bad",
        "chunks": [{"key": "s", "steps": [1, 2], "timestamps": [1], "values": [1.0]}],
    }
    assert admin.post(f"/api/v1/runs/{run_id}/metrics/batches", json=bad_chunk).status_code == 400
    too_many = {
        "batch_id": "many",
        "chunks": [{"key": "s", "steps": "AAAA", "timestamps": "AAAA", "values": "A"}],
    }
    assert admin.post(f"/api/v1/runs/{run_id}/metrics/batches", json=too_many).status_code == 400


# -- audit log ---------------------------------------------------------------------------------
def test_audit_log_records_changes_and_denials_and_detects_tampering(tmp_path):
    import sqlalchemy as sa

    with LiveServer(tmp_path / "audited") as server:
        headers = auth_headers(server.token)
        experiment = httpx.post(
            f"{server.url}/api/v1/experiments", json={"name": "e"}, headers=headers
        ).json()
        httpx.post(f"{server.url}/api/v1/experiments", json={"name": "f"})  # anonymous: denied
        httpx.get(f"{server.url}/api/v1/experiments", headers={"Host": "evil.example"})
        httpx.post(
            f"{server.url}/api/v1/admin/tokens", json={"user": "admin", "scope": "write"}, headers=headers
        )
        entries = httpx.get(f"{server.url}/api/v1/admin/audit", headers=headers).json()
        assert experiment["experiment_id"] == "1"
    outcomes = [(e["actor"], e["action"], e["outcome"]) for e in entries]
    assert ("admin", "POST /experiments", "ok") in outcomes
    assert any(actor == "anonymous" and outcome == "denied" for actor, _, outcome in outcomes)
    assert sum(1 for _, action, _ in outcomes if "tokens" in action) == 1
    store_url = server.config.store_url
    verify = [*KEEL, "audit", "verify", "--store", store_url]
    ok = subprocess.run(verify, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "intact" in ok.stdout

    engine = sa.create_engine(store_url)
    with engine.begin() as c, pytest.raises(sa.exc.DatabaseError, match="append-only"):
        c.exec_driver_sql("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    with engine.begin() as c:  # someone with write access to the database file gets around it
        c.exec_driver_sql("DROP TRIGGER audit_log_no_update")
        c.exec_driver_sql("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    tampered = subprocess.run(verify, capture_output=True, text=True)
    assert tampered.returncode == 1
    assert "entry 2: was changed" in tampered.stderr and "TAMPERED" in tampered.stderr
    with engine.begin() as c:
        c.exec_driver_sql("UPDATE audit_log SET actor = 'admin' WHERE seq = 2")  # put it back
        c.exec_driver_sql("DROP TRIGGER audit_log_no_delete")
        c.exec_driver_sql("DELETE FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)")
    truncated = subprocess.run(verify, capture_output=True, text=True)
    assert truncated.returncode == 1 and "removed from the end" in truncated.stderr
    engine.dispose()


# -- start-up: bootstrap token, loopback without auth -------------------------------------------
def test_first_start_prints_a_one_time_bootstrap_token(tmp_path):
    port = free_port()
    store = f"sqlite:///{tmp_path / 'boot.db'}"
    command = [*KEEL, "server", "--port", str(port), "--store", store,
               "--artifacts", str(tmp_path / "a")]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        token = None
        for line in process.stderr:  # type: ignore[union-attr]
            if line.strip().startswith("keel_"):
                token = line.strip()
            if line.startswith("keel server on"):
                break
        assert token is not None
        url = f"http://127.0.0.1:{port}/api/v1"
        for _ in range(200):
            try:
                httpx.get(f"{url}/health")
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        assert (
            httpx.get(f"{url}/experiments", headers=auth_headers(token)).status_code == 401
        )  # bootstrap only
        redeemed = httpx.post(f"{url}/auth/bootstrap", json={"token": token, "user": "root"})
        assert redeemed.status_code == 200
        admin = auth_headers(redeemed.json()["token"])
        assert httpx.get(f"{url}/auth/whoami", headers=admin).json()["is_admin"] is True
        again = httpx.post(f"{url}/auth/bootstrap", json={"token": token, "user": "mallory"})
        assert again.status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_refuses_to_listen_beyond_loopback_without_auth(tmp_path):
    command = [*KEEL, "server", "--host", "0.0.0.0", "--no-auth",
               "--store", f"sqlite:///{tmp_path / 'x.db'}"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0 without authentication" in result.stderr


def test_a_policy_checks_the_value_the_route_uses(server, admin, run_id):
    """A run id or project given twice (query and body, or twice in the query) cannot make the
    policy check one record while the route changes another."""
    other = admin.post("/api/v1/experiments", json={"name": "victim", "project": "victims"}).json()
    victim = admin.post("/api/v1/runs", json={"experiment_id": other["experiment_id"], "name": "v"}).json()
    writer = httpx.Client(base_url=server.url, headers=auth_headers(server.make_token("write", "default")))
    body = {"run_id": victim["run_id"], "pipeline": "p", "params": {}, "graph": {}}
    smuggled = writer.post("/api/v1/pipeline-runs", params={"run_id": run_id}, json=body)
    assert smuggled.status_code == 400 and "more than once" in smuggled.json()["message"]
    assert writer.post("/api/v1/pipeline-runs", json=body).status_code == 404  # another project's run
    twice = writer.get("/api/v1/models/m", params=[("project", "default"), ("project", "victims")])
    assert twice.status_code == 400
    alias = writer.request(
        "DELETE", "/api/v1/models/m/aliases/a", params={"project": "victims"}, json={"project": "default"}
    )
    assert alias.status_code == 400


def test_artifact_uploads_have_their_own_limit(tmp_path):
    import hashlib

    from keel.server.testing import ThreadedServer

    with ThreadedServer(tmp_path / "small", auth=False, max_artifact_bytes=1000) as server:
        client = httpx.Client(base_url=server.url)
        data = b"x" * 2000
        sha = hashlib.sha256(data).hexdigest()
        declared = client.put(f"/api/v1/artifacts/{sha}", content=data)
        assert declared.status_code == 413 and "max_artifact_bytes" in declared.json()["message"]
        streamed = client.put(f"/api/v1/artifacts/{sha}", content=iter([data[:900], data[900:]]))
        assert streamed.status_code == 413 and streamed.json()["error"]["limit"] == 1000
        assert not list((tmp_path / "small" / "server-artifacts").rglob(sha))
        small = b"y" * 1000
        assert (
            client.put(f"/api/v1/artifacts/{hashlib.sha256(small).hexdigest()}", content=small).status_code
            == 200
        )


def test_history_answers_are_bounded_and_say_how_to_ask(tmp_path):
    import numpy as np

    from keel.server.testing import ThreadedServer
    from keel.store.metrics import Chunk
    from keel.store.rest import RestStore

    with ThreadedServer(tmp_path / "long", auth=False) as server:
        store = RestStore(server.url)
        run_id = store.create_run(store.create_experiment("long").experiment_id, "r").run_id
        steps = np.arange(1_200_000, dtype="<i8")
        for start in range(0, steps.size, 200_000):
            part = steps[start : start + 200_000]
            chunk = Chunk("x", part.tobytes(), part.tobytes(), part.astype("<f8").tobytes(), part.size,
                          int(part[0]), int(part[-1]))  # fmt: skip
            store.write_metric_batch(f"b{start}", run_id, [chunk])
        url = f"{server.url}/api/v1/runs/{run_id}/metrics/history"
        refused = httpx.get(url, params={"key": "x"}, timeout=60)
        assert refused.status_code == 413 and "max_points" in refused.json()["message"]
        assert refused.json()["error"]["limit"] == 1_000_000
        sampled = httpx.get(url, params={"key": "x", "max_points": 1000}, timeout=60).json()
        assert 0 < len(sampled["values"]) <= 1000 and sampled["steps"][-1] == 1_199_999
        assert len(store.get_metric_history(run_id, "x")) == 1_200_000  # base64: all of it
        store.close()
