"""Request guards that run before any route: Host and Origin checks, path sanity, body limits, JSON.

``Guard`` is a pure ASGI middleware. For every request it

1. answers 400 to a ``Host`` header the server does not serve (DNS-rebinding protection);
2. answers 403 to a state-changing request (POST, PUT, PATCH, DELETE) whose ``Origin`` is not the
   server's own or a configured one, or that a browser marks ``Sec-Fetch-Site: cross-site``;
3. answers 400 to a path holding NUL, backslashes, ``.``/``..`` segments, ``;`` parameters or
   percent-encodings that survive one decoding (double encoding) — before any route sees it;
4. answers 413, naming the limit, to a body over ``max_body_bytes`` (``max_artifact_bytes`` for the
   streamed upload routes under :data:`STREAMED_PREFIXES`, whose bodies are not buffered);
5. parses a JSON body once: malformed JSON, or nesting deeper than ``max_json_depth``, is a 400;
   ``NaN`` and ``±Infinity`` are accepted. The parsed value is left in ``scope["keel.json"]`` for
   routes that read the body themselves. JSON is any spelling of ``application/json`` or
   ``application/...+json`` (media types are case-insensitive and may carry parameters), or a body
   with no Content-Type; a form body is parsed into ``scope["keel.form"]``; any other body is marked
   ``scope["keel.unread_body"]`` so that a policy needing the body refuses it
   (:func:`keel.server.policy.request_value`) instead of seeing "no project";
6. writes an audit entry, before the response starts, for every state-changing request and every
   request answered 401 or 403.

Responses are JSON with ``NaN``/``Infinity`` allowed (:class:`KeelJSONResponse`), so special floats
round-trip; errors look like ``{"error_code": ..., "message": ..., "error": {"type": ..., ...}}``
(MLflow clients read the first two keys, keel's ``RestStore`` the last).
"""

from __future__ import annotations

import json
import logging
import re
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from itertools import chain
from typing import Any

import orjson
from fastapi.routing import APIRoute
from starlette.responses import JSONResponse

from keel.errors import (
    ArtifactCorruptedError,
    ConflictError,
    KeelError,
    LimitExceededError,
    NotFoundError,
    ParamConflictError,
    StoreError,
)

__all__ = [
    "FORM_MEDIA_TYPE",
    "STREAMED_PREFIXES",
    "Guard",
    "KeelJSONResponse",
    "KeelRoute",
    "error_body",
    "error_response",
    "is_json",
    "json_depth",
    "media_type",
    "status_for",
]

log = logging.getLogger("keel.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: routes whose bodies are streamed to the artifact store rather than buffered (limit: max_artifact_bytes)
STREAMED_PREFIXES = ("/api/v1/artifacts/", "/api/2.0/mlflow-artifacts/")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DOUBLE_ENCODED = re.compile(r"%[0-9a-fA-F]{2}")


class KeelRoute(APIRoute):
    """A route whose return value is sent as it is (through :class:`KeelJSONResponse`), never
    through a response model: pydantic's JSON mode would turn NaN and infinities into null.
    Use it with ``APIRouter(route_class=KeelRoute)``."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any):
        kwargs["response_model"] = None
        super().__init__(path, endpoint, **kwargs)


class KeelJSONResponse(JSONResponse):
    """JSON that keeps NaN and ±Infinity (written as ``NaN``, ``Infinity``, as Python, MLflow and
    JavaScript's JSON5 readers accept) instead of failing on them."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, allow_nan=True, separators=(",", ":")).encode()


_ERROR_CODES = {
    400: "INVALID_PARAMETER_VALUE",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    405: "ENDPOINT_NOT_FOUND",
    409: "RESOURCE_ALREADY_EXISTS",
    413: "INVALID_PARAMETER_VALUE",
    429: "REQUEST_LIMIT_EXCEEDED",
    503: "TEMPORARILY_UNAVAILABLE",
}


def status_for(exc: BaseException) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, LimitExceededError):
        return 413
    if isinstance(exc, ArtifactCorruptedError):
        return 500
    if isinstance(exc, StoreError):
        return 503
    if isinstance(exc, KeelError):
        return 400 if exc.exit_code == 2 else 500
    return 500


def error_body(status: int, message: str, kind: str = "Error", **fields: Any) -> dict[str, Any]:
    return {
        "error_code": _ERROR_CODES.get(status, "INTERNAL_ERROR"),
        "message": message,
        "error": {"type": kind, "message": message, **fields},
    }


def scrub(message: str, state: Any) -> str:
    """``message`` without the server's store URL and artifact root (clients never see storage)."""
    places = (("store", "url", "the server's store"), ("artifacts", "uri", "the artifact store"))
    for name, attribute, label in places:
        location = getattr(getattr(state, name, None), attribute, None)
        if isinstance(location, str) and location:
            message = message.replace(f" in {location}", "").replace(location, label)
    return message


def error_response(exc: BaseException, state: Any = None) -> KeelJSONResponse:
    """The JSON error for ``exc``; ``state`` (the app's) lets storage locations be scrubbed from it."""
    status = status_for(exc)
    fields: dict[str, Any] = {}
    if isinstance(exc, LimitExceededError):
        fields = {"limit": exc.limit, "actual": exc.actual, "what": exc.what}
    elif isinstance(exc, ParamConflictError):
        fields = {"key": exc.key, "old": exc.old, "new": exc.new}
    elif isinstance(exc, ArtifactCorruptedError):
        fields = {"expected": exc.expected, "actual": exc.actual}
    message = str(exc) if isinstance(exc, KeelError) else "internal server error; see the server log"
    if state is not None:
        message = scrub(message, state)
    kind = type(exc).__name__ if isinstance(exc, KeelError) else "InternalError"
    headers = {"Retry-After": "1"} if status == 503 else None
    return KeelJSONResponse(error_body(status, message, kind, **fields), status_code=status, headers=headers)


def _strict_depth(value: Any) -> int:
    """Deepest nesting of a value parsed by orjson (whose strings are valid Unicode already),
    level by level with C-level passes: a batch of a thousand flat records costs two."""
    depth, level = 0, [value]
    while True:
        kinds = set(map(type, level))
        if dict not in kinds and list not in kinds:
            return depth
        depth += 1
        if kinds == {dict}:
            level = list(chain.from_iterable(map(dict.values, level)))
        elif kinds == {list}:
            level = list(chain.from_iterable(level))
        else:
            level = list(
                chain.from_iterable(
                    node.values() if type(node) is dict else node
                    for node in level
                    if type(node) in (dict, list)
                )
            )


#: a run of 19 digits or more may be an integer beyond 64 bits, which orjson reads as a float;
#: found by mapping digits to "0" and the rest to " " (two C-level passes, ~30x a regex's speed)
_DIGITS_ONLY = bytes(48 if 48 <= i <= 57 else 32 for i in range(256))
_LONG_NUMBER = b"0" * 19


def parse_json(body: bytes | bytearray) -> tuple[Any, int]:
    """(value, nesting depth) of a JSON body. Strict JSON goes through orjson; what it refuses
    (NaN and infinities as bare words, lone surrogates) and bodies that may hold integers beyond
    64 bits (which orjson would read as floats) go through the standard parser, whose strings are
    then checked. Raises ``ValueError``, ``RecursionError`` or ``UnicodeError`` for what neither
    accepts."""
    if _LONG_NUMBER not in body.translate(_DIGITS_ONLY):
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
        else:
            return value, _strict_depth(value)
    value = json.loads(body)
    return value, json_depth(value)


def json_depth(value: Any) -> int:
    """Deepest nesting of lists/dicts in a parsed JSON value (iterative: no recursion limit).
    Raises ``UnicodeError`` on text that is not valid Unicode (JSON can carry lone surrogates,
    which no database can store)."""
    deepest, stack = 0, [(value, 0)]
    while stack:  # only containers are pushed: a batch of numbers costs one look per number
        node, depth = stack.pop()
        if type(node) is dict:
            for key in node:
                if not key.isascii():  # inline: this loop runs once per key of a batch
                    _check_text(key)
            children: Any = node.values()
        elif type(node) is list:
            children = node
        else:  # the top-level value itself is a scalar
            if type(node) is str:
                _check_text(node)
            continue
        deepest = max(deepest, depth + 1)
        for child in children:
            kind = type(child)
            if kind is dict or kind is list:
                stack.append((child, depth + 1))
            elif kind is str and not child.isascii():
                _check_text(child)
    return deepest


def _check_text(text: str) -> None:
    if not text.isascii():
        text.encode("utf-8")  # UnicodeEncodeError on a lone surrogate


FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"


def media_type(content_type: str) -> str:
    """The media type of a Content-Type header, lowercased, without parameters (``""`` when the
    header is absent or empty; ``"invalid"`` when it is not ``type/subtype``). Media types are
    case-insensitive, so ``application/JSON; charset=utf-8`` is ``application/json``: the guard
    must read a body exactly when a route's own parser (FastAPI's) would."""
    media = content_type.split(";", 1)[0].strip().lower()
    if not media:
        return ""
    kind, slash, subtype = media.partition("/")
    if not slash or not kind or not subtype or "/" in subtype:
        return "invalid"
    return media


def is_json(media: str) -> bool:
    """Whether a media type (from :func:`media_type`) is JSON: ``application/json`` or a structured
    ``application/...+json`` type, as FastAPI decides when it parses a body model."""
    kind, _, subtype = media.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def _path_problem(raw: bytes, decoded: str) -> str | None:
    text = raw.decode("latin-1")
    if "\x00" in decoded or "%00" in text:
        return "contains a NUL character"
    if "\\" in decoded or "%5c" in text.lower():
        return "contains a backslash"
    if ";" in decoded:
        return "contains ';' parameters"
    if "#" in decoded:
        return "contains a fragment ('#')"
    if any(part in {".", ".."} for part in decoded.split("/")):
        return "has '.' or '..' segments"
    if _DOUBLE_ENCODED.search(decoded):
        return "is percent-encoded twice"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in decoded):
        return "contains a control character"
    return None


class Guard:
    """See the module docstring. ``audit`` is called (in a worker thread) with
    (scope, status) for requests that must be audited; it is set by ``create_app``."""

    def __init__(self, app: ASGIApp, config: Any, audit: Callable[[Scope, int], None] | None = None):
        self.app = app
        self.config = config
        self.audit = audit
        self.hosts = config.served_hosts()
        self.origins = frozenset(o.rstrip("/").lower() for o in config.allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        problem = self._host_problem(headers.get("host", ""))
        if problem is not None:
            await self._deny(scope, receive, send, 400, problem)
            return
        if method in UNSAFE_METHODS:
            problem = self._origin_problem(headers)
            if problem is not None:
                await self._deny(scope, receive, send, 403, problem)
                return
        path_issue = _path_problem(scope.get("raw_path") or b"", scope["path"])
        if path_issue is not None:
            await self._deny(scope, receive, send, 400, f"the request path {path_issue}; it is refused")
            return
        streamed = scope["path"].startswith(STREAMED_PREFIXES)
        limit = self.config.max_artifact_bytes if streamed else self.config.max_body_bytes
        what = "max_artifact_bytes" if streamed else "max_body_bytes"
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                await self._deny(scope, receive, send, 400, "the Content-Length header is not a number")
                return
            if int(length) > limit:
                await self._too_large(scope, receive, send, int(length), limit, what)
                return
        send = self._audited(scope, send)
        if streamed or method in {"GET", "HEAD", "OPTIONS"}:
            await self.app(scope, _limited(receive, limit, what) if streamed else receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > limit:
                await self._too_large(scope, receive, send, len(body), limit, what)
                return
            if not message.get("more_body", False):
                break
        media = media_type(headers.get("content-type", ""))
        if body and media == FORM_MEDIA_TYPE:
            text = bytes(body).decode("utf-8", errors="replace")
            scope["keel.form"] = urllib.parse.parse_qs(text, keep_blank_values=True)
        elif body and not (media == "" or is_json(media)):
            scope["keel.unread_body"] = media  # a policy that needs the body refuses it (415)
        elif body:
            try:
                parsed, depth = parse_json(body)
            except UnicodeError:
                await self._reply(scope, send, 400, "the JSON body holds text that is not valid Unicode")
                return
            except (ValueError, RecursionError) as exc:
                reason = "nests too deeply" if isinstance(exc, RecursionError) else f"is malformed ({exc})"
                await self._reply(scope, send, 400, f"the JSON body {reason}")
                return
            if depth > self.config.max_json_depth:
                await self._reply(
                    scope,
                    send,
                    400,
                    f"the JSON body nests deeper than {self.config.max_json_depth} levels "
                    "(server setting max_json_depth)",
                )
                return
            scope["keel.json"] = parsed
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _host_problem(self, host: str) -> str | None:
        name = host.lower()
        if name.startswith("["):
            name = name.split("]", 1)[0] + "]"
        elif ":" in name:
            name = name.rsplit(":", 1)[0]
        if name not in self.hosts:
            return (
                f"this server does not serve the host {host!r}; if it is this server's name, "
                "start it with --allowed-host"
            )
        return None

    def _origin_problem(self, headers: dict[str, str]) -> str | None:
        if headers.get("sec-fetch-site") == "cross-site":
            return "cross-site requests may not change anything (Sec-Fetch-Site: cross-site)"
        origin = headers.get("origin")
        if origin is None:  # not a browser, or a same-origin GET-like request
            return None
        origin = origin.rstrip("/").lower()
        if origin in self.origins:
            return None
        host = headers.get("host", "").lower()
        if origin in {f"http://{host}", f"https://{host}"}:
            return None
        return f"requests from origin {origin!r} may not change anything on this server (allowed_origins)"

    def _audited(self, scope: Scope, send: Send) -> Send:
        if self.audit is None:
            return send
        audit = self.audit
        unsafe = scope["method"] in UNSAFE_METHODS

        async def audited_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if unsafe or status in (401, 403):
                    from starlette.concurrency import run_in_threadpool

                    try:
                        await run_in_threadpool(audit, scope, status)
                    except Exception:  # the change is done; a failed audit write must be loud
                        log.exception(
                            "could not write the audit entry for %s %s", scope["method"], scope["path"]
                        )
            await send(message)

        return audited_send

    async def _reply(self, scope: Scope, send: Send, status: int, message: str, **fields: Any) -> None:
        response = KeelJSONResponse(
            error_body(status, message, "RequestRefused", **fields), status_code=status
        )
        await response({**scope}, _no_body, send)

    async def _deny(self, scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
        if self.audit is not None:
            from starlette.concurrency import run_in_threadpool

            scope["keel.denied"] = message
            try:
                await run_in_threadpool(self.audit, scope, status)
            except Exception:
                log.exception("could not write the audit entry for a refused request")
        await self._reply(scope, send, status, message)

    async def _too_large(
        self, scope: Scope, receive: Receive, send: Send, size: int, limit: int, what: str
    ) -> None:
        await self._reply(
            scope,
            send,
            413,
            f"the request body is {size:,} bytes or more; the limit is {limit:,} bytes "
            f"(server setting {what})",
            limit=limit,
            actual=size,
            what=what,
        )


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


def _limited(receive: Receive, limit: int, what: str) -> Receive:
    """A receive that raises LimitExceededError once more than ``limit`` bytes have arrived."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            raise LimitExceededError(
                f"the upload is over {limit:,} bytes, the limit (server setting {what})",
                limit=limit,
                actual=seen,
                what=what,
            )
        return message

    return wrapped
