"""The background writer: moves logged points from memory to the spool to the store.

``log_metric`` appends a tuple to a per-run ``deque`` and returns; nothing on that path touches a
file, a lock or the network. One daemon thread per store then, every ``flush_interval``, drains the
queues, packs the points into chunks and appends them to the spool (so a ``kill -9`` loses at most
that interval), and every ``commit_interval`` writes the spooled batches to the store. It also sends
the heartbeats of the runs it serves. A store that is unreachable or locked is retried with backoff;
the training script never sees the error, only a warning in the log.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import logging
import os
import threading
import time
from array import array
from itertools import repeat
from operator import call, itemgetter
from pathlib import Path
from typing import Any

from keel.errors import KeelError, StoreError, StoreUnavailableError
from keel.ids import new_id
from keel.store.metrics import Chunk
from keel.tracking.background import Pending, later
from keel.tracking.context import StoreHandle
from keel.tracking.outbox import Outbox
from keel.tracking.spool import Spool, SpoolRecord, adopt_spools, spool_prefix

__all__ = ["MetricWriter"]

log = logging.getLogger("keel.writer")

_first, _second, _third = itemgetter(0), itemgetter(1), itemgetter(2)

#: points per spool record / store batch
MAX_BATCH_POINTS = 200_000


class MetricWriter:
    def __init__(
        self,
        store: Any,
        spool_dir: Path,
        *,
        flush_interval: float,
        commit_interval: float,
        heartbeat_interval: float,
        offline_wait: float = 10.0,
        context: Any = None,
    ):
        self.store = store
        #: what applies queued run changes (the store, artifacts and naming of this client)
        self.context = context
        self.offline_wait = offline_wait
        self.outbox = Outbox(spool_dir, spool_prefix(store.url))
        self.spool_dir = spool_dir
        self.flush_interval = flush_interval
        self.commit_interval = commit_interval
        self.heartbeat_interval = heartbeat_interval
        #: run id -> metric key -> queue of (value, step, timestamp)
        self.queues: dict[str, dict[str, collections.deque[tuple[float, int, int]]]] = {}
        self._heartbeats: dict[str, float] = {}
        self._pending: list[SpoolRecord] = []
        self._spool: Spool | None = None
        self._lock = threading.Lock()  # serialises cycles (thread vs. flush() on a dead thread)
        self._wake = threading.Event()
        self._stop = threading.Event()
        #: True while the thread sleeps with nothing queued; producers then call wake() after
        #: appending. (The thread sets it *before* its last look at the queues, producers read it
        #: *after* appending, so a point is never left waiting for a timeout.)
        self.idle = False
        self._requested = 0
        self._completed = 0
        self._done = threading.Condition()
        self._last_commit = 0.0
        self._failures = 0
        self._next_retry = 0.0
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self.recovered = self._adopt()

    def _adopt(self) -> int:
        """Take over what dead processes left for this store (queued run changes first, then
        spooled points) and try to send it now; return the points taken over."""
        taken = self.outbox.adopt() if self.context is not None else 0
        points = 0
        for record in adopt_spools(self.spool_dir, self.store.url):
            self._append_record(record)
            points += record.points
        #: (run changes, metric points) taken over from dead processes
        self.adopted = (taken, points)
        if taken or points:
            try:
                self._cycle(force=True)
            except Exception as exc:  # the writer thread tries again
                log.debug("sending what earlier processes left failed: %s", exc)
            if self._pending or self.outbox:
                self._ensure_thread()
            atexit.register(self.close)  # leave no files behind, or what is still unsent
        return points

    # -- runs --------------------------------------------------------------------------------
    def attach(self, run_id: str) -> dict[str, collections.deque[tuple[float, int, int]]]:
        """The run's queues, one per metric key; callers add keys with ``setdefault``."""
        queue = self.queues.get(run_id)
        if queue is None:
            queue = self.queues[run_id] = {}
        self._heartbeats[run_id] = time.monotonic()
        self._ensure_thread()
        return queue

    def detach(self, run_id: str) -> None:
        """Flush the run's points and stop its heartbeat."""
        self.flush()
        self._heartbeats.pop(run_id, None)
        queues = self.queues.get(run_id)
        if queues is not None and not any(queues.values()):
            self.queues.pop(run_id, None)

    # -- flushing ----------------------------------------------------------------------------
    def flush(self, timeout: float = 120.0) -> bool:
        """Block until every point appended so far is in the store (or ``timeout`` passes)."""
        if self._thread is None or not self._thread.is_alive():
            self._cycle(force=True)
            return not self.waiting
        started = time.monotonic()
        with self._done:
            self._requested += 1
            target = self._requested
            self._wake.set()
            while not self._done.wait_for(lambda: self._completed >= target or self.error is not None, 0.25):
                waited = time.monotonic() - started
                if waited >= timeout or (self.offline and waited >= self.offline_wait):
                    return False  # the store is away: the rest stays spooled and queued
            return True

    @property
    def waiting(self) -> bool:
        """Whether anything logged has not reached the store yet."""
        return bool(self._pending or self.outbox or self._has_points())

    def backlog(self) -> tuple[int, int]:
        """(run changes, metric points) not in the store yet; points still in memory count too."""
        points = sum(record.points for record in self._pending)
        points += sum(len(q) for queues in list(self.queues.values()) for q in list(queues.values()))
        return len(self.outbox), points

    @property
    def offline(self) -> bool:
        """Whether the last attempt to reach the store failed."""
        return self._failures > 0

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="keel-writer", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """Called by producers that found the thread idle after they appended points."""
        self.idle = False
        self._wake.set()

    def _has_points(self) -> bool:
        return any(queue for queues in list(self.queues.values()) for queue in list(queues.values()))

    def _loop(self) -> None:
        while not self._stop.is_set():
            timeout = self.flush_interval
            if not self._pending and not self.outbox and not self._has_points():
                self.idle = True
                if not self._has_points():  # look again now that producers can see the flag
                    timeout = min(self.heartbeat_interval, 1.0)
                self.idle = timeout != self.flush_interval
            self._wake.wait(timeout)
            self.idle = False
            self._wake.clear()
            with self._done:
                target = self._requested
            try:
                with self._single_try():
                    self._cycle(force=target > self._completed)
            except Exception:  # never let the thread die; points stay queued or spooled
                log.exception("keel writer cycle failed; will retry")
            if target > self._completed and not self._pending and not self.outbox:
                with self._done:
                    self._completed = target
                    self._done.notify_all()
            elif target > self._completed:
                time.sleep(min(1.0, 0.05 * 2 ** min(self._failures, 5)))

    def close(self) -> None:
        # a store that is away was waited for when the runs ended: what is left stays in the spool
        self.flush(timeout=1.0 if self.offline else 30.0)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._spool is not None:
            self._spool.close(remove=not self._pending)
            self._spool = None
        self.outbox.close()

    # -- opening the store (keel.tracking.context.StoreHandle: opened here, not by the caller) ---
    #: why the store cannot be opened at all (a path that cannot be created, a read-only or
    #: corrupt file, a schema from a newer keel): the fluent API raises it at the script's next call
    error: Exception | None = None
    _opener: Pending | None = None

    def _store_ready(self) -> bool:
        """Whether the store is open. One handed over unopened is opened on keel's helper thread
        (``keel.tracking.background``), so that this one goes on moving points to the spool
        meanwhile (opening may take a second or more); a caller's own cycle (a flush with no
        writer thread) opens it itself. Nothing queued is dropped while the store is unavailable
        or cannot be opened (:attr:`error`)."""
        handle = self.store
        if not isinstance(handle, StoreHandle) or handle.is_open:
            return True
        if self.error is not None or (self._opener is not None and not self._opener.done):
            return False
        if self._failures and time.monotonic() < self._next_retry:
            return False
        if threading.current_thread() is not self._thread:
            return self._open_store(handle)
        self._opener = later(lambda: self._open_store(handle), "store opening")
        return False

    def _open_store(self, handle: StoreHandle) -> bool:
        try:
            handle.open()
        except StoreUnavailableError as exc:
            self._failed("run changes", "they are queued", exc)
            return False
        except Exception as exc:
            if not isinstance(exc, KeelError):
                exc = StoreError(
                    f"cannot open the metadata store {handle.url}: {exc}. Check the tracking URI "
                    "(KEEL_TRACKING_URI or tracking_uri=) and that its folder is writable."
                )
            self.error = exc
            log.error("keel: %s; what this process logs waits in %s", exc, self.spool_dir)
            with self._done:
                self._done.notify_all()
            return False
        self.wake()
        return True

    # -- one cycle ---------------------------------------------------------------------------
    def _single_try(self) -> Any:
        # this thread has its own retry schedule: a store with retries of its own tries once here
        single_try = getattr(self.store, "single_try", None)
        return single_try() if single_try is not None else contextlib.nullcontext()

    def _cycle(self, force: bool = False) -> None:
        with self._lock:
            self._drain()
            if not self._store_ready():
                return  # points stay spooled, run changes queued
            now = time.monotonic()
            if (self._pending or self.outbox) and (force or now - self._last_commit >= self.commit_interval):
                if force or now >= self._next_retry:
                    self._commit()
            self._beat(now)

    def _drain(self) -> None:
        for run_id, keyed in list(self.queues.items()):
            chunks: list[Chunk] = []
            size = 0
            for key, queue in list(keyed.items()):
                count = len(queue)
                while count:
                    take = min(count, MAX_BATCH_POINTS - size)
                    points = list(map(call, repeat(queue.popleft, take)))
                    count -= take
                    chunks.append(
                        Chunk.from_lists(
                            key,
                            array("q", map(_second, points)),
                            array("q", map(_third, points)),
                            array("d", map(_first, points)),
                        )
                    )
                    size += take
                    if size >= MAX_BATCH_POINTS:
                        self._spool_record(run_id, chunks)
                        chunks, size = [], 0
            if chunks:
                self._spool_record(run_id, chunks)

    def _spool_record(self, run_id: str, chunks: list[Chunk]) -> None:
        self._append_record(SpoolRecord(new_id(), run_id, chunks))

    def _append_record(self, record: SpoolRecord) -> None:
        if self._spool is None:
            self._spool = Spool(self.spool_dir, self.store.url)
        self._spool.append(record)
        self._pending.append(record)

    def _commit(self) -> None:
        if self.outbox and not self.outbox.drain(self.context):
            # run changes go first: a run must exist before its points arrive
            self._failed("run changes", "they are queued")
            return
        while self._pending:
            record = self._pending[0]
            try:
                self.store.write_metric_batch(record.batch_id, record.run_id, record.chunks)
            except Exception as exc:
                from keel.errors import InvalidInputError, NotFoundError

                if isinstance(exc, NotFoundError):
                    log.warning("run %s was deleted; dropping %d points", record.run_id, record.points)
                    self._pending.pop(0)
                    continue
                if isinstance(exc, InvalidInputError):
                    # the store will never take this batch: retrying it would hold up every later one
                    keys = sorted({chunk.key for chunk in record.chunks})
                    log.error(
                        "keel dropped %d points of run %s (keys %s): the store refused them: %s",
                        record.points,
                        record.run_id,
                        ", ".join(keys[:10]),
                        exc,
                    )
                    self._pending.pop(0)
                    continue
                self._failed("metrics", f"they are safe in {self.spool_dir}", exc)
                return
            self._pending.pop(0)
        self._failures = 0
        self._last_commit = time.monotonic()
        if self._spool is not None:
            self._spool.clear()

    def _failed(self, what: str, where: str, exc: Exception | None = None) -> None:
        self._failures += 1
        self._next_retry = time.monotonic() + min(30.0, 0.1 * 2 ** min(self._failures, 8))
        if self._failures in (1, 10) or self._failures % 100 == 0:
            reason = f" ({exc})" if exc else ""
            log.warning(
                "keel cannot write %s to %s yet%s; %s and will be retried",
                what,
                self.store.url,
                reason,
                where,
            )

    def _beat(self, now: float) -> None:
        if self._failures:
            return  # the store is away: a heartbeat would only wait out the same retries
        for run_id, last in list(self._heartbeats.items()):
            if now - last >= self.heartbeat_interval:
                try:
                    self.store.heartbeat(run_id)
                    if run_id in self._heartbeats:
                        self._heartbeats[run_id] = now
                except Exception as exc:  # a missed heartbeat is retried next cycle
                    log.debug("heartbeat for %s failed: %s", run_id, exc)
