"""`keel server user/token` and `keel audit` work directly on the server's database."""

from __future__ import annotations

import json

import httpx
from typer.testing import CliRunner

from keel.cli import app
from keel.server.testing import LiveServer


def _keel(*args: str, input: str | None = None):
    return CliRunner().invoke(app, list(args), input=input)


def test_users_roles_and_tokens_from_the_command_line(tmp_path):
    store = f"sqlite:///{tmp_path / 'server.db'}"
    assert _keel("server", "user", "create", "ada", "--password-stdin", "--store", store,
                 input="a long enough password\n").exit_code == 0  # fmt: skip
    assert _keel("server", "user", "role", "ada", "default", "write", "--store", store).exit_code == 0
    bad_scope = _keel("server", "token", "create", "--user", "ada", "--scope", "root", "--store", store)
    assert bad_scope.exit_code == 2 and "unknown scope 'root'" in bad_scope.output
    created = _keel(
        "server", "token", "create", "--user", "ada", "--scope", "write", "--json", "--store", store
    )
    assert created.exit_code == 0, created.output
    token = json.loads(created.stdout)["token"]
    listed = json.loads(_keel("server", "token", "list", "--json", "--store", store).stdout)
    assert [(t["user"], t["scope"], t["revoked_at"]) for t in listed] == [("ada", "write", None)]
    assert token not in _keel("server", "token", "list", "--store", store).output

    with LiveServer(tmp_path / "live", store_url=store) as server:
        headers = {"Authorization": f"Bearer {token}"}
        created_experiment = httpx.post(
            f"{server.url}/api/v1/experiments", json={"name": "e"}, headers=headers
        )
        assert created_experiment.status_code == 200
        token_id = listed[0]["token_id"]
        assert _keel("server", "token", "revoke", token_id, "--store", store).exit_code == 0
        assert httpx.get(f"{server.url}/api/v1/experiments", headers=headers).status_code == 401
    assert _keel("server", "token", "revoke", token_id, "--store", store).exit_code == 1  # already revoked

    verified = _keel("audit", "verify", "--json", "--store", store)
    assert verified.exit_code == 0 and json.loads(verified.stdout)["ok"] is True
    entries = json.loads(_keel("audit", "list", "--json", "--store", store).stdout)
    assert [e["outcome"] for e in entries][-2:] == ["ok", "denied"]


def test_token_create_names_the_documented_setting_first(tmp_path):
    store = f"sqlite:///{tmp_path / 'server.db'}"
    assert _keel("server", "user", "create", "ada", "--store", store).exit_code == 0
    created = _keel("server", "token", "create", "--user", "ada", "--store", store)
    assert created.exit_code == 0, created.output
    hint = created.stderr
    assert "KEEL_TRACKING_TOKEN=" in hint and hint.index("KEEL_TRACKING_TOKEN") < hint.index("Authorization")


def test_token_commands_say_an_http_tracking_uri_is_why_they_need_store(monkeypatch):
    monkeypatch.setenv("KEEL_TRACKING_URI", "http://:keel_secret@127.0.0.1:5055")
    refused = _keel("server", "token", "revoke", "abcd")
    assert refused.exit_code == 2
    message = " ".join(refused.output.split())
    assert "KEEL_TRACKING_URI" in message and "http://127.0.0.1:5055" in message and "--store" in message
    assert "keel_secret" not in message


def test_user_list_shows_roles_created_and_live_tokens(tmp_path):
    store = f"sqlite:///{tmp_path / 'server.db'}"
    assert _keel("server", "user", "create", "bob", "--store", store).exit_code == 0
    assert _keel("server", "user", "create", "ada", "--admin", "--store", store).exit_code == 0
    assert _keel("server", "user", "role", "bob", "vision", "write", "--store", store).exit_code == 0
    assert _keel("server", "user", "role", "bob", "nlp", "read", "--store", store).exit_code == 0
    for _ in range(2):
        assert _keel("server", "token", "create", "--user", "bob", "--store", store).exit_code == 0
    revoked = json.loads(_keel("server", "token", "list", "--json", "--store", store).stdout)[0]["token_id"]
    assert _keel("server", "token", "revoke", revoked, "--store", store).exit_code == 0

    listed = _keel("server", "user", "list", "--json", "--store", store)
    assert listed.exit_code == 0, listed.output
    users = json.loads(listed.stdout)
    assert [(u["name"], u["admin"], u["roles"], u["tokens"]) for u in users] == [
        ("ada", True, {}, 0),
        ("bob", False, {"nlp": "read", "vision": "write"}, 1),
    ]
    assert all(isinstance(u["created_at"], int) for u in users)
    assert "hash" not in listed.stdout
    shown = _keel("server", "user", "list", "--store", store)
    assert (
        shown.exit_code == 0
        and "write on vision" in shown.stdout
        and "admin on every project" in shown.stdout
    )
    assert "list" in _keel("server", "user", "--help").stdout
