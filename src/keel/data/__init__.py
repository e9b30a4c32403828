"""Data validation, profiles, drift and anomaly detection.

Everything heavy (polars, DuckDB, DataSketches) is imported on first use, so ``import keel.data`` is cheap.

>>> import polars as pl
>>> import keel.data
>>> suite = keel.data.Suite.from_dict({"keel_suite": 1, "checks": [{"not_null": {"column": "x"}}]})
>>> keel.data.validate(pl.DataFrame({"x": [1, 2, 3]}), suite).passed
True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.data.checks import Check
    from keel.data.drift_detection import DriftResult, drift
    from keel.data.engine import validate
    from keel.data.outliers import find_outliers
    from keel.data.profiles import ColumnProfile, Profile, profile
    from keel.data.results import ValidationResult
    from keel.data.sources import Source, open_source
    from keel.data.suggest import suggest_suite
    from keel.data.suite import Suite

__all__ = [
    "Check",
    "ColumnProfile",
    "DriftResult",
    "Profile",
    "Source",
    "Suite",
    "ValidationResult",
    "drift",
    "find_outliers",
    "open_source",
    "profile",
    "suggest_suite",
    "validate",
]

_EXPORTS = {
    "Check": "keel.data.checks",
    "ColumnProfile": "keel.data.profiles",
    "DriftResult": "keel.data.drift_detection",
    "Profile": "keel.data.profiles",
    "Source": "keel.data.sources",
    "Suite": "keel.data.suite",
    "ValidationResult": "keel.data.results",
    "drift": "keel.data.drift_detection",
    "find_outliers": "keel.data.outliers",
    "open_source": "keel.data.sources",
    "profile": "keel.data.profiles",
    "suggest_suite": "keel.data.suggest",
    "validate": "keel.data.engine",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'keel.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
