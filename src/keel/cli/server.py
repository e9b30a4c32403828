"""``keel server`` (run the server; manage its users and tokens) and ``keel audit``."""

from __future__ import annotations

import os
import sys

import typer

from keel.cli._output import format_time, handle_errors, print_json, table

app = typer.Typer(
    help="Run keel server, and manage its users and API tokens.",
    invoke_without_command=True,
    rich_markup_mode=None,
)
token_app = typer.Typer(
    help="Create, list and revoke API tokens.", no_args_is_help=True, rich_markup_mode=None
)
user_app = typer.Typer(help="Create users and give them roles.", no_args_is_help=True, rich_markup_mode=None)
audit_app = typer.Typer(
    help="Check and read the server's audit log.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(token_app, name="token")
app.add_typer(user_app, name="user")

STORE_HELP = "Metadata store (sqlite:///... or postgresql://...). Default: the project's .keel/keel.db."


def _store_url(store: str | None) -> str:
    if store:
        return store
    from keel.config import Settings
    from keel.store.base import default_locations

    return default_locations(Settings.load())[0]


def _auth(store: str | None) -> object:
    from keel.server import require_server_extra

    require_server_extra("Managing keel server's users and tokens", ("argon2",))
    from keel.server.auth import AuthStore
    from keel.store.sql import SqlStore

    url = _store_url(store)
    if url.startswith(("http://", "https://")):
        from keel.errors import ConfigError
        from keel.store.rest import split_url

        shown = split_url(url)[0]  # never print the token a URI may carry
        source = "--store" if store else "the tracking URI (KEEL_TRACKING_URI or keel.toml)"
        raise ConfigError(
            f"{source} is {shown}, a keel server's address, but users and tokens are managed on the "
            "server's database itself: give it with --store (sqlite:///... or postgresql://...), "
            "on the server's machine"
        )
    return AuthStore(SqlStore(url, crash_check=False).engine, url)


@app.callback()
@handle_errors
def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", help="Address to listen on. Beyond loopback, auth must stay on."),
    port: int = typer.Option(5055, help="Port to listen on."),
    store: str | None = typer.Option(None, help=STORE_HELP),
    artifacts: str | None = typer.Option(
        None, help="Artifact store root (a folder, s3://bucket/prefix). Default: .keel/artifacts."
    ),
    workers: int = typer.Option(1, min=1, max=256, help="uvicorn worker processes (they share the store)."),
    no_auth: bool = typer.Option(False, "--no-auth", help="Serve without authentication (loopback only)."),
    allowed_host: list[str] = typer.Option(
        [], "--allowed-host", help="A Host name clients use to reach this server (repeatable)."
    ),
    allowed_origin: list[str] = typer.Option(
        [], "--allowed-origin", help="A web origin allowed to make changes (repeatable)."
    ),
    request_timeout: float = typer.Option(
        20.0,
        "--request-timeout",
        min=0.1,
        help="Seconds a client has to send a request's headers "
        "(and at most between two pieces of its body) before it is disconnected.",
    ),
    max_connections: int = typer.Option(
        1000, "--max-connections", min=1, help="Open connections per worker; more are answered 503."
    ),
    secret_file: str | None = typer.Option(
        None,
        "--secret-file",
        help="The audit key file, made at the first start. Default: "
        "<store file>.secret beside a SQLite store, else .keel/server.secret.",
    ),
) -> None:
    """Serve the native API (/api/v1) and the MLflow-compatible API (/api/2.0/mlflow).

    At the first start with authentication on, a one-time bootstrap token is printed: redeem it
    with POST /api/v1/auth/bootstrap to create the first admin (there is no default password).
    """
    if ctx.invoked_subcommand is not None:
        return
    from keel.server import require_server_extra

    require_server_extra("keel server")
    from keel.config import Settings
    from keel.server.config import ENVIRONMENT_VARIABLE, ServerConfig
    from keel.store.base import default_locations

    settings = Settings.load()
    default_store, default_artifacts, _ = default_locations(settings)
    config = ServerConfig(
        secret_file=_secret_file(store or default_store, secret_file),
        request_timeout_s=request_timeout,
        max_connections=max_connections,
        store_url=store or default_store,
        artifact_uri=artifacts or default_artifacts,
        host=host,
        port=port,
        auth=not no_auth,
        allowed_hosts=tuple(allowed_host),
        allowed_origins=tuple(allowed_origin),
    )
    auth = _auth(config.store_url)
    if config.auth:
        bootstrap = auth.ensure_bootstrap()  # type: ignore[attr-defined]
        if bootstrap:
            url = f"http://{host}:{port}"
            sys.stderr.write(
                "\nkeel server has no users yet. One-time bootstrap token (valid 24 h, printed once):\n\n"
                f"    {bootstrap}\n\nCreate the first admin and get an admin API token with:\n\n"
                f"    curl -X POST {url}/api/v1/auth/bootstrap -H 'Content-Type: application/json' \\\n"
                f'         -d \'{{"token": "{bootstrap}", "user": "YOUR_NAME"}}\'\n\n'
                "(or, with access to the database: keel server user create NAME --admin && "
                "keel server token create --user NAME --scope admin)\n\n"
            )
    os.environ[ENVIRONMENT_VARIABLE] = config.to_json()
    import uvicorn

    sys.stderr.write(
        f"keel server on http://{host}:{port} (store {config.store_url}, artifacts {config.artifact_uri}, "
        f"{workers} worker{'s' if workers != 1 else ''}, auth {'on' if config.auth else 'OFF'})\n"
    )
    from keel.server.connections import raise_open_file_limit, uvicorn_options

    raise_open_file_limit()
    uvicorn.run(
        "keel.server.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        **uvicorn_options(config),
    )


@user_app.command("create")
@handle_errors
def user_create(
    name: str = typer.Argument(..., help="User name."),
    admin: bool = typer.Option(False, "--admin", help="Admin on every project."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read a password (for browser logins) from standard input."
    ),
    store: str | None = typer.Option(None, help=STORE_HELP),
) -> None:
    """Create a user (directly in the server's database)."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    _auth(store).create_user(name, password=password, is_admin=admin)  # type: ignore[attr-defined]
    typer.echo(f"created user {name}{' (admin)' if admin else ''}")


@user_app.command("list")
@handle_errors
def user_list(
    store: str | None = typer.Option(None, help=STORE_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """List users: roles per project, when created, how many API tokens still work.

    Reads the server's database directly, like the other `keel server user` commands: whoever can
    open it administers the server. Password hashes and token secrets are never shown.
    """
    found = _auth(store).list_users()  # type: ignore[attr-defined]
    if json_output:
        print_json([
            {"name": u.name, "admin": u.is_admin, "roles": dict(u.roles), "created_at": u.created_at,
             "disabled_at": u.disabled_at, "tokens": u.tokens}
            for u in found
        ])  # fmt: skip
        return
    table(
        "users",
        ["name", "roles", "created", "tokens", "status"],
        [
            [u.name,
             ", ".join(["admin on every project"] * u.is_admin + [f"{r} on {p}" for p, r in u.roles.items()]),
             format_time(u.created_at), u.tokens, "disabled" if u.disabled_at else "active"]
            for u in found
        ],
    )  # fmt: skip


@user_app.command("role")
@handle_errors
def user_role(
    name: str = typer.Argument(..., help="User name."),
    project: str = typer.Argument(..., help="Project name, or '*' for every project."),
    role: str = typer.Argument(..., help="read, write, promote, admin, or 'none' to remove."),
    store: str | None = typer.Option(None, help=STORE_HELP),
) -> None:
    """Give a user a role on a project (or remove it with 'none')."""
    _auth(store).set_role(name, project, None if role == "none" else role)  # type: ignore[attr-defined]
    typer.echo(f"{name}: {role} on {project}")


@token_app.command("create")
@handle_errors
def token_create(
    user: str = typer.Option(..., "--user", help="The user the token acts for."),
    project: str = typer.Option("*", help="Project the token is limited to ('*': all the user's projects)."),
    scope: str = typer.Option("read", help="read, write, promote or admin."),
    expires_in_days: float | None = typer.Option(None, "--expires-in-days", help="Lifetime in days."),
    description: str | None = typer.Option(None, help="What the token is for."),
    store: str | None = typer.Option(None, help=STORE_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Create an API token; it is printed once and stored only as an argon2 hash."""
    expires = None if expires_in_days is None else expires_in_days * 86400
    token, info = _auth(store).create_token(  # type: ignore[attr-defined]
        user, project=project, scope=scope, expires_in_s=expires, description=description
    )
    if json_output:
        print_json({"token": token, "token_id": info.token_id, "expires_at": info.expires_at})
        return
    typer.echo(token)
    sys.stderr.write(
        f"token {info.token_id} for {user}: {scope} on {project}"
        f"{', expires ' + format_time(info.expires_at) if info.expires_at else ''}. "
        "Use it as KEEL_TRACKING_TOKEN=TOKEN (with KEEL_TRACKING_URI=http://host:port), "
        "or send 'Authorization: Bearer TOKEN' from other HTTP clients.\n"
    )


@token_app.command("list")
@handle_errors
def token_list(
    user: str | None = typer.Option(None, "--user", help="Only this user's tokens."),
    store: str | None = typer.Option(None, help=STORE_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """List tokens (never their secrets)."""
    from keel.store.wire import to_json

    found = _auth(store).list_tokens(user)  # type: ignore[attr-defined]
    if json_output:
        print_json([to_json(t) for t in found])
        return
    table(
        "API tokens",
        ["id", "user", "kind", "project", "scope", "created", "expires", "revoked", "description"],
        [
            [t.token_id, t.user or "", t.kind, t.project, t.scope, format_time(t.created_at),
             format_time(t.expires_at), format_time(t.revoked_at), t.description or ""]
            for t in found
        ],
    )  # fmt: skip


@token_app.command("revoke")
@handle_errors
def token_revoke(
    token_id: str = typer.Argument(..., help="The token id (from `keel server token list`)."),
    store: str | None = typer.Option(None, help=STORE_HELP),
) -> None:
    """Revoke a token; every server worker refuses it from the next request on."""
    _auth(store).revoke_token(token_id)  # type: ignore[attr-defined]
    typer.echo(f"revoked {token_id}")


SECRET_HELP = (
    "The server's audit key file. Default: <store file>.secret beside a SQLite store, "
    "else .keel/server.secret."
)


def _secret_file(url: str, given: str | None) -> str:
    if given:
        return given
    from keel.config import Settings
    from keel.server.audit_key import default_secret_file
    from keel.store.base import default_locations

    return default_secret_file(url) or str(default_locations(Settings.load())[2] / "server.secret")


def _audit_log(store: str | None, secret_file: str | None) -> object:
    from keel.server.audit import AuditLog
    from keel.server.audit_key import load_key
    from keel.store.sql import SqlStore

    url = _store_url(store)
    key = load_key(_secret_file(url, secret_file))
    return AuditLog(SqlStore(url, crash_check=False).engine, url, key)


@audit_app.command("head")
@handle_errors
def audit_head(
    store: str | None = typer.Option(None, help=STORE_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Print the newest entry's number and hash (SEQ:HASH); keep it outside the server, and later
    check with `keel audit verify --head SEQ:HASH` that the log still leads to it."""
    seq, digest = _audit_log(store, None).head()  # type: ignore[attr-defined]
    if json_output:
        print_json({"seq": seq, "hash": digest})
    else:
        typer.echo(f"{seq}:{digest}")


@audit_app.command("verify")
@handle_errors
def audit_verify(
    store: str | None = typer.Option(None, help=STORE_HELP),
    secret_file: str | None = typer.Option(None, "--secret-file", help=SECRET_HELP),
    head: str | None = typer.Option(
        None, "--head", help="A head printed earlier by `keel audit head` (SEQ:HASH) the log must reach."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Check the audit log's hash chain; exit 1 if any entry was changed, removed or reordered."""
    from keel.server.audit import parse_head

    anchor = parse_head(head) if head else None
    count, problems = _audit_log(store, secret_file).verify(anchor)  # type: ignore[attr-defined]
    if json_output:
        print_json({"entries": count, "ok": not problems, "problems": [p.__dict__ for p in problems]})
    elif problems:
        for problem in problems:
            typer.echo(f"entry {problem.seq}: {problem.message}", err=True)
        typer.echo(f"audit log TAMPERED: {len(problems)} problem(s) in {count} entries", err=True)
    else:
        typer.echo(f"audit log intact: {count} entries, hash chain verified")
    if problems:
        raise typer.Exit(1)


@audit_app.command("list")
@handle_errors
def audit_list(
    limit: int = typer.Option(50, min=1, help="How many of the newest entries."),
    store: str | None = typer.Option(None, help=STORE_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Show the newest audit entries (control characters in them are shown as escapes)."""
    entries = _audit_log(store, None).entries(limit)  # type: ignore[attr-defined]
    if json_output:
        print_json(entries)
        return
    table(
        "audit log",
        ["seq", "time", "actor", "action", "target", "outcome"],
        [
            [e["seq"], format_time(e["at"]), e["actor"], e["action"], e["target"], e["outcome"]]
            for e in entries
        ],
    )
