"""``ServerConfig``: everything one ``keel server`` process needs, passed to its workers as JSON."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
from typing import Any

from keel.errors import ConfigError

__all__ = ["ENVIRONMENT_VARIABLE", "ServerConfig", "is_loopback"]

#: workers started by uvicorn read their configuration from this variable (not KEEL_*: those are
#: client settings)
ENVIRONMENT_VARIABLE = "_KEEL_SERVER_CONFIG"

MiB = 1 << 20


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    #: metadata store (sqlite:/// or postgresql://); never an http:// URL
    store_url: str
    #: artifact store root (a folder, file://, s3://...): server configuration, never from clients
    artifact_uri: str
    host: str = "127.0.0.1"
    port: int = 5055
    #: authentication on (tokens, roles). Off is only allowed when listening on loopback.
    auth: bool = True
    #: extra Host header values served (besides the listening host, localhost and 127.0.0.1)
    allowed_hosts: tuple[str, ...] = ()
    #: origins allowed to make state-changing requests besides the server's own
    allowed_origins: tuple[str, ...] = ()
    #: largest request body that is not an artifact upload (JSON), in bytes
    max_body_bytes: int = 64 * MiB
    #: largest artifact upload, in bytes
    max_artifact_bytes: int = 16 * 1024 * MiB
    #: deepest nesting of arrays/objects accepted in a JSON body
    max_json_depth: int = 64
    #: failed logins per user name from one client address within ``login_window_s`` before that
    #: address's logins for the name are refused
    login_attempts: int = 5
    #: failed logins per user name from all addresses together within ``login_window_s``: what it
    #: takes to lock a name out everywhere (many addresses), and the most guesses a name gets
    login_attempts_per_user: int = 50
    login_window_s: int = 900
    #: failed logins per client address within ``login_window_s`` (behind a reverse proxy every
    #: client has the proxy's address: raise it there)
    login_attempts_per_client: int = 50
    #: argon2 verifications (logins, first use of a token) running at once per worker, and how
    #: many more may wait; beyond that a request is answered 429 at once (each takes ~64 MiB)
    credential_checks: int = 2
    credential_check_queue: int = 16
    #: seconds a client has to send a request's headers, and at most between two pieces of its
    #: body, before the connection is closed (slow clients hold a connection each)
    request_timeout_s: float = 20.0
    #: open connections per worker; a connection beyond it is answered 503 and closed
    max_connections: int = 1000
    #: file holding the key that signs the audit log's hash chain (made at the first start; empty:
    #: ``<store file>.secret`` beside a SQLite store). Keep it away from the database's backups.
    secret_file: str = ""
    #: seconds within which repeated denials (same actor, address, action, status) are folded into
    #: one audit row plus a summary row with their count
    audit_fold_window_s: float = 60.0

    def __post_init__(self) -> None:
        if self.store_url.startswith(("http://", "https://")):
            raise ConfigError(
                "keel server needs a database as its store (sqlite:///... or postgresql://...), "
                f"not another server ({self.store_url})"
            )
        if not self.auth and not is_loopback(self.host):
            raise ConfigError(
                f"refusing to listen on {self.host} without authentication: anyone who can reach "
                "the port could read and change everything. Listen on 127.0.0.1, or keep auth on "
                "(the default) and create tokens with `keel server token create`."
            )
        for name in (
            "max_body_bytes",
            "max_artifact_bytes",
            "max_json_depth",
            "login_attempts",
            "login_attempts_per_user",
            "login_attempts_per_client",
            "credential_checks",
            "request_timeout_s",
            "max_connections",
        ):
            if not getattr(self, name) > 0:
                raise ConfigError(f"server setting {name} must be a positive number")

    def served_hosts(self) -> frozenset[str]:
        """Host header values (without port) this server answers."""
        hosts = {"localhost", "127.0.0.1", "[::1]", "::1", self.host.lower()}
        hosts.update(h.lower() for h in self.allowed_hosts)
        hosts.discard("0.0.0.0")
        hosts.discard("::")
        return frozenset(hosts)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServerConfig:
        data: dict[str, Any] = json.loads(text)
        for key in ("allowed_hosts", "allowed_origins"):
            data[key] = tuple(data.get(key, ()))
        return cls(**data)

    @classmethod
    def from_environment(cls) -> ServerConfig:
        text = os.environ.get(ENVIRONMENT_VARIABLE)
        if not text:
            raise ConfigError(f"{ENVIRONMENT_VARIABLE} is not set; start the server with `keel server`")
        return cls.from_json(text)
