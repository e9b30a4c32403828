"""System metrics on a real NVIDIA GPU (marked ``gpu``; skipped where NVML finds none).

CI has no GPU, so these are run on a lent GPU machine: ``pytest -m gpu tests/tracking/test_gpu_real.py``.
"""

from __future__ import annotations

import time

import pytest

import keel
from keel.tracking.system import SystemSampler

pytestmark = pytest.mark.gpu


def _gpus() -> int:
    try:
        import pynvml

        pynvml.nvmlInit()
        count = int(pynvml.nvmlDeviceGetCount())
        pynvml.nvmlShutdown()
        return count
    except Exception:
        return 0


needs_gpu = pytest.mark.skipif(_gpus() == 0, reason="no NVIDIA GPU visible to NVML")


class Recorder:
    def __init__(self) -> None:
        self.points: list[tuple[str, float]] = []

    def __call__(self, key: str, value: float, *args: object, **kwargs: object) -> None:
        self.points.append((key, value))


@needs_gpu
def test_every_gpu_is_sampled_with_all_fields() -> None:
    sampler = SystemSampler(Recorder())
    assert sampler.gpu_note is None
    metrics = sampler.sample()
    for index in range(_gpus()):
        prefix = f"system/gpu{index}/"
        assert {key for key in metrics if key.startswith(prefix)} >= {
            prefix + "utilization_percent",
            prefix + "memory_used_mb",
            prefix + "memory_percent",
        }
        assert 0.0 <= metrics[prefix + "utilization_percent"] <= 100.0
        assert metrics[prefix + "memory_used_mb"] >= 0.0


@needs_gpu
def test_a_tracked_run_sees_gpu_load_and_memory(project, monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("KEEL_SYSTEM_METRICS_INTERVAL", "0.5")
    size = 8192
    with keel.start_run(system_metrics=True) as run:
        a = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
        allocated_mb = a.element_size() * a.nelement() / 2**20
        end = time.monotonic() + 4.0
        while time.monotonic() < end:
            a = (a @ a).clamp_(-1, 1)
        torch.cuda.synchronize()
    client = keel.Client()
    busy = client.get_metric_history(run.run_id, "system/gpu0/utilization_percent")
    memory = client.get_metric_history(run.run_id, "system/gpu0/memory_used_mb")
    assert len(busy.values) >= 3, busy
    assert float(busy.values.max()) > 50.0, busy.values
    assert float(memory.values.max()) > allocated_mb, (memory.values, allocated_mb)
