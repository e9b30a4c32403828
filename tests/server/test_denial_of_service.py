"""Denial of service against a live keel server on 127.0.0.1: login floods, parallel password
guessing, slow clients. Every load here is bounded in count and time."""

from __future__ import annotations

import secrets
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import pytest

from keel.server.testing import LiveServer, free_port

PASSWORD = "correct horse battery"


def _create_user(server: LiveServer, name: str) -> None:
    server._auth().create_user(name, password=PASSWORD)


def _resident_bytes(pid: int) -> int:
    process = psutil.Process(pid)
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return total


def _login(url: str, user: str, password: str) -> httpx.Response:
    return httpx.post(f"{url}/api/v1/auth/login", json={"user": user, "password": password}, timeout=60)


def test_a_login_flood_is_refused_at_once_and_costs_bounded_memory(tmp_path):
    # each made-up name used to cost an argon2 hash (64 MiB): 64 clients held gigabytes
    with LiveServer(tmp_path / "s", login_attempts_per_client=100_000) as server:
        assert server.process is not None
        before = _resident_bytes(server.process.pid)
        peak, done = [before], threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak.append(_resident_bytes(server.process.pid))  # type: ignore[union-attr]
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            with ThreadPoolExecutor(64) as pool:
                answers = list(
                    pool.map(lambda _: _login(server.url, secrets.token_hex(6), "a guess"), range(192))
                )
        finally:
            done.set()
            sampler.join()
        statuses = [a.status_code for a in answers]
        assert set(statuses) <= {401, 429}, statuses
        busy = [a for a in answers if a.status_code == 429]
        assert busy and all(a.headers["Retry-After"] == "1" for a in busy)
        assert max(peak) - before < 300 << 20, f"grew by {(max(peak) - before) >> 20} MiB"


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_parallel_wrong_passwords_reach_the_check_at_most_the_limit(tmp_path, request, database):
    # the throttle counted failures after the fact: 30-42 of 100 parallel guesses were checked
    store_url = request.getfixturevalue("postgres_url") if database == "postgres" else None
    with LiveServer(tmp_path / "s", workers=2, store_url=store_url, credential_check_queue=200) as server:
        _create_user(server, "ada")
        with ThreadPoolExecutor(100) as pool:
            answers = list(pool.map(lambda i: _login(server.url, "ada", f"guess {i}"), range(100)))
        statuses = [a.status_code for a in answers]
        assert statuses.count(401) <= server.config.login_attempts, statuses
        assert statuses.count(429) >= 100 - server.config.login_attempts
        # the throttle refused them (a few may have found the check budget busy on a slow machine)
        refused = next(a for a in answers if "too many failed logins" in a.json()["message"])
        assert int(refused.headers["Retry-After"]) > 60
        # the right password is refused too while the name is locked; other names are not
        assert _login(server.url, "ada", PASSWORD).status_code == 429
        _create_user(server, "bob")
        assert _login(server.url, "bob", PASSWORD).status_code == 200


def test_failed_logins_from_one_address_are_limited_across_names(tmp_path):
    with LiveServer(tmp_path / "s", login_attempts_per_client=8) as server:
        statuses = [_login(server.url, f"name{i}", "a guess").status_code for i in range(10)]
        assert statuses == [401] * 8 + [429] * 2


# -- slow clients ------------------------------------------------------------------------------
def _half_sent(port: int, i: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if i % 2:  # headers that never end
        sock.sendall(b"POST /api/v1/experiments HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    else:  # a body that never ends
        sock.sendall(
            b"POST /api/v1/experiments HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"name": '
        )
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return received


def test_half_sent_requests_are_closed_after_the_timeout_and_others_are_served(tmp_path):
    with LiveServer(tmp_path / "s", request_timeout_s=2) as server:
        opened = time.monotonic()
        sockets = [_half_sent(server.port, i) for i in range(200)]
        try:
            started = time.monotonic()
            health = httpx.get(f"{server.url}/api/v1/health", timeout=10)
            assert health.status_code == 200 and time.monotonic() - started < 2
            answers = [_read_until_closed(sock) for sock in sockets]  # socket timeout: 10 s
            closed_after = time.monotonic() - opened
        finally:
            for sock in sockets:
                sock.close()
        assert 1.5 < closed_after < 10
        assert all(a.startswith(b"HTTP/1.1 408") for a in answers[1::2])  # headers never ended
        assert all(a == b"" for a in answers[::2])  # the app saw the body's client disconnect


def test_connections_beyond_the_cap_are_answered_503(tmp_path):
    with LiveServer(tmp_path / "s", max_connections=20, request_timeout_s=1) as server:
        sockets = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(25)]
        try:
            time.sleep(0.3)
            refused = [s for s in sockets if _readable(s)]
            assert len(refused) == 5
            assert all(_read_until_closed(s).startswith(b"HTTP/1.1 503") for s in refused)
            assert [_read_until_closed(s)[:12] for s in sockets[:20]] == [b"HTTP/1.1 408"] * 20
        finally:
            for sock in sockets:
                sock.close()
        assert httpx.get(f"{server.url}/api/v1/health", timeout=10).status_code == 200


def _readable(sock: socket.socket) -> bool:
    import select

    return bool(select.select([sock], [], [], 0)[0])


def test_keel_server_applies_the_request_timeout_from_its_flags(tmp_path):
    port = free_port()
    command = [sys.executable, "-c", "from keel.cli import main; main()", "server", "--port", str(port),
               "--store", f"sqlite:///{tmp_path / 'k.db'}", "--artifacts", str(tmp_path / "a"),
               "--no-auth", "--request-timeout", "1"]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.1)
        sock = _half_sent(port, 1)
        started = time.monotonic()
        try:
            assert _read_until_closed(sock).startswith(b"HTTP/1.1 408")
        finally:
            sock.close()
        assert 0.5 < time.monotonic() - started < 5
        assert (tmp_path / "k.db.secret").exists()  # the audit key beside the store
    finally:
        process.terminate()
        process.wait(timeout=10)


def _login_from(url: str, address: str, user: str, password: str) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(transport=transport, timeout=60) as client:
        return client.post(f"{url}/api/v1/auth/login", json={"user": user, "password": password})


def test_failed_logins_from_one_address_do_not_lock_the_name_out_elsewhere(tmp_path):
    # anyone who knew a user's name locked the user out for good: 5 wrong passwords every 15 minutes
    with LiveServer(tmp_path / "s", login_attempts=3, login_attempts_per_user=6) as server:
        _create_user(server, "ada")
        guesses = [_login_from(server.url, "127.0.0.2", "ada", "a guess").status_code for _ in range(5)]
        assert guesses == [401] * 3 + [429] * 2
        assert _login_from(server.url, "127.0.0.1", "ada", PASSWORD).status_code == 200
        # failures from many addresses together still lock the name out everywhere, for the window
        for address in ("127.0.0.3", "127.0.0.4"):
            for _ in range(3):
                _login_from(server.url, address, "ada", "a guess")
        locked = _login_from(server.url, "127.0.0.1", "ada", PASSWORD)
        assert locked.status_code == 429 and "login_attempts_per_user" in locked.json()["message"]
