"""Top-level registry helpers: ``keel.load_model`` and ``keel.register_model``."""

from __future__ import annotations

from typing import Any

from keel.entities import ModelVersion
from keel.tracking.client import Client

__all__ = ["load_model", "register_model"]


def load_model(uri: str, *, trust: bool = False, torch_module: Any = None) -> Any:
    """Load ``models:/name@alias``, ``models:/name/3`` or ``runs:/RUN_ID/model``.

    >>> model = keel.load_model("models:/churn@champion")
    """
    return Client().load_model(uri, trust=trust, torch_module=torch_module)


def register_model(
    source: str, name: str, *, alias: str | None = None, description: str | None = None
) -> ModelVersion:
    """Register ``runs:/RUN_ID/model`` as a new version of ``name``; optionally point ``alias`` at it."""
    client = Client()
    version = client.register_model(source, name, description=description)
    if alias:
        client.set_model_alias(name, alias, version.version)
        version = client.get_model_version(name, version.version)
    return version
