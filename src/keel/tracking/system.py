"""System metrics of a run: CPU, memory, disk, network and GPU use, sampled in a daemon thread.

:class:`SystemSampler` reads the resource use of a process tree (a process and all its descendants)
every few seconds and hands each sample to a callback, which logs the values as run metrics. It
also keeps running totals (:attr:`SystemSampler.usage`) that
:func:`~keel.tracking.cost.estimate_cost` turns into a cost estimate::

    sampler = SystemSampler(lambda metrics, timestamp_ms: log_metrics(metrics, timestamp_ms))
    sampler.start()
    train()
    sampler.stop()                          # a final sample, so even a short run has one
    print(estimate_cost(sampler.usage, settings.prices).total_usd)

The metrics (all floats):

=================================  =============================================================
``system/cpu_percent``             CPU use of the process tree; 100 is one full core
``system/cpu_count``               logical CPUs of the machine
``system/rss_mb``                  resident memory of the process tree
``system/memory_used_mb``          memory in use on the machine (total minus available)
``system/memory_percent``          the same as a percentage of the machine's memory
``system/disk_read_mb``            bytes the tree read from storage since the sampler started
``system/disk_write_mb``           bytes the tree wrote to storage since then
``system/net_sent_mb``             bytes the machine sent since then
``system/net_recv_mb``             bytes the machine received since then
``system/gpu{i}/...``              per GPU (``i`` as in ``nvidia-smi``): ``utilization_percent``,
                                   ``memory_used_mb``, ``memory_percent``, ``power_w``
=================================  =============================================================

``_mb`` values are MiB (2**20 bytes). Disk counters come from each process's I/O accounting where
the platform has it (Linux) and from the machine's disk counters otherwise; a counter the machine
cannot read at all is left out rather than reported as 0. GPUs are read through NVML (the optional
``nvidia-ml-py`` package); when it is missing or finds no GPU, GPU metrics are off and
:attr:`SystemSampler.gpu_note` says why.

CPU time and disk I/O of the tree are counted exactly, not sampled: the kernel adds a child's
totals to its parent's when the parent reaps it, so the sampler follows the sum of
``user + system + children_user + children_system`` (and of I/O bytes) over the tree, and a
subprocess that starts and ends between two samples is still counted.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psutil

from keel.errors import InvalidInputError, NotFoundError
from keel.tracking.cost import ResourceUsage

__all__ = ["SystemSampler"]

logger = logging.getLogger(__name__)

_MIB = float(2**20)
_GIB = float(2**30)
#: how long stop() waits for a sample or callback in progress before giving up on the thread
_JOIN_TIMEOUT = 10.0

SampleCallback = Callable[[dict[str, float], int], None]


class SystemSampler:
    """Samples a process tree's resource use in a daemon thread, handing each sample to a callback.

    ``on_sample(metrics, timestamp_ms)`` is called from the sampler's thread every ``interval``
    seconds after :meth:`start`, and once more from :meth:`stop`. ``pid`` names the root of the tree
    (default: this process); ``gpu=False`` leaves NVML alone. Nothing here raises because of NVML,
    a vanished process or a failing callback: such problems are logged and sampling goes on.
    """

    def __init__(
        self,
        on_sample: SampleCallback,
        *,
        interval: float = 5.0,
        pid: int | None = None,
        gpu: bool = True,
    ) -> None:
        try:
            seconds = float(interval)
        except (TypeError, ValueError):
            seconds = math.nan
        if not (math.isfinite(seconds) and seconds > 0):
            raise InvalidInputError(
                f"the sampling interval must be a positive number of seconds, not {interval!r}"
            )
        root = os.getpid() if pid is None else pid
        try:
            self._tree = _ProcessTree(root)
        except (psutil.NoSuchProcess, ValueError):
            raise NotFoundError(
                f"no process with pid {root}; pass a running process's pid, or None for this one"
            ) from None
        self._on_sample = on_sample
        self._interval = seconds
        self._gpu_enabled = gpu
        self._cpu_count = psutil.cpu_count(logical=True) or 1
        self._sample_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._failures = 0
        self._reset()

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start sampling; totals and counters count from now. A second call is a no-op."""
        with self._state_lock:
            if self._stopped:
                raise RuntimeError("this SystemSampler was stopped; create a new one to sample again")
            if self._thread is not None:
                return
            self._reset()
            self._thread = threading.Thread(target=self._run, name="keel-system-sampler", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread and take a final sample, so short runs get one. Idempotent."""
        with self._state_lock:
            if self._stopped:
                return
            self._stopped = True
            thread = self._thread
        self._stop_event.set()
        if thread is None:
            return
        if thread is not threading.current_thread():
            thread.join(_JOIN_TIMEOUT)
            if thread.is_alive():
                logger.warning(
                    "the system-metrics thread did not finish within %.0f s (a slow callback?); "
                    "leaving it behind",
                    _JOIN_TIMEOUT,
                )
        self._emit()

    def __enter__(self) -> SystemSampler:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- reading ---------------------------------------------------------------------------------

    def sample(self) -> dict[str, float]:
        """Take one sample now; rates and totals cover the time since the previous sample."""
        return self._take()[0]

    @property
    def gpu_note(self) -> str | None:
        """Why GPU metrics are off, in one line; ``None`` while they are on."""
        if not self._gpu_enabled:
            return "GPU metrics off (gpu=False)"
        return _gpu_state().note

    @property
    def gpu_run_note(self) -> str | None:
        """:attr:`gpu_note` when it is news about a run: a GPU seems present, yet is not measured.
        On a machine without one the note would be the same on every run (and on every run page),
        so it is logged once at debug level instead; ``gpu=False`` is the caller's own choice."""
        if not self._gpu_enabled:
            return None
        state = _gpu_state()
        return state.note if state.gpu_seen else None

    @property
    def usage(self) -> ResourceUsage:
        """A copy of the running totals since :meth:`start`, for :func:`estimate_cost`."""
        with self._sample_lock:
            return self._usage.copy()

    # -- internals -------------------------------------------------------------------------------

    def _reset(self) -> None:
        """Make now the zero of totals and cumulative counters."""
        with self._sample_lock:
            self._usage = ResourceUsage()
            reading = self._tree.read()
            self._last_time = time.monotonic()
            self._last_rss = reading.rss_bytes
            self._disk_read = 0.0
            self._disk_write = 0.0
            self._net_base = _net_counters()
            self._disk_base = None if self._tree.has_io else _disk_counters()

    def _run(self) -> None:
        if self._gpu_enabled:
            _gpu_state()  # NVML can take seconds to initialise: do it here, not in the run's thread
        deadline = time.monotonic() + self._interval
        while not self._stop_event.wait(max(0.0, deadline - time.monotonic())):
            self._emit()
            deadline += self._interval
            now = time.monotonic()
            if deadline < now:  # fell behind (a slow callback): skip missed beats, do not burst
                deadline = now + self._interval

    def _emit(self) -> None:
        try:
            metrics, timestamp_ms = self._take()
            self._on_sample(metrics, timestamp_ms)
        except Exception:
            # Never let the thread die; log the first failure in full, later ones quietly.
            self._failures += 1
            level = logging.WARNING if self._failures == 1 else logging.DEBUG
            logger.log(level, "system-metrics sample failed; sampling goes on", exc_info=True)

    def _take(self) -> tuple[dict[str, float], int]:
        with self._sample_lock:
            reading = self._tree.read()
            now = time.monotonic()
            timestamp_ms = time.time_ns() // 1_000_000
            elapsed = now - self._last_time
            metrics: dict[str, float] = {}

            # The exact CPU time goes into the totals; the displayed rate is capped at what the
            # machine has, because /proc counts in 10 ms ticks and short intervals jitter.
            percent = 100.0 * reading.cpu_seconds / elapsed if elapsed > 0 else 0.0
            metrics["system/cpu_percent"] = min(percent, 100.0 * self._cpu_count)
            metrics["system/cpu_count"] = float(self._cpu_count)
            metrics["system/rss_mb"] = reading.rss_bytes / _MIB
            self._add_machine_memory(metrics)
            self._add_disk(metrics, reading)
            self._add_network(metrics)
            busy_gpus = self._add_gpus(metrics)

            self._usage.add(
                elapsed,
                cpu_core_seconds=reading.cpu_seconds,
                memory_gb_seconds=(self._last_rss + reading.rss_bytes) / 2 / _GIB * elapsed,
                gpus_in_use=busy_gpus,
            )
            self._last_time = now
            self._last_rss = reading.rss_bytes
            return metrics, timestamp_ms

    @staticmethod
    def _add_machine_memory(metrics: dict[str, float]) -> None:
        try:
            memory = psutil.virtual_memory()
        except (OSError, RuntimeError):
            return
        # total - available, so used and percent agree (psutil's "used" leaves out other caches)
        metrics["system/memory_used_mb"] = (memory.total - memory.available) / _MIB
        metrics["system/memory_percent"] = float(memory.percent)

    def _add_disk(self, metrics: dict[str, float], reading: _TreeReading) -> None:
        if self._tree.has_io:
            self._disk_read += reading.read_bytes
            self._disk_write += reading.write_bytes
        else:
            current = _disk_counters()
            if current is None or self._disk_base is None:
                return
            self._disk_read = max(0.0, current[0] - self._disk_base[0])
            self._disk_write = max(0.0, current[1] - self._disk_base[1])
        metrics["system/disk_read_mb"] = self._disk_read / _MIB
        metrics["system/disk_write_mb"] = self._disk_write / _MIB

    def _add_network(self, metrics: dict[str, float]) -> None:
        current = _net_counters()
        if current is None or self._net_base is None:
            return
        metrics["system/net_sent_mb"] = max(0.0, current[0] - self._net_base[0]) / _MIB
        metrics["system/net_recv_mb"] = max(0.0, current[1] - self._net_base[1]) / _MIB

    def _add_gpus(self, metrics: dict[str, float]) -> list[str]:
        """Add GPU metrics; return the model name of each GPU in use (for the cost totals)."""
        if not self._gpu_enabled:
            return []
        state = _gpu_state()
        busy: list[str] = []
        for gpu in state.devices:
            prefix = f"system/gpu{gpu.index}/"
            rates = _nvml_call(state.nvml.nvmlDeviceGetUtilizationRates, gpu.handle)
            memory = (
                _nvml_call(state.nvml.nvmlDeviceGetMemoryInfo, gpu.handle, state.nvml.nvmlMemory_v2)
                if gpu.memory_v2
                else _nvml_call(state.nvml.nvmlDeviceGetMemoryInfo, gpu.handle)
            )
            milliwatts = _nvml_call(state.nvml.nvmlDeviceGetPowerUsage, gpu.handle)
            in_use = False
            if rates is not None:
                metrics[prefix + "utilization_percent"] = float(rates.gpu)
                in_use = rates.gpu > 0
            if memory is not None:
                metrics[prefix + "memory_used_mb"] = memory.used / _MIB
                if memory.total:
                    metrics[prefix + "memory_percent"] = 100.0 * memory.used / memory.total
                in_use = in_use or memory.used > 0
            if milliwatts is not None:
                metrics[prefix + "power_w"] = milliwatts / 1000.0
            if in_use:
                busy.append(gpu.name)
        return busy


# -- the process tree ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _TreeReading:
    cpu_seconds: float  # CPU time the tree used since the previous reading
    read_bytes: float  # bytes read from storage since the previous reading
    write_bytes: float
    rss_bytes: float  # resident memory now (shared pages count once per process)


@dataclasses.dataclass
class _Member:
    process: psutil.Process
    parent: int | None
    #: cumulative [cpu seconds, read bytes, write bytes], each including reaped descendants
    totals: list[float]


class _ProcessTree:
    """A process and its descendants, remembered between readings so deltas are exact.

    Every reading sums, over the live members, counters that include the process's reaped children
    (``children_user``/``children_system``, and Linux folds a reaped child's I/O into its parent's).
    A member that disappears was either reaped by a member, whose counters just absorbed its final
    totals, so its last totals are subtracted; or it left the tree alive (re-parented when its
    parent died), so what it used while inside stays counted.
    """

    def __init__(self, pid: int) -> None:
        self._root = psutil.Process(pid)
        self._pid = pid
        self._members: dict[int, _Member] = {}
        # Linux lists each thread's children in /proc (CONFIG_PROC_CHILDREN): reading those files
        # costs microseconds, while psutil's children() reads /proc/<pid>/stat of every process.
        self._fast = os.path.exists(f"/proc/{pid}/task/{pid}/children")
        self.has_io = _readable_io(self._root)

    def read(self) -> _TreeReading:
        deltas = [0.0, 0.0, 0.0]
        rss = 0.0
        live: dict[int, _Member] = {}
        for pid, parent in self._discover():
            member = self._members.get(pid)
            if member is None:
                try:
                    process = self._root if pid == self._pid else psutil.Process(pid)
                except psutil.Error:
                    continue
                # New since the last reading: everything it has used since its fork is new.
                member = _Member(process, parent, [0.0, 0.0, 0.0])
            values = self._counters(member)
            if values is None:
                continue
            totals, member_rss = values
            for k in range(3):
                deltas[k] += totals[k] - member.totals[k]
            member.totals = totals
            member.parent = parent
            rss += member_rss
            live[pid] = member
        reaped: set[int] = set()
        for pid, member in self._members.items():  # parents come before their children
            if pid in live:
                continue
            inside = member.parent is not None and (member.parent in live or member.parent in reaped)
            if inside and not _alive(member.process):
                reaped.add(pid)
                for k in range(3):
                    deltas[k] -= member.totals[k]
        self._members = live
        return _TreeReading(max(0.0, deltas[0]), max(0.0, deltas[1]), max(0.0, deltas[2]), rss)

    def _discover(self) -> list[tuple[int, int | None]]:
        """(pid, parent pid) of the root and every descendant, parents first."""
        if not self._fast:
            return self._discover_with_psutil()
        found: list[tuple[int, int | None]] = [(self._pid, None)]
        seen = {self._pid}
        position = 0
        while position < len(found):
            pid = found[position][0]
            position += 1
            for child in _children_from_proc(pid):
                if child not in seen:
                    seen.add(child)
                    found.append((child, pid))
        return found

    def _discover_with_psutil(self) -> list[tuple[int, int | None]]:
        found: list[tuple[int, int | None]] = [(self._pid, None)]
        try:
            children = self._root.children(recursive=True)
        except psutil.Error:
            return found
        for child in children:
            try:
                found.append((child.pid, child.ppid()))
            except psutil.Error:
                continue
        return found

    def _counters(self, member: _Member) -> tuple[list[float], float] | None:
        process = member.process
        try:
            times = process.cpu_times()
            rss = float(process.memory_info().rss)
        except psutil.Error:  # NoSuchProcess, ZombieProcess, AccessDenied
            return None
        cpu = times.user + times.system + times.children_user + times.children_system
        read, write = member.totals[1], member.totals[2]
        if self.has_io:
            try:
                io = process.io_counters()
                read, write = float(io.read_bytes), float(io.write_bytes)
            except psutil.Error:
                pass  # another user's process, or gone: keep what it had
        return [cpu, read, write], rss


def _children_from_proc(pid: int) -> list[int]:
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    children: list[int] = []
    for thread in threads:
        try:
            with open(f"/proc/{pid}/task/{thread}/children", "rb") as handle:
                children.extend(int(word) for word in handle.read().split())
        except (OSError, ValueError):
            continue
    return children


def _readable_io(process: psutil.Process) -> bool:
    if not hasattr(process, "io_counters"):  # macOS has no per-process I/O counters
        return False
    try:
        process.io_counters()
    except (psutil.Error, OSError, NotImplementedError):
        return False
    return True


def _alive(process: psutil.Process) -> bool:
    try:
        return bool(process.is_running())
    except psutil.Error:
        return False


def _disk_counters() -> tuple[float, float] | None:
    try:
        counters = psutil.disk_io_counters()
    except (OSError, RuntimeError):
        return None
    return None if counters is None else (float(counters.read_bytes), float(counters.write_bytes))


def _net_counters() -> tuple[float, float] | None:
    try:
        counters = psutil.net_io_counters()
    except (OSError, RuntimeError):
        return None
    return None if counters is None else (float(counters.bytes_sent), float(counters.bytes_recv))


# -- GPUs through NVML ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Gpu:
    index: int  # NVML's index, the one nvidia-smi shows
    name: str
    uuid: str
    handle: Any
    memory_v2: bool  # the v2 call reports used memory without the driver's reservation


@dataclasses.dataclass(frozen=True)
class _GpuState:
    devices: tuple[_Gpu, ...]
    note: str | None
    nvml: Any = None
    #: whether this machine seems to have an NVIDIA GPU: only then is ``note`` news about a run
    gpu_seen: bool = False


def _nvidia_device_present() -> bool:
    """Whether the NVIDIA driver shows a device here (Linux device nodes), asked without NVML."""
    return Path("/dev/nvidia0").exists() or Path("/proc/driver/nvidia/gpus").is_dir()


_gpu_lock = threading.Lock()
_gpu_cache: _GpuState | None = None


def _gpu_state() -> _GpuState:
    """The GPUs this process can see, found once per process (NVML initialised once)."""
    global _gpu_cache
    with _gpu_lock:
        if _gpu_cache is None:
            try:
                _gpu_cache = _probe_gpus()
            except Exception as exc:  # never let NVML break a run
                _gpu_cache = _GpuState((), _off(f"NVML: {_one_line(exc)}"), None, _nvidia_device_present())
            if _gpu_cache.note and not _gpu_cache.gpu_seen:
                logger.debug("keel: %s", _gpu_cache.note)  # once per process, not a tag on every run
        return _gpu_cache


def _probe_gpus() -> _GpuState:
    try:
        import pynvml
    except ImportError:
        return _GpuState(
            (),
            "nvidia-ml-py is not installed (pip install 'keel-mlops[gpu]'); GPU metrics off",
            None,
            _nvidia_device_present(),
        )
    try:
        pynvml.nvmlInit()
        count = pynvml.nvmlDeviceGetCount()
        devices = [_open_gpu(pynvml, index) for index in range(count)]
    except Exception as exc:  # NVMLError, or OSError from a broken driver library
        return _GpuState((), _off(f"NVML: {_one_line(exc)}"), None, _nvidia_device_present())
    if not devices:
        return _GpuState((), _off("NVML found 0 devices"))
    visible = _cuda_visible(devices, os.environ.get("CUDA_VISIBLE_DEVICES"))
    if not visible:
        return _GpuState((), _off("CUDA_VISIBLE_DEVICES hides every GPU"), None, True)
    return _GpuState(tuple(visible), None, pynvml, True)


def _open_gpu(nvml: Any, index: int) -> _Gpu:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    name = nvml.nvmlDeviceGetName(handle)
    if isinstance(name, bytes):  # older nvidia-ml-py returns bytes
        name = name.decode(errors="replace")
    uuid = _nvml_call(nvml.nvmlDeviceGetUUID, handle)
    if isinstance(uuid, bytes):
        uuid = uuid.decode(errors="replace")
    memory_v2 = hasattr(nvml, "nvmlMemory_v2") and (
        _nvml_call(nvml.nvmlDeviceGetMemoryInfo, handle, nvml.nvmlMemory_v2) is not None
    )
    return _Gpu(index=index, name=str(name), uuid=str(uuid or ""), handle=handle, memory_v2=memory_v2)


def _cuda_visible(devices: Sequence[_Gpu], setting: str | None) -> list[_Gpu]:
    """The devices CUDA_VISIBLE_DEVICES lets this process use (NVML itself ignores the variable).

    Entries are indexes or ``GPU-`` UUID prefixes; like CUDA, the list ends at the first entry that
    names no device. MIG entries are not mapped: with one of those every device stays visible.
    """
    if setting is None:
        return list(devices)
    chosen: list[_Gpu] = []
    for entry in (part.strip() for part in setting.split(",")):
        if entry.startswith("MIG-"):
            return list(devices)
        match = None
        if entry.isdigit():
            match = next((gpu for gpu in devices if gpu.index == int(entry)), None)
        elif entry.startswith("GPU-"):
            match = next((gpu for gpu in devices if gpu.uuid.startswith(entry)), None)
        if match is None:
            break
        if match not in chosen:
            chosen.append(match)
    return chosen


def _nvml_call(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)``, or None when NVML cannot answer (unsupported, GPU lost, ...)."""
    try:
        return function(*args)
    except Exception:
        return None


def _off(reason: str) -> str:
    return f"no NVIDIA GPU visible ({reason}); GPU metrics off"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]
