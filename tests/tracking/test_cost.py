"""Cost estimates from resource usage, and how amounts are shown."""

from __future__ import annotations

import json
import math

import pytest

from keel.config import Prices
from keel.tracking.cost import CostEstimate, ResourceUsage, estimate_cost, format_usd
from keel.tracking.system import SystemSampler

H100 = "NVIDIA H100 80GB HBM3"


def test_estimate_matches_hand_computed_numbers() -> None:
    usage = ResourceUsage(
        cpu_core_seconds=7200,  # 2 core-hours
        memory_gb_seconds=36_000,  # 10 GiB-hours
        gpu_seconds={H100: 3600, "Tesla T4": 1800, "Some Future GPU": 360, "NVIDIA A100": 0},
        wall_seconds=3600,
    )
    estimate = estimate_cost(usage, Prices())
    # 2 h x $0.04, 10 GiB-h x $0.005, GPUs: 1 h x $3.90 + 0.5 h x $0.50 + 0.1 h x $2.50 (default)
    assert estimate.cpu_core_hours == 2
    assert estimate.cpu_usd == pytest.approx(0.08)
    assert estimate.memory_gb_hours == 10
    assert estimate.memory_usd == pytest.approx(0.05)
    assert estimate.gpu_hours == {H100: 1.0, "Some Future GPU": 0.1, "Tesla T4": 0.5}
    assert estimate.gpu_usd == pytest.approx(3.90 + 0.25 + 0.25)
    assert estimate.total_usd == pytest.approx(0.08 + 0.05 + 4.40)
    assert estimate.wall_hours == 1


def test_gpu_models_are_priced_by_their_nvml_names() -> None:
    prices = Prices(cpu_core_hour=0, memory_gb_hour=0)
    for name, hourly in [
        (H100, 3.90),
        ("NVIDIA H200", 4.50),
        ("NVIDIA A100-SXM4-40GB", 2.90),
        ("nvidia l4", 0.80),
        ("Tesla T4", 0.50),
        ("NVIDIA RTX 6000 Ada Generation", 2.50),
    ]:
        estimate = estimate_cost(ResourceUsage(gpu_seconds={name: 3600}), prices)
        assert estimate.gpu_usd == pytest.approx(hourly), name
        assert estimate.total_usd == pytest.approx(hourly), name
    custom = Prices(gpu_hour={"A10G": 1.25}, gpu_hour_default=9.0)
    assert estimate_cost(ResourceUsage(gpu_seconds={"NVIDIA A10G": 7200}), custom).gpu_usd == 2.5
    assert estimate_cost(ResourceUsage(gpu_seconds={H100: 3600}), custom).gpu_usd == 9.0


def test_no_usage_costs_nothing() -> None:
    estimate = estimate_cost(ResourceUsage(), Prices())
    assert estimate == CostEstimate(
        total_usd=0,
        cpu_usd=0,
        memory_usd=0,
        gpu_usd=0,
        cpu_core_hours=0,
        memory_gb_hours=0,
        gpu_hours={},
        wall_hours=0,
    )


def test_as_dict_is_json_and_keeps_tiny_amounts() -> None:
    usage = ResourceUsage(
        cpu_core_seconds=0.01, memory_gb_seconds=1 / 3, gpu_seconds={H100: 1}, wall_seconds=2
    )
    data = estimate_cost(usage, Prices()).as_dict()
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert set(data) == {
        "total_usd",
        "cpu_usd",
        "memory_usd",
        "gpu_usd",
        "cpu_core_hours",
        "memory_gb_hours",
        "gpu_hours",
        "wall_hours",
    }
    assert data["cpu_usd"] == 1.11111e-07  # not rounded away to 0
    assert data["memory_gb_hours"] == 9.25926e-05  # 6 significant digits
    assert data["gpu_hours"] == {H100: 0.000277778}
    nan = estimate_cost(ResourceUsage(cpu_core_seconds=math.nan), Prices()).as_dict()
    assert nan["cpu_usd"] is None and nan["total_usd"] is None


def test_usage_adds_intervals_and_copies_independently() -> None:
    usage = ResourceUsage()
    usage.add(2.0, cpu_core_seconds=1.5, memory_gb_seconds=0.5, gpus_in_use=[H100, H100])
    usage.add(1.0, cpu_core_seconds=0.5, gpus_in_use=["Tesla T4"])
    assert usage == ResourceUsage(
        cpu_core_seconds=2.0,
        memory_gb_seconds=0.5,
        gpu_seconds={H100: 4.0, "Tesla T4": 1.0},
        wall_seconds=3.0,
    )
    copy = usage.copy()
    usage.add(1.0, gpus_in_use=[H100])
    assert copy.gpu_seconds[H100] == 4.0


def test_a_sampled_run_has_a_cost() -> None:
    sampler = SystemSampler(lambda metrics, timestamp_ms: None, interval=60)
    sampler.start()
    total = 0
    for number in range(2_000_000):
        total += number
    sampler.stop()
    estimate = estimate_cost(sampler.usage, Prices())
    assert estimate.cpu_usd > 0 and estimate.memory_usd > 0
    assert estimate.gpu_usd == 0 or estimate.gpu_hours
    assert estimate.total_usd == pytest.approx(estimate.cpu_usd + estimate.memory_usd + estimate.gpu_usd)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1234.5, "$1,234.50"),
        (1_234_567.891, "$1,234,567.89"),
        (1.234, "$1.23"),
        (1.0, "$1.00"),
        (0.999, "$1.00"),
        (0.5, "$0.50"),
        (0.1, "$0.10"),
        (0.0999, "$0.10"),
        (0.05, "$0.050"),
        (0.0123, "$0.012"),
        (0.0012, "$0.0012"),
        (0.00123456, "$0.0012"),
        (0.000999, "$0.0010"),
        (1e-9, "$0.0000000010"),
        (0.0, "$0.00"),
        (-1.5, "-$1.50"),
        (-0.0012, "-$0.0012"),
        (math.nan, "n/a"),
        (math.inf, "n/a"),
    ],
)
def test_format_usd(value: float, text: str) -> None:
    assert format_usd(value) == text
