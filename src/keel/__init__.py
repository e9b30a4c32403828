"""keel: local-first MLOps in one package.

>>> import keel
>>> with keel.start_run(experiment="churn") as run:
...     keel.log_params({"lr": 0.01, "depth": 6})
...     for step in range(100):
...         keel.log_metric("loss", 1 / (step + 1), step=step)

Everything public is importable from here. Names resolve lazily, so ``import keel`` stays fast: the
metadata store, SQLAlchemy and friends load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from keel._version import __version__

_EXPORTS: dict[str, str] = {
    # fluent tracking
    "ActiveRun": "keel.tracking.fluent",
    "active_run": "keel.tracking.fluent",
    "end_run": "keel.tracking.fluent",
    "flush": "keel.tracking.fluent",
    "log_artifact": "keel.tracking.fluent",
    "log_dict": "keel.tracking.fluent",
    "log_figure": "keel.tracking.fluent",
    "log_input": "keel.tracking.fluent",
    "log_metric": "keel.tracking.fluent",
    "log_metrics": "keel.tracking.fluent",
    "log_model": "keel.tracking.fluent",
    "log_param": "keel.tracking.fluent",
    "log_params": "keel.tracking.fluent",
    "log_table": "keel.tracking.fluent",
    "log_text": "keel.tracking.fluent",
    "set_tag": "keel.tracking.fluent",
    "set_tags": "keel.tracking.fluent",
    "start_run": "keel.tracking.fluent",
    # explicit client
    "Client": "keel.tracking.client",
    "ModelInfo": "keel.tracking.client",
    # records
    "Artifact": "keel.entities",
    "Comment": "keel.entities",
    "Dataset": "keel.entities",
    "Experiment": "keel.entities",
    "LineageEdge": "keel.entities",
    "Metric": "keel.entities",
    "MetricHistory": "keel.entities",
    "ModelVersion": "keel.entities",
    "RegisteredModel": "keel.entities",
    "Run": "keel.entities",
    "RunStatus": "keel.entities",
    # settings and naming
    "NamingConvention": "keel.naming",
    "Settings": "keel.config",
    # errors
    "KeelError": "keel.errors",
    "NameRuleError": "keel.errors",
    "NotFoundError": "keel.errors",
    "ParamConflictError": "keel.errors",
    "TrustError": "keel.errors",
    # pipelines
    "pipeline": "keel.pipelines",
    "step": "keel.pipelines",
    # models
    "load_model": "keel._api",
    "register_model": "keel._api",
}

__all__ = [
    "ActiveRun", "Artifact", "Client", "Comment", "Dataset", "Experiment", "KeelError", "LineageEdge",
    "Metric", "MetricHistory", "ModelInfo", "ModelVersion", "NameRuleError", "NamingConvention",
    "NotFoundError", "ParamConflictError", "RegisteredModel", "Run", "RunStatus", "Settings", "TrustError",
    "__version__", "active_run", "end_run", "flush", "load_model", "log_artifact", "log_dict", "log_figure",
    "log_input", "log_metric", "log_metrics", "log_model", "log_param", "log_params", "log_table",
    "log_text", "pipeline", "register_model", "set_tag", "set_tags", "start_run", "step",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'keel' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from keel._api import load_model, register_model
    from keel.config import Settings
    from keel.entities import (
        Artifact,
        Comment,
        Dataset,
        Experiment,
        LineageEdge,
        Metric,
        MetricHistory,
        ModelVersion,
        RegisteredModel,
        Run,
        RunStatus,
    )
    from keel.errors import KeelError, NameRuleError, NotFoundError, ParamConflictError, TrustError
    from keel.naming import NamingConvention
    from keel.pipelines import pipeline, step
    from keel.tracking.client import Client, ModelInfo
    from keel.tracking.fluent import (
        ActiveRun,
        active_run,
        end_run,
        flush,
        log_artifact,
        log_dict,
        log_figure,
        log_input,
        log_metric,
        log_metrics,
        log_model,
        log_param,
        log_params,
        log_table,
        log_text,
        set_tag,
        set_tags,
        start_run,
    )
