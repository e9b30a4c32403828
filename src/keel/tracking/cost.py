"""What a run used, and what that costs at the configured prices.

:class:`ResourceUsage` holds running totals (core-seconds of CPU, GiB-seconds of resident memory,
seconds of GPU time per GPU model, wall-clock seconds). :class:`~keel.tracking.system.SystemSampler`
fills one while a run is active; :func:`estimate_cost` prices it with a :class:`~keel.config.Prices`
table::

    estimate = estimate_cost(sampler.usage, settings.prices)
    print(format_usd(estimate.total_usd))        # "$0.0042"

The estimate is what the resources would cost on demand in a cloud, not what the machine costs: an
idle core is free here, a busy one is billed per core-hour.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

from keel.config import Prices

__all__ = ["CostEstimate", "ResourceUsage", "estimate_cost", "format_usd"]

_SECONDS_PER_HOUR = 3600.0


@dataclasses.dataclass
class ResourceUsage:
    """Running totals of the resources a run used.

    ``cpu_core_seconds`` is CPU time (one core busy for one second is 1.0), ``memory_gb_seconds``
    the integral of resident memory in GiB over time, ``gpu_seconds`` the time each GPU model was in
    use, summed over devices (two busy H100s for ten seconds add 20 to the H100 entry).
    """

    cpu_core_seconds: float = 0.0
    memory_gb_seconds: float = 0.0
    gpu_seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    wall_seconds: float = 0.0

    def add(
        self,
        seconds: float,
        *,
        cpu_core_seconds: float = 0.0,
        memory_gb_seconds: float = 0.0,
        gpus_in_use: Iterable[str] = (),
    ) -> None:
        """Add one interval of ``seconds``, during which each GPU named in ``gpus_in_use`` was busy.

        A GPU model named twice (two devices of the same model) counts twice.
        """
        self.wall_seconds += seconds
        self.cpu_core_seconds += cpu_core_seconds
        self.memory_gb_seconds += memory_gb_seconds
        for name in gpus_in_use:
            self.gpu_seconds[name] = self.gpu_seconds.get(name, 0.0) + seconds

    def copy(self) -> ResourceUsage:
        """An independent copy (the sampler hands these out while it keeps adding to its own)."""
        return dataclasses.replace(self, gpu_seconds=dict(self.gpu_seconds))


@dataclasses.dataclass(frozen=True)
class CostEstimate:
    """A run's estimated cost in USD, split by resource, with the quantities it was priced from."""

    total_usd: float
    cpu_usd: float
    memory_usd: float
    gpu_usd: float
    cpu_core_hours: float
    memory_gb_hours: float
    #: GPU hours per GPU model name as NVML reports it ("NVIDIA H100 80GB HBM3")
    gpu_hours: dict[str, float] = dataclasses.field(hash=False)
    wall_hours: float

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict; numbers keep 6 significant digits (tiny amounts are not rounded to 0).

        A value that is not finite (only possible from a hand-made usage) becomes ``None``.
        """
        result: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, dict):
                result[field.name] = {name: _significant(hours) for name, hours in value.items()}
            else:
                result[field.name] = _significant(value)
        return result


def estimate_cost(usage: ResourceUsage, prices: Prices) -> CostEstimate:
    """Price ``usage`` with ``prices``; each GPU model is priced by :meth:`Prices.for_gpu`.

    >>> usage = ResourceUsage(cpu_core_seconds=7200, wall_seconds=3600)
    >>> estimate_cost(usage, Prices(cpu_core_hour=0.04)).cpu_usd
    0.08
    """
    cpu_core_hours = usage.cpu_core_seconds / _SECONDS_PER_HOUR
    memory_gb_hours = usage.memory_gb_seconds / _SECONDS_PER_HOUR
    gpu_hours = {
        name: seconds / _SECONDS_PER_HOUR
        for name, seconds in sorted(usage.gpu_seconds.items())
        if seconds > 0
    }
    cpu_usd = cpu_core_hours * prices.cpu_core_hour
    memory_usd = memory_gb_hours * prices.memory_gb_hour
    gpu_usd = math.fsum(hours * prices.for_gpu(name) for name, hours in gpu_hours.items())
    return CostEstimate(
        total_usd=math.fsum((cpu_usd, memory_usd, gpu_usd)),
        cpu_usd=cpu_usd,
        memory_usd=memory_usd,
        gpu_usd=gpu_usd,
        cpu_core_hours=cpu_core_hours,
        memory_gb_hours=memory_gb_hours,
        gpu_hours=gpu_hours,
        wall_hours=usage.wall_seconds / _SECONDS_PER_HOUR,
    )


def format_usd(value: float) -> str:
    """Format an amount of US dollars for people: cents, or two significant digits if smaller.

    >>> [format_usd(v) for v in (1234.5, 1.234, 0.5, 0.05, 0.00123, 0)]
    ['$1,234.50', '$1.23', '$0.50', '$0.050', '$0.0012', '$0.00']
    """
    if not math.isfinite(value):
        return "n/a"
    sign = "-" if value < 0 else ""
    magnitude = abs(value)
    # Two significant digits first, so 0.0999 becomes 0.10 and is then shown in cents.
    rounded = float(f"{magnitude:.2g}")
    if rounded == 0 or rounded >= 0.1:
        return f"{sign}${magnitude:,.2f}"
    decimals = 1 - math.floor(math.log10(rounded))
    return f"{sign}${rounded:.{decimals}f}"


def _significant(value: float) -> float | None:
    if not math.isfinite(value):
        return None
    return float(f"{value:.6g}")
