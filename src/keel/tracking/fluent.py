"""The fluent API: ``with keel.start_run(): keel.log_metric(...)``.

The active run is process-wide (a stack, for nested runs). ``log_metric`` is the hot path: it checks
the key once per run, stamps the time and appends the point to the process's point log, a mapped
file that survives the process (ADR 012); the background writer does the rest (see
``keel.tracking.writer``).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import struct
import sys
import threading
import time
import traceback as traceback_module
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from keel import limits
from keel.artifacts import media_type
from keel.clock import now_ms
from keel.errors import InvalidInputError, KeelError, ParamConflictError, StoreUnavailableError
from keel.ids import new_id
from keel.run_status import RunStatus
from keel.tracking import environment
from keel.tracking.background import Pending, later
from keel.tracking.capture import record as _tap
from keel.tracking.capture import taps as _taps
from keel.tracking.client import DEFAULT_EXPERIMENT, Client, ModelInfo
from keel.tracking.environment import entry_point, git_info_soon
from keel.tracking.outbox import Op
from keel.tracking.pointlog import POINT

if TYPE_CHECKING:  # the records load with the store, not on the path of a first start_run
    from keel.entities import Artifact, Dataset, ModelVersion, Run

__all__ = [
    "ActiveRun",
    "active_run",
    "end_run",
    "flush",
    "log_artifact",
    "log_dict",
    "log_figure",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "log_table",
    "log_text",
    "set_tag",
    "set_tags",
    "start_run",
]

log = logging.getLogger("keel")

_stack: list[ActiveRun] = []
_stack_lock = threading.RLock()
_time_ns = time.time_ns
_to_float = limits.to_float
_pack_point = POINT.pack
_pack_crc = struct.Struct("<I").pack
_crc32 = zlib.crc32


class _RunClient(Client):
    """The fluent API's client. A change the store cannot take now (it is away:
    :class:`~keel.errors.StoreUnavailableError`) goes to the outbox, with every change after it, and
    is sent in order by the background writer once the store is back (ADR 008); the training script
    goes on. Mistakes of the caller (bad names, limits, conflicting params) still raise at once."""

    def _send(
        self, now: Callable[[], Any], queue: Callable[[], tuple[Op, Any]], patient: bool = False
    ) -> Any:
        """``now()`` makes the change at once; ``queue()`` gives the op for the outbox and what to
        return instead. Once something is queued, later changes queue behind it to keep the order.
        ``patient`` calls get the store's full retries before they queue (creating a run: a run
        created at once has its real experiment id and name)."""
        writer = self._context.writer
        if writer.error is not None:  # the store could not be opened: nothing can reach it
            raise writer.error
        if not writer.outbox:
            # one try unless patient: the writer retries queued changes on its own schedule
            try:
                with contextlib.nullcontext() if patient else writer._single_try():
                    return now()
            except StoreUnavailableError as exc:
                _warn_offline(self._context, exc)
        op, result = queue()
        writer.outbox.add(op)
        writer.wake()
        return result

    def start(
        self,
        experiment: str | None,
        name: str | None,
        *,
        tags: Mapping[str, Any],
        git: Callable[[], tuple[str | None, bool | None]],
        **fields: Any,
    ) -> Run | QueuedRun:
        """Create a run; with the store away (or still opening), choose its id here and queue its
        creation. ``git`` gives the (commit, dirty) of the work tree, asked for in a thread."""
        if name is not None:
            self._context.naming.validate("run", name)
        clean = limits.clean_tags(tags)
        if self._opens_in_background(experiment):
            # the first run of a process: the writer opens the store (and creates it, in a new
            # project) in a thread while the script goes on; what the script logs queues behind
            op, local = self._queued_run(experiment, name, clean, fields)
            environment._pending[op.run_id] = git  # the writer takes the answer when it creates the run
            writer = self._context.writer
            writer.outbox.add(op)
            writer.wake()
            return local
        commit, dirty = git()
        fields = {**fields, "git_commit": commit, "git_dirty": dirty}
        created: Run | QueuedRun = self._send(
            lambda: self.create_run(experiment, name, tags=clean, **fields),
            lambda: self._queued_run(experiment, name, clean, fields),
            patient=True,
        )
        return created

    def _queued_run(
        self, experiment: str | None, name: str | None, clean: dict[str, str], fields: dict[str, Any]
    ) -> tuple[Op, QueuedRun]:
        """The op that creates the run later, with the id and start time chosen now, and the run
        as this process knows it meanwhile."""
        run_id, start = new_id(), now_ms()
        local = name
        if local is None and "{seq" not in (self._context.naming.rule("run").pattern or ""):
            local = self._context.naming.generate("run", experiment=experiment or DEFAULT_EXPERIMENT)
        # a pattern with {seq} needs the store's count: the name is chosen when the run is sent
        rest = {k: v for k, v in fields.items() if k != "parent_run_id"}
        args = {
            "experiment": experiment,
            "name": local,
            "tags": clean,
            "parent_run_id": fields.get("parent_run_id"),
            "fields": {**rest, "start_time": start},
        }
        return Op("create_run", run_id, args), QueuedRun(run_id, local or "", start, clean, fields)

    def _opens_in_background(self, experiment: str | None) -> bool:
        """Whether this run's creation can wait for a store that is not open yet: a SQL store not
        opened by this process, and names the store need not see first. An experiment name that
        breaks the naming rules may still name an existing experiment, which only the store knows:
        that run is created at once, as before."""
        context = self._context
        if context.store_open or context.writer.outbox:
            return False
        rule = context.naming.rule("experiment")
        return not rule.problems(experiment or DEFAULT_EXPERIMENT)

    def update_run(self, run_id: str, **changes: Any) -> None:
        def queue() -> tuple[Op, None]:
            args = {k: (v.value if isinstance(v, RunStatus) else v) for k, v in changes.items()}
            return Op("update_run", run_id, args), None

        self._send(lambda: self.store.update_run(run_id, **changes), queue)

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        clean = limits.clean_params(params)
        if not clean:
            return
        queued = self._context.logged_params.setdefault(run_id, {})
        for key, value in clean.items():
            if queued.get(key, value) != value:
                raise ParamConflictError(
                    f"param {key!r} of run {run_id} is already {queued[key]!r} and cannot change to "
                    f"{value!r}: params are immutable",
                    key=key,
                    old=queued[key],
                    new=value,
                )
        queued.update(clean)
        self._send(
            lambda: self.store.log_params(run_id, clean),
            lambda: (Op("log_params", run_id, {"params": clean}), None),
        )

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        clean = limits.clean_tags(tags)
        if clean:
            self._send(
                lambda: self.store.set_tags(run_id, clean),
                lambda: (Op("set_tags", run_id, {"tags": clean}), None),
            )

    def _put_and_record(self, run_id: str, name: str, source: Path | bytes) -> Artifact:
        def queue() -> tuple[Op, Artifact]:
            # a copy of the bytes waits with the change: the script may delete or rewrite its file
            blob, sha, size = self._context.writer.outbox.stage(source)
            kind = media_type(name)
            op = Op("artifact", run_id, {"name": name, "sha256": sha, "media_type": kind}, blob=blob)
            from keel.entities import Artifact

            return op, Artifact(run_id, name, sha, size, kind, now_ms())

        artifact: Artifact = self._send(lambda: Client._put_and_record(self, run_id, name, source), queue)
        return artifact

    def _record_dataset(self, run_id: str, info: dict[str, Any], context: str) -> Dataset:
        def queue() -> tuple[Op, Dataset]:
            from keel.entities import Dataset

            dataset = Dataset(0, info["name"], info["fingerprint"], info["schema"], info["row_count"],
                              info["source"], now_ms(), context=context)  # fmt: skip
            return Op("dataset", run_id, {**info, "context": context}), dataset

        found: Dataset = self._send(lambda: Client._record_dataset(self, run_id, info, context), queue)
        return found

    def register_model(  # type: ignore[override]
        self, source: str, name: str, description: str | None = None, tags: Mapping[str, str] | None = None
    ) -> ModelVersion | None:
        self._context.naming.validate("model", name)
        run_id, _, artifact_name = source[len("runs:/") :].partition("/")
        args = {"name": name, "artifact_name": artifact_name.rstrip("/") or "model"}
        # the caller wants the version number: changes queued only while the store opens in the
        # background land first, so the registration is made at once (a store that is away still
        # queues it, and the answer is None)
        self._settle()
        return self._send(  # type: ignore[no-any-return]
            lambda: Client.register_model(self, source, name, description, tags),
            lambda: (Op("register", run_id, args), None),
        )


class QueuedRun:
    """A run whose creation waits in the outbox: its id at once, this process's picture of it
    (:meth:`local`) when asked."""

    __slots__ = ("fields", "name", "run_id", "start", "tags")

    def __init__(self, run_id: str, name: str, start: int, tags: Mapping[str, str], fields: Any):
        self.run_id, self.name, self.start, self.tags, self.fields = run_id, name, start, tags, fields

    def local(self) -> Run:
        return _local_run(self.run_id, self.name, self.start, self.tags, **self.fields)


def _local_run(run_id: str, name: str, start: int, tags: Mapping[str, str], **fields: Any) -> Run:
    """This process's picture of a run whose creation waits in the outbox."""
    from keel.entities import Run

    return Run(
        run_id=run_id, experiment_id="", name=name, status=RunStatus.RUNNING, lifecycle_stage="active",
        user="", host="", pid=fields.get("pid"), start_time=start, end_time=None, heartbeat_at=None,
        git_commit=fields.get("git_commit"), git_dirty=fields.get("git_dirty"),
        entry_point=fields.get("entry_point"), parent_run_id=fields.get("parent_run_id"),
        params={}, tags=dict(tags), metrics={},
    )  # fmt: skip


_offline_warned: set[str] = set()


def _warn_offline(context: Any, exc: Exception) -> None:
    if context.tracking_uri in _offline_warned:
        return
    _offline_warned.add(context.tracking_uri)
    log.warning(
        "keel: the store %s cannot be reached (%s). The run goes on: its changes and metrics wait in "
        "%s and are sent in order once the store is back.",
        context.store.url,
        exc,
        context.writer.spool_dir,
    )


class ActiveRun:
    """A run this process is logging to. Use it as a context manager; it ends the run on exit:
    FINISHED, FAILED (with the traceback) on an exception, KILLED on KeyboardInterrupt."""

    def __init__(self, client: _RunClient, run: Run | QueuedRun, *, system_metrics: bool):
        self.client = client
        self.run_id = run.run_id
        self._info: Run | QueuedRun = run
        self._writer = client._context.writer
        #: metric key -> key id in the writer's point log
        self._keys = self._writer.attach(run.run_id)
        self._points = self._writer.points
        self._ended = False
        self._sampler: Any = None
        self._sampler_lock = threading.Lock()
        self._sampler_closed = False
        self._sampler_starting: Pending | None = None
        if system_metrics:
            # importing psutil and NVML and probing the GPUs costs tens of milliseconds: the
            # first samples can wait for them, the script need not
            self._sampler_starting = later(self._start_sampler, "system-metrics start")

    def __repr__(self) -> str:
        return f"ActiveRun(run_id={self.run_id!r}, name={self._info.name!r})"

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is None:
            self.end(RunStatus.FINISHED)
        elif issubclass(kind, KeyboardInterrupt | SystemExit) and not (
            isinstance(error, SystemExit) and error.code in (0, None)
        ):
            self.end(RunStatus.KILLED)
        elif isinstance(error, SystemExit):
            self.end(RunStatus.FINISHED)
        else:
            text = "".join(traceback_module.format_exception(kind, error, tb))
            self.end(RunStatus.FAILED, traceback=text)

    @property
    def info(self) -> Run:
        """The run as the store has it; while its creation waits in the outbox (the store is away,
        or opening in the background) what this process knows (no experiment id yet)."""
        writer = self._writer
        if isinstance(self._info, QueuedRun):
            self._info = self._info.local()
        if not self._info.experiment_id and writer.error is None and not writer.offline:
            with contextlib.suppress(KeelError):
                self._info = self.client.get_run(self.run_id)  # waits for queued changes first
        return self._info

    @info.setter
    def info(self, run: Run) -> None:
        self._info = run

    @property
    def name(self) -> str:
        return self.info.name

    def _start_sampler(self) -> None:
        try:
            self._start_sampling()
        except Exception as exc:  # system metrics are best effort; the run goes on without them
            log.warning("keel: no system metrics for run %s: %s", self.run_id, exc)

    def _start_sampling(self) -> None:
        from keel.tracking.system import SystemSampler

        settings = self.client._context.settings
        run_id = self.run_id
        writer = self._writer
        counter = [0]

        def on_sample(metrics: Mapping[str, float], stamp: int) -> None:
            step = counter[0]
            counter[0] += 1
            for key, value in metrics.items():
                writer.log(run_id, key, float(value), step, stamp)

        sampler = SystemSampler(on_sample, interval=settings.system_metrics_interval)
        note = sampler.gpu_run_note  # None on a machine without a GPU: no tag on every CPU run
        if note:
            log.info("keel: %s", note)
            self.client.set_tags(self.run_id, {"keel.gpu": note})
        with self._sampler_lock:
            if self._sampler_closed:  # the run ended first
                return
            sampler.start()
            self._sampler = sampler

    def end(self, status: RunStatus | str = RunStatus.FINISHED, traceback: str | None = None) -> None:
        """Flush everything logged, record cost, and mark the run ``status``."""
        if self._ended:
            return
        self._ended = True
        cost = None
        if self._sampler_starting is not None:
            with contextlib.suppress(TimeoutError):  # behind a store that is slow to open
                self._sampler_starting.wait(timeout=5.0)
        with self._sampler_lock:
            self._sampler_closed = True
        if self._sampler is not None:
            try:
                self._sampler.stop()
                from keel.tracking.cost import estimate_cost

                cost = estimate_cost(self._sampler.usage, self.client._context.settings.prices)
            except Exception as exc:  # cost is best effort; never fail the run for it
                log.warning("keel: could not estimate the cost of run %s: %s", self.run_id, exc)
        self._writer.detach(self.run_id)
        try:
            self.client.update_run(
                self.run_id,
                status=RunStatus(status),
                end_time=now_ms(),
                traceback=traceback,
                cost_usd=cost.total_usd if cost else None,
                cost_detail=cost.as_dict() if cost else None,
            )
        except BaseException:
            with _stack_lock:
                if self in _stack:
                    _stack.remove(self)
            raise
        self.client._context.logged_params.pop(self.run_id, None)
        if self._writer.offline and self._writer.waiting:
            log.warning(
                "keel: run %s ended while the store %s is away; what it logged waits in %s and is sent "
                "by this process while it lives, else by the next keel process that opens this store "
                "(`keel sync` sends it at once)",
                self.run_id,
                self.client.store.url,
                self._writer.spool_dir,
            )
        with _stack_lock:
            if self in _stack:
                _stack.remove(self)

    def flush(self) -> None:
        self._writer.flush()

    def _new_key(self, key: str) -> int:
        limits.check_key(key, "metric key")
        return int(self._writer.key_id(self.run_id, key))


def start_run(
    experiment: str | None = None,
    name: str | None = None,
    *,
    run_id: str | None = None,
    nested: bool = False,
    tags: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    system_metrics: bool | None = None,
    tracking_uri: str | None = None,
    description: str | None = None,
) -> ActiveRun:
    """Start a run (or resume ``run_id``) and make it the active run.

    >>> with keel.start_run(experiment="churn", name="baseline") as run:
    ...     keel.log_param("lr", 0.01)
    ...     keel.log_metric("loss", 0.25, step=1)

    A second ``start_run`` while one is active needs ``nested=True``; the new run records the active
    one as its parent. System metrics (CPU, memory, disk, network, GPU) are sampled for top-level
    runs unless ``system_metrics=False`` or the ``system_metrics`` setting is off;
    ``system_metrics=True`` samples a nested run too.
    """
    with _stack_lock:
        if _stack and not nested:
            raise InvalidInputError(
                f"run {_stack[-1].run_id} is already active; end it first, or pass nested=True to "
                "start a child run"
            )
        client = _RunClient(tracking_uri)
        settings = client._context.settings
        run: Run | QueuedRun
        if run_id is not None:
            client.update_run(run_id, status=RunStatus.RUNNING)  # NotFoundError if unknown
            if client._context.writer.outbox:  # the store is away: go on with what we know
                run = _local_run(run_id, "", now_ms(), {})
            else:
                run = client.get_run(run_id)
        else:
            git = git_info_soon()  # `git` runs in a thread; a queued creation does not wait for it
            all_tags = dict(tags or {})
            if description:
                all_tags["keel.note"] = description
            run = client.start(
                experiment,
                name,
                tags=all_tags,
                parent_run_id=_stack[-1].run_id if _stack else None,
                pid=os.getpid(),
                heartbeat_interval=settings.heartbeat_interval,
                git=git,
                entry_point=entry_point(),
            )
        # None: the setting decides, for top-level runs; True samples even a nested run
        sample = (settings.system_metrics and not _stack) if system_metrics is None else system_metrics
        active = ActiveRun(client, run, system_metrics=bool(sample))
        _stack.append(active)
        _install_handlers()
    if params:
        log_params(params)
    return active


def active_run() -> ActiveRun | None:
    """The innermost active run, or ``None``."""
    return _stack[-1] if _stack else None


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> None:
    """End the innermost active run."""
    if _stack:
        _stack[-1].end(status)


def _current() -> ActiveRun:
    if _stack:
        return _stack[-1]
    # like MLflow: logging with no active run starts one in the default experiment
    return start_run()


def log_metric(key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
    """Log one metric point. When it returns the point survives the death of the process (it is in
    the point log, a mapped file); the background writer sends it to the store."""
    if _taps:  # a pipeline step is recording what it logs (keel.tracking.capture)
        _tap(key, value, step)
    run = _stack[-1] if _stack else _current()
    kid = run._keys.get(key)
    if kid is None:
        kid = run._new_key(key)
    if value.__class__ is not float:
        value = _to_float(key, value)
    if step.__class__ is not int:
        step = _to_step(step)
    stamp = _time_ns() // 1_000_000 if timestamp is None else int(timestamp)
    try:
        point = _pack_point(kid, step, stamp, value)
    except struct.error:
        raise InvalidInputError(
            f"step {step} or timestamp {stamp} of metric {key!r} is out of range"
        ) from None
    point += _pack_crc(_crc32(point))
    try:
        run._points.mm.write(point)  # one copy into the mapped segment: durable on return
    except ValueError:  # the segment is full (or closed at exit): map the next one
        run._points.append_slow(point)
    if run._writer.idle:
        run._writer.wake()


def log_metrics(metrics: Mapping[str, float], step: int = 0, timestamp: int | None = None) -> None:
    """Log several metrics at the same step."""
    stamp = _time_ns() // 1_000_000 if timestamp is None else int(timestamp)
    for key, value in metrics.items():
        log_metric(key, value, step, stamp)


def _to_step(step: Any) -> int:
    if isinstance(step, bool) or not hasattr(step, "__index__"):
        raise InvalidInputError(f"step must be a whole number, not {step!r}")
    return int(step)


def log_param(key: str, value: Any) -> None:
    run = _current()
    run.client.log_params(run.run_id, {key: value})


def log_params(params: Mapping[str, Any]) -> None:
    run = _current()
    run.client.log_params(run.run_id, params)


def set_tag(key: str, value: Any) -> None:
    run = _current()
    run.client.set_tags(run.run_id, {key: value})


def set_tags(tags: Mapping[str, Any]) -> None:
    run = _current()
    run.client.set_tags(run.run_id, tags)


def log_artifact(local_path: str | os.PathLike[str], name: str | None = None) -> list[Any]:
    """Store a file or folder as artifacts of the active run."""
    run = _current()
    return run.client.log_artifact(run.run_id, local_path, name)


def log_text(text: str, name: str) -> Any:
    run = _current()
    return run.client.log_text(run.run_id, text, name)


def log_dict(data: Any, name: str) -> Any:
    run = _current()
    return run.client.log_dict(run.run_id, data, name)


def log_figure(figure: Any, name: str) -> Any:
    run = _current()
    return run.client.log_figure(run.run_id, figure, name)


def log_table(table: Any, name: str) -> Any:
    run = _current()
    return run.client.log_table(run.run_id, table, name)


def log_input(
    data: Any, name: str | None = None, context: str = "training", source: str | None = None
) -> Any:
    """Record the dataset version the active run reads (lineage from data to model)."""
    run = _current()
    return run.client.log_input(run.run_id, data, name=name, context=context, source=source)


def log_model(
    model: Any,
    name: str = "model",
    *,
    flavor: str | None = None,
    input_example: Any = None,
    trust: bool = False,
    registered_model_name: str | None = None,
) -> ModelInfo:
    """Save a model in its safe format as artifacts of the active run; optionally register it."""
    run = _current()
    return run.client.log_model(
        run.run_id,
        model,
        name,
        flavor=flavor,
        input_example=input_example,
        trust=trust,
        registered_model_name=registered_model_name,
    )


def flush() -> None:
    """Block until every point logged so far is in the store."""
    for run in list(_stack):
        run.flush()
        if run._writer.error is not None:
            raise run._writer.error


# -- process lifecycle ---------------------------------------------------------------------------

_handlers_installed = False


def _install_handlers() -> None:
    global _handlers_installed
    if _handlers_installed:
        return
    _handlers_installed = True
    atexit.register(_at_exit)
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGTERM)
        if previous in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, _on_sigterm)
    hook = sys.excepthook

    def _excepthook(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
        text = "".join(traceback_module.format_exception(kind, error, tb))
        _end_all(RunStatus.FAILED, traceback=text)
        hook(kind, error, tb)

    sys.excepthook = _excepthook


def _end_all(status: RunStatus, traceback: str | None = None) -> None:
    for run in reversed(list(_stack)):
        try:
            run.end(status, traceback=traceback)
        except KeelError as exc:
            log.warning("keel: could not end run %s: %s", run.run_id, exc)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _end_all(RunStatus.KILLED)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _at_exit() -> None:
    _end_all(RunStatus.FINISHED)
    from keel.tracking.context import _contexts

    for context in list(_contexts.values()):
        if context._writer is not None:
            context._writer.close()


def _after_fork_in_child() -> None:
    # A forked child shares nothing live with its parent: no writer thread, no sampler, no run.
    global _handlers_installed
    _stack.clear()
    from keel.store import base
    from keel.tracking import context

    context._contexts.clear()
    base._open.clear()
    _handlers_installed = False


os.register_at_fork(after_in_child=_after_fork_in_child)
