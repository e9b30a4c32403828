"""The public API is one flat, pinned namespace, and importing it is cheap."""

from __future__ import annotations

import json
import sys

import keel
from tests.conftest import ROOT, run_python

EXPECTED = [
    "ActiveRun",
    "Artifact",
    "Client",
    "Comment",
    "Dataset",
    "Experiment",
    "KeelError",
    "LineageEdge",
    "Metric",
    "MetricHistory",
    "ModelInfo",
    "ModelVersion",
    "NameRuleError",
    "NamingConvention",
    "NotFoundError",
    "ParamConflictError",
    "RegisteredModel",
    "Run",
    "RunStatus",
    "Settings",
    "TrustError",
    "__version__",
    "active_run",
    "end_run",
    "flush",
    "load_model",
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
    "pipeline",
    "register_model",
    "set_tag",
    "set_tags",
    "start_run",
    "step",
]


def test_all_is_pinned_and_sorted():
    assert keel.__all__ == sorted(EXPECTED)


def test_every_export_resolves():
    for name in keel.__all__:
        assert getattr(keel, name) is not None, name


def test_every_export_is_documented():
    text = (ROOT / "docs" / "python-api.md").read_text()
    missing = [n for n in keel.__all__ if n != "__version__" and f"`{n}" not in text and n not in text]
    assert missing == []


def test_import_keel_loads_no_heavy_dependencies(tmp_path):
    result = run_python("import json, sys, keel\nprint(json.dumps(sorted(sys.modules)))", tmp_path)
    loaded = set(json.loads(result.stdout))
    heavy = {"sqlalchemy", "alembic", "numpy", "typer", "rich", "psutil", "fsspec", "sklearn", "pandas"}
    assert loaded & heavy == set()


def test_unknown_attribute_is_an_attribute_error():
    try:
        keel.does_not_exist  # noqa: B018
    except AttributeError as exc:
        assert "does_not_exist" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")
    assert sys.modules["keel"] is keel


def test_lazy_exports_match_all():
    assert sorted([*keel._EXPORTS, "__version__"]) == keel.__all__


def test_sql_store_implements_the_store_protocol():
    import inspect

    from keel.store.base import Store
    from keel.store.sql import SqlStore

    declared = {n for n, _ in inspect.getmembers(Store, inspect.isfunction) if not n.startswith("_")}
    implemented = {n for n, _ in inspect.getmembers(SqlStore, inspect.isfunction) if not n.startswith("_")}
    assert declared == implemented
    for name in declared:
        assert inspect.signature(getattr(Store, name)) == inspect.signature(getattr(SqlStore, name)), name
