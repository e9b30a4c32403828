"""Taking over what dead processes left for a store, from a process that is already running.

A process killed while logging leaves its point log (``keel.tracking.pointlog``), batch spool and
outbox in the spool folder, unlocked. The next keel process used to be the only one to take them
over; a notebook, a pipeline driver, ``keel ui`` or the server that was already running showed the
dead run RUNNING and incomplete until then. Now every writer looks twice a second (its thread does,
and so do reads through ``keel.Client``): a listing of the spool folder, and the locks of other
processes' files only when there are any. What it finds it copies into its own spool and sends, and
it marks CRASHED the runs the dead process had not ended (ADR 012).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from keel.tracking.outbox import Outbox
from keel.tracking.pointlog import PointLog, adopt_point_logs
from keel.tracking.spool import Spool, SpoolRecord, adopt_spools

__all__ = ["SCAN_INTERVAL", "DeadProcesses"]

log = logging.getLogger("keel.writer")

#: seconds between two looks for processes that died and left points or run changes behind
SCAN_INTERVAL = 0.5


class DeadProcesses:
    """The part of :class:`~keel.tracking.writer.MetricWriter` that takes over dead processes."""

    store: Any
    context: Any
    outbox: Outbox
    spool_dir: Path
    points: PointLog | None
    _prefix: str
    _pending: list[SpoolRecord]
    _spool: Spool | None
    _lock: threading.RLock
    _exit_registered: bool

    def __init__(self) -> None:
        #: when the next look for dead processes is due (time.monotonic())
        self.next_scan = 0.0
        self._scanning = threading.Lock()
        #: runs of dead processes still to be marked CRASHED: run id -> latest point's timestamp
        self._dead_runs: dict[str, int] = {}

    # provided by MetricWriter
    def _append_record(self, record: SpoolRecord) -> None:
        raise NotImplementedError

    def _cycle(self, force: bool = False) -> None:
        raise NotImplementedError

    def _single_try(self) -> Any:
        raise NotImplementedError

    def _ensure_thread(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _take_over(self) -> tuple[int, int]:
        """Take over what dead processes left for this store: queued run changes, spooled points
        (copied into this process's spool before their files go) and the runs they had not ended."""
        with self._lock:
            taken = self.outbox.adopt() if self.context is not None else 0
            points = 0
            for record in adopt_spools(self.spool_dir, self.store.url):
                self._append_record(record)
                points += record.points
            for dead in adopt_point_logs(self.spool_dir, self._prefix):
                for record in dead.records:
                    self._append_record(record)
                points += dead.points
                for run_id in dead.runs:
                    self._dead_runs[run_id] = dead.last_seen.get(run_id, 0)
            if points:
                log.info("keel took over %d metric points that an earlier process could not send", points)
            return taken, points

    def _settle(self, taken: int, points: int) -> None:
        """Send what was taken over now (the thread retries what the store does not take yet) and
        mark the dead processes' runs CRASHED."""
        if taken or points:
            try:
                with self._single_try():
                    self._cycle(force=True)
            except Exception as exc:  # the writer thread tries again
                log.debug("sending what earlier processes left failed: %s", exc)
            if self._pending or self.outbox:
                self._ensure_thread()
            if not self._exit_registered:
                self._exit_registered = True
                atexit.register(self.close)  # leave no files behind, or what is still unsent
        if self._dead_runs and not self._pending:
            self._mark_crashed()

    def _mark_crashed(self) -> None:
        from keel.clock import now_ms
        from keel.entities import RunStatus
        from keel.errors import NotFoundError

        for run_id, last_seen in list(self._dead_runs.items()):
            try:
                with self._single_try():
                    run = self.store.get_run(run_id)
                    if run.status is RunStatus.RUNNING:
                        end = max(last_seen, run.heartbeat_at or 0) or now_ms()
                        self.store.update_run(run_id, status=RunStatus.CRASHED, end_time=end)
                        log.info("keel: run %s crashed (its process died); marked CRASHED", run_id)
            except NotFoundError:
                pass
            except Exception as exc:  # the store is away: next look
                log.debug("could not mark run %s CRASHED yet: %s", run_id, exc)
                return
            self._dead_runs.pop(run_id, None)

    def recover_dead(self) -> None:
        """Take over what processes that died since the last look left, and mark their runs
        CRASHED; looks at most once every ``SCAN_INTERVAL`` (a directory listing when nothing died).
        Called by the writer thread and by ``keel.Client``'s reads."""
        now = time.monotonic()
        if now < self.next_scan or not self._scanning.acquire(blocking=False):
            return
        try:
            self.next_scan = now + SCAN_INTERVAL
            if self._others_left_files():
                self._settle(*self._take_over())
            elif self._dead_runs:
                self._mark_crashed()
        except Exception as exc:  # never fail a read or the writer thread for this
            log.warning("keel could not take over what a dead process left in %s: %s", self.spool_dir, exc)
        finally:
            self._scanning.release()

    def watch(self) -> None:
        """Keep looking for dead processes twice a second even while nothing is logged (the
        writer thread does): for long-lived readers such as ``keel ui`` and the server."""
        self._ensure_thread()

    def _others_left_files(self) -> bool:
        """Whether the spool folder holds files of other processes for this store (alive or not)."""
        own = tuple(
            path.name.rsplit(".", 1)[0]
            for path in (self.points.path if self.points else None, self.outbox.path,
                         self._spool.path if self._spool else None)
            if path is not None
        )  # fmt: skip
        try:
            with os.scandir(self.spool_dir) as entries:
                return any(
                    e.name.startswith(self._prefix) and not e.name.startswith(own or ("/",)) for e in entries
                )
        except FileNotFoundError:
            return False
