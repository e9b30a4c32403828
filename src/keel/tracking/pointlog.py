"""The point log: where ``log_metric`` puts a point before it returns, so ``kill -9`` cannot lose it.

Each process logging to a store owns one point log (ADR 012): a **keys journal** (``.keys``, locked
with ``flock`` for the life of the process) that names every run and metric key the process logs
to, and **segments** (``.NNNNN.seg``): files of fixed size mapped with ``MAP_SHARED``. The calling
thread appends a point to the current segment with one ``mmap.write`` of 32 bytes (key id, step,
timestamp, value, crc32). The bytes land in the kernel's page cache, which outlives the process:
no syscall and no background thread stands between a returned ``log_metric`` and durability
against process death (not against power loss: nothing is fsynced, as before).

``mmap.write`` copies and moves the position in one call under the GIL, so threads logging at once
never interleave and never leave holes: only the last record can be torn (the process died in the
middle of the copy), and its crc says so. A full segment makes the next caller map a new one.

The background writer reads what was appended since its cursor, sends it as batches and notes in the
segment's header the range in flight and the range committed. Batch ids are derived from (segment,
range, run), so whoever reads a dead process's segments (the next keel process; see
:func:`adopt_point_logs`) cuts and names the same batches, and a batch the store already has is
skipped.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import mmap
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.ids import new_id
from keel.store.metrics import Chunk
from keel.tracking.spool import SpoolRecord, frame, hold_lock, orphaned, read_frames

if TYPE_CHECKING:
    import numpy as np

__all__ = ["POINT", "PointLog", "Segment", "adopt_point_logs", "batches"]

log = logging.getLogger("keel.spool")

#: segment header: magic, format version, segment id, committed up to, in flight up to (byte offsets)
_HEADER = struct.Struct("<4sI16sQQ")
_SEGMENT_MAGIC = b"KSG2"
_VERSION = 2
_COMMITTED_AT, _INFLIGHT_AT, HEADER_SIZE = 24, 32, 64
#: a point without its crc: key id, step, timestamp (ms), value
POINT = struct.Struct("<Iqqd")
POINT_SIZE = 32
#: a point with its crc, as stored (``batches`` reads small ranges with it, without numpy)
_STORED = struct.Struct("<IqqdI")
#: up to this many points a range is grouped in plain Python: importing numpy costs a short
#: process (one run, a few metrics) more than the grouping it would speed up
_SMALL = 512
_KEYS_MAGIC = b"KPK1"
#: 131,070 points a segment: mapping the next one is amortised over that many calls
SEGMENT_BYTES = 4 << 20
#: points per batch (a spool record, a store transaction)
MAX_BATCH_POINTS = 200_000


def _reserve(fd: int, size: int) -> None:
    """Give the file ``size`` bytes, with disk blocks allocated where the system can (so that a full
    disk is an OSError now instead of a SIGBUS when a page is first written)."""
    allocate = getattr(os, "posix_fallocate", None)  # not on macOS
    if allocate is not None:
        try:
            allocate(fd, 0, size)
            return
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise
    os.ftruncate(fd, size)


class Segment:
    """One mapped segment file; the writer's cursor says how far its points were taken."""

    def __init__(self, path: Path, size: int):
        self.path = path
        self.id = bytes.fromhex(new_id())
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                # reserve the blocks now: a full disk is an error here, not a SIGBUS in log_metric
                _reserve(fd, size)
                self.mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            finally:
                os.close(fd)
        except OSError as exc:
            path.unlink(missing_ok=True)
            log.warning(
                "keel cannot map a spool segment in %s (%s): points are kept in memory only until it can "
                "(a process killed meanwhile loses them); free disk space or set spool_dir",
                path.parent,
                exc,
            )
            self.path = None  # type: ignore[assignment]
            self.mm = mmap.mmap(-1, size)
        self.mm.write(_HEADER.pack(_SEGMENT_MAGIC, _VERSION, self.id, HEADER_SIZE, HEADER_SIZE))
        self.mm.seek(HEADER_SIZE)
        self.size = size
        self.cursor = HEADER_SIZE
        #: whether a range of it is in flight (the writer sends one range per segment at a time)
        self.busy = False

    @property
    def end(self) -> int:
        return self.mm.tell()

    def mark(self, at: int, offset: int) -> None:
        struct.pack_into("<Q", self.mm, at, offset)

    def close(self, remove: bool) -> None:
        if not self.mm.closed:
            self.mm.close()
        if remove and self.path is not None:
            self.path.unlink(missing_ok=True)


class PointLog:
    """This process's point log for one store (see the module docstring)."""

    def __init__(self, directory: Path, prefix: str, segment_bytes: int = SEGMENT_BYTES):
        directory.mkdir(parents=True, exist_ok=True)
        self.stem = f"{prefix}-{os.getpid()}-{new_id()[:8]}"
        self.directory = directory
        self.segment_bytes = segment_bytes - (segment_bytes - HEADER_SIZE) % POINT_SIZE
        # locked before it gets the name adopters look for: they never see it unlocked
        hidden = directory / f".{self.stem}.keys"
        self._fd = os.open(hidden, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        import fcntl

        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.path = directory / f"{self.stem}.keys"
        os.rename(hidden, self.path)
        self._lock = threading.Lock()
        #: key id -> (run id, key)
        self.keys: dict[int, tuple[str, str]] = {}
        self.segments: list[Segment] = []
        self._count = 0
        self.mm = self._new_segment().mm
        hold_lock(self)  # a forked child drops its copy of the lock

    # -- the calling thread ------------------------------------------------------------------
    def _journal(self, entry: dict[str, Any]) -> None:
        data = frame(_KEYS_MAGIC, json.dumps(entry, separators=(",", ":")).encode())
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    def add_run(self, run_id: str, ended: bool = False) -> None:
        """Note that this process logs to (or has ended) ``run_id``: if it dies, the run crashed."""
        with self._lock:
            self._journal({"run": run_id, "ended": ended})

    def add_key(self, run_id: str, key: str) -> int:
        """A new key id for ``key`` of ``run_id``, journaled before any point uses it."""
        with self._lock:
            kid = len(self.keys) + 1
            self._journal({"id": kid, "run": run_id, "key": key})
            self.keys[kid] = (run_id, key)
            return kid

    def append(self, kid: int, value: float, step: int, timestamp: int) -> None:
        """Append one point (``log_metric`` inlines this)."""
        payload = POINT.pack(kid, step, timestamp, value)
        record = payload + zlib.crc32(payload).to_bytes(4, "little")
        try:
            self.mm.write(record)
        except ValueError:
            self.append_slow(record)

    def append_slow(self, record: bytes) -> None:
        """The current segment is full (or was just replaced): map the next one and append there."""
        while True:
            with self._lock:
                if self._fd < 0:
                    return  # the log was closed at exit: nothing can send the point any more
                mm = self.mm
                if mm.closed or mm.tell() + len(record) > len(mm):
                    mm = self.mm = self._new_segment().mm
            try:
                mm.write(record)
                return
            except ValueError:  # other threads filled the new one first
                continue

    def _new_segment(self) -> Segment:
        self._count += 1
        segment = Segment(self.directory / f"{self.stem}.{self._count:05d}.seg", self.segment_bytes)
        self.segments.append(segment)
        return segment

    # -- the writer ----------------------------------------------------------------------------
    def unsent(self) -> int:
        """Points appended that the writer has not taken yet."""
        return sum((s.end - s.cursor) // POINT_SIZE for s in list(self.segments) if not s.mm.closed)

    def ends(self) -> dict[Segment, int]:
        """Where each segment ends now (for :meth:`behind`)."""
        return {segment: segment.end for segment in list(self.segments) if not segment.mm.closed}

    def behind(self, ends: dict[Segment, int]) -> bool:
        """Whether points appended before ``ends`` was taken are still to be cut into batches."""
        return any(segment.cursor < end for segment, end in ends.items() if not segment.mm.closed)

    def take(self, limit: int = MAX_BATCH_POINTS) -> list[SpoolRecord]:
        """Cut the next range of each segment that has none in flight into batches; the last record
        of a range carries ``(segment, end)`` so that :meth:`committed` can be called once all of
        its records are in the store."""
        records: list[SpoolRecord] = []
        for segment in list(self.segments):
            if segment.busy or segment.mm.closed:
                continue
            start = segment.cursor
            end = min(segment.end, start + limit * POINT_SIZE)
            if end <= start:
                continue
            segment.mark(_INFLIGHT_AT, end)  # before anything is sent: a reader cuts the same range
            cut = batches(segment.id, start, segment.mm[start:end], self.keys)
            segment.cursor = end
            segment.busy = True
            if not cut:  # nothing readable in it (cannot happen: keys are journaled first)
                self.committed(segment, end)
                continue
            cut[-1].source = (segment, end)
            records.extend(cut)
        return records

    def committed(self, segment: Segment, end: int) -> None:
        """Every batch of the segment's range up to ``end`` is in the store."""
        segment.mark(_COMMITTED_AT, end)
        segment.busy = False
        with self._lock:
            full = segment.mm is not self.mm
        if full and end >= segment.end:
            segment.close(remove=True)
            self.segments.remove(segment)

    def close(self, remove: bool) -> None:
        """Release the log; ``remove`` when everything in it is in the store."""
        with self._lock:
            if self._fd < 0:
                return
            for segment in self.segments:
                segment.close(remove=remove)
            if remove:
                self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = -1


def _batch_id(segment_id: bytes, start: int, end: int, run_id: str) -> str:
    return hashlib.blake2b(
        b"%s:%d:%d:%s" % (segment_id, start, end, run_id.encode()), digest_size=16
    ).hexdigest()


def batches(
    segment_id: bytes, start: int, data: bytes, keys: dict[int, tuple[str, str]]
) -> list[SpoolRecord]:
    """The batches of the points ``data`` (a segment's bytes from offset ``start``): one record per
    run, one chunk per key in the order keys first appear, ids derived from the range."""
    count = len(data) // POINT_SIZE
    end = start + count * POINT_SIZE
    by_run = _chunks_small(data, count, keys) if count <= _SMALL else _chunks_numpy(data, count, keys)
    return [
        SpoolRecord(_batch_id(segment_id, start, end, run), run, chunks) for run, chunks in by_run.items()
    ]


def _chunk_for(keys: dict[int, tuple[str, str]], kid: int, size: int) -> tuple[str, str] | None:
    found = keys.get(kid)
    if found is None:
        log.warning("a spool segment holds %d points of an unknown key id %d; skipped", size, kid)
    return found


def _chunks_small(data: bytes, count: int, keys: dict[int, tuple[str, str]]) -> dict[str, list[Chunk]]:
    """``batches``' grouping in plain Python: the same chunks, byte for byte, as ``_chunks_numpy``."""
    groups: dict[int, list[tuple[int, int, int, float, int]]] = {}
    for point in _STORED.iter_unpack(memoryview(data)[: count * POINT_SIZE]):
        groups.setdefault(point[0], []).append(point)
    by_run: dict[str, list[Chunk]] = {}
    for kid, points in groups.items():  # in the order keys first appear
        found = _chunk_for(keys, kid, len(points))
        if found is None:
            continue
        run_id, key = found
        n = len(points)
        steps = [point[1] for point in points]
        chunk = Chunk(key, struct.pack(f"<{n}q", *steps),
                      struct.pack(f"<{n}q", *(point[2] for point in points)),
                      struct.pack(f"<{n}d", *(point[3] for point in points)),
                      n, min(steps), max(steps))  # fmt: skip
        by_run.setdefault(run_id, []).append(chunk)
    return by_run


def _chunks_numpy(data: bytes, count: int, keys: dict[int, tuple[str, str]]) -> dict[str, list[Chunk]]:
    import numpy as np

    points = np.frombuffer(data, _dtype(), count=count)
    kids = points["key"]
    order = np.argsort(kids, kind="stable")
    bounds = np.flatnonzero(np.diff(kids[order])) + 1
    groups = np.split(order, bounds)
    groups.sort(key=lambda group: int(group[0]))
    by_run: dict[str, list[Chunk]] = {}
    for group in groups:
        found = _chunk_for(keys, int(kids[group[0]]), len(group))
        if found is None:
            continue
        run_id, key = found
        picked = points[group]
        steps = picked["step"]
        chunk = Chunk(key, steps.tobytes(), picked["ts"].tobytes(), picked["value"].tobytes(),
                      len(picked), int(steps.min()), int(steps.max()))  # fmt: skip
        by_run.setdefault(run_id, []).append(chunk)
    return by_run


def _dtype() -> np.dtype[Any]:
    import numpy as np

    return np.dtype([("key", "<u4"), ("step", "<i8"), ("ts", "<i8"), ("value", "<f8"), ("crc", "<u4")])


# -- a dead process's point log ------------------------------------------------------------------


class DeadLog:
    """What a dead process left: its pid, the runs it had not ended, and its unsent points."""

    __slots__ = ("last_seen", "pid", "records", "runs")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.runs: set[str] = set()
        self.records: list[SpoolRecord] = []
        #: run id -> timestamp (ms) of its latest point in the log
        self.last_seen: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"DeadLog(pid={self.pid}, runs={self.runs!r}, points={self.points})"

    @property
    def points(self) -> int:
        return sum(record.points for record in self.records)


def _read_keys(path: Path, dead: DeadLog) -> dict[int, tuple[str, str]]:
    keys: dict[int, tuple[str, str]] = {}
    for payload in read_frames(path, _KEYS_MAGIC):
        entry = json.loads(payload)
        if "key" in entry:
            keys[int(entry["id"])] = (entry["run"], entry["key"])
        elif entry.get("ended"):
            dead.runs.discard(entry["run"])
        else:
            dead.runs.add(entry["run"])
    return keys


def _valid_end(data: bytes, start: int) -> int:
    """Offset after the last intact point from ``start``. Appends are whole ``mmap.write`` calls made
    one at a time (under the GIL), so only the last point can be torn (the process died while it
    was copied, which may leave any of its bytes unwritten): its crc says whether it is whole."""
    import numpy as np

    count = (len(data) - start) // POINT_SIZE
    words = np.frombuffer(data, "<u8", count=count * 4, offset=start).reshape(count, 4)
    used = np.flatnonzero(words.any(axis=1))
    if not len(used):
        return start
    last = start + int(used[-1]) * POINT_SIZE
    view = memoryview(data)
    if zlib.crc32(view[last : last + 28]) != int.from_bytes(view[last + 28 : last + 32], "little"):
        log.warning("spool segment: left out a torn point at byte %d (its process died writing it)", last)
        return last
    return last + POINT_SIZE


def _read_segment(path: Path, keys: dict[int, tuple[str, str]]) -> list[SpoolRecord] | None:
    """The batches of a dead process's segment; None for a segment of another format (left alone)."""
    data = path.read_bytes()
    if len(data) < HEADER_SIZE:
        return []
    magic, version, segment_id, committed, inflight = _HEADER.unpack_from(data)
    if magic != _SEGMENT_MAGIC or version != _VERSION:
        log.warning("%s is not a spool segment of version %d; keel left it alone", path, _VERSION)
        return None
    end = _valid_end(data, committed)
    records: list[SpoolRecord] = []
    # the range in flight when the process died is cut as its writer cut it: same batch ids
    ranges = [(committed, min(inflight, end))] if inflight > committed else []
    start = ranges[-1][1] if ranges else committed
    step = MAX_BATCH_POINTS * POINT_SIZE
    ranges += [(at, min(at + step, end)) for at in range(start, end, step)]
    for first, last in ranges:
        if last > first:
            records += batches(segment_id, first, data[first:last], keys)
    return records


def adopt_point_logs(directory: Path, prefix: str) -> Iterator[DeadLog]:
    """The point logs that dead processes left for the store with spool ``prefix``, one by one; a
    log's files are removed once the caller asks for the next (it must have kept the records)."""
    for path in orphaned(directory, f"{prefix}-*.keys"):
        dead = DeadLog(pid=int(path.name.split("-")[1]))
        keys = _read_keys(path, dead)
        segments = []
        for segment in sorted(directory.glob(f"{path.stem}.*.seg")):
            records = _read_segment(segment, keys)
            if records is None:
                continue
            segments.append(segment)
            dead.records += records
            for record in records:
                stamp = max(max(struct.unpack(f"<{c.count}q", c.timestamps)) for c in record.chunks)
                dead.last_seen[record.run_id] = max(dead.last_seen.get(record.run_id, 0), stamp)
        yield dead
        for segment in segments:
            segment.unlink(missing_ok=True)
