"""One helper thread for the slow parts of starting a run, so ``start_run`` need not wait for them.

Asking git for the commit, opening the metadata store (importing SQLAlchemy, checking or creating
the schema) and starting the system-metrics sampler (importing psutil and NVML, probing GPUs) cost
from tens to hundreds of milliseconds each. They run here, in order, one after the other, on a
single daemon thread started on first use: starting a thread costs the caller a few milliseconds
while other threads hold the GIL, so the first run of a process starts one, not three.

>>> pending = later(expensive)            # doctest: +SKIP
>>> pending.wait()                        # doctest: +SKIP
"""

from __future__ import annotations

import _thread
import collections
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Pending", "later"]

log = logging.getLogger("keel")


class Pending:
    """A call queued with :func:`later`: :meth:`wait` returns its result (or raises its error)."""

    def __init__(self, fn: Callable[[], Any], name: str):
        self.fn = fn
        self.name = name
        self._done = threading.Event()
        self._result: Any = None
        self._error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def run(self) -> None:
        try:
            self._result = self.fn()
        except BaseException as exc:  # handed to whoever waits
            self._error = exc
        finally:
            self._done.set()

    def wait(self, timeout: float | None = None) -> Any:
        """The call's result; ``TimeoutError`` if it has not finished within ``timeout`` seconds."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"keel's background {self.name} did not finish within {timeout} s")
        if self._error is not None:
            raise self._error
        return self._result


_lock = threading.Lock()
_queue: collections.deque[Pending] = collections.deque()
_ready = threading.Condition(_lock)
_running = False
_pid = os.getpid()


def later(fn: Callable[[], Any], name: str) -> Pending:
    """Run ``fn`` on the helper thread, after what was queued before it."""
    global _running, _pid
    pending = Pending(fn, name)
    with _lock:
        if _pid != os.getpid():  # a forked child: the parent's thread is not here
            _queue.clear()
            _running, _pid = False, os.getpid()
        _queue.append(pending)
        if not _running:
            # a bare thread: threading.Thread.start() waits until the new thread runs, which on a
            # busy machine costs the caller milliseconds; nobody joins this one
            _running = True
            _thread.start_new_thread(_work, ())
        else:
            _ready.notify()
    return pending


def _work() -> None:
    global _running
    while True:
        with _lock:
            while not _queue:
                if not _ready.wait(timeout=30.0) and not _queue:
                    _running = False  # idle for long: let the thread end, later() starts another
                    return
            pending = _queue.popleft()
        pending.run()
