"""The background writer: moves logged points from the point log to the store.

``log_metric`` appends a point to this process's point log (a memory-mapped file, see
``keel.tracking.pointlog``) and returns; the point is then safe from ``kill -9`` without a syscall,
a lock or the network on that path. One daemon thread per store wakes every ``flush_interval`` and,
at most every ``commit_interval``, cuts what was appended since into batches and writes them to the
store. It also sends the heartbeats of the runs it serves, and twice a second takes over what
processes that died left for the store (ADR 012). A store that is unreachable or locked is retried
with backoff; the training script never sees the error, only a warning in the log.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from keel.errors import KeelError, StoreError, StoreUnavailableError
from keel.tracking.background import Pending, later
from keel.tracking.context import StoreHandle
from keel.tracking.outbox import Outbox
from keel.tracking.pointlog import MAX_BATCH_POINTS, SEGMENT_BYTES, PointLog
from keel.tracking.recovery import SCAN_INTERVAL, DeadProcesses
from keel.tracking.spool import Spool, SpoolRecord, spool_prefix

__all__ = ["MAX_BATCH_POINTS", "MetricWriter"]

log = logging.getLogger("keel.writer")


class MetricWriter(DeadProcesses):
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
        segment_bytes: int = SEGMENT_BYTES,
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
        self.segment_bytes = segment_bytes
        self._prefix = spool_prefix(store.url)
        #: this process's point log, opened when the first run attaches
        self.points: PointLog | None = None
        #: run id -> metric key -> key id in the point log
        self.runs: dict[str, dict[str, int]] = {}
        self._heartbeats: dict[str, float] = {}
        self._pending: list[SpoolRecord] = []
        self._spool: Spool | None = None
        # serialises cycles (thread vs. flush() on a dead thread vs. a reader taking over a dead
        # process's spool); reentrant because a cycle's store calls may look for dead processes
        self._lock = threading.RLock()
        DeadProcesses.__init__(self)
        self._exit_registered = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        #: True while the thread sleeps with nothing queued; producers then call wake() after
        #: appending. (The thread sets it *before* its last look at the point log, producers read it
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
        #: (run changes, metric points) taken over from dead processes when the writer started
        self.adopted = self._take_over()
        self._settle(*self.adopted)
        self.recovered = self.adopted[1]
        self.next_scan = time.monotonic() + SCAN_INTERVAL

    # -- runs --------------------------------------------------------------------------------
    def attach(self, run_id: str) -> dict[str, int]:
        """The run's key ids (metric key -> id in the point log); see :meth:`key_id`."""
        keys = self.runs.get(run_id)
        if keys is None:
            self._point_log().add_run(run_id)
            keys = self.runs.setdefault(run_id, {})
        self._heartbeats[run_id] = time.monotonic()
        self._ensure_thread()
        return keys

    def key_id(self, run_id: str, key: str) -> int:
        """The point log's id for ``key`` of an attached run, journaled the first time."""
        keys = self.runs[run_id]
        found = keys.get(key)
        if found is None:
            found = keys.setdefault(key, self._point_log().add_key(run_id, key))
        return found

    def log(self, run_id: str, key: str, value: float, step: int, timestamp: int) -> None:
        """Append one point of an attached run (``log_metric`` does the same inline)."""
        assert self.points is not None
        self.points.append(self.key_id(run_id, key), value, step, timestamp)
        if self.idle:
            self.wake()

    def _point_log(self) -> PointLog:
        if self.points is None:
            with self._lock:
                if self.points is None:
                    self.points = PointLog(self.spool_dir, self._prefix, self.segment_bytes)
        return self.points

    def detach(self, run_id: str) -> None:
        """Flush the run's points and stop its heartbeat."""
        self.flush()
        self._heartbeats.pop(run_id, None)
        if self.runs.pop(run_id, None) is not None and self.points is not None:
            self.points.add_run(run_id, ended=True)

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
        return len(self.outbox), points + (self.points.unsent() if self.points else 0)

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
        return self.points is not None and self.points.unsent() > 0

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.recover_dead()
            timeout = self.flush_interval
            if not self._pending and not self.outbox and not self._has_points():
                self.idle = True
                if not self._has_points():  # look again now that producers can see the flag
                    timeout = min(self.heartbeat_interval, SCAN_INTERVAL)
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
        if self.points is not None:
            self.points.close(remove=not self._pending and not self.points.unsent())
            self.points = None
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
            if not self._store_ready():
                return  # points wait in the point log, run changes in the outbox
            # a forced cycle (flush) sends every point appended before it started; a segment sends
            # one range at a time, so that can take more than one round
            todo = self.points.ends() if force and self.points is not None else {}
            while True:
                now = time.monotonic()
                due = force or (now - self._last_commit >= self.commit_interval and now >= self._next_retry)
                if due:
                    # points are safe in the point log already: they are cut into batches only
                    # when sent, so a batch holds everything logged since the last commit
                    self._drain()
                    if self._pending or self.outbox:
                        self._commit()
                if self._pending or not todo or not self.points or not self.points.behind(todo):
                    break
            self._beat(now)

    def _drain(self) -> None:
        if self.points is not None:
            self._pending.extend(self.points.take(MAX_BATCH_POINTS))

    def _append_record(self, record: SpoolRecord) -> None:
        """Keep a batch taken over from a dead process, in this process's spool first."""
        if self._spool is None:
            self._spool = Spool(self.spool_dir, self.store.url)
        self._spool.append(record)
        self._pending.append(record)

    def _sent(self) -> None:
        """The first pending batch is in the store (or was dropped for good)."""
        record = self._pending.pop(0)
        if record.source is not None and self.points is not None:
            self.points.committed(*record.source)

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
                    self._sent()
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
                    self._sent()
                    continue
                self._failed("metrics", f"they are safe in {self.spool_dir}", exc)
                return
            self._sent()
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
