"""The outbox: run changes a training script made while its store could not be reached.

Metric points already wait in the spool when the store is away (see ``keel.tracking.spool``). The
outbox does the same for everything else the fluent API changes: creating a run, params, tags,
artifacts, dataset inputs, model registrations and the run's end. Each change is an :class:`Op`,
appended to this process's journal file next to the spool (``magic | length | crc32 | JSON``) and
kept in memory in order. Artifact bytes are copied into the outbox folder first, so the training
script may delete or overwrite its files.

The background writer applies the ops in order before it commits any metric batch, so a run exists
before its points arrive. Ops are safe to apply twice (runs carry the id the client chose, params
and tags are idempotent, blobs are content addressed, a registration looks for its version first),
which lets a journal left by a dead process be adopted by the next keel process and replayed.
"""

from __future__ import annotations

import collections
import fcntl
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from keel.errors import ConflictError, KeelError, NotFoundError, StoreUnavailableError
from keel.ids import new_id
from keel.tracking.spool import frame, hold_lock, orphaned, read_frames

__all__ = ["Op", "Outbox", "apply_op"]

log = logging.getLogger("keel.outbox")

_MAGIC = b"KOB1"
_BLOCK = 1 << 20

#: the kinds of change the outbox carries
KINDS = frozenset({"create_run", "update_run", "log_params", "set_tags", "artifact", "dataset", "register"})


class Op:
    """One queued change. A plain class: ``dataclasses`` costs a first ``start_run`` ~10 ms to import."""

    __slots__ = ("args", "blob", "kind", "op_id", "run_id")

    def __init__(
        self, kind: str, run_id: str, args: dict[str, Any], blob: str | None = None, op_id: str | None = None
    ) -> None:
        self.kind = kind
        self.run_id = run_id
        self.args = args
        #: for artifacts: the staged copy of the bytes, a file name inside the outbox's blob folder
        self.blob = blob
        self.op_id = new_id() if op_id is None else op_id

    def _fields(self) -> tuple[Any, ...]:
        return (self.kind, self.run_id, self.args, self.blob, self.op_id)

    def __eq__(self, other: object) -> bool:
        return self._fields() == other._fields() if isinstance(other, Op) else NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "Op(kind={!r}, run_id={!r}, args={!r}, blob={!r}, op_id={!r})".format(*self._fields())

    def encode(self) -> bytes:
        payload = json.dumps(
            {"id": self.op_id, "kind": self.kind, "run": self.run_id, "args": self.args, "blob": self.blob},
            separators=(",", ":"),
            allow_nan=True,
        ).encode("utf-8")
        return frame(_MAGIC, payload)

    @classmethod
    def decode(cls, payload: bytes) -> Op:
        data = json.loads(payload)
        if data["kind"] not in KINDS:
            raise ValueError(f"unknown outbox op {data['kind']!r}")
        return cls(data["kind"], data["run"], data["args"], data.get("blob"), data["id"])


def _blocks(path: str | os.PathLike[str]) -> Iterator[bytes]:
    with open(path, "rb") as source:
        while block := source.read(_BLOCK):
            yield block


def _read_ops(path: Path) -> Iterator[Op]:
    for payload in read_frames(path, _MAGIC):
        try:
            yield Op.decode(payload)
        except (ValueError, KeyError) as exc:
            log.warning("outbox %s: skipped a record keel cannot read (%s)", path, exc)


class Outbox:
    """This process's queue of run changes for one store, journaled in ``directory``."""

    def __init__(self, directory: Path, prefix: str):
        self.directory = directory
        self.blobs = directory / "outbox-blobs"
        self.prefix = prefix
        self.ops: collections.deque[Op] = collections.deque()
        self._lock = threading.Lock()
        self._fd = -1
        self._size = 0
        self.path: Path | None = None

    def __len__(self) -> int:
        return len(self.ops)

    def __bool__(self) -> bool:
        return bool(self.ops)

    # -- adding --------------------------------------------------------------------------------
    def add(self, op: Op) -> None:
        """Journal ``op`` (it survives this process) and queue it."""
        data = op.encode()
        with self._lock:
            if self._fd < 0:
                self._open()
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
            self._size += len(data)
            self.ops.append(op)

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / f"{self.prefix}-{os.getpid()}-{new_id()[:8]}.outbox"
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        hold_lock(self)

    def stage(self, source: str | os.PathLike[str] | bytes) -> tuple[str, str, int]:
        """Copy a file's bytes (or bytes in memory) into the outbox, hashing them on the way:
        (blob name, sha256, size)."""
        name = new_id()
        self.blobs.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        with open(self.blobs / name, "wb") as out:
            blocks = [source] if isinstance(source, bytes) else _blocks(source)
            for block in blocks:
                digest.update(block)
                out.write(block)
                size += len(block)
            out.flush()
            os.fsync(out.fileno())
        return name, digest.hexdigest(), size

    # -- draining ------------------------------------------------------------------------------
    def drain(self, context: Any) -> bool:
        """Apply queued ops in order; False when the store is still away (the rest stay queued)."""
        while self.ops:
            op = self.ops[0]
            try:
                apply_op(context, op, self.blobs)
            except StoreUnavailableError:
                return False
            except KeelError as exc:
                # the store refused this change for good (a deleted run, a conflicting param):
                # holding it would hold up every later change
                log.error(
                    "keel dropped a queued %s of run %s: the store refused it: %s", op.kind, op.run_id, exc
                )
            except OSError as exc:
                log.error("keel dropped a queued %s of run %s: %s", op.kind, op.run_id, exc)
            with self._lock:
                self.ops.popleft()
                if op.blob:
                    (self.blobs / op.blob).unlink(missing_ok=True)
                if not self.ops and self._size:
                    os.ftruncate(self._fd, 0)
                    self._size = 0
        return True

    def adopt(self) -> int:
        """Take over the journals that dead processes left for this store; return the ops taken."""
        taken = 0
        for path in orphaned(self.directory, f"{self.prefix}-*.outbox"):
            for op in _read_ops(path):
                self.add(op)
                taken += 1
        if taken:
            log.info("keel took over %d queued run changes that an earlier process could not send", taken)
        return taken

    def close(self) -> None:
        with self._lock:
            if self._fd < 0:
                return
            if not self.ops and self.path is not None:
                self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = -1


# -- applying ------------------------------------------------------------------------------------


def apply_op(context: Any, op: Op, blobs: Path) -> None:
    """Make the change ``op`` stands for in the context's store; safe to repeat."""
    from keel.entities import RunStatus

    store = context.store
    args = op.args
    if op.kind == "create_run":
        from keel.tracking.client import Client

        fields = {k: v for k, v in args["fields"].items() if v is not None}
        if "git_commit" not in args["fields"]:  # asked in a thread when the creation was queued
            from keel.tracking.environment import take_pending_git

            git = take_pending_git(op.run_id)
            if git is not None:
                fields.update(
                    (k, v) for k, v in zip(("git_commit", "git_dirty"), git, strict=True) if v is not None
                )
        try:  # a name left to the store's count ({seq}) is chosen here
            Client.for_context(context).create_run(
                args["experiment"], args["name"], tags=args.get("tags"),
                parent_run_id=args.get("parent_run_id"), run_id=op.run_id, **fields,
            )  # fmt: skip
        except ConflictError:
            store.get_run(op.run_id)  # an earlier try went through; anything else is a real conflict
    elif op.kind == "update_run":
        changes = dict(args)
        if changes.get("status") is not None:
            changes["status"] = RunStatus(changes["status"])
        store.update_run(op.run_id, **changes)
    elif op.kind == "log_params":
        store.log_params(op.run_id, args["params"])
    elif op.kind == "set_tags":
        store.set_tags(op.run_id, args["tags"])
    elif op.kind == "artifact":
        assert op.blob is not None
        sha, size = context.artifacts.put_file(blobs / op.blob)
        if sha != args["sha256"]:
            raise KeelError(f"the queued copy of artifact {args['name']!r} changed on disk (sha256 {sha})")
        store.record_artifact(op.run_id, args["name"], sha, size, args["media_type"])
    elif op.kind == "dataset":
        store.log_dataset(op.run_id, **args)
    elif op.kind == "register":
        from keel.tracking.client import Client

        client = Client.for_context(context)
        try:
            versions = client.list_model_versions(args["name"])
        except NotFoundError:
            versions = []
        if any(v.run_id == op.run_id and v.artifact_name == args["artifact_name"] for v in versions):
            return  # an earlier try registered it
        client.register_model(f"runs:/{op.run_id}/{args['artifact_name']}", args["name"])
    else:  # pragma: no cover - decode() refuses unknown kinds
        raise ValueError(op.kind)
