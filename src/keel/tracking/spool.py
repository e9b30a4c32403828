"""The batch spool: an append-only file of metric batches not yet known to be in the store.

Each record is ``magic | payload length | crc32 | payload``; the payload carries a batch id, the run
id and one packed chunk per metric key. Since ADR 012 a process's own points wait in its point log
(``keel.tracking.pointlog``) instead; this file holds the batches it took over from dead processes
(their point logs, and spools of this format that keel versions before ADR 012 left), so that they
survive this process too. It is truncated once every record in it is committed. Batch ids make a
replay exactly-once: a batch the store already has is skipped.

The owning process holds an exclusive ``flock`` on its spool, so a replay never touches the spool
of a live process.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import struct
import weakref
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from keel.ids import new_id
from keel.store.metrics import Chunk

__all__ = ["Spool", "SpoolRecord", "adopt_spools", "spool_prefix"]

log = logging.getLogger("keel.spool")

_MAGIC = b"KSP1"
_HEADER = struct.Struct("<4sII")
_CHUNK_HEADER = struct.Struct("<HIqq")


class SpoolRecord:
    """One batch of points of one run. A plain class: ``dataclasses`` costs a first ``start_run``
    ~10 ms to import."""

    __slots__ = ("batch_id", "chunks", "run_id", "source")

    def __init__(self, batch_id: str, run_id: str, chunks: list[Chunk], source: Any = None) -> None:
        self.batch_id = batch_id
        self.run_id = run_id
        self.chunks = chunks
        #: for a batch cut from this process's point log: (segment, end of its range), on the last
        #: record of the range (see ``keel.tracking.pointlog``); not part of equality or repr
        self.source = source

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SpoolRecord):
            return NotImplemented
        return (self.batch_id, self.run_id, self.chunks) == (other.batch_id, other.run_id, other.chunks)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SpoolRecord(batch_id={self.batch_id!r}, run_id={self.run_id!r}, chunks={self.chunks!r})"

    @property
    def points(self) -> int:
        return sum(chunk.count for chunk in self.chunks)

    def encode(self) -> bytes:
        parts = [
            self.batch_id.encode("ascii"),
            self.run_id.encode("ascii"),
            struct.pack("<I", len(self.chunks)),
        ]
        for chunk in self.chunks:
            key = chunk.key.encode("utf-8")
            parts.append(_CHUNK_HEADER.pack(len(key), chunk.count, chunk.min_step, chunk.max_step))
            parts.extend((key, chunk.steps, chunk.timestamps, chunk.values))
        return frame(_MAGIC, b"".join(parts))

    @classmethod
    def decode(cls, payload: bytes) -> SpoolRecord:
        batch_id = payload[:32].decode("ascii")
        run_id = payload[32:64].decode("ascii")
        (count,) = struct.unpack_from("<I", payload, 64)
        offset = 68
        chunks = []
        for _ in range(count):
            key_len, points, min_step, max_step = _CHUNK_HEADER.unpack_from(payload, offset)
            offset += _CHUNK_HEADER.size
            key = payload[offset : offset + key_len].decode("utf-8")
            offset += key_len
            size = 8 * points
            steps = payload[offset : offset + size]
            stamps = payload[offset + size : offset + 2 * size]
            values = payload[offset + 2 * size : offset + 3 * size]
            offset += 3 * size
            chunks.append(Chunk(key, steps, stamps, values, points, min_step, max_step))
        return cls(batch_id, run_id, chunks)


#: objects that hold a spool folder's lock file open (as ``_fd``). A forked child closes its copies:
#: the lock belongs to the open file, which the child shares, so a child that outlived the process
#: (a data loader worker) would hide the process's death from every adopter.
_lock_holders: weakref.WeakSet[Any] = weakref.WeakSet()


def hold_lock(owner: Any) -> None:
    """Register ``owner`` (its ``_fd`` holds a lock) so that forked children drop their copy."""
    _lock_holders.add(owner)


def _after_fork_in_child() -> None:
    for owner in list(_lock_holders):
        if owner._fd >= 0:
            os.close(owner._fd)
            owner._fd = -1
    _lock_holders.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def spool_prefix(store_url: str) -> str:
    return hashlib.sha1(store_url.encode()).hexdigest()[:12]


class Spool:
    """This process's spool file for one store, locked for as long as the process lives."""

    def __init__(self, directory: Path, store_url: str):
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{spool_prefix(store_url)}-{os.getpid()}-{new_id()[:8]}.spool"
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        hold_lock(self)
        self.size = 0

    def append(self, record: SpoolRecord) -> None:
        data = record.encode()
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.size += len(data)

    def clear(self) -> None:
        """Every record is in the store: start the file afresh."""
        if self.size:
            os.ftruncate(self._fd, 0)
            self.size = 0

    def close(self, remove: bool = True) -> None:
        if self._fd < 0:
            return
        if remove and self.size == 0:
            self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = -1


def frame(magic: bytes, payload: bytes) -> bytes:
    """One record: ``magic | payload length | crc32 | payload``."""
    return _HEADER.pack(magic, len(payload), zlib.crc32(payload)) + payload


def read_frames(path: Path, magic: bytes) -> Iterator[bytes]:
    """The payloads of the valid records in order; a torn record at the end (the process died
    mid-write) or a damaged one ends the file."""
    data = path.read_bytes()
    offset = 0
    while offset + _HEADER.size <= len(data):
        found, length, crc = _HEADER.unpack_from(data, offset)
        payload = data[offset + _HEADER.size : offset + _HEADER.size + length]
        if found != magic or len(payload) != length or zlib.crc32(payload) != crc:
            log.warning("%s: stopped at a torn or damaged record at byte %d", path, offset)
            return
        yield payload
        offset += _HEADER.size + length


def orphaned(directory: Path, pattern: str) -> Iterator[Path]:
    """Files matching ``pattern`` whose process is gone (no one holds their lock), each locked while
    the caller handles it and removed when the caller asks for the next one. A caller that stops
    early (an exception) leaves the current file in place."""
    if not directory.is_dir():
        return
    for path in sorted(directory.glob(pattern)):
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its process is alive and owns it (or it is the caller's own)
            yield path
            path.unlink(missing_ok=True)
        finally:
            os.close(fd)


def read_records(path: Path) -> Iterator[SpoolRecord]:
    return map(SpoolRecord.decode, read_frames(path, _MAGIC))


def adopt_spools(directory: Path, store_url: str) -> Iterator[SpoolRecord]:
    """The records that dead processes left for the store at ``store_url``, file by file; a file is
    removed once the caller has taken every record of it (and written them to its own spool)."""
    for path in orphaned(directory, f"{spool_prefix(store_url)}-*.spool"):
        yield from read_records(path)
