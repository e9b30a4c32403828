"""SystemSampler against the real machine (psutil), and its NVML path against a fake NVML."""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import time
import types
from typing import Any

import pytest

from keel.config import Prices
from keel.errors import InvalidInputError, NotFoundError
from keel.tracking import system
from keel.tracking.cost import estimate_cost
from keel.tracking.system import SystemSampler

BASE_KEYS = {
    "system/cpu_percent",
    "system/cpu_count",
    "system/rss_mb",
    "system/memory_used_mb",
    "system/memory_percent",
    "system/disk_read_mb",
    "system/disk_write_mb",
    "system/net_sent_mb",
    "system/net_recv_mb",
}
CUMULATIVE_KEYS = [
    "system/disk_read_mb",
    "system/disk_write_mb",
    "system/net_sent_mb",
    "system/net_recv_mb",
]
GPU_FIELDS = {"utilization_percent", "memory_used_mb", "memory_percent", "power_w"}
# Burns CPU time, not wall time, so a busy machine makes it slower but not lighter.
BURN = "import time\nend = time.process_time() + {seconds}\nwhile time.process_time() < end: pass\n"


class Recorder:
    """A sampler callback that keeps what it is given."""

    def __init__(self) -> None:
        self.samples: list[tuple[dict[str, float], int]] = []
        self._lock = threading.Lock()

    def __call__(self, metrics: dict[str, float], timestamp_ms: int) -> None:
        with self._lock:
            self.samples.append((metrics, timestamp_ms))

    @property
    def metrics(self) -> list[dict[str, float]]:
        with self._lock:
            return [metrics for metrics, _ in self.samples]


def burn(seconds: float) -> None:
    """Use ``seconds`` of this thread's CPU time."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def check_sane(metrics: dict[str, float]) -> None:
    assert metrics.keys() >= BASE_KEYS
    assert all(key.startswith("system/") for key in metrics)
    assert all(isinstance(value, float) and math.isfinite(value) for value in metrics.values())
    assert metrics["system/cpu_count"] >= 1
    assert 0 <= metrics["system/cpu_percent"] <= 100 * metrics["system/cpu_count"]
    assert metrics["system/rss_mb"] > 0
    assert metrics["system/memory_used_mb"] > 0
    assert 0 < metrics["system/memory_percent"] <= 100
    assert all(metrics[key] >= 0 for key in CUMULATIVE_KEYS)


def test_samples_this_process_while_it_burns_cpu() -> None:
    recorder = Recorder()
    sampler = SystemSampler(recorder, interval=0.05)
    # Probe NVML now: its first import, in the thread, competes for the GIL with the busy loop.
    sampler.gpu_note  # noqa: B018
    started_ms = time.time() * 1000
    sampler.start()
    burn(0.5)
    sampler.stop()
    samples = recorder.samples
    assert len(samples) >= 2  # the busy loop holds the GIL, so the thread may fall behind
    for metrics, timestamp_ms in samples:
        check_sane(metrics)
        assert isinstance(timestamp_ms, int)
        assert started_ms - 1000 <= timestamp_ms <= time.time() * 1000 + 1000
    timestamps = [timestamp for _, timestamp in samples]
    assert timestamps == sorted(timestamps)
    for key in CUMULATIVE_KEYS:  # counted since start, so they never go down
        values = [metrics[key] for metrics, _ in samples]
        assert values == sorted(values)
    assert max(metrics["system/cpu_percent"] for metrics, _ in samples) > 50
    usage = sampler.usage
    assert 0.45 <= usage.wall_seconds < 30
    # /proc counts in 10 ms ticks, hence the slack
    assert 0.45 <= usage.cpu_core_seconds <= usage.wall_seconds * samples[0][0]["system/cpu_count"]
    assert usage.memory_gb_seconds > 0


def test_tree_includes_a_child_process() -> None:
    recorder = Recorder()
    with SystemSampler(recorder, interval=0.05) as sampler:
        subprocess.run(python(BURN.format(seconds=0.6)), check=True)  # this process only waits
    assert max(metrics["system/cpu_percent"] for metrics in recorder.metrics) > 50
    assert sampler.usage.cpu_core_seconds >= 0.55


def test_tree_of_another_process_includes_its_grandchildren() -> None:
    grandchild = BURN.format(seconds=0.6)
    child = subprocess.Popen(
        python(f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {grandchild!r}])")
    )
    recorder = Recorder()
    sampler = SystemSampler(recorder, interval=0.05, pid=child.pid)
    sampler.start()
    child.wait(timeout=30)
    time.sleep(0.1)  # the root is gone now: sampling goes on without raising
    sampler.stop()
    # Seen while it runs, not only when its parent reaps it (that would show in one sample).
    assert sum(metrics["system/cpu_percent"] > 20 for metrics in recorder.metrics) >= 2
    assert sampler.usage.cpu_core_seconds >= 0.55


def test_a_child_that_lives_between_two_samples_is_counted() -> None:
    sampler = SystemSampler(Recorder(), interval=60)
    sampler.sample()
    before = sampler.usage.cpu_core_seconds
    subprocess.run(python(BURN.format(seconds=0.4)), check=True)
    assert sampler.sample()["system/cpu_percent"] > 0
    assert sampler.usage.cpu_core_seconds - before >= 0.38  # the child's CPU time, to a tick


def test_a_reaped_child_is_not_counted_twice() -> None:
    sampler = SystemSampler(Recorder(), interval=60)
    before = sampler.usage.cpu_core_seconds
    child = subprocess.Popen(python(BURN.format(seconds=0.4)))
    while child.poll() is None:  # seen alive, then folded into this process's children_* times
        sampler.sample()
        time.sleep(0.05)
    sampler.sample()
    used = sampler.usage.cpu_core_seconds - before
    assert 0.38 <= used < 0.7  # counted twice it would be 0.8 or more


def test_stop_takes_one_final_sample_and_is_idempotent() -> None:
    recorder = Recorder()
    sampler = SystemSampler(recorder, interval=60)
    sampler.start()
    sampler.start()  # a second start is a no-op
    began = time.perf_counter()
    sampler.stop()
    assert time.perf_counter() - began < 2  # the thread's wait is cut short
    assert len(recorder.samples) == 1
    check_sane(recorder.samples[0][0])
    sampler.stop()
    assert len(recorder.samples) == 1
    assert not any(thread.name == "keel-system-sampler" for thread in threading.enumerate())
    with pytest.raises(RuntimeError, match="create a new one"):
        sampler.start()


def test_stop_without_start_samples_nothing() -> None:
    recorder = Recorder()
    sampler = SystemSampler(recorder)
    sampler.stop()
    sampler.stop()
    assert recorder.samples == []


def test_a_failing_callback_does_not_stop_sampling() -> None:
    calls: list[int] = []

    def fail(metrics: dict[str, float], timestamp_ms: int) -> None:
        calls.append(timestamp_ms)
        raise ValueError("store is down")

    sampler = SystemSampler(fail, interval=0.02)
    sampler.start()
    time.sleep(0.2)
    sampler.stop()
    assert len(calls) >= 3


def test_gpu_metrics_off_without_a_gpu() -> None:
    sampler = SystemSampler(Recorder())
    note = sampler.gpu_note
    if note is None:
        pytest.skip("this machine has a GPU that NVML can see")
    assert note.strip() and "\n" not in note
    assert "GPU metrics off" in note
    assert not any(key.startswith("system/gpu") for key in sampler.sample())


def test_gpu_false_leaves_nvml_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    def probe() -> None:
        raise AssertionError("NVML was probed")

    monkeypatch.setattr(system, "_gpu_cache", None)
    monkeypatch.setattr(system, "_probe_gpus", probe)
    sampler = SystemSampler(Recorder(), gpu=False)
    assert sampler.gpu_note == "GPU metrics off (gpu=False)"
    assert not any(key.startswith("system/gpu") for key in sampler.sample())


def test_bad_arguments_are_refused() -> None:
    for interval in (0, -1, math.nan, math.inf, "often"):
        with pytest.raises(InvalidInputError):
            SystemSampler(Recorder(), interval=interval)
    gone = subprocess.Popen(python("pass"))
    gone.wait()
    for pid in (gone.pid, -5):
        with pytest.raises(NotFoundError, match=str(pid)):
            SystemSampler(Recorder(), pid=pid)


# -- NVML, faked ---------------------------------------------------------------------------------


class FakeNvmlError(Exception):
    pass


def fake_nvml(devices: list[dict[str, Any]], *, init_error: str | None = None) -> Any:
    """A stand-in for the pynvml module with the calls the sampler makes."""

    def init() -> None:
        if init_error:
            raise FakeNvmlError(init_error)

    def answer(handle: int, field: str) -> Any:
        value = devices[handle][field]
        if isinstance(value, Exception):
            raise value
        return value

    def memory(handle: int, version: int | None = None) -> Any:
        used, total = answer(handle, "memory")
        return types.SimpleNamespace(used=used, total=total, free=total - used)

    return types.SimpleNamespace(
        NVMLError=FakeNvmlError,
        nvmlMemory_v2=0x02000028,
        nvmlInit=init,
        nvmlDeviceGetCount=lambda: len(devices),
        nvmlDeviceGetHandleByIndex=lambda index: index,
        nvmlDeviceGetName=lambda handle: answer(handle, "name"),
        nvmlDeviceGetUUID=lambda handle: answer(handle, "uuid"),
        nvmlDeviceGetUtilizationRates=lambda handle: types.SimpleNamespace(
            gpu=answer(handle, "utilization"), memory=0
        ),
        nvmlDeviceGetMemoryInfo=memory,
        nvmlDeviceGetPowerUsage=lambda handle: answer(handle, "milliwatts"),
    )


H100 = "NVIDIA H100 80GB HBM3"
GIB = 2**30


@pytest.fixture
def two_gpus(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    devices: list[dict[str, Any]] = [
        {
            "name": H100,
            "uuid": "GPU-aaaa-1111",
            "utilization": 50,
            "memory": (20 * GIB, 80 * GIB),
            "milliwatts": 300_000,
        },
        {
            "name": b"Tesla T4",  # old nvidia-ml-py answers bytes
            "uuid": "GPU-bbbb-2222",
            "utilization": 0,
            "memory": (0, 16 * GIB),
            "milliwatts": FakeNvmlError("Not Supported"),
        },
    ]
    monkeypatch.setattr(system, "_gpu_cache", None)
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(devices))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return devices


def test_gpu_metrics_through_nvml(two_gpus: list[dict[str, Any]]) -> None:
    sampler = SystemSampler(Recorder(), interval=60)
    assert sampler.gpu_note is None
    time.sleep(0.05)
    metrics = sampler.sample()
    assert metrics["system/gpu0/utilization_percent"] == 50.0
    assert metrics["system/gpu0/memory_used_mb"] == 20 * 1024
    assert metrics["system/gpu0/memory_percent"] == 25.0
    assert metrics["system/gpu0/power_w"] == 300.0
    assert metrics["system/gpu1/utilization_percent"] == 0.0
    assert "system/gpu1/power_w" not in metrics  # not supported: left out, no error
    gpu_keys = {key for key in metrics if key.startswith("system/gpu")}
    assert {key.split("/")[-1] for key in gpu_keys} == GPU_FIELDS
    usage = sampler.usage
    assert set(usage.gpu_seconds) == {H100}  # the idle T4 is not billed
    assert usage.gpu_seconds[H100] == pytest.approx(usage.wall_seconds)
    estimate = estimate_cost(usage, Prices())
    assert estimate.gpu_usd == pytest.approx(usage.wall_seconds / 3600 * 3.90)


def test_a_gpu_with_memory_in_use_counts_as_busy(two_gpus: list[dict[str, Any]]) -> None:
    two_gpus[1]["memory"] = (GIB, 16 * GIB)
    sampler = SystemSampler(Recorder(), interval=60)
    sampler.sample()
    assert set(sampler.usage.gpu_seconds) == {H100, "Tesla T4"}


@pytest.mark.parametrize(
    ("setting", "indexes"),
    [("1", [1]), ("GPU-bbbb", [1]), ("0,1", [0, 1]), ("1,7,0", [1]), ("MIG-xyz", [0, 1])],
)
def test_cuda_visible_devices_limits_the_gpus(
    two_gpus: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    setting: str,
    indexes: list[int],
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", setting)
    metrics = SystemSampler(Recorder()).sample()
    seen = sorted({int(key.split("/")[1][3:]) for key in metrics if key.startswith("system/gpu")})
    assert seen == indexes


@pytest.mark.parametrize("setting", ["", "-1"])
def test_cuda_visible_devices_can_hide_every_gpu(
    two_gpus: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", setting)
    sampler = SystemSampler(Recorder())
    assert sampler.gpu_note == "no NVIDIA GPU visible (CUDA_VISIBLE_DEVICES hides every GPU); GPU metrics off"


def test_nvml_failures_turn_gpu_metrics_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(system, "_gpu_cache", None)
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([], init_error="Driver Not Loaded\n(details)"))
    sampler = SystemSampler(Recorder())
    assert sampler.gpu_note == ("no NVIDIA GPU visible (NVML: Driver Not Loaded (details)); GPU metrics off")
    assert not any(key.startswith("system/gpu") for key in sampler.sample())

    monkeypatch.setattr(system, "_gpu_cache", None)
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([]))
    assert SystemSampler(Recorder()).gpu_note == (
        "no NVIDIA GPU visible (NVML found 0 devices); GPU metrics off"
    )

    monkeypatch.setattr(system, "_gpu_cache", None)
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    note = SystemSampler(Recorder()).gpu_note
    assert note is not None and "pip install 'keel-mlops[gpu]'" in note


def test_a_gpu_that_stops_answering_does_not_break_sampling(
    two_gpus: list[dict[str, Any]],
) -> None:
    sampler = SystemSampler(Recorder())
    sampler.sample()
    for field in ("utilization", "memory", "milliwatts"):
        two_gpus[0][field] = FakeNvmlError("GPU is lost")
    metrics = sampler.sample()
    assert not any(key.startswith("system/gpu0/") for key in metrics)
    assert "system/gpu1/memory_used_mb" in metrics


def test_the_gpu_note_is_news_about_a_run_only_where_a_gpu_seems_present(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A CPU machine without nvidia-ml-py must not tag every run with the install hint; a machine
    whose driver shows a GPU that keel cannot read must (its GPU metrics are missing)."""
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    for present in (False, True):
        monkeypatch.setattr(system, "_gpu_cache", None)
        monkeypatch.setattr(system, "_nvidia_device_present", lambda present=present: present)
        sampler = SystemSampler(Recorder())
        assert sampler.gpu_note is not None and "pip install" in sampler.gpu_note
        assert sampler.gpu_run_note == (sampler.gpu_note if present else None)

    monkeypatch.setattr(system, "_gpu_cache", None)
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([]))
    assert SystemSampler(Recorder()).gpu_run_note is None  # NVML answers: no device here
    assert SystemSampler(Recorder(), gpu=False).gpu_run_note is None
