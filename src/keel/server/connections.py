"""Connection limits uvicorn lacks: a deadline for slow clients and a cap on open connections.

uvicorn waits for a request's headers and body as long as the client likes, and accepts every
connection; 30,000 half-sent requests held that many sockets and took a server down. With
:func:`uvicorn_options` (used by ``keel server`` and the test servers) each worker

- closes a connection whose request headers have not all arrived ``request_timeout_s`` seconds
  after its first byte (or after the connection opened), answering 408;
- closes a connection whose body stalls, with no byte for ``request_timeout_s`` seconds while the
  app waits for more (a large upload that keeps coming is never cut off);
- refuses request headers over :data:`MAX_HEADER_BYTES` with 431;
- answers 503 (``Retry-After: 1``) and closes any connection beyond ``max_connections`` the moment
  it opens, so that the rest keep being served.

Idle keep-alive connections between requests are closed by uvicorn's own ``timeout_keep_alive``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import resource
from typing import Any

__all__ = ["MAX_HEADER_BYTES", "raise_open_file_limit", "uvicorn_options"]

log = logging.getLogger("keel.server")

#: the request line and headers together
MAX_HEADER_BYTES = 64 * 1024

_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\n"
    b"Connection: close\r\nContent-Length: 48\r\n\r\nthe server has too many connections; try again\r\n"
)
_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain\r\nConnection: close\r\n"
    b"Content-Length: 44\r\n\r\nthe request did not arrive in time; resend\r\n"
)

_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain\r\n"
    b"Connection: close\r\nContent-Length: 37\r\n\r\nthe request headers are over 64 KiB\r\n"
)

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools comes with keel[server]
    HttpToolsProtocol = None  # type: ignore[assignment,misc]


if HttpToolsProtocol is not None:

    class GuardedProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol with the deadlines and caps of the module docstring."""

        def __init__(self, *args: Any, request_timeout_s: float, max_connections: int, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.request_timeout_s = request_timeout_s
            self.max_connections = max_connections
            self._deadline: asyncio.TimerHandle | None = None
            self._header_bytes = 0
            self._in_headers = True  # waiting for (the rest of) a request's headers
            self._last_byte = 0.0

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > self.max_connections:
                transport.write(_BUSY)
                transport.close()
                return
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._header_bytes > MAX_HEADER_BYTES:  # refused already; the socket is closing
                return
            self._last_byte = self.loop.time()
            super().data_received(data)

        # parser callbacks
        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_headers, self._header_bytes = True, 0
            if self._deadline is None:  # a next request on a kept-alive connection: its own clock
                self._arm()

        def on_url(self, url: bytes) -> None:
            self._count_header_bytes(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count_header_bytes(len(name) + len(value))
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            if self._header_bytes > MAX_HEADER_BYTES:
                return
            self._in_headers = False
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._disarm()

        # deadlines
        def _count_header_bytes(self, size: int) -> None:
            over = self._header_bytes > MAX_HEADER_BYTES
            self._header_bytes += size
            if self._header_bytes > MAX_HEADER_BYTES and not over:
                self._disarm()
                self.transport.write(_TOO_LARGE)
                self.transport.close()

        def _arm(self, delay: float | None = None) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(delay or self.request_timeout_s, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            if self.transport.is_closing():
                return
            if not self._in_headers:
                # the body: a stall, not a total time, and never while the app is not reading
                quiet = self.loop.time() - self._last_byte
                if self.flow.read_paused or quiet < self.request_timeout_s:
                    self._arm(max(0.05, self.request_timeout_s - quiet))
                    return
            else:
                self.transport.write(_TIMEOUT)
            self.transport.close()


def uvicorn_options(config: Any) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run``/``uvicorn.Config`` that apply ``config``'s connection
    limits (:class:`~keel.server.config.ServerConfig`: ``request_timeout_s``, ``max_connections``)."""
    options: dict[str, Any] = {
        "timeout_keep_alive": 5,
        "backlog": 2048,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "log_level": "warning",
        "access_log": False,
    }
    if HttpToolsProtocol is not None:
        options["http"] = functools.partial(
            GuardedProtocol,
            request_timeout_s=config.request_timeout_s,
            max_connections=config.max_connections,
        )
    else:  # pragma: no cover
        log.warning("httptools is missing: slow clients are not timed out (pip install 'keel[server]')")
        options["limit_concurrency"] = config.max_connections
    return options


def raise_open_file_limit() -> None:
    """Let this process (and the workers it starts) open as many sockets as the system allows:
    the soft limit is often 1,024, fewer connections than ``max_connections`` may want."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):  # pragma: no cover - a container may refuse
            pass
