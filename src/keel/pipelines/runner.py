"""Run a built :class:`~keel.pipelines.graph.Graph` in this process or in a local process pool.

    >>> result = run_graph(training.build(lr=0.1), sink=FolderSink(), cache=MemoryCache())
    >>> result.ok, result.outputs
    (True, 0.93)
    >>> result.nodes["train"].cache_hit, result.nodes["train"].wall_s
    (False, 1.2)

``executor="inline"`` (the default) runs steps one by one in topological order and hands Python
objects from step to step directly. ``executor="process"`` runs every ready step in a
:class:`concurrent.futures.ProcessPoolExecutor` started with *spawn*: step functions must be
importable (defined at module level in an importable module, not in ``__main__`` of an interactive
session nor inside a function), and a script run as ``__main__`` must be a file, since spawned
workers re-import it (``python - < script`` cannot use the pool). Arguments and results travel to
and from workers pickled, which is transport, not storage. Timeouts are enforced in the worker with
``SIGALRM`` (a step stuck inside C code that never returns to Python is interrupted only when it
does); inline runs do not enforce them.

With a ``sink`` every output is materialized into a folder and stored; with a ``cache`` as well, a
step whose key (:func:`keel.pipelines.cache.cache_key`) is found is skipped and its outputs loaded
from the sink. A failing step marks everything downstream ``skipped``; independent steps still run
and completed outputs are kept.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from keel.errors import InvalidInputError, NotFoundError, TrustError
from keel.pipelines.errors import StepFailedError
from keel.pipelines.graph import Graph, Node, iter_outputs, replace_outputs
from keel.pipelines.materializers import encode_small_output, hash_folder, load_output, save_output
from keel.pipelines.runtime import Attempt, cache_parts, default_environment, execute, split_outputs
from keel.pipelines.steps import Step, _import_step

__all__ = ["Cache", "FolderSink", "MemoryCache", "NodeRecord", "RunResult", "Sink", "run_graph"]

#: outputs at least this large (``nbytes``) are stored by a background thread while later steps run
DEFER_BYTES = 4 * 2**20
#: how many deferred outputs may wait to be stored at once (each holds its value in memory)
DEFER_SLOTS = 2
#: how many nodes ahead the inline executor looks up cache keys in one batch
_PREFETCH = 500
#: the cache entry (beside the outputs) that records the metrics a step logged; not an output name
METRICS_ENTRY = "keel:metrics"
#: how step errors name the options that would help, for callers of the Python API
PYTHON_OPTIONS = {"cache": "cache=False", "trust": "trust=True"}


@runtime_checkable
class Sink(Protocol):
    """Where materialized outputs go: ``put`` stores a folder and returns its sha256."""

    def put(self, node_id: str, name: str, folder: Path) -> str:
        """Store ``folder`` (the runner does not use it afterwards) and return its content hash."""
        ...

    def open(self, sha256: str) -> Path:
        """A folder holding what ``put`` stored under ``sha256``."""
        ...


@runtime_checkable
class Cache(Protocol):
    """Step cache: cache key → output name → ``{"sha256": ...}`` of the stored output, plus
    ``"identity"`` for a large output whose identity in downstream cache keys is derived from its
    step's key (see ``DEFER_BYTES``). Step records store their outputs in the same form."""

    def get(self, key: str) -> Mapping[str, Any] | None: ...

    def put(self, key: str, outputs: Mapping[str, Any], components: Mapping[str, Any]) -> None: ...


class FolderSink:
    """A content-addressed folder of output folders (``root/ab/abcd…``), temporary by default."""

    def __init__(self, root: str | os.PathLike[str] | None = None):
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="keel-outputs-"))
        self.root.mkdir(parents=True, exist_ok=True)
        #: (node id, output name) → sha256 of what was last stored for it
        self.index: dict[tuple[str, str], str] = {}
        self._own_pickles = self.root / ".own-pickles"

    def put(self, node_id: str, name: str, folder: Path) -> str:
        sha = hash_folder(folder)
        target = self.root / sha[:2] / sha
        if target.exists():
            shutil.rmtree(folder, ignore_errors=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(folder, target) if _same_device(folder, target.parent) else shutil.move(folder, target)
        self.index[(node_id, name)] = sha
        return sha

    def has(self, sha256: str) -> bool:
        return (self.root / sha256[:2] / sha256).is_dir()

    def record_own_pickle(self, sha256: str) -> None:
        """Remember that a run writing here pickled the output ``sha256`` itself."""
        self._own_pickles.mkdir(exist_ok=True)
        (self._own_pickles / sha256).touch()

    def is_own_pickle(self, sha256: str) -> bool:
        return (self._own_pickles / sha256).is_file()

    def open(self, sha256: str) -> Path:
        target = self.root / sha256[:2] / sha256
        if not target.is_dir():
            raise NotFoundError(f"no stored output {sha256} in {self.root}")
        return target


class _Cached:
    """A cached output, loaded from the sink the first time it is read."""

    __slots__ = ("sha", "sink", "trust")

    def __init__(self, sink: Sink, sha: str, trust: bool):
        self.sink, self.sha, self.trust = sink, sha, trust

    def load(self) -> Any:
        return load_output(self.sink.open(self.sha), trust=self.trust or is_own_pickle(self.sink, self.sha))


def is_own_pickle(sink: Sink, sha256: str) -> bool:
    """Whether a pipeline run on this machine pickled the output ``sha256`` itself.

    Such an output loads without ``trust=True``: its bytes are checked against the hash the writer
    recorded, so they are the bytes this machine wrote. A pickle that only the shared cache knows
    (another user's run against the same server) still needs explicit trust.
    """
    check = getattr(sink, "is_own_pickle", None)
    return bool(check(sha256)) if callable(check) else False


def _loaded(values: dict[str, Any], name: str) -> Any:
    """``values[name]``, loading (once) a cached output that has not been read yet."""
    value = values[name]
    if isinstance(value, _Cached):
        value = values[name] = value.load()
    return value


def _entry(value: Mapping[str, Any]) -> tuple[str, str]:
    """(sha256, identity) of one output entry (see :class:`Cache`)."""
    return str(value["sha256"]), str(value.get("identity") or value["sha256"])


def output_entries(record: NodeRecord) -> dict[str, dict[str, str]]:
    """A record's outputs as cache entries and step-record outputs: ``{"sha256": ...}``, with
    ``"identity"`` only where it differs from the content hash."""
    entries: dict[str, dict[str, str]] = {}
    for name, sha in record.outputs.items():
        identity = record.identities.get(name, sha)
        entries[name] = {"sha256": sha} if identity == sha else {"sha256": sha, "identity": identity}
    return entries


def _nbytes(value: Any) -> int:
    """The in-memory size of an array-like value (numpy, Arrow, polars), else 0."""
    size = getattr(value, "nbytes", None)
    if isinstance(size, int):
        return size
    estimate = getattr(value, "estimated_size", None)  # polars
    if callable(estimate) and type(value).__module__.startswith("polars"):
        try:
            return int(estimate())
        except Exception:
            return 0
    return 0


def _same_device(a: Path, b: Path) -> bool:
    return os.stat(a).st_dev == os.stat(b).st_dev


class MemoryCache:
    """A dict-backed :class:`Cache` that also keeps each key's components for ``explain``."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Any]] = {}
        self.components: dict[str, dict[str, Any]] = {}

    def get(self, key: str) -> Mapping[str, Any] | None:
        return self.entries.get(key)

    def put(self, key: str, outputs: Mapping[str, Any], components: Mapping[str, Any]) -> None:
        self.entries[key] = dict(outputs)
        self.components[key] = dict(components)


@dataclass
class NodeRecord:
    """What happened to one node: status, timing, resources, cache and outputs."""

    id: str
    status: str = "pending"
    started: float | None = None
    ended: float | None = None
    wall_s: float = 0.0
    cpu_s: float = 0.0
    #: peak resident memory of the process that ran the step, in bytes (a process-wide high-water mark)
    peak_rss: int | None = None
    cache_hit: bool = False
    cache_key: str | None = None
    components: dict[str, Any] | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    #: what downstream cache keys use for each output: its sha256, or for a large output of a
    #: cacheable step a hash derived from the step's cache key (so it is known before it is stored)
    identities: dict[str, str] = field(default_factory=dict)
    attempts: int = 0
    error: str | None = None
    #: (key, value, step) of the metrics the step logged when it ran (see keel.tracking.capture)
    metrics: list[tuple[str, Any, Any]] = field(default_factory=list)
    #: the cache entry's record of those metrics, for a step served from the cache
    logged: Mapping[str, Any] | None = None


@dataclass
class RunResult:
    """The outcome of :func:`run_graph`; ``outputs`` is the pipeline's return value, resolved."""

    graph: Graph
    nodes: dict[str, NodeRecord]
    values: dict[str, dict[str, Any]]
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return all(record.status in ("done", "cached") for record in self.nodes.values())

    @property
    def failed(self) -> dict[str, str]:
        """Failed node ids and their errors (traceback text)."""
        return {i: r.error or "" for i, r in self.nodes.items() if r.status == "failed"}

    @property
    def status(self) -> dict[str, str]:
        return {node_id: record.status for node_id, record in self.nodes.items()}

    def value(self, node_id: str, name: str = "output") -> Any:
        """The in-memory value of one output of a completed node that the pipeline returns (or that
        no other step reads); other intermediate values are released as soon as they are read."""
        try:
            return _loaded(self.values[node_id], name)
        except KeyError:
            record = self.nodes.get(node_id)
            if record is not None and record.status in ("done", "cached"):
                raise StepFailedError(
                    f"step `{node_id}` completed, but its value was released once the steps reading it "
                    "had it (intermediate values do not stay in memory); return it from the pipeline, or "
                    "load it from the store by its hash in `result.nodes[...].outputs`",
                    failed=self.failed,
                ) from None
            state = record.status if record else "not in the graph"
            raise StepFailedError(
                f"step `{node_id}` has no output `{name}` ({state})", failed=self.failed
            ) from None

    @property
    def outputs(self) -> Any:
        return replace_outputs(self.graph.result, lambda out: self.value(out.node, out.name))

    def render_text(self) -> str:
        return self.graph.render_text(self.status)

    def render_svg(self) -> str:
        return self.graph.render_svg(self.status)


class _Run:
    """State shared by both executors: records, values, caching and persistence."""

    def __init__(
        self,
        graph: Graph,
        sink: Sink | None,
        cache: Cache | None,
        trust: bool,
        env: dict[str, Any],
        progress: Callable[[NodeRecord], None] | None = None,
        options: Mapping[str, str] | None = None,
    ):
        if cache is not None and sink is None:
            raise InvalidInputError("caching needs a sink to store and reload outputs; pass sink= too")
        self.graph, self.sink, self.cache, self.trust, self.env = graph, sink, cache, trust, env
        self.records = {node_id: NodeRecord(node_id) for node_id in graph.nodes}
        self.values: dict[str, dict[str, Any]] = {}
        self.sources: dict[int, dict[str, str]] = {}
        self.progress = progress
        #: how the caller spells the options its error messages suggest (Python arguments by default)
        self.options = {**PYTHON_OPTIONS, **(options or {})}
        # intermediate values are dropped once every reader has its arguments (big arrays flowing
        # through many steps would otherwise all stay in memory); the pipeline's results are kept
        self.readers = {node_id: len(children) for node_id, children in graph.downstream().items()}
        self.keep = {output.node for output in iter_outputs(graph.result)}
        self.writer: ThreadPoolExecutor | None = None
        self.slots = threading.BoundedSemaphore(DEFER_SLOTS)
        self.deferred: list[tuple[str, str, Future[str]]] = []
        #: cache entries looked up ahead in a batch (None: looked up, not found)
        self.prefetched: dict[str, Mapping[str, Any] | None] = {}

    def _settled(self, record: NodeRecord) -> None:
        if self.progress is not None:
            self.progress(record)

    def blocked(self, node: Node) -> bool:
        bad = [p for p in node.upstream if self.records[p].status in ("failed", "skipped")]
        if bad:
            record = self.records[node.id]
            record.status = "skipped"
            record.error = f"skipped: upstream step `{bad[0]}` {self.records[bad[0]].status}"
            self._settled(record)
        return bool(bad)

    def resolve(self, node: Node) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
        """The node's call arguments; None (and the node failed) when a cached input cannot be
        loaded. Call once per node: it releases inputs no other step still needs."""
        try:
            arguments = node.call_arguments(lambda out: _loaded(self.values[out.node], out.name))
        except TrustError:
            trust, no_cache = self.options["trust"], self.options["cache"]
            self.finish(
                node,
                Attempt.failure(
                    f"step `{node.id}` could not load a cached input: it is a pickle this machine did "
                    "not write (unpickling runs whatever code it holds). Run the pipeline again with "
                    f"{no_cache} to recompute it, or with {trust} if you trust everyone who writes to "
                    "this store"
                ),
            )
            arguments = None
        except Exception as exc:
            self.finish(
                node,
                Attempt.failure(
                    f"step `{node.id}` could not load a cached input ({type(exc).__name__}: {exc}); "
                    f"run the pipeline again with {self.options['cache']} to recompute it"
                ),
            )
            arguments = None
        for parent in node.upstream:
            self.readers[parent] -= 1
            if self.readers[parent] == 0 and parent not in self.keep:
                self.values.pop(parent, None)
        return arguments

    def _key(self, node: Node) -> str:
        """Compute (once) and record the node's cache key; its upstream steps must be settled."""
        record = self.records[node.id]
        if record.cache_key is not None:
            return record.cache_key
        hashes = {
            (parent, name): identity
            for parent in node.upstream
            for name, identity in self.records[parent].identities.items()
        }
        fn = node.step.fn
        if id(fn) not in self.sources:
            from keel.pipelines.cache import source_hashes

            self.sources[id(fn)] = source_hashes(fn)
        key = cache_parts(node, hashes, self.env, self.sources[id(fn)])
        record.cache_key, record.components = key.digest, key.components
        return key.digest

    def prefetch(self, nodes: list[Node]) -> None:
        """Look up in one query the keys of the leading ``nodes`` whose upstream steps are all done
        (the branches of a ``map``, independent steps), so each does not cost a round trip."""
        get_many = getattr(self.cache, "get_many", None)
        if self.cache is None or self.sink is None or get_many is None:
            return
        keys = []
        for node in nodes:  # in topological order: stop at the first step that must wait
            record = self.records[node.id]
            if not all(self.records[parent].status in ("done", "cached") for parent in node.upstream):
                break
            if node.step.cache and record.cache_key is None and record.status == "pending":
                keys.append(self._key(node))
        if len(keys) > 1:
            found = get_many(keys)
            self.prefetched.update({key: found.get(key) for key in keys})

    def try_cache(self, node: Node) -> bool:
        """Compute the node's key; on a hit load its outputs and return True."""
        if self.cache is None or self.sink is None or not node.step.cache:
            return False
        record = self.records[node.id]
        key = self._key(node)
        found = self.prefetched.pop(key) if key in self.prefetched else self.cache.get(key)
        if found is None:
            return False
        found = dict(found)
        logged = found.pop(METRICS_ENTRY, None)
        entries = {name: _entry(value) for name, value in found.items()}
        present = getattr(self.sink, "has", None)
        needed = [sha for sha, _ in entries.values()] + ([str(logged["sha256"])] if logged else [])
        if callable(present) and not all(present(sha) for sha in needed):
            return False  # a blob went missing: run the step instead
        # loaded when a step that runs (or the caller) reads it: a fully cached chain loads nothing
        # but what the pipeline returns
        sink, trust = self.sink, self.trust
        self.values[node.id] = {name: _Cached(sink, sha, trust) for name, (sha, _) in entries.items()}
        record.status, record.cache_hit, record.logged = "cached", True, logged
        record.outputs = {name: sha for name, (sha, _) in entries.items()}
        record.identities = {name: ident for name, (_, ident) in entries.items()}
        self._settled(record)
        return True

    def finish(self, node: Node, attempt: Attempt) -> None:
        record = self.records[node.id]
        record.started, record.ended = attempt.started, attempt.ended
        record.wall_s, record.cpu_s, record.peak_rss = attempt.wall_s, attempt.cpu_s, attempt.peak_rss
        record.attempts = attempt.attempts
        record.metrics = attempt.metrics or []
        if attempt.error is not None:
            record.status, record.error = "failed", attempt.error
            self._settled(record)
            return
        try:
            values = split_outputs(node, attempt.value)
            deferred = self._persist(node, record, values)
        except Exception:
            record.status, record.error = "failed", traceback.format_exc()
            self._settled(record)
            return
        self.values[node.id] = values
        record.status = "done"
        if not deferred:
            self._cache_put(record)
        self._settled(record)

    def _cache_put(self, record: NodeRecord) -> None:
        if self.cache is not None and record.cache_key and record.components is not None:
            self.cache.put(record.cache_key, output_entries(record), record.components)

    def _persist(self, node: Node, record: NodeRecord, values: dict[str, Any]) -> bool:
        """Store the outputs; return True when some are still being stored in the background.

        A large output (``DEFER_BYTES``) is stored by a background thread while the next steps
        run on the value in memory, when downstream cache keys need not wait for its content hash:
        caching is off for this run, or the step has a cache key from which the output's identity
        is derived. (So a step whose code changed but whose large output did not still makes its
        dependants run again; small outputs are compared by content.)
        """
        record.outputs, record.identities = {}, {}
        if self.sink is None:
            return False
        deferred = False
        for name, value in values.items():
            if _nbytes(value) >= DEFER_BYTES and (self.cache is None or record.cache_key is not None):
                basis = f"keel-derived-output\0{record.cache_key or record.id}\0{name}"
                record.identities[name] = hashlib.sha256(basis.encode()).hexdigest()
                self._defer(node, name, value)
                deferred = True
                continue
            sha = self._store(node, name, value, large=False)
            record.outputs[name] = record.identities[name] = sha
        return deferred

    def _store(self, node: Node, name: str, value: Any, *, large: bool) -> str:
        assert self.sink is not None
        put_files = getattr(self.sink, "put_files", None)
        if not large and put_files is not None:  # a small JSON value: no folder on disk at all
            files = encode_small_output(value, getattr(self.sink, "inline_limit", 0))
            if files is not None:
                return str(put_files(node.id, name, files))
        scratch = getattr(self.sink, "scratch", None) if large else None
        folder = Path(tempfile.mkdtemp(prefix="keel-output-", dir=scratch or _scratch()))
        try:
            metadata = save_output(value, folder, node=node.id, output=name)
            sha = self.sink.put(node.id, name, folder)
            remember = getattr(self.sink, "record_own_pickle", None)
            if metadata.get("pickle") and callable(remember):
                remember(sha)
            return sha
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _defer(self, node: Node, name: str, value: Any) -> None:
        if self.writer is None:
            self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keel-outputs")
        self.slots.acquire()  # bounded: a slow disk makes the steps wait instead of memory grow
        flags = getattr(value, "flags", None)
        if flags is not None and type(value).__module__ == "numpy":
            # what is being written must not change meanwhile; read-only, as arrays from the cache are
            flags.writeable = False

        def store() -> str:
            try:
                return self._store(node, name, value, large=True)
            finally:
                self.slots.release()

        self.deferred.append((node.id, name, self.writer.submit(store)))

    def settle(self) -> None:
        """Wait for outputs stored in the background; a failure to store fails its step."""
        if self.writer is None:
            return
        done: dict[str, NodeRecord] = {}
        for node_id, name, future in self.deferred:
            record = self.records[node_id]
            try:
                record.outputs[name] = future.result()
            except Exception:
                record.status = "failed"
                record.error = (
                    f"output `{name}` of step `{node_id}` could not be stored:\n{traceback.format_exc()}"
                )
            done[node_id] = record
        self.deferred.clear()
        self.writer.shutdown(wait=True)
        self.writer = None
        for record in done.values():
            if record.status == "done":
                self._cache_put(record)


def run_graph(
    graph: Graph,
    *,
    executor: Literal["inline", "process", "ray"] = "inline",
    max_workers: int | None = None,
    sink: Sink | None = None,
    cache: Cache | None = None,
    trust: bool = False,
    environment: Mapping[str, Any] | None = None,
    retry_backoff: float = 0.1,
    progress: Callable[[NodeRecord], None] | None = None,
    options: Mapping[str, str] | None = None,
) -> RunResult:
    """Run every node of ``graph``; never raises for a failing step (see ``RunResult.failed``).

    ``environment`` is part of every cache key (default: the Python and keel versions).
    ``retry_backoff`` is the first pause between retries in seconds; each next pause doubles.
    ``progress`` is called with each node's record as soon as the node is settled (done, cached,
    failed or skipped), for progress displays. ``options`` names the caller's spelling of the
    options step errors suggest (keys ``cache`` and ``trust``; the CLI passes its flags).

        >>> result = run_graph(graph, executor="process", max_workers=2)
        >>> result.failed
        {}
    """
    if executor not in ("inline", "process", "ray"):
        raise InvalidInputError(f"executor must be 'inline', 'process' or 'ray', not {executor!r}")
    env = dict(environment) if environment is not None else default_environment()
    run = _Run(graph, sink, cache, trust, env, progress, options)
    order = graph.topological_order()
    begun = time.perf_counter()
    try:
        if executor == "inline":
            for index, node in enumerate(order):
                if run.cache is not None and run.records[node.id].cache_key is None:
                    run.prefetch(order[index : index + _PREFETCH])
                if run.blocked(node) or run.try_cache(node):
                    continue
                arguments = run.resolve(node)
                if arguments is not None:
                    args, kwargs = arguments
                    run.finish(node, execute(node.step, args, kwargs, node.step.retries, retry_backoff, None))
        elif executor == "ray":
            from keel.pipelines.ray_executor import run_on_ray

            run_on_ray(run, order, retry_backoff)
        else:
            _run_in_pool(run, order, max_workers, retry_backoff)
    finally:
        run.settle()
    return RunResult(graph, run.records, run.values, time.perf_counter() - begun)


def _importable(step: Step) -> str | None:
    """Why ``step`` cannot be sent to a worker process, or None when it can."""
    try:
        found = _import_step(step.fn.__module__, step.fn.__qualname__)
    except Exception as exc:
        found, reason = None, f"{type(exc).__name__}: {exc}"
    else:
        reason = ""
    if found is step and step.fn.__module__ != "__main__":
        return None
    return (
        f"step `{step.name}` cannot run in a worker process: its function must be importable as "
        f"{step.fn.__module__}.{step.fn.__qualname__} (define it at module level in an importable "
        f"module, not in __main__ or inside a function), or use executor='inline'. {reason}"
    ).strip()


def _scratch() -> str | None:
    """Where outputs are written before they are stored: memory-backed /dev/shm when there is one
    (the folder lives for microseconds; a disk's metadata operations would dominate small outputs)."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


def _run_alone(
    context: Any, node: Node, args: tuple[Any, ...], kwargs: dict[str, Any], backoff: float
) -> Attempt:
    """Run one step in its own worker process; a worker that dies becomes a failed attempt."""
    from concurrent.futures import ProcessPoolExecutor

    step = node.step
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as alone:
        try:
            return alone.submit(execute, step, args, kwargs, step.retries, backoff, step.timeout).result()
        except Exception as exc:
            return Attempt.failure(
                f"step `{node.id}` did not come back from its worker process (the process died: "
                f"{type(exc).__name__}: {exc})"
            )


class Frontier:
    """The nodes whose upstream steps have all settled, in the order they became ready; the
    scheduling state of the executors that run several steps at once (process pool, Ray)."""

    def __init__(self, run: _Run, order: list[Node]):
        self.run = run
        self.waiting = {node.id: len(node.upstream) for node in order}
        self.children = run.graph.downstream()
        self.ready = deque(node.id for node in order if not node.upstream)

    def release(self, node_id: str) -> None:
        """``node_id`` has settled: its children whose other parents have too become ready."""
        for child in self.children[node_id]:
            self.waiting[child] -= 1
            if self.waiting[child] == 0:
                self.ready.append(child)

    def submittable(self) -> Iterator[tuple[Node, tuple[Any, ...], dict[str, Any]]]:
        """Pop the ready nodes; settle here those that are blocked, cached or whose cached inputs
        do not load; yield the others with their arguments, for the caller to run."""
        nodes, run = self.run.graph.nodes, self.run
        while self.ready:
            node = nodes[self.ready.popleft()]
            if run.blocked(node) or run.try_cache(node):
                self.release(node.id)
                continue
            arguments = run.resolve(node)
            if arguments is None:
                self.release(node.id)
                continue
            yield node, *arguments


def _run_in_pool(run: _Run, order: list[Node], max_workers: int | None, backoff: float) -> None:
    # multiprocessing and the process pool load here: an inline run (and every cached rerun) of a
    # fresh process does not pay for them
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool
    from multiprocessing import get_context

    nodes = run.graph.nodes
    frontier = Frontier(run, order)
    release = frontier.release
    checked: dict[int, str | None] = {}
    workers = max_workers or os.cpu_count() or 1
    context = get_context("spawn")  # fork would copy locks held by other threads
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    running: dict[Future[Attempt], str] = {}
    submitted: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}

    try:
        while frontier.ready or running:
            for node, args, kwargs in frontier.submittable():
                if id(node.step) not in checked:
                    checked[id(node.step)] = _importable(node.step)
                problem = checked[id(node.step)]
                if problem is not None:
                    run.finish(node, Attempt.failure(problem))
                    release(node.id)
                    continue
                step = node.step
                future = pool.submit(execute, step, args, kwargs, step.retries, backoff, step.timeout)
                running[future] = node.id
                submitted[node.id] = (args, kwargs)
            if not running:
                continue
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            lost: list[str] = []
            for future in done:
                node = nodes[running.pop(future)]
                try:
                    attempt = future.result()
                except BrokenProcessPool:
                    lost.append(node.id)
                    continue
                except Exception as exc:  # a value did not pickle, or similar
                    attempt = Attempt.failure(
                        f"step `{node.id}` did not come back from its worker process: "
                        f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
                    )
                submitted.pop(node.id, None)
                run.finish(node, attempt)
                release(node.id)
            if lost:
                # A worker died and took the whole pool with it: every task still in it is lost, but
                # only one of them (at most) is to blame. Re-run each lost step alone in a fresh
                # one-worker pool, so the culprit fails and the innocent finish.
                lost += running.values()
                running.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                for node_id in lost:
                    node = nodes[node_id]
                    args, kwargs = submitted.pop(node_id)  # resolved once, when first submitted
                    run.finish(node, _run_alone(context, node, args, kwargs, backoff))
                    release(node_id)
                pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
